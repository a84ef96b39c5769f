/* FsSealStream: seals an object (preamble, header, 1 MiB chunks) while it is
 * read, so memory stays at about two chunks whatever the size of the source.
 * The format is in docs/format.md. Closing it closes the source. */
#include "config.h"

#include <string.h>

#include <zlib.h>
#include <glib/gi18n-lib.h>

#include "fs-crypto-format.h"
#include "fs-crypto.h"
#include "fs-error.h"
#include "fs-seal-stream.h"

typedef enum {
  COMPRESS_PROBE, /* first chunk: try, and decide for the whole object */
  COMPRESS_ON,
  COMPRESS_OFF,
} CompressMode;

struct _FsSealStream {
  GInputStream parent_instance;

  GInputStream *source;
  gpointer cipher;
  guint8 preamble[FS_OBJECT_PREAMBLE_SIZE];

  guint8 *out; /* the current frame: u32 frame, flag, data, tag */
  gsize out_len;
  gsize out_pos;
  guint8 *zbuf; /* compressed chunk, only while compression is on */
  gsize zbuf_size;

  guint64 index;
  CompressMode mode;
  gboolean have_carry; /* one byte read ahead to learn the chunk was not the last */
  guint8 carry;
  gboolean done;    /* the last chunk has been produced */
  GError *failure;  /* sticky: a failed stream keeps failing */
};

G_DEFINE_FINAL_TYPE (FsSealStream, fs_seal_stream, G_TYPE_INPUT_STREAM)

static void
chunk_ad (const guint8 *preamble, guint64 index, gboolean last,
          guint8 ad[FS_OBJECT_PREAMBLE_SIZE + 9])
{
  memcpy (ad, preamble, FS_OBJECT_PREAMBLE_SIZE);
  fs_put_u64_be (ad + FS_OBJECT_PREAMBLE_SIZE, index);
  ad[FS_OBJECT_PREAMBLE_SIZE + 8] = last ? 1 : 0;
}

/* Reads the next chunk of plaintext from the source and seals it into out. */
static gboolean
produce_chunk (FsSealStream *self, GCancellable *cancellable, GError **error)
{
  guint8 *data = self->out + 5;
  gsize n = 0;
  gsize got = 0;
  gboolean last;
  guint8 flag = FS_OBJECT_CHUNK_RAW;
  gsize data_len;
  guint8 nonce[FS_CRYPTO_GCM_NONCE_SIZE];
  guint8 ad[FS_OBJECT_PREAMBLE_SIZE + 9];
  guint8 peek;

  if (self->have_carry)
    {
      data[n++] = self->carry;
      self->have_carry = FALSE;
    }
  if (!g_input_stream_read_all (self->source, data + n, FS_OBJECT_CHUNK_SIZE - n, &got,
                                cancellable, error))
    return FALSE;
  n += got;
  last = n < FS_OBJECT_CHUNK_SIZE;
  if (!last)
    {
      /* A full chunk: it is the last one only if the source ends here. */
      if (!g_input_stream_read_all (self->source, &peek, 1, &got, cancellable, error))
        return FALSE;
      if (got == 1)
        {
          self->carry = peek;
          self->have_carry = TRUE;
        }
      else
        last = TRUE;
    }

  data_len = n;
  if (n > 0 && self->mode != COMPRESS_OFF)
    {
      uLongf zlen;
      int rc;

      if (self->zbuf == NULL)
        {
          self->zbuf_size = compressBound (FS_OBJECT_CHUNK_SIZE);
          self->zbuf = g_malloc (self->zbuf_size);
        }
      zlen = self->zbuf_size;
      rc = compress2 (self->zbuf, &zlen, data, n, 1);
      if (rc != Z_OK)
        {
          g_set_error (error, FS_CRYPTO_ERROR, FS_CRYPTO_ERROR_FAILED,
                       _("zlib failed to compress chunk %llu (%d)"),
                       (unsigned long long)self->index, rc);
          return FALSE;
        }
      if (zlen < n)
        {
          memcpy (data, self->zbuf, zlen);
          data_len = zlen;
          flag = FS_OBJECT_CHUNK_ZLIB;
        }
      if (self->mode == COMPRESS_PROBE)
        {
          /* Data that does not shrink in its first chunk (media, archives,
           * encrypted files) is stored raw without paying zlib per chunk. */
          self->mode = flag == FS_OBJECT_CHUNK_ZLIB ? COMPRESS_ON : COMPRESS_OFF;
          if (self->mode == COMPRESS_OFF)
            g_clear_pointer (&self->zbuf, g_free);
        }
    }
  else if (self->mode == COMPRESS_PROBE)
    self->mode = COMPRESS_OFF; /* only an empty object gets here */

  self->out[4] = flag;
  fs_crypto_gcm_nonce (FS_OBJECT_DOMAIN_CHUNK, self->index, nonce);
  chunk_ad (self->preamble, self->index, last, ad);
  if (!fs_crypto_gcm_seal (self->cipher, nonce, ad, sizeof ad, self->out + 4, 1 + data_len,
                           self->out + 5 + data_len))
    {
      g_set_error (error, FS_CRYPTO_ERROR, FS_CRYPTO_ERROR_FAILED,
                   _("AES-GCM failed on chunk %llu"), (unsigned long long)self->index);
      return FALSE;
    }
  fs_put_u32_be (self->out, (1 + data_len + FS_CRYPTO_TAG_SIZE) | (last ? FS_OBJECT_FRAME_LAST : 0));
  self->out_len = 4 + 1 + data_len + FS_CRYPTO_TAG_SIZE;
  self->out_pos = 0;
  self->index++;
  self->done = last;
  return TRUE;
}

static gssize
fs_seal_stream_read (GInputStream *stream, void *buffer, gsize count, GCancellable *cancellable,
                     GError **error)
{
  FsSealStream *self = FS_SEAL_STREAM (stream);
  gsize n;

  if (self->failure != NULL)
    {
      g_propagate_error (error, g_error_copy (self->failure));
      return -1;
    }
  if (self->out_pos == self->out_len)
    {
      if (self->done || count == 0)
        return 0;
      if (!produce_chunk (self, cancellable, &self->failure))
        {
          g_propagate_error (error, g_error_copy (self->failure));
          return -1;
        }
    }
  n = MIN (count, self->out_len - self->out_pos);
  memcpy (buffer, self->out + self->out_pos, n);
  self->out_pos += n;
  return n;
}

static gboolean
fs_seal_stream_close (GInputStream *stream, GCancellable *cancellable, GError **error)
{
  FsSealStream *self = FS_SEAL_STREAM (stream);
  return g_input_stream_close (self->source, cancellable, error);
}

static void
fs_seal_stream_finalize (GObject *object)
{
  FsSealStream *self = FS_SEAL_STREAM (object);

  g_clear_object (&self->source);
  g_clear_pointer (&self->cipher, fs_crypto_gcm_free);
  if (self->out != NULL)
    explicit_bzero (self->out, 4 + FS_OBJECT_MAX_SEALED_CHUNK);
  g_free (self->out);
  if (self->zbuf != NULL)
    explicit_bzero (self->zbuf, self->zbuf_size);
  g_free (self->zbuf);
  g_clear_error (&self->failure);
  G_OBJECT_CLASS (fs_seal_stream_parent_class)->finalize (object);
}

static void
fs_seal_stream_class_init (FsSealStreamClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GInputStreamClass *stream_class = G_INPUT_STREAM_CLASS (klass);

  object_class->finalize = fs_seal_stream_finalize;
  stream_class->read_fn = fs_seal_stream_read;
  stream_class->close_fn = fs_seal_stream_close;
}

static void
fs_seal_stream_init (FsSealStream *self)
{
}

GInputStream *
fs_seal_stream_new (GInputStream *plain, GBytes *header, const guint8 *content_key,
                    const guint8 *nonce, GError **error)
{
  g_autoptr(FsSealStream) self = g_object_new (FS_TYPE_SEAL_STREAM, NULL);
  guint8 object_key[FS_CRYPTO_SUBKEY_SIZE];
  guint8 gcm_nonce[FS_CRYPTO_GCM_NONCE_SIZE];
  gsize header_len = 0;
  const guint8 *header_data = g_bytes_get_data (header, &header_len);

  if (header_len > FS_OBJECT_MAX_HEADER)
    {
      g_set_error (error, FS_CRYPTO_ERROR, FS_CRYPTO_ERROR_FAILED,
                   _("Object header of %zu bytes is larger than the %u allowed"), header_len,
                   FS_OBJECT_MAX_HEADER);
      return NULL;
    }

  self->source = g_object_ref (plain);
  memcpy (self->preamble, FS_OBJECT_MAGIC, 4);
  self->preamble[4] = FS_OBJECT_VERSION;
  self->preamble[5] = 0; /* flags */
  self->preamble[6] = 0; /* reserved */
  self->preamble[7] = 0;
  memcpy (self->preamble + 8, nonce, FS_CRYPTO_OBJECT_NONCE_SIZE);

  fs_crypto_object_key (content_key, nonce, object_key);
  self->cipher = fs_crypto_gcm_new (object_key);
  explicit_bzero (object_key, sizeof object_key);
  if (self->cipher == NULL)
    {
      g_set_error_literal (error, FS_CRYPTO_ERROR, FS_CRYPTO_ERROR_FAILED,
                           _("libgcrypt cannot set up AES-256-GCM"));
      return NULL;
    }

  /* The buffer holds the largest chunk frame, or preamble + header frame. */
  self->out = g_malloc (MAX (4 + FS_OBJECT_MAX_SEALED_CHUNK,
                             FS_OBJECT_PREAMBLE_SIZE + 4 + header_len + FS_CRYPTO_TAG_SIZE));
  memcpy (self->out, self->preamble, FS_OBJECT_PREAMBLE_SIZE);
  fs_put_u32_be (self->out + FS_OBJECT_PREAMBLE_SIZE, header_len + FS_CRYPTO_TAG_SIZE);
  if (header_len > 0)
    memcpy (self->out + FS_OBJECT_PREAMBLE_SIZE + 4, header_data, header_len);
  fs_crypto_gcm_nonce (FS_OBJECT_DOMAIN_HEADER, 0, gcm_nonce);
  if (!fs_crypto_gcm_seal (self->cipher, gcm_nonce, self->preamble, FS_OBJECT_PREAMBLE_SIZE,
                           self->out + FS_OBJECT_PREAMBLE_SIZE + 4, header_len,
                           self->out + FS_OBJECT_PREAMBLE_SIZE + 4 + header_len))
    {
      g_set_error_literal (error, FS_CRYPTO_ERROR, FS_CRYPTO_ERROR_FAILED,
                           _("AES-GCM failed on the object header"));
      return NULL;
    }
  self->out_len = FS_OBJECT_PREAMBLE_SIZE + 4 + header_len + FS_CRYPTO_TAG_SIZE;
  self->out_pos = 0;
  self->mode = COMPRESS_PROBE;
  return G_INPUT_STREAM (g_steal_pointer (&self));
}
