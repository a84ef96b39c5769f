/* FsApplet: the tray applet's GtkApplication. */
#pragma once

#include <gtk/gtk.h>

G_BEGIN_DECLS

#define FS_TYPE_APPLET (fs_applet_get_type ())
G_DECLARE_FINAL_TYPE (FsApplet, fs_applet, FS, APPLET, GtkApplication)

FsApplet *fs_applet_new (void);

G_END_DECLS
