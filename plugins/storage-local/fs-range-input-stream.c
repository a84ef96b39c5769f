/* FsRangeInputStream: a filter stream that ends after a fixed number of bytes
 * of its base stream, so a ranged GET never reads past the requested range. */
#include "fs-range-input-stream.h"

struct _FsRangeInputStream
{
  GFilterInputStream parent_instance;
  guint64 remaining;
};

G_DEFINE_FINAL_TYPE (FsRangeInputStream, fs_range_input_stream, G_TYPE_FILTER_INPUT_STREAM)

static gssize
fs_range_input_stream_read (GInputStream *stream, void *buffer, gsize count,
                            GCancellable *cancellable, GError **error)
{
  FsRangeInputStream *self = FS_RANGE_INPUT_STREAM (stream);
  GInputStream *base = g_filter_input_stream_get_base_stream (G_FILTER_INPUT_STREAM (stream));
  gssize n;

  if (self->remaining == 0)
    return 0;
  if ((guint64)count > self->remaining)
    count = (gsize)self->remaining;
  n = g_input_stream_read (base, buffer, count, cancellable, error);
  if (n > 0)
    self->remaining -= (guint64)n;
  return n;
}

static gssize
fs_range_input_stream_skip (GInputStream *stream, gsize count, GCancellable *cancellable,
                            GError **error)
{
  FsRangeInputStream *self = FS_RANGE_INPUT_STREAM (stream);
  GInputStream *base = g_filter_input_stream_get_base_stream (G_FILTER_INPUT_STREAM (stream));
  gssize n;

  if ((guint64)count > self->remaining)
    count = (gsize)self->remaining;
  if (count == 0)
    return 0;
  n = g_input_stream_skip (base, count, cancellable, error);
  if (n > 0)
    self->remaining -= (guint64)n;
  return n;
}

static void
fs_range_input_stream_class_init (FsRangeInputStreamClass *klass)
{
  GInputStreamClass *stream_class = G_INPUT_STREAM_CLASS (klass);

  stream_class->read_fn = fs_range_input_stream_read;
  stream_class->skip = fs_range_input_stream_skip;
}

static void
fs_range_input_stream_init (FsRangeInputStream *self)
{
}

GInputStream *
fs_range_input_stream_new (GInputStream *base, guint64 length)
{
  FsRangeInputStream *self;

  g_return_val_if_fail (G_IS_INPUT_STREAM (base), NULL);

  self = g_object_new (FS_TYPE_RANGE_INPUT_STREAM, "base-stream", base, "close-base-stream", TRUE,
                       NULL);
  self->remaining = length;
  return G_INPUT_STREAM (self);
}
