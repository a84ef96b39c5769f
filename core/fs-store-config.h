/* Where a folder's data lives: a local store directory, or an S3 bucket.
 * Shared by the CLI and (later) the daemon so both open stores alike. */
#pragma once

#include "fs-storage.h"

G_BEGIN_DECLS

typedef struct {
  /* S3 when endpoint is set, else the local store store_dir (NULL: the
   * embedded default $XDG_DATA_HOME/foldersync/store). */
  gchar *endpoint;
  gchar *bucket;
  gchar *region;
  gchar *access_key;
  gchar *secret_key; /* never logged, never in a message */
  gchar *ca_file;
  gchar *store_dir;
  guint max_workers;
} FsStoreConfig;

void fs_store_config_clear (FsStoreConfig *config);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (FsStoreConfig, fs_store_config_clear)

/* Reads a secret from the first line of @filename, which must not be
 * readable by group or others. */
gchar *fs_store_config_read_secret (const gchar *filename, GError **error);

/* Loads and configures the storage plugin for @config. @store_id names the
 * store for the index ("local:/dir" or "s3:endpoint/bucket"). A missing
 * bucket or store directory is FS_STORAGE_ERROR_NO_BUCKET. */
FsStorage *fs_store_config_open (const FsStoreConfig *config, gchar **store_id, GError **error);

G_END_DECLS
