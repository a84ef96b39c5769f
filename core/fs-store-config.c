/* Opening the storage backend a folder is configured with. */
#include "config.h"

#include <glib/gi18n-lib.h>
#include <errno.h>
#include <gcrypt.h>
#include <glib/gstdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "fs-error.h"
#include "fs-gcrypt.h"
#include "fs-plugin-loader.h"
#include "fs-store-config.h"
#include "fs-types.h"

void
fs_store_config_clear (FsStoreConfig *config)
{
  g_clear_pointer (&config->endpoint, g_free);
  g_clear_pointer (&config->bucket, g_free);
  g_clear_pointer (&config->region, g_free);
  g_clear_pointer (&config->access_key, g_free);
  if (config->secret_key != NULL)
    explicit_bzero (config->secret_key, strlen (config->secret_key));
  g_clear_pointer (&config->secret_key, g_free);
  g_clear_pointer (&config->ca_file, g_free);
  g_clear_pointer (&config->store_dir, g_free);
}

gchar *
fs_store_config_read_secret (const gchar *filename, GError **error)
{
  g_autofree gchar *contents = NULL;
  gsize len = 0;
  struct stat st;
  gchar *newline;
  gchar *secret;

  if (g_stat (filename, &st) != 0 || !g_file_get_contents (filename, &contents, &len, NULL))
    {
      g_set_error (error, FS_ENGINE_ERROR, FS_ENGINE_ERROR_KEY_FILE,
                   _("Cannot read the secret key file ‘%s’"), filename);
      return NULL;
    }
  if ((st.st_mode & 077) != 0)
    {
      explicit_bzero (contents, len);
      g_set_error (error, FS_ENGINE_ERROR, FS_ENGINE_ERROR_KEY_FILE,
                   _("Secret key file ‘%s’ is readable by others (mode %04o); run: chmod 600 '%s'"),
                   filename, (guint) (st.st_mode & 07777), filename);
      return NULL;
    }
  newline = strpbrk (contents, "\r\n");
  if (newline != NULL)
    *newline = '\0';
  secret = g_strdup (contents);
  explicit_bzero (contents, len);
  if (*secret == '\0')
    {
      g_free (secret);
      g_set_error (error, FS_ENGINE_ERROR, FS_ENGINE_ERROR_KEY_FILE,
                   _("Secret key file ‘%s’ is empty"), filename);
      return NULL;
    }
  return secret;
}

static gchar *
sha256_short (const gchar *text)
{
  guint8 digest[32];
  fs_gcrypt_init ();
  gcry_md_hash_buffer (GCRY_MD_SHA256, digest, text, strlen (text));
  return fs_hex_encode (digest, 8);
}

FsStorage *
fs_store_config_open (const FsStoreConfig *config, gchar **store_id, GError **error)
{
  g_autoptr(GHashTable) settings = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, g_free);
  g_autoptr(GObject) storage = NULL;
  g_autofree gchar *id = NULL;

  if (config->endpoint != NULL)
    {
      g_autofree gchar *state_dir = g_build_filename (g_get_user_data_dir (), "foldersync",
                                                      "s3-uploads", NULL);
      g_autofree gchar *hash = NULL;

      if (config->bucket == NULL || *config->bucket == '\0')
        {
          g_set_error_literal (error, FS_ENGINE_ERROR, FS_ENGINE_ERROR_INVALID_ARGUMENT,
                               _("An S3 endpoint needs a bucket (--bucket)"));
          return NULL;
        }
      if (config->access_key == NULL || config->secret_key == NULL)
        {
          g_set_error_literal (error, FS_ENGINE_ERROR, FS_ENGINE_ERROR_INVALID_ARGUMENT,
                               _("S3 credentials are missing: set AWS_ACCESS_KEY_ID and "
                                 "AWS_SECRET_ACCESS_KEY, or use --access-key and --secret-key-file"));
          return NULL;
        }
      id = g_strdup_printf ("s3:%s/%s", config->endpoint, config->bucket);
      hash = sha256_short (id);
      g_mkdir_with_parents (state_dir, 0700);
      g_hash_table_insert (settings, "endpoint", g_strdup (config->endpoint));
      g_hash_table_insert (settings, "bucket", g_strdup (config->bucket));
      g_hash_table_insert (settings, "region",
                           g_strdup (config->region != NULL ? config->region : "us-east-1"));
      g_hash_table_insert (settings, "access-key", g_strdup (config->access_key));
      g_hash_table_insert (settings, "secret-key", g_strdup (config->secret_key));
      g_hash_table_insert (settings, "state-file",
                           g_strdup_printf ("%s/%s.ini", state_dir, hash));
      if (config->ca_file != NULL)
        g_hash_table_insert (settings, "ca-file", g_strdup (config->ca_file));
      if (config->max_workers > 0)
        g_hash_table_insert (settings, "max-workers", g_strdup_printf ("%u", config->max_workers));
      storage = fs_plugin_new_instance ("storage-s3", FS_TYPE_STORAGE, error);
    }
  else
    {
      g_autofree gchar *dir = NULL;
      g_autofree gchar *resolved = NULL;

      if (config->store_dir != NULL)
        dir = g_strdup (config->store_dir);
      else
        {
          /* The embedded default store is ours to create. */
          dir = g_build_filename (g_get_user_data_dir (), "foldersync", "store", NULL);
          if (g_mkdir_with_parents (dir, 0700) != 0)
            {
              g_set_error (error, FS_STORAGE_ERROR, FS_STORAGE_ERROR_FAILED,
                           _("Cannot create the default store ‘%s’: %s"), dir, g_strerror (errno));
              return NULL;
            }
        }
      /* One store, one identity: another spelling of the same directory
       * must find the same index. */
      resolved = realpath (dir, NULL);
      id = g_strconcat ("local:", resolved != NULL ? resolved : dir, NULL);
      g_hash_table_insert (settings, "root", g_strdup (resolved != NULL ? resolved : dir));
      storage = fs_plugin_new_instance ("storage-local", FS_TYPE_STORAGE, error);
    }
  if (storage == NULL || !fs_storage_configure (FS_STORAGE (storage), settings, error))
    return NULL;
  if (store_id != NULL)
    *store_id = g_steal_pointer (&id);
  return FS_STORAGE (g_steal_pointer (&storage));
}
