/* Share-token pairing of a folder: envelope JSON and the pairing plugin. */
#include "config.h"

#include <glib/gi18n-lib.h>
#include <json-glib/json-glib.h>

#include "fs-error.h"
#include "fs-folder-pairing.h"
#include "fs-json.h"
#include "fs-long-token.h"
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

/* The long form, if @storage can presign URLs (S3); else NULL. */
static gchar *
make_long_token (FsStorage *storage, const gchar *token, const gchar *object_key,
                 guint ttl_seconds, guint64 expires, gboolean include_credentials)
{
  g_autoptr(GError) error = NULL;
  FsLongToken long_token = {
    .token = (gchar *) token,
    .object_key = (gchar *) object_key,
    .expires = expires,
    .credentials = include_credentials,
  };
  gchar *text;

  long_token.get_url = fs_storage_presign (storage, "GET", object_key, ttl_seconds, &error);
  if (long_token.get_url != NULL)
    long_token.delete_url = fs_storage_presign (storage, "DELETE", object_key, ttl_seconds, &error);
  if (long_token.delete_url == NULL)
    {
      if (!g_error_matches (error, FS_STORAGE_ERROR, FS_STORAGE_ERROR_NOT_SUPPORTED))
        g_warning ("No long-form token: %s", error->message);
      g_free (long_token.get_url);
      return NULL;
    }
  text = fs_long_token_encode (&long_token);
  explicit_bzero (long_token.get_url, strlen (long_token.get_url));
  explicit_bzero (long_token.delete_url, strlen (long_token.delete_url));
  g_free (long_token.get_url);
  g_free (long_token.delete_url);
  return text;
}

gchar *
fs_folder_pairing_issue (const FsFolderConfig *config, guint ttl_seconds,
                         gboolean include_credentials, guint64 *expires, gchar **long_token,
                         GError **error)
{
  g_autoptr(FsPairing) pairing = load_pairing (error);
  g_autoptr(FsStorage) storage = NULL;
  g_autoptr(GBytes) envelope = NULL;
  g_autofree gchar *object_key = NULL;
  guint64 expiry = 0;
  gchar *token;

  if (pairing == NULL)
    return NULL;
  if (include_credentials && config->endpoint == NULL)
    {
      g_set_error_literal (error, FS_PAIRING_ERROR, FS_PAIRING_ERROR_INVALID,
                           _("Only a folder on S3 has storage credentials to include"));
      return NULL;
    }
  storage = open_storage (config, error);
  if (storage == NULL)
    return NULL;
  if (ttl_seconds == 0)
    ttl_seconds = FS_PAIRING_DEFAULT_TTL;
  envelope = build_envelope (config, include_credentials);
  token = fs_pairing_issue (pairing, storage, envelope, ttl_seconds, &expiry, &object_key, error);
  /* The envelope held the key: do not leave it in freed memory. */
  {
    gsize len = 0;
    gconstpointer data = g_bytes_get_data (envelope, &len);
    explicit_bzero ((gpointer) data, len);
  }
  if (token != NULL && long_token != NULL)
    *long_token = make_long_token (storage, token, object_key, ttl_seconds, expiry,
                                   include_credentials);
  if (expires != NULL)
    *expires = expiry;
  return token;
}

/* The envelope's storage for a long-form token: its presigned URLs, through
 * the storage-s3 plugin, no credentials. */
static FsStorage *
open_presigned_storage (const FsLongToken *long_token, const gchar *ca_file, GError **error)
{
  g_autoptr(FsStorage) storage = FS_STORAGE (fs_plugin_new_instance ("storage-s3",
                                                                     FS_TYPE_STORAGE, error));
  g_autoptr(GHashTable) settings = g_hash_table_new (g_str_hash, g_str_equal);

  if (storage == NULL)
    return NULL;
  g_hash_table_insert (settings, "presigned-key", long_token->object_key);
  g_hash_table_insert (settings, "presigned-get", long_token->get_url);
  g_hash_table_insert (settings, "presigned-delete", long_token->delete_url);
  if (ca_file != NULL)
    g_hash_table_insert (settings, "ca-file", (gpointer) ca_file);
  if (!fs_storage_configure (storage, settings, error))
    return NULL;
  return g_steal_pointer (&storage);
}

/* Fetches (and deletes) the envelope @token names: a short token on the
 * storage @config names, a long form through its presigned URLs. */
static GBytes *
fetch_envelope (FsPairing *pairing, const FsFolderConfig *config, const gchar *token,
                gboolean *from_long, GError **error)
{
  g_autoptr(FsLongToken) long_token = NULL;
  g_autoptr(FsStorage) storage = NULL;

  *from_long = fs_long_token_is_long (token);
  if (!*from_long)
    {
      /* A typo is caught here, before any request. */
      if (!fs_pairing_check_token (pairing, token, NULL, error))
        return NULL;
      storage = open_storage (config, error);
      return storage != NULL ? fs_pairing_redeem (pairing, storage, token, error) : NULL;
    }

  long_token = fs_long_token_decode (token, error);
  if (long_token == NULL || !fs_pairing_check_token (pairing, long_token->token, NULL, error))
    return NULL;
  if (!long_token->credentials && (config->access_key == NULL || config->secret_key == NULL))
    {
      g_set_error_literal (error, FS_PAIRING_ERROR, FS_PAIRING_ERROR_INVALID,
                           _("This token does not carry storage credentials: give this device's "
                             "own (access key and secret key)"));
      return NULL;
    }
  /* Its own clock first: an expired link would only be refused by the server. */
  if ((guint64) (g_get_real_time () / G_USEC_PER_SEC) > long_token->expires)
    {
      g_set_error_literal (error, FS_PAIRING_ERROR, FS_PAIRING_ERROR_EXPIRED,
                           _("The pairing token has expired"));
      return NULL;
    }
  storage = open_presigned_storage (long_token, config->ca_file, error);
  return storage != NULL ? fs_pairing_redeem (pairing, storage, long_token->token, error) : NULL;
}

gboolean
fs_folder_pairing_redeem (FsFolderConfig *config, const gchar *token, GError **error)
{
  g_autoptr(FsPairing) pairing = load_pairing (error);
  g_autoptr(GBytes) envelope = NULL;
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autofree gchar *key = NULL;
  gboolean from_long = FALSE;
  JsonObject *o;
  gsize len = 0;
  const gchar *data;
  gboolean parsed;

  if (pairing == NULL)
    return FALSE;
  envelope = fetch_envelope (pairing, config, token, &from_long, error);
  if (envelope == NULL)
    return FALSE;

  data = g_bytes_get_data (envelope, &len);
  parsed = json_parser_load_from_data (parser, data, (gssize) len, NULL) &&
           JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser));
  explicit_bzero ((gpointer) data, len);
  if (!parsed)
    {
      g_set_error_literal (error, FS_PAIRING_ERROR, FS_PAIRING_ERROR_FAILED,
                           _("The pairing envelope is not valid"));
      return FALSE;
    }
  o = json_node_get_object (json_parser_get_root (parser));
  key = fs_json_dup_string (o, "key");
  if (json_object_get_int_member_with_default (o, "format", 0) != ENVELOPE_FORMAT || key == NULL ||
      strlen (key) != 64)
    {
      g_set_error_literal (error, FS_PAIRING_ERROR, FS_PAIRING_ERROR_FAILED,
                           _("The pairing envelope has an unknown format"));
      return FALSE;
    }
  if (config->key_hex != NULL)
    explicit_bzero (config->key_hex, strlen (config->key_hex));
  g_free (config->key_hex);
  config->key_hex = g_steal_pointer (&key);
  g_free (config->prefix);
  config->prefix = fs_json_dup_string (o, "prefix");
  /* A long form is for a device with no storage configured: the folder's
   * storage comes from the envelope (the daemon refuses one given with it). */
  if (from_long)
    {
      config->endpoint = fs_json_dup_string (o, "endpoint");
      g_free (config->bucket);
      config->bucket = fs_json_dup_string (o, "bucket");
      g_clear_pointer (&config->store_dir, g_free);
    }
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
