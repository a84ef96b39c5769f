/* The applet's small dialogs: an error message, and Add folder. */
#pragma once

#include <gtk/gtk.h>

#include "fs-applet-model.h"

G_BEGIN_DECLS

void fs_applet_show_error (const gchar *primary, const GError *error);
void fs_applet_add_folder (FsAppletModel *model);

G_END_DECLS
