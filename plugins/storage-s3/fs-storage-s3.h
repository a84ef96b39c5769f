/* FsStorageS3: the FsStorage backend for MinIO, AWS S3 and S3-compatible
 * servers (libsoup 3, SigV4). */
#pragma once

#include "fs-storage.h"

G_BEGIN_DECLS

#define FS_TYPE_STORAGE_S3 (fs_storage_s3_get_type ())
G_DECLARE_FINAL_TYPE (FsStorageS3, fs_storage_s3, FS, STORAGE_S3, GObject)

/* Requests retried so far (also the read-only property "retries"). */
guint64 fs_storage_s3_get_retries (FsStorageS3 *self);

G_END_DECLS
