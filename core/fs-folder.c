/* FsFolder: a synced folder inside foldersyncd. The main loop owns all state;
 * fs_engine_new() and fs_engine_sync() run in a GTask worker thread, one at
 * a time. A batch or poll tick arriving during a sync sets "again", so
 * exactly one more sync follows however many arrive. The engine's progress
 * and per-file events come from that thread; they are queued under a mutex
 * and applied on the main context at most about four times a second. */
#include "fs-folder.h"
#include "fs-folder-pairing.h"
#include "fs-pairing.h"

#include <errno.h>
#include <fcntl.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdio.h>
#include <string.h>
#include <glib/gi18n.h>
#include <glib/gstdio.h>

#include "fs-batch-queue.h"
#include "fs-dbus-error.h"
#include "fs-error.h"
#include "fs-watcher.h"

struct _FsFolder
{
  GObject parent_instance;

  FsFolderConfig *config;
  gchar *object_path;
  FsDBusObjectSkeleton *object;
  FsDBusFolder *iface;

  /* Lent to the worker while a sync runs; the main thread does not touch it
   * then. NULL until the first sync opened it. */
  FsEngine *engine;
  FsWatcher *watcher;
  FsBatchQueue *queue;
  guint poll_id;
  guint retry_id;

  gboolean running;          /* started, not stopped */
  gboolean syncing;          /* a worker runs */
  gboolean again;            /* sync once more when the worker is done */
  /* What the next sync covers: the whole folder, or only the paths the
   * watcher reported since the last one started. */
  gboolean whole_next;
  GHashTable *changed_paths;
  gboolean confirm_next;     /* ConfirmDeletes: the next sync applies held deletions */
  GCancellable *cancellable; /* of the running sync */
  guint64 n_started;
  guint64 n_syncs;
  GPtrArray *waiters; /* GTask of fs_folder_wait_async() */

  /* Filled by the sync thread, drained on @context (under @ui_lock). */
  GMainContext *context;
  GMutex ui_lock;
  FsSyncProgress ui_progress;
  gboolean ui_progress_set;
  GPtrArray *ui_events; /* (type as string, path, detail) triples */
  GSource *ui_source;
  gint64 ui_last_us;
};

#define UI_INTERVAL_US (250 * 1000)

G_DEFINE_TYPE (FsFolder, fs_folder, G_TYPE_OBJECT)

/* Structured log lines carry the folder id as a journald field. */
#define folder_log(self, level, ...)                                                               \
  G_STMT_START                                                                                     \
  {                                                                                                \
    g_autofree gchar *_msg = g_strdup_printf (__VA_ARGS__);                                        \
    g_log_structured (G_LOG_DOMAIN, level, "FOLDERSYNC_FOLDER", (self)->config->id, "MESSAGE",     \
                      "Folder %s: %s", (self)->config->id, _msg);                                  \
  }                                                                                                \
  G_STMT_END

static void start_sync (FsFolder *self);
static void request_sync (FsFolder *self, gboolean force);

static gboolean
on_retry (gpointer user_data)
{
  FsFolder *self = user_data;

  self->retry_id = 0;
  request_sync (self, FALSE);
  return G_SOURCE_REMOVE;
}

/* ---- the engine, in a worker thread ------------------------------------- */

FsEngine *
fs_folder_open_engine (const FsFolderConfig *config, GError **error)
{
  g_autoptr (FsStorage) storage = NULL;
  g_autoptr (GBytes) key = NULL;
  g_autofree gchar *store_id = NULL;
  g_autofree gchar *prefix = NULL;
  FsEngineConfig engine_config = { 0 };

  key = fs_folder_config_get_key (config, error);
  if (key == NULL)
    return NULL;
  storage = fs_folder_config_open_storage (config, &store_id, &prefix, error);
  if (storage == NULL)
    return NULL;
  engine_config.local_path = config->local_path;
  engine_config.storage = storage;
  engine_config.store_id = store_id;
  engine_config.prefix = prefix;
  engine_config.key = key;
  engine_config.device_name
    = config->device_name != NULL ? config->device_name : g_getenv ("FOLDERSYNC_DEVICE_NAME");
  return fs_engine_new (&engine_config, error);
}

typedef struct
{
  FsFolderConfig *config;
  FsEngine *engine;
  gboolean confirm;
  FsSyncStats stats;
  GPtrArray *messages;
  GStrv paths; /* NULL: the whole folder */
} SyncJob;

static void
sync_job_free (SyncJob *job)
{
  fs_folder_config_free (job->config);
  g_clear_object (&job->engine);
  g_ptr_array_unref (job->messages);
  g_strfreev (job->paths);
  g_free (job);
}

/* ---- progress and events, from the sync thread to the bus --------------- */

static gboolean on_ui_flush (gpointer user_data);

/* Under ui_lock: makes sure a flush is scheduled, no sooner than
 * UI_INTERVAL_US after the last one. */
static void
schedule_ui_flush (FsFolder *self, gboolean now)
{
  gint64 wait_us;

  if (self->ui_source != NULL && now)
    {
      g_source_destroy (self->ui_source);
      g_clear_pointer (&self->ui_source, g_source_unref);
    }
  if (self->ui_source != NULL)
    return;
  wait_us = now ? 0 : self->ui_last_us + UI_INTERVAL_US - g_get_monotonic_time ();
  self->ui_source = g_timeout_source_new (wait_us > 0 ? (guint)(wait_us / 1000) : 0);
  g_source_set_callback (self->ui_source, on_ui_flush, g_object_ref (self), g_object_unref);
  g_source_attach (self->ui_source, self->context);
}

static void
on_engine_progress (const FsSyncProgress *progress, gpointer user_data)
{
  FsFolder *self = user_data;
  gboolean now;

  g_mutex_lock (&self->ui_lock);
  /* A new phase (the transfers begin: the pending counts) is shown at once,
   * even if a whole short transfer phase would fit in one interval. */
  now = !self->ui_progress_set || progress->phase != self->ui_progress.phase;
  self->ui_progress = *progress;
  self->ui_progress_set = TRUE;
  schedule_ui_flush (self, now);
  g_mutex_unlock (&self->ui_lock);
}

static void
on_engine_event (FsSyncEventType type, const gchar *path, const gchar *detail, gpointer user_data)
{
  FsFolder *self = user_data;

  g_mutex_lock (&self->ui_lock);
  g_ptr_array_add (self->ui_events, g_strdup (type == FS_SYNC_EVENT_CONFLICT ? "c" : "f"));
  g_ptr_array_add (self->ui_events, g_strdup (path));
  g_ptr_array_add (self->ui_events, g_strdup (detail));
  schedule_ui_flush (self, FALSE);
  g_mutex_unlock (&self->ui_lock);
}

static void set_state (FsFolder *self, const gchar *state);

/* Main context: applies the latest progress (while a sync runs) and emits
 * the queued signals in order. */
static void
flush_ui (FsFolder *self)
{
  g_autoptr (GPtrArray) events = NULL;
  g_autoptr (GSource) source = NULL;
  FsSyncProgress progress;
  gboolean progress_set;

  g_mutex_lock (&self->ui_lock);
  events = g_steal_pointer (&self->ui_events);
  self->ui_events = g_ptr_array_new_with_free_func (g_free);
  progress = self->ui_progress;
  progress_set = self->ui_progress_set;
  self->ui_progress_set = FALSE;
  source = g_steal_pointer (&self->ui_source);
  self->ui_last_us = g_get_monotonic_time ();
  g_mutex_unlock (&self->ui_lock);

  if (source != NULL)
    g_source_destroy (source);
  if (self->iface == NULL)
    return;
  if (progress_set && self->syncing)
    {
      fs_dbus_folder_set_progress (self->iface,
                                   g_variant_new ("(tttt)", (guint64)progress.files_done,
                                                  (guint64)progress.files_total,
                                                  progress.bytes_done, progress.bytes_total));
      fs_dbus_folder_set_pending_uploads (self->iface, progress.pending_uploads);
      fs_dbus_folder_set_pending_downloads (self->iface, progress.pending_downloads);
      set_state (self, progress.phase == FS_SYNC_PHASE_SCANNING ? "scanning" : "syncing");
    }
  for (guint i = 0; i + 2 < events->len; i += 3)
    {
      const gchar *type = g_ptr_array_index (events, i);
      const gchar *path = g_ptr_array_index (events, i + 1);
      const gchar *detail = g_ptr_array_index (events, i + 2);

      if (type[0] == 'c')
        fs_dbus_folder_emit_conflict_detected (self->iface, path, detail);
      else
        fs_dbus_folder_emit_file_synced (self->iface, path, detail);
    }
}

static gboolean
on_ui_flush (gpointer user_data)
{
  flush_ui (FS_FOLDER (user_data));
  return G_SOURCE_REMOVE;
}

static void
sync_thread (GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  FsFolder *self = FS_FOLDER (source);
  SyncJob *job = task_data;
  GError *error = NULL;
  gboolean ok;

  if (job->engine == NULL)
    {
      job->engine = fs_folder_open_engine (job->config, &error);
      if (job->engine == NULL)
        {
          g_task_return_error (task, error);
          return;
        }
    }
  fs_engine_set_confirm_deletes (job->engine, job->confirm);
  fs_engine_set_max_workers (job->engine, job->config->max_workers);
  /* The task holds @self for as long as this runs; unset before it ends. */
  fs_engine_set_progress_func (job->engine, on_engine_progress, self, NULL);
  fs_engine_set_event_func (job->engine, on_engine_event, self, NULL);
  ok = fs_engine_sync_paths (job->engine, (const gchar *const *) job->paths, &job->stats,
                             job->messages, cancellable, &error);
  fs_engine_set_progress_func (job->engine, NULL, NULL, NULL);
  fs_engine_set_event_func (job->engine, NULL, NULL, NULL);
  fs_engine_set_confirm_deletes (job->engine, FALSE);
  if (!ok)
    g_task_return_error (task, error);
  else
    g_task_return_boolean (task, TRUE);
#ifdef __GLIBC__
  /* A whole sync of a big folder freed tens of MiB in scattered pieces that
   * free() keeps: give them back, the daemon is idle most of its life. Here,
   * after the result went out, it delays nothing. */
  malloc_trim (0);
#endif
}

/* ---- state on the bus ---------------------------------------------------- */

static void
set_state (FsFolder *self, const gchar *state)
{
  if (g_strcmp0 (fs_dbus_folder_get_state (self->iface), state) != 0)
    {
      g_debug ("Folder %s: state %s", self->config->id, state);
      fs_dbus_folder_set_state (self->iface, state);
    }
}

static void
complete_waiters (FsFolder *self)
{
  g_autoptr (GPtrArray) waiters = g_steal_pointer (&self->waiters);

  self->waiters = g_ptr_array_new_with_free_func (g_object_unref);
  for (guint i = 0; i < waiters->len; i++)
    g_task_return_boolean (g_ptr_array_index (waiters, i), TRUE);
}

static void
sync_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  FsFolder *self = FS_FOLDER (source);
  GTask *task = G_TASK (result);
  SyncJob *job = g_task_get_task_data (task);
  g_autoptr (GError) error = NULL;
  gboolean ok;

  ok = g_task_propagate_boolean (task, &error);
  /* A sync of some paths that did not finish them all: the next sync looks
   * at the whole folder (the paths it was given are not kept). */
  if (job->paths != NULL && (!ok || job->stats.deferred > 0 || job->stats.errors > 0))
    self->whole_next = TRUE;
  /* What the sync thread queued last, before the final values below. */
  flush_ui (self);
  self->syncing = FALSE;
  g_clear_object (&self->cancellable);
  if (self->engine == NULL && job->engine != NULL)
    self->engine = g_object_ref (job->engine);
  /* A stopped folder lets go of its index (and its lock), so a one-shot
   * `foldersync sync` of it works; the engine is opened again on Start. */
  if (!self->running)
    g_clear_object (&self->engine);

  self->n_syncs++;
  fs_dbus_folder_set_sync_count (self->iface, self->n_syncs);
  if (ok)
    {
      const FsSyncStats *s = &job->stats;
      guint64 files = (guint64)s->files_up + s->files_down;
      guint64 bytes = s->bytes_up + s->bytes_down;

      fs_dbus_folder_set_last_sync (self->iface, (guint64)(g_get_real_time () / G_USEC_PER_SEC));
      fs_dbus_folder_set_held_deletes (self->iface, s->held_deletes);
      fs_dbus_folder_set_progress (self->iface,
                                   g_variant_new ("(tttt)", files, files, bytes, bytes));
      fs_dbus_folder_set_pending_uploads (self->iface, 0);
      fs_dbus_folder_set_pending_downloads (self->iface, 0);
      /* Files that failed are retried by the next sync; say why meanwhile. */
      fs_dbus_folder_set_last_error (self->iface, s->errors > 0 && job->messages->len > 0
                                                    ? g_ptr_array_index (job->messages, 0)
                                                    : "");
      if (files > 0 || s->deleted_local > 0 || s->deleted_remote > 0 || s->conflicts > 0
          || s->errors > 0 || s->held_deletes > 0)
        folder_log (self, G_LOG_LEVEL_MESSAGE,
                    "synced: %u up, %u down, %u deleted here, %u deleted remotely, "
                    "%u conflicts, %u errors, %u deletions held",
                    s->files_up, s->files_down, s->deleted_local, s->deleted_remote, s->conflicts,
                    s->errors, s->held_deletes);
      else
        g_debug ("Folder %s: synced, nothing to do", self->config->id);
      set_state (self, self->running ? "idle" : "paused");
    }
  else
    {
      /* A failed sync consumes the confirmation: HeldDeletes still shows the
       * deletions, and the user confirms again what is then held. */
      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        {
          g_debug ("Folder %s: sync cancelled", self->config->id);
          set_state (self, self->running ? "idle" : "paused");
        }
      else
        {
          g_autoptr (GError) dbus_error = fs_dbus_error_normalize (error);
          g_autofree gchar *name = g_dbus_error_encode_gerror (dbus_error);

          fs_dbus_folder_set_last_error (self->iface, error->message);
          if (g_error_matches (error, FS_ENGINE_ERROR, FS_ENGINE_ERROR_BUSY) && self->running)
            {
              /* Typically the daemon we replaced (--replace) still finishing
               * its sync: try again shortly. */
              folder_log (self, G_LOG_LEVEL_MESSAGE, "%s; retrying in 1 s", error->message);
              set_state (self, "idle");
              if (self->retry_id == 0)
                self->retry_id = g_timeout_add_seconds (1, on_retry, self);
            }
          else if (g_error_matches (error, FS_STORAGE_ERROR, FS_STORAGE_ERROR_TRANSIENT))
            {
              folder_log (self, G_LOG_LEVEL_MESSAGE, "store unreachable, retrying: %s",
                          error->message);
              set_state (self, self->running ? "offline" : "paused");
            }
          else
            {
              folder_log (self, G_LOG_LEVEL_WARNING, "sync failed: %s", error->message);
              set_state (self, self->running ? "error" : "paused");
              fs_dbus_folder_emit_error (self->iface, name, error->message);
            }
        }
    }

  if (self->running && self->again)
    {
      self->again = FALSE;
      start_sync (self);
      return;
    }
  self->again = FALSE;
  complete_waiters (self);
}

static void
start_sync (FsFolder *self)
{
  g_autoptr (GTask) task = NULL;
  SyncJob *job;

  g_return_if_fail (!self->syncing);

  job = g_new0 (SyncJob, 1);
  job->config = fs_folder_config_copy (self->config);
  job->engine = self->engine != NULL ? g_object_ref (self->engine) : NULL;
  job->confirm = self->confirm_next;
  job->messages = g_ptr_array_new_with_free_func (g_free);
  self->confirm_next = FALSE;
  /* Held deletions are applied by a whole sync. */
  if (!self->whole_next && !job->confirm)
    {
      g_autofree gpointer *keys = g_hash_table_get_keys_as_array (self->changed_paths, NULL);
      job->paths = g_strdupv ((gchar **) keys);
    }
  g_hash_table_remove_all (self->changed_paths);
  self->whole_next = FALSE;

  self->syncing = TRUE;
  self->n_started++;
  self->cancellable = g_cancellable_new ();
  set_state (self, "scanning");
  g_debug ("Folder %s: sync %" G_GUINT64_FORMAT " starts", self->config->id, self->n_started);

  task = g_task_new (self, self->cancellable, sync_done, NULL);
  g_task_set_source_tag (task, start_sync);
  g_task_set_task_data (task, job, (GDestroyNotify)sync_job_free);
  g_task_run_in_thread (task, sync_thread);
}

/* A sync of the whole folder now, or right after the running one. @force:
 * also when stopped. */
static void
request_sync (FsFolder *self, gboolean force)
{
  if (!self->running && !force)
    return;
  self->whole_next = TRUE;
  if (self->syncing)
    self->again = TRUE;
  else
    start_sync (self);
}

/* ---- local and remote change sources ------------------------------------ */

static void
on_watcher_changed (FsWatcher *watcher, const gchar *path, gpointer user_data)
{
  FsFolder *self = user_data;

  if (self->queue != NULL)
    fs_batch_queue_add (self->queue, path);
}

static void
update_watch_mode (FsFolder *self)
{
  fs_dbus_folder_set_watch_mode (self->iface,
                                 fs_watch_mode_to_string (fs_watcher_get_mode (self->watcher)));
}

static void
on_watcher_mode (GObject *watcher, GParamSpec *pspec, gpointer user_data)
{
  FsFolder *self = user_data;

  update_watch_mode (self);
  folder_log (self, G_LOG_LEVEL_MESSAGE, "watching by %s",
              fs_watch_mode_to_string (fs_watcher_get_mode (self->watcher)));
}

static void
on_batch_ready (FsBatchQueue *queue, GStrv paths, gboolean rescan, gpointer user_data)
{
  FsFolder *self = user_data;

  g_debug ("Folder %s: batch of %u paths%s", self->config->id,
           paths != NULL ? g_strv_length (paths) : 0, rescan ? " and a rescan" : "");
  if (rescan || paths == NULL || paths[0] == NULL)
    {
      request_sync (self, FALSE);
      return;
    }
  /* Only these paths are looked at (the engine walks the whole folder
   * itself when they need it). */
  if (!self->running)
    return;
  for (guint i = 0; paths[i] != NULL; i++)
    g_hash_table_add (self->changed_paths, g_strdup (paths[i]));
  if (self->syncing)
    self->again = TRUE;
  else
    start_sync (self);
}

static gboolean
on_poll_tick (gpointer user_data)
{
  FsFolder *self = user_data;

  /* Remote changes are only seen by syncing. */
  request_sync (self, FALSE);
  return G_SOURCE_CONTINUE;
}

static void
save_config (FsFolder *self)
{
  g_autoptr (GError) error = NULL;

  if (!fs_folder_config_save (self->config, &error))
    g_warning ("Folder %s: %s", self->config->id, error->message);
}

void
fs_folder_start (FsFolder *self, gboolean persist)
{
  g_autoptr (GError) error = NULL;
  guint batch_ms;

  g_return_if_fail (FS_IS_FOLDER (self));

  if (self->running)
    return;
  self->running = TRUE;
  if (persist && !self->config->running)
    {
      self->config->running = TRUE;
      save_config (self);
    }

  batch_ms = self->config->batch_interval_ms;
  self->queue = fs_batch_queue_new (batch_ms, 10 * batch_ms);
  g_signal_connect (self->queue, "ready", G_CALLBACK (on_batch_ready), self);
  self->watcher = fs_watcher_new (self->config->local_path, self->config->poll_interval_s);
  g_signal_connect (self->watcher, "changed", G_CALLBACK (on_watcher_changed), self);
  g_signal_connect (self->watcher, "notify::mode", G_CALLBACK (on_watcher_mode), self);
  if (!fs_watcher_start (self->watcher, &error))
    {
      /* The remote poll still syncs the folder every poll_interval. */
      folder_log (self, G_LOG_LEVEL_WARNING, "cannot watch, polling instead: %s", error->message);
      fs_dbus_folder_set_watch_mode (self->iface, "polling");
    }
  else
    update_watch_mode (self);
  self->poll_id = g_timeout_add_seconds (self->config->poll_interval_s, on_poll_tick, self);

  folder_log (self, G_LOG_LEVEL_MESSAGE, "started on %s", self->config->local_path);
  set_state (self, "idle");
  request_sync (self, FALSE);
}

void
fs_folder_stop (FsFolder *self, gboolean persist)
{
  g_return_if_fail (FS_IS_FOLDER (self));

  if (persist && self->config->running)
    {
      self->config->running = FALSE;
      save_config (self);
    }
  if (!self->running)
    return;
  self->running = FALSE;
  self->again = FALSE;
  if (self->watcher != NULL)
    {
      g_signal_handlers_disconnect_by_data (self->watcher, self);
      fs_watcher_stop (self->watcher);
      g_clear_object (&self->watcher);
    }
  if (self->queue != NULL)
    {
      g_signal_handlers_disconnect_by_data (self->queue, self);
      g_clear_object (&self->queue);
    }
  g_clear_handle_id (&self->poll_id, g_source_remove);
  g_clear_handle_id (&self->retry_id, g_source_remove);
  if (self->cancellable != NULL)
    g_cancellable_cancel (self->cancellable);
  /* No sync running: release the index now (else sync_done does it). */
  if (!self->syncing)
    g_clear_object (&self->engine);
  folder_log (self, G_LOG_LEVEL_MESSAGE, "stopped");
  set_state (self, "paused");
}

void
fs_folder_wait_async (FsFolder *self, GCancellable *cancellable, GAsyncReadyCallback callback,
                      gpointer user_data)
{
  g_autoptr (GTask) task = g_task_new (self, cancellable, callback, user_data);

  g_task_set_source_tag (task, fs_folder_wait_async);
  if (!self->syncing)
    g_task_return_boolean (task, TRUE);
  else
    g_ptr_array_add (self->waiters, g_steal_pointer (&task));
}

gboolean
fs_folder_wait_finish (FsFolder *self, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

/* ---- conflicts ------------------------------------------------------------ */

#define CONFLICT_MARK " (conflict "

static void
find_conflicts (const gchar *root, const gchar *rel, GPtrArray *pairs, GCancellable *cancellable)
{
  g_autofree gchar *dir_path = rel != NULL ? g_build_filename (root, rel, NULL) : g_strdup (root);
  g_autoptr (GDir) dir = g_dir_open (dir_path, 0, NULL);
  const gchar *name;

  if (dir == NULL || g_cancellable_is_cancelled (cancellable))
    return;
  while ((name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree gchar *child_rel
        = rel != NULL ? g_build_filename (rel, name, NULL) : g_strdup (name);
      g_autofree gchar *child_path = g_build_filename (root, child_rel, NULL);
      const gchar *mark;
      GStatBuf st;

      if (g_str_has_prefix (name, ".foldersync."))
        continue;
      mark = strstr (name, CONFLICT_MARK);
      if (mark != NULL)
        {
          const gchar *close = strchr (mark, ')');
          if (close != NULL)
            {
              g_autofree gchar *base
                = g_strdup_printf ("%.*s%s", (int)(mark - name), name, close + 1);
              g_autofree gchar *orig_rel
                = rel != NULL ? g_build_filename (rel, base, NULL) : g_strdup (base);
              g_ptr_array_add (pairs, g_steal_pointer (&orig_rel));
              g_ptr_array_add (pairs, g_strdup (child_rel));
            }
        }
      if (g_lstat (child_path, &st) == 0 && S_ISDIR (st.st_mode))
        find_conflicts (root, child_rel, pairs, cancellable);
    }
}

GVariant *
fs_folder_list_conflicts_sync (const gchar *root, GCancellable *cancellable, GError **error)
{
  g_autoptr (GPtrArray) pairs = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GArray) order = g_array_new (FALSE, FALSE, sizeof (guint));
  GVariantBuilder builder;

  find_conflicts (root, NULL, pairs, cancellable);
  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    return NULL;
  for (guint i = 0; i < pairs->len; i += 2)
    g_array_append_val (order, i);
  /* Stable output: sorted by conflict copy. */
  for (guint i = 1; i < order->len; i++)
    for (guint j = i; j > 0; j--)
      {
        guint a = g_array_index (order, guint, j - 1);
        guint b = g_array_index (order, guint, j);
        if (g_strcmp0 (g_ptr_array_index (pairs, a + 1), g_ptr_array_index (pairs, b + 1)) <= 0)
          break;
        g_array_index (order, guint, j - 1) = b;
        g_array_index (order, guint, j) = a;
      }
  g_variant_builder_init (&builder, G_VARIANT_TYPE ("a(ss)"));
  for (guint i = 0; i < order->len; i++)
    {
      guint k = g_array_index (order, guint, i);
      g_variant_builder_add (&builder, "(ss)", (const gchar *)g_ptr_array_index (pairs, k),
                             (const gchar *)g_ptr_array_index (pairs, k + 1));
    }
  return g_variant_builder_end (&builder);
}

static void
list_conflicts_thread (GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  GError *error = NULL;
  GVariant *result = fs_folder_list_conflicts_sync (task_data, cancellable, &error);

  if (result == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, g_variant_ref_sink (result), (GDestroyNotify)g_variant_unref);
}

static void
list_conflicts_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  FsFolder *self = FS_FOLDER (source);
  GDBusMethodInvocation *invocation = user_data;
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) conflicts = g_task_propagate_pointer (G_TASK (result), &error);

  if (conflicts == NULL)
    {
      g_autoptr (GError) dbus_error = fs_dbus_error_normalize (error);
      g_dbus_method_invocation_return_gerror (invocation, dbus_error);
      return;
    }
  fs_dbus_folder_complete_list_conflicts (self->iface, invocation, conflicts);
}

/* A plain free name for the copy of @orig_rel: "name (2).ext", "name (3).ext"…
 * (the extension split as fs_conflict_name() does). */
static gchar *
plain_name (const gchar *orig_rel, guint n)
{
  const gchar *slash = strrchr (orig_rel, '/');
  const gchar *base = slash != NULL ? slash + 1 : orig_rel;
  const gchar *dot = strrchr (base, '.');

  if (dot == NULL || dot == base || dot[1] == '\0')
    return g_strdup_printf ("%s (%u)", orig_rel, n);
  return g_strdup_printf ("%.*s (%u)%s", (int)(dot - orig_rel), orig_rel, n, dot);
}

static gboolean
resolve_io_error (GError **error, const gchar *what, const gchar *rel)
{
  int saved = errno;
  g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved), _("%s ‘%s’: %s"), what, rel,
               g_strerror (saved));
  return FALSE;
}

gboolean
fs_folder_resolve_conflict_sync (const gchar *root, const gchar *path, const gchar *keep,
                                 gchar **out_result, GCancellable *cancellable, GError **error)
{
  g_autoptr (GVariant) pairs = NULL;
  g_autofree gchar *orig = NULL;
  g_autofree gchar *copy = NULL;
  g_autofree gchar *orig_abs = NULL;
  g_autofree gchar *copy_abs = NULL;
  guint matches_orig = 0;
  GVariantIter iter;
  const gchar *o, *c;

  if (path == NULL || *path == '\0' || g_path_is_absolute (path))
    {
      g_set_error (error, FS_DAEMON_ERROR, FS_DAEMON_ERROR_INVALID_ARGUMENT,
                   _("‘%s’ is not a path relative to the folder"), path != NULL ? path : "");
      return FALSE;
    }
  pairs = fs_folder_list_conflicts_sync (root, cancellable, error);
  if (pairs == NULL)
    return FALSE;
  /* The copy as ListConflicts names it; or an original with exactly one copy. */
  g_variant_iter_init (&iter, pairs);
  while (g_variant_iter_next (&iter, "(&s&s)", &o, &c))
    {
      if (g_strcmp0 (c, path) == 0)
        {
          g_free (orig);
          g_free (copy);
          orig = g_strdup (o);
          copy = g_strdup (c);
          matches_orig = 0;
          break;
        }
      if (g_strcmp0 (o, path) == 0)
        {
          matches_orig++;
          g_free (orig);
          g_free (copy);
          orig = g_strdup (o);
          copy = g_strdup (c);
        }
    }
  if (copy == NULL)
    {
      g_set_error (error, FS_DAEMON_ERROR, FS_DAEMON_ERROR_NOT_FOUND,
                   _("‘%s’ is not a conflict copy, nor a file with one"), path);
      return FALSE;
    }
  if (matches_orig > 1)
    {
      g_set_error (error, FS_DAEMON_ERROR, FS_DAEMON_ERROR_INVALID_ARGUMENT,
                   _("‘%s’ has %u conflict copies: name the copy to resolve"), path, matches_orig);
      return FALSE;
    }

  orig_abs = g_build_filename (root, orig, NULL);
  copy_abs = g_build_filename (root, copy, NULL);
  if (g_strcmp0 (keep, "mine") == 0)
    {
      GStatBuf st;

      /* A file replaces a file in one step; a directory in the way goes to
       * the trash first (rename() cannot replace a non-empty one). */
      if (g_lstat (orig_abs, &st) == 0 && S_ISDIR (st.st_mode)
          && !fs_engine_move_to_trash (root, orig, error))
        return FALSE;
      if (rename (copy_abs, orig_abs) != 0)
        return resolve_io_error (error, _("Cannot put the conflict copy in place of"), orig);
      if (out_result != NULL)
        *out_result = g_steal_pointer (&orig);
      return TRUE;
    }
  if (g_strcmp0 (keep, "theirs") == 0)
    {
      if (!fs_engine_move_to_trash (root, copy, error))
        return FALSE;
      if (out_result != NULL)
        *out_result = g_steal_pointer (&orig);
      return TRUE;
    }
  if (g_strcmp0 (keep, "both") == 0)
    {
      for (guint n = 2; n < 10000; n++)
        {
          g_autofree gchar *name = plain_name (orig, n);
          g_autofree gchar *abs = g_build_filename (root, name, NULL);

          if (renameat2 (AT_FDCWD, copy_abs, AT_FDCWD, abs, RENAME_NOREPLACE) == 0)
            {
              if (out_result != NULL)
                *out_result = g_steal_pointer (&name);
              return TRUE;
            }
          if (errno == EINVAL || errno == ENOSYS)
            {
              if (g_file_test (abs, G_FILE_TEST_EXISTS | G_FILE_TEST_IS_SYMLINK))
                continue;
              if (rename (copy_abs, abs) == 0)
                {
                  if (out_result != NULL)
                    *out_result = g_steal_pointer (&name);
                  return TRUE;
                }
            }
          if (errno != EEXIST)
            return resolve_io_error (error, _("Cannot rename the conflict copy"), copy);
        }
      g_set_error (error, FS_DAEMON_ERROR, FS_DAEMON_ERROR_FAILED,
                   _("No free name for the conflict copy ‘%s’"), copy);
      return FALSE;
    }
  g_set_error (error, FS_DAEMON_ERROR, FS_DAEMON_ERROR_INVALID_ARGUMENT,
               _("keep must be “mine”, “theirs” or “both”, not “%s”"), keep);
  return FALSE;
}

typedef struct
{
  gchar *root;
  gchar *path;
  gchar *keep;
} ResolveJob;

static void
resolve_job_free (ResolveJob *job)
{
  g_free (job->root);
  g_free (job->path);
  g_free (job->keep);
  g_free (job);
}

static void
resolve_conflict_thread (GTask *task, gpointer source, gpointer task_data,
                         GCancellable *cancellable)
{
  ResolveJob *job = task_data;
  GError *error = NULL;
  gchar *result = NULL;

  if (!fs_folder_resolve_conflict_sync (job->root, job->path, job->keep, &result, cancellable,
                                        &error))
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, result, g_free);
}

static void
resolve_conflict_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  FsFolder *self = FS_FOLDER (source);
  GDBusMethodInvocation *invocation = user_data;
  ResolveJob *job = g_task_get_task_data (G_TASK (result));
  g_autoptr (GError) error = NULL;
  g_autofree gchar *kept = g_task_propagate_pointer (G_TASK (result), &error);

  if (kept == NULL)
    {
      g_autoptr (GError) dbus_error = fs_dbus_error_normalize (error);
      g_dbus_method_invocation_return_gerror (invocation, dbus_error);
      return;
    }
  folder_log (self, G_LOG_LEVEL_MESSAGE, "conflict ‘%s’ resolved (%s): ‘%s’", job->path,
              job->keep, kept);
  if (self->iface != NULL)
    fs_dbus_folder_complete_resolve_conflict (self->iface, invocation);
  else
    g_dbus_method_invocation_return_value (invocation, NULL);
  request_sync (self, FALSE);
}

/* ---- D-Bus methods ------------------------------------------------------- */

static gboolean
handle_start (FsDBusFolder *iface, GDBusMethodInvocation *invocation, FsFolder *self)
{
  fs_folder_start (self, TRUE);
  fs_dbus_folder_complete_start (iface, invocation);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
handle_stop (FsDBusFolder *iface, GDBusMethodInvocation *invocation, FsFolder *self)
{
  fs_folder_stop (self, TRUE);
  fs_dbus_folder_complete_stop (iface, invocation);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
handle_force_sync (FsDBusFolder *iface, GDBusMethodInvocation *invocation, FsFolder *self)
{
  guint64 before = self->n_started;

  /* Flushing may start a sync by itself (its "ready"); that one is the
   * forced sync. */
  if (self->queue != NULL)
    fs_batch_queue_flush (self->queue);
  if (self->n_started == before)
    request_sync (self, TRUE);
  fs_dbus_folder_complete_force_sync (iface, invocation);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
handle_confirm_deletes (FsDBusFolder *iface, GDBusMethodInvocation *invocation, FsFolder *self)
{
  /* A confirmation covers the deletions the user was shown, nothing later:
   * with none held back it arms nothing (else an unmounted disk right
   * after would sail through the guard). */
  if (fs_dbus_folder_get_held_deletes (iface) > 0)
    {
      self->confirm_next = TRUE;
      request_sync (self, FALSE);
    }
  fs_dbus_folder_complete_confirm_deletes (iface, invocation);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
handle_list_conflicts (FsDBusFolder *iface, GDBusMethodInvocation *invocation, FsFolder *self)
{
  g_autoptr (GTask) task = g_task_new (self, NULL, list_conflicts_done, invocation);

  g_task_set_task_data (task, g_strdup (self->config->local_path), g_free);
  g_task_run_in_thread (task, list_conflicts_thread);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
handle_resolve_conflict (FsDBusFolder *iface, GDBusMethodInvocation *invocation, const gchar *path,
                         const gchar *keep, FsFolder *self)
{
  g_autoptr (GTask) task = NULL;
  ResolveJob *job;

  if (g_strcmp0 (keep, "mine") != 0 && g_strcmp0 (keep, "theirs") != 0
      && g_strcmp0 (keep, "both") != 0)
    {
      g_dbus_method_invocation_return_error (invocation, FS_DAEMON_ERROR,
                                             FS_DAEMON_ERROR_INVALID_ARGUMENT,
                                             "keep must be “mine”, “theirs” or “both”, not “%s”",
                                             keep);
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  job = g_new0 (ResolveJob, 1);
  job->root = g_strdup (self->config->local_path);
  job->path = g_strdup (path);
  job->keep = g_strdup (keep);
  task = g_task_new (self, NULL, resolve_conflict_done, invocation);
  g_task_set_task_data (task, job, (GDestroyNotify)resolve_job_free);
  g_task_run_in_thread (task, resolve_conflict_thread);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

typedef struct
{
  FsFolderConfig *config;
  guint ttl;
  gboolean include_credentials;
  gboolean full; /* GenerateTokenFull */
  guint64 expires;
  gchar *long_token;
} TokenJob;

static void
token_job_free (TokenJob *job)
{
  fs_folder_config_free (job->config);
  if (job->long_token != NULL)
    explicit_bzero (job->long_token, strlen (job->long_token));
  g_free (job->long_token);
  g_free (job);
}

static void
pairing_cleanup_thread (GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  g_autoptr (GError) error = NULL;
  guint n = 0;

  if (!fs_folder_pairing_cleanup (task_data, &n, &error))
    g_debug ("Cleaning up expired pairing envelopes failed: %s", error->message);
  else if (n > 0)
    g_message ("Removed %u expired pairing envelope(s)", n);
  g_task_return_boolean (task, TRUE);
}

static gboolean
pairing_cleanup_cb (gpointer data)
{
  g_autoptr (GTask) task = g_task_new (NULL, NULL, NULL, NULL);
  g_task_set_task_data (task, fs_folder_config_copy (data), (GDestroyNotify)fs_folder_config_free);
  g_task_run_in_thread (task, pairing_cleanup_thread);
  return G_SOURCE_REMOVE;
}

/* An envelope nobody redeemed must not outlive its token: remove it just
 * after it expires (the device that pairs also refuses it by its clock). */
static void
schedule_pairing_cleanup (const FsFolderConfig *config, guint64 expires)
{
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;
  /* A grace period: a device redeeming right at expiry gets told "expired"
   * (it checks by its own clock) rather than "not found". */
  guint delay = (expires > (guint64)now ? (guint) (expires - (guint64)now) : 0) + 10;

  g_timeout_add_seconds_full (G_PRIORITY_DEFAULT, delay, pairing_cleanup_cb,
                              fs_folder_config_copy (config),
                              (GDestroyNotify)fs_folder_config_free);
}

static void
generate_token_thread (GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  TokenJob *job = task_data;
  GError *error = NULL;
  gchar *token = fs_folder_pairing_issue (job->config, job->ttl, job->include_credentials,
                                          &job->expires, job->full ? &job->long_token : NULL,
                                          &error);

  if (token == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, token, g_free);
}

static void
generate_token_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GDBusMethodInvocation) invocation = user_data;
  TokenJob *job = g_task_get_task_data (G_TASK (result));
  g_autoptr (GError) error = NULL;
  g_autofree gchar *token = g_task_propagate_pointer (G_TASK (result), &error);

  if (token == NULL)
    {
      g_autoptr (GError) dbus_error = fs_dbus_error_normalize (error);
      g_dbus_method_invocation_return_gerror (invocation, dbus_error);
      return;
    }
  g_message ("Issued a pairing token for folder %s, valid until %" G_GUINT64_FORMAT,
             job->config->id, job->expires);
  schedule_pairing_cleanup (job->config, job->expires);
  if (job->full)
    fs_dbus_folder_complete_generate_token_full (FS_DBUS_FOLDER (source),
                                                 g_steal_pointer (&invocation), token,
                                                 job->long_token != NULL ? job->long_token : "",
                                                 job->expires);
  else
    fs_dbus_folder_complete_generate_token (FS_DBUS_FOLDER (source),
                                            g_steal_pointer (&invocation), token, job->expires);
  explicit_bzero (token, strlen (token));
}

/* The envelope (key and storage settings) is sealed under a key derived from
 * the token with Argon2id and put on the folder's storage: off the main loop. */
static void
start_token_job (FsDBusFolder *iface, GDBusMethodInvocation *invocation, FsFolder *self,
                 guint ttl, gboolean full, gboolean include_credentials)
{
  g_autoptr (GTask) task = NULL;
  TokenJob *job;

  if (ttl > FS_PAIRING_MAX_TTL)
    {
      g_dbus_method_invocation_return_error (invocation, FS_DAEMON_ERROR,
                                             FS_DAEMON_ERROR_INVALID_ARGUMENT,
                                             _("A token is valid at most %u seconds"),
                                             (guint)FS_PAIRING_MAX_TTL);
      return;
    }
  job = g_new0 (TokenJob, 1);
  job->config = fs_folder_config_copy (self->config);
  job->ttl = ttl > 0 ? ttl : FS_PAIRING_DEFAULT_TTL;
  job->full = full;
  job->include_credentials = include_credentials;
  task = g_task_new (iface, NULL, generate_token_done, g_object_ref (invocation));
  g_task_set_task_data (task, job, (GDestroyNotify)token_job_free);
  g_task_run_in_thread (task, generate_token_thread);
}

static gboolean
handle_generate_token (FsDBusFolder *iface, GDBusMethodInvocation *invocation, guint ttl,
                       FsFolder *self)
{
  start_token_job (iface, invocation, self, ttl, FALSE, FALSE);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
handle_generate_token_full (FsDBusFolder *iface, GDBusMethodInvocation *invocation, guint ttl,
                            GVariant *options, FsFolder *self)
{
  gboolean include_credentials = FALSE;
  GVariantIter iter;
  const gchar *name;
  GVariant *value;

  g_variant_iter_init (&iter, options);
  while (g_variant_iter_loop (&iter, "{&sv}", &name, &value))
    {
      if (strcmp (name, "include-credentials") == 0
          && g_variant_is_of_type (value, G_VARIANT_TYPE_BOOLEAN))
        include_credentials = g_variant_get_boolean (value);
      else if (strcmp (name, "include-credentials") == 0)
        {
          g_dbus_method_invocation_return_error (
            invocation, FS_DAEMON_ERROR, FS_DAEMON_ERROR_INVALID_ARGUMENT,
            _("Option ‘include-credentials’ must be a boolean (b), not ‘%s’"),
            g_variant_get_type_string (value));
          g_variant_unref (value);
          return G_DBUS_METHOD_INVOCATION_HANDLED;
        }
      else
        {
          g_dbus_method_invocation_return_error (
            invocation, FS_DAEMON_ERROR, FS_DAEMON_ERROR_INVALID_ARGUMENT,
            _("Unknown option ‘%s’ of type ‘%s’ (GenerateTokenFull takes include-credentials (b))"),
            name, g_variant_get_type_string (value));
          g_variant_unref (value);
          return G_DBUS_METHOD_INVOCATION_HANDLED;
        }
    }
  if (include_credentials && self->config->endpoint == NULL)
    {
      g_dbus_method_invocation_return_error_literal (
        invocation, FS_DAEMON_ERROR, FS_DAEMON_ERROR_INVALID_ARGUMENT,
        _("include-credentials: this folder's store is not S3 and has no credentials"));
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  start_token_job (iface, invocation, self, ttl, TRUE, include_credentials);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* ---- object -------------------------------------------------------------- */

static void
fs_folder_dispose (GObject *object)
{
  FsFolder *self = FS_FOLDER (object);

  /* A running sync holds a reference, so there is none to wait for here. */
  fs_folder_stop (self, FALSE);
  if (self->iface != NULL)
    g_signal_handlers_disconnect_by_data (self->iface, self);
  g_clear_object (&self->iface);
  g_clear_object (&self->object);
  g_clear_object (&self->engine);
  G_OBJECT_CLASS (fs_folder_parent_class)->dispose (object);
}

static void
fs_folder_finalize (GObject *object)
{
  FsFolder *self = FS_FOLDER (object);

  g_clear_pointer (&self->waiters, g_ptr_array_unref);
  g_clear_pointer (&self->changed_paths, g_hash_table_unref);
  g_clear_pointer (&self->config, fs_folder_config_free);
  g_clear_pointer (&self->ui_events, g_ptr_array_unref);
  g_clear_pointer (&self->context, g_main_context_unref);
  g_mutex_clear (&self->ui_lock);
  g_free (self->object_path);
  G_OBJECT_CLASS (fs_folder_parent_class)->finalize (object);
}

static void
fs_folder_class_init (FsFolderClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = fs_folder_dispose;
  object_class->finalize = fs_folder_finalize;
}

static void
fs_folder_init (FsFolder *self)
{
  self->waiters = g_ptr_array_new_with_free_func (g_object_unref);
  self->changed_paths = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->whole_next = TRUE;
  self->context = g_main_context_ref_thread_default ();
  g_mutex_init (&self->ui_lock);
  self->ui_events = g_ptr_array_new_with_free_func (g_free);
}

FsFolder *
fs_folder_new (FsFolderConfig *config, FsEngine *engine)
{
  FsFolder *self;
  g_autofree gchar *store = NULL;
  FsDBusFolder *iface;

  g_return_val_if_fail (config != NULL && config->id != NULL, NULL);

  self = g_object_new (FS_TYPE_FOLDER, NULL);
  self->config = config;
  self->engine = engine != NULL ? g_object_ref (engine) : NULL;
  self->object_path = g_strconcat (FS_FOLDER_OBJECT_PATH_PREFIX, config->id, NULL);
  self->object = fs_dbus_object_skeleton_new (self->object_path);
  self->iface = iface = fs_dbus_folder_skeleton_new ();

  store = fs_folder_config_describe_store (config);
  fs_dbus_folder_set_id (iface, config->id);
  fs_dbus_folder_set_local_path (iface, config->local_path);
  fs_dbus_folder_set_store (iface, store);
  fs_dbus_folder_set_bucket (iface, config->bucket != NULL ? config->bucket : "");
  fs_dbus_folder_set_prefix (iface, config->prefix != NULL ? config->prefix : "");
  fs_dbus_folder_set_state (iface, "paused");
  fs_dbus_folder_set_progress (
    iface, g_variant_new ("(tttt)", (guint64)0, (guint64)0, (guint64)0, (guint64)0));
  fs_dbus_folder_set_last_sync (iface, 0);
  fs_dbus_folder_set_last_error (iface, "");
  fs_dbus_folder_set_watch_mode (iface, "inotify");
  fs_dbus_folder_set_batch_interval (iface, config->batch_interval_ms);
  fs_dbus_folder_set_poll_interval (iface, config->poll_interval_s);
  fs_dbus_folder_set_max_workers (iface, config->max_workers);

  g_signal_connect (iface, "handle-start", G_CALLBACK (handle_start), self);
  g_signal_connect (iface, "handle-stop", G_CALLBACK (handle_stop), self);
  g_signal_connect (iface, "handle-force-sync", G_CALLBACK (handle_force_sync), self);
  g_signal_connect (iface, "handle-confirm-deletes", G_CALLBACK (handle_confirm_deletes), self);
  g_signal_connect (iface, "handle-list-conflicts", G_CALLBACK (handle_list_conflicts), self);
  g_signal_connect (iface, "handle-resolve-conflict", G_CALLBACK (handle_resolve_conflict), self);
  g_signal_connect (iface, "handle-generate-token", G_CALLBACK (handle_generate_token), self);
  g_signal_connect (iface, "handle-generate-token-full", G_CALLBACK (handle_generate_token_full),
                    self);
  fs_dbus_object_skeleton_set_folder (self->object, iface);
  return self;
}

const gchar *
fs_folder_get_id (FsFolder *self)
{
  g_return_val_if_fail (FS_IS_FOLDER (self), NULL);
  return self->config->id;
}

const gchar *
fs_folder_get_local_path (FsFolder *self)
{
  g_return_val_if_fail (FS_IS_FOLDER (self), NULL);
  return self->config->local_path;
}

const gchar *
fs_folder_get_object_path (FsFolder *self)
{
  g_return_val_if_fail (FS_IS_FOLDER (self), NULL);
  return self->object_path;
}

const FsFolderConfig *
fs_folder_get_config (FsFolder *self)
{
  g_return_val_if_fail (FS_IS_FOLDER (self), NULL);
  return self->config;
}

FsDBusObjectSkeleton *
fs_folder_get_object (FsFolder *self)
{
  g_return_val_if_fail (FS_IS_FOLDER (self), NULL);
  return self->object;
}
