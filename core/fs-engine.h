/* FsEngine: one synced folder. fs_engine_sync() runs one full two-way
 * reconcile: journal fetch, local scan, reconcile, transfers, index updates. */
#pragma once

#include <gio/gio.h>
#include "fs-storage.h"

G_BEGIN_DECLS

#define FS_TYPE_ENGINE (fs_engine_get_type ())
G_DECLARE_FINAL_TYPE (FsEngine, fs_engine, FS, ENGINE, GObject)

typedef struct {
  guint files_up;
  guint64 bytes_up;
  guint files_down;
  guint64 bytes_down;
  guint dirs_created;
  guint deleted_local;
  guint deleted_remote;
  guint conflicts;
  guint errors;
  guint deferred;      /* files still being written: retried next sync */
  guint files_hashed;  /* read to hash them: by the scanner, or new ones by their upload */
  guint objects_read;  /* content objects fetched */
  guint objects_written;
  guint records_read;
  guint records_written;
  guint held_deletes;  /* deletions held back by the mass-delete guard */
} FsSyncStats;

typedef struct {
  const gchar *local_path;  /* the folder; must exist */
  FsStorage *storage;       /* configured backend */
  const gchar *store_id;    /* names the store in the index file name, e.g. "local:/srv/store" */
  const gchar *prefix;      /* key prefix in the store ("" or "a/b") */
  GBytes *key;              /* 32-byte master key */
  const gchar *device_name; /* NULL: the host name */
  guint max_workers;        /* parallel transfers; 0: 4 */
} FsEngineConfig;

typedef enum {
  FS_SYNC_PHASE_SCANNING,     /* journal fetch, local scan, reconcile */
  FS_SYNC_PHASE_TRANSFERRING, /* the planned actions */
} FsSyncPhase;

/* Of the file transfers planned in the current sync (uploads and downloads
 * of regular files; a conflict counts as one download). */
typedef struct {
  FsSyncPhase phase;
  guint files_done;
  guint files_total;
  guint64 bytes_done;
  guint64 bytes_total;
  guint pending_uploads;
  guint pending_downloads;
} FsSyncProgress;

/* Called on the thread running fs_engine_sync(), often (per file, and about
 * every 250 ms during a long transfer): keep it cheap. */
typedef void (*FsEngineProgressFunc) (const FsSyncProgress *progress, gpointer user_data);

typedef enum {
  FS_SYNC_EVENT_FILE_SYNCED, /* @detail: "up", "down", "deleted-remote", "deleted-local" */
  FS_SYNC_EVENT_CONFLICT,    /* @detail: the conflict copy's relative path */
} FsSyncEventType;

/* Called on the thread running fs_engine_sync() for each path synced and each
 * conflict copy made. @path is the path relative to the folder. */
typedef void (*FsEngineEventFunc) (FsSyncEventType type, const gchar *path, const gchar *detail,
                                   gpointer user_data);

/* Checks the folder and key, opens (or creates) the index, and verifies the
 * store: a store with another key is FS_ENGINE_ERROR_WRONG_KEY before any file
 * is touched; a non-empty location that is not a FolderSync store is
 * FS_ENGINE_ERROR_NOT_A_STORE; an empty one is initialized. */
FsEngine *fs_engine_new (const FsEngineConfig *config, GError **error);

/* One two-way sync. Problems with single files are counted in stats->errors
 * and described in @messages (one line each, may be NULL); they do not fail
 * the call. @audit re-reads the whole journal ignoring cursors. */
gboolean fs_engine_sync (FsEngine *self, gboolean audit, FsSyncStats *stats, GPtrArray *messages,
                         GCancellable *cancellable, GError **error);

/* A sync of a few changed paths (relative disk paths from a file monitor):
 * only they are stat'ed and reconciled, against the remote tree kept from the
 * last sync. It is a whole fs_engine_sync() instead when @changed is NULL,
 * before the first whole sync, when other devices wrote records, or when a
 * path needs a walk (a directory, an ignore file, a non-ASCII name, a parent
 * not synced yet, many deletions). */
gboolean fs_engine_sync_paths (FsEngine *self, const gchar *const *changed, FsSyncStats *stats,
                               GPtrArray *messages, GCancellable *cancellable, GError **error);

/* Apply deletions even where they exceed the mass-delete guard (more than
 * half of the folder, and at least 10 entries). */
void fs_engine_set_confirm_deletes (FsEngine *self, gboolean confirm);

/* Set while no sync runs. @notify frees @user_data when replaced or at
 * finalization. */
void fs_engine_set_progress_func (FsEngine *self, FsEngineProgressFunc func, gpointer user_data,
                                  GDestroyNotify notify);
void fs_engine_set_event_func (FsEngine *self, FsEngineEventFunc func, gpointer user_data,
                               GDestroyNotify notify);
/* 0: the default (4). */
void fs_engine_set_max_workers (FsEngine *self, guint max_workers);

/* Moves @rel (relative to the folder @root) into the folder's trash,
 * .foldersync.trash/YYYY-MM-DD/, as the engine does for deletions made on
 * another device. Blocking file I/O; any thread. */
gboolean fs_engine_move_to_trash (const gchar *root, const gchar *rel, GError **error);

const gchar *fs_engine_get_index_path (FsEngine *self);
const gchar *fs_engine_get_device_id (FsEngine *self);

G_END_DECLS
