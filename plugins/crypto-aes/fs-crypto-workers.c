/* The crypto-aes plugin's worker pool and its caches (fs-crypto-workers.h).
 *
 * One exclusive GThreadPool of nproc threads serves every FsSealStream and
 * FsOpenStream of the process: the engine runs several transfers at once,
 * and a pool per stream would put several times nproc threads on the cores.
 * FOLDERSYNC_CRYPTO_THREADS=N overrides the size (0: no pool, every chunk is
 * done in the reader's thread), for benchmarks and tests. */
#include "config.h"

#include <string.h>

#include <isa-l/igzip_lib.h>
#include <libdeflate.h>

#include "fs-crypto-workers.h"

/* The caches keep a few free items so that a stream does not allocate and
 * fault in 1 MiB per chunk; beyond that, items are freed. */
#define CACHE_MAX 64
#define MAX_THREADS 64

typedef struct {
  gpointer items[CACHE_MAX];
  guint len;
  guint cap;
} Cache;

static GThreadPool *pool;
static guint width;
G_LOCK_DEFINE_STATIC (cache);
static Cache buffers;
static Cache level_buffers;
static Cache decompressors;

static void
run_job (gpointer data, gpointer user_data)
{
  FsCryptoJob *job = data;
  job->run (job);
}

/* Under AddressSanitizer a cached buffer is poisoned, so that a use after it
 * went back to the cache is caught as if it had been freed. */
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION (p, n)
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION (p, n)
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

static guint
cache_cap (guint want)
{
  return MIN (want, CACHE_MAX);
}

/* The number of threads asked for, and the caches' sizes. */
static guint
wanted_threads (void)
{
  static gsize done = 0;
  static guint n;

  if (g_once_init_enter (&done))
    {
      const gchar *env = g_getenv ("FOLDERSYNC_CRYPTO_THREADS");

      n = g_get_num_processors ();
      if (env != NULL && *env != '\0')
        n = (guint) MIN (g_ascii_strtoull (env, NULL, 10), MAX_THREADS);
      n = MIN (n, MAX_THREADS);
      buffers.cap = cache_cap (2 * MAX (n, 1) + 4);
      level_buffers.cap = cache_cap (MAX (n, 1) + 4);
      decompressors.cap = cache_cap (MAX (n, 1) + 4);
      g_once_init_leave (&done, 1);
    }
  return n;
}

/* The pool is started by the first object of more than one chunk: a process
 * that only ever sees small files has no extra threads. */
guint
fs_crypto_workers_width (void)
{
  static gsize done = 0;

  if (g_once_init_enter (&done))
    {
      guint n = wanted_threads ();
      g_autoptr(GError) error = NULL;

      if (n > 0)
        {
          /* Exclusive: the threads exist from here on, so a job once queued
           * always runs (a shared pool may fail to spawn a thread later). */
          pool = g_thread_pool_new (run_job, NULL, (gint) n, TRUE, &error);
          if (error != NULL)
            {
              /* GLib may return a pool with fewer threads: not that one. */
              if (pool != NULL)
                g_thread_pool_free (g_steal_pointer (&pool), TRUE, TRUE);
              g_warning ("Cannot start %u crypto threads, sealing on one: %s", n,
                         error->message);
              n = 0;
            }
        }
      width = n;
      g_debug ("%u crypto threads", n);
      g_once_init_leave (&done, 1);
    }
  return width;
}

void
fs_crypto_workers_push (FsCryptoJob *job)
{
  g_autoptr(GError) error = NULL;

  g_return_if_fail (fs_crypto_workers_width () > 0);
  /* An exclusive pool only queues: this cannot fail. */
  if (!g_thread_pool_push (pool, job, &error))
    g_error ("Cannot queue a crypto job: %s", error->message);
}

static gpointer
cache_take (Cache *c)
{
  gpointer item = NULL;

  wanted_threads ();
  G_LOCK (cache);
  if (c->len > 0)
    item = c->items[--c->len];
  G_UNLOCK (cache);
  return item;
}

/* TRUE if the cache kept @item. */
static gboolean
cache_keep (Cache *c, gpointer item)
{
  gboolean kept = FALSE;

  G_LOCK (cache);
  if (c->len < c->cap)
    {
      c->items[c->len++] = item;
      kept = TRUE;
    }
  G_UNLOCK (cache);
  return kept;
}

guint8 *
fs_chunk_buffer_get (void)
{
  guint8 *buffer = cache_take (&buffers);

  if (buffer == NULL)
    return g_malloc (FS_CHUNK_BUFFER_SIZE);
  UNPOISON (buffer, FS_CHUNK_BUFFER_SIZE);
  return buffer;
}

void
fs_chunk_buffer_put (guint8 *buffer, gsize used)
{
  if (buffer == NULL)
    return;
  explicit_bzero (buffer, MIN (used, FS_CHUNK_BUFFER_SIZE));
  POISON (buffer, FS_CHUNK_BUFFER_SIZE);
  if (!cache_keep (&buffers, buffer))
    {
      UNPOISON (buffer, FS_CHUNK_BUFFER_SIZE);
      g_free (buffer);
    }
}

/* igzip level 2: about 1.5 times libdeflate level 1's speed on text, at a
 * few percent less ratio (docs/decisions.md has the figures). */
#define DEFLATE_LEVEL 2
#define DEFLATE_LEVEL_BUFFER_SIZE ISAL_DEF_LVL2_DEFAULT

gsize
fs_chunk_deflate (const guint8 *in, gsize n, guint8 *out, gsize out_size)
{
  guint8 *level_buffer;
  struct isal_zstream z;
  int rc;

  g_return_val_if_fail (n <= G_MAXUINT32, 0);
  level_buffer = cache_take (&level_buffers);
  if (level_buffer == NULL)
    level_buffer = g_malloc (DEFLATE_LEVEL_BUFFER_SIZE);
  isal_deflate_stateless_init (&z);
  z.gzip_flag = IGZIP_ZLIB;
  z.level = DEFLATE_LEVEL;
  z.level_buf = level_buffer;
  z.level_buf_size = DEFLATE_LEVEL_BUFFER_SIZE;
  z.next_in = (guint8 *)in;
  z.avail_in = (guint32)n;
  z.end_of_stream = 1;
  z.flush = NO_FLUSH;
  z.next_out = out;
  z.avail_out = (guint32)MIN (out_size, G_MAXUINT32);
  rc = isal_deflate_stateless (&z);
  /* Its tokens are plaintext. */
  explicit_bzero (level_buffer, DEFLATE_LEVEL_BUFFER_SIZE);
  if (!cache_keep (&level_buffers, level_buffer))
    g_free (level_buffer);
  if (rc == COMP_OK)
    return z.total_out;
  /* Anything but "does not fit" is a bug here; storing raw is always safe. */
  if (rc != STATELESS_OVERFLOW)
    g_critical ("igzip failed (%d); the chunk is stored raw", rc);
  return 0;
}

struct libdeflate_decompressor *
fs_deflate_decompressor_get (void)
{
  struct libdeflate_decompressor *d = cache_take (&decompressors);

  if (d == NULL && (d = libdeflate_alloc_decompressor ()) == NULL)
    g_error ("libdeflate cannot allocate a decompressor");
  return d;
}

void
fs_deflate_decompressor_put (struct libdeflate_decompressor *decompressor)
{
  if (decompressor != NULL && !cache_keep (&decompressors, decompressor))
    libdeflate_free_decompressor (decompressor);
}
