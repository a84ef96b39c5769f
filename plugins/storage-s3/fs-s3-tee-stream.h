/* FsS3TeeStream: the body of a PUT sent while its data is still being
 * produced. It gives @head, then what it reads from @source, exactly @length
 * bytes in all, and hands every byte it takes from @source to @sink as well
 * (the spool a retry is sent from). A source that ends early or goes on past
 * @length fails the read with G_IO_ERROR_PARTIAL_INPUT: the request is never
 * completed with data other than announced. The last bytes are only handed
 * out once the source is known to end there. */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define FS_TYPE_S3_TEE_STREAM (fs_s3_tee_stream_get_type ())
G_DECLARE_FINAL_TYPE (FsS3TeeStream, fs_s3_tee_stream, FS, S3_TEE_STREAM, GInputStream)

typedef gboolean (*FsS3TeeSink) (gpointer user_data, const guint8 *data, gsize len,
                                 GCancellable *cancellable, GError **error);

GInputStream *fs_s3_tee_stream_new (GBytes *head, GInputStream *source, guint64 length,
                                    FsS3TeeSink sink, gpointer sink_data);

G_END_DECLS
