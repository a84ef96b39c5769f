/* FsAppletNotifier: desktop notifications, rate-limited per folder and kind. */
#pragma once

#include <gio/gio.h>

#include "fs-applet-folder.h"

G_BEGIN_DECLS

#define FS_APPLET_TYPE_NOTIFIER (fs_applet_notifier_get_type ())
G_DECLARE_FINAL_TYPE (FsAppletNotifier, fs_applet_notifier, FS_APPLET, NOTIFIER, GObject)

FsAppletNotifier *fs_applet_notifier_new (GApplication *application, guint interval_seconds);
void fs_applet_notifier_post (FsAppletNotifier *self, FsAppletFolder *folder, FsAppletEvent kind,
                              const gchar *detail);
void fs_applet_notifier_withdraw (FsAppletNotifier *self, FsAppletFolder *folder, FsAppletEvent kind);

G_END_DECLS
