/* FsApplet: the tray applet's GtkApplication (org.toolbox.FolderSync.Applet:
 * one per session; notifications come from it). It ties the model (the
 * daemon's folders), the menu, the StatusNotifierItem and the notifier
 * together, and has the actions notifications invoke:
 *   app.open-folder (s local path), app.confirm-deletes (s object path), app.quit
 */
#include "config.h"

#include "fs-applet.h"

#include <glib/gi18n.h>
#include <libayatana-appindicator/app-indicator.h>

#include "fs-applet-dialogs.h"
#include "fs-applet-menu.h"
#include "fs-applet-model.h"
#include "fs-applet-notify.h"

#define NOTIFY_INTERVAL_DEFAULT 30 /* seconds: at most one notification per folder and kind */

struct _FsApplet
{
  GtkApplication parent_instance;

  FsAppletModel *model;
  FsAppletMenu *menu;
  FsAppletNotifier *notifier;
  AppIndicator *indicator;
};

G_DEFINE_FINAL_TYPE (FsApplet, fs_applet, GTK_TYPE_APPLICATION)

static void
update_icon (FsApplet *self)
{
  FsAppletState state = fs_applet_model_get_worst_state (self->model);
  /* TRANSLATORS: the tray icon's description, "FolderSync: Syncing" */
  g_autofree gchar *description = g_strdup_printf (_("FolderSync: %s"), fs_applet_state_describe (state));

  app_indicator_set_icon_full (self->indicator, fs_applet_state_icon_name (state), description);
}

static void
folders_changed_cb (FsAppletModel *model, FsApplet *self)
{
  update_icon (self);
}

static void
folder_changed_cb (FsAppletModel *model, FsAppletFolder *folder, FsApplet *self)
{
  update_icon (self);
}

static void
event_cb (FsAppletModel *model, FsAppletFolder *folder, guint kind, const gchar *detail, FsApplet *self)
{
  fs_applet_notifier_post (self->notifier, folder, kind, detail);
}

static void
event_over_cb (FsAppletModel *model, FsAppletFolder *folder, guint kind, FsApplet *self)
{
  fs_applet_notifier_withdraw (self->notifier, folder, kind);
}

/* ---- actions ------------------------------------------------------------ */

static void
open_folder_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GError) error = NULL;

  if (!g_app_info_launch_default_for_uri_finish (result, &error))
    fs_applet_show_error (_("The folder could not be opened"), error);
}

static void
open_folder_action (GSimpleAction *action, GVariant *parameter, gpointer user_data)
{
  g_autofree gchar *uri = g_filename_to_uri (g_variant_get_string (parameter, NULL), NULL, NULL);

  if (uri != NULL)
    g_app_info_launch_default_for_uri_async (uri, NULL, NULL, open_folder_done, NULL);
}

static void
confirm_deletes_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GError) error = NULL;

  if (!fs_dbus_folder_call_confirm_deletes_finish (FS_DBUS_FOLDER (source), result, &error))
    fs_applet_show_error (_("The deletions could not be applied"), error);
}

static void
confirm_deletes_action (GSimpleAction *action, GVariant *parameter, gpointer user_data)
{
  FsApplet *self = user_data;
  FsAppletFolder *folder = fs_applet_model_lookup (self->model, g_variant_get_string (parameter, NULL));

  if (folder != NULL)
    fs_dbus_folder_call_confirm_deletes (fs_applet_folder_get_proxy (folder), NULL, confirm_deletes_done, NULL);
}

static void
quit_action (GSimpleAction *action, GVariant *parameter, gpointer user_data)
{
  g_application_quit (G_APPLICATION (user_data));
}

static const GActionEntry actions[] = {
  { .name = "open-folder", .activate = open_folder_action, .parameter_type = "s" },
  { .name = "confirm-deletes", .activate = confirm_deletes_action, .parameter_type = "s" },
  { .name = "quit", .activate = quit_action },
};

/* ---- lifecycle ---------------------------------------------------------- */

static guint
notify_interval (void)
{
  /* FOLDERSYNC_APPLET_NOTIFY_INTERVAL (seconds): for tests of the rate limit. */
  const gchar *env = g_getenv ("FOLDERSYNC_APPLET_NOTIFY_INTERVAL");
  guint64 value;

  if (env != NULL && g_ascii_string_to_unsigned (env, 10, 1, 3600, &value, NULL))
    return (guint)value;
  return NOTIFY_INTERVAL_DEFAULT;
}

static void
fs_applet_startup (GApplication *application)
{
  FsApplet *self = FS_APPLET (application);
  /* FOLDERSYNC_APPLET_ICON_DIR: the icons of an uninstalled tree (meson devenv, tests). */
  const gchar *icon_dir = g_getenv ("FOLDERSYNC_APPLET_ICON_DIR");

  G_APPLICATION_CLASS (fs_applet_parent_class)->startup (application);

  /* No window keeps the applet running: the tray icon does. */
  g_application_hold (application);
  g_action_map_add_action_entries (G_ACTION_MAP (self), actions, G_N_ELEMENTS (actions), self);
  if (icon_dir != NULL && *icon_dir != '\0')
    gtk_icon_theme_append_search_path (gtk_icon_theme_get_default (), icon_dir);

  self->model = fs_applet_model_new ();
  self->notifier = fs_applet_notifier_new (application, notify_interval ());
  self->menu = fs_applet_menu_new (self->model);

  self->indicator = app_indicator_new ("foldersync-applet", fs_applet_state_icon_name (FS_APPLET_STATE_OFFLINE),
                                       APP_INDICATOR_CATEGORY_APPLICATION_STATUS);
  app_indicator_set_title (self->indicator, _("FolderSync"));
  if (icon_dir != NULL && *icon_dir != '\0')
    app_indicator_set_icon_theme_path (self->indicator, icon_dir);
  app_indicator_set_menu (self->indicator, fs_applet_menu_get_menu (self->menu));
  app_indicator_set_status (self->indicator, APP_INDICATOR_STATUS_ACTIVE);
  update_icon (self);

  g_signal_connect (self->model, "folders-changed", G_CALLBACK (folders_changed_cb), self);
  g_signal_connect (self->model, "folder-changed", G_CALLBACK (folder_changed_cb), self);
  g_signal_connect (self->model, "event", G_CALLBACK (event_cb), self);
  g_signal_connect (self->model, "event-over", G_CALLBACK (event_over_cb), self);
}

static void
fs_applet_activate (GApplication *application)
{
  /* Started again while running (e.g. from the applications menu): the tray
   * icon is already there; nothing to show. */
}

static void
fs_applet_shutdown (GApplication *application)
{
  FsApplet *self = FS_APPLET (application);

  if (self->model != NULL)
    g_signal_handlers_disconnect_by_data (self->model, self);
  g_clear_object (&self->indicator);
  g_clear_object (&self->menu);
  g_clear_object (&self->notifier);
  g_clear_object (&self->model);
  G_APPLICATION_CLASS (fs_applet_parent_class)->shutdown (application);
}

static void
fs_applet_class_init (FsAppletClass *klass)
{
  GApplicationClass *app_class = G_APPLICATION_CLASS (klass);

  app_class->startup = fs_applet_startup;
  app_class->activate = fs_applet_activate;
  app_class->shutdown = fs_applet_shutdown;
}

static void
fs_applet_init (FsApplet *self)
{
}

FsApplet *
fs_applet_new (void)
{
  return g_object_new (FS_TYPE_APPLET, "application-id", "org.toolbox.FolderSync.Applet", "flags",
                       G_APPLICATION_DEFAULT_FLAGS, NULL);
}
