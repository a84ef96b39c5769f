/* pipeline-bench: limit line (a) of bench/run. Measures, in MB/s (10^6 bytes
 * of plaintext per second), the per-chunk pipeline of the object format
 * (docs/format.md), on one thread and on N threads:
 *
 *   seal = SHA-256 of the plaintext + ISA-L igzip level 2, zlib format (with
 *          the format's rule: the first chunk of an object is a probe; if it
 *          does not shrink, the rest of the object is stored raw) +
 *          AES-256-GCM seal: what the crypto-aes plugin does per chunk
 *   open = AES-256-GCM open + libdeflate inflate (compressed chunks, made by
 *          igzip): what the plugin does per chunk (the engine does not hash
 *          downloads)
 *   seal-libdeflate = seal with libdeflate level 1 (what the plugin used
 *          before igzip), for comparison
 *   seal-zlib, open-zlib = the same with zlib's compress2 level 1 /
 *          uncompress (what the plugin used before libdeflate), for comparison
 *
 * and the single-thread speed of each step alone. The plaintext is the first
 * --mib MiB of each FILE, cut into 1 MiB chunks; an object is --object-mib
 * chunks (so random data pays compression on one chunk in that many, as
 * FolderSync does). Each figure is the best of --repeat runs of --seconds (the
 * steps alone: half that), so that other load on the machine disturbs it less.
 *
 * seal-plugin and open-plugin go through the crypto-aes plugin itself
 * (FsSealStream and FsOpenStream on its worker pool; the plugin of this build
 * tree, or FOLDERSYNC_PLUGIN_DIR's): the --mib MiB as one object, sealed with
 * SHA-256 of the plaintext in the reading thread as the engine does; "threads" is the pool's
 * size (FOLDERSYNC_CRYPTO_THREADS, default nproc; 0 is reported as 1).
 *
 * Output: one JSON object per line on stdout.
 *
 *   pipeline-bench [--seconds S] [--repeat R] [--threads N] [--mib M] [--object-mib K]
 *                  [--ops NAME,...] LABEL=FILE...
 *
 * --ops limits the run to those steps and pipeline lines (e.g.
 * --ops seal-plugin,open-plugin --mib 256: a 256 MiB object through the plugin).
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <gcrypt.h>
#include <gio/gio.h>
#include <isa-l/igzip_lib.h>
#include <libdeflate.h>
#include <zlib.h>

#include "fs-crypto.h"
#include "fs-plugin-loader.h"

#define USAGE                                                                            \
  "usage: pipeline-bench [--seconds S] [--repeat R] [--threads N] [--mib M] [--object-mib K] " \
  "[--ops NAME,...] LABEL=FILE..."
#define CHUNK (1024 * 1024)
#define TAG 16
#define AD_LEN 33 /* preamble (24) + u64 index + u8 last, as the format */

typedef enum {
  OP_SEAL,
  OP_SEAL_LIBDEFLATE,
  OP_SEAL_ZLIB,
  OP_OPEN,
  OP_OPEN_ZLIB,
  OP_SEAL_PLUGIN,
  OP_OPEN_PLUGIN
} Op;

/* The encoder of a seal line (opening is libdeflate's, or zlib's). */
typedef enum { CODEC_IGZIP, CODEC_LIBDEFLATE, CODEC_ZLIB } Codec;

typedef struct {
  const uint8_t *plain; /* n_chunks chunks of plaintext */
  size_t n_chunks;
  uint8_t **sealed;     /* per chunk: encoding byte + data + tag (for open) */
  size_t *sealed_len;
  uint8_t **stored;     /* per chunk: encoding byte + data before sealing (for inflate) */
  int object_chunks;
  void *plugin_object;  /* GBytes: the data sealed as one object by the plugin (for open) */
} Data;

typedef struct {
  const Data *data;
  Op op;
  double seconds;
  pthread_barrier_t *barrier;
  uint64_t bytes; /* out */
  int failed;     /* out */
} Worker;

static double
now (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
die (const char *what)
{
  fprintf (stderr, "pipeline-bench: %s\n", what);
  exit (1);
}

static void
put_u64_be (uint8_t *p, uint64_t v)
{
  for (int i = 7; i >= 0; i--, v >>= 8)
    p[i] = (uint8_t)v;
}

static void
chunk_nonce_ad (uint64_t index, int last, uint8_t nonce[12], uint8_t ad[AD_LEN])
{
  memset (nonce, 0, 12);
  nonce[3] = 1; /* domain 1: chunks */
  put_u64_be (nonce + 4, index);
  memset (ad, 0x5a, 24); /* stands for the preamble */
  put_u64_be (ad + 24, index);
  ad[32] = (uint8_t)last;
}

static gcry_cipher_hd_t
new_cipher (void)
{
  static const uint8_t key[32] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };
  gcry_cipher_hd_t hd;
  if (gcry_cipher_open (&hd, GCRY_CIPHER_AES256, GCRY_CIPHER_MODE_GCM, 0) != 0
      || gcry_cipher_setkey (hd, key, sizeof key) != 0)
    die ("libgcrypt cannot set up AES-256-GCM");
  return hd;
}

static int
gcm_seal (gcry_cipher_hd_t hd, uint64_t index, int last, uint8_t *buf, size_t len, uint8_t *tag)
{
  uint8_t nonce[12], ad[AD_LEN];
  chunk_nonce_ad (index, last, nonce, ad);
  return gcry_cipher_setiv (hd, nonce, 12) == 0 && gcry_cipher_authenticate (hd, ad, AD_LEN) == 0
         && gcry_cipher_final (hd) == 0 && gcry_cipher_encrypt (hd, buf, len, NULL, 0) == 0
         && gcry_cipher_gettag (hd, tag, TAG) == 0;
}

static int
gcm_open (gcry_cipher_hd_t hd, uint64_t index, int last, uint8_t *buf, size_t len,
          const uint8_t *tag)
{
  uint8_t nonce[12], ad[AD_LEN];
  chunk_nonce_ad (index, last, nonce, ad);
  return gcry_cipher_setiv (hd, nonce, 12) == 0 && gcry_cipher_authenticate (hd, ad, AD_LEN) == 0
         && gcry_cipher_final (hd) == 0 && gcry_cipher_decrypt (hd, buf, len, NULL, 0) == 0
         && gcry_cipher_checktag (hd, tag, TAG) == 0;
}

/* Compressor state of one thread: igzip level 2 (as the plugin), libdeflate
 * level 1 or zlib's compress2 level 1; libdeflate or zlib to inflate. */
typedef struct {
  Codec codec;
  uint8_t *igzip_level_buf;
  struct libdeflate_compressor *ld;
  struct libdeflate_decompressor *ldd;
} Compressor;

#define IGZIP_LEVEL 2
#define IGZIP_LEVEL_BUF_SIZE ISAL_DEF_LVL2_DEFAULT

static Codec
codec_of_op (Op op)
{
  if (op == OP_SEAL_ZLIB || op == OP_OPEN_ZLIB)
    return CODEC_ZLIB;
  return op == OP_SEAL_LIBDEFLATE ? CODEC_LIBDEFLATE : CODEC_IGZIP;
}

static void
compressor_init (Compressor *c, Codec codec)
{
  c->codec = codec;
  c->igzip_level_buf = malloc (IGZIP_LEVEL_BUF_SIZE);
  c->ld = libdeflate_alloc_compressor (1);
  c->ldd = libdeflate_alloc_decompressor ();
  if (c->igzip_level_buf == NULL || c->ld == NULL || c->ldd == NULL)
    die ("cannot allocate the compressors");
}

static void
compressor_clear (Compressor *c)
{
  free (c->igzip_level_buf);
  libdeflate_free_compressor (c->ld);
  libdeflate_free_decompressor (c->ldd);
}

/* Returns the compressed size, 0 when it did not fit in @dst_size. */
static size_t
compress_chunk (Compressor *c, uint8_t *dst, size_t dst_size, const uint8_t *src, size_t n)
{
  if (c->codec == CODEC_IGZIP)
    {
      struct isal_zstream z;
      int rc;

      isal_deflate_stateless_init (&z);
      z.gzip_flag = IGZIP_ZLIB;
      z.level = IGZIP_LEVEL;
      z.level_buf = c->igzip_level_buf;
      z.level_buf_size = IGZIP_LEVEL_BUF_SIZE;
      z.next_in = (uint8_t *)src;
      z.avail_in = n;
      z.end_of_stream = 1;
      z.flush = NO_FLUSH;
      z.next_out = dst;
      z.avail_out = dst_size;
      rc = isal_deflate_stateless (&z);
      if (rc != COMP_OK && rc != STATELESS_OVERFLOW)
        die ("igzip failed");
      return rc == COMP_OK ? z.total_out : 0;
    }
  if (c->codec == CODEC_LIBDEFLATE)
    return libdeflate_zlib_compress (c->ld, src, n, dst, dst_size);
  uLongf zlen = dst_size;
  if (compress2 (dst, &zlen, src, n, 1) != Z_OK)
    die ("compress2 failed");
  return zlen;
}

/* Inflates @n bytes into exactly one chunk at @dst; 0 on failure. */
static int
inflate_chunk (Compressor *c, uint8_t *dst, const uint8_t *src, size_t n)
{
  if (c->codec != CODEC_ZLIB)
    {
      size_t in_used = 0, out_len = 0;
      return libdeflate_zlib_decompress_ex (c->ldd, src, n, dst, CHUNK, &in_used, &out_len)
               == LIBDEFLATE_SUCCESS
             && in_used == n && out_len == CHUNK;
    }
  uLongf plain_len = CHUNK;
  uLong src_len = n;
  return uncompress2 (dst, &plain_len, src, &src_len) == Z_OK && plain_len == CHUNK
         && src_len == n;
}

/* Encodes chunk @i of the data as the format says (hash it, then the
 * encoding byte + raw or zlib data) into @out (1 + CHUNK + TAG bytes); @mode
 * is the object's compression state (0 probe, 1 on, 2 off). Returns 1 + data. */
static size_t
encode_chunk (const Data *d, size_t i, int *mode, gcry_md_hd_t md, Compressor *c, uint8_t *out,
              uint8_t *zbuf, size_t zbuf_size)
{
  const uint8_t *src = d->plain + i * CHUNK;
  size_t len = CHUNK;
  uint8_t enc = 0;

  gcry_md_write (md, src, CHUNK);
  if (*mode != 2)
    {
      /* As the plugin: room for less than the chunk (zlib gets compressBound). */
      size_t room = c->codec == CODEC_ZLIB ? zbuf_size : CHUNK - 1;
      size_t zlen = compress_chunk (c, zbuf, room, src, CHUNK);
      if (zlen > 0 && zlen < CHUNK)
        {
          memcpy (out + 1, zbuf, zlen);
          len = zlen;
          enc = 1;
        }
      if (*mode == 0)
        *mode = enc ? 1 : 2;
    }
  if (!enc)
    memcpy (out + 1, src, CHUNK);
  out[0] = enc;
  return 1 + len;
}

/* Encodes and seals chunk @i; returns the sealed length (1 + data + TAG). */
static size_t
seal_chunk (const Data *d, size_t i, uint64_t index, int last, int *mode, gcry_md_hd_t md,
            Compressor *c, gcry_cipher_hd_t hd, uint8_t *out, uint8_t *zbuf, size_t zbuf_size)
{
  size_t len = encode_chunk (d, i, mode, md, c, out, zbuf, zbuf_size);
  if (!gcm_seal (hd, index, last, out, len, out + len))
    die ("AES-GCM seal failed");
  return len + TAG;
}

static void *
run_worker (void *arg)
{
  Worker *w = arg;
  const Data *d = w->data;
  gcry_cipher_hd_t hd = new_cipher ();
  gcry_md_hd_t md;
  Compressor comp;
  size_t zbuf_size = compressBound (CHUNK);
  uint8_t *zbuf = malloc (zbuf_size);
  uint8_t *out = malloc (1 + CHUNK + TAG);
  uint8_t *plain = malloc (CHUNK);
  size_t i = 0;
  uint64_t index = 0;
  int mode = 0;
  double end;

  compressor_init (&comp, codec_of_op (w->op));
  if (zbuf == NULL || out == NULL || plain == NULL || gcry_md_open (&md, GCRY_MD_SHA256, 0) != 0)
    die ("out of memory");
  pthread_barrier_wait (w->barrier);
  end = now () + w->seconds;
  while (now () < end)
    {
      int last = (int)(index + 1) == d->object_chunks;
      if (w->op == OP_OPEN || w->op == OP_OPEN_ZLIB)
        {
          /* The sealed chunks were made with index = chunk number mod object. */
          size_t len = d->sealed_len[i];
          uint64_t idx = i % (size_t)d->object_chunks;
          int lst = (int)(idx + 1) == d->object_chunks || i + 1 == d->n_chunks;
          memcpy (out, d->sealed[i], len);
          if (!gcm_open (hd, idx, lst, out, len - TAG, out + len - TAG))
            {
              w->failed = 1;
              break;
            }
          if (out[0] == 1)
            {
              if (!inflate_chunk (&comp, plain, out + 1, len - TAG - 1))
                {
                  w->failed = 1;
                  break;
                }
            }
        }
      else
        seal_chunk (d, i, index, last, &mode, md, &comp, hd, out, zbuf, zbuf_size);
      w->bytes += CHUNK;
      i = (i + 1) % d->n_chunks;
      if (last)
        {
          index = 0;
          mode = 0;
          gcry_md_reset (md);
        }
      else
        index++;
    }
  (void)gcry_md_read (md, GCRY_MD_SHA256);
  gcry_md_close (md);
  gcry_cipher_close (hd);
  compressor_clear (&comp);
  free (zbuf);
  free (out);
  free (plain);
  return NULL;
}

static double
run_op (const Data *d, Op op, int threads, double seconds)
{
  pthread_t *tids = calloc (threads, sizeof *tids);
  Worker *ws = calloc (threads, sizeof *ws);
  pthread_barrier_t barrier;
  uint64_t bytes = 0;
  double t0, t1;

  pthread_barrier_init (&barrier, NULL, threads + 1);
  for (int t = 0; t < threads; t++)
    {
      ws[t] = (Worker){ .data = d, .op = op, .seconds = seconds, .barrier = &barrier };
      if (pthread_create (&tids[t], NULL, run_worker, &ws[t]) != 0)
        die ("pthread_create failed");
    }
  pthread_barrier_wait (&barrier);
  t0 = now ();
  for (int t = 0; t < threads; t++)
    {
      pthread_join (tids[t], NULL);
      if (ws[t].failed)
        die ("a chunk did not open: the benchmark is broken");
      bytes += ws[t].bytes;
    }
  t1 = now ();
  pthread_barrier_destroy (&barrier);
  free (tids);
  free (ws);
  return bytes / (t1 - t0) / 1e6;
}

/* Single-thread speed of one step alone, in MB/s of input. */
typedef enum {
  STEP_SHA256,
  STEP_ZLIB1,
  STEP_LIBDEFLATE1,
  STEP_IGZIP2,
  STEP_GCM,
  STEP_INFLATE,
  STEP_INFLATE_ZLIB
} Step;

static double
run_step (const Data *d, Step step, double seconds)
{
  gcry_cipher_hd_t hd = new_cipher ();
  size_t zbuf_size = compressBound (CHUNK);
  uint8_t *zbuf = malloc (zbuf_size);
  uint8_t *buf = malloc (CHUNK + TAG);
  uint8_t digest[32];
  uint64_t bytes = 0;
  size_t i = 0;
  double t0 = now (), t = t0;
  Compressor comp;

  compressor_init (&comp, step == STEP_ZLIB1 || step == STEP_INFLATE_ZLIB ? CODEC_ZLIB
                          : step == STEP_LIBDEFLATE1 ? CODEC_LIBDEFLATE
                                                     : CODEC_IGZIP);
  while ((t = now ()) < t0 + seconds)
    {
      const uint8_t *src = d->plain + i * CHUNK;
      switch (step)
        {
        case STEP_SHA256:
          gcry_md_hash_buffer (GCRY_MD_SHA256, digest, src, CHUNK);
          break;
        case STEP_ZLIB1:
        case STEP_LIBDEFLATE1:
        case STEP_IGZIP2:
          compress_chunk (&comp, zbuf, zbuf_size, src, CHUNK);
          break;
        case STEP_GCM:
          memcpy (buf, src, CHUNK);
          if (!gcm_seal (hd, i, 0, buf, CHUNK, buf + CHUNK))
            die ("AES-GCM seal failed");
          break;
        case STEP_INFLATE:
        case STEP_INFLATE_ZLIB:
          if (d->stored[i][0] == 1)
            {
              if (!inflate_chunk (&comp, buf, d->stored[i] + 1, d->sealed_len[i] - 1 - TAG))
                die ("inflate failed");
            }
          else
            memcpy (buf, d->stored[i] + 1, CHUNK); /* a raw chunk: nothing to inflate */
          break;
        }
      bytes += CHUNK;
      i = (i + 1) % d->n_chunks;
    }
  compressor_clear (&comp);
  gcry_cipher_close (hd);
  free (zbuf);
  free (buf);
  return bytes / (t - t0) / 1e6;
}

static double
best_op (const Data *d, Op op, int threads, double seconds, int repeat)
{
  double best = 0;
  for (int r = 0; r < repeat; r++)
    {
      double v = run_op (d, op, threads, seconds);
      best = v > best ? v : best;
    }
  return best;
}

static double
best_step (const Data *d, Step step, double seconds, int repeat)
{
  double best = 0;
  for (int r = 0; r < repeat; r++)
    {
      double v = run_step (d, step, seconds);
      best = v > best ? v : best;
    }
  return best;
}

/* Seals every chunk once, as objects of object_chunks chunks, for open. */
static void
seal_all (Data *d, int object_chunks)
{
  gcry_cipher_hd_t hd = new_cipher ();
  gcry_md_hd_t md;
  Compressor comp;
  size_t zbuf_size = compressBound (CHUNK);
  uint8_t *zbuf = malloc (zbuf_size);
  int mode = 0;

  compressor_init (&comp, CODEC_IGZIP); /* what the plugin writes */
  if (gcry_md_open (&md, GCRY_MD_SHA256, 0) != 0)
    die ("SHA-256 is not available");
  for (size_t i = 0; i < d->n_chunks; i++)
    {
      uint64_t idx = i % (size_t)object_chunks;
      int last = (int)idx + 1 == object_chunks || i + 1 == d->n_chunks;
      if (idx == 0)
        mode = 0;
      size_t len;
      d->sealed[i] = malloc (1 + CHUNK + TAG);
      d->stored[i] = malloc (1 + CHUNK);
      if (d->sealed[i] == NULL || d->stored[i] == NULL)
        die ("out of memory");
      len = encode_chunk (d, i, &mode, md, &comp, d->sealed[i], zbuf, zbuf_size);
      memcpy (d->stored[i], d->sealed[i], len);
      if (!gcm_seal (hd, idx, last, d->sealed[i], len, d->sealed[i] + len))
        die ("AES-GCM seal failed");
      d->sealed_len[i] = len + TAG;
    }
  gcry_md_close (md);
  gcry_cipher_close (hd);
  compressor_clear (&comp);
  free (zbuf);
}

static void
load (const char *file, size_t mib, int object_chunks, int need_sealed, Data *d)
{
  FILE *f = fopen (file, "rb");
  uint8_t *buf;
  size_t n;

  if (f == NULL)
    {
      fprintf (stderr, "pipeline-bench: %s: %s\n", file, strerror (errno));
      exit (1);
    }
  buf = malloc (mib * CHUNK);
  if (buf == NULL)
    die ("out of memory");
  n = fread (buf, 1, mib * CHUNK, f);
  fclose (f);
  if (n < CHUNK)
    die ("a data file must hold at least 1 MiB");
  d->plain = buf;
  d->n_chunks = n / CHUNK;
  d->object_chunks = object_chunks;
  d->sealed = calloc (d->n_chunks, sizeof *d->sealed);
  d->sealed_len = calloc (d->n_chunks, sizeof *d->sealed_len);
  d->stored = calloc (d->n_chunks, sizeof *d->stored);

  if (need_sealed)
    seal_all (d, object_chunks);
}

/* ---------- through the plugin: FsSealStream / FsOpenStream ---------- */

/* The plaintext of an object as the engine hands it to the plugin: read from
 * memory with SHA-256 computed on the way (the engine's FsHashInputStream). */
typedef struct {
  GInputStream parent_instance;
  const uint8_t *data;
  size_t len, pos;
  gcry_md_hd_t md;
} BenchSource;
typedef GInputStreamClass BenchSourceClass;

static GType bench_source_get_type (void);
G_DEFINE_TYPE (BenchSource, bench_source, G_TYPE_INPUT_STREAM)

static gssize
bench_source_read (GInputStream *stream, void *buffer, gsize count, GCancellable *cancellable,
                   GError **error)
{
  BenchSource *self = (BenchSource *)stream;
  size_t n = count < self->len - self->pos ? count : self->len - self->pos;

  memcpy (buffer, self->data + self->pos, n);
  gcry_md_write (self->md, self->data + self->pos, n);
  self->pos += n;
  return (gssize)n;
}

static void
bench_source_finalize (GObject *object)
{
  gcry_md_close (((BenchSource *)object)->md);
  G_OBJECT_CLASS (bench_source_parent_class)->finalize (object);
}

static void
bench_source_class_init (BenchSourceClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = bench_source_finalize;
  klass->read_fn = bench_source_read;
}

static void
bench_source_init (BenchSource *self)
{
  if (gcry_md_open (&self->md, GCRY_MD_SHA256, 0) != 0)
    die ("SHA-256 is not available");
}

static FsCrypto *
plugin_crypto (void)
{
  static FsCrypto *crypto;
  static const uint8_t key[32] = { 9, 8, 7, 6, 5, 4, 3, 2, 1 };
  GError *error = NULL;

  if (crypto != NULL)
    return crypto;
#ifdef PIPELINE_BENCH_PLUGIN_DIR
  g_setenv ("FOLDERSYNC_PLUGIN_DIR", PIPELINE_BENCH_PLUGIN_DIR, FALSE);
#endif
  crypto = (FsCrypto *)fs_plugin_new_instance ("crypto-aes", FS_TYPE_CRYPTO, &error);
  if (crypto == NULL || !fs_crypto_set_key (crypto, key, sizeof key, &error))
    {
      fprintf (stderr, "pipeline-bench: the crypto-aes plugin: %s\n", error->message);
      exit (1);
    }
  return crypto;
}

/* Reads @stream to its end in reads of 256 KiB, hashing what it returns if
 * @md; returns the bytes read. */
static size_t
drain (GInputStream *stream, gcry_md_hd_t md)
{
  static uint8_t buf[256 * 1024];
  size_t total = 0;
  GError *error = NULL;
  gssize n;

  while ((n = g_input_stream_read (stream, buf, sizeof buf, NULL, &error)) > 0)
    {
      if (md != NULL)
        gcry_md_write (md, buf, (size_t)n);
      total += (size_t)n;
    }
  if (n < 0)
    {
      fprintf (stderr, "pipeline-bench: the crypto-aes plugin: %s\n", error->message);
      exit (1);
    }
  return total;
}

static GInputStream *
plugin_seal_stream (const Data *d)
{
  static const uint8_t header[] = "{\"path\":\"bench\"}";
  GBytes *hdr = g_bytes_new_static (header, sizeof header - 1);
  BenchSource *src = g_object_new (bench_source_get_type (), NULL);
  GError *error = NULL;
  GInputStream *sealed;

  src->data = d->plain;
  src->len = d->n_chunks * CHUNK;
  sealed = fs_crypto_seal_stream (plugin_crypto (), hdr, G_INPUT_STREAM (src), NULL, &error);
  if (sealed == NULL)
    die (error->message);
  g_object_unref (src);
  g_bytes_unref (hdr);
  return sealed;
}

/* The --mib MiB as one object through the plugin, as many times as fit in
 * @seconds; MB/s of plaintext. */
static double
run_plugin (const Data *d, Op op, double seconds)
{
  GBytes *object = d->plugin_object;
  uint64_t bytes = 0;
  double t0 = now (), t;

  if (op == OP_OPEN_PLUGIN && object == NULL)
    {
      GInputStream *sealed = plugin_seal_stream (d);
      GByteArray *all = g_byte_array_new ();
      static uint8_t buf[256 * 1024];
      gssize n;

      while ((n = g_input_stream_read (sealed, buf, sizeof buf, NULL, NULL)) > 0)
        g_byte_array_append (all, buf, (guint)n);
      if (n < 0)
        die ("the plugin failed to seal");
      g_object_unref (sealed);
      object = g_byte_array_free_to_bytes (all);
      ((Data *)d)->plugin_object = object;
      t0 = now ();
    }
  do
    {
      if (op == OP_SEAL_PLUGIN)
        {
          GInputStream *sealed = plugin_seal_stream (d);
          drain (sealed, NULL);
          g_object_unref (sealed);
        }
      else
        {
          GInputStream *in = g_memory_input_stream_new_from_bytes (object);
          GError *error = NULL;
          GInputStream *plain = fs_crypto_open_stream (plugin_crypto (), in, NULL, NULL, &error);

          if (plain == NULL)
            die (error->message);
          if (drain (plain, NULL) != d->n_chunks * CHUNK)
            die ("the plugin opened another size: the benchmark is broken");
          g_object_unref (plain);
          g_object_unref (in);
        }
      bytes += d->n_chunks * CHUNK;
    }
  while ((t = now ()) < t0 + seconds);
  return bytes / (t - t0) / 1e6;
}

/* The plugin's pool size, as it will read it. */
static long
plugin_threads (void)
{
  const char *env = getenv ("FOLDERSYNC_CRYPTO_THREADS");
  long n = env != NULL && *env != '\0' ? atol (env) : (long)g_get_num_processors ();
  return n > 0 ? n : 1;
}

static int
wanted (const char *ops, const char *name)
{
  size_t len = strlen (name);

  if (ops == NULL)
    return 1;
  for (const char *p = ops; (p = strstr (p, name)) != NULL; p += len)
    if ((p == ops || p[-1] == ',') && (p[len] == '\0' || p[len] == ','))
      return 1;
  return 0;
}

int
main (int argc, char **argv)
{
  double seconds = 1.0;
  int repeat = 3;
  long threads = sysconf (_SC_NPROCESSORS_ONLN);
  size_t mib = 32;
  int object_chunks = 256;
  const char *only = NULL;
  int i;

  for (i = 1; i < argc && strncmp (argv[i], "--", 2) == 0; i += 2)
    {
      if (i + 1 >= argc)
        die ("an option needs a value");
      if (strcmp (argv[i], "--seconds") == 0)
        seconds = atof (argv[i + 1]);
      else if (strcmp (argv[i], "--repeat") == 0)
        repeat = atoi (argv[i + 1]);
      else if (strcmp (argv[i], "--threads") == 0)
        threads = atol (argv[i + 1]);
      else if (strcmp (argv[i], "--mib") == 0)
        mib = (size_t)atol (argv[i + 1]);
      else if (strcmp (argv[i], "--object-mib") == 0)
        object_chunks = atoi (argv[i + 1]);
      else if (strcmp (argv[i], "--ops") == 0)
        only = argv[i + 1];
      else
        die (USAGE);
    }
  if (i >= argc || seconds <= 0 || repeat < 1 || threads < 1 || mib < 1 || object_chunks < 1)
    die (USAGE);

  if (gcry_check_version ("1.10.0") == NULL)
    die ("libgcrypt is older than 1.10.0");
  gcry_control (GCRYCTL_DISABLE_SECMEM, 0);
  gcry_control (GCRYCTL_INITIALIZATION_FINISHED, 0);

  printf ("{\"kind\": \"info\", \"threads\": %ld, \"zlib\": \"%s\", \"libgcrypt\": \"%s\", "
          "\"libdeflate\": \"%s\", \"isal\": \"%s\"}\n",
          threads, zlibVersion (), gcry_check_version (NULL), LIBDEFLATE_VERSION_STRING,
          ISAL_VERSION_STRING);
  for (; i < argc; i++)
    {
      char *eq = strchr (argv[i], '=');
      const char *label = argv[i];
      Data d = { 0 };
      static const struct { Step step; const char *name; } steps[] = {
        { STEP_SHA256, "sha256" },   { STEP_ZLIB1, "zlib1" }, { STEP_LIBDEFLATE1, "libdeflate1" },
        { STEP_IGZIP2, "igzip2" },
        { STEP_GCM, "aes256gcm" },   { STEP_INFLATE, "inflate" },
        { STEP_INFLATE_ZLIB, "inflate-zlib" },
      };
      static const struct { Op op; const char *name; } ops[] = {
        { OP_SEAL, "seal" },           { OP_OPEN, "open" },
        { OP_SEAL_LIBDEFLATE, "seal-libdeflate" },
        { OP_SEAL_ZLIB, "seal-zlib" }, { OP_OPEN_ZLIB, "open-zlib" },
        { OP_SEAL_PLUGIN, "seal-plugin" }, { OP_OPEN_PLUGIN, "open-plugin" },
      };

      if (eq == NULL)
        die ("arguments are LABEL=FILE");
      *eq = '\0';
      load (eq + 1, mib, object_chunks,
            wanted (only, "open") || wanted (only, "open-zlib") || wanted (only, "inflate")
              || wanted (only, "inflate-zlib"),
            &d);
      for (size_t s = 0; s < sizeof steps / sizeof steps[0]; s++)
        {
          if (!wanted (only, steps[s].name))
            continue;
          printf ("{\"kind\": \"step\", \"data\": \"%s\", \"step\": \"%s\", \"threads\": 1, "
                  "\"mb_s\": %.1f}\n",
                  label, steps[s].name, best_step (&d, steps[s].step, seconds / 2, repeat));
          fflush (stdout);
        }
      for (size_t o = 0; o < sizeof ops / sizeof ops[0]; o++)
        {
          long counts[2] = { 1, threads };

          if (!wanted (only, ops[o].name))
            continue;
          if (ops[o].op == OP_SEAL_PLUGIN || ops[o].op == OP_OPEN_PLUGIN)
            {
              double best = 0;
              for (int r = 0; r < repeat; r++)
                {
                  double v = run_plugin (&d, ops[o].op, seconds);
                  best = v > best ? v : best;
                }
              printf ("{\"kind\": \"pipeline\", \"data\": \"%s\", \"op\": \"%s\", "
                      "\"threads\": %ld, \"mb_s\": %.1f}\n",
                      label, ops[o].name, plugin_threads (), best);
              fflush (stdout);
              continue;
            }
          for (int c = 0; c < (threads > 1 ? 2 : 1); c++)
            {
              printf ("{\"kind\": \"pipeline\", \"data\": \"%s\", \"op\": \"%s\", \"threads\": %ld, "
                      "\"mb_s\": %.1f}\n",
                      label, ops[o].name, counts[c],
                      best_op (&d, ops[o].op, (int)counts[c], seconds, repeat));
              fflush (stdout);
            }
        }
      for (size_t c = 0; c < d.n_chunks; c++)
        {
          free (d.sealed[c]);
          free (d.stored[c]);
        }
      free (d.sealed);
      free (d.stored);
      free (d.sealed_len);
      free ((void *)d.plain);
      if (d.plugin_object != NULL)
        g_bytes_unref (d.plugin_object);
    }
  return 0;
}
