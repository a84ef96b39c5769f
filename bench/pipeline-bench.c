/* pipeline-bench: limit line (a) of bench/run. Measures, in MB/s (10^6 bytes
 * of plaintext per second), the per-chunk pipeline of the object format
 * (docs/format.md), on one thread and on N threads:
 *
 *   seal = SHA-256 of the plaintext + zlib level 1 (with the format's rule:
 *          the first chunk of an object is a probe; if it does not shrink,
 *          the rest of the object is stored raw) + AES-256-GCM seal
 *   open = AES-256-GCM open + inflate (compressed chunks) + SHA-256
 *
 * and the single-thread speed of each step alone. The plaintext is the first
 * --mib MiB of each FILE, cut into 1 MiB chunks; an object is --object-mib
 * chunks (so random data pays zlib on one chunk in that many, as FolderSync
 * does). Each figure is the best of --repeat runs of --seconds (the steps
 * alone: half that), so that other load on the machine disturbs it less.
 * Output: one JSON object per line on stdout.
 *
 *   pipeline-bench [--seconds S] [--repeat R] [--threads N] [--mib M] [--object-mib K]
 *                  LABEL=FILE...
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
#include <zlib.h>
#ifdef HAVE_LIBDEFLATE
#include <libdeflate.h>
#endif

#define USAGE                                                                            \
  "usage: pipeline-bench [--seconds S] [--repeat R] [--threads N] [--mib M] [--object-mib K] " \
  "LABEL=FILE..."
#define CHUNK (1024 * 1024)
#define TAG 16
#define AD_LEN 33 /* preamble (24) + u64 index + u8 last, as the format */

typedef enum { OP_SEAL, OP_SEAL_LIBDEFLATE, OP_OPEN } Op;

typedef struct {
  const uint8_t *plain; /* n_chunks chunks of plaintext */
  size_t n_chunks;
  uint8_t **sealed;     /* per chunk: encoding byte + data + tag (for open) */
  size_t *sealed_len;
  uint8_t **stored;     /* per chunk: encoding byte + data before sealing (for inflate) */
  int object_chunks;
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

/* Compressor state of one thread: zlib's compress2 or libdeflate level 1. */
typedef struct {
  int use_libdeflate;
#ifdef HAVE_LIBDEFLATE
  struct libdeflate_compressor *ld;
#endif
} Compressor;

static size_t
compress_chunk (Compressor *c, uint8_t *dst, size_t dst_size, const uint8_t *src, size_t n)
{
#ifdef HAVE_LIBDEFLATE
  if (c->use_libdeflate)
    return libdeflate_zlib_compress (c->ld, src, n, dst, dst_size); /* 0: did not fit */
#endif
  uLongf zlen = dst_size;
  if (compress2 (dst, &zlen, src, n, 1) != Z_OK)
    die ("compress2 failed");
  return zlen;
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
      size_t zlen = compress_chunk (c, zbuf, zbuf_size, src, CHUNK);
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
  Compressor comp = { .use_libdeflate = w->op == OP_SEAL_LIBDEFLATE };
  size_t zbuf_size = compressBound (CHUNK);
  uint8_t *zbuf = malloc (zbuf_size);
  uint8_t *out = malloc (1 + CHUNK + TAG);
  uint8_t *plain = malloc (CHUNK);
  size_t i = 0;
  uint64_t index = 0;
  int mode = 0;
  double end;

#ifdef HAVE_LIBDEFLATE
  if (comp.use_libdeflate && (comp.ld = libdeflate_alloc_compressor (1)) == NULL)
    die ("libdeflate_alloc_compressor failed");
#endif
  if (zbuf == NULL || out == NULL || plain == NULL || gcry_md_open (&md, GCRY_MD_SHA256, 0) != 0)
    die ("out of memory");
  pthread_barrier_wait (w->barrier);
  end = now () + w->seconds;
  while (now () < end)
    {
      int last = (int)(index + 1) == d->object_chunks;
      if (w->op == OP_OPEN)
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
              uLongf plain_len = CHUNK;
              uLong src_len = len - TAG - 1;
              if (uncompress2 (plain, &plain_len, out + 1, &src_len) != Z_OK || plain_len != CHUNK)
                {
                  w->failed = 1;
                  break;
                }
              gcry_md_write (md, plain, CHUNK);
            }
          else
            gcry_md_write (md, out + 1, CHUNK);
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
#ifdef HAVE_LIBDEFLATE
  if (comp.ld != NULL)
    libdeflate_free_compressor (comp.ld);
#endif
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
typedef enum { STEP_SHA256, STEP_ZLIB1, STEP_LIBDEFLATE1, STEP_GCM, STEP_INFLATE } Step;

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
  Compressor comp = { .use_libdeflate = step == STEP_LIBDEFLATE1 };

#ifdef HAVE_LIBDEFLATE
  if (comp.use_libdeflate)
    comp.ld = libdeflate_alloc_compressor (1);
#endif
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
          compress_chunk (&comp, zbuf, zbuf_size, src, CHUNK);
          break;
        case STEP_GCM:
          memcpy (buf, src, CHUNK);
          if (!gcm_seal (hd, i, 0, buf, CHUNK, buf + CHUNK))
            die ("AES-GCM seal failed");
          break;
        case STEP_INFLATE:
          if (d->stored[i][0] == 1)
            {
              uLongf plain_len = CHUNK;
              uLong src_len = d->sealed_len[i] - 1 - TAG;
              if (uncompress2 (buf, &plain_len, d->stored[i] + 1, &src_len) != Z_OK)
                die ("inflate failed");
            }
          else
            memcpy (buf, d->stored[i] + 1, CHUNK); /* a raw chunk: nothing to inflate */
          break;
        }
      bytes += CHUNK;
      i = (i + 1) % d->n_chunks;
    }
#ifdef HAVE_LIBDEFLATE
  if (comp.ld != NULL)
    libdeflate_free_compressor (comp.ld);
#endif
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

static void
load (const char *file, size_t mib, int object_chunks, Data *d)
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

  /* Seal every chunk once, as objects of object_chunks chunks, for open. */
  {
    gcry_cipher_hd_t hd = new_cipher ();
    gcry_md_hd_t md;
    Compressor comp = { 0 };
    size_t zbuf_size = compressBound (CHUNK);
    uint8_t *zbuf = malloc (zbuf_size);
    int mode = 0;

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
    free (zbuf);
  }
}

int
main (int argc, char **argv)
{
  double seconds = 1.0;
  int repeat = 3;
  long threads = sysconf (_SC_NPROCESSORS_ONLN);
  size_t mib = 32;
  int object_chunks = 256;
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
          "\"libdeflate\": %s}\n",
          threads, zlibVersion (), gcry_check_version (NULL),
#ifdef HAVE_LIBDEFLATE
          "\"" LIBDEFLATE_VERSION_STRING "\""
#else
          "null"
#endif
  );
  for (; i < argc; i++)
    {
      char *eq = strchr (argv[i], '=');
      const char *label = argv[i];
      Data d = { 0 };
      static const struct { Step step; const char *name; } steps[] = {
        { STEP_SHA256, "sha256" },   { STEP_ZLIB1, "zlib1" }, { STEP_LIBDEFLATE1, "libdeflate1" },
        { STEP_GCM, "aes256gcm" },   { STEP_INFLATE, "inflate" },
      };
      static const struct { Op op; const char *name; } ops[] = {
        { OP_SEAL, "seal" }, { OP_OPEN, "open" }, { OP_SEAL_LIBDEFLATE, "seal-libdeflate" },
      };

      if (eq == NULL)
        die ("arguments are LABEL=FILE");
      *eq = '\0';
      load (eq + 1, mib, object_chunks, &d);
      for (size_t s = 0; s < sizeof steps / sizeof steps[0]; s++)
        {
#ifndef HAVE_LIBDEFLATE
          if (steps[s].step == STEP_LIBDEFLATE1)
            continue;
#endif
          printf ("{\"kind\": \"step\", \"data\": \"%s\", \"step\": \"%s\", \"threads\": 1, "
                  "\"mb_s\": %.1f}\n",
                  label, steps[s].name, best_step (&d, steps[s].step, seconds / 2, repeat));
          fflush (stdout);
        }
      for (size_t o = 0; o < sizeof ops / sizeof ops[0]; o++)
        {
#ifndef HAVE_LIBDEFLATE
          if (ops[o].op == OP_SEAL_LIBDEFLATE)
            continue;
#endif
          long counts[2] = { 1, threads };
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
    }
  return 0;
}
