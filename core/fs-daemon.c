/* FsDaemon: Manager.AddFolder / RemoveFolder / Pair and the folder objects.
 * Every method error is an org.toolbox.FolderSync.Error.* (fs-dbus-error.h);
 * checking a new folder's store runs in a worker thread, so the main loop
 * never waits for the network. */
#include "config.h"

#include "fs-daemon.h"

#include <errno.h>
#include <glib/gi18n.h>
#include <stdlib.h>
#include <string.h>

#include "fs-dbus-error.h"
#include "fs-dbus-generated.h"
#include "fs-error.h"
#include "fs-folder.h"
#include "fs-folder-pairing.h"
#include "fs-long-token.h"

struct _FsDaemon
{
  GObject parent_instance;

  GDBusObjectManagerServer *manager;
  FsDBusManager *iface;
  GHashTable *folders;       /* object path → FsFolder */
  GHashTable *pending_paths; /* local paths of AddFolder calls being checked */
  gboolean exported;
  gboolean shutting_down;
};

G_DEFINE_TYPE (FsDaemon, fs_daemon, G_TYPE_OBJECT)

static void
return_error (GDBusMethodInvocation *invocation, const GError *error)
{
  g_autoptr (GError) dbus_error = fs_dbus_error_normalize (error);
  g_dbus_method_invocation_return_gerror (invocation, dbus_error);
}

static gint
compare_strings (gconstpointer a, gconstpointer b)
{
  return g_strcmp0 (*(const gchar *const *)a, *(const gchar *const *)b);
}

static void
update_folders_property (FsDaemon *self)
{
  g_autoptr (GPtrArray) paths = g_ptr_array_new ();
  GHashTableIter iter;
  gpointer key;

  g_hash_table_iter_init (&iter, self->folders);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    g_ptr_array_add (paths, key);
  g_ptr_array_sort (paths, compare_strings);
  g_ptr_array_add (paths, NULL);
  fs_dbus_manager_set_folders (self->iface, (const gchar *const *)paths->pdata);
}

static void
add_folder_object (FsDaemon *self, FsFolder *folder)
{
  g_hash_table_insert (self->folders, g_strdup (fs_folder_get_object_path (folder)),
                       g_object_ref (folder));
  if (self->exported)
    g_dbus_object_manager_server_export (self->manager,
                                         G_DBUS_OBJECT_SKELETON (fs_folder_get_object (folder)));
  update_folders_property (self);
}

/* TRUE if @a is @b or one contains the other. */
static gboolean
paths_overlap (const gchar *a, const gchar *b)
{
  gsize la = strlen (a);
  gsize lb = strlen (b);

  if (la == lb)
    return strcmp (a, b) == 0;
  if (la > lb)
    return strncmp (a, b, lb) == 0 && (a[lb] == '/' || g_str_equal (b, "/"));
  return strncmp (b, a, la) == 0 && (b[la] == '/' || g_str_equal (a, "/"));
}

static gboolean
check_no_overlap (FsDaemon *self, const gchar *path, GError **error)
{
  GHashTableIter iter;
  gpointer value;
  gpointer key;

  g_hash_table_iter_init (&iter, self->folders);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      const gchar *other = fs_folder_get_local_path (value);
      if (paths_overlap (path, other))
        {
          g_set_error (error, FS_DAEMON_ERROR, FS_DAEMON_ERROR_ALREADY_EXISTS,
                       g_str_equal (path, other) ? _("‘%s’ is already synced (%s)")
                                                 : _("‘%s’ overlaps the synced folder %s"),
                       path, other);
          return FALSE;
        }
    }
  g_hash_table_iter_init (&iter, self->pending_paths);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    if (paths_overlap (path, key))
      {
        g_set_error (error, FS_DAEMON_ERROR, FS_DAEMON_ERROR_ALREADY_EXISTS,
                     _("‘%s’ overlaps the folder %s being added"), path, (const gchar *)key);
        return FALSE;
      }
  return TRUE;
}

/* A folder must not hold FolderSync's own state or its store: it would sync
 * its own index and secrets, or feed the store into itself. */
static gboolean
check_not_ours (const FsFolderConfig *config, GError **error)
{
  g_autofree gchar *data = g_build_filename (g_get_user_data_dir (), "foldersync", NULL);
  g_autofree gchar *conf = g_build_filename (g_get_user_config_dir (), "foldersync", NULL);
  g_autofree gchar *store = NULL;
  const gchar *dirs[3] = { data, conf, NULL };

  if (config->endpoint == NULL && config->store_dir != NULL)
    dirs[2] = store = g_canonicalize_filename (config->store_dir, NULL);
  for (gsize i = 0; i < G_N_ELEMENTS (dirs); i++)
    {
      g_autofree gchar *resolved = dirs[i] != NULL ? realpath (dirs[i], NULL) : NULL;
      const gchar *dir = resolved != NULL ? resolved : dirs[i];
      if (dir != NULL && paths_overlap (config->local_path, dir))
        {
          g_set_error (error, FS_DAEMON_ERROR, FS_DAEMON_ERROR_INVALID_ARGUMENT,
                       i == 2 ? _("‘%s’ overlaps %s, which FolderSync keeps its store in")
                              : _("‘%s’ overlaps %s, which FolderSync keeps its own state in"),
                       config->local_path, dir);
          return FALSE;
        }
    }
  return TRUE;
}

/* "bucket/prefix" without stray slashes: where a folder's keys live. */
static gchar *
store_location (const FsFolderConfig *config)
{
  g_autofree gchar *joined = g_strdup_printf ("%s/%s", config->bucket != NULL ? config->bucket : "",
                                              config->prefix != NULL ? config->prefix : "");
  g_auto (GStrv) parts = g_strsplit (joined, "/", -1);
  g_autoptr (GString) out = g_string_new (NULL);

  for (guint i = 0; parts[i] != NULL; i++)
    if (*parts[i] != '\0')
      g_string_append_printf (out, "%s/", parts[i]);
  return g_string_free (g_steal_pointer (&out), FALSE);
}

/* Two folders of one daemon on one store location would become one folder
 * (each other's mirror, deletions included): refuse, and ask for a prefix. */
static gboolean
check_store_location (FsDaemon *self, const FsFolderConfig *config, GError **error)
{
  g_autofree gchar *store = fs_folder_config_describe_store (config);
  g_autofree gchar *where = store_location (config);
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, self->folders);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      const FsFolderConfig *other = fs_folder_get_config (value);
      g_autofree gchar *other_store = fs_folder_config_describe_store (other);
      g_autofree gchar *other_where = store_location (other);
      if (g_strcmp0 (store, other_store) == 0 && g_strcmp0 (where, other_where) == 0)
        {
          g_set_error (error, FS_DAEMON_ERROR, FS_DAEMON_ERROR_ALREADY_EXISTS,
                       _("%s already syncs to that store location; give this folder its own "
                         "prefix (--prefix)"),
                       other->local_path);
          return FALSE;
        }
    }
  return TRUE;
}

/* Makes config->local_path canonical and checks it is an existing folder
 * that overlaps no synced folder; on failure the call is answered. */
static gboolean
check_local_path (FsDaemon *self, GDBusMethodInvocation *invocation, FsFolderConfig *config)
{
  g_autoptr (GError) error = NULL;
  g_autofree gchar *resolved = NULL;

  if (!g_path_is_absolute (config->local_path))
    {
      g_dbus_method_invocation_return_error (invocation, FS_DAEMON_ERROR,
                                             FS_DAEMON_ERROR_INVALID_ARGUMENT,
                                             _("‘%s’ is not an absolute path"), config->local_path);
      return FALSE;
    }
  /* A stat on a local path: quick enough for the main loop. */
  resolved = realpath (config->local_path, NULL);
  if (resolved == NULL)
    {
      int saved = errno;
      g_dbus_method_invocation_return_error (invocation, FS_ENGINE_ERROR, FS_ENGINE_ERROR_FOLDER,
                                             saved == ENOENT ? _("The folder ‘%s’ does not exist")
                                                             : _("Cannot open the folder ‘%s’: %s"),
                                             config->local_path, g_strerror (saved));
      return FALSE;
    }
  if (!g_file_test (resolved, G_FILE_TEST_IS_DIR))
    {
      g_dbus_method_invocation_return_error (invocation, FS_ENGINE_ERROR, FS_ENGINE_ERROR_FOLDER,
                                             _("‘%s’ is not a folder"), config->local_path);
      return FALSE;
    }
  g_free (config->local_path);
  config->local_path = g_steal_pointer (&resolved);
  if (!check_no_overlap (self, config->local_path, &error))
    {
      return_error (invocation, error);
      return FALSE;
    }

  if (!check_not_ours (config, &error) || !check_store_location (self, config, &error))
    {
      return_error (invocation, error);
      return FALSE;
    }
  return TRUE;
}

/* ---- AddFolder --------------------------------------------------------- */

typedef struct
{
  FsDaemon *daemon;
  GDBusMethodInvocation *invocation;
  FsFolderConfig *config;
  gboolean paired; /* from Manager.Pair: announce FolderPaired */
} AddFolderData;

static void
add_folder_data_free (AddFolderData *data)
{
  g_object_unref (data->daemon);
  g_object_unref (data->invocation);
  fs_folder_config_free (data->config);
  g_free (data);
}

static void
open_engine_thread (GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  AddFolderData *data = task_data;
  GError *error = NULL;
  FsEngine *engine = fs_folder_open_engine (data->config, &error);

  if (engine == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, engine, g_object_unref);
}

static void
open_engine_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  GTask *task = G_TASK (result);
  AddFolderData *data = g_task_get_task_data (task);
  FsDaemon *self = data->daemon;
  g_autoptr (GError) error = NULL;
  g_autoptr (FsEngine) engine = g_task_propagate_pointer (task, &error);
  g_autoptr (FsFolder) folder = NULL;
  FsFolderConfig *config;

  g_hash_table_remove (self->pending_paths, data->config->local_path);
  if (engine == NULL)
    {
      g_message ("Cannot add folder %s: %s", data->config->local_path, error->message);
      return_error (data->invocation, error);
      return;
    }
  if (self->shutting_down)
    {
      g_dbus_method_invocation_return_error_literal (
        data->invocation, FS_DAEMON_ERROR, FS_DAEMON_ERROR_FAILED, "foldersyncd is shutting down");
      return;
    }
  /* Again, now that the store is known: a paired folder learnt its store
   * location from the envelope, and another call may have added one since. */
  if (!check_store_location (self, data->config, &error))
    {
      return_error (data->invocation, error);
      return;
    }

  config = g_steal_pointer (&data->config);
  do
    {
      g_autofree gchar *path = NULL;
      g_free (config->id);
      config->id = fs_folder_config_new_id ();
      path = g_strconcat (FS_FOLDER_OBJECT_PATH_PREFIX, config->id, NULL);
      if (!g_hash_table_contains (self->folders, path))
        break;
    }
  while (TRUE);
  config->running = TRUE;
  if (!fs_folder_config_save (config, &error))
    {
      g_autoptr (GError) ignored = NULL;
      fs_folder_config_delete (config->id, &ignored);
      fs_folder_config_free (config);
      return_error (data->invocation, error);
      return;
    }

  folder = fs_folder_new (config, engine);
  add_folder_object (self, folder);
  g_message ("Added folder %s: %s", fs_folder_get_id (folder), fs_folder_get_local_path (folder));
  fs_folder_start (folder, FALSE);
  fs_dbus_manager_complete_add_folder (self->iface, data->invocation,
                                       fs_folder_get_object_path (folder));
  if (data->paired)
    fs_dbus_manager_emit_folder_paired (self->iface, fs_folder_get_object_path (folder));
}

static gboolean
handle_add_folder (FsDBusManager *iface, GDBusMethodInvocation *invocation, GVariant *asv,
                   FsDaemon *self)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (FsFolderConfig) config = NULL;
  g_autoptr (GTask) task = NULL;
  AddFolderData *data;

  if (self->shutting_down)
    {
      g_dbus_method_invocation_return_error_literal (
        invocation, FS_DAEMON_ERROR, FS_DAEMON_ERROR_FAILED, "foldersyncd is shutting down");
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  config = fs_folder_config_new_from_variant (asv, FALSE, &error);
  if (config == NULL)
    {
      return_error (invocation, error);
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  if (!check_local_path (self, invocation, config))
    return G_DBUS_METHOD_INVOCATION_HANDLED;

  g_hash_table_add (self->pending_paths, g_strdup (config->local_path));
  data = g_new0 (AddFolderData, 1);
  data->daemon = g_object_ref (self);
  data->invocation = g_object_ref (invocation);
  data->config = g_steal_pointer (&config);
  task = g_task_new (self, NULL, open_engine_done, NULL);
  g_task_set_task_data (task, data, (GDestroyNotify)add_folder_data_free);
  g_task_run_in_thread (task, open_engine_thread);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* ---- RemoveFolder ------------------------------------------------------ */

static void
remove_folder_waited (GObject *source, GAsyncResult *result, gpointer user_data)
{
  FsFolder *folder = FS_FOLDER (source);
  g_autoptr (GDBusMethodInvocation) invocation = user_data;
  FsDBusManager *iface = g_object_get_data (G_OBJECT (invocation), "fs-manager");
  g_autoptr (GError) error = NULL;

  fs_folder_wait_finish (folder, result, NULL);
  if (!fs_folder_config_delete (fs_folder_get_id (folder), &error))
    {
      return_error (invocation, error);
      g_object_unref (folder);
      return;
    }
  g_message ("Removed folder %s: %s", fs_folder_get_id (folder), fs_folder_get_local_path (folder));
  fs_dbus_manager_complete_remove_folder (iface, g_steal_pointer (&invocation));
  g_object_unref (folder);
}

static gboolean
handle_remove_folder (FsDBusManager *iface, GDBusMethodInvocation *invocation,
                      const gchar *object_path, FsDaemon *self)
{
  gpointer folder = NULL;
  gpointer key = NULL;

  if (!g_hash_table_steal_extended (self->folders, object_path, &key, &folder))
    {
      g_dbus_method_invocation_return_error (invocation, FS_DAEMON_ERROR, FS_DAEMON_ERROR_NOT_FOUND,
                                             _("No folder ‘%s’"), object_path);
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  g_free (key);
  fs_folder_stop (folder, FALSE);
  g_dbus_object_manager_server_unexport (self->manager, object_path);
  update_folders_property (self);
  /* Forget it once its sync (if any) ended, so an AddFolder of the same path
   * right after does not find the index locked. */
  g_object_set_data_full (G_OBJECT (invocation), "fs-manager", g_object_ref (iface),
                          g_object_unref);
  fs_folder_wait_async (folder, NULL, remove_folder_waited, g_object_ref (invocation));
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

typedef struct
{
  AddFolderData add;
  gchar *token;
} PairData;

static void
pair_data_free (PairData *data)
{
  explicit_bzero (data->token, strlen (data->token));
  g_free (data->token);
  g_object_unref (data->add.daemon);
  g_object_unref (data->add.invocation);
  fs_folder_config_free (data->add.config);
  g_free (data);
}

/* Redeems the token (the envelope brings the key and settings), then checks
 * the store and key as AddFolder does. */
static void
pair_thread (GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  PairData *data = task_data;
  GError *error = NULL;
  FsEngine *engine = NULL;

  if (fs_folder_pairing_redeem (data->add.config, data->token, &error))
    engine = fs_folder_open_engine (data->add.config, &error);
  if (engine == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, engine, g_object_unref);
}

static gboolean
handle_pair (FsDBusManager *iface, GDBusMethodInvocation *invocation, const gchar *token,
             const gchar *local_path, GVariant *options, FsDaemon *self)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (FsFolderConfig) config = NULL;
  g_autoptr (GTask) task = NULL;
  GVariantDict dict;
  PairData *data;

  if (self->shutting_down)
    {
      g_dbus_method_invocation_return_error_literal (
        invocation, FS_DAEMON_ERROR, FS_DAEMON_ERROR_FAILED, "foldersyncd is shutting down");
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  /* The options are AddFolder's store settings; the key comes from the token. */
  g_variant_dict_init (&dict, options);
  if (fs_long_token_is_long (token)
      && (g_variant_dict_contains (&dict, "store") || g_variant_dict_contains (&dict, "endpoint")
          || g_variant_dict_contains (&dict, "bucket")))
    {
      g_variant_dict_clear (&dict);
      g_dbus_method_invocation_return_error_literal (
        invocation, FS_DAEMON_ERROR, FS_DAEMON_ERROR_INVALID_ARGUMENT,
        _("A long-form token names its store: give no store, endpoint or bucket with it"));
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  if (g_variant_dict_contains (&dict, "key-file") || g_variant_dict_contains (&dict, "local-path"))
    {
      g_variant_dict_clear (&dict);
      g_dbus_method_invocation_return_error_literal (
        invocation, FS_DAEMON_ERROR, FS_DAEMON_ERROR_INVALID_ARGUMENT,
        _("Pair takes the folder and key from its arguments and the token, not from options"));
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  g_variant_dict_insert (&dict, "local-path", "s", local_path);
  config = fs_folder_config_new_from_variant (g_variant_dict_end (&dict),
                                              fs_long_token_is_long (token), &error);
  if (config == NULL)
    {
      return_error (invocation, error);
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  if (!check_local_path (self, invocation, config))
    return G_DBUS_METHOD_INVOCATION_HANDLED;

  g_hash_table_add (self->pending_paths, g_strdup (config->local_path));
  data = g_new0 (PairData, 1);
  data->add.daemon = g_object_ref (self);
  data->add.invocation = g_object_ref (invocation);
  data->add.config = g_steal_pointer (&config);
  data->add.paired = TRUE;
  data->token = g_strdup (token);
  task = g_task_new (self, NULL, open_engine_done, NULL);
  /* open_engine_done reads the AddFolderData at the start of PairData. */
  g_task_set_task_data (task, data, (GDestroyNotify)pair_data_free);
  g_task_run_in_thread (task, pair_thread);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* ---- lifecycle --------------------------------------------------------- */

void
fs_daemon_export (FsDaemon *self, GDBusConnection *connection)
{
  g_autoptr (GError) error = NULL;
  GHashTableIter iter;
  gpointer value;

  g_return_if_fail (FS_IS_DAEMON (self));
  g_return_if_fail (!self->exported);

  /* A GDBusObjectManagerServer only manages objects below its own path, so
   * the Manager interface is exported on /org/toolbox/FolderSync next to the
   * ObjectManager interface, not as a managed object. */
  if (!g_dbus_interface_skeleton_export (G_DBUS_INTERFACE_SKELETON (self->iface), connection,
                                         FS_DAEMON_OBJECT_PATH, &error))
    g_warning ("Cannot export %s: %s", FS_DAEMON_OBJECT_PATH, error->message);
  g_hash_table_iter_init (&iter, self->folders);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    g_dbus_object_manager_server_export (self->manager,
                                         G_DBUS_OBJECT_SKELETON (fs_folder_get_object (value)));
  g_dbus_object_manager_server_set_connection (self->manager, connection);
  self->exported = TRUE;
}

void
fs_daemon_start_folders (FsDaemon *self)
{
  GHashTableIter iter;
  gpointer value;

  g_return_if_fail (FS_IS_DAEMON (self));

  g_hash_table_iter_init (&iter, self->folders);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    if (fs_folder_get_config (value)->running)
      fs_folder_start (value, FALSE);
}

typedef struct
{
  guint n_pending;
} ShutdownData;

static void
shutdown_folder_waited (GObject *source, GAsyncResult *result, gpointer user_data)
{
  GTask *task = user_data;
  ShutdownData *data = g_task_get_task_data (task);

  fs_folder_wait_finish (FS_FOLDER (source), result, NULL);
  if (--data->n_pending == 0)
    g_task_return_boolean (task, TRUE);
  g_object_unref (task);
}

void
fs_daemon_shutdown_async (FsDaemon *self, GAsyncReadyCallback callback, gpointer user_data)
{
  g_autoptr (GTask) task = g_task_new (self, NULL, callback, user_data);
  ShutdownData *data = g_new0 (ShutdownData, 1);
  GHashTableIter iter;
  gpointer value;

  self->shutting_down = TRUE;
  g_task_set_task_data (task, data, g_free);
  /* One extra count, dropped below, so the task cannot complete in the loop. */
  data->n_pending = 1;
  g_hash_table_iter_init (&iter, self->folders);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      data->n_pending++;
      fs_folder_stop (value, FALSE);
      fs_folder_wait_async (value, NULL, shutdown_folder_waited, g_object_ref (task));
    }
  if (--data->n_pending == 0)
    g_task_return_boolean (task, TRUE);
}

gboolean
fs_daemon_shutdown_finish (FsDaemon *self, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

static void
fs_daemon_dispose (GObject *object)
{
  FsDaemon *self = FS_DAEMON (object);

  g_clear_pointer (&self->folders, g_hash_table_unref);
  g_clear_pointer (&self->pending_paths, g_hash_table_unref);
  if (self->iface != NULL)
    {
      g_signal_handlers_disconnect_by_data (self->iface, self);
      if (self->exported)
        g_dbus_interface_skeleton_unexport (G_DBUS_INTERFACE_SKELETON (self->iface));
    }
  g_clear_object (&self->iface);
  g_clear_object (&self->manager);
  G_OBJECT_CLASS (fs_daemon_parent_class)->dispose (object);
}

static void
fs_daemon_class_init (FsDaemonClass *klass)
{
  G_OBJECT_CLASS (klass)->dispose = fs_daemon_dispose;
}

static void
fs_daemon_init (FsDaemon *self)
{
  fs_dbus_error_register ();
  self->folders = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_object_unref);
  self->pending_paths = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->manager = g_dbus_object_manager_server_new (FS_DAEMON_OBJECT_PATH);
  self->iface = fs_dbus_manager_skeleton_new ();
  fs_dbus_manager_set_version (self->iface, PACKAGE_VERSION);
  g_signal_connect (self->iface, "handle-add-folder", G_CALLBACK (handle_add_folder), self);
  g_signal_connect (self->iface, "handle-remove-folder", G_CALLBACK (handle_remove_folder), self);
  g_signal_connect (self->iface, "handle-pair", G_CALLBACK (handle_pair), self);
}

FsDaemon *
fs_daemon_new (void)
{
  FsDaemon *self = g_object_new (FS_TYPE_DAEMON, NULL);
  g_autoptr (GPtrArray) configs = fs_folder_config_load_all ();

  while (configs->len > 0)
    {
      FsFolderConfig *config = g_ptr_array_steal_index (configs, 0);
      g_autoptr (GError) error = NULL;
      g_autoptr (FsFolder) folder = NULL;

      if (!check_no_overlap (self, config->local_path, &error))
        {
          g_warning ("Skipping folder %s: %s", config->id, error->message);
          fs_folder_config_free (config);
          continue;
        }
      folder = fs_folder_new (config, NULL);
      add_folder_object (self, folder);
      g_message ("Restored folder %s: %s", fs_folder_get_id (folder),
                 fs_folder_get_local_path (folder));
    }
  update_folders_property (self);
  return self;
}
