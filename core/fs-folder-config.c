/* Persistent per-folder settings of foldersyncd: JSON plus 0600 secret files
 * under $XDG_CONFIG_HOME/foldersync/. */
#include "config.h"

#include "fs-folder-config.h"
#include "fs-json.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <glib/gi18n-lib.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "fs-dbus-error.h"
#include "fs-error.h"
#include "fs-keyfile.h"
#include "fs-store-config.h"
#include "fs-types.h"

FsFolderConfig *
fs_folder_config_new (void)
{
  FsFolderConfig *config = g_new0 (FsFolderConfig, 1);

  config->batch_interval_ms = FS_FOLDER_DEFAULT_BATCH_INTERVAL_MS;
  config->max_workers = FS_FOLDER_DEFAULT_MAX_WORKERS;
  config->poll_interval_s = FS_FOLDER_DEFAULT_POLL_INTERVAL_S;
  config->running = TRUE;
  return config;
}

FsFolderConfig *
fs_folder_config_copy (const FsFolderConfig *config)
{
  FsFolderConfig *copy = g_new0 (FsFolderConfig, 1);

  *copy = *config;
  copy->id = g_strdup (config->id);
  copy->local_path = g_strdup (config->local_path);
  copy->store_dir = g_strdup (config->store_dir);
  copy->endpoint = g_strdup (config->endpoint);
  copy->bucket = g_strdup (config->bucket);
  copy->region = g_strdup (config->region);
  copy->prefix = g_strdup (config->prefix);
  copy->access_key = g_strdup (config->access_key);
  copy->ca_file = g_strdup (config->ca_file);
  copy->device_name = g_strdup (config->device_name);
  copy->key_hex = g_strdup (config->key_hex);
  copy->secret_key = g_strdup (config->secret_key);
  return copy;
}

static void
free_secret (gchar *secret)
{
  if (secret != NULL)
    {
      memset (secret, 0, strlen (secret));
      g_free (secret);
    }
}

void
fs_folder_config_free (FsFolderConfig *config)
{
  if (config == NULL)
    return;
  g_free (config->id);
  g_free (config->local_path);
  g_free (config->store_dir);
  g_free (config->endpoint);
  g_free (config->bucket);
  g_free (config->region);
  g_free (config->prefix);
  g_free (config->access_key);
  g_free (config->ca_file);
  g_free (config->device_name);
  free_secret (config->key_hex);
  free_secret (config->secret_key);
  g_free (config);
}

gchar *
fs_folder_config_new_id (void)
{
  guint8 bytes[8];

  for (gsize i = 0; i < sizeof bytes; i++)
    bytes[i] = (guint8)g_random_int_range (0, 256);
  return fs_hex_encode (bytes, sizeof bytes);
}

gchar *
fs_folder_config_get_base_dir (void)
{
  return g_build_filename (g_get_user_config_dir (), "foldersync", NULL);
}

static gchar *
config_path (const gchar *id, const gchar *subdir, const gchar *suffix)
{
  g_autofree gchar *base = fs_folder_config_get_base_dir ();
  g_autofree gchar *name = g_strconcat (id, suffix, NULL);
  return g_build_filename (base, subdir, name, NULL);
}

static gboolean
id_is_valid (const gchar *id)
{
  if (id == NULL || strlen (id) != 16)
    return FALSE;
  for (const gchar *p = id; *p != '\0'; p++)
    if (!g_ascii_isxdigit (*p) || g_ascii_isupper (*p))
      return FALSE;
  return TRUE;
}

/* ---- a{sv} from AddFolder ---------------------------------------------- */

typedef enum
{
  OPT_STRING,
  OPT_UINT
} OptType;

static gboolean G_GNUC_PRINTF (2, 3) invalid (GError **error, const gchar *format, ...)
{
  va_list args;
  g_autofree gchar *message = NULL;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  g_set_error_literal (error, FS_DAEMON_ERROR, FS_DAEMON_ERROR_INVALID_ARGUMENT, message);
  return FALSE;
}

FsFolderConfig *
fs_folder_config_new_from_variant (GVariant *asv, gboolean endpoint_later, GError **error)
{
  g_autoptr (FsFolderConfig) config = fs_folder_config_new ();
  g_autofree gchar *key_file = NULL;
  g_autofree gchar *store = NULL;
  const struct
  {
    const gchar *name;
    OptType type;
    gpointer dest;
  } options[] = {
    { "local-path", OPT_STRING, &config->local_path },
    { "store", OPT_STRING, &store },
    { "endpoint", OPT_STRING, &config->endpoint },
    { "bucket", OPT_STRING, &config->bucket },
    { "region", OPT_STRING, &config->region },
    { "access-key", OPT_STRING, &config->access_key },
    { "secret-key", OPT_STRING, &config->secret_key },
    { "ca-file", OPT_STRING, &config->ca_file },
    { "prefix", OPT_STRING, &config->prefix },
    { "key-file", OPT_STRING, &key_file },
    { "batch-interval", OPT_UINT, &config->batch_interval_ms },
    { "max-workers", OPT_UINT, &config->max_workers },
    { "poll-interval", OPT_UINT, &config->poll_interval_s },
    { "device-name", OPT_STRING, &config->device_name },
  };
  GVariantIter iter;
  const gchar *name;
  GVariant *value_raw;

  g_return_val_if_fail (g_variant_is_of_type (asv, G_VARIANT_TYPE_VARDICT), NULL);

  g_variant_iter_init (&iter, asv);
  while (g_variant_iter_next (&iter, "{&sv}", &name, &value_raw))
    {
      g_autoptr (GVariant) value = value_raw;
      gsize i;

      for (i = 0; i < G_N_ELEMENTS (options); i++)
        if (g_str_equal (name, options[i].name))
          break;
      if (i == G_N_ELEMENTS (options))
        {
          invalid (error, _("Unknown folder setting ‘%s’"), name);
          return NULL;
        }
      if (options[i].type == OPT_STRING)
        {
          gchar **dest = options[i].dest;
          if (!g_variant_is_of_type (value, G_VARIANT_TYPE_STRING))
            {
              invalid (error, _("Folder setting ‘%s’ must be a string (s)"), name);
              return NULL;
            }
          if (*dest != NULL)
            {
              invalid (error, _("Folder setting ‘%s’ given twice"), name);
              return NULL;
            }
          *dest = g_variant_dup_string (value, NULL);
        }
      else
        {
          if (!g_variant_is_of_type (value, G_VARIANT_TYPE_UINT32))
            {
              invalid (error, _("Folder setting ‘%s’ must be an unsigned integer (u)"), name);
              return NULL;
            }
          *(guint *)options[i].dest = g_variant_get_uint32 (value);
        }
    }

  if (config->local_path == NULL || config->local_path[0] == '\0')
    {
      invalid (error, _("Folder setting ‘%s’ is required"), "local-path");
      return NULL;
    }
  if (config->endpoint != NULL && store != NULL)
    {
      invalid (error, _("Folder settings ‘%s’ and ‘endpoint’ exclude each other"), "store");
      return NULL;
    }
  if (config->endpoint != NULL && (config->bucket == NULL || config->bucket[0] == '\0'))
    {
      invalid (error, _("Folder setting ‘%s’ is required with ‘endpoint’"), "bucket");
      return NULL;
    }
  if (config->endpoint == NULL && !(endpoint_later && store == NULL)
      && (config->region != NULL || config->access_key != NULL || config->secret_key != NULL
          || config->ca_file != NULL))
    {
      invalid (error,
               _("Folder settings ‘region’, ‘access-key’, ‘secret-key’ and ‘ca-file’ "
                 "need ‘%s’"),
               "endpoint");
      return NULL;
    }
  if (store != NULL)
    {
      if (!g_path_is_absolute (store))
        {
          invalid (error, _("Folder setting ‘%s’ must be an absolute path"), "store");
          return NULL;
        }
      config->store_dir = g_canonicalize_filename (store, NULL);
    }
  if (config->batch_interval_ms < 10 || config->batch_interval_ms > 3600 * 1000)
    {
      invalid (error, _("Folder setting ‘%s’ must be 10 to 3600000 ms"), "batch-interval");
      return NULL;
    }
  if (config->max_workers < 1 || config->max_workers > 64)
    {
      invalid (error, _("Folder setting ‘%s’ must be 1 to 64"), "max-workers");
      return NULL;
    }
  if (config->poll_interval_s < 1 || config->poll_interval_s > 86400)
    {
      invalid (error, _("Folder setting ‘%s’ must be 1 to 86400 s"), "poll-interval");
      return NULL;
    }
  if (config->device_name != NULL && !fs_device_name_valid (config->device_name))
    {
      invalid (error, _("Folder setting ‘%s’ must be 1 to 64 characters without ‘/’, parentheses "
                        "or control characters"), "device-name");
      return NULL;
    }

  if (config->endpoint != NULL)
    {
      if (config->access_key == NULL && g_getenv ("AWS_ACCESS_KEY_ID") != NULL)
        config->access_key = g_strdup (g_getenv ("AWS_ACCESS_KEY_ID"));
      if (config->secret_key == NULL && g_getenv ("AWS_SECRET_ACCESS_KEY") != NULL)
        config->secret_key = g_strdup (g_getenv ("AWS_SECRET_ACCESS_KEY"));
    }

  if (key_file != NULL)
    {
      g_autoptr (GBytes) key = fs_keyfile_load (key_file, error);
      gsize len;
      const guint8 *data;
      if (key == NULL)
        return NULL;
      data = g_bytes_get_data (key, &len);
      config->key_hex = fs_hex_encode (data, len);
    }
  else
    config->key_hex = fs_keyfile_generate_hex ();
  return g_steal_pointer (&config);
}

/* ---- JSON and secret files --------------------------------------------- */

static gboolean
write_private (const gchar *path, const gchar *contents, GError **error)
{
  g_autofree gchar *dir = g_path_get_dirname (path);
  g_autoptr (GError) local_error = NULL;

  if (g_mkdir_with_parents (dir, 0700) != 0)
    {
      int saved = errno;
      g_set_error (error, FS_DAEMON_ERROR, FS_DAEMON_ERROR_FAILED,
                   _("Cannot create the configuration directory ‘%s’: %s"), dir, g_strerror (saved));
      return FALSE;
    }
  if (!g_file_set_contents_full (path, contents, -1,
                                 G_FILE_SET_CONTENTS_CONSISTENT | G_FILE_SET_CONTENTS_DURABLE, 0600,
                                 &local_error))
    {
      g_set_error (error, FS_DAEMON_ERROR, FS_DAEMON_ERROR_FAILED, _("Cannot write ‘%s’: %s"), path,
                   local_error->message);
      return FALSE;
    }
  return TRUE;
}


gboolean
fs_folder_config_save (const FsFolderConfig *config, GError **error)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  g_autoptr (JsonNode) root = NULL;
  g_autofree gchar *text = NULL;
  g_autofree gchar *json_path = NULL;

  g_return_val_if_fail (id_is_valid (config->id), FALSE);
  g_return_val_if_fail (config->key_hex != NULL, FALSE);

  /* Secrets first: a JSON file whose secrets are missing would be a broken
   * folder after a crash; an orphaned secret file is harmless. */
  {
    g_autofree gchar *key_path = config_path (config->id, "secrets", ".key");
    g_autofree gchar *line = g_strconcat (config->key_hex, "\n", NULL);
    gboolean ok = write_private (key_path, line, error);
    memset (line, 0, strlen (line));
    if (!ok)
      return FALSE;
  }
  if (config->secret_key != NULL)
    {
      g_autofree gchar *secret_path = config_path (config->id, "secrets", ".s3-secret");
      g_autofree gchar *line = g_strconcat (config->secret_key, "\n", NULL);
      gboolean ok = write_private (secret_path, line, error);
      memset (line, 0, strlen (line));
      if (!ok)
        return FALSE;
    }

  json_builder_begin_object (b);
  fs_json_add_string (b, "id", config->id);
  fs_json_add_string (b, "local_path", config->local_path);
  fs_json_add_string (b, "store_dir", config->store_dir);
  fs_json_add_string (b, "endpoint", config->endpoint);
  fs_json_add_string (b, "bucket", config->bucket);
  fs_json_add_string (b, "region", config->region);
  fs_json_add_string (b, "prefix", config->prefix);
  fs_json_add_string (b, "access_key", config->access_key);
  fs_json_add_string (b, "ca_file", config->ca_file);
  fs_json_add_int (b, "batch_interval", config->batch_interval_ms);
  fs_json_add_int (b, "max_workers", config->max_workers);
  fs_json_add_int (b, "poll_interval", config->poll_interval_s);
  fs_json_add_string (b, "device_name", config->device_name);
  json_builder_set_member_name (b, "running");
  json_builder_add_boolean_value (b, config->running);
  json_builder_end_object (b);

  root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  json_generator_set_pretty (gen, TRUE);
  text = json_generator_to_data (gen, NULL);
  json_path = config_path (config->id, "folders", ".json");
  return write_private (json_path, text, error);
}

static gchar *
get_string (JsonObject *o, const gchar *name)
{
  JsonNode *node = json_object_get_member (o, name);
  if (node == NULL || JSON_NODE_TYPE (node) != JSON_NODE_VALUE
      || json_node_get_value_type (node) != G_TYPE_STRING)
    return NULL;
  return g_strdup (json_node_get_string (node));
}

static guint
get_uint (JsonObject *o, const gchar *name, guint fallback)
{
  JsonNode *node = json_object_get_member (o, name);
  gint64 value;
  if (node == NULL || JSON_NODE_TYPE (node) != JSON_NODE_VALUE
      || json_node_get_value_type (node) != G_TYPE_INT64)
    return fallback;
  value = json_node_get_int (node);
  return value > 0 && value <= G_MAXUINT ? (guint)value : fallback;
}

static gchar *
read_secret (const gchar *path, gboolean required, GError **error)
{
  if (!required && !g_file_test (path, G_FILE_TEST_EXISTS))
    return NULL;
  /* Checks the mode (0600) and reads the first line. */
  return fs_store_config_read_secret (path, error);
}

FsFolderConfig *
fs_folder_config_load (const gchar *id, GError **error)
{
  g_autoptr (FsFolderConfig) config = fs_folder_config_new ();
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) local_error = NULL;
  g_autofree gchar *json_path = NULL;
  g_autofree gchar *key_path = NULL;
  g_autofree gchar *secret_path = NULL;
  JsonNode *root;
  JsonObject *o;

  if (!id_is_valid (id))
    {
      g_set_error (error, FS_DAEMON_ERROR, FS_DAEMON_ERROR_INVALID_ARGUMENT,
                   _("‘%s’ is not a folder id"), id);
      return NULL;
    }
  json_path = config_path (id, "folders", ".json");
  if (!json_parser_load_from_file (parser, json_path, &local_error))
    {
      g_set_error (error, FS_DAEMON_ERROR, FS_DAEMON_ERROR_FAILED, _("Cannot read ‘%s’: %s"),
                   json_path, local_error->message);
      return NULL;
    }
  root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    {
      g_set_error (error, FS_DAEMON_ERROR, FS_DAEMON_ERROR_FAILED, _("‘%s’ is not a JSON object"),
                   json_path);
      return NULL;
    }
  o = json_node_get_object (root);
  config->id = g_strdup (id);
  config->local_path = get_string (o, "local_path");
  config->store_dir = get_string (o, "store_dir");
  config->endpoint = get_string (o, "endpoint");
  config->bucket = get_string (o, "bucket");
  config->region = get_string (o, "region");
  config->prefix = get_string (o, "prefix");
  config->access_key = get_string (o, "access_key");
  config->ca_file = get_string (o, "ca_file");
  config->device_name = get_string (o, "device_name");
  config->batch_interval_ms = get_uint (o, "batch_interval", FS_FOLDER_DEFAULT_BATCH_INTERVAL_MS);
  config->max_workers = get_uint (o, "max_workers", FS_FOLDER_DEFAULT_MAX_WORKERS);
  config->poll_interval_s = get_uint (o, "poll_interval", FS_FOLDER_DEFAULT_POLL_INTERVAL_S);
  config->running = json_object_get_boolean_member_with_default (o, "running", TRUE);
  if (config->local_path == NULL || !g_path_is_absolute (config->local_path))
    {
      g_set_error (error, FS_DAEMON_ERROR, FS_DAEMON_ERROR_FAILED,
                   _("‘%s’ has no absolute local_path"), json_path);
      return NULL;
    }

  key_path = config_path (id, "secrets", ".key");
  config->key_hex = read_secret (key_path, TRUE, error);
  if (config->key_hex == NULL)
    return NULL;
  secret_path = config_path (id, "secrets", ".s3-secret");
  config->secret_key = read_secret (secret_path, FALSE, &local_error);
  if (local_error != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&local_error));
      return NULL;
    }
  return g_steal_pointer (&config);
}

static gint
compare_strings (gconstpointer a, gconstpointer b)
{
  return g_strcmp0 (*(const gchar *const *)a, *(const gchar *const *)b);
}

GPtrArray *
fs_folder_config_load_all (void)
{
  g_autoptr (GPtrArray) configs
    = g_ptr_array_new_with_free_func ((GDestroyNotify)fs_folder_config_free);
  g_autofree gchar *base = fs_folder_config_get_base_dir ();
  g_autofree gchar *dir_path = g_build_filename (base, "folders", NULL);
  g_autoptr (GDir) dir = g_dir_open (dir_path, 0, NULL);
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  const gchar *name;

  if (dir == NULL)
    return g_steal_pointer (&configs);
  while ((name = g_dir_read_name (dir)) != NULL)
    if (g_str_has_suffix (name, ".json"))
      g_ptr_array_add (names, g_strndup (name, strlen (name) - strlen (".json")));
  g_ptr_array_sort (names, compare_strings);

  for (guint i = 0; i < names->len; i++)
    {
      g_autoptr (GError) error = NULL;
      FsFolderConfig *config = fs_folder_config_load (g_ptr_array_index (names, i), &error);
      if (config == NULL)
        {
          g_warning ("Skipping folder %s: %s", (const gchar *)g_ptr_array_index (names, i),
                     error->message);
          continue;
        }
      g_ptr_array_add (configs, config);
    }
  return g_steal_pointer (&configs);
}

static gboolean
remove_if_exists (const gchar *path, GError **error)
{
  if (g_unlink (path) != 0 && errno != ENOENT)
    {
      int saved = errno;
      g_set_error (error, FS_DAEMON_ERROR, FS_DAEMON_ERROR_FAILED, _("Cannot remove ‘%s’: %s"), path,
                   g_strerror (saved));
      return FALSE;
    }
  return TRUE;
}

gboolean
fs_folder_config_delete (const gchar *id, GError **error)
{
  g_autofree gchar *json_path = NULL;
  g_autofree gchar *key_path = NULL;
  g_autofree gchar *secret_path = NULL;

  g_return_val_if_fail (id_is_valid (id), FALSE);

  json_path = config_path (id, "folders", ".json");
  key_path = config_path (id, "secrets", ".key");
  secret_path = config_path (id, "secrets", ".s3-secret");
  /* The key may be the only copy there is: without it the store can never be
   * read again. It is kept under secrets/removed/, never deleted. */
  if (g_file_test (key_path, G_FILE_TEST_EXISTS))
    {
      g_autofree gchar *base_dir = fs_folder_config_get_base_dir ();
      g_autofree gchar *removed_dir = g_build_filename (base_dir, "secrets", "removed", NULL);
      g_autofree gchar *kept = NULL;
      g_autofree gchar *name = g_strconcat (id, ".key", NULL);

      if (g_mkdir_with_parents (removed_dir, 0700) != 0)
        {
          g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errno),
                       _("Cannot keep the key of folder %s: %s"), id, g_strerror (errno));
          return FALSE;
        }
      kept = g_build_filename (removed_dir, name, NULL);
      if (rename (key_path, kept) != 0)
        {
          g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errno),
                       _("Cannot keep the key of folder %s: %s"), id, g_strerror (errno));
          return FALSE;
        }
      g_message ("The key of removed folder %s is kept in %s", id, kept);
    }
  return remove_if_exists (json_path, error) && remove_if_exists (secret_path, error);
}

/* ---- opening the store --------------------------------------------------- */

FsStorage *
fs_folder_config_open_storage (const FsFolderConfig *config, gchar **store_id, gchar **prefix,
                               GError **error)
{
  g_auto (FsStoreConfig) store = { 0 };
  FsStorage *storage;

  store.max_workers = config->max_workers;
  if (config->endpoint != NULL)
    {
      store.endpoint = g_strdup (config->endpoint);
      store.bucket = g_strdup (config->bucket);
      store.region = g_strdup (config->region);
      store.access_key = g_strdup (config->access_key);
      store.secret_key = g_strdup (config->secret_key);
      store.ca_file = g_strdup (config->ca_file);
    }
  else
    store.store_dir = g_strdup (config->store_dir);

  storage = fs_store_config_open (&store, store_id, error);
  if (storage == NULL)
    return NULL;
  /* As in the CLI: in a local store a bucket is just the first level of the
   * prefix. */
  if (config->endpoint == NULL && config->bucket != NULL)
    *prefix = config->prefix != NULL ? g_strdup_printf ("%s/%s", config->bucket, config->prefix)
                                     : g_strdup (config->bucket);
  else
    *prefix = g_strdup (config->prefix);
  return storage;
}

GBytes *
fs_folder_config_get_key (const FsFolderConfig *config, GError **error)
{
  guint8 key[32];
  const gchar *hex = config->key_hex;

  if (hex == NULL || strlen (hex) != 64)
    {
      g_set_error (error, FS_ENGINE_ERROR, FS_ENGINE_ERROR_KEY_FILE,
                   _("The stored key of folder %s is not 64 hex characters"), config->id);
      return NULL;
    }
  for (gsize i = 0; i < sizeof key; i++)
    {
      gint hi = g_ascii_xdigit_value (hex[2 * i]);
      gint lo = g_ascii_xdigit_value (hex[2 * i + 1]);
      if (hi < 0 || lo < 0)
        {
          memset (key, 0, sizeof key);
          g_set_error (error, FS_ENGINE_ERROR, FS_ENGINE_ERROR_KEY_FILE,
                       _("The stored key of folder %s is not 64 hex characters"), config->id);
          return NULL;
        }
      key[i] = (guint8)(hi << 4 | lo);
    }
  {
    GBytes *bytes = g_bytes_new (key, sizeof key);
    memset (key, 0, sizeof key);
    return bytes;
  }
}

gchar *
fs_folder_config_describe_store (const FsFolderConfig *config)
{
  g_autofree gchar *dir = NULL;

  if (config->endpoint != NULL)
    return g_strdup (config->endpoint);
  if (config->store_dir != NULL)
    return g_strconcat ("local:", config->store_dir, NULL);
  dir = g_build_filename (g_get_user_data_dir (), "foldersync", "store", NULL);
  return g_strconcat ("local:", dir, NULL);
}
