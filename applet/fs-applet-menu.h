/* FsAppletMenu: the tray icon's menu, built from an FsAppletModel. */
#pragma once

#include <gtk/gtk.h>

#include "fs-applet-model.h"

G_BEGIN_DECLS

#define FS_APPLET_TYPE_MENU (fs_applet_menu_get_type ())
G_DECLARE_FINAL_TYPE (FsAppletMenu, fs_applet_menu, FS_APPLET, MENU, GObject)

FsAppletMenu *fs_applet_menu_new (FsAppletModel *model);
GtkMenu *fs_applet_menu_get_menu (FsAppletMenu *self);

G_END_DECLS
