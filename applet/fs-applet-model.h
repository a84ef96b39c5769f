/* FsAppletModel: the daemon's folders, followed over D-Bus. */
#pragma once

#include <gio/gio.h>

#include "fs-applet-folder.h"

G_BEGIN_DECLS

#define FS_APPLET_TYPE_MODEL (fs_applet_model_get_type ())
G_DECLARE_FINAL_TYPE (FsAppletModel, fs_applet_model, FS_APPLET, MODEL, GObject)

FsAppletModel *fs_applet_model_new (void);
gboolean fs_applet_model_is_connected (FsAppletModel *self);
GPtrArray *fs_applet_model_get_folders (FsAppletModel *self);
FsDBusManager *fs_applet_model_get_manager (FsAppletModel *self);
FsAppletState fs_applet_model_get_worst_state (FsAppletModel *self);
FsAppletFolder *fs_applet_model_lookup (FsAppletModel *self, const gchar *object_path);
void fs_applet_model_start_daemon (FsAppletModel *self);

G_END_DECLS
