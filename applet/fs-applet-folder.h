/* FsAppletFolder: one synced folder as the applet sees it (a Folder proxy,
 * its conflicts, the state to show and the events to notify). */
#pragma once

#include <gio/gio.h>

#include "fs-applet-state.h"
#include "fs-dbus-generated.h"

G_BEGIN_DECLS

#define FS_APPLET_TYPE_FOLDER (fs_applet_folder_get_type ())
G_DECLARE_FINAL_TYPE (FsAppletFolder, fs_applet_folder, FS_APPLET, FOLDER, GObject)

FsAppletFolder *fs_applet_folder_new (FsDBusFolder *proxy);
FsDBusFolder *fs_applet_folder_get_proxy (FsAppletFolder *self);
const gchar *fs_applet_folder_get_object_path (FsAppletFolder *self);
const gchar *fs_applet_folder_get_local_path (FsAppletFolder *self);
gchar *fs_applet_folder_dup_name (FsAppletFolder *self);
FsAppletState fs_applet_folder_get_state (FsAppletFolder *self);
gchar *fs_applet_folder_describe (FsAppletFolder *self);
gboolean fs_applet_folder_is_paused (FsAppletFolder *self);
guint fs_applet_folder_get_held_deletes (FsAppletFolder *self);
GVariant *fs_applet_folder_get_conflicts (FsAppletFolder *self);
void fs_applet_folder_refresh_conflicts (FsAppletFolder *self);

G_END_DECLS
