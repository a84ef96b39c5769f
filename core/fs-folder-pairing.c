/* Share-token pairing of a folder: envelope JSON and the pairing plugin. */
#include <json-glib/json-glib.h>

#include "fs-error.h"
#include "fs-folder-pairing.h"
#include "fs-json.h"
#include "fs-pairing.h"
#include "fs-plugin-loader.h"

#define ENVELOPE_FORMAT 1

static GBytes *
build_envelope (const FsFolderConfig *config, gboolean include_credentials)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();

  json_builder_begin_object (b);
  fs_json_add_int (b, "format", ENVELOPE_FORMAT);
  fs_json_add_string (b, "key", config->key_hex);
  fs_json_add_string (b, "endpoint", config->endpoint);
  fs_json_add_string (b, "bucket", config->bucket);
  fs_json_add_string (b, "region", config->region);
  fs_json_add_string (b, "prefix", config->prefix);
  fs_json_add_int (b, "batch_interval", config->batch_interval_ms);
  fs_json_add_int (b, "max_workers", config->max_workers);
  fs_json_add_int (b, "poll_interval", config->poll_interval_s);
  if (include_credentials)
    {
      fs_json_add_string (b, "access_key", config->access_key);
      fs_json_add_string (b, "secret_key", config->secret_key);
    }
  json_builder_end_object (b);
  return fs_json_builder_to_bytes (b);
}

/* The pairing area is at the root of the store (the bucket), whatever the
 * folder's prefix: the device that pairs knows only the store. */
static FsStorage *
open_storage (const FsFolderConfig *config, GError **error)
{
  g_autofree gchar *store_id = NULL;
  g_autofree gchar *prefix = NULL;
  return fs_folder_config_open_storage (config, &store_id, &prefix, error);
}

static FsPairing *
load_pairing (GError **error)
{
  return FS_PAIRING (fs_plugin_new_instance ("pairing-token", FS_TYPE_PAIRING, error));
}

gchar *
fs_folder_pairing_issue (const FsFolderConfig *config, guint ttl_seconds,
                         gboolean include_credentials, guint64 *expires, GError **error)
{
  g_autoptr(FsPairing) pairing = load_pairing (error);
  g_autoptr(FsStorage) storage = NULL;
  g_autoptr(GBytes) envelope = NULL;
  gchar *token;

  if (pairing == NULL)
    return NULL;
  storage = open_storage (config, error);
  if (storage == NULL)
    return NULL;
  envelope = build_envelope (config, include_credentials);
  token = fs_pairing_issue (pairing, storage, envelope,
                            ttl_seconds > 0 ? ttl_seconds : FS_PAIRING_DEFAULT_TTL, expires, NULL,
                            error);
  /* The envelope held the key: do not leave it in freed memory. */
  {
    gsize len = 0;
    gconstpointer data = g_bytes_get_data (envelope, &len);
    explicit_bzero ((gpointer) data, len);
  }
  return token;
}

gboolean
fs_folder_pairing_redeem (FsFolderConfig *config, const gchar *token, GError **error)
{
  g_autoptr(FsPairing) pairing = load_pairing (error);
  g_autoptr(FsStorage) storage = NULL;
  g_autoptr(GBytes) envelope = NULL;
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autofree gchar *key = NULL;
  JsonObject *o;
  gsize len = 0;
  const gchar *data;
  gboolean parsed;

  if (pairing == NULL)
    return FALSE;
  /* A typo is caught here, before any request. */
  if (!fs_pairing_check_token (pairing, token, NULL, error))
    return FALSE;
  storage = open_storage (config, error);
  if (storage == NULL)
    return FALSE;
  envelope = fs_pairing_redeem (pairing, storage, token, error);
  if (envelope == NULL)
    return FALSE;

  data = g_bytes_get_data (envelope, &len);
  parsed = json_parser_load_from_data (parser, data, (gssize) len, NULL) &&
           JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser));
  explicit_bzero ((gpointer) data, len);
  if (!parsed)
    {
      g_set_error_literal (error, FS_PAIRING_ERROR, FS_PAIRING_ERROR_FAILED,
                           "The pairing envelope is not valid");
      return FALSE;
    }
  o = json_node_get_object (json_parser_get_root (parser));
  key = fs_json_dup_string (o, "key");
  if (json_object_get_int_member_with_default (o, "format", 0) != ENVELOPE_FORMAT || key == NULL ||
      strlen (key) != 64)
    {
      g_set_error_literal (error, FS_PAIRING_ERROR, FS_PAIRING_ERROR_FAILED,
                           "The pairing envelope has an unknown format");
      return FALSE;
    }
  if (config->key_hex != NULL)
    explicit_bzero (config->key_hex, strlen (config->key_hex));
  g_free (config->key_hex);
  config->key_hex = g_steal_pointer (&key);
  g_free (config->prefix);
  config->prefix = fs_json_dup_string (o, "prefix");
  if (config->region == NULL)
    config->region = fs_json_dup_string (o, "region");
  if (config->endpoint != NULL && config->access_key == NULL)
    {
      config->access_key = fs_json_dup_string (o, "access_key");
      g_free (config->secret_key);
      config->secret_key = fs_json_dup_string (o, "secret_key");
    }
  config->batch_interval_ms = (guint) json_object_get_int_member_with_default (
    o, "batch_interval", config->batch_interval_ms);
  config->max_workers = (guint) json_object_get_int_member_with_default (o, "max_workers",
                                                                          config->max_workers);
  config->poll_interval_s = (guint) json_object_get_int_member_with_default (
    o, "poll_interval", config->poll_interval_s);
  return TRUE;
}

gboolean
fs_folder_pairing_cleanup (const FsFolderConfig *config, guint *n_removed, GError **error)
{
  g_autoptr(FsPairing) pairing = load_pairing (error);
  g_autoptr(FsStorage) storage = NULL;

  if (pairing == NULL)
    return FALSE;
  storage = open_storage (config, error);
  if (storage == NULL)
    return FALSE;
  return fs_pairing_cleanup (pairing, storage, n_removed, error);
}
