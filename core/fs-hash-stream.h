/* FsHashInputStream: passes bytes through and computes their SHA-256, so a
 * file is hashed in the same read that uploads it. */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define FS_TYPE_HASH_INPUT_STREAM (fs_hash_input_stream_get_type ())
G_DECLARE_FINAL_TYPE (FsHashInputStream, fs_hash_input_stream, FS, HASH_INPUT_STREAM,
                      GFilterInputStream)

GInputStream *fs_hash_input_stream_new (GInputStream *base);
/* Lowercase hex SHA-256 of everything read so far. */
gchar *fs_hash_input_stream_get_hex (FsHashInputStream *self);
guint64 fs_hash_input_stream_get_bytes (FsHashInputStream *self);

G_END_DECLS
