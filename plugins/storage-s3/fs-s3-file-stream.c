/* FsS3FileStream (see fs-s3-file-stream.h). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "fs-s3-file-stream.h"

struct _FsS3FileStream
{
  GInputStream parent_instance;

  int fd; /* our own duplicate; -1 once closed */
  guint64 pos;
  guint64 length;
};

G_DEFINE_FINAL_TYPE (FsS3FileStream, fs_s3_file_stream, G_TYPE_INPUT_STREAM)

static void
set_errno_error (GError **error, int errsv)
{
  /* The caller says what was being read; this is only the reason. */
  g_set_error_literal (error, G_IO_ERROR, g_io_error_from_errno (errsv), g_strerror (errsv));
}

static gssize
fs_s3_file_stream_read (GInputStream *stream, void *buffer, gsize count, GCancellable *cancellable,
                        GError **error)
{
  FsS3FileStream *self = FS_S3_FILE_STREAM (stream);
  gssize n;

  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    return -1;
  count = (gsize)MIN ((guint64)count, self->length - self->pos);
  if (count == 0)
    return 0;
  do
    n = pread (self->fd, buffer, count, (off_t)self->pos);
  while (n < 0 && errno == EINTR);
  if (n < 0)
    {
      set_errno_error (error, errno);
      return -1;
    }
  if (n == 0)
    {
      /* Shorter than it was when it was written: never send a short body. */
      set_errno_error (error, EIO);
      return -1;
    }
  self->pos += (guint64)n;
  return n;
}

static gboolean
fs_s3_file_stream_close (GInputStream *stream, GCancellable *cancellable, GError **error)
{
  FsS3FileStream *self = FS_S3_FILE_STREAM (stream);

  if (self->fd >= 0)
    {
      close (self->fd);
      self->fd = -1;
    }
  return TRUE;
}

static void
fs_s3_file_stream_finalize (GObject *object)
{
  FsS3FileStream *self = FS_S3_FILE_STREAM (object);

  if (self->fd >= 0)
    close (self->fd);
  G_OBJECT_CLASS (fs_s3_file_stream_parent_class)->finalize (object);
}

static void
fs_s3_file_stream_class_init (FsS3FileStreamClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GInputStreamClass *stream_class = G_INPUT_STREAM_CLASS (klass);

  object_class->finalize = fs_s3_file_stream_finalize;
  stream_class->read_fn = fs_s3_file_stream_read;
  stream_class->close_fn = fs_s3_file_stream_close;
}

static void
fs_s3_file_stream_init (FsS3FileStream *self)
{
  self->fd = -1;
}

GInputStream *
fs_s3_file_stream_new (int fd, guint64 length, GError **error)
{
  FsS3FileStream *self;
  int dup_fd;

  g_return_val_if_fail (fd >= 0, NULL);

  dup_fd = fcntl (fd, F_DUPFD_CLOEXEC, 0);
  if (dup_fd < 0)
    {
      set_errno_error (error, errno);
      return NULL;
    }
  self = g_object_new (FS_TYPE_S3_FILE_STREAM, NULL);
  self->fd = dup_fd;
  self->length = length;
  return G_INPUT_STREAM (self);
}
