/* The applet's small dialogs: an error message (non-modal: the applet has
 * no main window to be modal to), and Add folder (a folder chooser, then
 * Manager.AddFolder with the default options: the embedded store and a new
 * key). */
#include "config.h"

#include "fs-applet-dialogs.h"

#include <glib/gi18n.h>

void
fs_applet_show_error (const gchar *primary, const GError *error)
{
  g_autoptr (GError) copy = g_error_copy (error);
  GtkWidget *dialog;

  g_dbus_error_strip_remote_error (copy);
  g_message ("%s: %s", primary, copy->message);
  dialog = gtk_message_dialog_new (NULL, 0, GTK_MESSAGE_ERROR, GTK_BUTTONS_CLOSE, "%s", primary);
  gtk_message_dialog_format_secondary_text (GTK_MESSAGE_DIALOG (dialog), "%s", copy->message);
  gtk_window_set_title (GTK_WINDOW (dialog), _("FolderSync"));
  g_signal_connect (dialog, "response", G_CALLBACK (gtk_widget_destroy), NULL);
  gtk_widget_show (dialog);
}

static void
add_folder_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GError) error = NULL;
  g_autofree gchar *path = NULL;

  if (!fs_dbus_manager_call_add_folder_finish (FS_DBUS_MANAGER (source), &path, result, &error))
    fs_applet_show_error (_("The folder could not be added"), error);
  /* On success the folder shows up in the menu through the ObjectManager. */
}

static void
chooser_response_cb (GtkNativeDialog *chooser, gint response, gpointer user_data)
{
  g_autoptr (FsAppletModel) model = user_data;
  g_autofree gchar *path = NULL;
  FsDBusManager *manager;
  GVariantDict config;

  if (response == GTK_RESPONSE_ACCEPT)
    path = gtk_file_chooser_get_filename (GTK_FILE_CHOOSER (chooser));
  g_object_unref (chooser);
  if (path == NULL)
    return;
  manager = fs_applet_model_get_manager (model);
  if (manager == NULL)
    {
      g_autoptr (GError) error = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_NOT_CONNECTED,
                                                      _("The FolderSync daemon is not running."));
      fs_applet_show_error (_("The folder could not be added"), error);
      return;
    }
  g_variant_dict_init (&config, NULL);
  g_variant_dict_insert (&config, "local-path", "s", path);
  fs_dbus_manager_call_add_folder (manager, g_variant_dict_end (&config), NULL, add_folder_done, NULL);
}

void
fs_applet_add_folder (FsAppletModel *model)
{
  GtkFileChooserNative *chooser;

  g_return_if_fail (FS_APPLET_IS_MODEL (model));

  chooser = gtk_file_chooser_native_new (_("Add a folder to sync"), NULL,
                                         GTK_FILE_CHOOSER_ACTION_SELECT_FOLDER, _("_Add"), NULL);
  gtk_native_dialog_set_modal (GTK_NATIVE_DIALOG (chooser), FALSE);
  g_signal_connect (chooser, "response", G_CALLBACK (chooser_response_cb), g_object_ref (model));
  gtk_native_dialog_show (GTK_NATIVE_DIALOG (chooser));
}
