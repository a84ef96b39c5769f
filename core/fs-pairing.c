/* FsPairing interface: argument checks, forwarding to the plugin. */
#include "fs-pairing.h"

G_DEFINE_INTERFACE (FsPairing, fs_pairing, G_TYPE_OBJECT)

static void
fs_pairing_default_init (FsPairingInterface *iface)
{
}

gchar *
fs_pairing_issue (FsPairing *self, FsStorage *storage, const gchar *prefix, GBytes *envelope,
                  guint ttl_seconds, guint64 *expires, GError **error)
{
  g_return_val_if_fail (FS_IS_PAIRING (self), NULL);
  g_return_val_if_fail (FS_IS_STORAGE (storage), NULL);
  return FS_PAIRING_GET_IFACE (self)->issue (self, storage, prefix, envelope, ttl_seconds,
                                             expires, error);
}

GBytes *
fs_pairing_redeem (FsPairing *self, FsStorage *storage, const gchar *prefix, const gchar *token,
                   GError **error)
{
  g_return_val_if_fail (FS_IS_PAIRING (self), NULL);
  g_return_val_if_fail (FS_IS_STORAGE (storage), NULL);
  return FS_PAIRING_GET_IFACE (self)->redeem (self, storage, prefix, token, error);
}
