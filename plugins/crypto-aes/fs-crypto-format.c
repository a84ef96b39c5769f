/* Primitives of the remote object format shared by the crypto-aes plugin
 * and its seal/open streams: HKDF-SHA256, HMAC-SHA256, AES-256-GCM. */
#include <string.h>

#include <gcrypt.h>

#include "fs-crypto-format.h"
#include "fs-gcrypt.h"

void
fs_crypto_hmac_sha256 (const guint8 *key, gsize key_len, const guint8 *data, gsize len,
                       guint8 out[32])
{
  gcry_md_hd_t md = NULL;

  fs_gcrypt_init ();
  if (gcry_md_open (&md, GCRY_MD_SHA256, GCRY_MD_FLAG_HMAC) != 0)
    g_error ("libgcrypt cannot open HMAC-SHA256");
  if (gcry_md_setkey (md, key, key_len) != 0)
    g_error ("libgcrypt refused an HMAC key");
  gcry_md_write (md, data, len);
  memcpy (out, gcry_md_read (md, GCRY_MD_SHA256), 32);
  gcry_md_close (md); /* wipes its state */
}

void
fs_crypto_hkdf_sha256 (const guint8 *salt, gsize salt_len, const guint8 *ikm, gsize ikm_len,
                       const guint8 *info, gsize info_len, guint8 *okm, gsize okm_len)
{
  static const guint8 zero_salt[32] = { 0 };
  guint8 prk[32];
  guint8 t[32];
  gsize t_len = 0;
  g_autofree guint8 *block = g_malloc (32 + info_len + 1);

  g_return_if_fail (okm_len <= 255 * 32);

  if (salt == NULL || salt_len == 0)
    {
      salt = zero_salt;
      salt_len = sizeof zero_salt;
    }
  /* Extract. */
  fs_crypto_hmac_sha256 (salt, salt_len, ikm, ikm_len, prk);
  /* Expand: T(i) = HMAC(PRK, T(i-1) || info || i). */
  for (guint8 i = 1; okm_len > 0; i++)
    {
      gsize n = MIN (okm_len, 32);
      memcpy (block, t, t_len);
      if (info_len > 0)
        memcpy (block + t_len, info, info_len);
      block[t_len + info_len] = i;
      fs_crypto_hmac_sha256 (prk, sizeof prk, block, t_len + info_len + 1, t);
      t_len = 32;
      memcpy (okm, t, n);
      okm += n;
      okm_len -= n;
    }
  explicit_bzero (block, 32 + info_len + 1);
  explicit_bzero (prk, sizeof prk);
  explicit_bzero (t, sizeof t);
}

void
fs_crypto_object_key (const guint8 content_key[FS_CRYPTO_SUBKEY_SIZE], const guint8 nonce[16],
                      guint8 out[FS_CRYPTO_SUBKEY_SIZE])
{
  static const gchar label[] = "foldersync v1 object";
  guint8 info[sizeof label - 1 + 16];

  memcpy (info, label, sizeof label - 1);
  memcpy (info + sizeof label - 1, nonce, 16);
  fs_crypto_hkdf_sha256 (NULL, 0, content_key, FS_CRYPTO_SUBKEY_SIZE, info, sizeof info, out,
                         FS_CRYPTO_SUBKEY_SIZE);
}

void
fs_crypto_gcm_nonce (guint32 domain, guint64 index, guint8 out[FS_CRYPTO_GCM_NONCE_SIZE])
{
  fs_put_u32_be (out, domain);
  fs_put_u64_be (out + 4, index);
}

gpointer
fs_crypto_gcm_new (const guint8 key[FS_CRYPTO_SUBKEY_SIZE])
{
  gcry_cipher_hd_t hd = NULL;

  fs_gcrypt_init ();
  if (gcry_cipher_open (&hd, GCRY_CIPHER_AES256, GCRY_CIPHER_MODE_GCM, 0) != 0)
    return NULL;
  if (gcry_cipher_setkey (hd, key, FS_CRYPTO_SUBKEY_SIZE) != 0)
    {
      gcry_cipher_close (hd);
      return NULL;
    }
  return hd;
}

void
fs_crypto_gcm_free (gpointer cipher)
{
  if (cipher != NULL)
    gcry_cipher_close (cipher); /* wipes the key schedule */
}

static gboolean
gcm_start (gcry_cipher_hd_t hd, const guint8 *nonce, const guint8 *ad, gsize ad_len)
{
  if (gcry_cipher_setiv (hd, nonce, FS_CRYPTO_GCM_NONCE_SIZE) != 0)
    return FALSE;
  if (ad_len > 0 && gcry_cipher_authenticate (hd, ad, ad_len) != 0)
    return FALSE;
  return gcry_cipher_final (hd) == 0;
}

gboolean
fs_crypto_gcm_seal (gpointer cipher, const guint8 *nonce, const guint8 *ad, gsize ad_len,
                    guint8 *data, gsize len, guint8 tag[FS_CRYPTO_TAG_SIZE])
{
  gcry_cipher_hd_t hd = cipher;

  if (!gcm_start (hd, nonce, ad, ad_len))
    return FALSE;
  if (gcry_cipher_encrypt (hd, data, len, NULL, 0) != 0)
    return FALSE;
  return gcry_cipher_gettag (hd, tag, FS_CRYPTO_TAG_SIZE) == 0;
}

gboolean
fs_crypto_gcm_open (gpointer cipher, const guint8 *nonce, const guint8 *ad, gsize ad_len,
                    guint8 *data, gsize len, const guint8 tag[FS_CRYPTO_TAG_SIZE])
{
  gcry_cipher_hd_t hd = cipher;

  if (!gcm_start (hd, nonce, ad, ad_len))
    return FALSE;
  if (gcry_cipher_decrypt (hd, data, len, NULL, 0) != 0)
    return FALSE;
  return gcry_cipher_checktag (hd, tag, FS_CRYPTO_TAG_SIZE) == 0;
}
