/* FsS3GetStream: the body of a GET, resumed with a new ranged request when the
 * connection breaks or the body ends early (a truncated response). */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define FS_TYPE_S3_GET_STREAM (fs_s3_get_stream_get_type ())
G_DECLARE_FINAL_TYPE (FsS3GetStream, fs_s3_get_stream, FS, S3_GET_STREAM, GInputStream)

/* Opens the bytes [@pos, @end) of the object again (end G_MAXUINT64: to the
 * end); @attempt counts from 1, for the backoff. */
typedef GInputStream *(*FsS3ReopenFunc) (gpointer user_data, guint64 pos, guint64 end,
                                         guint attempt, GCancellable *cancellable,
                                         GError **error);

/* Reads @inner, which starts at byte @pos of the object and should deliver
 * bytes up to @end (exclusive; G_MAXUINT64 if unknown). Reads past @end are
 * cut (a server that ignored Range). On a failed or short read it calls
 * @reopen, at most @max_resumes times in all. */
GInputStream *fs_s3_get_stream_new (GInputStream *inner, guint64 pos, guint64 end,
                                    guint max_resumes, FsS3ReopenFunc reopen,
                                    gpointer user_data, GDestroyNotify destroy);

G_END_DECLS
