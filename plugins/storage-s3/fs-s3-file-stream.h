/* FsS3FileStream: a request body read from a file with pread(), from its first
 * byte, on the stream's own duplicate of the descriptor. Several streams of one
 * file never share a position, so a request can be sent again from byte 0 (a
 * retry, or libsoup restarting a message) while an earlier stream still exists. */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define FS_TYPE_S3_FILE_STREAM (fs_s3_file_stream_get_type ())
G_DECLARE_FINAL_TYPE (FsS3FileStream, fs_s3_file_stream, FS, S3_FILE_STREAM, GInputStream)

/* The first @length bytes of the file open as @fd (which stays the caller's).
 * NULL with a G_IO_ERROR if the descriptor cannot be duplicated. */
GInputStream *fs_s3_file_stream_new (int fd, guint64 length, GError **error);

G_END_DECLS
