/* FsOpenStream: opens a sealed object. The preamble and header are read and
 * authenticated up front; chunks are read, authenticated and inflated one at
 * a time as the plaintext is read, so memory stays at about two chunks.
 * Every length read from the wire is checked before anything is allocated.
 * Any failure is FS_CRYPTO_ERROR_CORRUPT (docs/format.md). Closing it closes
 * the source. */
#include "config.h"

#include <string.h>

#include <zlib.h>
#include <glib/gi18n-lib.h>

#include "fs-crypto-format.h"
#include "fs-crypto.h"
#include "fs-error.h"
#include "fs-open-stream.h"

struct _FsOpenStream {
  GInputStream parent_instance;

  GInputStream *source;
  gpointer cipher;
  guint8 preamble[FS_OBJECT_PREAMBLE_SIZE];

  guint8 *sealed; /* the current sealed chunk (FS_OBJECT_MAX_SEALED_CHUNK) */
  guint8 *plain;  /* inflated chunk, allocated on the first compressed chunk */
  const guint8 *avail; /* plaintext not yet returned: into sealed or plain */
  gsize avail_len;

  guint64 index;
  gboolean done;   /* the last chunk has been read and checked */
  GError *failure; /* sticky */
};

G_DEFINE_FINAL_TYPE (FsOpenStream, fs_open_stream, G_TYPE_INPUT_STREAM)

/* Reads exactly @len bytes; a short read is a truncated object. */
static gboolean
read_exact (GInputStream *source, guint8 *buf, gsize len, const gchar *what, guint64 index,
            GCancellable *cancellable, GError **error)
{
  gsize got = 0;

  if (!g_input_stream_read_all (source, buf, len, &got, cancellable, error))
    return FALSE;
  if (got != len)
    {
      if (index == G_MAXUINT64)
        g_set_error (error, FS_CRYPTO_ERROR, FS_CRYPTO_ERROR_CORRUPT,
                     _("Sealed object is truncated in its %s"), what);
      else
        g_set_error (error, FS_CRYPTO_ERROR, FS_CRYPTO_ERROR_CORRUPT,
                     _("Sealed object is truncated in the %s of chunk %llu"), what,
                     (unsigned long long)index);
      return FALSE;
    }
  return TRUE;
}

static gboolean
read_chunk (FsOpenStream *self, GCancellable *cancellable, GError **error)
{
  guint8 frame_bytes[4];
  gsize got = 0;
  guint32 frame;
  gsize sealed_len;
  gsize data_len;
  gboolean last;
  guint8 nonce[FS_CRYPTO_GCM_NONCE_SIZE];
  guint8 ad[FS_OBJECT_PREAMBLE_SIZE + 9];
  guint8 extra;

  if (!g_input_stream_read_all (self->source, frame_bytes, 4, &got, cancellable, error))
    return FALSE;
  if (got == 0)
    {
      g_set_error (error, FS_CRYPTO_ERROR, FS_CRYPTO_ERROR_CORRUPT,
                   _("Sealed object is truncated: it ends after chunk %llu without a last chunk"),
                   (unsigned long long)self->index);
      return FALSE;
    }
  if (got != 4)
    {
      g_set_error (error, FS_CRYPTO_ERROR, FS_CRYPTO_ERROR_CORRUPT,
                   _("Sealed object is truncated in the length of chunk %llu"),
                   (unsigned long long)self->index);
      return FALSE;
    }
  frame = fs_get_u32_be (frame_bytes);
  last = (frame & FS_OBJECT_FRAME_LAST) != 0;
  sealed_len = frame & FS_OBJECT_FRAME_LEN_MASK;
  if (sealed_len < FS_OBJECT_MIN_SEALED_CHUNK || sealed_len > FS_OBJECT_MAX_SEALED_CHUNK)
    {
      g_set_error (error, FS_CRYPTO_ERROR, FS_CRYPTO_ERROR_CORRUPT,
                   _("Chunk %llu has an impossible length (%zu bytes)"),
                   (unsigned long long)self->index, sealed_len);
      return FALSE;
    }
  if (!read_exact (self->source, self->sealed, sealed_len, _("body"), self->index, cancellable,
                   error))
    return FALSE;

  data_len = sealed_len - FS_CRYPTO_TAG_SIZE;
  fs_crypto_gcm_nonce (FS_OBJECT_DOMAIN_CHUNK, self->index, nonce);
  memcpy (ad, self->preamble, FS_OBJECT_PREAMBLE_SIZE);
  fs_put_u64_be (ad + FS_OBJECT_PREAMBLE_SIZE, self->index);
  ad[FS_OBJECT_PREAMBLE_SIZE + 8] = last ? 1 : 0;
  if (!fs_crypto_gcm_open (self->cipher, nonce, ad, sizeof ad, self->sealed, data_len,
                           self->sealed + data_len))
    {
      g_set_error (error, FS_CRYPTO_ERROR, FS_CRYPTO_ERROR_CORRUPT,
                   _("Chunk %llu failed authentication (modified, reordered, "
                      "moved from another object, or sealed with another key)"),
                   (unsigned long long)self->index);
      return FALSE;
    }

  /* Authentic from here on; the checks below keep the format canonical. */
  if (self->sealed[0] == FS_OBJECT_CHUNK_RAW)
    {
      self->avail = self->sealed + 1;
      self->avail_len = data_len - 1;
    }
  else if (self->sealed[0] == FS_OBJECT_CHUNK_ZLIB)
    {
      uLongf plain_len = FS_OBJECT_CHUNK_SIZE;
      uLong src_len = data_len - 1;
      int rc;

      if (self->plain == NULL)
        self->plain = g_malloc (FS_OBJECT_CHUNK_SIZE);
      rc = uncompress2 (self->plain, &plain_len, self->sealed + 1, &src_len);
      if (rc != Z_OK || src_len != data_len - 1)
        {
          g_set_error (error, FS_CRYPTO_ERROR, FS_CRYPTO_ERROR_CORRUPT,
                       _("Chunk %llu does not inflate to at most one chunk (%s)"),
                       (unsigned long long)self->index,
                       rc == Z_OK ? _("trailing data") : zError (rc));
          return FALSE;
        }
      self->avail = self->plain;
      self->avail_len = plain_len;
    }
  else
    {
      g_set_error (error, FS_CRYPTO_ERROR, FS_CRYPTO_ERROR_CORRUPT,
                   _("Chunk %llu has an unknown encoding %u"), (unsigned long long)self->index,
                   self->sealed[0]);
      return FALSE;
    }
  if (!last && self->avail_len != FS_OBJECT_CHUNK_SIZE)
    {
      g_set_error (error, FS_CRYPTO_ERROR, FS_CRYPTO_ERROR_CORRUPT,
                   _("Chunk %llu is not the last one but holds %zu bytes instead of %u"),
                   (unsigned long long)self->index, self->avail_len, FS_OBJECT_CHUNK_SIZE);
      return FALSE;
    }
  if (last && self->avail_len == 0 && self->index > 0)
    {
      g_set_error (error, FS_CRYPTO_ERROR, FS_CRYPTO_ERROR_CORRUPT,
                   _("Chunk %llu is an empty last chunk after a full one"),
                   (unsigned long long)self->index);
      return FALSE;
    }
  if (last)
    {
      /* Checked before the last bytes are handed out, so a reader that got
       * everything has got an object with nothing appended. */
      if (!g_input_stream_read_all (self->source, &extra, 1, &got, cancellable, error))
        return FALSE;
      if (got != 0)
        {
          g_set_error (error, FS_CRYPTO_ERROR, FS_CRYPTO_ERROR_CORRUPT,
                       _("Sealed object has data after its last chunk (%llu)"),
                       (unsigned long long)self->index);
          return FALSE;
        }
      self->done = TRUE;
    }
  self->index++;
  return TRUE;
}

static gssize
fs_open_stream_read (GInputStream *stream, void *buffer, gsize count, GCancellable *cancellable,
                     GError **error)
{
  FsOpenStream *self = FS_OPEN_STREAM (stream);
  gsize n;

  if (self->failure != NULL)
    {
      g_propagate_error (error, g_error_copy (self->failure));
      return -1;
    }
  if (count == 0)
    return 0;
  /* Loop: an empty last chunk yields nothing, and EOF is reported only once
   * the last chunk has been authenticated. */
  while (self->avail_len == 0)
    {
      if (self->done)
        return 0;
      if (!read_chunk (self, cancellable, &self->failure))
        {
          /* A cancelled read may be retried only from a clean state: keep it sticky. */
          g_propagate_error (error, g_error_copy (self->failure));
          return -1;
        }
    }
  n = MIN (count, self->avail_len);
  memcpy (buffer, self->avail, n);
  self->avail += n;
  self->avail_len -= n;
  return n;
}

static gboolean
fs_open_stream_close (GInputStream *stream, GCancellable *cancellable, GError **error)
{
  FsOpenStream *self = FS_OPEN_STREAM (stream);
  return g_input_stream_close (self->source, cancellable, error);
}

static void
fs_open_stream_finalize (GObject *object)
{
  FsOpenStream *self = FS_OPEN_STREAM (object);

  g_clear_object (&self->source);
  g_clear_pointer (&self->cipher, fs_crypto_gcm_free);
  if (self->sealed != NULL)
    explicit_bzero (self->sealed, FS_OBJECT_MAX_SEALED_CHUNK);
  g_free (self->sealed);
  if (self->plain != NULL)
    explicit_bzero (self->plain, FS_OBJECT_CHUNK_SIZE);
  g_free (self->plain);
  g_clear_error (&self->failure);
  G_OBJECT_CLASS (fs_open_stream_parent_class)->finalize (object);
}

static void
fs_open_stream_class_init (FsOpenStreamClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GInputStreamClass *stream_class = G_INPUT_STREAM_CLASS (klass);

  object_class->finalize = fs_open_stream_finalize;
  stream_class->read_fn = fs_open_stream_read;
  stream_class->close_fn = fs_open_stream_close;
}

static void
fs_open_stream_init (FsOpenStream *self)
{
}

GInputStream *
fs_open_stream_new (GInputStream *sealed, const guint8 *content_key, GBytes **header,
                    GCancellable *cancellable, GError **error)
{
  g_autoptr(FsOpenStream) self = g_object_new (FS_TYPE_OPEN_STREAM, NULL);
  guint8 object_key[FS_CRYPTO_SUBKEY_SIZE];
  guint8 gcm_nonce[FS_CRYPTO_GCM_NONCE_SIZE];
  guint8 len_bytes[4];
  gsize sealed_len;
  gsize header_len;
  g_autofree guint8 *buf = NULL;

  self->source = g_object_ref (sealed);
  if (!read_exact (sealed, self->preamble, FS_OBJECT_PREAMBLE_SIZE, _("preamble"), G_MAXUINT64,
                   cancellable, error))
    return NULL;
  if (memcmp (self->preamble, FS_OBJECT_MAGIC, 4) != 0)
    {
      g_set_error_literal (error, FS_CRYPTO_ERROR, FS_CRYPTO_ERROR_CORRUPT,
                           _("Not a sealed object (bad magic)"));
      return NULL;
    }
  if (self->preamble[4] != FS_OBJECT_VERSION)
    {
      g_set_error (error, FS_CRYPTO_ERROR, FS_CRYPTO_ERROR_CORRUPT,
                   _("Sealed object has format version %u, this version reads %u"),
                   self->preamble[4], FS_OBJECT_VERSION);
      return NULL;
    }
  if (self->preamble[5] != 0 || self->preamble[6] != 0 || self->preamble[7] != 0)
    {
      g_set_error_literal (error, FS_CRYPTO_ERROR, FS_CRYPTO_ERROR_CORRUPT,
                           _("Sealed object has unknown flags set"));
      return NULL;
    }

  if (!read_exact (sealed, len_bytes, 4, _("header length"), G_MAXUINT64, cancellable, error))
    return NULL;
  sealed_len = fs_get_u32_be (len_bytes);
  if (sealed_len < FS_CRYPTO_TAG_SIZE || sealed_len > FS_OBJECT_MAX_HEADER + FS_CRYPTO_TAG_SIZE)
    {
      g_set_error (error, FS_CRYPTO_ERROR, FS_CRYPTO_ERROR_CORRUPT,
                   _("Sealed object header has an impossible length (%zu bytes)"), sealed_len);
      return NULL;
    }
  buf = g_malloc (sealed_len);
  if (!read_exact (sealed, buf, sealed_len, _("header"), G_MAXUINT64, cancellable, error))
    return NULL;

  fs_crypto_object_key (content_key, self->preamble + 8, object_key);
  self->cipher = fs_crypto_gcm_new (object_key);
  explicit_bzero (object_key, sizeof object_key);
  if (self->cipher == NULL)
    {
      g_set_error_literal (error, FS_CRYPTO_ERROR, FS_CRYPTO_ERROR_FAILED,
                           _("libgcrypt cannot set up AES-256-GCM"));
      return NULL;
    }
  header_len = sealed_len - FS_CRYPTO_TAG_SIZE;
  fs_crypto_gcm_nonce (FS_OBJECT_DOMAIN_HEADER, 0, gcm_nonce);
  if (!fs_crypto_gcm_open (self->cipher, gcm_nonce, self->preamble, FS_OBJECT_PREAMBLE_SIZE, buf,
                           header_len, buf + header_len))
    {
      g_set_error_literal (error, FS_CRYPTO_ERROR, FS_CRYPTO_ERROR_CORRUPT,
                           _("Sealed object header failed authentication (modified, or sealed "
                              "with another key)"));
      return NULL;
    }

  self->sealed = g_malloc (FS_OBJECT_MAX_SEALED_CHUNK);
  if (header != NULL)
    *header = g_bytes_new (buf, header_len);
  explicit_bzero (buf, sealed_len);
  return G_INPUT_STREAM (g_steal_pointer (&self));
}
