/* FsFolderConfig: the persistent settings of one folder synced by
 * foldersyncd. Settings live as JSON in
 * $XDG_CONFIG_HOME/foldersync/folders/<id>.json, secrets in 0600 files
 * $XDG_CONFIG_HOME/foldersync/secrets/<id>.key (the folder key, 64 hex) and
 * <id>.s3-secret (the S3 secret key). Secrets are never in the JSON, never in
 * a message and never logged. */
#pragma once

#include <gio/gio.h>

#include "fs-storage.h"

G_BEGIN_DECLS

#define FS_FOLDER_DEFAULT_BATCH_INTERVAL_MS 500
#define FS_FOLDER_DEFAULT_MAX_WORKERS 4
#define FS_FOLDER_DEFAULT_POLL_INTERVAL_S 30

typedef struct
{
  gchar *id;         /* 16 lowercase hex characters */
  gchar *local_path; /* absolute, canonical */
  /* The store: S3 when endpoint is set, else the local store store_dir
   * (NULL: the embedded default $XDG_DATA_HOME/foldersync/store). */
  gchar *store_dir;
  gchar *endpoint;
  gchar *bucket; /* in a local store: the first level of the prefix */
  gchar *region;
  gchar *prefix;
  gchar *access_key;
  gchar *ca_file;
  guint batch_interval_ms;
  guint max_workers;
  guint poll_interval_s;
  gchar *device_name;
  gboolean running; /* Start()ed, not Stop()ped */
  /* secrets, stored apart from the JSON */
  gchar *key_hex;    /* 64 lowercase hex characters */
  gchar *secret_key; /* S3 secret key, or NULL */
} FsFolderConfig;

FsFolderConfig *fs_folder_config_new (void);
FsFolderConfig *fs_folder_config_copy (const FsFolderConfig *config);
void fs_folder_config_free (FsFolderConfig *config);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (FsFolderConfig, fs_folder_config_free)

/* A fresh random folder id. */
gchar *fs_folder_config_new_id (void);

/* $XDG_CONFIG_HOME/foldersync */
gchar *fs_folder_config_get_base_dir (void);

/* Parses the a{sv} of Manager.AddFolder (keys in data/org.toolbox.FolderSync.xml).
 * Unknown keys, wrong value types and out-of-range values are
 * FS_DAEMON_ERROR_INVALID_ARGUMENT; an unreadable "key-file" is
 * FS_ENGINE_ERROR_KEY_FILE. Without "key-file" a new key is generated. The
 * result has no id yet and local_path as given (not checked).
 * @endpoint_later: S3 settings (credentials, ca-file, region) are accepted
 * without "endpoint", which comes later (from a long-form token's envelope). */
FsFolderConfig *fs_folder_config_new_from_variant (GVariant *asv, gboolean endpoint_later,
                                                   GError **error);

/* Writes the secrets, then the JSON, each atomically with mode 0600. */
gboolean fs_folder_config_save (const FsFolderConfig *config, GError **error);

/* Loads folder @id (JSON and secrets). */
FsFolderConfig *fs_folder_config_load (const gchar *id, GError **error);

/* Loads every folder; broken ones are skipped with a warning. */
GPtrArray *fs_folder_config_load_all (void);

/* Deletes the JSON, then the secrets. Missing files are fine. */
gboolean fs_folder_config_delete (const gchar *id, GError **error);

/* Opens the folder's storage; @store_id and @prefix are what FsEngineConfig
 * wants (a local store's bucket becomes the first level of the prefix). */
FsStorage *fs_folder_config_open_storage (const FsFolderConfig *config, gchar **store_id,
                                          gchar **prefix, GError **error);

/* The folder key (32 bytes). */
GBytes *fs_folder_config_get_key (const FsFolderConfig *config, GError **error);

/* "local:<dir>" or the S3 endpoint URL, for the Store property. */
gchar *fs_folder_config_describe_store (const FsFolderConfig *config);

G_END_DECLS
