/* SHA-256 of a stream as it is read (libgcrypt). */
#include <gcrypt.h>

#include "fs-gcrypt.h"
#include "fs-hash-stream.h"
#include "fs-types.h"

struct _FsHashInputStream {
  GFilterInputStream parent_instance;
  gcry_md_hd_t md;
  guint64 bytes;
};

G_DEFINE_FINAL_TYPE (FsHashInputStream, fs_hash_input_stream, G_TYPE_FILTER_INPUT_STREAM)

static gssize
fs_hash_input_stream_read (GInputStream *stream, void *buffer, gsize count,
                           GCancellable *cancellable, GError **error)
{
  FsHashInputStream *self = FS_HASH_INPUT_STREAM (stream);
  GInputStream *base = g_filter_input_stream_get_base_stream (G_FILTER_INPUT_STREAM (stream));
  gssize n = g_input_stream_read (base, buffer, count, cancellable, error);

  if (n > 0)
    {
      gcry_md_write (self->md, buffer, (size_t) n);
      self->bytes += (guint64) n;
    }
  return n;
}

static void
fs_hash_input_stream_finalize (GObject *object)
{
  FsHashInputStream *self = FS_HASH_INPUT_STREAM (object);
  gcry_md_close (self->md);
  G_OBJECT_CLASS (fs_hash_input_stream_parent_class)->finalize (object);
}

static void
fs_hash_input_stream_class_init (FsHashInputStreamClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = fs_hash_input_stream_finalize;
  G_INPUT_STREAM_CLASS (klass)->read_fn = fs_hash_input_stream_read;
}

static void
fs_hash_input_stream_init (FsHashInputStream *self)
{
  fs_gcrypt_init ();
  if (gcry_md_open (&self->md, GCRY_MD_SHA256, 0) != 0)
    g_error ("SHA-256 is not available in libgcrypt");
}

GInputStream *
fs_hash_input_stream_new (GInputStream *base)
{
  return g_object_new (FS_TYPE_HASH_INPUT_STREAM, "base-stream", base, NULL);
}

gchar *
fs_hash_input_stream_get_hex (FsHashInputStream *self)
{
  gcry_md_hd_t copy;
  gchar *hex;

  /* Hash a copy so reading may go on afterwards. */
  if (gcry_md_copy (&copy, self->md) != 0)
    g_error ("cannot copy a SHA-256 context");
  hex = fs_hex_encode (gcry_md_read (copy, GCRY_MD_SHA256), 32);
  gcry_md_close (copy);
  return hex;
}

guint64
fs_hash_input_stream_get_bytes (FsHashInputStream *self)
{
  return self->bytes;
}
