/* FsAppletMenu: the tray icon's menu (a GtkMenu, which libayatana-appindicator
 * exports over com.canonical.dbusmenu):
 *
 *   Notes — Syncing 3 of 10 files (…)   ▸ Open folder
 *                                          Sync now
 *                                          Pause / Resume
 *                                          Show conflicts (2) ▸ a (conflict B …).txt ▸ Keep mine / Keep theirs / Keep both
 *                                          Apply 12 held deletions   (only while some are held)
 *                                          Pair a device…
 *   ───
 *   Add folder…
 *   ───
 *   Quit
 *
 * The structure is rebuilt when folders come or go, a conflict list changes
 * or the daemon appears or vanishes; state and progress only relabel items.
 */
#include "config.h"

#include "fs-applet-menu.h"

#include <glib/gi18n.h>

#include "fs-applet-dialogs.h"
#include "fs-applet-pair-window.h"

struct _FsAppletMenu
{
  GObject parent_instance;

  FsAppletModel *model;
  GtkWidget *menu;
  GHashTable *rows; /* object path → Row */
};

G_DEFINE_FINAL_TYPE (FsAppletMenu, fs_applet_menu, G_TYPE_OBJECT)

/* The items of one folder that change with its state. */
typedef struct
{
  FsAppletFolder *folder;
  GtkWidget *item;
  GtkWidget *pause_item;
  GtkWidget *held_item;
} Row;

static void
row_free (gpointer data)
{
  Row *row = data;

  g_object_unref (row->folder);
  g_free (row);
}

static void
fs_applet_menu_dispose (GObject *object)
{
  FsAppletMenu *self = FS_APPLET_MENU (object);

  if (self->model != NULL)
    g_signal_handlers_disconnect_by_data (self->model, self);
  g_clear_object (&self->model);
  if (self->menu != NULL)
    {
      gtk_widget_destroy (self->menu);
      g_clear_object (&self->menu);
    }
  g_hash_table_remove_all (self->rows);
  G_OBJECT_CLASS (fs_applet_menu_parent_class)->dispose (object);
}

static void
fs_applet_menu_finalize (GObject *object)
{
  FsAppletMenu *self = FS_APPLET_MENU (object);

  g_hash_table_unref (self->rows);
  G_OBJECT_CLASS (fs_applet_menu_parent_class)->finalize (object);
}

static void
fs_applet_menu_class_init (FsAppletMenuClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = fs_applet_menu_dispose;
  object_class->finalize = fs_applet_menu_finalize;
}

static void
fs_applet_menu_init (FsAppletMenu *self)
{
  self->rows = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, row_free);
}

/* ---- actions ------------------------------------------------------------ */

static FsAppletFolder *
item_folder (GtkMenuItem *item)
{
  return g_object_get_data (G_OBJECT (item), "fs-folder");
}

/* Completion of a call without results; user_data: what failed, for people. */
static void
call_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autofree gchar *what = user_data;
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply = g_dbus_proxy_call_finish (G_DBUS_PROXY (source), result, &error);

  if (reply == NULL)
    fs_applet_show_error (what, error);
}

static void
open_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GError) error = NULL;

  if (!g_app_info_launch_default_for_uri_finish (result, &error))
    fs_applet_show_error (_("The folder could not be opened"), error);
}

static void
open_activate_cb (GtkMenuItem *item, FsAppletMenu *self)
{
  g_autofree gchar *uri = g_filename_to_uri (fs_applet_folder_get_local_path (item_folder (item)), NULL, NULL);

  if (uri != NULL)
    g_app_info_launch_default_for_uri_async (uri, NULL, NULL, open_done, NULL);
}

static void
sync_activate_cb (GtkMenuItem *item, FsAppletMenu *self)
{
  fs_dbus_folder_call_force_sync (fs_applet_folder_get_proxy (item_folder (item)), NULL, call_done,
                                  g_strdup (_("The folder could not be synced")));
}

static void
pause_activate_cb (GtkMenuItem *item, FsAppletMenu *self)
{
  FsAppletFolder *folder = item_folder (item);

  if (fs_applet_folder_is_paused (folder))
    fs_dbus_folder_call_start (fs_applet_folder_get_proxy (folder), NULL, call_done,
                               g_strdup (_("Syncing could not be resumed")));
  else
    fs_dbus_folder_call_stop (fs_applet_folder_get_proxy (folder), NULL, call_done,
                              g_strdup (_("Syncing could not be paused")));
}

static void
held_activate_cb (GtkMenuItem *item, FsAppletMenu *self)
{
  fs_dbus_folder_call_confirm_deletes (fs_applet_folder_get_proxy (item_folder (item)), NULL, call_done,
                                       g_strdup (_("The deletions could not be applied")));
}

static void
pair_activate_cb (GtkMenuItem *item, FsAppletMenu *self)
{
  FsAppletFolder *folder = item_folder (item);
  g_autofree gchar *name = fs_applet_folder_dup_name (folder);

  gtk_window_present (GTK_WINDOW (fs_applet_pair_window_new (fs_applet_folder_get_proxy (folder), name)));
}

static void
resolve_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (FsAppletFolder) folder = user_data;
  g_autoptr (GError) error = NULL;

  if (!fs_dbus_folder_call_resolve_conflict_finish (FS_DBUS_FOLDER (source), result, &error))
    fs_applet_show_error (_("The conflict could not be resolved"), error);
  fs_applet_folder_refresh_conflicts (folder);
}

static void
resolve_activate_cb (GtkMenuItem *item, FsAppletMenu *self)
{
  FsAppletFolder *folder = item_folder (item);

  fs_dbus_folder_call_resolve_conflict (fs_applet_folder_get_proxy (folder),
                                        g_object_get_data (G_OBJECT (item), "fs-copy"),
                                        g_object_get_data (G_OBJECT (item), "fs-keep"), NULL, resolve_done,
                                        g_object_ref (folder));
}

static void
add_folder_activate_cb (GtkMenuItem *item, FsAppletMenu *self)
{
  fs_applet_add_folder (self->model);
}

static void
start_daemon_activate_cb (GtkMenuItem *item, FsAppletMenu *self)
{
  fs_applet_model_start_daemon (self->model);
}

static void
quit_activate_cb (GtkMenuItem *item, FsAppletMenu *self)
{
  g_application_quit (g_application_get_default ());
}

/* ---- building ----------------------------------------------------------- */

/* dbusmenu hosts read "_" in a label as a mnemonic marker and "__" as an
 * underscore, and libdbusmenu-gtk passes the label on as it is: so labels
 * (with file and folder names in them) are set with underscores doubled. */
static void
set_label (GtkWidget *item, const gchar *text)
{
  g_auto (GStrv) parts = g_strsplit (text, "_", -1);
  g_autofree gchar *escaped = g_strjoinv ("__", parts);

  gtk_menu_item_set_use_underline (GTK_MENU_ITEM (item), TRUE);
  gtk_menu_item_set_label (GTK_MENU_ITEM (item), escaped);
}

static GtkWidget *
append (GtkWidget *menu, const gchar *label, GCallback callback, gpointer data, FsAppletFolder *folder)
{
  GtkWidget *item = label != NULL ? gtk_menu_item_new () : gtk_separator_menu_item_new ();

  if (label != NULL)
    set_label (item, label);

  if (folder != NULL)
    g_object_set_data_full (G_OBJECT (item), "fs-folder", g_object_ref (folder), g_object_unref);
  if (callback != NULL)
    g_signal_connect (item, "activate", callback, data);
  else if (label != NULL)
    gtk_widget_set_sensitive (item, FALSE);
  gtk_widget_show (item);
  gtk_menu_shell_append (GTK_MENU_SHELL (menu), item);
  return item;
}

static void
update_row (Row *row)
{
  g_autofree gchar *name = fs_applet_folder_dup_name (row->folder);
  g_autofree gchar *state = fs_applet_folder_describe (row->folder);
  /* TRANSLATORS: a folder in the menu, "Notes — Paused" */
  g_autofree gchar *label = g_strdup_printf (_("%s — %s"), name, state);
  guint held = fs_applet_folder_get_held_deletes (row->folder);

  set_label (row->item, label);
  set_label (row->pause_item, fs_applet_folder_is_paused (row->folder) ? _("Resume") : _("Pause"));
  gtk_widget_set_visible (row->held_item, held > 0);
  if (held > 0)
    {
      g_autofree gchar *text = g_strdup_printf (g_dngettext (GETTEXT_PACKAGE, "Apply %u held deletion",
                                                             "Apply %u held deletions", held),
                                                held);
      set_label (row->held_item, text);
    }
}

static void
append_conflicts (FsAppletMenu *self, GtkWidget *submenu, FsAppletFolder *folder)
{
  static const struct
  {
    const gchar *keep;
    const gchar *label;
  } choices[] = {
    /* TRANSLATORS: of a conflict: this device's version replaces the other */
    { "mine", N_("Keep mine") },
    /* TRANSLATORS: of a conflict: the other device's version stays, this device's goes to the trash */
    { "theirs", N_("Keep theirs") },
    /* TRANSLATORS: of a conflict: both stay, this device's under a new name */
    { "both", N_("Keep both") },
  };
  GVariant *conflicts = fs_applet_folder_get_conflicts (folder);
  gsize n = g_variant_n_children (conflicts);
  g_autofree gchar *label = NULL;
  GtkWidget *item, *list;

  if (n == 0)
    {
      append (submenu, _("No conflicts"), NULL, NULL, NULL);
      return;
    }
  label = g_strdup_printf (_("Show conflicts (%u)"), (guint)n);
  item = append (submenu, label, NULL, NULL, NULL);
  gtk_widget_set_sensitive (item, TRUE);
  list = gtk_menu_new ();
  gtk_menu_item_set_submenu (GTK_MENU_ITEM (item), list);
  for (gsize i = 0; i < n; i++)
    {
      const gchar *original, *copy;
      GtkWidget *conflict, *choice_menu;

      g_variant_get_child (conflicts, i, "(&s&s)", &original, &copy);
      conflict = append (list, copy, NULL, NULL, NULL);
      gtk_widget_set_sensitive (conflict, TRUE);
      choice_menu = gtk_menu_new ();
      gtk_menu_item_set_submenu (GTK_MENU_ITEM (conflict), choice_menu);
      for (gsize c = 0; c < G_N_ELEMENTS (choices); c++)
        {
          GtkWidget *choice = append (choice_menu, _(choices[c].label), G_CALLBACK (resolve_activate_cb),
                                      self, folder);
          g_object_set_data_full (G_OBJECT (choice), "fs-copy", g_strdup (copy), g_free);
          g_object_set_data (G_OBJECT (choice), "fs-keep", (gpointer)choices[c].keep);
        }
    }
}

static void
append_folder (FsAppletMenu *self, FsAppletFolder *folder)
{
  Row *row = g_new0 (Row, 1);
  GtkWidget *submenu = gtk_menu_new ();

  row->folder = g_object_ref (folder);
  row->item = append (self->menu, "", NULL, NULL, NULL);
  gtk_widget_set_sensitive (row->item, TRUE);
  gtk_menu_item_set_submenu (GTK_MENU_ITEM (row->item), submenu);
  append (submenu, _("Open folder"), G_CALLBACK (open_activate_cb), self, folder);
  append (submenu, _("Sync now"), G_CALLBACK (sync_activate_cb), self, folder);
  row->pause_item = append (submenu, _("Pause"), G_CALLBACK (pause_activate_cb), self, folder);
  append_conflicts (self, submenu, folder);
  row->held_item = append (submenu, "", G_CALLBACK (held_activate_cb), self, folder);
  append (submenu, NULL, NULL, NULL, NULL);
  append (submenu, _("Pair a device…"), G_CALLBACK (pair_activate_cb), self, folder);
  update_row (row);
  g_hash_table_insert (self->rows, g_strdup (fs_applet_folder_get_object_path (folder)), row);
}

static void
rebuild (FsAppletMenu *self)
{
  g_autoptr (GList) children = gtk_container_get_children (GTK_CONTAINER (self->menu));
  GPtrArray *folders = fs_applet_model_get_folders (self->model);

  for (GList *l = children; l != NULL; l = l->next)
    gtk_widget_destroy (l->data);
  g_hash_table_remove_all (self->rows);

  if (!fs_applet_model_is_connected (self->model))
    {
      append (self->menu, _("FolderSync is not running"), NULL, NULL, NULL);
      append (self->menu, _("Start FolderSync"), G_CALLBACK (start_daemon_activate_cb), self, NULL);
    }
  else
    {
      if (folders->len == 0)
        append (self->menu, _("No folders are synced"), NULL, NULL, NULL);
      for (guint i = 0; i < folders->len; i++)
        append_folder (self, g_ptr_array_index (folders, i));
      append (self->menu, NULL, NULL, NULL, NULL);
      append (self->menu, _("Add folder…"), G_CALLBACK (add_folder_activate_cb), self, NULL);
    }
  append (self->menu, NULL, NULL, NULL, NULL);
  append (self->menu, _("Quit"), G_CALLBACK (quit_activate_cb), self, NULL);
}

static void
folders_changed_cb (FsAppletModel *model, FsAppletMenu *self)
{
  rebuild (self);
}

static void
folder_changed_cb (FsAppletModel *model, FsAppletFolder *folder, FsAppletMenu *self)
{
  Row *row = g_hash_table_lookup (self->rows, fs_applet_folder_get_object_path (folder));

  if (row != NULL && row->folder == folder)
    update_row (row);
  else
    rebuild (self);
}

FsAppletMenu *
fs_applet_menu_new (FsAppletModel *model)
{
  FsAppletMenu *self;

  g_return_val_if_fail (FS_APPLET_IS_MODEL (model), NULL);

  self = g_object_new (FS_APPLET_TYPE_MENU, NULL);
  self->model = g_object_ref (model);
  self->menu = g_object_ref_sink (gtk_menu_new ());
  g_signal_connect (model, "folders-changed", G_CALLBACK (folders_changed_cb), self);
  g_signal_connect (model, "folder-changed", G_CALLBACK (folder_changed_cb), self);
  rebuild (self);
  return self;
}

GtkMenu *
fs_applet_menu_get_menu (FsAppletMenu *self)
{
  g_return_val_if_fail (FS_APPLET_IS_MENU (self), NULL);
  return GTK_MENU (self->menu);
}
