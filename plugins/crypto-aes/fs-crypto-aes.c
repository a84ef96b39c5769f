/* FsCryptoAes: the crypto-aes plugin. Derives the subkeys from the master
 * key, names objects, seals/opens object streams (FsSealStream,
 * FsOpenStream) and small records. The format is docs/format.md. */
#include "config.h"

#include <string.h>

#include <gcrypt.h>
#include <gmodule.h>
#include <glib/gi18n-lib.h>

#include "fs-crypto-aes.h"
#include "fs-crypto-format.h"
#include "fs-error.h"
#include "fs-gcrypt.h"
#include "fs-open-stream.h"
#include "fs-seal-stream.h"
#include "fs-types.h"

struct _FsCryptoAes {
  GObject parent_instance;

  gboolean have_key;
  guint8 content_key[FS_CRYPTO_SUBKEY_SIZE];
  guint8 names_key[FS_CRYPTO_SUBKEY_SIZE];
  guint8 journal_key[FS_CRYPTO_SUBKEY_SIZE];
  guint8 key_id_key[FS_CRYPTO_SUBKEY_SIZE];
};

static void fs_crypto_aes_iface_init (FsCryptoInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (FsCryptoAes, fs_crypto_aes, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (FS_TYPE_CRYPTO, fs_crypto_aes_iface_init))

static void
derive (const guint8 *master, const gchar *label, guint8 out[FS_CRYPTO_SUBKEY_SIZE])
{
  fs_crypto_hkdf_sha256 (NULL, 0, master, FS_CRYPTO_KEY_SIZE, (const guint8 *) label,
                         strlen (label), out, FS_CRYPTO_SUBKEY_SIZE);
}

static gboolean
no_key (FsCryptoAes *self, GError **error)
{
  if (self->have_key)
    return FALSE;
  g_set_error_literal (error, FS_CRYPTO_ERROR, FS_CRYPTO_ERROR_INVALID_KEY, _("No key is set"));
  return TRUE;
}

static gboolean
fs_crypto_aes_set_key (FsCrypto *crypto, const guint8 *key, gsize key_len, GError **error)
{
  FsCryptoAes *self = FS_CRYPTO_AES (crypto);

  if (key_len != FS_CRYPTO_KEY_SIZE)
    {
      g_set_error (error, FS_CRYPTO_ERROR, FS_CRYPTO_ERROR_INVALID_KEY,
                   _("The key must be %u bytes, not %zu"), FS_CRYPTO_KEY_SIZE, key_len);
      return FALSE;
    }
  derive (key, "foldersync v1 content", self->content_key);
  derive (key, "foldersync v1 names", self->names_key);
  derive (key, "foldersync v1 journal", self->journal_key);
  derive (key, "foldersync v1 key-id", self->key_id_key);
  self->have_key = TRUE;
  return TRUE;
}

static gchar *
fs_crypto_aes_get_key_id (FsCrypto *crypto)
{
  FsCryptoAes *self = FS_CRYPTO_AES (crypto);
  static const gchar label[] = "foldersync key-id";
  guint8 mac[32];

  g_return_val_if_fail (self->have_key, NULL);
  fs_crypto_hmac_sha256 (self->key_id_key, sizeof self->key_id_key, (const guint8 *) label,
                         sizeof label - 1, mac);
  return fs_hex_encode (mac, 16);
}

static gchar *
fs_crypto_aes_object_stem (FsCrypto *crypto, const gchar *normalized_path)
{
  FsCryptoAes *self = FS_CRYPTO_AES (crypto);
  guint8 mac[32];

  g_return_val_if_fail (self->have_key, NULL);
  fs_crypto_hmac_sha256 (self->names_key, sizeof self->names_key,
                         (const guint8 *) normalized_path, strlen (normalized_path), mac);
  return fs_base32_encode (mac, sizeof mac);
}

static GInputStream *
fs_crypto_aes_seal_stream (FsCrypto *crypto, GBytes *header, GInputStream *plain,
                           const guint8 *object_nonce, GError **error)
{
  FsCryptoAes *self = FS_CRYPTO_AES (crypto);
  guint8 nonce[FS_CRYPTO_OBJECT_NONCE_SIZE];

  if (no_key (self, error))
    return NULL;
  if (object_nonce != NULL)
    memcpy (nonce, object_nonce, sizeof nonce);
  else
    gcry_create_nonce (nonce, sizeof nonce);
  return fs_seal_stream_new (plain, header, self->content_key, nonce, error);
}

static GInputStream *
fs_crypto_aes_open_stream (FsCrypto *crypto, GInputStream *sealed, GBytes **header,
                           GCancellable *cancellable, GError **error)
{
  FsCryptoAes *self = FS_CRYPTO_AES (crypto);

  if (no_key (self, error))
    return NULL;
  return fs_open_stream_new (sealed, self->content_key, header, cancellable, error);
}

/* AD of a record: "FSR1" || context, so a record cannot be moved to another key. */
static guint8 *
record_ad (const gchar *context, gsize *len)
{
  gsize context_len = strlen (context);
  guint8 *ad = g_malloc (4 + context_len);

  memcpy (ad, FS_RECORD_MAGIC, 4);
  memcpy (ad + 4, context, context_len);
  *len = 4 + context_len;
  return ad;
}

static GBytes *
fs_crypto_aes_seal_record (FsCrypto *crypto, GBytes *plain, const gchar *context,
                           GError **error)
{
  FsCryptoAes *self = FS_CRYPTO_AES (crypto);
  gsize plain_len = 0;
  const guint8 *plain_data = g_bytes_get_data (plain, &plain_len);
  gsize out_len = 4 + FS_RECORD_NONCE_SIZE + plain_len + FS_CRYPTO_TAG_SIZE;
  g_autofree guint8 *out = NULL;
  g_autofree guint8 *ad = NULL;
  gsize ad_len = 0;
  gpointer cipher;
  gboolean ok;

  if (no_key (self, error))
    return NULL;
  out = g_malloc (out_len);
  memcpy (out, FS_RECORD_MAGIC, 4);
  gcry_create_nonce (out + 4, FS_RECORD_NONCE_SIZE);
  if (plain_len > 0)
    memcpy (out + 4 + FS_RECORD_NONCE_SIZE, plain_data, plain_len);
  ad = record_ad (context, &ad_len);
  cipher = fs_crypto_gcm_new (self->journal_key);
  ok = cipher != NULL && fs_crypto_gcm_seal (cipher, out + 4, ad, ad_len,
                                             out + 4 + FS_RECORD_NONCE_SIZE, plain_len,
                                             out + 4 + FS_RECORD_NONCE_SIZE + plain_len);
  fs_crypto_gcm_free (cipher);
  if (!ok)
    {
      g_set_error_literal (error, FS_CRYPTO_ERROR, FS_CRYPTO_ERROR_FAILED,
                           _("AES-GCM failed to seal a record"));
      return NULL;
    }
  return g_bytes_new_take (g_steal_pointer (&out), out_len);
}

static GBytes *
fs_crypto_aes_open_record (FsCrypto *crypto, GBytes *sealed, const gchar *context,
                           GError **error)
{
  FsCryptoAes *self = FS_CRYPTO_AES (crypto);
  gsize sealed_len = 0;
  const guint8 *sealed_data = g_bytes_get_data (sealed, &sealed_len);
  gsize plain_len;
  g_autofree guint8 *plain = NULL;
  g_autofree guint8 *ad = NULL;
  gsize ad_len = 0;
  gpointer cipher;
  gboolean ok;

  if (no_key (self, error))
    return NULL;
  if (sealed_len < 4 + FS_RECORD_NONCE_SIZE + FS_CRYPTO_TAG_SIZE)
    {
      g_set_error (error, FS_CRYPTO_ERROR, FS_CRYPTO_ERROR_CORRUPT,
                   _("Sealed record ‘%s’ is too short (%zu bytes)"), context, sealed_len);
      return NULL;
    }
  if (memcmp (sealed_data, FS_RECORD_MAGIC, 4) != 0)
    {
      g_set_error (error, FS_CRYPTO_ERROR, FS_CRYPTO_ERROR_CORRUPT,
                   _("‘%s’ is not a sealed record (bad magic)"), context);
      return NULL;
    }
  plain_len = sealed_len - 4 - FS_RECORD_NONCE_SIZE - FS_CRYPTO_TAG_SIZE;
  plain = g_malloc (plain_len + 1);
  memcpy (plain, sealed_data + 4 + FS_RECORD_NONCE_SIZE, plain_len);
  ad = record_ad (context, &ad_len);
  cipher = fs_crypto_gcm_new (self->journal_key);
  ok = cipher != NULL && fs_crypto_gcm_open (cipher, sealed_data + 4, ad, ad_len, plain, plain_len,
                                             sealed_data + 4 + FS_RECORD_NONCE_SIZE + plain_len);
  fs_crypto_gcm_free (cipher);
  if (!ok)
    {
      explicit_bzero (plain, plain_len);
      g_set_error (error, FS_CRYPTO_ERROR, FS_CRYPTO_ERROR_CORRUPT,
                   _("Sealed record ‘%s’ failed authentication (modified, moved, or sealed with "
                      "another key)"),
                   context);
      return NULL;
    }
  return g_bytes_new_take (g_steal_pointer (&plain), plain_len);
}

static void
fs_crypto_aes_finalize (GObject *object)
{
  FsCryptoAes *self = FS_CRYPTO_AES (object);

  explicit_bzero (self->content_key, sizeof self->content_key);
  explicit_bzero (self->names_key, sizeof self->names_key);
  explicit_bzero (self->journal_key, sizeof self->journal_key);
  explicit_bzero (self->key_id_key, sizeof self->key_id_key);
  self->have_key = FALSE;
  G_OBJECT_CLASS (fs_crypto_aes_parent_class)->finalize (object);
}

static void
fs_crypto_aes_iface_init (FsCryptoInterface *iface)
{
  iface->set_key = fs_crypto_aes_set_key;
  iface->get_key_id = fs_crypto_aes_get_key_id;
  iface->object_stem = fs_crypto_aes_object_stem;
  iface->seal_stream = fs_crypto_aes_seal_stream;
  iface->open_stream = fs_crypto_aes_open_stream;
  iface->seal_record = fs_crypto_aes_seal_record;
  iface->open_record = fs_crypto_aes_open_record;
}

static void
fs_crypto_aes_class_init (FsCryptoAesClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = fs_crypto_aes_finalize;
}

static void
fs_crypto_aes_init (FsCryptoAes *self)
{
  fs_gcrypt_init ();
}

G_MODULE_EXPORT GType fs_plugin_register (void);

GType
fs_plugin_register (void)
{
  return FS_TYPE_CRYPTO_AES;
}
