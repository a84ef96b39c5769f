/* FsS3BodyStream (see fs-s3-body-stream.h). */
#include "config.h"

#include <string.h>

#include <glib/gi18n-lib.h>

#include "fs-s3-body-stream.h"

struct _FsS3BodyStream
{
  GInputStream parent_instance;

  GBytes *head;
  GInputStream *source;
  guint64 length;
  guint64 pos;
  gboolean source_touched;
  GError *source_error;
};

G_DEFINE_FINAL_TYPE (FsS3BodyStream, fs_s3_body_stream, G_TYPE_INPUT_STREAM)

static void
set_length_error (FsS3BodyStream *self, GError **error)
{
  if (self->source_error == NULL)
    self->source_error
      = g_error_new (G_IO_ERROR, G_IO_ERROR_PARTIAL_INPUT,
                     _("The data changed while it was sent: not the %llu bytes announced"),
                     (unsigned long long)self->length);
  g_propagate_error (error, g_error_copy (self->source_error));
}

static gssize
read_source (FsS3BodyStream *self, void *buffer, gsize count, GCancellable *cancellable,
             GError **error)
{
  g_autoptr (GError) local_error = NULL;
  gssize n;

  self->source_touched = TRUE;
  n = g_input_stream_read (self->source, buffer, count, cancellable, &local_error);
  if (n < 0)
    {
      if (self->source_error == NULL)
        self->source_error = g_error_copy (local_error);
      g_propagate_error (error, g_steal_pointer (&local_error));
    }
  return n;
}

static gssize
fs_s3_body_stream_read (GInputStream *stream, void *buffer, gsize count,
                        GCancellable *cancellable, GError **error)
{
  FsS3BodyStream *self = FS_S3_BODY_STREAM (stream);
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
      n = read_source (self, buffer, count, cancellable, error);
      if (n < 0)
        return -1;
      if (n == 0)
        {
          set_length_error (self, error);
          return -1;
        }
    }
  self->pos += (guint64)n;
  if (self->pos == self->length)
    {
      /* The source must end exactly here. */
      guint8 extra;
      gssize more = read_source (self, &extra, 1, cancellable, error);

      if (more < 0)
        return -1;
      if (more > 0)
        {
          set_length_error (self, error);
          return -1;
        }
    }
  return n;
}

/* Closing the body leaves the source to its owner. */
static gboolean
fs_s3_body_stream_close (GInputStream *stream, GCancellable *cancellable, GError **error)
{
  return TRUE;
}

static void
fs_s3_body_stream_finalize (GObject *object)
{
  FsS3BodyStream *self = FS_S3_BODY_STREAM (object);

  g_bytes_unref (self->head);
  g_object_unref (self->source);
  g_clear_error (&self->source_error);
  G_OBJECT_CLASS (fs_s3_body_stream_parent_class)->finalize (object);
}

static void
fs_s3_body_stream_class_init (FsS3BodyStreamClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GInputStreamClass *stream_class = G_INPUT_STREAM_CLASS (klass);

  object_class->finalize = fs_s3_body_stream_finalize;
  stream_class->read_fn = fs_s3_body_stream_read;
  stream_class->close_fn = fs_s3_body_stream_close;
}

static void
fs_s3_body_stream_init (FsS3BodyStream *self)
{
}

FsS3BodyStream *
fs_s3_body_stream_new (GBytes *head, GInputStream *source, guint64 length)
{
  FsS3BodyStream *self;

  g_return_val_if_fail (head != NULL && G_IS_INPUT_STREAM (source), NULL);
  g_return_val_if_fail (g_bytes_get_size (head) <= length, NULL);

  self = g_object_new (FS_TYPE_S3_BODY_STREAM, NULL);
  self->head = g_bytes_ref (head);
  self->source = g_object_ref (source);
  self->length = length;
  return self;
}

gboolean
fs_s3_body_stream_source_touched (FsS3BodyStream *self)
{
  g_return_val_if_fail (FS_IS_S3_BODY_STREAM (self), TRUE);
  return self->source_touched;
}

const GError *
fs_s3_body_stream_get_source_error (FsS3BodyStream *self)
{
  g_return_val_if_fail (FS_IS_S3_BODY_STREAM (self), NULL);
  return self->source_error;
}
