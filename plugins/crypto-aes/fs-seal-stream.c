/* FsSealStream: seals an object (preamble, header, 1 MiB chunks) while it is
 * read. The format is in docs/format.md. Closing it closes the source.
 *
 * The source is read in the reader's thread, one chunk at a time. Chunk 0 is
 * compressed and sealed right there: it decides compression for the object,
 * and an object of one chunk (most files) never touches another thread. The
 * chunks after it are compressed and sealed by the plugin-wide worker pool
 * (fs-crypto-workers.c) in the slots of a SealPipe, one more than the pool
 * has threads (so that a thread that is done finds the next chunk queued
 * while the reader hands out and reads), and handed out strictly in order.
 * Memory is about threads + 2 chunks per stream. The pipe is shared with
 * the jobs in flight by reference counting, so closing or dropping the
 * stream never waits for them. */
#include "config.h"

#include <string.h>

#include <glib/gi18n-lib.h>

#include "fs-crypto-format.h"
#include "fs-crypto-workers.h"
#include "fs-crypto.h"
#include "fs-error.h"
#include "fs-seal-stream.h"
#include "fs-stream-length.h"

/* Where the plaintext of a chunk goes in a chunk buffer: after the frame
 * (u32) and the encoding byte, so that it is sealed in place. */
#define DATA_OFFSET 5

typedef enum {
  SLOT_FREE,
  SLOT_BUSY, /* a job owns it */
  SLOT_DONE,
} SlotState;

typedef struct _SealPipe SealPipe;

typedef struct {
  FsCryptoJob job; /* first: the pool runs it */
  SealPipe *pipe;
  guint8 *buf;     /* plaintext at DATA_OFFSET while busy, the frame once done */
  gsize len;       /* plaintext bytes while busy, frame bytes once done */
  gsize used;      /* bytes of buf to wipe */
  guint64 index;
  gboolean last;
  gpointer cipher; /* this slot's own: jobs of one stream run at once */
  GError *error;
  SlotState state; /* under pipe->lock */
} SealSlot;

struct _SealPipe {
  gint ref;
  gint abandoned; /* atomic: the stream is gone, queued jobs skip their work */
  GMutex lock;
  GCond done;
  gboolean compress;
  guint8 preamble[FS_OBJECT_PREAMBLE_SIZE];
  guint8 key[FS_CRYPTO_SUBKEY_SIZE];
  guint n_slots;
  SealSlot slots[];
};

struct _FsSealStream {
  GInputStream parent_instance;

  GInputStream *source;
  gpointer cipher; /* the reader's: header, chunk 0, and every chunk without a pool */
  guint8 preamble[FS_OBJECT_PREAMBLE_SIZE];
  guint8 key[FS_CRYPTO_SUBKEY_SIZE]; /* the object key, for the pipe */

  guint8 *header; /* preamble + sealed header frame, until it has been read */
  gsize header_len; /* its length */
  guint8 *out;    /* what read() hands out: the header, then one chunk frame */
  gsize out_len;
  gsize out_pos;
  guint8 *frame; /* the chunk buffer behind out, if it is a chunk */

  gboolean compress;    /* chunk 0 shrank: try every later chunk */
  guint64 read_index;   /* next chunk to read from the source */
  guint64 emit_index;   /* next chunk to hand out */
  gboolean source_done; /* the last chunk has been read */
  gboolean have_carry;  /* one byte read ahead to learn the chunk was not the last */
  guint8 carry;
  gboolean done;   /* the last chunk is in out */
  GError *failure; /* sticky: a failed stream keeps failing */
  SealPipe *pipe;  /* from chunk 1 on, with a pool */
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

/* Turns the @n bytes of plaintext at *@buf + DATA_OFFSET into the frame of
 * chunk @index: compressed (zlib format, fs_chunk_deflate()) when
 * @try_compress and it shrinks, then sealed. *@buf may be swapped for another
 * chunk buffer. Runs in the reader's thread or in a job. */
static gboolean
seal_chunk (gpointer cipher, const guint8 *preamble, guint64 index, gboolean last,
            gboolean try_compress, guint8 **buf, gsize n, gsize *frame_len, gsize *used,
            gboolean *compressed, GError **error)
{
  guint8 *frame = *buf;
  gsize data_len = n;
  guint8 flag = FS_OBJECT_CHUNK_RAW;
  guint8 nonce[FS_CRYPTO_GCM_NONCE_SIZE];
  guint8 ad[FS_OBJECT_PREAMBLE_SIZE + 9];

  *used = DATA_OFFSET + n;
  if (n > 0 && try_compress)
    {
      guint8 *z = fs_chunk_buffer_get ();
      /* Room for less than n bytes: 0 means it does not shrink. */
      gsize zlen = fs_chunk_deflate (frame + DATA_OFFSET, n, z + DATA_OFFSET, n - 1);

      if (zlen > 0)
        {
          fs_chunk_buffer_put (frame, DATA_OFFSET + n);
          frame = z;
          *buf = z;
          data_len = zlen;
          *used = DATA_OFFSET + zlen;
          flag = FS_OBJECT_CHUNK_ZLIB;
        }
      else
        fs_chunk_buffer_put (z, DATA_OFFSET + n);
    }
  if (compressed != NULL)
    *compressed = flag == FS_OBJECT_CHUNK_ZLIB;

  frame[4] = flag;
  fs_crypto_gcm_nonce (FS_OBJECT_DOMAIN_CHUNK, index, nonce);
  chunk_ad (preamble, index, last, ad);
  if (!fs_crypto_gcm_seal (cipher, nonce, ad, sizeof ad, frame + 4, 1 + data_len,
                           frame + DATA_OFFSET + data_len))
    {
      g_set_error (error, FS_CRYPTO_ERROR, FS_CRYPTO_ERROR_FAILED,
                   _("AES-GCM failed on chunk %llu"), (unsigned long long)index);
      return FALSE;
    }
  fs_put_u32_be (frame, (1 + data_len + FS_CRYPTO_TAG_SIZE) | (last ? FS_OBJECT_FRAME_LAST : 0));
  *frame_len = DATA_OFFSET + data_len + FS_CRYPTO_TAG_SIZE;
  *used = MAX (*used, *frame_len);
  return TRUE;
}

/* ---------- the pipe: chunks 1 and later, sealed by the pool ---------- */

static void
seal_pipe_unref (SealPipe *pipe)
{
  if (!g_atomic_int_dec_and_test (&pipe->ref))
    return;
  for (guint i = 0; i < pipe->n_slots; i++)
    {
      SealSlot *slot = &pipe->slots[i];
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
seal_pipe_abandon (SealPipe *pipe)
{
  g_atomic_int_set (&pipe->abandoned, 1);
  seal_pipe_unref (pipe);
}

static void
seal_job_run (FsCryptoJob *job)
{
  SealSlot *slot = (SealSlot *)job;
  SealPipe *pipe = slot->pipe;

  if (!g_atomic_int_get (&pipe->abandoned))
    {
      gsize frame_len = 0;

      if (slot->cipher == NULL)
        slot->cipher = fs_crypto_gcm_new (pipe->key);
      if (slot->cipher == NULL)
        g_set_error_literal (&slot->error, FS_CRYPTO_ERROR, FS_CRYPTO_ERROR_FAILED,
                             _("libgcrypt cannot set up AES-256-GCM"));
      else if (seal_chunk (slot->cipher, pipe->preamble, slot->index, slot->last, pipe->compress,
                           &slot->buf, slot->len, &frame_len, &slot->used, NULL, &slot->error))
        slot->len = frame_len;
    }
  g_mutex_lock (&pipe->lock);
  slot->state = SLOT_DONE;
  g_cond_broadcast (&pipe->done);
  g_mutex_unlock (&pipe->lock);
  seal_pipe_unref (pipe); /* the job's reference: slot and pipe may be gone after this */
}

static SealPipe *
seal_pipe_new (FsSealStream *self, guint n_slots)
{
  SealPipe *pipe = g_malloc0 (sizeof (SealPipe) + n_slots * sizeof (SealSlot));

  pipe->ref = 1;
  g_mutex_init (&pipe->lock);
  g_cond_init (&pipe->done);
  pipe->compress = self->compress;
  memcpy (pipe->preamble, self->preamble, sizeof pipe->preamble);
  memcpy (pipe->key, self->key, sizeof pipe->key);
  pipe->n_slots = n_slots;
  for (guint i = 0; i < n_slots; i++)
    {
      pipe->slots[i].job.run = seal_job_run;
      pipe->slots[i].pipe = pipe;
    }
  return pipe;
}

/* ---------- the reader's side ---------- */

/* Reads the next chunk of plaintext (up to 1 MiB) into @data; @last tells
 * whether the source ends after it (one byte of read-ahead when it is full). */
static gboolean
read_plain (FsSealStream *self, guint8 *data, gsize *len, gboolean *last,
            GCancellable *cancellable, GError **error)
{
  gsize n = 0;
  gsize got = 0;
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
  *len = n;
  *last = n < FS_OBJECT_CHUNK_SIZE;
  if (!*last)
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
        *last = TRUE;
    }
  self->read_index++;
  self->source_done = *last;
  return TRUE;
}

static void
set_out_frame (FsSealStream *self, guint8 *frame, gsize len, gboolean last)
{
  self->frame = frame;
  self->out = frame;
  self->out_len = len;
  self->out_pos = 0;
  self->emit_index++;
  self->done = last;
}

/* Raw chunks make the object's length a function of the plaintext's: when
 * the source's length was announced, announce ours (fs-stream-length.h), so
 * that storage can send the object while it is being sealed. */
static void
announce_raw_length (FsSealStream *self)
{
  guint64 plain;
  guint64 chunks;

  if (!fs_stream_get_length (self->source, &plain))
    return;
  chunks = MAX (1, (plain + FS_OBJECT_CHUNK_SIZE - 1) / FS_OBJECT_CHUNK_SIZE);
  fs_stream_set_length (G_INPUT_STREAM (self),
                        self->header_len + plain + chunks * (DATA_OFFSET + FS_CRYPTO_TAG_SIZE));
}

/* Reads and seals the next chunk in this thread: chunk 0 (which decides
 * compression for the object), and every chunk when there is no pool. */
static gboolean
seal_here (FsSealStream *self, GCancellable *cancellable, GError **error)
{
  guint8 *buf = fs_chunk_buffer_get ();
  guint64 index = self->read_index;
  gsize n = 0;
  gsize frame_len = 0;
  gsize used = 0;
  gboolean last = FALSE;
  gboolean compressed = FALSE;

  if (!read_plain (self, buf + DATA_OFFSET, &n, &last, cancellable, error))
    {
      fs_chunk_buffer_put (buf, FS_CHUNK_BUFFER_SIZE);
      return FALSE;
    }
  /* Chunk 0 is the probe: data that does not shrink there (media, archives,
   * encrypted files) is stored raw without paying for compression again. */
  if (!seal_chunk (self->cipher, self->preamble, index, last, index == 0 || self->compress, &buf,
                   n, &frame_len, &used, &compressed, error))
    {
      fs_chunk_buffer_put (buf, used);
      return FALSE;
    }
  if (index == 0)
    {
      self->compress = compressed;
      if (!compressed)
        announce_raw_length (self);
    }
  set_out_frame (self, buf, frame_len, last);
  return TRUE;
}

/* Reads chunks from the source into free slots and queues them, until
 * every slot is in flight or the source has ended. */
static gboolean
fill_pipe (FsSealStream *self, GCancellable *cancellable, GError **error)
{
  SealPipe *pipe = self->pipe;

  while (!self->source_done && self->read_index - self->emit_index < pipe->n_slots)
    {
      SealSlot *slot = &pipe->slots[self->read_index % pipe->n_slots];
      guint64 index = self->read_index;
      gsize n = 0;
      gboolean last = FALSE;

      g_assert (slot->state == SLOT_FREE && slot->buf == NULL);
      slot->buf = fs_chunk_buffer_get ();
      slot->used = FS_CHUNK_BUFFER_SIZE;
      if (!read_plain (self, slot->buf + DATA_OFFSET, &n, &last, cancellable, error))
        return FALSE;
      slot->used = DATA_OFFSET + n;
      slot->len = n;
      slot->index = index;
      slot->last = last;
      slot->state = SLOT_BUSY;
      g_atomic_int_inc (&pipe->ref); /* the job's */
      fs_crypto_workers_push (&slot->job);
    }
  return TRUE;
}

/* Waits for the next chunk in order and makes it the output. */
static gboolean
take_from_pipe (FsSealStream *self, GError **error)
{
  SealPipe *pipe = self->pipe;
  SealSlot *slot = &pipe->slots[self->emit_index % pipe->n_slots];

  g_assert (self->emit_index < self->read_index);
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
  set_out_frame (self, g_steal_pointer (&slot->buf), slot->len, slot->last);
  return TRUE;
}

static gboolean
next_frame (FsSealStream *self, GCancellable *cancellable, GError **error)
{
  if (self->read_index == 0 || self->pipe == NULL)
    {
      if (!seal_here (self, cancellable, error))
        return FALSE;
      if (self->done || fs_crypto_workers_width () == 0)
        return TRUE;
      /* More than one chunk: from here on the pool seals, and it can start
       * while chunk 0 is being read. */
      self->pipe = seal_pipe_new (self, fs_crypto_workers_width () + 1);
      return fill_pipe (self, cancellable, error);
    }
  return fill_pipe (self, cancellable, error) && take_from_pipe (self, error);
}

static void
release_frame (FsSealStream *self)
{
  if (self->frame != NULL)
    fs_chunk_buffer_put (g_steal_pointer (&self->frame), self->out_len);
  g_clear_pointer (&self->header, g_free);
  self->out = NULL;
  self->out_len = self->out_pos = 0;
}

static gssize
fs_seal_stream_read (GInputStream *stream, void *buffer, gsize count, GCancellable *cancellable,
                     GError **error)
{
  FsSealStream *self = FS_SEAL_STREAM (stream);
  gsize n;

  /* A failed or cancelled stream stays so: its state is no longer known. */
  if (self->failure == NULL)
    g_cancellable_set_error_if_cancelled (cancellable, &self->failure);
  if (self->failure != NULL)
    {
      g_propagate_error (error, g_error_copy (self->failure));
      return -1;
    }
  if (self->out_pos == self->out_len)
    {
      if (self->done || count == 0)
        return 0;
      release_frame (self);
      if (!next_frame (self, cancellable, &self->failure))
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

static void
fs_seal_stream_release (FsSealStream *self)
{
  if (self->pipe != NULL)
    seal_pipe_abandon (g_steal_pointer (&self->pipe));
  release_frame (self);
}

static gboolean
fs_seal_stream_close (GInputStream *stream, GCancellable *cancellable, GError **error)
{
  FsSealStream *self = FS_SEAL_STREAM (stream);

  fs_seal_stream_release (self);
  return g_input_stream_close (self->source, cancellable, error);
}

static void
fs_seal_stream_finalize (GObject *object)
{
  FsSealStream *self = FS_SEAL_STREAM (object);

  fs_seal_stream_release (self);
  g_clear_object (&self->source);
  g_clear_pointer (&self->cipher, fs_crypto_gcm_free);
  explicit_bzero (self->key, sizeof self->key);
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

  fs_crypto_object_key (content_key, nonce, self->key);
  self->cipher = fs_crypto_gcm_new (self->key);
  if (self->cipher == NULL)
    {
      g_set_error_literal (error, FS_CRYPTO_ERROR, FS_CRYPTO_ERROR_FAILED,
                           _("libgcrypt cannot set up AES-256-GCM"));
      return NULL;
    }

  /* What is read first: preamble and sealed header. */
  self->out_len = FS_OBJECT_PREAMBLE_SIZE + 4 + header_len + FS_CRYPTO_TAG_SIZE;
  self->header = g_malloc (self->out_len);
  self->header_len = self->out_len;
  self->out = self->header;
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
  self->out_pos = 0;
  return G_INPUT_STREAM (g_steal_pointer (&self));
}
