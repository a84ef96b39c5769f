/* FsAppletPairWindow: a share token for a folder, as text and QR code,
 * counting down to its expiry. */
#pragma once

#include <gtk/gtk.h>

#include "fs-dbus-generated.h"

G_BEGIN_DECLS

#define FS_APPLET_TYPE_PAIR_WINDOW (fs_applet_pair_window_get_type ())
G_DECLARE_FINAL_TYPE (FsAppletPairWindow, fs_applet_pair_window, FS_APPLET, PAIR_WINDOW, GtkWindow)

GtkWidget *fs_applet_pair_window_new (FsDBusFolder *folder, const gchar *folder_name);

G_END_DECLS
