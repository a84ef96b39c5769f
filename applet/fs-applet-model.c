/* FsAppletModel: the daemon's folders, followed over D-Bus.
 *
 * It watches the name org.toolbox.FolderSync; each time an owner appears it
 * makes a new GDBusObjectManagerClient and Manager proxy (so a restarted
 * daemon is read afresh, GetManagedObjects included) and drops them when the
 * owner goes. Nothing is polled: folders come and go with InterfacesAdded /
 * InterfacesRemoved, their state with PropertiesChanged. Signals:
 *   "folders-changed"               the list, a conflict list or the connection changed
 *   "folder-changed" (folder)       a folder's state or progress changed
 *   "event" (folder, kind, detail)  something to notify (FsAppletEvent)
 *   "event-over" (folder, kind)     what it notified is over
 */
#include "config.h"

#include "fs-applet-model.h"

#define FS_BUS_NAME "org.toolbox.FolderSync"
#define FS_MANAGER_PATH "/org/toolbox/FolderSync"

struct _FsAppletModel
{
  GObject parent_instance;

  guint watch_id;
  GDBusConnection *connection;
  GCancellable *cancellable; /* the setup for the current owner */
  GDBusObjectManager *object_manager;
  FsDBusManager *manager;
  GPtrArray *folders; /* FsAppletFolder, sorted by name */
};

G_DEFINE_FINAL_TYPE (FsAppletModel, fs_applet_model, G_TYPE_OBJECT)

enum
{
  SIGNAL_FOLDERS_CHANGED,
  SIGNAL_FOLDER_CHANGED,
  SIGNAL_EVENT,
  SIGNAL_EVENT_OVER,
  N_SIGNALS
};
static guint signals[N_SIGNALS];

static void
drop_folder (gpointer data)
{
  FsAppletFolder *folder = data;

  g_signal_handlers_disconnect_matched (folder, G_SIGNAL_MATCH_DATA, 0, 0, NULL, NULL,
                                        g_object_get_data (G_OBJECT (folder), "fs-model"));
  g_object_unref (folder);
}

/* Forgets the current owner's objects. */
static void
disconnect_daemon (FsAppletModel *self)
{
  g_cancellable_cancel (self->cancellable);
  g_clear_object (&self->cancellable);
  if (self->object_manager != NULL)
    g_signal_handlers_disconnect_by_data (self->object_manager, self);
  g_clear_object (&self->object_manager);
  if (self->manager != NULL)
    g_signal_handlers_disconnect_by_data (self->manager, self);
  g_clear_object (&self->manager);
  g_ptr_array_set_size (self->folders, 0);
}

static void
fs_applet_model_dispose (GObject *object)
{
  FsAppletModel *self = FS_APPLET_MODEL (object);

  if (self->watch_id != 0)
    {
      g_bus_unwatch_name (self->watch_id);
      self->watch_id = 0;
    }
  disconnect_daemon (self);
  g_clear_object (&self->connection);
  G_OBJECT_CLASS (fs_applet_model_parent_class)->dispose (object);
}

static void
fs_applet_model_finalize (GObject *object)
{
  FsAppletModel *self = FS_APPLET_MODEL (object);

  g_ptr_array_unref (self->folders);
  G_OBJECT_CLASS (fs_applet_model_parent_class)->finalize (object);
}

static void
fs_applet_model_class_init (FsAppletModelClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = fs_applet_model_dispose;
  object_class->finalize = fs_applet_model_finalize;

  signals[SIGNAL_FOLDERS_CHANGED] = g_signal_new ("folders-changed", G_TYPE_FROM_CLASS (klass),
                                                  G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL, G_TYPE_NONE, 0);
  signals[SIGNAL_FOLDER_CHANGED] = g_signal_new ("folder-changed", G_TYPE_FROM_CLASS (klass),
                                                 G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL, G_TYPE_NONE, 1,
                                                 FS_APPLET_TYPE_FOLDER);
  signals[SIGNAL_EVENT] = g_signal_new ("event", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL,
                                        NULL, NULL, G_TYPE_NONE, 3, FS_APPLET_TYPE_FOLDER, G_TYPE_UINT,
                                        G_TYPE_STRING);
  signals[SIGNAL_EVENT_OVER] = g_signal_new ("event-over", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                                             NULL, NULL, NULL, G_TYPE_NONE, 2, FS_APPLET_TYPE_FOLDER,
                                             G_TYPE_UINT);
}

static void
fs_applet_model_init (FsAppletModel *self)
{
  self->folders = g_ptr_array_new_with_free_func (drop_folder);
}

/* ---- folders ------------------------------------------------------------ */

static void
folder_changed_cb (FsAppletFolder *folder, FsAppletModel *self)
{
  g_signal_emit (self, signals[SIGNAL_FOLDER_CHANGED], 0, folder);
}

static void
folder_conflicts_changed_cb (FsAppletFolder *folder, FsAppletModel *self)
{
  g_signal_emit (self, signals[SIGNAL_FOLDERS_CHANGED], 0);
}

static void
folder_event_cb (FsAppletFolder *folder, guint kind, const gchar *detail, FsAppletModel *self)
{
  g_signal_emit (self, signals[SIGNAL_EVENT], 0, folder, kind, detail);
}

static void
folder_event_over_cb (FsAppletFolder *folder, guint kind, FsAppletModel *self)
{
  g_signal_emit (self, signals[SIGNAL_EVENT_OVER], 0, folder, kind);
}

static gint
compare_folders (gconstpointer a, gconstpointer b)
{
  FsAppletFolder *fa = *(FsAppletFolder *const *)a;
  FsAppletFolder *fb = *(FsAppletFolder *const *)b;
  g_autofree gchar *na = fs_applet_folder_dup_name (fa);
  g_autofree gchar *nb = fs_applet_folder_dup_name (fb);
  gint cmp = g_utf8_collate (na, nb);

  return cmp != 0 ? cmp : g_strcmp0 (fs_applet_folder_get_local_path (fa), fs_applet_folder_get_local_path (fb));
}

/* Returns TRUE if @object was a folder, now in the list. */
static gboolean
add_object (FsAppletModel *self, GDBusObject *object)
{
  g_autoptr (FsDBusFolder) proxy = fs_dbus_object_get_folder (FS_DBUS_OBJECT (object));
  FsAppletFolder *folder;

  if (proxy == NULL || fs_applet_model_lookup (self, g_dbus_object_get_object_path (object)) != NULL)
    return FALSE;
  folder = fs_applet_folder_new (proxy);
  g_object_set_data (G_OBJECT (folder), "fs-model", self);
  g_signal_connect (folder, "changed", G_CALLBACK (folder_changed_cb), self);
  g_signal_connect (folder, "conflicts-changed", G_CALLBACK (folder_conflicts_changed_cb), self);
  g_signal_connect (folder, "event", G_CALLBACK (folder_event_cb), self);
  g_signal_connect (folder, "event-over", G_CALLBACK (folder_event_over_cb), self);
  g_ptr_array_add (self->folders, folder);
  g_ptr_array_sort (self->folders, compare_folders);
  return TRUE;
}

static void
object_added_cb (GDBusObjectManager *manager, GDBusObject *object, FsAppletModel *self)
{
  if (add_object (self, object))
    g_signal_emit (self, signals[SIGNAL_FOLDERS_CHANGED], 0);
}

static void
object_removed_cb (GDBusObjectManager *manager, GDBusObject *object, FsAppletModel *self)
{
  const gchar *path = g_dbus_object_get_object_path (object);

  for (guint i = 0; i < self->folders->len; i++)
    if (g_strcmp0 (fs_applet_folder_get_object_path (g_ptr_array_index (self->folders, i)), path) == 0)
      {
        g_ptr_array_remove_index (self->folders, i);
        g_signal_emit (self, signals[SIGNAL_FOLDERS_CHANGED], 0);
        return;
      }
}

/* Manager.FolderPaired: the folder is already there (InterfacesAdded came first). */
static void
folder_paired_cb (FsDBusManager *manager, const gchar *path, FsAppletModel *self)
{
  FsAppletFolder *folder = fs_applet_model_lookup (self, path);

  if (folder == NULL)
    {
      g_debug ("FolderPaired for an unknown folder %s", path);
      return;
    }
  g_signal_emit (self, signals[SIGNAL_EVENT], 0, folder, (guint)FS_APPLET_EVENT_PAIRED,
                 fs_applet_folder_get_local_path (folder));
}

/* ---- the daemon's name -------------------------------------------------- */

static void
object_manager_ready (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (FsAppletModel) self = user_data;
  g_autoptr (GError) error = NULL;
  g_autoptr (GDBusObjectManager) manager = fs_dbus_object_manager_client_new_finish (result, &error);
  g_autolist (GDBusObject) objects = NULL;

  if (manager == NULL)
    {
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        g_warning ("Cannot read the daemon's folders: %s", error->message);
      return;
    }
  if (self->cancellable == NULL || g_cancellable_is_cancelled (self->cancellable))
    return;
  self->object_manager = g_steal_pointer (&manager);
  g_signal_connect (self->object_manager, "object-added", G_CALLBACK (object_added_cb), self);
  g_signal_connect (self->object_manager, "object-removed", G_CALLBACK (object_removed_cb), self);
  objects = g_dbus_object_manager_get_objects (self->object_manager);
  for (GList *l = objects; l != NULL; l = l->next)
    add_object (self, l->data);
  g_debug ("Connected to the daemon: %u folder(s)", self->folders->len);
  g_signal_emit (self, signals[SIGNAL_FOLDERS_CHANGED], 0);
}

static void
manager_ready (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (FsAppletModel) self = user_data;
  g_autoptr (GError) error = NULL;
  g_autoptr (FsDBusManager) manager = fs_dbus_manager_proxy_new_finish (result, &error);

  if (manager == NULL)
    {
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        g_warning ("Cannot reach the daemon's manager: %s", error->message);
      return;
    }
  if (self->cancellable == NULL || g_cancellable_is_cancelled (self->cancellable))
    return;
  self->manager = g_steal_pointer (&manager);
  g_signal_connect (self->manager, "folder-paired", G_CALLBACK (folder_paired_cb), self);
}

static void
name_appeared_cb (GDBusConnection *connection, const gchar *name, const gchar *owner, gpointer user_data)
{
  FsAppletModel *self = user_data;

  g_debug ("%s appeared (%s)", name, owner);
  disconnect_daemon (self);
  g_set_object (&self->connection, connection);
  self->cancellable = g_cancellable_new ();
  fs_dbus_object_manager_client_new (connection, G_DBUS_OBJECT_MANAGER_CLIENT_FLAGS_DO_NOT_AUTO_START,
                                     FS_BUS_NAME, FS_MANAGER_PATH, self->cancellable,
                                     object_manager_ready, g_object_ref (self));
  fs_dbus_manager_proxy_new (connection, G_DBUS_PROXY_FLAGS_DO_NOT_AUTO_START, FS_BUS_NAME, FS_MANAGER_PATH,
                             self->cancellable, manager_ready, g_object_ref (self));
}

static void
name_vanished_cb (GDBusConnection *connection, const gchar *name, gpointer user_data)
{
  FsAppletModel *self = user_data;

  g_debug ("%s is not on the bus", name);
  if (connection != NULL)
    g_set_object (&self->connection, connection);
  disconnect_daemon (self);
  g_signal_emit (self, signals[SIGNAL_FOLDERS_CHANGED], 0);
}

FsAppletModel *
fs_applet_model_new (void)
{
  FsAppletModel *self = g_object_new (FS_APPLET_TYPE_MODEL, NULL);

  /* AUTO_START: logging in starts the applet, and the applet the daemon. */
  self->watch_id = g_bus_watch_name (G_BUS_TYPE_SESSION, FS_BUS_NAME, G_BUS_NAME_WATCHER_FLAGS_AUTO_START,
                                     name_appeared_cb, name_vanished_cb, self, NULL);
  return self;
}

/* ---- queries ------------------------------------------------------------ */

gboolean
fs_applet_model_is_connected (FsAppletModel *self)
{
  g_return_val_if_fail (FS_APPLET_IS_MODEL (self), FALSE);
  return self->object_manager != NULL;
}

GPtrArray *
fs_applet_model_get_folders (FsAppletModel *self)
{
  g_return_val_if_fail (FS_APPLET_IS_MODEL (self), NULL);
  return self->folders;
}

/* NULL while the daemon is not on the bus. */
FsDBusManager *
fs_applet_model_get_manager (FsAppletModel *self)
{
  g_return_val_if_fail (FS_APPLET_IS_MODEL (self), NULL);
  return self->manager;
}

FsAppletFolder *
fs_applet_model_lookup (FsAppletModel *self, const gchar *object_path)
{
  g_return_val_if_fail (FS_APPLET_IS_MODEL (self), NULL);

  for (guint i = 0; i < self->folders->len; i++)
    {
      FsAppletFolder *folder = g_ptr_array_index (self->folders, i);
      if (g_strcmp0 (fs_applet_folder_get_object_path (folder), object_path) == 0)
        return folder;
    }
  return NULL;
}

/* The tray icon's state: the worst folder's, offline without a daemon. */
FsAppletState
fs_applet_model_get_worst_state (FsAppletModel *self)
{
  FsAppletState worst = FS_APPLET_STATE_IDLE;

  g_return_val_if_fail (FS_APPLET_IS_MODEL (self), FS_APPLET_STATE_OFFLINE);

  if (!fs_applet_model_is_connected (self))
    return FS_APPLET_STATE_OFFLINE;
  for (guint i = 0; i < self->folders->len; i++)
    worst = MAX (worst, fs_applet_folder_get_state (g_ptr_array_index (self->folders, i)));
  return worst;
}

static void
start_service_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, &error);

  if (reply == NULL)
    g_warning ("Cannot start %s: %s", FS_BUS_NAME, error->message);
}

/* Asks the bus to activate the daemon; the name watch sees it arrive. */
void
fs_applet_model_start_daemon (FsAppletModel *self)
{
  g_return_if_fail (FS_APPLET_IS_MODEL (self));

  if (self->connection == NULL)
    return;
  g_dbus_connection_call (self->connection, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                          "org.freedesktop.DBus", "StartServiceByName",
                          g_variant_new ("(su)", FS_BUS_NAME, 0u), G_VARIANT_TYPE ("(u)"),
                          G_DBUS_CALL_FLAGS_NONE, -1, NULL, start_service_done, NULL);
}
