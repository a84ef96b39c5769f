/* FsOpenStream: opens a sealed object. The preamble and header are read and
 * authenticated up front; chunks are authenticated and inflated as the
 * plaintext is read. Every length read from the wire is checked before
 * anything is allocated. Any failure is FS_CRYPTO_ERROR_CORRUPT
 * (docs/format.md). Closing it closes the source.
 *
 * The source is read in the reader's thread, one frame at a time. An object
 * of one chunk (most files) is opened right there. In a longer object every
 * chunk is decrypted, authenticated and inflated by the plugin-wide worker
 * pool (fs-crypto-workers.c) in the slots of an OpenPipe (one more than the
 * pool has threads), and handed out strictly in order: no byte of a chunk
 * before it authenticated, no chunk after one that failed, and the end of
 * the stream (nothing after the last chunk) is checked when the last frame
 * is read, before its job is even queued. A problem the reader finds (truncation, an
 * impossible length, trailing data) is reported when the reader gets to that
 * chunk, after the good chunks before it. Memory is about threads + 2
 * chunks per stream. */
#include "config.h"

#include <string.h>

#include <libdeflate.h>
#include <glib/gi18n-lib.h>

#include "fs-crypto-format.h"
#include "fs-crypto-workers.h"
#include "fs-crypto.h"
#include "fs-error.h"
#include "fs-open-stream.h"

typedef enum {
  SLOT_FREE,
  SLOT_BUSY, /* a job owns it */
  SLOT_DONE,
} SlotState;

typedef struct _OpenPipe OpenPipe;

typedef struct {
  FsCryptoJob job; /* first: the pool runs it */
  OpenPipe *pipe;
  guint8 *buf;     /* the sealed chunk while busy, its plaintext once done */
  gsize len;       /* sealed bytes while busy, plaintext bytes once done */
  gsize offset;    /* where the plaintext starts in buf */
  gsize used;      /* bytes of buf to wipe */
  guint64 index;
  gboolean last;
  gpointer cipher; /* this slot's own: jobs of one stream run at once */
  GError *error;
  SlotState state; /* under pipe->lock */
} OpenSlot;

struct _OpenPipe {
  gint ref;
  gint abandoned; /* atomic: the stream is gone, queued jobs skip their work */
  GMutex lock;
  GCond done;
  guint8 preamble[FS_OBJECT_PREAMBLE_SIZE];
  guint8 key[FS_CRYPTO_SUBKEY_SIZE];
  guint n_slots;
  OpenSlot slots[];
};

struct _FsOpenStream {
  GInputStream parent_instance;

  GInputStream *source;
  gpointer cipher; /* the reader's: header, a one-chunk object, every chunk without a pool */
  guint8 preamble[FS_OBJECT_PREAMBLE_SIZE];
  guint8 key[FS_CRYPTO_SUBKEY_SIZE]; /* the object key, for the pipe */

  guint8 *out; /* the chunk buffer being handed out */
  gsize out_used;
  const guint8 *avail; /* plaintext not yet returned, in out */
  gsize avail_len;

  guint64 read_index;   /* next chunk to read from the source */
  guint64 emit_index;   /* next chunk to hand out */
  gboolean source_done; /* the last chunk and the end of the stream have been read */
  gboolean done;        /* the last chunk is in out */
  GError *failure;      /* sticky */
  GError *pending;      /* what the reader found at chunk read_index; reported in turn */
  OpenPipe *pipe;       /* for objects of more than one chunk, with a pool */
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

/* Authenticates the sealed chunk @index (@len bytes in *@buf, decrypted in
 * place) and decodes it: on success the plaintext is *@len bytes at *@buf +
 * *@offset, and *@buf may have been swapped for another chunk buffer.
 * Runs in the reader's thread or in a job. */
static gboolean
open_chunk (gpointer cipher, const guint8 *preamble, guint64 index, gboolean last, guint8 **buf,
            gsize *len, gsize *offset, gsize *used, GError **error)
{
  guint8 *sealed = *buf;
  gsize data_len = *len - FS_CRYPTO_TAG_SIZE;
  gsize plain_len;
  guint8 nonce[FS_CRYPTO_GCM_NONCE_SIZE];
  guint8 ad[FS_OBJECT_PREAMBLE_SIZE + 9];

  *used = *len;
  fs_crypto_gcm_nonce (FS_OBJECT_DOMAIN_CHUNK, index, nonce);
  memcpy (ad, preamble, FS_OBJECT_PREAMBLE_SIZE);
  fs_put_u64_be (ad + FS_OBJECT_PREAMBLE_SIZE, index);
  ad[FS_OBJECT_PREAMBLE_SIZE + 8] = last ? 1 : 0;
  if (!fs_crypto_gcm_open (cipher, nonce, ad, sizeof ad, sealed, data_len, sealed + data_len))
    {
      g_set_error (error, FS_CRYPTO_ERROR, FS_CRYPTO_ERROR_CORRUPT,
                   _("Chunk %llu failed authentication (modified, reordered, "
                      "moved from another object, or sealed with another key)"),
                   (unsigned long long)index);
      return FALSE;
    }

  /* Authentic from here on; the checks below keep the format canonical. */
  if (sealed[0] == FS_OBJECT_CHUNK_RAW)
    {
      *offset = 1;
      plain_len = data_len - 1;
    }
  else if (sealed[0] == FS_OBJECT_CHUNK_ZLIB)
    {
      struct libdeflate_decompressor *d = fs_deflate_decompressor_get ();
      guint8 *plain = fs_chunk_buffer_get ();
      size_t in_used = 0;
      size_t out_len = 0;
      enum libdeflate_result rc;

      /* At most one chunk comes out, and the zlib stream must end exactly
       * at the end of the data. */
      rc = libdeflate_zlib_decompress_ex (d, sealed + 1, data_len - 1, plain, FS_OBJECT_CHUNK_SIZE,
                                          &in_used, &out_len);
      fs_deflate_decompressor_put (d);
      if (rc != LIBDEFLATE_SUCCESS || in_used != data_len - 1)
        {
          fs_chunk_buffer_put (plain, FS_OBJECT_CHUNK_SIZE);
          g_set_error (error, FS_CRYPTO_ERROR, FS_CRYPTO_ERROR_CORRUPT,
                       _("Chunk %llu does not inflate to at most one chunk (%s)"),
                       (unsigned long long)index,
                       rc == LIBDEFLATE_SUCCESS             ? _("trailing data")
                       : rc == LIBDEFLATE_INSUFFICIENT_SPACE ? _("more than one chunk")
                                                             : _("invalid zlib data"));
          return FALSE;
        }
      fs_chunk_buffer_put (sealed, *len);
      *buf = plain;
      *used = out_len;
      *offset = 0;
      plain_len = out_len;
    }
  else
    {
      g_set_error (error, FS_CRYPTO_ERROR, FS_CRYPTO_ERROR_CORRUPT,
                   _("Chunk %llu has an unknown encoding %u"), (unsigned long long)index,
                   sealed[0]);
      return FALSE;
    }
  if (!last && plain_len != FS_OBJECT_CHUNK_SIZE)
    {
      g_set_error (error, FS_CRYPTO_ERROR, FS_CRYPTO_ERROR_CORRUPT,
                   _("Chunk %llu is not the last one but holds %zu bytes instead of %u"),
                   (unsigned long long)index, plain_len, FS_OBJECT_CHUNK_SIZE);
      return FALSE;
    }
  if (last && plain_len == 0 && index > 0)
    {
      g_set_error (error, FS_CRYPTO_ERROR, FS_CRYPTO_ERROR_CORRUPT,
                   _("Chunk %llu is an empty last chunk after a full one"),
                   (unsigned long long)index);
      return FALSE;
    }
  *len = plain_len;
  return TRUE;
}

/* ---------- the pipe: objects of more than one chunk ---------- */

static void
open_pipe_unref (OpenPipe *pipe)
{
  if (!g_atomic_int_dec_and_test (&pipe->ref))
    return;
  for (guint i = 0; i < pipe->n_slots; i++)
    {
      OpenSlot *slot = &pipe->slots[i];
      fs_chunk_buffer_put (slot->buf, slot->used);
      fs_crypto_gcm_free (slot->cipher);
      g_clear_error (&slot->error);
    }
  explicit_bzero (pipe->key, sizeof pipe->key);
  g_mutex_clear (&pipe->lock);
  g_cond_clear (&pipe->done);
  g_free (pipe);
}

/* The stream lets go of its pipe: jobs still queued skip their work, the
 * last one to finish frees it. */
static void
open_pipe_abandon (OpenPipe *pipe)
{
  g_atomic_int_set (&pipe->abandoned, 1);
  open_pipe_unref (pipe);
}

static void
open_job_run (FsCryptoJob *job)
{
  OpenSlot *slot = (OpenSlot *)job;
  OpenPipe *pipe = slot->pipe;

  if (!g_atomic_int_get (&pipe->abandoned))
    {
      if (slot->cipher == NULL)
        slot->cipher = fs_crypto_gcm_new (pipe->key);
      if (slot->cipher == NULL)
        g_set_error_literal (&slot->error, FS_CRYPTO_ERROR, FS_CRYPTO_ERROR_FAILED,
                             _("libgcrypt cannot set up AES-256-GCM"));
      else
        open_chunk (slot->cipher, pipe->preamble, slot->index, slot->last, &slot->buf, &slot->len,
                    &slot->offset, &slot->used, &slot->error);
    }
  g_mutex_lock (&pipe->lock);
  slot->state = SLOT_DONE;
  g_cond_broadcast (&pipe->done);
  g_mutex_unlock (&pipe->lock);
  open_pipe_unref (pipe); /* the job's reference: slot and pipe may be gone after this */
}

static OpenPipe *
open_pipe_new (FsOpenStream *self, guint n_slots)
{
  OpenPipe *pipe = g_malloc0 (sizeof (OpenPipe) + n_slots * sizeof (OpenSlot));

  pipe->ref = 1;
  g_mutex_init (&pipe->lock);
  g_cond_init (&pipe->done);
  memcpy (pipe->preamble, self->preamble, sizeof pipe->preamble);
  memcpy (pipe->key, self->key, sizeof pipe->key);
  pipe->n_slots = n_slots;
  for (guint i = 0; i < n_slots; i++)
    {
      pipe->slots[i].job.run = open_job_run;
      pipe->slots[i].pipe = pipe;
    }
  return pipe;
}

/* ---------- the reader's side ---------- */

/* Reads the frame of chunk read_index and its sealed body into a chunk
 * buffer (*@buf, @len bytes); for the last chunk, also checks that nothing
 * follows it. */
static gboolean
read_frame (FsOpenStream *self, guint8 **buf, gsize *len, gboolean *last,
            GCancellable *cancellable, GError **error)
{
  guint64 index = self->read_index;
  guint8 frame_bytes[4];
  gsize got = 0;
  guint32 frame;
  gsize sealed_len;

  *buf = NULL;
  if (!g_input_stream_read_all (self->source, frame_bytes, 4, &got, cancellable, error))
    return FALSE;
  if (got == 0 && index > 0)
    {
      g_set_error (error, FS_CRYPTO_ERROR, FS_CRYPTO_ERROR_CORRUPT,
                   _("Sealed object is truncated: it ends after chunk %llu without a last chunk"),
                   (unsigned long long)index - 1);
      return FALSE;
    }
  if (got != 4)
    {
      g_set_error (error, FS_CRYPTO_ERROR, FS_CRYPTO_ERROR_CORRUPT,
                   _("Sealed object is truncated in the length of chunk %llu"),
                   (unsigned long long)index);
      return FALSE;
    }
  frame = fs_get_u32_be (frame_bytes);
  *last = (frame & FS_OBJECT_FRAME_LAST) != 0;
  sealed_len = frame & FS_OBJECT_FRAME_LEN_MASK;
  if (sealed_len < FS_OBJECT_MIN_SEALED_CHUNK || sealed_len > FS_OBJECT_MAX_SEALED_CHUNK)
    {
      g_set_error (error, FS_CRYPTO_ERROR, FS_CRYPTO_ERROR_CORRUPT,
                   _("Chunk %llu has an impossible length (%zu bytes)"), (unsigned long long)index,
                   sealed_len);
      return FALSE;
    }
  *buf = fs_chunk_buffer_get ();
  *len = sealed_len;
  if (!read_exact (self->source, *buf, sealed_len, _("body"), index, cancellable, error))
    return FALSE;
  if (*last)
    {
      guint8 extra;

      /* Checked before the last bytes are handed out, so a reader that got
       * everything has got an object with nothing appended. */
      if (!g_input_stream_read_all (self->source, &extra, 1, &got, cancellable, error))
        return FALSE;
      if (got != 0)
        {
          g_set_error (error, FS_CRYPTO_ERROR, FS_CRYPTO_ERROR_CORRUPT,
                       _("Sealed object has data after its last chunk (%llu)"),
                       (unsigned long long)index);
          return FALSE;
        }
      self->source_done = TRUE;
    }
  self->read_index++;
  return TRUE;
}

static void
set_out (FsOpenStream *self, guint8 *buf, gsize offset, gsize len, gsize used, gboolean last)
{
  self->out = buf;
  self->out_used = used;
  self->avail = buf + offset;
  self->avail_len = len;
  self->emit_index++;
  self->done = last;
}

/* Opens the chunk in @buf in this thread: a one-chunk object, and every
 * chunk when there is no pool. */
static gboolean
open_here (FsOpenStream *self, guint8 *buf, gsize len, gboolean last, GError **error)
{
  gsize offset = 0;
  gsize used = len;

  if (!open_chunk (self->cipher, self->preamble, self->emit_index, last, &buf, &len, &offset,
                   &used, error))
    {
      fs_chunk_buffer_put (buf, used);
      return FALSE;
    }
  set_out (self, buf, offset, len, used, last);
  return TRUE;
}

static void
queue_chunk (FsOpenStream *self, guint8 *buf, gsize len, gboolean last)
{
  OpenPipe *pipe = self->pipe;
  guint64 index = self->read_index - 1;
  OpenSlot *slot = &pipe->slots[index % pipe->n_slots];

  g_assert (slot->state == SLOT_FREE && slot->buf == NULL);
  slot->buf = buf;
  slot->len = len;
  slot->used = len;
  slot->index = index;
  slot->last = last;
  slot->state = SLOT_BUSY;
  g_atomic_int_inc (&pipe->ref); /* the job's */
  fs_crypto_workers_push (&slot->job);
}

/* Reads frames into free slots and queues them until every slot is in
 * flight, the last one has been read, or the reader found a problem (kept
 * in pending, for when the chunks before it have been handed out). */
static void
fill_pipe (FsOpenStream *self, GCancellable *cancellable)
{
  OpenPipe *pipe = self->pipe;

  while (!self->source_done && self->pending == NULL
         && self->read_index - self->emit_index < pipe->n_slots)
    {
      guint8 *buf = NULL;
      gsize len = 0;
      gboolean last = FALSE;

      if (!read_frame (self, &buf, &len, &last, cancellable, &self->pending))
        {
          fs_chunk_buffer_put (buf, FS_CHUNK_BUFFER_SIZE);
          return;
        }
      queue_chunk (self, buf, len, last);
    }
}

/* Waits for the next chunk in order and makes it the output. */
static gboolean
take_from_pipe (FsOpenStream *self, GError **error)
{
  OpenPipe *pipe = self->pipe;
  OpenSlot *slot = &pipe->slots[self->emit_index % pipe->n_slots];

  if (self->emit_index == self->read_index)
    {
      /* Everything before the problem has been handed out. */
      g_assert (self->pending != NULL);
      g_propagate_error (error, g_steal_pointer (&self->pending));
      return FALSE;
    }
  g_mutex_lock (&pipe->lock);
  while (slot->state != SLOT_DONE)
    g_cond_wait (&pipe->done, &pipe->lock);
  g_mutex_unlock (&pipe->lock);

  slot->state = SLOT_FREE;
  if (slot->error != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&slot->error));
      return FALSE;
    }
  set_out (self, g_steal_pointer (&slot->buf), slot->offset, slot->len, slot->used, slot->last);
  return TRUE;
}

static gboolean
next_chunk (FsOpenStream *self, GCancellable *cancellable, GError **error)
{
  guint8 *buf = NULL;
  gsize len = 0;
  gboolean last = FALSE;

  if (self->pipe != NULL)
    {
      fill_pipe (self, cancellable);
      return take_from_pipe (self, error);
    }
  if (!read_frame (self, &buf, &len, &last, cancellable, error))
    {
      fs_chunk_buffer_put (buf, FS_CHUNK_BUFFER_SIZE);
      return FALSE;
    }
  if (last || fs_crypto_workers_width () == 0)
    return open_here (self, buf, len, last, error);
  /* A longer object: from chunk 0 on, the pool opens the chunks while the
   * reader reads the next ones. */
  self->pipe = open_pipe_new (self, fs_crypto_workers_width () + 1);
  queue_chunk (self, buf, len, last);
  fill_pipe (self, cancellable);
  return take_from_pipe (self, error);
}

static void
release_out (FsOpenStream *self)
{
  if (self->out != NULL)
    fs_chunk_buffer_put (g_steal_pointer (&self->out), self->out_used);
  self->avail = NULL;
  self->avail_len = 0;
}

static gssize
fs_open_stream_read (GInputStream *stream, void *buffer, gsize count, GCancellable *cancellable,
                     GError **error)
{
  FsOpenStream *self = FS_OPEN_STREAM (stream);
  gsize n;

  /* A failed or cancelled stream stays so: its state is no longer known. */
  if (self->failure == NULL)
    g_cancellable_set_error_if_cancelled (cancellable, &self->failure);
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
      release_out (self);
      if (!next_chunk (self, cancellable, &self->failure))
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

static void
fs_open_stream_release (FsOpenStream *self)
{
  if (self->pipe != NULL)
    open_pipe_abandon (g_steal_pointer (&self->pipe));
  release_out (self);
}

static gboolean
fs_open_stream_close (GInputStream *stream, GCancellable *cancellable, GError **error)
{
  FsOpenStream *self = FS_OPEN_STREAM (stream);

  fs_open_stream_release (self);
  return g_input_stream_close (self->source, cancellable, error);
}

static void
fs_open_stream_finalize (GObject *object)
{
  FsOpenStream *self = FS_OPEN_STREAM (object);

  fs_open_stream_release (self);
  g_clear_object (&self->source);
  g_clear_pointer (&self->cipher, fs_crypto_gcm_free);
  explicit_bzero (self->key, sizeof self->key);
  g_clear_error (&self->failure);
  g_clear_error (&self->pending);
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

  fs_crypto_object_key (content_key, self->preamble + 8, self->key);
  self->cipher = fs_crypto_gcm_new (self->key);
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

  if (header != NULL)
    *header = g_bytes_new (buf, header_len);
  explicit_bzero (buf, sealed_len);
  return G_INPUT_STREAM (g_steal_pointer (&self));
}
