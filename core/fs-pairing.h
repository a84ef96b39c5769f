/* FsPairing: the interface of pairing plugins (pairing-token): issue a
 * short-lived token for a folder, redeem one into a folder configuration.
 * Implemented by the pairing issue; declared here so the loader knows it. */
#pragma once

#include <gio/gio.h>
#include "fs-storage.h"
#include "fs-crypto.h"

G_BEGIN_DECLS

#define FS_TYPE_PAIRING (fs_pairing_get_type ())
G_DECLARE_INTERFACE (FsPairing, fs_pairing, FS, PAIRING, GObject)

struct _FsPairingInterface {
  GTypeInterface parent_iface;

  /* Seal @envelope (the folder's key and settings) on @storage; returns the token. */
  gchar *(*issue) (FsPairing *self, FsStorage *storage, const gchar *prefix, GBytes *envelope,
                   guint ttl_seconds, guint64 *expires, GError **error);
  /* Fetch and open the envelope named by @token, then delete it. */
  GBytes *(*redeem) (FsPairing *self, FsStorage *storage, const gchar *prefix,
                     const gchar *token, GError **error);
};

gchar *fs_pairing_issue (FsPairing *self, FsStorage *storage, const gchar *prefix,
                         GBytes *envelope, guint ttl_seconds, guint64 *expires, GError **error);
GBytes *fs_pairing_redeem (FsPairing *self, FsStorage *storage, const gchar *prefix,
                           const gchar *token, GError **error);

G_END_DECLS
