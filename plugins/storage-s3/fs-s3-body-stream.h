/* FsS3BodyStream: the body of a PUT sent while its data is still being
 * produced. It gives @head, then what it reads from @source, exactly @length
 * bytes in all. A source that ends early or goes on past @length fails the
 * read with G_IO_ERROR_PARTIAL_INPUT: the request is never completed with
 * data other than announced (the last bytes are only handed out once the
 * source is known to end there). Such a body can be sent again only while
 * nothing has been read from @source (fs_s3_body_stream_source_touched()). */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define FS_TYPE_S3_BODY_STREAM (fs_s3_body_stream_get_type ())
G_DECLARE_FINAL_TYPE (FsS3BodyStream, fs_s3_body_stream, FS, S3_BODY_STREAM, GInputStream)

FsS3BodyStream *fs_s3_body_stream_new (GBytes *head, GInputStream *source, guint64 length);
/* Whether this stream has tried to read from the source. */
gboolean fs_s3_body_stream_source_touched (FsS3BodyStream *self);
/* Why reading the source failed (its own error, or G_IO_ERROR_PARTIAL_INPUT
 * when its length was not the one announced), or NULL. */
const GError *fs_s3_body_stream_get_source_error (FsS3BodyStream *self);

G_END_DECLS
