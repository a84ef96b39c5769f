/* FsPairing interface: argument checks, forwarding to the plugin, and the
 * _async variants, which run the blocking calls in a GTask thread. */
#include <string.h>

#include "fs-pairing.h"

G_DEFINE_INTERFACE (FsPairing, fs_pairing, G_TYPE_OBJECT)

static void
fs_pairing_default_init (FsPairingInterface *iface)
{
}

gchar *
fs_pairing_issue (FsPairing *self, FsStorage *storage, GBytes *envelope, guint ttl_seconds,
                  guint64 *expires, gchar **object_key, GError **error)
{
  g_return_val_if_fail (FS_IS_PAIRING (self), NULL);
  g_return_val_if_fail (FS_IS_STORAGE (storage), NULL);
  g_return_val_if_fail (envelope != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);
  return FS_PAIRING_GET_IFACE (self)->issue (self, storage, envelope, ttl_seconds, expires,
                                             object_key, error);
}

GBytes *
fs_pairing_redeem (FsPairing *self, FsStorage *storage, const gchar *token, GError **error)
{
  g_return_val_if_fail (FS_IS_PAIRING (self), NULL);
  g_return_val_if_fail (FS_IS_STORAGE (storage), NULL);
  g_return_val_if_fail (token != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);
  return FS_PAIRING_GET_IFACE (self)->redeem (self, storage, token, error);
}

gboolean
fs_pairing_check_token (FsPairing *self, const gchar *token, gchar **normalized, GError **error)
{
  g_return_val_if_fail (FS_IS_PAIRING (self), FALSE);
  g_return_val_if_fail (token != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);
  return FS_PAIRING_GET_IFACE (self)->check_token (self, token, normalized, error);
}

gboolean
fs_pairing_cleanup (FsPairing *self, FsStorage *storage, guint *n_removed, GError **error)
{
  g_return_val_if_fail (FS_IS_PAIRING (self), FALSE);
  g_return_val_if_fail (FS_IS_STORAGE (storage), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);
  return FS_PAIRING_GET_IFACE (self)->cleanup (self, storage, n_removed, error);
}

/* ---- async ------------------------------------------------------------------ */

typedef struct {
  FsStorage *storage;
  GBytes *envelope;
  gchar *token;
  guint ttl_seconds;
  guint64 expires;
  gchar *object_key;
  guint n_removed;
} PairingCall;

static void
pairing_call_free (PairingCall *call)
{
  g_clear_object (&call->storage);
  g_clear_pointer (&call->envelope, g_bytes_unref);
  if (call->token != NULL)
    explicit_bzero (call->token, strlen (call->token));
  g_free (call->token);
  g_free (call->object_key);
  g_free (call);
}

static GTask *
pairing_task_new (FsPairing *self, FsStorage *storage, gpointer source_tag,
                  GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data)
{
  GTask *task = g_task_new (self, cancellable, callback, user_data);
  PairingCall *call = g_new0 (PairingCall, 1);

  call->storage = storage != NULL ? g_object_ref (storage) : NULL;
  g_task_set_source_tag (task, source_tag);
  g_task_set_task_data (task, call, (GDestroyNotify) pairing_call_free);
  /* A cancelled call never starts; a started one runs to the end, so an
   * envelope is never left half-issued or redeemed but not returned. */
  g_task_set_check_cancellable (task, FALSE);
  g_task_set_return_on_cancel (task, FALSE);
  return task;
}

static void
issue_thread (GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  PairingCall *call = task_data;
  GError *error = NULL;
  gchar *token;

  if (g_cancellable_set_error_if_cancelled (cancellable, &error))
    {
      g_task_return_error (task, error);
      return;
    }
  token = fs_pairing_issue (FS_PAIRING (source), call->storage, call->envelope,
                            call->ttl_seconds, &call->expires, &call->object_key, &error);
  if (token == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, token, g_free);
}

void
fs_pairing_issue_async (FsPairing *self, FsStorage *storage, GBytes *envelope,
                        guint ttl_seconds, GCancellable *cancellable,
                        GAsyncReadyCallback callback, gpointer user_data)
{
  g_autoptr (GTask) task = NULL;
  PairingCall *call;

  g_return_if_fail (FS_IS_PAIRING (self));
  g_return_if_fail (FS_IS_STORAGE (storage));
  g_return_if_fail (envelope != NULL);

  task = pairing_task_new (self, storage, fs_pairing_issue_async, cancellable, callback,
                           user_data);
  call = g_task_get_task_data (task);
  call->envelope = g_bytes_ref (envelope);
  call->ttl_seconds = ttl_seconds;
  g_task_run_in_thread (task, issue_thread);
}

gchar *
fs_pairing_issue_finish (FsPairing *self, GAsyncResult *result, guint64 *expires,
                         gchar **object_key, GError **error)
{
  PairingCall *call;
  gchar *token;

  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == fs_pairing_issue_async, NULL);

  token = g_task_propagate_pointer (G_TASK (result), error);
  if (token == NULL)
    return NULL;
  call = g_task_get_task_data (G_TASK (result));
  if (expires != NULL)
    *expires = call->expires;
  if (object_key != NULL)
    *object_key = g_strdup (call->object_key);
  return token;
}

static void
redeem_thread (GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  PairingCall *call = task_data;
  GError *error = NULL;
  GBytes *plaintext;

  if (g_cancellable_set_error_if_cancelled (cancellable, &error))
    {
      g_task_return_error (task, error);
      return;
    }
  plaintext = fs_pairing_redeem (FS_PAIRING (source), call->storage, call->token, &error);
  if (plaintext == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, plaintext, (GDestroyNotify) g_bytes_unref);
}

void
fs_pairing_redeem_async (FsPairing *self, FsStorage *storage, const gchar *token,
                         GCancellable *cancellable, GAsyncReadyCallback callback,
                         gpointer user_data)
{
  g_autoptr (GTask) task = NULL;
  PairingCall *call;

  g_return_if_fail (FS_IS_PAIRING (self));
  g_return_if_fail (FS_IS_STORAGE (storage));
  g_return_if_fail (token != NULL);

  task = pairing_task_new (self, storage, fs_pairing_redeem_async, cancellable, callback,
                           user_data);
  call = g_task_get_task_data (task);
  call->token = g_strdup (token);
  g_task_run_in_thread (task, redeem_thread);
}

GBytes *
fs_pairing_redeem_finish (FsPairing *self, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == fs_pairing_redeem_async,
                        NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

static void
cleanup_thread (GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  PairingCall *call = task_data;
  GError *error = NULL;

  if (g_cancellable_set_error_if_cancelled (cancellable, &error))
    {
      g_task_return_error (task, error);
      return;
    }
  if (!fs_pairing_cleanup (FS_PAIRING (source), call->storage, &call->n_removed, &error))
    g_task_return_error (task, error);
  else
    g_task_return_boolean (task, TRUE);
}

void
fs_pairing_cleanup_async (FsPairing *self, FsStorage *storage, GCancellable *cancellable,
                          GAsyncReadyCallback callback, gpointer user_data)
{
  g_autoptr (GTask) task = NULL;

  g_return_if_fail (FS_IS_PAIRING (self));
  g_return_if_fail (FS_IS_STORAGE (storage));

  task = pairing_task_new (self, storage, fs_pairing_cleanup_async, cancellable, callback,
                           user_data);
  g_task_run_in_thread (task, cleanup_thread);
}

gboolean
fs_pairing_cleanup_finish (FsPairing *self, GAsyncResult *result, guint *n_removed,
                           GError **error)
{
  PairingCall *call;

  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == fs_pairing_cleanup_async,
                        FALSE);

  if (!g_task_propagate_boolean (G_TASK (result), error))
    return FALSE;
  call = g_task_get_task_data (G_TASK (result));
  if (n_removed != NULL)
    *n_removed = call->n_removed;
  return TRUE;
}
