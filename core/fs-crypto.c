/* FsCrypto interface: argument checks, forwarding to the plugin. */
#include "fs-crypto.h"

G_DEFINE_INTERFACE (FsCrypto, fs_crypto, G_TYPE_OBJECT)

static void
fs_crypto_default_init (FsCryptoInterface *iface)
{
}

gboolean
fs_crypto_set_key (FsCrypto *self, const guint8 *key, gsize key_len, GError **error)
{
  g_return_val_if_fail (FS_IS_CRYPTO (self), FALSE);
  g_return_val_if_fail (key != NULL, FALSE);
  return FS_CRYPTO_GET_IFACE (self)->set_key (self, key, key_len, error);
}

gchar *
fs_crypto_get_key_id (FsCrypto *self)
{
  g_return_val_if_fail (FS_IS_CRYPTO (self), NULL);
  return FS_CRYPTO_GET_IFACE (self)->get_key_id (self);
}

gchar *
fs_crypto_object_stem (FsCrypto *self, const gchar *normalized_path)
{
  g_return_val_if_fail (FS_IS_CRYPTO (self), NULL);
  g_return_val_if_fail (normalized_path != NULL, NULL);
  return FS_CRYPTO_GET_IFACE (self)->object_stem (self, normalized_path);
}

GInputStream *
fs_crypto_seal_stream (FsCrypto *self, GBytes *header, GInputStream *plain,
                       const guint8 *object_nonce, GError **error)
{
  g_return_val_if_fail (FS_IS_CRYPTO (self), NULL);
  g_return_val_if_fail (header != NULL, NULL);
  g_return_val_if_fail (G_IS_INPUT_STREAM (plain), NULL);
  return FS_CRYPTO_GET_IFACE (self)->seal_stream (self, header, plain, object_nonce, error);
}

GInputStream *
fs_crypto_open_stream (FsCrypto *self, GInputStream *sealed, GBytes **header,
                       GCancellable *cancellable, GError **error)
{
  g_return_val_if_fail (FS_IS_CRYPTO (self), NULL);
  g_return_val_if_fail (G_IS_INPUT_STREAM (sealed), NULL);
  return FS_CRYPTO_GET_IFACE (self)->open_stream (self, sealed, header, cancellable, error);
}

GBytes *
fs_crypto_seal_record (FsCrypto *self, GBytes *plain, const gchar *context, GError **error)
{
  g_return_val_if_fail (FS_IS_CRYPTO (self), NULL);
  g_return_val_if_fail (plain != NULL && context != NULL, NULL);
  return FS_CRYPTO_GET_IFACE (self)->seal_record (self, plain, context, error);
}

GBytes *
fs_crypto_open_record (FsCrypto *self, GBytes *sealed, const gchar *context, GError **error)
{
  g_return_val_if_fail (FS_IS_CRYPTO (self), NULL);
  g_return_val_if_fail (sealed != NULL && context != NULL, NULL);
  return FS_CRYPTO_GET_IFACE (self)->open_record (self, sealed, context, error);
}
