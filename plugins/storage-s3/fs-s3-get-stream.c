/* FsS3GetStream (see fs-s3-get-stream.h). */
#include "config.h"

#include <glib/gi18n-lib.h>

#include "fs-error.h"
#include "fs-s3-get-stream.h"

struct _FsS3GetStream
{
  GInputStream parent_instance;

  GInputStream *inner;
  guint64 pos;
  guint64 end;
  guint max_resumes;
  guint resumes;
  FsS3ReopenFunc reopen;
  gpointer user_data;
  GDestroyNotify destroy;
};

G_DEFINE_FINAL_TYPE (FsS3GetStream, fs_s3_get_stream, G_TYPE_INPUT_STREAM)

static gboolean
resume (FsS3GetStream *self, GError *cause, GCancellable *cancellable, GError **error)
{
  g_autoptr (GError) why = cause;
  g_autoptr (GError) local_error = NULL;
  GInputStream *next;

  for (;;)
    {
      if (self->resumes >= self->max_resumes)
        {
          g_set_error (error, FS_STORAGE_ERROR, FS_STORAGE_ERROR_TRANSIENT,
                       _("Download broke off at byte %llu after %u retries: %s"),
                       (unsigned long long)self->pos, self->resumes,
                       local_error != NULL ? local_error->message
                       : why != NULL       ? why->message
                                           : _("the body ended early"));
          return FALSE;
        }
      self->resumes++;
      g_debug ("resuming a download at byte %" G_GUINT64_FORMAT " (retry %u): %s", self->pos,
               self->resumes, why != NULL ? why->message : "the body ended early");
      g_clear_error (&local_error);
      next = self->reopen (self->user_data, self->pos, self->end, self->resumes, cancellable,
                           &local_error);
      if (next != NULL)
        break;
      /* Only transient failures are worth another try (a changed object, a
       * missing one or a cancellation are final). */
      if (!g_error_matches (local_error, FS_STORAGE_ERROR, FS_STORAGE_ERROR_TRANSIENT))
        {
          g_propagate_error (error, g_steal_pointer (&local_error));
          return FALSE;
        }
    }
  g_input_stream_close (self->inner, NULL, NULL);
  g_object_unref (self->inner);
  self->inner = next;
  return TRUE;
}

static gssize
fs_s3_get_stream_read (GInputStream *stream, void *buffer, gsize count,
                       GCancellable *cancellable, GError **error)
{
  FsS3GetStream *self = FS_S3_GET_STREAM (stream);

  if (count == 0)
    return 0;
  if (self->end != G_MAXUINT64 && self->pos >= self->end)
    {
      /* At the end of the range: read the body to its end too, so libsoup
       * sees it complete and keeps the connection for the next request
       * (else every GET pays a new TCP connection). */
      guint8 extra[64];
      while (g_input_stream_read (self->inner, extra, sizeof extra, cancellable, NULL) > 0)
        ;
      return 0;
    }
  if (self->end != G_MAXUINT64 && count > self->end - self->pos)
    count = (gsize)(self->end - self->pos);

  for (;;)
    {
      GError *local_error = NULL;
      gssize n = g_input_stream_read (self->inner, buffer, count, cancellable, &local_error);

      if (n > 0)
        {
          self->pos += (guint64)n;
          return n;
        }
      if (n == 0 && (self->end == G_MAXUINT64 || self->pos >= self->end))
        return 0;
      if (n < 0 && g_error_matches (local_error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        {
          g_propagate_error (error, local_error);
          return -1;
        }
      if (!resume (self, local_error, cancellable, error))
        return -1;
    }
}

static gboolean
fs_s3_get_stream_close (GInputStream *stream, GCancellable *cancellable, GError **error)
{
  FsS3GetStream *self = FS_S3_GET_STREAM (stream);

  /* Whatever the server still sends is not wanted: closing early is fine. */
  return g_input_stream_close (self->inner, cancellable, NULL) || TRUE;
}

static void
fs_s3_get_stream_finalize (GObject *object)
{
  FsS3GetStream *self = FS_S3_GET_STREAM (object);

  g_clear_object (&self->inner);
  if (self->destroy != NULL)
    self->destroy (self->user_data);
  G_OBJECT_CLASS (fs_s3_get_stream_parent_class)->finalize (object);
}

static void
fs_s3_get_stream_class_init (FsS3GetStreamClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = fs_s3_get_stream_finalize;
  G_INPUT_STREAM_CLASS (klass)->read_fn = fs_s3_get_stream_read;
  G_INPUT_STREAM_CLASS (klass)->close_fn = fs_s3_get_stream_close;
}

static void
fs_s3_get_stream_init (FsS3GetStream *self)
{
}

GInputStream *
fs_s3_get_stream_new (GInputStream *inner, guint64 pos, guint64 end, guint max_resumes,
                      FsS3ReopenFunc reopen, gpointer user_data, GDestroyNotify destroy)
{
  FsS3GetStream *self = g_object_new (FS_TYPE_S3_GET_STREAM, NULL);

  self->inner = g_object_ref (inner);
  self->pos = pos;
  self->end = end;
  self->max_resumes = max_resumes;
  self->reopen = reopen;
  self->user_data = user_data;
  self->destroy = destroy;
  return G_INPUT_STREAM (self);
}
