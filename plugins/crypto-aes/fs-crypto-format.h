/* Internal to the crypto-aes plugin: constants of the remote object format
 * (docs/format.md) and the primitives the plugin and its two streams share. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define FS_CRYPTO_SUBKEY_SIZE 32
#define FS_CRYPTO_TAG_SIZE 16
#define FS_CRYPTO_GCM_NONCE_SIZE 12

/* Object stream: preamble = magic(4) version(1) flags(1) reserved(2) nonce(16). */
#define FS_OBJECT_MAGIC "FSO1"
#define FS_OBJECT_VERSION 1
#define FS_OBJECT_PREAMBLE_SIZE 24
/* Plaintext per chunk, and the largest header the opener accepts. */
#define FS_OBJECT_CHUNK_SIZE (1024 * 1024)
#define FS_OBJECT_MAX_HEADER (1024 * 1024)
/* Frame of a chunk on the wire: u32 BE; bit 31 = last chunk, bits 0..30 = sealed length. */
#define FS_OBJECT_FRAME_LAST 0x80000000u
#define FS_OBJECT_FRAME_LEN_MASK 0x7fffffffu
/* Sealed chunk = flag byte + data + tag. */
#define FS_OBJECT_MIN_SEALED_CHUNK (1 + FS_CRYPTO_TAG_SIZE)
#define FS_OBJECT_MAX_SEALED_CHUNK (1 + FS_OBJECT_CHUNK_SIZE + FS_CRYPTO_TAG_SIZE)
#define FS_OBJECT_CHUNK_RAW 0
#define FS_OBJECT_CHUNK_ZLIB 1
/* GCM nonce domains. */
#define FS_OBJECT_DOMAIN_HEADER 0
#define FS_OBJECT_DOMAIN_CHUNK 1

#define FS_RECORD_MAGIC "FSR1"
#define FS_RECORD_NONCE_SIZE 12

/* HKDF-SHA256 (RFC 5869). @salt may be NULL/0 (= 32 zero bytes). */
void fs_crypto_hkdf_sha256 (const guint8 *salt, gsize salt_len, const guint8 *ikm, gsize ikm_len,
                            const guint8 *info, gsize info_len, guint8 *okm, gsize okm_len);
void fs_crypto_hmac_sha256 (const guint8 *key, gsize key_len, const guint8 *data, gsize len,
                            guint8 out[32]);

/* The per-object key: HKDF(content subkey, info = "foldersync v1 object" || nonce). */
void fs_crypto_object_key (const guint8 content_key[FS_CRYPTO_SUBKEY_SIZE],
                           const guint8 nonce[16], guint8 out[FS_CRYPTO_SUBKEY_SIZE]);

/* The GCM nonce of the header (domain 0) or of chunk @index (domain 1). */
void fs_crypto_gcm_nonce (guint32 domain, guint64 index, guint8 out[FS_CRYPTO_GCM_NONCE_SIZE]);

/* AES-256-GCM in place over @data; encryption appends nothing, the tag goes
 * to/from @tag. open returns FALSE when authentication fails. */
gboolean fs_crypto_gcm_seal (gpointer cipher, const guint8 *nonce, const guint8 *ad, gsize ad_len,
                             guint8 *data, gsize len, guint8 tag[FS_CRYPTO_TAG_SIZE]);
gboolean fs_crypto_gcm_open (gpointer cipher, const guint8 *nonce, const guint8 *ad, gsize ad_len,
                             guint8 *data, gsize len, const guint8 tag[FS_CRYPTO_TAG_SIZE]);
/* A gcry_cipher_hd_t for AES-256-GCM under @key (returned as a pointer to keep
 * gcrypt.h out of this header), or NULL. */
gpointer fs_crypto_gcm_new (const guint8 key[FS_CRYPTO_SUBKEY_SIZE]);
void fs_crypto_gcm_free (gpointer cipher);

static inline void
fs_put_u32_be (guint8 *p, guint32 v)
{
  p[0] = v >> 24;
  p[1] = v >> 16;
  p[2] = v >> 8;
  p[3] = v;
}

static inline guint32
fs_get_u32_be (const guint8 *p)
{
  return ((guint32) p[0] << 24) | ((guint32) p[1] << 16) | ((guint32) p[2] << 8) | p[3];
}

static inline void
fs_put_u64_be (guint8 *p, guint64 v)
{
  fs_put_u32_be (p, v >> 32);
  fs_put_u32_be (p + 4, (guint32) v);
}

G_END_DECLS
