/* The foldersync verbs that talk to foldersyncd over D-Bus: start, stop,
 * remove, status, force-sync, conflicts. Thin clients of the public API
 * (data/org.toolbox.FolderSync.xml); calling the bus activates the daemon. */
#include "config.h"

#include <glib/gi18n.h>
#include <json-glib/json-glib.h>
#include <stdio.h>
#include <unistd.h>

#include "fs-cli.h"
#include "fs-dbus-error.h"
#include "fs-dbus-generated.h"
#include "fs-cli-qr.h"
#include "fs-long-token.h"
#include "fs-store-config.h"

#define BUS_NAME "org.toolbox.FolderSync"
#define MANAGER_PATH "/org/toolbox/FolderSync"

static int
remote_fail (GError *error)
{
  g_dbus_error_strip_remote_error (error);
  return fs_cli_fail (error);
}

static GDBusObjectManager *
connect_manager (GError **error)
{
  g_autoptr(GDBusObjectManager) manager = NULL;
  g_autofree gchar *owner = NULL;

  fs_dbus_error_register ();
  manager = fs_dbus_object_manager_client_new_for_bus_sync (G_BUS_TYPE_SESSION,
                                                            G_DBUS_OBJECT_MANAGER_CLIENT_FLAGS_NONE,
                                                            BUS_NAME, MANAGER_PATH, NULL, error);
  if (manager == NULL)
    {
      /* No session bus at all: the same "cannot reach the daemon" exit code. */
      if (error != NULL && *error != NULL && (*error)->domain != G_DBUS_ERROR)
        {
          g_autofree gchar *message = g_strdup_printf (_("Cannot reach the session bus: %s"),
                                                       (*error)->message);
          g_clear_error (error);
          g_set_error_literal (error, G_DBUS_ERROR, G_DBUS_ERROR_FAILED, message);
        }
      return NULL;
    }
  /* The client is created even when nobody owns the name (and activation
   * failed): say so instead of listing no folders. */
  owner = g_dbus_object_manager_client_get_name_owner (G_DBUS_OBJECT_MANAGER_CLIENT (manager));
  if (owner == NULL)
    {
      g_set_error_literal (error, G_DBUS_ERROR, G_DBUS_ERROR_SERVICE_UNKNOWN,
                           _("foldersyncd is not running on the session bus and could not be started"));
      return NULL;
    }
  return g_steal_pointer (&manager);
}

/* The folder proxies, all or the one whose LocalPath is @path. */
static GList *
find_folders (GDBusObjectManager *manager, const gchar *path)
{
  GList *objects = g_dbus_object_manager_get_objects (manager);
  GList *found = NULL;

  for (GList *l = objects; l != NULL; l = l->next)
    {
      FsDBusFolder *folder = fs_dbus_object_get_folder (FS_DBUS_OBJECT (l->data));
      if (folder == NULL)
        continue;
      if (path == NULL || g_strcmp0 (fs_dbus_folder_get_local_path (folder), path) == 0)
        found = g_list_append (found, folder);
      else
        g_object_unref (folder);
    }
  g_list_free_full (objects, g_object_unref);
  return found;
}

static int
no_such_folder (const gchar *path)
{
  if (path != NULL)
    fs_cli_error (_("No synced folder at ‘%s’"), path);
  else
    fs_cli_error ("%s", _("No folders are synced"));
  return FS_CLI_EXIT_NOT_FOUND;
}

/* The options that say where a folder's store is: shared by start and pair. */
typedef struct {
  gchar *store;
  gchar *endpoint;
  gchar *bucket;
  gchar *region;
  gchar *access_key;
  gchar *secret_key_file;
  gchar *ca_file;
  gchar *device_name;
} StoreOptions;

static void
store_options_clear (StoreOptions *o)
{
  g_free (o->store);
  g_free (o->endpoint);
  g_free (o->bucket);
  g_free (o->region);
  g_free (o->access_key);
  g_free (o->secret_key_file);
  g_free (o->ca_file);
  g_free (o->device_name);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (StoreOptions, store_options_clear)

static void
add_store_option_entries (GOptionContext *context, StoreOptions *o)
{
  const GOptionEntry entries[] = {
    { "store", 's', 0, G_OPTION_ARG_FILENAME, &o->store,
      N_("A local store directory (default: $XDG_DATA_HOME/foldersync/store)"), "DIR" },
    { "endpoint", 0, 0, G_OPTION_ARG_STRING, &o->endpoint, N_("An S3 server instead"), "URL" },
    { "bucket", 'b', 0, G_OPTION_ARG_STRING, &o->bucket, N_("The S3 bucket"), "BUCKET" },
    { "region", 0, 0, G_OPTION_ARG_STRING, &o->region, N_("S3 region"), "REGION" },
    { "access-key", 0, 0, G_OPTION_ARG_STRING, &o->access_key,
      N_("S3 access key (default: $AWS_ACCESS_KEY_ID)"), "KEY" },
    { "secret-key-file", 0, 0, G_OPTION_ARG_FILENAME, &o->secret_key_file,
      N_("File holding the S3 secret key (default: $AWS_SECRET_ACCESS_KEY)"), "FILE" },
    { "ca-file", 0, 0, G_OPTION_ARG_FILENAME, &o->ca_file, N_("CA to trust for https"), "FILE" },
    { "device-name", 0, 0, G_OPTION_ARG_STRING, &o->device_name, N_("Name in conflict copies"),
      "NAME" },
    { NULL },
  };
  /* GLib copies the entries; the pointers into @o stay valid. */
  g_option_context_add_main_entries (context, entries, GETTEXT_PACKAGE);
}

/* Adds the store options to an a{sv}. @secret receives the S3 secret key
 * the builder now holds too; the caller wipes it. */
static gboolean
add_store_options (GVariantBuilder *b, const StoreOptions *o, gboolean with_credentials,
                   gchar **secret, GError **error)
{
#define ADD_STRING(key, value)                                                         \
  if ((value) != NULL)                                                                 \
    g_variant_builder_add (b, "{sv}", key, g_variant_new_string (value));
  if (o->store != NULL)
    {
      g_autofree gchar *store = fs_cli_absolute_path (o->store);
      ADD_STRING ("store", store);
    }
  ADD_STRING ("endpoint", o->endpoint);
  ADD_STRING ("bucket", o->bucket);
  ADD_STRING ("region", o->region);
  ADD_STRING ("ca-file", o->ca_file);
  ADD_STRING ("device-name", o->device_name);
  if (o->endpoint != NULL || with_credentials)
    {
      ADD_STRING ("access-key", o->access_key != NULL ? o->access_key : g_getenv ("AWS_ACCESS_KEY_ID"));
      if (o->secret_key_file != NULL)
        {
          *secret = fs_store_config_read_secret (o->secret_key_file, error);
          if (*secret == NULL)
            return FALSE;
        }
      else
        *secret = g_strdup (g_getenv ("AWS_SECRET_ACCESS_KEY"));
      ADD_STRING ("secret-key", *secret);
    }
#undef ADD_STRING
  return TRUE;
}

/* Connects to the daemon and finds the folders at @opt_path (all when NULL).
 * FS_CLI_EXIT_OK with @manager and @folders set; else the message is printed
 * and the exit code returned. */
static int
open_folders (const gchar *opt_path, GDBusObjectManager **manager, GList **folders)
{
  g_autoptr(GError) error = NULL;
  g_autofree gchar *path = opt_path != NULL ? fs_cli_absolute_path (opt_path) : NULL;

  *manager = connect_manager (&error);
  if (*manager == NULL)
    return remote_fail (error);
  *folders = find_folders (*manager, path);
  if (*folders == NULL)
    {
      g_clear_object (manager);
      return no_such_folder (path);
    }
  return FS_CLI_EXIT_OK;
}

/* ---- start -------------------------------------------------------------- */

int
fs_cli_start (int argc, char **argv)
{
  g_autofree gchar *opt_path = NULL, *opt_key_file = NULL, *opt_prefix = NULL;
  g_auto(StoreOptions) store_opts = { 0 };
  gint opt_batch_interval = -1, opt_max_workers = -1, opt_poll_interval = -1;
  const GOptionEntry entries[] = {
    { "path", 'p', 0, G_OPTION_ARG_FILENAME, &opt_path, N_("The folder to sync (required)"), "DIR" },
    { "key-file", 'k', 0, G_OPTION_ARG_FILENAME, &opt_key_file,
      N_("Join with this existing key (64 hex characters, mode 0600); default: a new key"), "FILE" },
    { "prefix", 0, 0, G_OPTION_ARG_STRING, &opt_prefix, N_("Key prefix inside the store"), "PREFIX" },
    { "batch-interval", 0, 0, G_OPTION_ARG_INT, &opt_batch_interval,
      N_("Quiet time before a batch of changes syncs (ms, default 500)"), "MS" },
    { "max-workers", 0, 0, G_OPTION_ARG_INT, &opt_max_workers, N_("Parallel transfers (default 4)"),
      "N" },
    { "poll-interval", 0, 0, G_OPTION_ARG_INT, &opt_poll_interval,
      N_("Remote poll and polling fallback interval (s, default 30)"), "S" },
    { NULL },
  };
  g_autoptr(GOptionContext) context = g_option_context_new (_("— sync a folder live, in the daemon"));
  g_autoptr(GError) error = NULL;
  g_autoptr(GDBusObjectManager) manager = NULL;
  g_autoptr(FsDBusManager) proxy = NULL;
  g_autofree gchar *path = NULL;
  g_autofree gchar *object_path = NULL;
  g_autofree gchar *secret = NULL;
  GVariantBuilder config;
  GList *existing;

  g_option_context_add_main_entries (context, entries, GETTEXT_PACKAGE);
  add_store_option_entries (context, &store_opts);
  if (!fs_cli_parse_options (context, NULL, &argc, &argv))
    return FS_CLI_EXIT_USAGE;
  if (opt_path == NULL)
    return fs_cli_usage_error (_("--path is required"));
  path = fs_cli_absolute_path (opt_path);

  manager = connect_manager (&error);
  if (manager == NULL)
    return remote_fail (error);

  /* A folder that is known but stopped just starts again. */
  existing = find_folders (manager, path);
  if (existing != NULL)
    {
      FsDBusFolder *folder = existing->data;
      gboolean ok = fs_dbus_folder_call_start_sync (folder, NULL, &error);
      g_list_free_full (existing, g_object_unref);
      if (!ok)
        return remote_fail (error);
      g_print (_("Syncing %s\n"), path);
      return FS_CLI_EXIT_OK;
    }

  g_variant_builder_init (&config, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&config, "{sv}", "local-path", g_variant_new_string (path));
#define ADD_STRING(key, value)                                                         \
  if ((value) != NULL)                                                                 \
    g_variant_builder_add (&config, "{sv}", key, g_variant_new_string (value));
#define ADD_UINT(key, value)                                                           \
  if ((value) >= 0)                                                                    \
    g_variant_builder_add (&config, "{sv}", key, g_variant_new_uint32 ((guint32) (value)));
  if (opt_key_file != NULL)
    {
      g_autofree gchar *key_file = fs_cli_absolute_path (opt_key_file);
      ADD_STRING ("key-file", key_file);
    }
  ADD_STRING ("prefix", opt_prefix);
  if (!add_store_options (&config, &store_opts, FALSE, &secret, &error))
    {
      g_variant_builder_clear (&config);
      return fs_cli_fail (error);
    }
  ADD_UINT ("batch-interval", opt_batch_interval);
  ADD_UINT ("max-workers", opt_max_workers);
  ADD_UINT ("poll-interval", opt_poll_interval);
#undef ADD_STRING
#undef ADD_UINT

  proxy = fs_dbus_manager_proxy_new_for_bus_sync (G_BUS_TYPE_SESSION, G_DBUS_PROXY_FLAGS_NONE,
                                                  BUS_NAME, MANAGER_PATH, NULL, &error);
  if (proxy == NULL ||
      !fs_dbus_manager_call_add_folder_sync (proxy, g_variant_builder_end (&config), &object_path,
                                             NULL, &error))
    {
      if (secret != NULL)
        explicit_bzero (secret, strlen (secret));
      return remote_fail (error);
    }
  if (secret != NULL)
    explicit_bzero (secret, strlen (secret));
  g_print (_("Syncing %s (%s)\n"), path, object_path);
  if (opt_key_file == NULL)
    {
      /* The daemon made a key: the user must know it exists and where. */
      const gchar *id = strrchr (object_path, '/') + 1;
      g_autofree gchar *name = g_strconcat (id, ".key", NULL);
      g_autofree gchar *key_path = g_build_filename (g_get_user_config_dir (), "foldersync",
                                                     "secrets", name, NULL);
      g_print (_("A new key was made for this folder: %s\n"
                 "Keep a copy somewhere safe: without it the store cannot be read.\n"),
               key_path);
    }
  return FS_CLI_EXIT_OK;
}

/* ---- stop, remove --------------------------------------------------------- */

static int
for_each_folder (int argc, char **argv, const gchar *summary, gboolean remove)
{
  g_autofree gchar *opt_path = NULL;
  const GOptionEntry entries[] = {
    { "path", 'p', 0, G_OPTION_ARG_FILENAME, &opt_path, N_("Only this folder (default: all)"), "DIR" },
    { NULL },
  };
  g_autoptr(GOptionContext) context = g_option_context_new (summary);
  g_autoptr(GError) error = NULL;
  g_autoptr(GDBusObjectManager) manager = NULL;
  g_autoptr(FsDBusManager) proxy = NULL;
  GList *folders;
  int rc = FS_CLI_EXIT_OK;

  if (!fs_cli_parse_options (context, entries, &argc, &argv))
    return FS_CLI_EXIT_USAGE;
  if (remove && opt_path == NULL)
    return fs_cli_usage_error (_("--path is required"));
  rc = open_folders (opt_path, &manager, &folders);
  if (rc != FS_CLI_EXIT_OK)
    return rc;
  if (remove)
    proxy = fs_dbus_manager_proxy_new_for_bus_sync (G_BUS_TYPE_SESSION, G_DBUS_PROXY_FLAGS_NONE,
                                                    BUS_NAME, MANAGER_PATH, NULL, &error);
  for (GList *l = folders; l != NULL && rc == FS_CLI_EXIT_OK; l = l->next)
    {
      FsDBusFolder *folder = l->data;
      const gchar *object_path = g_dbus_proxy_get_object_path (G_DBUS_PROXY (folder));
      gboolean ok = remove ? proxy != NULL && fs_dbus_manager_call_remove_folder_sync (
                                                proxy, object_path, NULL, &error)
                           : fs_dbus_folder_call_stop_sync (folder, NULL, &error);
      if (!ok)
        rc = remote_fail (error);
      else
        g_print (remove ? _("No longer syncing %s\n") : _("Stopped %s\n"),
                 fs_dbus_folder_get_local_path (folder));
    }
  g_list_free_full (folders, g_object_unref);
  return rc;
}

int
fs_cli_stop (int argc, char **argv)
{
  return for_each_folder (argc, argv, _("— stop syncing (the folder stays configured)"), FALSE);
}

int
fs_cli_remove (int argc, char **argv)
{
  return for_each_folder (argc, argv, _("— forget a folder (its files stay)"), TRUE);
}

/* ---- status ------------------------------------------------------------- */

static gchar *
format_time (guint64 unix_time)
{
  g_autoptr(GDateTime) dt = NULL;
  if (unix_time == 0)
    return g_strdup (_("never"));
  dt = g_date_time_new_from_unix_local ((gint64) unix_time);
  return g_date_time_format (dt, "%Y-%m-%d %H:%M:%S");
}

int
fs_cli_status (int argc, char **argv)
{
  gboolean opt_json = FALSE;
  const GOptionEntry entries[] = {
    { "json", 0, 0, G_OPTION_ARG_NONE, &opt_json, N_("Print JSON (stable, see docs/cli.md)"), NULL },
    { NULL },
  };
  g_autoptr(GOptionContext) context = g_option_context_new (_("— show every synced folder"));
  g_autoptr(GError) error = NULL;
  g_autoptr(GDBusObjectManager) manager = NULL;
  g_autoptr(JsonBuilder) b = json_builder_new ();
  GList *folders;

  if (!fs_cli_parse_options (context, entries, &argc, &argv))
    return FS_CLI_EXIT_USAGE;
  manager = connect_manager (&error);
  if (manager == NULL)
    return remote_fail (error);
  folders = find_folders (manager, NULL);

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "folders");
  json_builder_begin_array (b);
  for (GList *l = folders; l != NULL; l = l->next)
    {
      FsDBusFolder *f = l->data;
      guint64 files_done = 0, files_total = 0, bytes_done = 0, bytes_total = 0;
      GVariant *progress = fs_dbus_folder_get_progress (f);

      if (progress != NULL)
        g_variant_get (progress, "(tttt)", &files_done, &files_total, &bytes_done, &bytes_total);
      if (opt_json)
        {
          json_builder_begin_object (b);
#define S(name, value)                                                                   \
  json_builder_set_member_name (b, name);                                                \
  json_builder_add_string_value (b, (value) != NULL ? (value) : "");
#define I(name, value)                                                                   \
  json_builder_set_member_name (b, name);                                                \
  json_builder_add_int_value (b, (gint64) (value));
          S ("id", fs_dbus_folder_get_id (f));
          S ("path", fs_dbus_folder_get_local_path (f));
          S ("store", fs_dbus_folder_get_store (f));
          S ("bucket", fs_dbus_folder_get_bucket (f));
          S ("prefix", fs_dbus_folder_get_prefix (f));
          S ("state", fs_dbus_folder_get_state (f));
          S ("watch_mode", fs_dbus_folder_get_watch_mode (f));
          S ("last_error", fs_dbus_folder_get_last_error (f));
          I ("last_sync", fs_dbus_folder_get_last_sync (f));
          I ("pending_uploads", fs_dbus_folder_get_pending_uploads (f));
          I ("pending_downloads", fs_dbus_folder_get_pending_downloads (f));
          I ("held_deletes", fs_dbus_folder_get_held_deletes (f));
          I ("sync_count", fs_dbus_folder_get_sync_count (f));
          I ("files_done", files_done);
          I ("files_total", files_total);
          I ("bytes_done", bytes_done);
          I ("bytes_total", bytes_total);
#undef S
#undef I
          json_builder_end_object (b);
        }
      else
        {
          g_autofree gchar *last = format_time (fs_dbus_folder_get_last_sync (f));
          const gchar *last_error = fs_dbus_folder_get_last_error (f);
          /* TRANSLATORS: the state (idle, syncing, paused, offline, error) and the
           * watch mode (inotify, polling) are API names and stay untranslated. */
          g_print (_("%s\n  state %s, last sync %s, watching by %s, %u pending up, %u pending down\n"),
                   fs_dbus_folder_get_local_path (f), fs_dbus_folder_get_state (f), last,
                   fs_dbus_folder_get_watch_mode (f), fs_dbus_folder_get_pending_uploads (f),
                   fs_dbus_folder_get_pending_downloads (f));
          if (fs_dbus_folder_get_held_deletes (f) > 0)
            g_print (_("  %u deletions held back: confirm them with gdbus (ConfirmDeletes)\n"),
                     fs_dbus_folder_get_held_deletes (f));
          if (last_error != NULL && *last_error != '\0')
            g_print (_("  last error: %s\n"), last_error);
        }
    }
  json_builder_end_array (b);
  json_builder_end_object (b);
  if (opt_json)
    {
      g_autoptr(JsonGenerator) gen = json_generator_new ();
      g_autoptr(JsonNode) root = json_builder_get_root (b);
      g_autofree gchar *text = NULL;
      json_generator_set_root (gen, root);
      json_generator_set_pretty (gen, TRUE);
      text = json_generator_to_data (gen, NULL);
      g_print ("%s\n", text);
    }
  else if (folders == NULL)
    g_print ("%s\n", _("No folders are synced. Start one with: foldersync start --path DIR"));
  g_list_free_full (folders, g_object_unref);
  return FS_CLI_EXIT_OK;
}

/* ---- force-sync ----------------------------------------------------------- */

static gboolean
timeout_cb (gpointer data)
{
  *(gboolean *) data = TRUE;
  return G_SOURCE_REMOVE;
}

int
fs_cli_force_sync (int argc, char **argv)
{
  g_autofree gchar *opt_path = NULL;
  gboolean opt_wait = FALSE;
  gint opt_timeout = 600;
  const GOptionEntry entries[] = {
    { "path", 'p', 0, G_OPTION_ARG_FILENAME, &opt_path, N_("Only this folder (default: all)"), "DIR" },
    { "wait", 'w', 0, G_OPTION_ARG_NONE, &opt_wait, N_("Wait until the sync finished"), NULL },
    { "timeout", 0, 0, G_OPTION_ARG_INT, &opt_timeout, N_("Give up waiting after S seconds (600)"), "S" },
    { NULL },
  };
  g_autoptr(GOptionContext) context = g_option_context_new (_("— a full reconcile now"));
  g_autoptr(GError) error = NULL;
  g_autoptr(GDBusObjectManager) manager = NULL;
  gboolean timed_out = FALSE;
  gboolean tty = isatty (STDOUT_FILENO);
  GList *folders;
  int rc = FS_CLI_EXIT_OK;

  if (!fs_cli_parse_options (context, entries, &argc, &argv))
    return FS_CLI_EXIT_USAGE;
  rc = open_folders (opt_path, &manager, &folders);
  if (rc != FS_CLI_EXIT_OK)
    return rc;

  for (GList *l = folders; l != NULL && rc == FS_CLI_EXIT_OK; l = l->next)
    {
      FsDBusFolder *f = l->data;
      guint64 before = fs_dbus_folder_get_sync_count (f);
      guint timeout_id;

      if (!fs_dbus_folder_call_force_sync_sync (f, NULL, &error))
        {
          rc = remote_fail (error);
          break;
        }
      if (!opt_wait)
        continue;
      /* The proxy's properties follow PropertiesChanged: wait for a sync that
       * began after the call to end. */
      timeout_id = g_timeout_add_seconds ((guint) MAX (opt_timeout, 1), timeout_cb, &timed_out);
      while (!timed_out)
        {
          const gchar *state = fs_dbus_folder_get_state (f);
          if (fs_dbus_folder_get_sync_count (f) > before &&
              g_strcmp0 (state, "syncing") != 0 && g_strcmp0 (state, "scanning") != 0)
            break;
          if (tty)
            {
              guint64 fd = 0, ft = 0, bd = 0, bt = 0;
              GVariant *p = fs_dbus_folder_get_progress (f);
              if (p != NULL)
                g_variant_get (p, "(tttt)", &fd, &ft, &bd, &bt);
              g_autofree gchar *line = g_strdup_printf (_("%s: %s %llu/%llu files"),
                                                        fs_dbus_folder_get_local_path (f),
                                                        state != NULL ? state : "",
                                                        (unsigned long long) fd,
                                                        (unsigned long long) ft);
              g_print ("\r%s   ", line);
              fflush (stdout);
            }
          g_main_context_iteration (NULL, TRUE);
        }
      if (tty)
        g_print ("\n");
      if (timed_out)
        {
          fs_cli_error (_("Timed out waiting for %s to finish syncing"),
                      fs_dbus_folder_get_local_path (f));
          rc = FS_CLI_EXIT_FAILED;
        }
      else
        {
          g_source_remove (timeout_id);
          if (g_strcmp0 (fs_dbus_folder_get_state (f), "error") == 0 ||
              g_strcmp0 (fs_dbus_folder_get_state (f), "offline") == 0)
            {
              g_printerr ("foldersync: %s: %s\n", fs_dbus_folder_get_local_path (f),
                          fs_dbus_folder_get_last_error (f));
              rc = FS_CLI_EXIT_FAILED;
            }
          else
            g_print (_("Synced %s\n"), fs_dbus_folder_get_local_path (f));
        }
    }
  g_list_free_full (folders, g_object_unref);
  return rc;
}

/* ---- conflicts ------------------------------------------------------------ */

int
fs_cli_conflicts (int argc, char **argv)
{
  g_autofree gchar *opt_path = NULL;
  const GOptionEntry entries[] = {
    { "path", 'p', 0, G_OPTION_ARG_FILENAME, &opt_path, N_("Only this folder (default: all)"), "DIR" },
    { NULL },
  };
  g_autoptr(GOptionContext) context = g_option_context_new (_("— list conflict copies"));
  g_autoptr(GError) error = NULL;
  g_autoptr(GDBusObjectManager) manager = NULL;
  GList *folders;
  int rc = FS_CLI_EXIT_OK;

  if (!fs_cli_parse_options (context, entries, &argc, &argv))
    return FS_CLI_EXIT_USAGE;
  rc = open_folders (opt_path, &manager, &folders);
  if (rc != FS_CLI_EXIT_OK)
    return rc;
  for (GList *l = folders; l != NULL && rc == FS_CLI_EXIT_OK; l = l->next)
    {
      g_autoptr(GVariant) conflicts = NULL;
      GVariantIter iter;
      const gchar *original, *copy;

      if (!fs_dbus_folder_call_list_conflicts_sync (l->data, &conflicts, NULL, &error))
        {
          rc = remote_fail (error);
          break;
        }
      g_variant_iter_init (&iter, conflicts);
      while (g_variant_iter_next (&iter, "(&s&s)", &original, &copy))
        g_print ("%s/%s\t%s\n", fs_dbus_folder_get_local_path (l->data), original, copy);
    }
  g_list_free_full (folders, g_object_unref);
  return rc;
}

/* ---- generate-token, pair ----------------------------------------------- */

static void
print_long_token (const gchar *long_token, gboolean included_credentials, const gchar *qr_mode)
{
  gboolean qr = g_strcmp0 (qr_mode, "always") == 0
                || (g_strcmp0 (qr_mode, "auto") == 0 && isatty (STDOUT_FILENO));

  g_print ("\n%s\n  foldersync pair --path DIR --token %s\n",
           included_credentials
             ? _("For a device with no storage configured, the long form (it carries this "
                 "folder's S3 credentials):")
             : _("For a device with no storage configured, the long form (that device gives "
                 "its own S3 access key and secret):"),
           long_token);
  if (qr)
    {
      g_autofree gchar *code = fs_cli_qr_render (long_token);
      if (code != NULL)
        g_print ("\n%s", code);
      else
        fs_cli_error ("%s", _("The long form is too long for a QR code"));
    }
}

int
fs_cli_generate_token (int argc, char **argv)
{
  g_autofree gchar *opt_path = NULL;
  g_autofree gchar *opt_qr = NULL;
  gint opt_ttl = 300;
  gboolean opt_include_credentials = FALSE;
  gboolean opt_no_qr = FALSE;
  const GOptionEntry entries[] = {
    { "path", 'p', 0, G_OPTION_ARG_FILENAME, &opt_path, N_("The synced folder to share (required)"),
      "DIR" },
    { "ttl", 0, 0, G_OPTION_ARG_INT, &opt_ttl, N_("Seconds the token stays valid (default 300)"), "S" },
    { "include-credentials", 0, 0, G_OPTION_ARG_NONE, &opt_include_credentials,
      N_("Let this folder's S3 credentials travel with the token (default: the other device "
        "gives its own)"), NULL },
    { "qr", 0, 0, G_OPTION_ARG_STRING, &opt_qr,
      N_("Show the long form as a QR code: auto (on a terminal, the default), always, never"),
      "WHEN" },
    { "no-qr", 0, 0, G_OPTION_ARG_NONE, &opt_no_qr, N_("The same as --qr=never"), NULL },
    { NULL },
  };
  g_autoptr(GOptionContext) context = g_option_context_new (_("— a short-lived token another device pairs with"));
  g_autoptr(GError) error = NULL;
  g_autoptr(GDBusObjectManager) manager = NULL;
  g_autofree gchar *token = NULL;
  g_autofree gchar *long_token = NULL;
  GVariantBuilder options;
  guint64 expires = 0;
  GList *folders;
  gboolean ok;
  int rc;

  if (!fs_cli_parse_options (context, entries, &argc, &argv))
    return FS_CLI_EXIT_USAGE;
  if (opt_path == NULL)
    return fs_cli_usage_error (_("--path is required"));
  if (opt_ttl <= 0)
    return fs_cli_usage_error (_("--ttl must be a positive number of seconds"));
  if (opt_qr != NULL && !g_strv_contains ((const gchar *const[]){ "auto", "always", "never", NULL },
                                          opt_qr))
    return fs_cli_usage_error (_("--qr must be auto, always or never"));
  if (opt_no_qr)
    {
      g_free (opt_qr);
      opt_qr = g_strdup ("never");
    }
  rc = open_folders (opt_path, &manager, &folders);
  if (rc != FS_CLI_EXIT_OK)
    return rc;
  g_variant_builder_init (&options, G_VARIANT_TYPE_VARDICT);
  if (opt_include_credentials)
    g_variant_builder_add (&options, "{sv}", "include-credentials", g_variant_new_boolean (TRUE));
  /* Argon2id and a round trip to the store: allow more than the default 25 s. */
  g_dbus_proxy_set_default_timeout (G_DBUS_PROXY (folders->data), 120 * 1000);
  ok = fs_dbus_folder_call_generate_token_full_sync (folders->data, (guint) opt_ttl,
                                                     g_variant_builder_end (&options), &token,
                                                     &long_token, &expires, NULL, &error);
  g_list_free_full (folders, g_object_unref);
  if (!ok)
    return remote_fail (error);
  {
    gint64 left = (gint64) expires - g_get_real_time () / G_USEC_PER_SEC;
    g_autofree gchar *valid = g_strdup_printf (_("(valid %lld min %lld s)"),
                                               (long long) (MAX (left, 0) / 60),
                                               (long long) (MAX (left, 0) % 60));
    /* "Token: " stays untranslated: scripts look for it. */
    g_print ("Token: %s %s\n", token, valid);
  }
  g_print ("%s foldersync pair --token %s --path DIR [--store DIR | --endpoint URL --bucket B]\n",
           _("On the other device:"), token);
  if (*long_token != '\0')
    print_long_token (long_token, opt_include_credentials, opt_qr != NULL ? opt_qr : "auto");
  explicit_bzero (token, strlen (token));
  explicit_bzero (long_token, strlen (long_token));
  return FS_CLI_EXIT_OK;
}

int
fs_cli_pair (int argc, char **argv)
{
  g_autofree gchar *opt_token = NULL, *opt_path = NULL;
  g_auto(StoreOptions) store_opts = { 0 };
  const GOptionEntry entries[] = {
    { "token", 't', 0, G_OPTION_ARG_STRING, &opt_token, N_("The token from the other device"), "TOKEN" },
    { "path", 'p', 0, G_OPTION_ARG_FILENAME, &opt_path, N_("Where the folder goes here (required)"),
      "DIR" },
    { NULL },
  };
  g_autoptr(GOptionContext) context = g_option_context_new (_("— join a folder another device shares"));
  g_autoptr(GError) error = NULL;
  g_autoptr(FsDBusManager) proxy = NULL;
  g_autofree gchar *path = NULL;
  g_autofree gchar *object_path = NULL;
  g_autofree gchar *secret = NULL;
  GVariantBuilder options;
  gboolean with_credentials = FALSE;
  gboolean ok;

  g_option_context_add_main_entries (context, entries, GETTEXT_PACKAGE);
  add_store_option_entries (context, &store_opts);
  if (!fs_cli_parse_options (context, NULL, &argc, &argv))
    return FS_CLI_EXIT_USAGE;
  if (opt_token == NULL || opt_path == NULL)
    return fs_cli_usage_error (_("--token and --path are required"));
  path = fs_cli_absolute_path (opt_path);

  /* A long form brings the store; without credentials of its own, this
   * device must give some (checked here, before the token is used up). */
  if (fs_long_token_is_long (opt_token))
    {
      g_autoptr(FsLongToken) long_token = fs_long_token_decode (opt_token, &error);
      if (long_token == NULL)
        return fs_cli_fail (error);
      with_credentials = !long_token->credentials;
      if (with_credentials
          && ((store_opts.access_key == NULL && g_getenv ("AWS_ACCESS_KEY_ID") == NULL)
              || (store_opts.secret_key_file == NULL && g_getenv ("AWS_SECRET_ACCESS_KEY") == NULL)))
        return fs_cli_usage_error (
          _("This token does not carry storage credentials: give --access-key and "
            "--secret-key-file (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"));
      if (store_opts.store != NULL || store_opts.endpoint != NULL || store_opts.bucket != NULL)
        return fs_cli_usage_error (
          _("A long-form token names its S3 store: --store, --endpoint and --bucket do not apply"));
    }

  g_variant_builder_init (&options, G_VARIANT_TYPE_VARDICT);
  if (!add_store_options (&options, &store_opts, with_credentials, &secret, &error))
    {
      g_variant_builder_clear (&options);
      return fs_cli_fail (error);
    }

  fs_dbus_error_register ();
  proxy = fs_dbus_manager_proxy_new_for_bus_sync (G_BUS_TYPE_SESSION, G_DBUS_PROXY_FLAGS_NONE,
                                                  BUS_NAME, MANAGER_PATH, NULL, &error);
  /* Argon2id and a round trip to the store: allow more than the default 25 s. */
  if (proxy != NULL)
    g_dbus_proxy_set_default_timeout (G_DBUS_PROXY (proxy), 120 * 1000);
  ok = proxy != NULL && fs_dbus_manager_call_pair_sync (proxy, opt_token, path,
                                                        g_variant_builder_end (&options),
                                                        &object_path, NULL, &error);
  explicit_bzero (opt_token, strlen (opt_token));
  if (secret != NULL)
    explicit_bzero (secret, strlen (secret));
  if (!ok)
    return remote_fail (error);
  g_print (_("Paired: syncing %s (%s)\n"), path, object_path);
  return FS_CLI_EXIT_OK;
}
