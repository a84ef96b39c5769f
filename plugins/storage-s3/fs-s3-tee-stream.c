/* FsS3TeeStream (see fs-s3-tee-stream.h). */
#include "config.h"

#include <string.h>

#include <glib/gi18n-lib.h>

#include "fs-s3-tee-stream.h"

struct _FsS3TeeStream
{
  GInputStream parent_instance;

  GBytes *head;
  GInputStream *source;
  guint64 length;
  guint64 pos;
  FsS3TeeSink sink;
  gpointer sink_data;
};

G_DEFINE_FINAL_TYPE (FsS3TeeStream, fs_s3_tee_stream, G_TYPE_INPUT_STREAM)

static gboolean
set_length_error (FsS3TeeStream *self, GError **error)
{
  g_set_error (error, G_IO_ERROR, G_IO_ERROR_PARTIAL_INPUT,
               _("The data changed while it was sent: not the %llu bytes announced"),
               (unsigned long long)self->length);
  return FALSE;
}

/* Called when the bytes handed out so far reach the announced length: the
 * source must end there. */
static gboolean
check_source_ends (FsS3TeeStream *self, GCancellable *cancellable, GError **error)
{
  guint8 extra;
  gssize n = g_input_stream_read (self->source, &extra, 1, cancellable, error);

  if (n < 0)
    return FALSE;
  if (n == 0)
    return TRUE;
  /* Kept, so that the spool holds everything read and a retry sees it too. */
  if (!self->sink (self->sink_data, &extra, 1, cancellable, error))
    return FALSE;
  return set_length_error (self, error);
}

static gssize
fs_s3_tee_stream_read (GInputStream *stream, void *buffer, gsize count, GCancellable *cancellable,
                       GError **error)
{
  FsS3TeeStream *self = FS_S3_TEE_STREAM (stream);
  gsize head_len = g_bytes_get_size (self->head);
  gssize n;

  count = (gsize)MIN ((guint64)count, self->length - self->pos);
  if (count == 0)
    return 0;
  if (self->pos < head_len)
    {
      n = (gssize)MIN (count, head_len - self->pos);
      memcpy (buffer, (const guint8 *)g_bytes_get_data (self->head, NULL) + self->pos, (gsize)n);
    }
  else
    {
      n = g_input_stream_read (self->source, buffer, count, cancellable, error);
      if (n < 0)
        return -1;
      if (n == 0)
        {
          set_length_error (self, error);
          return -1;
        }
      if (!self->sink (self->sink_data, buffer, (gsize)n, cancellable, error))
        return -1;
    }
  self->pos += (guint64)n;
  if (self->pos == self->length && !check_source_ends (self, cancellable, error))
    return -1;
  return n;
}

static void
fs_s3_tee_stream_finalize (GObject *object)
{
  FsS3TeeStream *self = FS_S3_TEE_STREAM (object);

  g_bytes_unref (self->head);
  g_object_unref (self->source);
  G_OBJECT_CLASS (fs_s3_tee_stream_parent_class)->finalize (object);
}

/* Closing the body must not close the source: a retry still reads it. */
static gboolean
fs_s3_tee_stream_close (GInputStream *stream, GCancellable *cancellable, GError **error)
{
  return TRUE;
}

static void
fs_s3_tee_stream_class_init (FsS3TeeStreamClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GInputStreamClass *stream_class = G_INPUT_STREAM_CLASS (klass);

  object_class->finalize = fs_s3_tee_stream_finalize;
  stream_class->read_fn = fs_s3_tee_stream_read;
  stream_class->close_fn = fs_s3_tee_stream_close;
}

static void
fs_s3_tee_stream_init (FsS3TeeStream *self)
{
}

GInputStream *
fs_s3_tee_stream_new (GBytes *head, GInputStream *source, guint64 length, FsS3TeeSink sink,
                      gpointer sink_data)
{
  FsS3TeeStream *self;

  g_return_val_if_fail (head != NULL && G_IS_INPUT_STREAM (source) && sink != NULL, NULL);
  g_return_val_if_fail (g_bytes_get_size (head) <= length, NULL);

  self = g_object_new (FS_TYPE_S3_TEE_STREAM, NULL);
  self->head = g_bytes_ref (head);
  self->source = g_object_ref (source);
  self->length = length;
  self->sink = sink;
  self->sink_data = sink_data;
  return G_INPUT_STREAM (self);
}
