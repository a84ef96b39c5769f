/* Unit tests of the storage-s3 plugin's SigV4 signer (plugins/storage-s3/fs-sigv4.c)
 * against published vectors: the AWS SigV4 test suite (aws-sig-v4-test-suite,
 * service "service") and the S3 examples of the AWS documentation ("Signature
 * Calculations for the Authorization Header" and "Query String Auth"). */
#include "config.h"

#include <string.h>

#include "fs-sigv4.h"

/* aws-sig-v4-test-suite */
#define SUITE_DATE "20150830T123600Z"
#define SUITE_HOST "example.amazonaws.com"
static const FsSigV4Credentials suite_creds
  = { "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "us-east-1", "service" };

/* S3 documentation examples */
#define S3_DATE "20130524T000000Z"
#define S3_HOST "examplebucket.s3.amazonaws.com"
static const FsSigV4Credentials s3_creds
  = { "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "us-east-1", "s3" };

static void
check_auth (const FsSigV4Credentials *creds, const gchar *date, const gchar *method,
            const gchar *path, const gchar *const *query, const gchar *const *headers,
            const gchar *payload_hash, const gchar *signed_headers, const gchar *signature)
{
  g_autofree gchar *auth
    = fs_sigv4_authorization (creds, date, method, path, query, headers, payload_hash);
  g_autofree gchar *expected
    = g_strdup_printf ("AWS4-HMAC-SHA256 Credential=%s/%.8s/%s/%s/aws4_request, "
                       "SignedHeaders=%s, Signature=%s",
                       creds->access_key, date, creds->region, creds->service, signed_headers,
                       signature);

  g_assert_cmpstr (auth, ==, expected);
}

static void
test_uri_encode (void)
{
  g_autofree gchar *a = fs_sigv4_uri_encode ("a b+c/d~e_f.g-h$ሴ", TRUE);
  g_autofree gchar *b = fs_sigv4_uri_encode ("a/b=c&d", FALSE);
  const gchar *query[] = { "b", "2", "a", "1", "A", "0", "k", "", "sp ace", "x/y", NULL };
  g_autofree gchar *q = fs_sigv4_canonical_query (query);

  g_assert_cmpstr (a, ==, "a%20b%2Bc/d~e_f.g-h%24%E1%88%B4");
  g_assert_cmpstr (b, ==, "a%2Fb%3Dc%26d");
  g_assert_cmpstr (q, ==, "A=0&a=1&b=2&k=&sp%20ace=x%2Fy");
}

static void
test_get_vanilla (void)
{
  const gchar *headers[] = { "Host", SUITE_HOST, "X-Amz-Date", SUITE_DATE, NULL };
  g_autofree gchar *signed_headers = NULL;
  g_autofree gchar *canonical = fs_sigv4_canonical_request ("GET", "/", NULL, headers,
                                                            FS_SIGV4_EMPTY_SHA256, &signed_headers);
  g_autofree gchar *sts = NULL;
  g_autofree gchar *key_hex = NULL;
  guint8 key[32];

  g_assert_cmpstr (canonical, ==,
                   "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
                   "host;x-amz-date\n" FS_SIGV4_EMPTY_SHA256);
  g_assert_cmpstr (signed_headers, ==, "host;x-amz-date");
  sts = fs_sigv4_string_to_sign (SUITE_DATE, "20150830/us-east-1/service/aws4_request", canonical);
  g_assert_cmpstr (sts, ==,
                   "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
                   "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63");
  fs_sigv4_signing_key (suite_creds.secret_key, "20150830", "us-east-1", "service", key);
  key_hex = g_malloc0 (65);
  for (guint i = 0; i < 32; i++)
    g_snprintf (key_hex + 2 * i, 3, "%02x", key[i]);
  g_assert_cmpstr (key_hex, ==, "938127b5336810ddb6a5d6af445fcac9e371f9ed418ed386b022aed82901be75");

  check_auth (&suite_creds, SUITE_DATE, "GET", "/", NULL, headers, FS_SIGV4_EMPTY_SHA256,
              "host;x-amz-date", "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
}

static void
test_get_vanilla_query_order_key_case (void)
{
  const gchar *headers[] = { "Host", SUITE_HOST, "X-Amz-Date", SUITE_DATE, NULL };
  const gchar *query[] = { "Param2", "value2", "Param1", "value1", NULL };

  check_auth (&suite_creds, SUITE_DATE, "GET", "/", query, headers, FS_SIGV4_EMPTY_SHA256,
              "host;x-amz-date", "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500");
}

static void
test_get_vanilla_empty_query_key (void)
{
  const gchar *headers[] = { "Host", SUITE_HOST, "X-Amz-Date", SUITE_DATE, NULL };
  const gchar *query[] = { "Param1", "value1", NULL };

  check_auth (&suite_creds, SUITE_DATE, "GET", "/", query, headers, FS_SIGV4_EMPTY_SHA256,
              "host;x-amz-date", "a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb");
}

static void
test_get_utf8 (void)
{
  const gchar *headers[] = { "Host", SUITE_HOST, "X-Amz-Date", SUITE_DATE, NULL };

  check_auth (&suite_creds, SUITE_DATE, "GET", "/ሴ", NULL, headers, FS_SIGV4_EMPTY_SHA256,
              "host;x-amz-date", "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85");
}

static void
test_get_header_value_trim (void)
{
  const gchar *headers[] = { "Host",       SUITE_HOST,         "My-Header1", " value1",
                             "My-Header2", " \"a   b   c\"",    "X-Amz-Date", SUITE_DATE,
                             NULL };

  check_auth (&suite_creds, SUITE_DATE, "GET", "/", NULL, headers, FS_SIGV4_EMPTY_SHA256,
              "host;my-header1;my-header2;x-amz-date",
              "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736");
}

static void
test_get_header_key_duplicate (void)
{
  const gchar *headers[] = { "Host",       SUITE_HOST, "My-Header1", "value2", "My-Header1",
                             "value2",     "My-Header1", "value1",   "X-Amz-Date", SUITE_DATE,
                             NULL };

  check_auth (&suite_creds, SUITE_DATE, "GET", "/", NULL, headers, FS_SIGV4_EMPTY_SHA256,
              "host;my-header1;x-amz-date",
              "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea");
}

static void
test_post_vanilla (void)
{
  const gchar *headers[] = { "Host", SUITE_HOST, "X-Amz-Date", SUITE_DATE, NULL };

  check_auth (&suite_creds, SUITE_DATE, "POST", "/", NULL, headers, FS_SIGV4_EMPTY_SHA256,
              "host;x-amz-date", "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b");
}

static void
test_post_x_www_form_urlencoded (void)
{
  const gchar *headers[] = { "Content-Type", "application/x-www-form-urlencoded", "Host",
                             SUITE_HOST,     "X-Amz-Date", SUITE_DATE, NULL };
  g_autofree gchar *hash = fs_sigv4_sha256_hex ("Param1=value1", strlen ("Param1=value1"));

  g_assert_cmpstr (hash, ==, "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e");
  check_auth (&suite_creds, SUITE_DATE, "POST", "/", NULL, headers, hash,
              "content-type;host;x-amz-date",
              "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a");
}

static void
test_s3_get_object_range (void)
{
  const gchar *headers[] = { "Host", S3_HOST, "Range", "bytes=0-9", "x-amz-content-sha256",
                             FS_SIGV4_EMPTY_SHA256, "x-amz-date", S3_DATE, NULL };

  check_auth (&s3_creds, S3_DATE, "GET", "/test.txt", NULL, headers, FS_SIGV4_EMPTY_SHA256,
              "host;range;x-amz-content-sha256;x-amz-date",
              "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

static void
test_s3_put_object (void)
{
  const gchar *body = "Welcome to Amazon S3.";
  g_autofree gchar *hash = fs_sigv4_sha256_hex (body, strlen (body));
  const gchar *headers[] = { "Date", "Fri, 24 May 2013 00:00:00 GMT", "Host", S3_HOST,
                             "x-amz-content-sha256", hash, "x-amz-date", S3_DATE,
                             "x-amz-storage-class", "REDUCED_REDUNDANCY", NULL };

  g_assert_cmpstr (hash, ==, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
  check_auth (&s3_creds, S3_DATE, "PUT", "/test$file.text", NULL, headers, hash,
              "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
              "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
}

static void
test_s3_get_bucket_lifecycle (void)
{
  const gchar *headers[] = { "Host", S3_HOST, "x-amz-content-sha256", FS_SIGV4_EMPTY_SHA256,
                             "x-amz-date", S3_DATE, NULL };
  const gchar *query[] = { "lifecycle", "", NULL };

  check_auth (&s3_creds, S3_DATE, "GET", "/", query, headers, FS_SIGV4_EMPTY_SHA256,
              "host;x-amz-content-sha256;x-amz-date",
              "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
}

static void
test_s3_list_objects (void)
{
  const gchar *headers[] = { "Host", S3_HOST, "x-amz-content-sha256", FS_SIGV4_EMPTY_SHA256,
                             "x-amz-date", S3_DATE, NULL };
  const gchar *query[] = { "prefix", "J", "max-keys", "2", NULL };

  check_auth (&s3_creds, S3_DATE, "GET", "/", query, headers, FS_SIGV4_EMPTY_SHA256,
              "host;x-amz-content-sha256;x-amz-date",
              "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
}

static void
test_s3_presigned_url (void)
{
  g_autofree gchar *url = fs_sigv4_presign_url (&s3_creds, S3_DATE, 86400, "GET",
                                                "https://" S3_HOST, S3_HOST, "/test.txt", NULL);

  g_assert_cmpstr (url, ==,
                   "https://examplebucket.s3.amazonaws.com/test.txt"
                   "?X-Amz-Algorithm=AWS4-HMAC-SHA256"
                   "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
                   "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
                   "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/sigv4/uri-encode", test_uri_encode);
  g_test_add_func ("/sigv4/suite/get-vanilla", test_get_vanilla);
  g_test_add_func ("/sigv4/suite/get-vanilla-query-order-key-case",
                   test_get_vanilla_query_order_key_case);
  g_test_add_func ("/sigv4/suite/get-vanilla-empty-query-key", test_get_vanilla_empty_query_key);
  g_test_add_func ("/sigv4/suite/get-utf8", test_get_utf8);
  g_test_add_func ("/sigv4/suite/get-header-value-trim", test_get_header_value_trim);
  g_test_add_func ("/sigv4/suite/get-header-key-duplicate", test_get_header_key_duplicate);
  g_test_add_func ("/sigv4/suite/post-vanilla", test_post_vanilla);
  g_test_add_func ("/sigv4/suite/post-x-www-form-urlencoded", test_post_x_www_form_urlencoded);
  g_test_add_func ("/sigv4/s3/get-object-range", test_s3_get_object_range);
  g_test_add_func ("/sigv4/s3/put-object", test_s3_put_object);
  g_test_add_func ("/sigv4/s3/get-bucket-lifecycle", test_s3_get_bucket_lifecycle);
  g_test_add_func ("/sigv4/s3/list-objects", test_s3_list_objects);
  g_test_add_func ("/sigv4/s3/presigned-url", test_s3_presigned_url);
  return g_test_run ();
}
