/* FsWatcher: live change notification for a folder tree. GFileMonitor on
 * every directory, added and removed as directories come and go; when the
 * watch limit is reached or a monitor fails, it falls back to polling (a
 * "changed" with path NULL every poll interval) and says so in its mode. */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define FS_TYPE_WATCHER (fs_watcher_get_type ())
G_DECLARE_FINAL_TYPE (FsWatcher, fs_watcher, FS, WATCHER, GObject)

typedef enum {
  FS_WATCH_MODE_INOTIFY,
  FS_WATCH_MODE_POLLING,
} FsWatchMode;

/* Signals:
 *   "changed" (const gchar *path): a path relative to the root changed
 *     (created, modified, deleted, moved: both names); NULL means "anything
 *     may have changed, rescan" (polling ticks, overflow, fallback).
 *   notify::mode when it switches to polling.
 * Names starting with ".foldersync." (FolderSync's own temp files and trash)
 * never produce events. Runs in the thread-default main context of
 * fs_watcher_start(). */
FsWatcher *fs_watcher_new (const gchar *root, guint poll_interval_s);

/* Watches every directory under the root. The watch limit is the kernel's
 * (fs.inotify.max_user_watches) or $FOLDERSYNC_MAX_WATCHES when set (tests
 * force it low); beyond it the watcher polls. */
gboolean fs_watcher_start (FsWatcher *self, GError **error);
void fs_watcher_stop (FsWatcher *self);
FsWatchMode fs_watcher_get_mode (FsWatcher *self);
const gchar *fs_watch_mode_to_string (FsWatchMode mode);
guint fs_watcher_get_n_watches (FsWatcher *self);

G_END_DECLS
