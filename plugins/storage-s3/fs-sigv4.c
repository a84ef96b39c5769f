/* AWS Signature Version 4 (see fs-sigv4.h): canonical request, string to
 * sign, signing key, Authorization header and presigned URLs. Pure functions
 * over strings; HMAC and SHA-256 come from libgcrypt. */
#include "config.h"

#include <string.h>

#include <gcrypt.h>

#include "fs-gcrypt.h"
#include "fs-sigv4.h"
#include "fs-types.h"

#define ALGORITHM "AWS4-HMAC-SHA256"

gchar *
fs_sigv4_sha256_hex (gconstpointer data, gsize len)
{
  guint8 digest[32];

  fs_gcrypt_init ();
  gcry_md_hash_buffer (GCRY_MD_SHA256, digest, data, len);
  return fs_hex_encode (digest, sizeof digest);
}

static void
hmac_sha256 (const guint8 *key, gsize key_len, const gchar *msg, guint8 out[32])
{
  gcry_mac_hd_t hd;
  size_t out_len = 32;

  fs_gcrypt_init ();
  /* Cannot fail for HMAC-SHA256 with a working libgcrypt (checked at init). */
  if (gcry_mac_open (&hd, GCRY_MAC_HMAC_SHA256, 0, NULL) != 0)
    g_error ("libgcrypt: HMAC-SHA256 unavailable");
  gcry_mac_setkey (hd, key, key_len);
  gcry_mac_write (hd, msg, strlen (msg));
  gcry_mac_read (hd, out, &out_len);
  gcry_mac_close (hd);
}

gchar *
fs_sigv4_amz_date (GDateTime *when)
{
  g_autoptr (GDateTime) utc = g_date_time_to_utc (when);

  return g_date_time_format (utc, "%Y%m%dT%H%M%SZ");
}

gchar *
fs_sigv4_uri_encode (const gchar *s, gboolean keep_slash)
{
  GString *out = g_string_sized_new (strlen (s) + 8);

  for (const guchar *p = (const guchar *)s; *p != '\0'; p++)
    {
      if (g_ascii_isalnum (*p) || *p == '-' || *p == '_' || *p == '.' || *p == '~'
          || (keep_slash && *p == '/'))
        g_string_append_c (out, (gchar)*p);
      else
        g_string_append_printf (out, "%%%02X", *p);
    }
  return g_string_free (out, FALSE);
}

typedef struct
{
  gchar *name;
  gchar *value;
} Pair;

static void
pair_clear (gpointer data)
{
  Pair *pair = data;

  g_free (pair->name);
  g_free (pair->value);
}

static gint
pair_compare (gconstpointer a, gconstpointer b)
{
  const Pair *pa = a;
  const Pair *pb = b;
  gint c = strcmp (pa->name, pb->name);

  return c != 0 ? c : strcmp (pa->value, pb->value);
}

gchar *
fs_sigv4_canonical_query (const gchar *const *query)
{
  g_autoptr (GArray) pairs = g_array_new (FALSE, FALSE, sizeof (Pair));
  GString *out = g_string_new (NULL);

  g_array_set_clear_func (pairs, pair_clear);
  for (guint i = 0; query != NULL && query[i] != NULL; i += 2)
    {
      Pair pair = { fs_sigv4_uri_encode (query[i], FALSE),
                    fs_sigv4_uri_encode (query[i + 1] != NULL ? query[i + 1] : "", FALSE) };
      g_array_append_val (pairs, pair);
      if (query[i + 1] == NULL)
        break;
    }
  g_array_sort (pairs, pair_compare);
  for (guint i = 0; i < pairs->len; i++)
    {
      Pair *pair = &g_array_index (pairs, Pair, i);
      g_string_append_printf (out, "%s%s=%s", i > 0 ? "&" : "", pair->name, pair->value);
    }
  return g_string_free (out, FALSE);
}

/* Trims @value and collapses inner runs of spaces into one, as SigV4 wants. */
static gchar *
canonical_header_value (const gchar *value)
{
  GString *out = g_string_new (NULL);
  gboolean space = FALSE;

  while (*value == ' ' || *value == '\t')
    value++;
  for (const gchar *p = value; *p != '\0'; p++)
    {
      if (*p == ' ' || *p == '\t')
        {
          space = TRUE;
          continue;
        }
      if (space && out->len > 0)
        g_string_append_c (out, ' ');
      space = FALSE;
      g_string_append_c (out, *p);
    }
  return g_string_free (out, FALSE);
}

static gint
pair_compare_name (gconstpointer a, gconstpointer b)
{
  return strcmp (((const Pair *)a)->name, ((const Pair *)b)->name);
}

gchar *
fs_sigv4_canonical_request (const gchar *method, const gchar *path,
                            const gchar *const *query, const gchar *const *headers,
                            const gchar *payload_hash, gchar **signed_headers)
{
  g_autoptr (GArray) pairs = g_array_new (FALSE, FALSE, sizeof (Pair));
  g_autofree gchar *uri = fs_sigv4_uri_encode (path != NULL && *path != '\0' ? path : "/", TRUE);
  g_autofree gchar *canonical_query = fs_sigv4_canonical_query (query);
  GString *canonical_headers = g_string_new (NULL);
  GString *names = g_string_new (NULL);
  gchar *request;

  g_array_set_clear_func (pairs, pair_clear);
  for (guint i = 0; headers != NULL && headers[i] != NULL && headers[i + 1] != NULL; i += 2)
    {
      Pair pair = { g_ascii_strdown (headers[i], -1), canonical_header_value (headers[i + 1]) };
      g_array_append_val (pairs, pair);
    }
  /* Stable for equal names, so repeated headers keep their order when joined. */
  g_array_sort (pairs, pair_compare_name);
  for (guint i = 0; i < pairs->len; i++)
    {
      Pair *pair = &g_array_index (pairs, Pair, i);

      if (i > 0 && strcmp (pair->name, g_array_index (pairs, Pair, i - 1).name) == 0)
        {
          /* Replace the previous line's '\n' with ",value\n". */
          g_string_truncate (canonical_headers, canonical_headers->len - 1);
          g_string_append_printf (canonical_headers, ",%s\n", pair->value);
          continue;
        }
      g_string_append_printf (canonical_headers, "%s:%s\n", pair->name, pair->value);
      g_string_append_printf (names, "%s%s", names->len > 0 ? ";" : "", pair->name);
    }

  request = g_strdup_printf ("%s\n%s\n%s\n%s\n%s\n%s", method, uri, canonical_query,
                             canonical_headers->str, names->str, payload_hash);
  g_string_free (canonical_headers, TRUE);
  if (signed_headers != NULL)
    *signed_headers = g_string_free (names, FALSE);
  else
    g_string_free (names, TRUE);
  return request;
}

gchar *
fs_sigv4_string_to_sign (const gchar *amz_date, const gchar *scope,
                         const gchar *canonical_request)
{
  g_autofree gchar *hash = fs_sigv4_sha256_hex (canonical_request, strlen (canonical_request));

  return g_strdup_printf (ALGORITHM "\n%s\n%s\n%s", amz_date, scope, hash);
}

void
fs_sigv4_signing_key (const gchar *secret_key, const gchar *date8, const gchar *region,
                      const gchar *service, guint8 key[32])
{
  g_autofree gchar *k_secret = g_strconcat ("AWS4", secret_key, NULL);
  guint8 k_date[32], k_region[32], k_service[32];

  hmac_sha256 ((const guint8 *)k_secret, strlen (k_secret), date8, k_date);
  hmac_sha256 (k_date, sizeof k_date, region, k_region);
  hmac_sha256 (k_region, sizeof k_region, service, k_service);
  hmac_sha256 (k_service, sizeof k_service, "aws4_request", key);
  /* The secret's derivatives do not outlive the call. */
  memset (k_secret, 0, strlen (k_secret));
  memset (k_date, 0, sizeof k_date);
  memset (k_region, 0, sizeof k_region);
  memset (k_service, 0, sizeof k_service);
}

static gchar *
sign (const FsSigV4Credentials *creds, const gchar *amz_date, const gchar *scope,
      const gchar *canonical_request)
{
  g_autofree gchar *date8 = g_strndup (amz_date, 8);
  g_autofree gchar *string_to_sign = fs_sigv4_string_to_sign (amz_date, scope, canonical_request);
  guint8 key[32], signature[32];

  fs_sigv4_signing_key (creds->secret_key, date8, creds->region, creds->service, key);
  hmac_sha256 (key, sizeof key, string_to_sign, signature);
  memset (key, 0, sizeof key);
  return fs_hex_encode (signature, sizeof signature);
}

static gchar *
make_scope (const FsSigV4Credentials *creds, const gchar *amz_date)
{
  return g_strdup_printf ("%.8s/%s/%s/aws4_request", amz_date, creds->region, creds->service);
}

gchar *
fs_sigv4_authorization (const FsSigV4Credentials *creds, const gchar *amz_date,
                        const gchar *method, const gchar *path, const gchar *const *query,
                        const gchar *const *headers, const gchar *payload_hash)
{
  g_autofree gchar *signed_headers = NULL;
  g_autofree gchar *canonical
    = fs_sigv4_canonical_request (method, path, query, headers, payload_hash, &signed_headers);
  g_autofree gchar *scope = make_scope (creds, amz_date);
  g_autofree gchar *signature = sign (creds, amz_date, scope, canonical);

  return g_strdup_printf (ALGORITHM " Credential=%s/%s, SignedHeaders=%s, Signature=%s",
                          creds->access_key, scope, signed_headers, signature);
}

gchar *
fs_sigv4_presign_url (const FsSigV4Credentials *creds, const gchar *amz_date,
                      guint expires_seconds, const gchar *method, const gchar *base,
                      const gchar *host, const gchar *path, const gchar *const *query)
{
  g_autofree gchar *scope = make_scope (creds, amz_date);
  g_autofree gchar *credential = g_strdup_printf ("%s/%s", creds->access_key, scope);
  g_autofree gchar *expires = g_strdup_printf ("%u", expires_seconds);
  g_autoptr (GPtrArray) params = g_ptr_array_new ();
  const gchar *headers[] = { "host", host, NULL };
  g_autofree gchar *canonical = NULL;
  g_autofree gchar *signature = NULL;
  g_autofree gchar *canonical_query = NULL;
  g_autofree gchar *uri = fs_sigv4_uri_encode (path != NULL && *path != '\0' ? path : "/", TRUE);

  for (guint i = 0; query != NULL && query[i] != NULL; i += 2)
    {
      g_ptr_array_add (params, (gpointer)query[i]);
      g_ptr_array_add (params, (gpointer)(query[i + 1] != NULL ? query[i + 1] : ""));
      if (query[i + 1] == NULL)
        break;
    }
  g_ptr_array_add (params, "X-Amz-Algorithm");
  g_ptr_array_add (params, ALGORITHM);
  g_ptr_array_add (params, "X-Amz-Credential");
  g_ptr_array_add (params, credential);
  g_ptr_array_add (params, "X-Amz-Date");
  g_ptr_array_add (params, (gpointer)amz_date);
  g_ptr_array_add (params, "X-Amz-Expires");
  g_ptr_array_add (params, expires);
  g_ptr_array_add (params, "X-Amz-SignedHeaders");
  g_ptr_array_add (params, "host");
  g_ptr_array_add (params, NULL);

  canonical = fs_sigv4_canonical_request (method, path, (const gchar *const *)params->pdata,
                                          headers, FS_SIGV4_UNSIGNED_PAYLOAD, NULL);
  signature = sign (creds, amz_date, scope, canonical);
  canonical_query = fs_sigv4_canonical_query ((const gchar *const *)params->pdata);
  return g_strdup_printf ("%s%s?%s&X-Amz-Signature=%s", base, uri, canonical_query, signature);
}
