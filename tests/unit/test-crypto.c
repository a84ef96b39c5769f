/* Unit tests of the crypto-aes plugin (FsCrypto): HKDF against RFC 5869, the
 * test vectors of docs/format.md (read from the file, so the spec cannot
 * drift), round trips, tampering, hostile input, bounded memory, and objects
 * of many chunks through the plugin's worker pipeline (order, damage in late
 * chunks, cancellation, streams dropped with chunks in flight).
 *
 * The test carries its own small reference implementation of the format
 * (HKDF, object key, object decoder) so the vectors are checked against the
 * spec as written, not only against the plugin. */
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <gcrypt.h>
#include <gio/gio.h>
#include <zlib.h>

#include "fs-test-vectors.h"
#include "fs-crypto.h"
#include "fs-error.h"
#include "fs-gcrypt.h"
#include "fs-plugin-loader.h"

#define MIB (1024 * 1024)
#define CHUNK MIB
/* Per chunk on the wire: frame (4), encoding flag (1), tag (16). */
#define CHUNK_OVERHEAD 21
#define PREAMBLE 24

/* ---------- helpers ---------- */

static GBytes *
hex_decode (const gchar *hex)
{
  gsize len = strlen (hex);
  GByteArray *out = g_byte_array_sized_new (len / 2);

  g_assert_cmpuint (len % 2, ==, 0);
  for (gsize i = 0; i < len; i += 2)
    {
      gint hi = g_ascii_xdigit_value (hex[i]);
      gint lo = g_ascii_xdigit_value (hex[i + 1]);
      guint8 b;
      g_assert_cmpint (hi, >=, 0);
      g_assert_cmpint (lo, >=, 0);
      b = (guint8) (hi << 4 | lo);
      g_byte_array_append (out, &b, 1);
    }
  return g_byte_array_free_to_bytes (out);
}

static gchar *
hex_encode (const guint8 *data, gsize len)
{
  GString *s = g_string_sized_new (len * 2 + 1);
  for (gsize i = 0; i < len; i++)
    g_string_append_printf (s, "%02x", data[i]);
  return g_string_free (s, FALSE);
}

static gchar *
bytes_hex (GBytes *bytes)
{
  gsize len = 0;
  const guint8 *data = g_bytes_get_data (bytes, &len);
  return hex_encode (data, len);
}

static void
assert_bytes_equal (GBytes *a, GBytes *b)
{
  gsize alen = 0, blen = 0;
  const guint8 *ad = g_bytes_get_data (a, &alen);
  const guint8 *bd = g_bytes_get_data (b, &blen);
  g_assert_cmpuint (alen, ==, blen);
  g_assert_true (alen == 0 || memcmp (ad, bd, alen) == 0);
}

static const guint8 master_key[32] = {
  0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
  0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
};

static FsCrypto *
new_crypto (const guint8 *key)
{
  g_autoptr(GError) error = NULL;
  GObject *obj = fs_plugin_new_instance ("crypto-aes", FS_TYPE_CRYPTO, &error);

  g_assert_no_error (error);
  g_assert_nonnull (obj);
  if (key != NULL)
    {
      g_assert_true (fs_crypto_set_key (FS_CRYPTO (obj), key, 32, &error));
      g_assert_no_error (error);
    }
  return FS_CRYPTO (obj);
}

static GBytes *
read_stream_all (GInputStream *stream, guint32 seed, GError **error)
{
  GByteArray *out = g_byte_array_new ();
  g_autofree guint8 *buf = g_malloc (CHUNK + 7);
  GRand *rand = g_rand_new_with_seed (seed);

  for (;;)
    {
      /* Odd read sizes exercise the partial-read paths of both streams. */
      gsize want = seed == 0 ? CHUNK + 7 : (gsize) g_rand_int_range (rand, 1, 300000);
      gssize n = g_input_stream_read (stream, buf, want, NULL, error);
      if (n < 0)
        {
          g_rand_free (rand);
          g_byte_array_unref (out);
          return NULL;
        }
      if (n == 0)
        break;
      g_byte_array_append (out, buf, n);
    }
  g_rand_free (rand);
  return g_byte_array_free_to_bytes (out);
}

static GBytes *
seal_bytes (FsCrypto *crypto, GBytes *header, GBytes *plain, const guint8 *nonce)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GInputStream) source = g_memory_input_stream_new_from_bytes (plain);
  g_autoptr(GInputStream) sealed = fs_crypto_seal_stream (crypto, header, source, nonce, &error);
  GBytes *out;

  g_assert_no_error (error);
  g_assert_nonnull (sealed);
  out = read_stream_all (sealed, 0, &error);
  g_assert_no_error (error);
  g_assert_true (g_input_stream_close (sealed, NULL, &error));
  g_assert_no_error (error);
  return out;
}

/* Opens and reads a whole sealed object; FALSE with @error on failure. */
static gboolean
open_bytes (FsCrypto *crypto, GBytes *sealed, GBytes **header, GBytes **plain, guint32 seed,
            GError **error)
{
  g_autoptr(GInputStream) source = g_memory_input_stream_new_from_bytes (sealed);
  g_autoptr(GBytes) hdr = NULL;
  g_autoptr(GInputStream) opened = fs_crypto_open_stream (crypto, source, &hdr, NULL, error);
  GBytes *out;

  if (opened == NULL)
    return FALSE;
  g_assert_nonnull (hdr);
  out = read_stream_all (opened, seed, error);
  if (out == NULL)
    return FALSE;
  if (header != NULL)
    *header = g_steal_pointer (&hdr);
  if (plain != NULL)
    *plain = out;
  else
    g_bytes_unref (out);
  return TRUE;
}

static void
assert_corrupt (FsCrypto *crypto, GBytes *sealed, const gchar *what)
{
  g_autoptr(GError) error = NULL;
  gboolean ok = open_bytes (crypto, sealed, NULL, NULL, 0, &error);

  if (ok)
    g_error ("%s: opening succeeded", what);
  g_assert_error (error, FS_CRYPTO_ERROR, FS_CRYPTO_ERROR_CORRUPT);
  g_assert_nonnull (error->message);
}

static GBytes *
text_like (gsize size, guint32 seed)
{
  static const gchar *words[] = { "the ",   "folder ", "sync ",  "engine ", "keeps ",  "files ",
                                  "in ",    "step, ",  "and ",   "never ",  "loses ",  "a ",
                                  "byte.\n", "remote ", "local ", "chunk ", "header ", "key " };
  GRand *rand = g_rand_new_with_seed (seed);
  GString *s = g_string_sized_new (size + 16);

  while (s->len < size)
    g_string_append (s, words[g_rand_int_range (rand, 0, G_N_ELEMENTS (words))]);
  g_string_truncate (s, size);
  g_rand_free (rand);
  return g_string_free_to_bytes (s);
}

static GBytes *
random_bytes (gsize size, guint64 seed)
{
  guint8 *data = g_malloc (size + 8);
  guint64 x = seed | 1;

  for (gsize i = 0; i < size; i += 8)
    {
      /* xorshift64*: fast, deterministic, incompressible. */
      guint64 v;
      x ^= x >> 12;
      x ^= x << 25;
      x ^= x >> 27;
      v = x * G_GUINT64_CONSTANT (2685821657736338717);
      memcpy (data + i, &v, 8);
    }
  return g_bytes_new_take (data, size);
}

static GBytes *
concat (GBytes *a, GBytes *b)
{
  GByteArray *out = g_byte_array_new ();
  gsize len = 0;
  const guint8 *d = g_bytes_get_data (a, &len);
  g_byte_array_append (out, d, len);
  d = g_bytes_get_data (b, &len);
  g_byte_array_append (out, d, len);
  return g_byte_array_free_to_bytes (out);
}

/* ---------- reference implementation (independent of the plugin) ---------- */

static void
ref_hmac (const guint8 *key, gsize key_len, const guint8 *data, gsize len, guint8 out[32])
{
  gcry_md_hd_t md = NULL;
  g_assert_cmpint (gcry_md_open (&md, GCRY_MD_SHA256, GCRY_MD_FLAG_HMAC), ==, 0);
  g_assert_cmpint (gcry_md_setkey (md, key, key_len), ==, 0);
  gcry_md_write (md, data, len);
  memcpy (out, gcry_md_read (md, 0), 32);
  gcry_md_close (md);
}

static void
ref_hkdf (const guint8 *salt, gsize salt_len, const guint8 *ikm, gsize ikm_len,
          const guint8 *info, gsize info_len, guint8 *okm, gsize okm_len)
{
  guint8 zero[32] = { 0 };
  guint8 prk[32], t[32];
  gsize t_len = 0;

  if (salt_len == 0)
    {
      salt = zero;
      salt_len = 32;
    }
  ref_hmac (salt, salt_len, ikm, ikm_len, prk);
  for (guint i = 1; okm_len > 0; i++)
    {
      g_autoptr(GByteArray) block = g_byte_array_new ();
      guint8 c = i;
      g_byte_array_append (block, t, t_len);
      g_byte_array_append (block, info, info_len);
      g_byte_array_append (block, &c, 1);
      ref_hmac (prk, 32, block->data, block->len, t);
      t_len = 32;
      memcpy (okm, t, MIN (32, okm_len));
      okm += MIN (32, okm_len);
      okm_len -= MIN (32, okm_len);
    }
}

static void
ref_subkey (const gchar *label, guint8 out[32])
{
  ref_hkdf (NULL, 0, master_key, 32, (const guint8 *) label, strlen (label), out, 32);
}

static gboolean
ref_gcm_open (const guint8 key[32], guint32 domain, guint64 index, const guint8 *ad, gsize ad_len,
              guint8 *data, gsize len, const guint8 *tag)
{
  gcry_cipher_hd_t hd;
  guint8 nonce[12];
  gboolean ok;

  for (guint i = 0; i < 4; i++)
    nonce[i] = domain >> (24 - 8 * i);
  for (guint i = 0; i < 8; i++)
    nonce[4 + i] = index >> (56 - 8 * i);
  g_assert_cmpint (gcry_cipher_open (&hd, GCRY_CIPHER_AES256, GCRY_CIPHER_MODE_GCM, 0), ==, 0);
  g_assert_cmpint (gcry_cipher_setkey (hd, key, 32), ==, 0);
  g_assert_cmpint (gcry_cipher_setiv (hd, nonce, 12), ==, 0);
  g_assert_cmpint (gcry_cipher_authenticate (hd, ad, ad_len), ==, 0);
  g_assert_cmpint (gcry_cipher_decrypt (hd, data, len, NULL, 0), ==, 0);
  ok = gcry_cipher_checktag (hd, tag, 16) == 0;
  gcry_cipher_close (hd);
  return ok;
}

static guint32
be32 (const guint8 *p)
{
  return (guint32) p[0] << 24 | (guint32) p[1] << 16 | (guint32) p[2] << 8 | p[3];
}

/* Decodes a sealed object following docs/format.md, step by step, with
 * zlib's own inflate; @encodings (may be NULL) gets each chunk's encoding byte. */
static void
ref_open_object (GBytes *sealed, GBytes **header, GBytes **plain, GByteArray *encodings)
{
  gsize len = 0;
  const guint8 *d = g_bytes_get_data (sealed, &len);
  guint8 content[32], object_key[32];
  guint8 info[20 + 16];
  gsize pos = PREAMBLE;
  guint32 hlen;
  g_autofree guint8 *buf = NULL;
  GByteArray *out = g_byte_array_new ();
  gboolean last = FALSE;

  g_assert_cmpuint (len, >=, PREAMBLE + 4);
  g_assert_cmpmem (d, 4, "FSO1", 4);
  g_assert_cmpuint (d[4], ==, 1);
  ref_subkey ("foldersync v1 content", content);
  memcpy (info, "foldersync v1 object", 20);
  memcpy (info + 20, d + 8, 16);
  ref_hkdf (NULL, 0, content, 32, info, sizeof info, object_key, 32);

  hlen = be32 (d + pos);
  pos += 4;
  buf = g_memdup2 (d + pos, hlen);
  g_assert_true (ref_gcm_open (object_key, 0, 0, d, PREAMBLE, buf, hlen - 16, buf + hlen - 16));
  *header = g_bytes_new (buf, hlen - 16);
  g_clear_pointer (&buf, g_free);
  pos += hlen;

  for (guint64 index = 0; !last; index++)
    {
      guint32 frame = be32 (d + pos);
      guint32 clen = frame & 0x7fffffff;
      guint8 ad[PREAMBLE + 9];

      last = (frame & 0x80000000u) != 0;
      pos += 4;
      g_assert_cmpuint (pos + clen, <=, len);
      buf = g_memdup2 (d + pos, clen);
      memcpy (ad, d, PREAMBLE);
      for (guint i = 0; i < 8; i++)
        ad[PREAMBLE + i] = index >> (56 - 8 * i);
      ad[PREAMBLE + 8] = last;
      g_assert_true (ref_gcm_open (object_key, 1, index, ad, sizeof ad, buf, clen - 16,
                                   buf + clen - 16));
      if (encodings != NULL)
        g_byte_array_append (encodings, buf, 1);
      if (buf[0] == 0)
        {
          g_assert_true (last || clen - 17 == CHUNK);
          g_byte_array_append (out, buf + 1, clen - 17);
        }
      else
        {
          g_autofree guint8 *inflated = g_malloc (CHUNK);
          uLongf ilen = CHUNK;
          g_assert_cmpuint (buf[0], ==, 1);
          g_assert_cmpint (uncompress (inflated, &ilen, buf + 1, clen - 17), ==, Z_OK);
          g_assert_true (last || ilen == CHUNK);
          g_byte_array_append (out, inflated, ilen);
        }
      g_clear_pointer (&buf, g_free);
      pos += clen;
    }
  g_assert_cmpuint (pos, ==, len);
  *plain = g_byte_array_free_to_bytes (out);
}

static void
ref_gcm_seal (const guint8 key[32], guint32 domain, guint64 index, const guint8 *ad, gsize ad_len,
              guint8 *data, gsize len, guint8 *tag)
{
  gcry_cipher_hd_t hd;
  guint8 nonce[12];

  for (guint i = 0; i < 4; i++)
    nonce[i] = domain >> (24 - 8 * i);
  for (guint i = 0; i < 8; i++)
    nonce[4 + i] = index >> (56 - 8 * i);
  g_assert_cmpint (gcry_cipher_open (&hd, GCRY_CIPHER_AES256, GCRY_CIPHER_MODE_GCM, 0), ==, 0);
  g_assert_cmpint (gcry_cipher_setkey (hd, key, 32), ==, 0);
  g_assert_cmpint (gcry_cipher_setiv (hd, nonce, 12), ==, 0);
  g_assert_cmpint (gcry_cipher_authenticate (hd, ad, ad_len), ==, 0);
  g_assert_cmpint (gcry_cipher_encrypt (hd, data, len, NULL, 0), ==, 0);
  g_assert_cmpint (gcry_cipher_gettag (hd, tag, 16), ==, 0);
  gcry_cipher_close (hd);
}

static void
put_be32 (guint8 *p, guint32 v)
{
  for (guint i = 0; i < 4; i++)
    p[i] = v >> (24 - 8 * i);
}

/* Seals an object following docs/format.md, with zlib's own compress2 at
 * level 1 and the compression rule: with zlib itself, this reproduces the
 * object vectors byte for byte, whatever encoder the plugin uses. */
static GBytes *
ref_seal_object (const guint8 nonce[16], GBytes *header, GBytes *plain)
{
  gsize hlen = 0, plen = 0;
  const guint8 *h = g_bytes_get_data (header, &hlen);
  const guint8 *p = g_bytes_get_data (plain, &plen);
  GByteArray *out = g_byte_array_new ();
  guint8 content[32], object_key[32];
  guint8 info[20 + 16];
  guint8 preamble[PREAMBLE] = { 'F', 'S', 'O', '1', 1, 0, 0, 0 };
  g_autofree guint8 *buf = g_malloc (4 + 1 + compressBound (CHUNK) + 16);
  gint mode = 0; /* 0 probe, 1 on, 2 off */
  gsize pos = 0;

  memcpy (preamble + 8, nonce, 16);
  ref_subkey ("foldersync v1 content", content);
  memcpy (info, "foldersync v1 object", 20);
  memcpy (info + 20, nonce, 16);
  ref_hkdf (NULL, 0, content, 32, info, sizeof info, object_key, 32);

  g_byte_array_append (out, preamble, PREAMBLE);
  put_be32 (buf, hlen + 16);
  memcpy (buf + 4, h, hlen);
  ref_gcm_seal (object_key, 0, 0, preamble, PREAMBLE, buf + 4, hlen, buf + 4 + hlen);
  g_byte_array_append (out, buf, 4 + hlen + 16);

  for (guint64 index = 0;; index++)
    {
      gsize n = MIN (CHUNK, plen - pos);
      gboolean last = pos + n == plen;
      gsize dlen = n;
      guint8 ad[PREAMBLE + 9];

      buf[4] = 0;
      memcpy (buf + 5, p + pos, n);
      if (n > 0 && mode != 2)
        {
          uLongf zlen = compressBound (CHUNK);
          g_autofree guint8 *z = g_malloc (zlen);
          g_assert_cmpint (compress2 (z, &zlen, p + pos, n, 1), ==, Z_OK);
          if (zlen < n)
            {
              buf[4] = 1;
              memcpy (buf + 5, z, zlen);
              dlen = zlen;
            }
          if (mode == 0)
            mode = buf[4] == 1 ? 1 : 2;
        }
      memcpy (ad, preamble, PREAMBLE);
      for (guint i = 0; i < 8; i++)
        ad[PREAMBLE + i] = index >> (56 - 8 * i);
      ad[PREAMBLE + 8] = last;
      ref_gcm_seal (object_key, 1, index, ad, sizeof ad, buf + 4, 1 + dlen, buf + 5 + dlen);
      put_be32 (buf, (1 + dlen + 16) | (last ? 0x80000000u : 0));
      g_byte_array_append (out, buf, 4 + 1 + dlen + 16);
      pos += n;
      if (last)
        break;
    }
  return g_byte_array_free_to_bytes (out);
}

/* ---------- docs/format.md vectors ---------- */

/* Lines "vector NAME: VALUE"; a name repeated on several lines continues its value. */

static GBytes *
vec_bytes (GHashTable *vectors, const gchar *name)
{
  return hex_decode (fs_test_vector (vectors, name));
}

static gboolean
printing_vectors (void)
{
  return g_getenv ("FOLDERSYNC_PRINT_VECTORS") != NULL;
}

static void
print_hex_vector (const gchar *name, GBytes *bytes)
{
  g_autofree gchar *hex = bytes_hex (bytes);
  gsize len = strlen (hex);
  if (len == 0)
    g_print ("vector %s: \n", name);
  for (gsize i = 0; i < len; i += 64)
    g_print ("vector %s: %.*s\n", name, (int) MIN (64, len - i), hex + i);
}

/* ---------- tests ---------- */

static void
test_hkdf_rfc5869 (void)
{
  /* RFC 5869 A.1 (test case 1) and A.3 (test case 3: empty salt and info,
   * the salt rule FolderSync uses). */
  g_autoptr(GBytes) ikm = hex_decode ("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b");
  g_autoptr(GBytes) salt = hex_decode ("000102030405060708090a0b0c");
  g_autoptr(GBytes) info = hex_decode ("f0f1f2f3f4f5f6f7f8f9");
  guint8 okm[42];
  g_autofree gchar *hex1 = NULL;
  g_autofree gchar *hex3 = NULL;
  g_autofree gchar *plugin_path = NULL;
  GModule *module;
  gpointer symbol = NULL;

  ref_hkdf (g_bytes_get_data (salt, NULL), g_bytes_get_size (salt), g_bytes_get_data (ikm, NULL),
            g_bytes_get_size (ikm), g_bytes_get_data (info, NULL), g_bytes_get_size (info), okm,
            42);
  hex1 = hex_encode (okm, 42);
  g_assert_cmpstr (hex1, ==,
                   "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");
  ref_hkdf (NULL, 0, g_bytes_get_data (ikm, NULL), g_bytes_get_size (ikm), NULL, 0, okm, 42);
  hex3 = hex_encode (okm, 42);
  g_assert_cmpstr (hex3, ==,
                   "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8");

  /* The plugin's own HKDF, when its symbols are visible (default build). */
  g_object_unref (new_crypto (NULL)); /* makes sure the module is loaded */
  for (guint i = 0; plugin_path == NULL; i++)
    {
      g_auto(GStrv) dirs = g_strsplit (g_getenv ("FOLDERSYNC_PLUGIN_DIR"), ":", -1);
      g_autofree gchar *p = NULL;
      if (dirs[i] == NULL)
        break;
      p = g_build_filename (dirs[i], "crypto-aes.so", NULL);
      if (g_file_test (p, G_FILE_TEST_EXISTS))
        plugin_path = g_steal_pointer (&p);
    }
  g_assert_nonnull (plugin_path);
  module = g_module_open (plugin_path, G_MODULE_BIND_LAZY | G_MODULE_BIND_LOCAL);
  g_assert_nonnull (module);
  if (g_module_symbol (module, "fs_crypto_hkdf_sha256", &symbol) && symbol != NULL)
    {
      void (*hkdf) (const guint8 *, gsize, const guint8 *, gsize, const guint8 *, gsize, guint8 *,
                    gsize) = (void (*) (const guint8 *, gsize, const guint8 *, gsize,
                                        const guint8 *, gsize, guint8 *, gsize)) symbol;
      g_autofree gchar *p1 = NULL;
      g_autofree gchar *p3 = NULL;

      hkdf (g_bytes_get_data (salt, NULL), g_bytes_get_size (salt), g_bytes_get_data (ikm, NULL),
            g_bytes_get_size (ikm), g_bytes_get_data (info, NULL), g_bytes_get_size (info), okm,
            42);
      p1 = hex_encode (okm, 42);
      g_assert_cmpstr (p1, ==, hex1);
      hkdf (NULL, 0, g_bytes_get_data (ikm, NULL), g_bytes_get_size (ikm), NULL, 0, okm, 42);
      p3 = hex_encode (okm, 42);
      g_assert_cmpstr (p3, ==, hex3);
    }
  else
    g_test_message ("plugin HKDF symbol not visible; checked through the vectors only");
  g_module_close (module);
}

static void
test_vectors_keys (void)
{
  g_autoptr(GHashTable) v = fs_test_load_vectors ();
  g_autoptr(FsCrypto) crypto = new_crypto (master_key);
  static const struct {
    const gchar *name;
    const gchar *label;
  } subkeys[] = {
    { "subkey-content", "foldersync v1 content" },
    { "subkey-names", "foldersync v1 names" },
    { "subkey-journal", "foldersync v1 journal" },
    { "subkey-key-id", "foldersync v1 key-id" },
  };
  guint8 key_id_key[32], names_key[32], mac[32];
  g_autofree gchar *master_hex = hex_encode (master_key, 32);
  g_autofree gchar *key_id = fs_crypto_get_key_id (crypto);
  g_autofree gchar *ref_key_id = NULL;
  const gchar *stem_path;
  g_autofree gchar *stem = NULL;

  if (!printing_vectors ())
    g_assert_cmpstr (fs_test_vector (v, "master-key"), ==, master_hex);
  for (guint i = 0; i < G_N_ELEMENTS (subkeys); i++)
    {
      guint8 sk[32];
      g_autofree gchar *hex = NULL;
      ref_subkey (subkeys[i].label, sk);
      hex = hex_encode (sk, 32);
      if (printing_vectors ())
        g_print ("vector %s: %s\n", subkeys[i].name, hex);
      else
        g_assert_cmpstr (fs_test_vector (v, subkeys[i].name), ==, hex);
    }

  ref_subkey ("foldersync v1 key-id", key_id_key);
  ref_hmac (key_id_key, 32, (const guint8 *) "foldersync key-id", 17, mac);
  ref_key_id = hex_encode (mac, 16);
  g_assert_cmpstr (key_id, ==, ref_key_id);
  g_assert_cmpuint (strlen (key_id), ==, 32);

  stem_path = printing_vectors () ? "Notes/hello.txt" : fs_test_vector (v, "stem-path");
  stem = fs_crypto_object_stem (crypto, stem_path);
  ref_subkey ("foldersync v1 names", names_key);
  ref_hmac (names_key, 32, (const guint8 *) stem_path, strlen (stem_path), mac);
  g_assert_cmpuint (strlen (stem), ==, 52);
  for (const gchar *p = stem; *p; p++)
    g_assert_true ((*p >= 'a' && *p <= 'z') || (*p >= '2' && *p <= '7'));
  if (printing_vectors ())
    {
      g_print ("vector key-id: %s\n", key_id);
      g_print ("vector stem-path: %s\n", stem_path);
      g_print ("vector stem: %s\n", stem);
      return;
    }
  g_assert_cmpstr (fs_test_vector (v, "key-id"), ==, key_id);
  g_assert_cmpstr (fs_test_vector (v, "stem"), ==, stem);
  {
    /* The stem is base32 of the full HMAC: check the first 5 bytes by hand. */
    static const gchar alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";
    guint64 bits = 0;
    for (guint i = 0; i < 5; i++)
      bits = bits << 8 | mac[i];
    for (guint i = 0; i < 8; i++)
      g_assert_cmpint (stem[i], ==, alphabet[(bits >> (35 - 5 * i)) & 31]);
  }
}

static void
check_object_vector (GHashTable *v, FsCrypto *crypto, const gchar *prefix, gboolean exact_zlib)
{
  g_autofree gchar *n_nonce = g_strconcat (prefix, "-nonce", NULL);
  g_autofree gchar *n_header = g_strconcat (prefix, "-header", NULL);
  g_autofree gchar *n_plain = g_strconcat (prefix, "-plaintext", NULL);
  g_autofree gchar *n_sealed = g_strconcat (prefix, "-sealed", NULL);
  g_autoptr(GBytes) nonce = vec_bytes (v, n_nonce);
  g_autoptr(GBytes) header = vec_bytes (v, n_header);
  g_autoptr(GBytes) plain = vec_bytes (v, n_plain);
  g_autoptr(GBytes) sealed = NULL;
  g_autoptr(GBytes) mine = NULL;
  g_autoptr(GBytes) reference = NULL;
  g_autoptr(GBytes) got_header = NULL;
  g_autoptr(GBytes) got_plain = NULL;
  g_autoptr(GBytes) ref_header = NULL;
  g_autoptr(GBytes) ref_plain = NULL;
  g_autoptr(GBytes) my_header = NULL;
  g_autoptr(GBytes) my_plain = NULL;
  g_autoptr(GByteArray) vec_encodings = g_byte_array_new ();
  g_autoptr(GByteArray) my_encodings = g_byte_array_new ();
  g_autoptr(GError) error = NULL;
  gsize head_len = PREAMBLE + 4 + g_bytes_get_size (header) + 16;

  g_assert_cmpuint (g_bytes_get_size (nonce), ==, 16);
  mine = seal_bytes (crypto, header, plain, g_bytes_get_data (nonce, NULL));
  reference = ref_seal_object (g_bytes_get_data (nonce, NULL), header, plain);
  if (printing_vectors ())
    {
      /* The vectors are the format's: made by the reference encoder (zlib). */
      print_hex_vector (n_sealed, reference);
      return;
    }
  sealed = vec_bytes (v, n_sealed);

  /* The vector is what docs/format.md says, byte for byte, independently of
   * the plugin (compressed chunks: only with zlib itself). */
  if (exact_zlib)
    assert_bytes_equal (reference, sealed);
  else
    g_test_message ("zlib %s is not zlib: the reference encoder's %s compared by decoding only",
                    zlibVersion (), prefix);
  ref_open_object (sealed, &ref_header, &ref_plain, vec_encodings);
  assert_bytes_equal (ref_header, header);
  assert_bytes_equal (ref_plain, plain);

  /* The plugin's output: the same bytes, or (its encoder is igzip, not
   * zlib) the same object but for the bytes inside its compressed chunks,
   * which zlib must inflate to the plaintext. Never skipped. */
  ref_open_object (mine, &my_header, &my_plain, my_encodings);
  assert_bytes_equal (my_header, header);
  assert_bytes_equal (my_plain, plain);
  g_assert_cmpmem (my_encodings->data, my_encodings->len, vec_encodings->data,
                   vec_encodings->len);
  g_assert_cmpuint (g_bytes_get_size (mine), >=, head_len);
  g_assert_cmpmem (g_bytes_get_data (mine, NULL), head_len, g_bytes_get_data (sealed, NULL),
                   head_len);
  if (memchr (vec_encodings->data, 1, vec_encodings->len) == NULL)
    assert_bytes_equal (mine, sealed);
  else if (g_bytes_equal (mine, sealed))
    g_test_message ("%s: the plugin reproduces the vector byte for byte", prefix);
  else
    g_test_message ("%s: the plugin's deflate encoder made other (valid) bytes, checked by "
                    "decoding with zlib",
                    prefix);

  g_assert_true (open_bytes (crypto, sealed, &got_header, &got_plain, 0, &error));
  g_assert_no_error (error);
  assert_bytes_equal (got_header, header);
  assert_bytes_equal (got_plain, plain);
}

static void
test_vectors_object (void)
{
  g_autoptr(GHashTable) v = fs_test_load_vectors ();
  g_autoptr(FsCrypto) crypto = new_crypto (master_key);
  /* zlib-ng and friends compress to other (valid) bytes. */
  gboolean exact = strstr (zlibVersion (), "ng") == NULL;

  if (printing_vectors ())
    {
      g_print ("(plaintexts/headers as in the docs)\n");
    }
  check_object_vector (v, crypto, "object-raw", TRUE);
  check_object_vector (v, crypto, "object-zlib", exact);
  if (!printing_vectors ())
    {
      /* The vectors really cover both encodings. */
      g_autoptr(GBytes) raw = vec_bytes (v, "object-raw-sealed");
      g_autoptr(GBytes) z = vec_bytes (v, "object-zlib-sealed");
      gsize rl = 0, zl = 0;
      const guint8 *rd = g_bytes_get_data (raw, &rl);
      const guint8 *zd = g_bytes_get_data (z, &zl);
      g_autoptr(GBytes) zplain = vec_bytes (v, "object-zlib-plaintext");
      g_autoptr(GBytes) rplain = vec_bytes (v, "object-raw-plaintext");
      g_autoptr(GBytes) rhdr = vec_bytes (v, "object-raw-header");
      g_autoptr(GBytes) zhdr = vec_bytes (v, "object-zlib-header");
      g_assert_true (rd != NULL && zd != NULL);
      g_assert_cmpuint (rl, ==, PREAMBLE + 4 + g_bytes_get_size (rhdr) + 16 + CHUNK_OVERHEAD +
                                  g_bytes_get_size (rplain));
      g_assert_cmpuint (zl, <, PREAMBLE + 4 + g_bytes_get_size (zhdr) + 16 + CHUNK_OVERHEAD +
                                 g_bytes_get_size (zplain));
    }
}

static void
test_vectors_record (void)
{
  g_autoptr(GHashTable) v = fs_test_load_vectors ();
  g_autoptr(FsCrypto) crypto = new_crypto (master_key);
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) plain = NULL;
  g_autoptr(GBytes) sealed = NULL;
  g_autoptr(GBytes) opened = NULL;
  g_autoptr(GBytes) wrong = NULL;
  const gchar *context;

  if (printing_vectors ())
    {
      g_autoptr(GBytes) p = g_bytes_new_static ("{\"path\":\"Notes/hello.txt\",\"version\":\"v1\"}",
                                                41);
      g_autoptr(GBytes) s = fs_crypto_seal_record (crypto, p, ".journal/dev1/0000000000000001",
                                                   &error);
      g_assert_no_error (error);
      g_print ("vector record-context: .journal/dev1/0000000000000001\n");
      print_hex_vector ("record-plaintext", p);
      print_hex_vector ("record-sealed", s);
      return;
    }
  context = fs_test_vector (v, "record-context");
  plain = vec_bytes (v, "record-plaintext");
  sealed = vec_bytes (v, "record-sealed");
  opened = fs_crypto_open_record (crypto, sealed, context, &error);
  g_assert_no_error (error);
  assert_bytes_equal (opened, plain);
  wrong = fs_crypto_open_record (crypto, sealed, ".journal/dev1/0000000000000002", &error);
  g_assert_null (wrong);
  g_assert_error (error, FS_CRYPTO_ERROR, FS_CRYPTO_ERROR_CORRUPT);

  {
    /* By hand: "FSR1" || nonce || ct || tag under the journal subkey, AD "FSR1" || context. */
    gsize len = 0;
    const guint8 *d = g_bytes_get_data (sealed, &len);
    guint8 journal[32];
    g_autofree guint8 *buf = g_memdup2 (d + 16, len - 32);
    g_autofree gchar *ad = g_strconcat ("FSR1", context, NULL);
    gcry_cipher_hd_t hd;

    g_assert_cmpmem (d, 4, "FSR1", 4);
    ref_subkey ("foldersync v1 journal", journal);
    g_assert_cmpint (gcry_cipher_open (&hd, GCRY_CIPHER_AES256, GCRY_CIPHER_MODE_GCM, 0), ==, 0);
    gcry_cipher_setkey (hd, journal, 32);
    gcry_cipher_setiv (hd, d + 4, 12);
    gcry_cipher_authenticate (hd, ad, strlen (ad));
    gcry_cipher_decrypt (hd, buf, len - 32, NULL, 0);
    g_assert_cmpint (gcry_cipher_checktag (hd, d + len - 16, 16), ==, 0);
    gcry_cipher_close (hd);
    g_assert_cmpmem (buf, len - 32, g_bytes_get_data (plain, NULL), g_bytes_get_size (plain));
  }
}

static void
test_key_invalid (void)
{
  g_autoptr(FsCrypto) crypto = new_crypto (NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) header = g_bytes_new_static ("h", 1);
  g_autoptr(GBytes) plain = g_bytes_new_static ("p", 1);
  g_autoptr(GInputStream) source = g_memory_input_stream_new_from_bytes (plain);
  g_autoptr(GInputStream) sealed = NULL;

  g_assert_false (fs_crypto_set_key (crypto, master_key, 16, &error));
  g_assert_error (error, FS_CRYPTO_ERROR, FS_CRYPTO_ERROR_INVALID_KEY);
  g_clear_error (&error);
  g_assert_false (fs_crypto_set_key (crypto, master_key, 33, &error));
  g_assert_error (error, FS_CRYPTO_ERROR, FS_CRYPTO_ERROR_INVALID_KEY);
  g_clear_error (&error);
  g_assert_false (fs_crypto_set_key (crypto, master_key, 0, &error));
  g_assert_error (error, FS_CRYPTO_ERROR, FS_CRYPTO_ERROR_INVALID_KEY);
  g_clear_error (&error);
  /* Without a key, nothing is sealed. */
  sealed = fs_crypto_seal_stream (crypto, header, source, NULL, &error);
  g_assert_null (sealed);
  g_assert_error (error, FS_CRYPTO_ERROR, FS_CRYPTO_ERROR_INVALID_KEY);
}

static void
roundtrip (FsCrypto *crypto, GBytes *plain, gboolean expect_raw, const gchar *what)
{
  g_autoptr(GBytes) header = g_bytes_new_static ("{\"path\":\"a/b.txt\",\"size\":1}\0\xff", 30);
  g_autoptr(GBytes) sealed = seal_bytes (crypto, header, plain, NULL);
  g_autoptr(GBytes) got_header = NULL;
  g_autoptr(GBytes) got_plain = NULL;
  g_autoptr(GError) error = NULL;
  gsize size = g_bytes_get_size (plain);
  gsize chunks = size == 0 ? 1 : (size + CHUNK - 1) / CHUNK;
  gsize raw_size = PREAMBLE + 4 + 30 + 16 + chunks * CHUNK_OVERHEAD + size;

  g_test_message ("%s: %" G_GSIZE_FORMAT " → %" G_GSIZE_FORMAT " bytes", what, size,
                  g_bytes_get_size (sealed));
  if (expect_raw)
    g_assert_cmpuint (g_bytes_get_size (sealed), ==, raw_size);
  else
    g_assert_cmpuint (g_bytes_get_size (sealed), <, size / 2);
  g_assert_true (open_bytes (crypto, sealed, &got_header, &got_plain, g_test_rand_int (), &error));
  g_assert_no_error (error);
  assert_bytes_equal (got_header, header);
  assert_bytes_equal (got_plain, plain);
}

static void
test_object_roundtrip (void)
{
  g_autoptr(FsCrypto) crypto = new_crypto (master_key);
  g_autoptr(GBytes) empty = g_bytes_new_static ("", 0);
  g_autoptr(GBytes) one = g_bytes_new_static ("x", 1);
  g_autoptr(GBytes) one_mib = random_bytes (CHUNK, 1);
  g_autoptr(GBytes) one_mib_1 = random_bytes (CHUNK + 1, 2);
  g_autoptr(GBytes) text = text_like (3 * CHUNK + CHUNK / 2, 3);
  g_autoptr(GBytes) text_1mib = text_like (CHUNK, 4);
  g_autoptr(GBytes) random = random_bytes (3 * CHUNK + CHUNK / 2, 5);

  roundtrip (crypto, empty, TRUE, "empty");
  roundtrip (crypto, one, TRUE, "1 byte");
  roundtrip (crypto, one_mib, TRUE, "1 MiB random");
  roundtrip (crypto, text_1mib, FALSE, "1 MiB text");
  roundtrip (crypto, one_mib_1, TRUE, "1 MiB + 1 random");
  roundtrip (crypto, text, FALSE, "3.5 MiB text");
  roundtrip (crypto, random, TRUE, "3.5 MiB random");
}

static void
test_object_probe (void)
{
  g_autoptr(FsCrypto) crypto = new_crypto (master_key);
  g_autoptr(GBytes) rnd = random_bytes (CHUNK, 7);
  g_autoptr(GBytes) text = text_like (2 * CHUNK + 100, 8);
  g_autoptr(GBytes) rnd_then_text = concat (rnd, text);
  g_autoptr(GBytes) text_then_rnd = concat (text, rnd);

  /* A first chunk that does not shrink turns compression off for the whole
   * object: the text after it is stored raw (exactly the raw size), also in
   * the chunks the workers seal. */
  roundtrip (crypto, rnd_then_text, TRUE, "random then text");
  {
    g_autoptr(GBytes) long_text = text_like (9 * CHUNK + 3, 18);
    g_autoptr(GBytes) rnd_then_long_text = concat (rnd, long_text);
    roundtrip (crypto, rnd_then_long_text, TRUE, "random then 9 MiB of text");
  }
  /* A first chunk that shrinks keeps it on; a later chunk that does not
   * shrink is stored raw; all of it comes back. */
  {
    g_autoptr(GBytes) header = g_bytes_new_static ("", 0);
    g_autoptr(GBytes) sealed = seal_bytes (crypto, header, text_then_rnd, NULL);
    g_autoptr(GBytes) plain = NULL;
    g_autoptr(GError) error = NULL;
    gsize size = g_bytes_get_size (text_then_rnd);
    g_assert_cmpuint (g_bytes_get_size (sealed), <, size - CHUNK);
    g_assert_true (open_bytes (crypto, sealed, NULL, &plain, 1, &error));
    g_assert_no_error (error);
    assert_bytes_equal (plain, text_then_rnd);
  }
}

static void
test_object_nonce (void)
{
  g_autoptr(FsCrypto) crypto = new_crypto (master_key);
  g_autoptr(GBytes) header = g_bytes_new_static ("h", 1);
  g_autoptr(GBytes) plain = g_bytes_new_static ("same plaintext", 14);
  g_autoptr(GBytes) a = seal_bytes (crypto, header, plain, NULL);
  g_autoptr(GBytes) b = seal_bytes (crypto, header, plain, NULL);
  static const guint8 nonce[16] = { 1 };
  g_autoptr(GBytes) c = seal_bytes (crypto, header, plain, nonce);
  g_autoptr(GBytes) d = seal_bytes (crypto, header, plain, nonce);

  /* Random object nonces: two seals of one plaintext differ; a fixed one is deterministic. */
  g_assert_false (g_bytes_equal (a, b));
  g_assert_true (g_bytes_equal (c, d));
}

static GBytes *
small_sealed (FsCrypto *crypto)
{
  g_autoptr(GBytes) header = g_bytes_new_static ("{\"path\":\"x\"}", 12);
  g_autoptr(GBytes) plain = text_like (300, 9);
  GBytes *sealed = seal_bytes (crypto, header, plain, NULL);

  /* Compressed, so tampering covers the zlib path too (the other object is raw). */
  g_assert_cmpuint (g_bytes_get_size (sealed), <, PREAMBLE + 4 + 12 + 16 + CHUNK_OVERHEAD + 300);
  return sealed;
}

static void
test_object_tamper_every_byte (void)
{
  g_autoptr(FsCrypto) crypto = new_crypto (master_key);
  g_autoptr(GBytes) header = g_bytes_new_static ("hdr", 3);
  g_autoptr(GBytes) raw_plain = g_bytes_new_static ("hello, world\n", 13);
  GBytes *objects[2];

  objects[0] = small_sealed (crypto);
  objects[1] = seal_bytes (crypto, header, raw_plain, NULL);
  for (guint o = 0; o < G_N_ELEMENTS (objects); o++)
    {
      gsize len = 0;
      const guint8 *d = g_bytes_get_data (objects[o], &len);
      g_assert_true (open_bytes (crypto, objects[o], NULL, NULL, 0, NULL));
      for (gsize i = 0; i < len; i++)
        {
          static const guint8 masks[] = { 0x01, 0x80, 0xff };
          for (guint m = 0; m < G_N_ELEMENTS (masks); m++)
            {
              guint8 *copy = g_memdup2 (d, len);
              g_autoptr(GBytes) bad = NULL;
              g_autofree gchar *what = g_strdup_printf ("object %u, byte %" G_GSIZE_FORMAT
                                                        " ^ 0x%02x", o, i, masks[m]);
              copy[i] ^= masks[m];
              bad = g_bytes_new_take (copy, len);
              assert_corrupt (crypto, bad, what);
            }
        }
      g_bytes_unref (objects[o]);
    }
}

static void
test_object_truncate (void)
{
  g_autoptr(FsCrypto) crypto = new_crypto (master_key);
  g_autoptr(GBytes) sealed = small_sealed (crypto);
  g_autoptr(GBytes) header = g_bytes_new_static ("", 0);
  g_autoptr(GBytes) big_plain = random_bytes (2 * CHUNK + 10, 11);
  g_autoptr(GBytes) big = seal_bytes (crypto, header, big_plain, NULL);
  gsize frame = CHUNK_OVERHEAD + CHUNK;
  gsize first_chunk = PREAMBLE + 4 + 16; /* empty header */
  gsize cuts[] = { 0,
                   1,
                   first_chunk - 1,
                   first_chunk,
                   first_chunk + 2,
                   first_chunk + frame - 1,
                   first_chunk + frame, /* chunk 0 complete, rest gone */
                   first_chunk + 2 * frame, /* the last chunk dropped */
                   first_chunk + 2 * frame + 3,
                   g_bytes_get_size (big) - 1 };

  for (gsize i = 0; i < g_bytes_get_size (sealed); i++)
    {
      g_autoptr(GBytes) cut = g_bytes_new_from_bytes (sealed, 0, i);
      g_autofree gchar *what = g_strdup_printf ("small object cut at %" G_GSIZE_FORMAT, i);
      assert_corrupt (crypto, cut, what);
    }
  for (guint i = 0; i < G_N_ELEMENTS (cuts); i++)
    {
      g_autoptr(GBytes) cut = g_bytes_new_from_bytes (big, 0, cuts[i]);
      g_autofree gchar *what = g_strdup_printf ("3-chunk object cut at %" G_GSIZE_FORMAT, cuts[i]);
      assert_corrupt (crypto, cut, what);
    }
}

/* Splits a sealed object into [preamble+header, chunk frames...]. */
static GPtrArray *
split_frames (GBytes *sealed)
{
  gsize len = 0;
  const guint8 *d = g_bytes_get_data (sealed, &len);
  GPtrArray *parts = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  gsize pos = PREAMBLE + 4 + be32 (d + PREAMBLE);

  g_ptr_array_add (parts, g_bytes_new_from_bytes (sealed, 0, pos));
  while (pos < len)
    {
      gsize flen = 4 + (be32 (d + pos) & 0x7fffffff);
      g_ptr_array_add (parts, g_bytes_new_from_bytes (sealed, pos, flen));
      pos += flen;
    }
  g_assert_cmpuint (pos, ==, len);
  return parts;
}

static GBytes *
join_frames (GPtrArray *parts, const guint *order, guint n)
{
  GByteArray *out = g_byte_array_new ();
  for (guint i = 0; i < n; i++)
    {
      gsize len = 0;
      const guint8 *d = g_bytes_get_data (parts->pdata[order[i]], &len);
      g_byte_array_append (out, d, len);
    }
  return g_byte_array_free_to_bytes (out);
}

static void
test_object_reorder (void)
{
  g_autoptr(FsCrypto) crypto = new_crypto (master_key);
  g_autoptr(GBytes) header = g_bytes_new_static ("h", 1);
  g_autoptr(GBytes) plain = random_bytes (3 * CHUNK + 5, 12);
  g_autoptr(GBytes) sealed = seal_bytes (crypto, header, plain, NULL);
  g_autoptr(GPtrArray) parts = split_frames (sealed);
  static const struct {
    const gchar *what;
    guint order[6];
    guint n;
  } cases[] = {
    { "identity", { 0, 1, 2, 3, 4 }, 5 },
    { "swap chunks 0 and 1", { 0, 2, 1, 3, 4 }, 5 },
    { "swap chunks 1 and 2", { 0, 1, 3, 2, 4 }, 5 },
    { "drop chunk 1", { 0, 1, 3, 4 }, 4 },
    { "drop the last chunk", { 0, 1, 2, 3 }, 4 },
    { "last chunk twice", { 0, 1, 2, 3, 4, 4 }, 6 },
    { "chunk 0 twice", { 0, 1, 1, 2, 3, 4 }, 6 },
    { "last chunk moved first", { 0, 4, 1, 2, 3 }, 5 },
    { "no chunks", { 0 }, 1 },
  };

  g_assert_cmpuint (parts->len, ==, 5);
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GBytes) obj = join_frames (parts, cases[i].order, cases[i].n);
      if (i == 0)
        {
          g_autoptr(GBytes) got = NULL;
          g_assert_true (open_bytes (crypto, obj, NULL, &got, 0, NULL));
          assert_bytes_equal (got, plain);
        }
      else
        assert_corrupt (crypto, obj, cases[i].what);
    }
  {
    /* Data appended after the last chunk. */
    g_autoptr(GBytes) tail = g_bytes_new_static ("\0", 1);
    g_autoptr(GBytes) obj = concat (sealed, tail);
    assert_corrupt (crypto, obj, "one byte appended");
  }
}

static void
test_object_splice (void)
{
  g_autoptr(FsCrypto) crypto = new_crypto (master_key);
  g_autoptr(GBytes) header = g_bytes_new_static ("h", 1);
  g_autoptr(GBytes) plain_a = random_bytes (2 * CHUNK + 5, 13);
  g_autoptr(GBytes) plain_b = random_bytes (2 * CHUNK + 5, 14);
  g_autoptr(GBytes) a = seal_bytes (crypto, header, plain_a, NULL);
  g_autoptr(GBytes) b = seal_bytes (crypto, header, plain_b, NULL);
  g_autoptr(GPtrArray) pa = split_frames (a);
  g_autoptr(GPtrArray) pb = split_frames (b);
  static const guint order[] = { 0, 1, 2, 3 };

  g_assert_cmpuint (pa->len, ==, 4);
  for (guint i = 0; i < 4; i++)
    {
      g_autoptr(GPtrArray) mixed = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
      g_autoptr(GBytes) obj = NULL;
      g_autofree gchar *what = g_strdup_printf ("part %u of another object", i);
      for (guint j = 0; j < 4; j++)
        g_ptr_array_add (mixed, g_bytes_ref (j == i ? pb->pdata[j] : pa->pdata[j]));
      obj = join_frames (mixed, order, 4);
      assert_corrupt (crypto, obj, what);
    }
  {
    /* Another key: the same bytes do not open. */
    guint8 other[32];
    g_autoptr(FsCrypto) other_crypto = NULL;
    memcpy (other, master_key, 32);
    other[31] ^= 1;
    other_crypto = new_crypto (other);
    assert_corrupt (other_crypto, a, "another key");
  }
}

static void
test_object_hostile (void)
{
  g_autoptr(FsCrypto) crypto = new_crypto (master_key);
  g_autoptr(GBytes) sealed = small_sealed (crypto);
  gsize len = 0;
  const guint8 *d = g_bytes_get_data (sealed, &len);
  gsize hlen = be32 (d + PREAMBLE);
  gsize chunk_pos = PREAMBLE + 4 + hlen;
  static const guint32 lengths[] = { 0xffffffffu, 0x7fffffffu, 0x80000000u, 0x00200000u, 0, 15, 16 };

  for (guint i = 0; i < G_N_ELEMENTS (lengths); i++)
    {
      guint8 *copy = g_memdup2 (d, len);
      g_autoptr(GBytes) bad = NULL;
      g_autofree gchar *what = g_strdup_printf ("header length 0x%08x", lengths[i]);
      copy[PREAMBLE] = lengths[i] >> 24;
      copy[PREAMBLE + 1] = lengths[i] >> 16;
      copy[PREAMBLE + 2] = lengths[i] >> 8;
      copy[PREAMBLE + 3] = lengths[i];
      bad = g_bytes_new_take (copy, len);
      assert_corrupt (crypto, bad, what);

      copy = g_memdup2 (d, len);
      copy[chunk_pos] = lengths[i] >> 24;
      copy[chunk_pos + 1] = lengths[i] >> 16;
      copy[chunk_pos + 2] = lengths[i] >> 8;
      copy[chunk_pos + 3] = lengths[i];
      g_bytes_unref (bad);
      bad = g_bytes_new_take (copy, len);
      g_free (what);
      what = g_strdup_printf ("chunk length 0x%08x", lengths[i]);
      assert_corrupt (crypto, bad, what);
    }
  for (guint i = 0; i < 20; i++)
    {
      g_autoptr(GBytes) garbage = random_bytes (g_test_rand_int_range (0, 5000), i + 100);
      assert_corrupt (crypto, garbage, "garbage");
    }
  {
    /* Right magic and version, garbage after. */
    g_autoptr(GBytes) start = g_bytes_new_static ("FSO1\x01\0\0\0", 8);
    g_autoptr(GBytes) rest = random_bytes (4000, 99);
    g_autoptr(GBytes) obj = concat (start, rest);
    assert_corrupt (crypto, obj, "magic then garbage");
  }
}

/* ---------- objects of many chunks: the plugin's worker pipeline ---------- */

/* A source that hands out its bytes in reads of random sizes (1 byte to
 * 70,000) and fails with G_IO_ERROR_FAILED once it gets to offset fail_at. */
#define FS_TYPE_TEST_SOURCE (fs_test_source_get_type ())
G_DECLARE_FINAL_TYPE (FsTestSource, fs_test_source, FS, TEST_SOURCE, GInputStream)

struct _FsTestSource {
  GInputStream parent_instance;
  GBytes *data;
  gsize pos;
  gsize fail_at;
  GRand *rand;
};

G_DEFINE_FINAL_TYPE (FsTestSource, fs_test_source, G_TYPE_INPUT_STREAM)

static gssize
fs_test_source_read (GInputStream *stream, void *buffer, gsize count, GCancellable *cancellable,
                     GError **error)
{
  FsTestSource *self = FS_TEST_SOURCE (stream);
  gsize end = MIN (g_bytes_get_size (self->data), self->fail_at);
  gsize n = (gsize) g_rand_int_range (self->rand, 1, 70000);

  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    return -1;
  if (self->pos >= self->fail_at)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_FAILED, "the test source fails here");
      return -1;
    }
  n = MIN (MIN (n, count), end - self->pos);
  memcpy (buffer, (const guint8 *) g_bytes_get_data (self->data, NULL) + self->pos, n);
  self->pos += n;
  return n;
}

static void
fs_test_source_finalize (GObject *object)
{
  FsTestSource *self = FS_TEST_SOURCE (object);

  g_bytes_unref (self->data);
  g_rand_free (self->rand);
  G_OBJECT_CLASS (fs_test_source_parent_class)->finalize (object);
}

static void
fs_test_source_class_init (FsTestSourceClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = fs_test_source_finalize;
  G_INPUT_STREAM_CLASS (klass)->read_fn = fs_test_source_read;
}

static void
fs_test_source_init (FsTestSource *self)
{
}

static GInputStream *
test_source_new (GBytes *data, guint32 seed, gsize fail_at)
{
  FsTestSource *self = g_object_new (FS_TYPE_TEST_SOURCE, NULL);

  self->data = g_bytes_ref (data);
  self->rand = g_rand_new_with_seed (seed);
  self->fail_at = fail_at;
  return G_INPUT_STREAM (self);
}

/* @size bytes of text and random runs: 1.5 MiB of text first (the object is
 * compressed), then 2.5 MiB of random data (chunks 2 and 3 stay raw), then
 * runs of random lengths: chunks of text, of random data and of both. */
static GBytes *
mixed_bytes (gsize size, guint32 seed)
{
  GByteArray *out = g_byte_array_sized_new (size + 2 * CHUNK);
  GRand *rand = g_rand_new_with_seed (seed);

  for (guint i = 0; out->len < size; i++)
    {
      gsize run = i == 0   ? CHUNK + CHUNK / 2
                  : i == 1 ? 2 * CHUNK + CHUNK / 2
                           : (gsize) g_rand_int_range (rand, 1000, 2 * CHUNK);
      g_autoptr(GBytes) part = i % 2 == 0 ? text_like (run, seed + i)
                                          : random_bytes (run, seed + i);
      g_byte_array_append (out, g_bytes_get_data (part, NULL), run);
    }
  g_byte_array_set_size (out, size);
  g_rand_free (rand);
  return g_byte_array_free_to_bytes (out);
}

/* Reads @stream in reads of random sizes until its end, its first error or
 * @limit bytes; everything it returned is appended to @got. */
static gboolean
read_some (GInputStream *stream, guint32 seed, gsize limit, GByteArray *got,
           GCancellable *cancellable, GError **error)
{
  g_autofree guint8 *buf = g_malloc (300000);
  GRand *rand = g_rand_new_with_seed (seed);
  gboolean ok = TRUE;

  while (got->len < limit)
    {
      gsize want = (gsize) g_rand_int_range (rand, 1, 300000);
      gssize n = g_input_stream_read (stream, buf, MIN (want, limit - got->len), cancellable,
                                      error);
      if (n < 0)
        {
          ok = FALSE;
          break;
        }
      if (n == 0)
        break;
      g_byte_array_append (got, buf, n);
    }
  g_rand_free (rand);
  return ok;
}

static GBytes *
seal_from (FsCrypto *crypto, GBytes *header, GInputStream *source, const guint8 *nonce,
           guint32 seed)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GInputStream) sealed = fs_crypto_seal_stream (crypto, header, source, nonce, &error);
  GByteArray *got = g_byte_array_new ();

  g_assert_no_error (error);
  g_assert_true (read_some (sealed, seed, G_MAXSIZE, got, NULL, &error));
  g_assert_no_error (error);
  g_assert_true (g_input_stream_close (sealed, NULL, &error));
  g_assert_no_error (error);
  return g_byte_array_free_to_bytes (got);
}

static GBytes *
open_from (FsCrypto *crypto, GInputStream *source, guint32 seed)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GInputStream) opened = fs_crypto_open_stream (crypto, source, NULL, NULL, &error);
  GByteArray *got = g_byte_array_new ();

  g_assert_no_error (error);
  g_assert_true (read_some (opened, seed, G_MAXSIZE, got, NULL, &error));
  g_assert_no_error (error);
  return g_byte_array_free_to_bytes (got);
}

static void
test_object_multi_chunk (void)
{
  g_autoptr(FsCrypto) crypto = new_crypto (master_key);
  g_autoptr(GBytes) header = g_bytes_new_static ("{\"path\":\"big.bin\"}", 18);
  static const guint8 nonce[16] = { 7, 7, 7 };
  static const struct {
    const gchar *what;
    gsize size;
  } cases[] = {
    { "20 MiB mixed, ending at a chunk boundary", 20 * CHUNK },
    { "20 MiB + 1 byte mixed", 20 * CHUNK + 1 },
    { "20 MiB - 1 byte mixed", 20 * CHUNK - 1 },
    { "2 chunks mixed", 2 * CHUNK },
    { "1 chunk + 1 byte mixed", CHUNK + 1 },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      gsize size = cases[i].size;
      g_autoptr(GBytes) plain = mixed_bytes (size, 40 + i);
      g_autoptr(GInputStream) source = test_source_new (plain, 50 + i, G_MAXSIZE);
      g_autoptr(GBytes) sealed = seal_bytes (crypto, header, plain, nonce);
      g_autoptr(GBytes) sealed_odd = seal_from (crypto, header, source, nonce, 60 + i);
      g_autoptr(GByteArray) encodings = g_byte_array_new ();
      g_autoptr(GBytes) ref_header = NULL;
      g_autoptr(GBytes) ref_plain = NULL;
      g_autoptr(GBytes) got = NULL;
      g_autoptr(GBytes) got_odd = NULL;
      g_autoptr(GInputStream) sealed_source = NULL;
      g_autoptr(GError) error = NULL;
      gsize chunks = (size + CHUNK - 1) / CHUNK;
      gint64 start;

      g_test_message ("%s: %" G_GSIZE_FORMAT " → %" G_GSIZE_FORMAT " bytes", cases[i].what, size,
                      g_bytes_get_size (sealed));
      /* One object, whatever the read sizes on either side and the order in
       * which the workers finished. */
      assert_bytes_equal (sealed_odd, sealed);
      g_assert_cmpuint (g_bytes_get_size (sealed), <, size);

      /* The reference decoder agrees: every chunk full but the last, the
       * last flag on the last one only, both encodings in the long ones. */
      ref_open_object (sealed, &ref_header, &ref_plain, encodings);
      assert_bytes_equal (ref_header, header);
      assert_bytes_equal (ref_plain, plain);
      g_assert_cmpuint (encodings->len, ==, chunks);
      g_assert_cmpuint (encodings->data[0], ==, 1);
      if (size >= 4 * CHUNK)
        g_assert_cmpuint (encodings->data[2], ==, 0);

      start = g_get_monotonic_time ();
      g_assert_true (open_bytes (crypto, sealed, NULL, &got, 70 + i, &error));
      g_assert_no_error (error);
      assert_bytes_equal (got, plain);
      g_test_message ("opened in %.0f ms", (g_get_monotonic_time () - start) / 1e3);
      g_clear_pointer (&got, g_bytes_unref);
      g_assert_true (open_bytes (crypto, sealed, NULL, &got, 0, &error));
      g_assert_no_error (error);
      assert_bytes_equal (got, plain);
      sealed_source = test_source_new (sealed, 80 + i, G_MAXSIZE);
      got_odd = open_from (crypto, sealed_source, 90 + i);
      assert_bytes_equal (got_odd, plain);
    }
}

/* Opens @sealed (damaged somewhere after its header): the read must fail
 * with CORRUPT after handing out at most @max_bytes, all of them right. */
static void
assert_open_stops (FsCrypto *crypto, GBytes *sealed, GBytes *plain, gsize max_bytes,
                   const gchar *what)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GInputStream) source = g_memory_input_stream_new_from_bytes (sealed);
  g_autoptr(GInputStream) opened = fs_crypto_open_stream (crypto, source, NULL, NULL, &error);
  g_autoptr(GByteArray) got = g_byte_array_new ();
  guint8 buf[16];

  g_assert_no_error (error);
  if (read_some (opened, g_str_hash (what), G_MAXSIZE, got, NULL, &error))
    g_error ("%s: opening succeeded", what);
  g_assert_error (error, FS_CRYPTO_ERROR, FS_CRYPTO_ERROR_CORRUPT);
  if (got->len > max_bytes)
    g_error ("%s: %u bytes handed out, the damage is at %" G_GSIZE_FORMAT, what, got->len,
             max_bytes);
  g_assert_cmpmem (got->data, got->len, g_bytes_get_data (plain, NULL), got->len);
  g_test_message ("%s: failed after %u bytes: %s", what, got->len, error->message);
  /* And it stays failed. */
  g_clear_error (&error);
  g_assert_cmpint (g_input_stream_read (opened, buf, sizeof buf, NULL, &error), ==, -1);
  g_assert_error (error, FS_CRYPTO_ERROR, FS_CRYPTO_ERROR_CORRUPT);
}

static void
test_object_long_damage (void)
{
  g_autoptr(FsCrypto) crypto = new_crypto (master_key);
  g_autoptr(GBytes) header = g_bytes_new_static ("h", 1);

  for (guint kind = 0; kind < 2; kind++)
    {
      /* 13 chunks, the last one of 5 bytes; raw, then compressed. */
      g_autoptr(GBytes) plain = kind == 0 ? random_bytes (12 * CHUNK + 5, 21)
                                          : text_like (12 * CHUNK + 5, 22);
      g_autoptr(GBytes) sealed = seal_bytes (crypto, header, plain, NULL);
      g_autoptr(GPtrArray) parts = split_frames (sealed);
      gsize offsets[14];
      guint order[15];

      g_assert_cmpuint (parts->len, ==, 14);
      offsets[0] = 0;
      for (guint p = 1; p < 14; p++)
        offsets[p] = offsets[p - 1] + g_bytes_get_size (parts->pdata[p - 1]);
      for (guint p = 0; p < 14; p++)
        order[p] = p;

      /* A flipped bit in chunk 1, 9, and in the last one (12). */
      {
        static const guint bad[] = { 1, 9, 12 };
        for (guint b = 0; b < G_N_ELEMENTS (bad); b++)
          {
            gsize len = g_bytes_get_size (sealed);
            guint8 *copy = g_memdup2 (g_bytes_get_data (sealed, NULL), len);
            g_autoptr(GBytes) obj = NULL;
            g_autofree gchar *what = g_strdup_printf ("kind %u, bit flipped in chunk %u", kind,
                                                      bad[b]);
            copy[offsets[bad[b] + 1] + 4 + g_bytes_get_size (parts->pdata[bad[b] + 1]) / 2] ^= 0x10;
            obj = g_bytes_new_take (copy, len);
            assert_open_stops (crypto, obj, plain, bad[b] * CHUNK, what);
          }
      }
      {
        /* Chunks 7 and 8 swapped. */
        g_autoptr(GBytes) obj = NULL;
        order[8] = 9;
        order[9] = 8;
        obj = join_frames (parts, order, 14);
        order[8] = 8;
        order[9] = 9;
        assert_open_stops (crypto, obj, plain, 7 * CHUNK, "chunks 7 and 8 swapped");
      }
      {
        /* Cut at the chunk boundary after chunk 9 (no last chunk), and
         * after chunk 11 (the last one dropped). */
        g_autoptr(GBytes) cut9 = g_bytes_new_from_bytes (sealed, 0, offsets[11]);
        g_autoptr(GBytes) cut11 = g_bytes_new_from_bytes (sealed, 0, offsets[13]);
        g_autoptr(GBytes) cut_mid = g_bytes_new_from_bytes (sealed, 0, offsets[12] + 1000);
        assert_open_stops (crypto, cut9, plain, 10 * CHUNK, "cut after chunk 9");
        assert_open_stops (crypto, cut11, plain, 12 * CHUNK, "last chunk dropped");
        assert_open_stops (crypto, cut_mid, plain, 11 * CHUNK, "cut inside chunk 11");
      }
      {
        /* Anything after the last chunk: its bytes are never handed out. */
        g_autoptr(GBytes) tail = g_bytes_new_static ("x", 1);
        g_autoptr(GBytes) plus_one = concat (sealed, tail);
        g_autoptr(GBytes) twice = concat (sealed, parts->pdata[13]);
        assert_open_stops (crypto, plus_one, plain, 12 * CHUNK, "one byte after the last chunk");
        assert_open_stops (crypto, twice, plain, 12 * CHUNK, "the last chunk twice");
      }
      {
        /* An impossible length in the frame of chunk 10. */
        gsize len = g_bytes_get_size (sealed);
        guint8 *copy = g_memdup2 (g_bytes_get_data (sealed, NULL), len);
        g_autoptr(GBytes) obj = NULL;
        put_be32 (copy + offsets[11], 0x7fffffffu);
        obj = g_bytes_new_take (copy, len);
        assert_open_stops (crypto, obj, plain, 10 * CHUNK, "impossible length of chunk 10");
      }
    }
}

static void
test_object_cancel (void)
{
  g_autoptr(FsCrypto) crypto = new_crypto (master_key);
  g_autoptr(GBytes) header = g_bytes_new_static ("h", 1);
  g_autoptr(GBytes) plain = mixed_bytes (12 * CHUNK, 31);
  g_autoptr(GBytes) sealed = seal_bytes (crypto, header, plain, NULL);
  static const gsize stops[] = { 0, CHUNK / 2, 3 * CHUNK + 17 };
  guint8 buf[1000];

  for (guint s = 0; s < 2; s++)
    for (guint i = 0; i < G_N_ELEMENTS (stops); i++)
      {
        g_autoptr(GCancellable) cancellable = g_cancellable_new ();
        g_autoptr(GInputStream) source = g_memory_input_stream_new_from_bytes (s == 0 ? plain
                                                                                       : sealed);
        g_autoptr(GInputStream) stream = NULL;
        g_autoptr(GByteArray) got = g_byte_array_new ();
        g_autoptr(GError) error = NULL;

        stream = s == 0 ? fs_crypto_seal_stream (crypto, header, source, NULL, &error)
                        : fs_crypto_open_stream (crypto, source, NULL, cancellable, &error);
        g_assert_no_error (error);
        g_assert_true (read_some (stream, i, stops[i], got, cancellable, &error));
        g_assert_no_error (error);
        if (s == 1)
          g_assert_cmpmem (got->data, got->len, g_bytes_get_data (plain, NULL), got->len);
        g_cancellable_cancel (cancellable);
        g_assert_cmpint (g_input_stream_read (stream, buf, sizeof buf, cancellable, &error), ==,
                         -1);
        g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
        g_clear_error (&error);
        /* It stays failed, with or without the cancellable. */
        g_assert_cmpint (g_input_stream_read (stream, buf, sizeof buf, NULL, &error), ==, -1);
        g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
        g_clear_error (&error);
        g_assert_true (g_input_stream_close (stream, NULL, &error));
        g_assert_no_error (error);
      }

  /* A source that fails in the middle: the error comes out, and stays. */
  for (guint s = 0; s < 2; s++)
    {
      gsize fail_at = 7 * CHUNK + 3;
      g_autoptr(GInputStream) source = test_source_new (s == 0 ? plain : sealed, 3, fail_at);
      g_autoptr(GInputStream) stream = NULL;
      g_autoptr(GByteArray) got = g_byte_array_new ();
      g_autoptr(GError) error = NULL;

      stream = s == 0 ? fs_crypto_seal_stream (crypto, header, source, NULL, &error)
                      : fs_crypto_open_stream (crypto, source, NULL, NULL, &error);
      g_assert_no_error (error);
      g_assert_false (read_some (stream, 4, G_MAXSIZE, got, NULL, &error));
      g_assert_error (error, G_IO_ERROR, G_IO_ERROR_FAILED);
      if (s == 0)
        {
          /* No more than what was read, plus the overhead. */
          g_assert_cmpuint (got->len, <=, fail_at + 1000);
        }
      else
        {
          /* Whole chunks, those before the one the source failed in. */
          g_assert_cmpuint (got->len % CHUNK, ==, 0);
          g_assert_cmpuint (got->len, <, g_bytes_get_size (plain));
          g_assert_cmpmem (got->data, got->len, g_bytes_get_data (plain, NULL), got->len);
        }
      g_clear_error (&error);
      g_assert_cmpint (g_input_stream_read (stream, buf, sizeof buf, NULL, &error), ==, -1);
      g_assert_error (error, G_IO_ERROR, G_IO_ERROR_FAILED);
    }
}

/* Streams dropped (closed or not) in the middle, while workers still hold
 * chunks of them: nothing may be used after it is freed (ASan), nothing leaks
 * (LeakSanitizer), nothing hangs. */
static void
test_object_drop_mid_read (void)
{
  g_autoptr(FsCrypto) crypto = new_crypto (master_key);
  g_autoptr(GBytes) header = g_bytes_new_static ("h", 1);
  g_autoptr(GBytes) plain = mixed_bytes (10 * CHUNK + 3, 33);
  g_autoptr(GBytes) sealed = seal_bytes (crypto, header, plain, NULL);
  static const gsize stops[] = { 0, 1, CHUNK / 2, CHUNK + 5, 3 * CHUNK, 6 * CHUNK + 1 };

  for (guint round = 0; round < 3; round++)
    for (guint i = 0; i < G_N_ELEMENTS (stops); i++)
      for (guint s = 0; s < 2; s++)
        for (guint close = 0; close < 2; close++)
          {
            g_autoptr(GInputStream) source = NULL;
            g_autoptr(GInputStream) stream = NULL;
            g_autoptr(GByteArray) got = g_byte_array_new ();
            g_autoptr(GError) error = NULL;

            source = g_memory_input_stream_new_from_bytes (s == 0 ? plain : sealed);
            stream = s == 0 ? fs_crypto_seal_stream (crypto, header, source, NULL, &error)
                            : fs_crypto_open_stream (crypto, source, NULL, NULL, &error);
            g_assert_no_error (error);
            g_assert_true (read_some (stream, round * 100 + i, stops[i], got, NULL, &error));
            g_assert_no_error (error);
            if (close)
              {
                g_assert_true (g_input_stream_close (stream, NULL, &error));
                g_assert_no_error (error);
              }
            g_clear_object (&stream);
          }
}

/* The pipeline tests again in a child process with another number of
 * worker threads: 0 (every chunk in the reader's thread) and more than the
 * cores (more chunks in flight than can run). */
static void
run_pipeline_tests_with_threads (const gchar *threads)
{
  g_autofree gchar *self_exe = g_file_read_link ("/proc/self/exe", NULL);
  g_auto(GStrv) env = g_environ_setenv (g_get_environ (), "FOLDERSYNC_CRYPTO_THREADS", threads,
                                        TRUE);
  const gchar *argv[] = { self_exe,
                          "-p", "/crypto/object/roundtrip",
                          "-p", "/crypto/object/compression-probe",
                          "-p", "/crypto/object/multi-chunk",
                          "-p", "/crypto/object/long-damage",
                          "-p", "/crypto/object/cancel",
                          "-p", "/crypto/object/drop-mid-read",
                          NULL };
  g_autofree gchar *out = NULL;
  g_autofree gchar *err = NULL;
  g_autoptr(GError) error = NULL;
  gint status = 0;

  g_assert_nonnull (self_exe);
  g_assert_true (g_spawn_sync (NULL, (gchar **) argv, env, G_SPAWN_DEFAULT, NULL, NULL, &out, &err,
                               &status, &error));
  g_assert_no_error (error);
  if (!g_spawn_check_wait_status (status, &error))
    g_error ("FOLDERSYNC_CRYPTO_THREADS=%s: %s\n%s%s", threads, error->message, out, err);
  g_test_message ("FOLDERSYNC_CRYPTO_THREADS=%s: passed", threads);
}

static void
test_object_no_pool (void)
{
  run_pipeline_tests_with_threads ("0");
}

static void
test_object_wide_pool (void)
{
  run_pipeline_tests_with_threads ("5");
}

static void
test_record_roundtrip (void)
{
  g_autoptr(FsCrypto) crypto = new_crypto (master_key);
  g_autoptr(GError) error = NULL;
  static const gsize sizes[] = { 0, 1, 100, 70000 };

  for (guint i = 0; i < G_N_ELEMENTS (sizes); i++)
    {
      g_autoptr(GBytes) plain = text_like (sizes[i], i);
      g_autoptr(GBytes) sealed = fs_crypto_seal_record (crypto, plain, "ctx/a", &error);
      g_autoptr(GBytes) opened = NULL;
      g_assert_no_error (error);
      g_assert_cmpuint (g_bytes_get_size (sealed), ==, sizes[i] + 32);
      g_assert_cmpmem (g_bytes_get_data (sealed, NULL), 4, "FSR1", 4);
      opened = fs_crypto_open_record (crypto, sealed, "ctx/a", &error);
      g_assert_no_error (error);
      assert_bytes_equal (opened, plain);
    }
}

static void
assert_record_corrupt (FsCrypto *crypto, GBytes *sealed, const gchar *context)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) opened = fs_crypto_open_record (crypto, sealed, context, &error);
  g_assert_null (opened);
  g_assert_error (error, FS_CRYPTO_ERROR, FS_CRYPTO_ERROR_CORRUPT);
}

static void
test_record_tamper (void)
{
  g_autoptr(FsCrypto) crypto = new_crypto (master_key);
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) plain = g_bytes_new_static ("a journal record", 16);
  g_autoptr(GBytes) sealed = fs_crypto_seal_record (crypto, plain, ".journal/d/1", &error);
  gsize len = 0;
  const guint8 *d = g_bytes_get_data (sealed, &len);
  guint8 other_key[32] = { 0 };
  g_autoptr(FsCrypto) other = new_crypto (other_key);

  g_assert_no_error (error);
  assert_record_corrupt (crypto, sealed, ".journal/d/2");
  assert_record_corrupt (crypto, sealed, ".journal/d/1 ");
  assert_record_corrupt (crypto, sealed, "");
  assert_record_corrupt (other, sealed, ".journal/d/1");
  for (gsize i = 0; i < len; i++)
    {
      guint8 *copy = g_memdup2 (d, len);
      g_autoptr(GBytes) bad = NULL;
      copy[i] ^= 0x01;
      bad = g_bytes_new_take (copy, len);
      assert_record_corrupt (crypto, bad, ".journal/d/1");
    }
  for (gsize i = 0; i < len; i++)
    {
      g_autoptr(GBytes) cut = g_bytes_new_from_bytes (sealed, 0, i);
      assert_record_corrupt (crypto, cut, ".journal/d/1");
    }
  for (guint i = 0; i < 20; i++)
    {
      g_autoptr(GBytes) garbage = random_bytes (i * 7, i + 1);
      assert_record_corrupt (crypto, garbage, ".journal/d/1");
    }
}

/* ---------- bounded memory: a generator stream, sealed and opened in one pipe ---------- */

#define FS_TYPE_TEST_GEN (fs_test_gen_get_type ())
G_DECLARE_FINAL_TYPE (FsTestGen, fs_test_gen, FS, TEST_GEN, GInputStream)

struct _FsTestGen {
  GInputStream parent_instance;
  guint64 remaining;
  guint64 state;
  gcry_md_hd_t md; /* SHA-256 of everything produced */
};

G_DEFINE_FINAL_TYPE (FsTestGen, fs_test_gen, G_TYPE_INPUT_STREAM)

static gssize
fs_test_gen_read (GInputStream *stream, void *buffer, gsize count, GCancellable *cancellable,
                  GError **error)
{
  FsTestGen *self = FS_TEST_GEN (stream);
  guint8 *out = buffer;
  gsize n = MIN (count, self->remaining);

  for (gsize i = 0; i < n; i += 8)
    {
      guint64 v;
      self->state ^= self->state >> 12;
      self->state ^= self->state << 25;
      self->state ^= self->state >> 27;
      v = self->state * G_GUINT64_CONSTANT (2685821657736338717);
      memcpy (out + i, &v, MIN (8, n - i));
    }
  gcry_md_write (self->md, out, n);
  self->remaining -= n;
  return n;
}

static void
fs_test_gen_finalize (GObject *object)
{
  gcry_md_close (FS_TEST_GEN (object)->md);
  G_OBJECT_CLASS (fs_test_gen_parent_class)->finalize (object);
}

static void
fs_test_gen_class_init (FsTestGenClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = fs_test_gen_finalize;
  G_INPUT_STREAM_CLASS (klass)->read_fn = fs_test_gen_read;
}

static void
fs_test_gen_init (FsTestGen *self)
{
  self->state = 0x9e3779b97f4a7c15;
  g_assert_cmpint (gcry_md_open (&self->md, GCRY_MD_SHA256, 0), ==, 0);
}

static guint64
big_size (void)
{
  const gchar *env = g_getenv ("FOLDERSYNC_TEST_BIG_SIZE");
  return env != NULL ? g_ascii_strtoull (env, NULL, 10) : G_GUINT64_CONSTANT (2) << 30;
}

/* Peak RSS of this process image in KiB (VmHWM), or -1. Unlike ru_maxrss it
 * does not inherit the parent's size across fork + exec. */
static glong
peak_rss_kib (void)
{
  g_autofree gchar *status = NULL;
  const gchar *line;

  if (!g_file_get_contents ("/proc/self/status", &status, NULL, NULL))
    return -1;
  line = strstr (status, "VmHWM:");
  return line != NULL ? strtol (line + 6, NULL, 10) : -1;
}

static void
test_object_bounded_memory (void)
{
  if (g_test_subprocess ())
    {
      /* A fresh process, so ru_maxrss is this test's peak alone. */
      g_autoptr(FsCrypto) crypto = new_crypto (master_key);
      g_autoptr(FsTestGen) gen = g_object_new (FS_TYPE_TEST_GEN, NULL);
      g_autoptr(GBytes) header = g_bytes_new_static ("big", 3);
      g_autoptr(GError) error = NULL;
      g_autoptr(GInputStream) sealed = NULL;
      g_autoptr(GInputStream) opened = NULL;
      g_autoptr(GBytes) got_header = NULL;
      g_autofree guint8 *buf = g_malloc (256 * 1024);
      gcry_md_hd_t md;
      guint64 total = 0;
      guint64 size = big_size ();
      gint64 start = g_get_monotonic_time ();
      struct rusage usage;
      gchar *in_hash, *out_hash;

      gen->remaining = size;
      g_assert_cmpint (gcry_md_open (&md, GCRY_MD_SHA256, 0), ==, 0);
      sealed = fs_crypto_seal_stream (crypto, header, G_INPUT_STREAM (gen), NULL, &error);
      g_assert_no_error (error);
      opened = fs_crypto_open_stream (crypto, sealed, &got_header, NULL, &error);
      g_assert_no_error (error);
      g_assert_true (g_bytes_equal (got_header, header));
      for (;;)
        {
          gssize n = g_input_stream_read (opened, buf, 256 * 1024, NULL, &error);
          g_assert_no_error (error);
          if (n == 0)
            break;
          gcry_md_write (md, buf, n);
          total += n;
        }
      g_assert_cmpuint (total, ==, size);
      in_hash = hex_encode (gcry_md_read (gen->md, 0), 32);
      out_hash = hex_encode (gcry_md_read (md, 0), 32);
      g_assert_cmpstr (in_hash, ==, out_hash);
      g_free (in_hash);
      g_free (out_hash);
      gcry_md_close (md);

      g_assert_cmpint (getrusage (RUSAGE_SELF, &usage), ==, 0);
      g_printerr ("sealed+opened %" G_GUINT64_FORMAT " MiB in %.1f s, peak RSS %ld MiB "
                  "(VmHWM %ld MiB)\n",
                  size / MIB, (g_get_monotonic_time () - start) / 1e6, usage.ru_maxrss / 1024,
                  peak_rss_kib () / 1024);
      /* ru_maxrss also counts the parent's RSS at fork time (Linux keeps the
       * old image's high-water mark across exec): this test is registered
       * first so the parent is still small. VmHWM is this image alone. */
      g_assert_cmpint (usage.ru_maxrss, <, 64 * 1024); /* KiB */
      g_assert_cmpint (peak_rss_kib (), <, 64 * 1024);
      return;
    }
  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_INHERIT_STDERR);
  g_test_trap_assert_passed ();
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  fs_gcrypt_init ();

  /* First: its subprocess must be forked from a still small parent (see there). */
  g_test_add_func ("/crypto/object/bounded-memory", test_object_bounded_memory);
  g_test_add_func ("/crypto/hkdf/rfc5869", test_hkdf_rfc5869);
  g_test_add_func ("/crypto/vectors/keys", test_vectors_keys);
  g_test_add_func ("/crypto/vectors/object", test_vectors_object);
  g_test_add_func ("/crypto/vectors/record", test_vectors_record);
  g_test_add_func ("/crypto/key/invalid", test_key_invalid);
  g_test_add_func ("/crypto/object/roundtrip", test_object_roundtrip);
  g_test_add_func ("/crypto/object/compression-probe", test_object_probe);
  g_test_add_func ("/crypto/object/nonce", test_object_nonce);
  g_test_add_func ("/crypto/object/tamper-every-byte", test_object_tamper_every_byte);
  g_test_add_func ("/crypto/object/truncate", test_object_truncate);
  g_test_add_func ("/crypto/object/reorder", test_object_reorder);
  g_test_add_func ("/crypto/object/splice", test_object_splice);
  g_test_add_func ("/crypto/object/hostile-input", test_object_hostile);
  g_test_add_func ("/crypto/object/multi-chunk", test_object_multi_chunk);
  g_test_add_func ("/crypto/object/long-damage", test_object_long_damage);
  g_test_add_func ("/crypto/object/cancel", test_object_cancel);
  g_test_add_func ("/crypto/object/drop-mid-read", test_object_drop_mid_read);
  g_test_add_func ("/crypto/object/no-pool", test_object_no_pool);
  g_test_add_func ("/crypto/object/wide-pool", test_object_wide_pool);
  g_test_add_func ("/crypto/record/roundtrip", test_record_roundtrip);
  g_test_add_func ("/crypto/record/tamper", test_record_tamper);
  return g_test_run ();
}
