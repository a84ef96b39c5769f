/* FsDaemon: the object tree of foldersyncd. The Manager interface and a
 * GDBusObjectManagerServer on /org/toolbox/FolderSync (the Manager is not a
 * managed object: an object manager only manages paths below its own), one
 * FsFolder per synced folder at /org/toolbox/FolderSync/folder/<id>,
 * restored from $XDG_CONFIG_HOME/foldersync/ when created. */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define FS_DAEMON_BUS_NAME "org.toolbox.FolderSync"
#define FS_DAEMON_OBJECT_PATH "/org/toolbox/FolderSync"

#define FS_TYPE_DAEMON (fs_daemon_get_type ())
G_DECLARE_FINAL_TYPE (FsDaemon, fs_daemon, FS, DAEMON, GObject)

/* Loads the folders' settings (no syncing yet). */
FsDaemon *fs_daemon_new (void);

/* Exports the objects on @connection. */
void fs_daemon_export (FsDaemon *self, GDBusConnection *connection);

/* Starts the folders that were running when the daemon last stopped: once
 * the bus name is ours. */
void fs_daemon_start_folders (FsDaemon *self);

/* Stops every folder (without forgetting that it was running), cancels the
 * running syncs and completes once they all ended. */
void fs_daemon_shutdown_async (FsDaemon *self, GAsyncReadyCallback callback, gpointer user_data);
gboolean fs_daemon_shutdown_finish (FsDaemon *self, GAsyncResult *result, GError **error);

G_END_DECLS
