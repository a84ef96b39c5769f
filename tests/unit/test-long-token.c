/* The long form of share tokens (core/fs-long-token.c). */
#include <string.h>

#include <zlib.h>

#include "fs-error.h"
#include "fs-long-token.h"
#include "fs-types.h"

static FsLongToken *
sample (void)
{
  FsLongToken *t = g_new0 (FsLongToken, 1);
  t->token = g_strdup ("7KQ2-M9XD-4HRT");
  t->object_key = g_strdup ("foldersync-pairing/abcdefghijklmnopqrstuvwxyz");
  t->get_url = g_strdup ("https://s3.example.com/b/foldersync-pairing/abc?X-Amz-Signature=01");
  t->delete_url = g_strdup ("https://s3.example.com/b/foldersync-pairing/abc?X-Amz-Signature=02");
  t->expires = 1795680772;
  t->credentials = TRUE;
  return t;
}

static void
test_round_trip (void)
{
  g_autoptr (FsLongToken) in = sample ();
  g_autofree gchar *text = fs_long_token_encode (in);
  g_autoptr (GError) error = NULL;
  g_autoptr (FsLongToken) out = NULL;
  g_autoptr (GString) wrapped = g_string_new ("  ");
  g_autofree gchar *lower = g_ascii_strdown (text, -1);

  g_assert_true (g_str_has_prefix (text, "FS1."));
  for (const gchar *p = text + 4; *p; p++)
    g_assert_true (g_ascii_isupper (*p) || (*p >= '2' && *p <= '7'));
  g_assert_true (fs_long_token_is_long (text));
  g_assert_false (fs_long_token_is_long ("7KQ2-M9XD-4HRT"));

  out = fs_long_token_decode (text, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (out->token, ==, in->token);
  g_assert_cmpstr (out->object_key, ==, in->object_key);
  g_assert_cmpstr (out->get_url, ==, in->get_url);
  g_assert_cmpstr (out->delete_url, ==, in->delete_url);
  g_assert_cmpuint (out->expires, ==, in->expires);
  g_assert_true (out->credentials);
  g_clear_pointer (&out, fs_long_token_free);

  /* A paste that wrapped, with stray white space, in lower case. */
  for (gsize i = 0; lower[i]; i++)
    {
      g_string_append_c (wrapped, lower[i]);
      if (i % 60 == 59)
        g_string_append (wrapped, "\n  ");
    }
  out = fs_long_token_decode (wrapped->str, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (out->get_url, ==, in->get_url);
}

static void
check_damaged (const FsLongToken *in)
{
  g_autofree gchar *text = fs_long_token_encode (in);
  gsize len = strlen (text);

  /* Every single-character change and every truncation is refused. */
  for (gsize i = 4; i < len; i++)
    {
      g_autofree gchar *bad = g_strdup (text);
      g_autofree gchar *cut = g_strndup (text, i);
      g_autoptr (GError) error = NULL;
      g_autoptr (GError) cut_error = NULL;
      g_autoptr (FsLongToken) t = NULL;
      g_autoptr (FsLongToken) t2 = NULL;

      bad[i] = bad[i] == 'A' ? 'B' : 'A';
      t = fs_long_token_decode (bad, &error);
      g_assert_null (t);
      g_assert_error (error, FS_PAIRING_ERROR, FS_PAIRING_ERROR_INVALID);
      g_assert_null (strstr (error->message, bad + 4));
      t2 = fs_long_token_decode (cut, &cut_error);
      g_assert_null (t2);
      g_assert_error (cut_error, FS_PAIRING_ERROR, FS_PAIRING_ERROR_INVALID);
    }
}

static void
test_damaged (void)
{
  /* Texts of every length mod 8 (base32 pads differently for each). */
  for (guint extra = 0; extra < 16; extra++)
    {
      g_autoptr (FsLongToken) in = sample ();
      g_autofree gchar *pad = g_strnfill (extra * 7, 'x');
      g_autofree gchar *url = g_strconcat (in->get_url, pad, NULL);
      g_free (in->get_url);
      in->get_url = g_steal_pointer (&url);
      in->expires += extra * 977;
      check_damaged (in);
    }
  {
    g_autoptr (GError) error = NULL;
    g_assert_null (fs_long_token_decode ("FS1.!!!!", &error));
    g_assert_error (error, FS_PAIRING_ERROR, FS_PAIRING_ERROR_INVALID);
  }
}

/* Well-formed JSON with members of the wrong types: refused, no critical. */
static void
test_wrong_types (void)
{
  const gchar *bodies[] = {
    "{\"v\": {}, \"t\": \"x\"}",
    "{\"v\": 1, \"t\": \"7KQ2-M9XD-4HRT\", \"k\": \"a\", \"g\": \"http://h/a\", "
    "\"d\": \"http://h/a\", \"e\": [1], \"c\": {}}",
    "\"\"", "[]", "null",
  };

  for (gsize i = 0; i < G_N_ELEMENTS (bodies); i++)
    {
      uLongf packed_len = compressBound (strlen (bodies[i]));
      g_autofree guint8 *packed = g_malloc (packed_len);
      g_autofree gchar *b32 = NULL;
      g_autofree gchar *upper = NULL;
      g_autofree gchar *text = NULL;
      g_autoptr (GError) error = NULL;

      g_assert_cmpint (compress2 (packed, &packed_len, (const Bytef *) bodies[i], strlen (bodies[i]), 9),
                       ==, Z_OK);
      b32 = fs_base32_encode (packed, packed_len);
      upper = g_ascii_strup (b32, -1);
      text = g_strconcat ("FS1.", upper, NULL);
      g_assert_null (fs_long_token_decode (text, &error));
      g_assert_error (error, FS_PAIRING_ERROR, FS_PAIRING_ERROR_INVALID);
    }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/long-token/round-trip", test_round_trip);
  g_test_add_func ("/long-token/damaged", test_damaged);
  g_test_add_func ("/long-token/wrong-types", test_wrong_types);
  return g_test_run ();
}
