/* FsFolder: one folder synced by foldersyncd at runtime. It owns the
 * folder's settings, its FsDBusFolder skeleton (kept current), a watcher and
 * batch queue for local changes, a timer polling the remote every
 * poll_interval, and runs its FsEngine in a worker thread, one sync at a
 * time. */
#pragma once

#include <gio/gio.h>

#include "fs-dbus-generated.h"
#include "fs-engine.h"
#include "fs-folder-config.h"

G_BEGIN_DECLS

#define FS_TYPE_FOLDER (fs_folder_get_type ())
G_DECLARE_FINAL_TYPE (FsFolder, fs_folder, FS, FOLDER, GObject)

#define FS_FOLDER_OBJECT_PATH_PREFIX "/org/toolbox/FolderSync/folder/"

/* Takes @config (with an id). @engine: an engine already opened for this
 * config (AddFolder's check), or NULL to open one lazily in the worker. The
 * folder is stopped until fs_folder_start(). */
FsFolder *fs_folder_new (FsFolderConfig *config, FsEngine *engine);

const gchar *fs_folder_get_id (FsFolder *self);
const gchar *fs_folder_get_local_path (FsFolder *self);
const gchar *fs_folder_get_object_path (FsFolder *self);
const FsFolderConfig *fs_folder_get_config (FsFolder *self);
/* The object to export: the Folder interface on the folder's object path. */
FsDBusObjectSkeleton *fs_folder_get_object (FsFolder *self);

/* Watches, polls and syncs (a first sync at once). @persist: remember
 * "running" in the folder's config file. */
void fs_folder_start (FsFolder *self, gboolean persist);
/* Stops watching and polling and cancels a running sync (without waiting
 * for it: see fs_folder_wait_async()). State becomes "paused". */
void fs_folder_stop (FsFolder *self, gboolean persist);

/* Completes once no sync runs (at once if none does). */
void fs_folder_wait_async (FsFolder *self, GCancellable *cancellable, GAsyncReadyCallback callback,
                           gpointer user_data);
gboolean fs_folder_wait_finish (FsFolder *self, GAsyncResult *result, GError **error);

/* Opens the store and the engine of @config: blocking (network I/O), for a
 * worker thread. */
FsEngine *fs_folder_open_engine (const FsFolderConfig *config, GError **error);

/* (path, conflict copy) pairs: every name containing " (conflict " is a
 * conflict copy; its original is the name with the " (conflict ...)" group
 * removed (fs_conflict_name() puts it before the extension). */
GVariant *fs_folder_list_conflicts_sync (const gchar *root, GCancellable *cancellable,
                                         GError **error);

/* ResolveConflict: @path is a conflict copy as ListConflicts lists it, or an
 * original with exactly one copy. @keep "mine": the copy replaces the
 * original (one rename); "theirs": the copy goes to the folder's trash;
 * "both": the copy is renamed to a free plain name "name (2).ext". Blocking
 * file I/O, for a worker thread. @out_result: the name that now holds the
 * kept content ("both": the copy's new name). FS_DAEMON_ERROR_NOT_FOUND for
 * an unknown path, _INVALID_ARGUMENT for a bad @keep or an ambiguous
 * original. */
gboolean fs_folder_resolve_conflict_sync (const gchar *root, const gchar *path, const gchar *keep,
                                          gchar **out_result, GCancellable *cancellable,
                                          GError **error);

G_END_DECLS
