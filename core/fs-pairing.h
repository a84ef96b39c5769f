/* FsPairing: the interface of pairing plugins (pairing-token): seal a folder's
 * key and settings on the storage under a short-lived token, redeem a token
 * into them, and clean up envelopes that expired unused.
 *
 * The envelope lives in a bucket-level pairing area, independent of any
 * folder prefix: the redeeming device knows only the endpoint and bucket.
 *
 * The synchronous calls block (a key derivation of ~0.3 s plus storage
 * requests): call them from a worker thread, or use the _async variants,
 * which run them in a GTask thread. Implementations are stateless and
 * thread-safe, and never log or put into an error the token, its secret,
 * keys or the envelope plaintext. */
#pragma once

#include <gio/gio.h>
#include "fs-storage.h"

G_BEGIN_DECLS

/* The default lifetime of a token, and the longest one accepted. */
#define FS_PAIRING_DEFAULT_TTL 300
#define FS_PAIRING_MAX_TTL 86400
/* The largest envelope plaintext issue() accepts. */
#define FS_PAIRING_MAX_ENVELOPE (64 * 1024)

#define FS_TYPE_PAIRING (fs_pairing_get_type ())
G_DECLARE_INTERFACE (FsPairing, fs_pairing, FS, PAIRING, GObject)

struct _FsPairingInterface {
  GTypeInterface parent_iface;

  /* Seal @envelope (opaque bytes: the folder's key and settings) on @storage
   * for @ttl_seconds; returns the token as shown to the user. */
  gchar *(*issue) (FsPairing *self, FsStorage *storage, GBytes *envelope, guint ttl_seconds,
                   guint64 *expires, gchar **object_key, GError **error);
  /* Fetch and open the envelope named by @token, then delete it. */
  GBytes *(*redeem) (FsPairing *self, FsStorage *storage, const gchar *token, GError **error);
  /* Check @token locally (no storage, no key derivation). */
  gboolean (*check_token) (FsPairing *self, const gchar *token, gchar **normalized,
                           GError **error);
  /* Delete the envelopes in the pairing area whose expiry has passed. */
  gboolean (*cleanup) (FsPairing *self, FsStorage *storage, guint *n_removed, GError **error);
};

/* Seals @envelope (at most FS_PAIRING_MAX_ENVELOPE bytes) on @storage and
 * returns the token ("XXXX-XXXX-XXXX"). @ttl_seconds is 1 to
 * FS_PAIRING_MAX_TTL. @expires (may be NULL) gets the expiry in unix seconds;
 * @object_key (may be NULL) the storage key of the envelope, e.g. to presign
 * URLs for it. Storage errors come back in FS_STORAGE_ERROR. */
gchar *fs_pairing_issue (FsPairing *self, FsStorage *storage, GBytes *envelope,
                         guint ttl_seconds, guint64 *expires, gchar **object_key, GError **error);

/* Returns the envelope plaintext named by @token and deletes the envelope.
 * Errors: FS_PAIRING_ERROR_INVALID (malformed or mistyped token; no storage
 * request is made), _NOT_FOUND (used, cleaned up, never issued, or a
 * mistyped token the check character could not catch), _EXPIRED (the
 * envelope is deleted too), _FAILED (modified or damaged envelope);
 * FS_STORAGE_ERROR for storage failures (TRANSIENT, AUTH, ...). */
GBytes *fs_pairing_redeem (FsPairing *self, FsStorage *storage, const gchar *token,
                           GError **error);

/* Checks @token's characters, length and check character without any
 * request; on success @normalized (may be NULL) gets the canonical form
 * "XXXX-XXXX-XXXX". Errors are FS_PAIRING_ERROR_INVALID. */
gboolean fs_pairing_check_token (FsPairing *self, const gchar *token, gchar **normalized,
                                 GError **error);

/* Deletes every envelope in the pairing area whose expiry has passed by the
 * local clock; @n_removed (may be NULL) gets how many. Objects that are not
 * envelopes of a known format are left alone. */
gboolean fs_pairing_cleanup (FsPairing *self, FsStorage *storage, guint *n_removed,
                             GError **error);

/* The same, run in a GTask thread; @cancellable is checked before starting. */
void fs_pairing_issue_async (FsPairing *self, FsStorage *storage, GBytes *envelope,
                             guint ttl_seconds, GCancellable *cancellable,
                             GAsyncReadyCallback callback, gpointer user_data);
gchar *fs_pairing_issue_finish (FsPairing *self, GAsyncResult *result, guint64 *expires,
                                gchar **object_key, GError **error);
void fs_pairing_redeem_async (FsPairing *self, FsStorage *storage, const gchar *token,
                              GCancellable *cancellable, GAsyncReadyCallback callback,
                              gpointer user_data);
GBytes *fs_pairing_redeem_finish (FsPairing *self, GAsyncResult *result, GError **error);
void fs_pairing_cleanup_async (FsPairing *self, FsStorage *storage, GCancellable *cancellable,
                               GAsyncReadyCallback callback, gpointer user_data);
gboolean fs_pairing_cleanup_finish (FsPairing *self, GAsyncResult *result, guint *n_removed,
                                    GError **error);

G_END_DECLS
