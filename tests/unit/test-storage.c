/* Storage conformance suite: the behaviour every FsStorage backend must have.
 *
 * The tests only use the FsStorage API, so they run unchanged against any
 * backend described by a StorageBackend (how to make a fresh, empty store and
 * a missing one). add_conformance_tests() registers them as
 * /storage/<backend>/<behaviour>; tests that only make sense for one backend
 * (a full disk for storage-local) are registered separately.
 *
 * The race test re-executes this binary with --race-child so that several
 * processes, not threads, compete for one conditional put. */
#include "config.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <ftw.h>
#include <gcrypt.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gio/gio.h>

#include "fs-error.h"
#include "fs-gcrypt.h"
#include "fs-plugin-loader.h"
#include "fs-storage.h"

typedef struct
{
  const gchar *name;   /* test path component: /storage/<name>/… */
  const gchar *plugin; /* plugin to load */
  /* Settings for a fresh, empty store. */
  GHashTable *(*new_store) (void);
  /* Settings naming a store that does not exist. */
  GHashTable *(*new_missing_store) (void);
  /* Removes the store made by new_store(). */
  void (*destroy_store) (GHashTable *settings);
  /* Number of temp files/uploads the backend left behind, or NULL. */
  guint (*count_leftovers) (GHashTable *settings);
  /* Why listings are not in byte order across '/' (NULL: they are). */
  const gchar *no_byte_order;
  /* Why concurrent puts and deletes in one "directory" cannot be tested. */
  const gchar *no_concurrent_delete;
} StorageBackend;

typedef struct
{
  const StorageBackend *backend;
  GHashTable *settings;
  FsStorage *storage;
} Fixture;

/* Set per test: the backend does not list in byte order across '/', so key
 * sets are compared as sets (test list-byte-order reports it as a skip). */
static gboolean loose_order;

#define RACE_CHILD_ARG "--race-child"
#define RACE_PROCESSES 8
#define RACE_EXIT_WON 0
#define RACE_EXIT_LOST 3
#define RACE_EXIT_ERROR 4

/* ---- helpers ------------------------------------------------------------ */

static int
rm_rf_cb (const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
  return remove (path);
}

static void
rm_rf (const gchar *path)
{
  nftw (path, rm_rf_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static FsStorage *
storage_new (const StorageBackend *backend, GHashTable *settings, GError **error)
{
  g_autoptr (GObject) obj = fs_plugin_new_instance (backend->plugin, FS_TYPE_STORAGE, error);

  if (obj == NULL)
    return NULL;
  if (!fs_storage_configure (FS_STORAGE (obj), settings, error))
    return NULL;
  return FS_STORAGE (g_steal_pointer (&obj));
}

static void
fixture_setup (Fixture *fx, gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  fx->backend = data;
  loose_order = fx->backend->no_byte_order != NULL;
  fx->settings = fx->backend->new_store ();
  fx->storage = storage_new (fx->backend, fx->settings, &error);
  g_assert_no_error (error);
  g_assert_nonnull (fx->storage);
}

static void
fixture_teardown (Fixture *fx, gconstpointer data)
{
  g_clear_object (&fx->storage);
  fx->backend->destroy_store (fx->settings);
  g_hash_table_unref (fx->settings);
}

static gboolean
put_string (FsStorage *storage, const gchar *key, const gchar *text, const gchar *expected,
            gchar **version, GError **error)
{
  g_autoptr (GBytes) bytes = g_bytes_new (text, strlen (text));
  return fs_storage_put_bytes (storage, key, bytes, expected, version, error);
}

static void
put_ok (FsStorage *storage, const gchar *key, const gchar *text)
{
  g_autoptr (GError) error = NULL;
  g_autofree gchar *version = NULL;

  g_assert_true (put_string (storage, key, text, NULL, &version, &error));
  g_assert_no_error (error);
  g_assert_nonnull (version);
  g_assert_cmpstr (version, !=, "");
}

static gchar *
read_all (GInputStream *in)
{
  g_autoptr (GByteArray) buf = g_byte_array_new ();
  g_autoptr (GError) error = NULL;
  guint8 chunk[4096];
  gssize n;

  while ((n = g_input_stream_read (in, chunk, sizeof chunk, NULL, &error)) > 0)
    g_byte_array_append (buf, chunk, (guint)n);
  g_assert_no_error (error);
  g_assert_cmpint (n, ==, 0);
  g_byte_array_append (buf, (const guint8 *)"", 1);
  return (gchar *)g_byte_array_free (g_steal_pointer (&buf), FALSE);
}

static gchar *
get_range_string (FsStorage *storage, const gchar *key, guint64 offset, gint64 length)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GInputStream) in = fs_storage_get (storage, key, offset, length, &error);

  g_assert_no_error (error);
  g_assert_nonnull (in);
  return read_all (in);
}

static gchar *
get_string (FsStorage *storage, const gchar *key)
{
  return get_range_string (storage, key, 0, -1);
}

static gint
compare_strings (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const gchar *const *)a, *(const gchar *const *)b);
}

static GPtrArray *
list_all_keys (FsStorage *storage, const gchar *prefix, const gchar *start_after)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) objects = fs_storage_list_all (storage, prefix, start_after, &error);
  GPtrArray *keys = g_ptr_array_new_with_free_func (g_free);

  g_assert_no_error (error);
  g_assert_nonnull (objects);
  for (guint i = 0; i < objects->len; i++)
    g_ptr_array_add (keys, g_strdup (((FsStorageObject *)objects->pdata[i])->key));
  return keys;
}

static gint
compare_strings_ptr (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const gchar *const *)a, *(const gchar *const *)b);
}

static void
assert_keys (GPtrArray *got, const gchar *const *expected)
{
  guint n = g_strv_length ((gchar **)expected);
  g_autoptr (GPtrArray) got_sorted = g_ptr_array_new (); /* borrows got's strings */
  g_autoptr (GPtrArray) want = g_ptr_array_new ();

  for (guint i = 0; i < got->len; i++)
    g_ptr_array_add (got_sorted, got->pdata[i]);
  for (guint i = 0; i < n; i++)
    g_ptr_array_add (want, (gpointer)expected[i]);
  if (loose_order)
    {
      g_ptr_array_sort (got_sorted, compare_strings_ptr);
      g_ptr_array_sort (want, compare_strings_ptr);
    }
  for (guint i = 0; i < got_sorted->len && i < n; i++)
    g_assert_cmpstr (got_sorted->pdata[i], ==, want->pdata[i]);
  g_assert_cmpuint (got->len, ==, n);
}

static void
assert_no_leftovers (Fixture *fx)
{
  if (fx->backend->count_leftovers != NULL)
    g_assert_cmpuint (fx->backend->count_leftovers (fx->settings), ==, 0);
}

/* ---- a test input stream: pseudo-random bytes, hashed as they are read,
 * optionally failing or cancelling part-way. --------------------------- */

#define TEST_TYPE_STREAM (test_stream_get_type ())
G_DECLARE_FINAL_TYPE (TestStream, test_stream, TEST, STREAM, GInputStream)

struct _TestStream
{
  GInputStream parent_instance;
  guint64 size;
  guint64 pos;
  guint64 seed;
  guint64 fail_at;   /* G_MAXUINT64: never */
  guint64 cancel_at; /* cancels @cancel once this many bytes were produced */
  GCancellable *cancel;
  gcry_md_hd_t md;
};

G_DEFINE_FINAL_TYPE (TestStream, test_stream, G_TYPE_INPUT_STREAM)

static guint64
splitmix64 (guint64 x)
{
  x += G_GUINT64_CONSTANT (0x9e3779b97f4a7c15);
  x = (x ^ (x >> 30)) * G_GUINT64_CONSTANT (0xbf58476d1ce4e5b9);
  x = (x ^ (x >> 27)) * G_GUINT64_CONSTANT (0x94d049bb133111eb);
  return x ^ (x >> 31);
}

static gssize
test_stream_read (GInputStream *stream, void *buffer, gsize count, GCancellable *cancellable,
                  GError **error)
{
  TestStream *self = TEST_STREAM (stream);
  guint8 *out = buffer;
  guint64 n;
  guint64 word = 0;

  if (self->pos >= self->fail_at)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED,
                   "Injected read failure at byte %" G_GUINT64_FORMAT, self->pos);
      return -1;
    }
  if (self->cancel != NULL && self->pos >= self->cancel_at)
    g_cancellable_cancel (self->cancel);
  n = MIN ((guint64)count, self->size - self->pos);
  n = MIN (n, self->fail_at - self->pos);
  for (guint64 j = 0; j < n; j++)
    {
      guint64 idx = self->pos + j;
      if (j == 0 || idx % 8 == 0)
        word = splitmix64 (self->seed ^ (idx / 8));
      out[j] = (guint8)(word >> (8 * (idx % 8)));
    }
  gcry_md_write (self->md, out, n);
  self->pos += n;
  return (gssize)n;
}

static void
test_stream_finalize (GObject *object)
{
  TestStream *self = TEST_STREAM (object);

  gcry_md_close (self->md);
  g_clear_object (&self->cancel);
  G_OBJECT_CLASS (test_stream_parent_class)->finalize (object);
}

static void
test_stream_class_init (TestStreamClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = test_stream_finalize;
  G_INPUT_STREAM_CLASS (klass)->read_fn = test_stream_read;
}

static void
test_stream_init (TestStream *self)
{
  g_assert_cmpint (gcry_md_open (&self->md, GCRY_MD_SHA256, 0), ==, 0);
  self->fail_at = G_MAXUINT64;
  self->cancel_at = G_MAXUINT64;
}

static TestStream *
test_stream_new (guint64 size, guint64 seed)
{
  TestStream *self = g_object_new (TEST_TYPE_STREAM, NULL);
  self->size = size;
  self->seed = seed;
  return self;
}

/* SHA-256 of the bytes produced so far. */
static void
test_stream_digest (TestStream *self, guint8 digest[32])
{
  memcpy (digest, gcry_md_read (self->md, GCRY_MD_SHA256), 32);
}

/* Streams the object through SHA-256; no whole-object buffer. */
static void
hash_object (FsStorage *storage, const gchar *key, guint8 digest[32], guint64 *size)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GInputStream) in = fs_storage_get (storage, key, 0, -1, &error);
  g_autofree guint8 *buf = g_malloc (1024 * 1024);
  gcry_md_hd_t md;
  gssize n;

  g_assert_no_error (error);
  g_assert_cmpint (gcry_md_open (&md, GCRY_MD_SHA256, 0), ==, 0);
  *size = 0;
  while ((n = g_input_stream_read (in, buf, 1024 * 1024, NULL, &error)) > 0)
    {
      gcry_md_write (md, buf, (gsize)n);
      *size += (guint64)n;
    }
  g_assert_no_error (error);
  memcpy (digest, gcry_md_read (md, GCRY_MD_SHA256), 32);
  gcry_md_close (md);
}

static void
put_random (FsStorage *storage, const gchar *key, guint64 size, guint64 seed, guint8 digest[32])
{
  g_autoptr (TestStream) src = test_stream_new (size, seed);
  g_autoptr (GError) error = NULL;

  g_assert_true (fs_storage_put (storage, key, G_INPUT_STREAM (src), NULL, NULL, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (src->pos, ==, size);
  test_stream_digest (src, digest);
}

static void
assert_object_digest (FsStorage *storage, const gchar *key, guint64 size, const guint8 digest[32])
{
  guint8 got[32];
  guint64 got_size;

  hash_object (storage, key, got, &got_size);
  g_assert_cmpuint (got_size, ==, size);
  g_assert_cmpmem (got, 32, digest, 32);
}

/* ---- conformance tests -------------------------------------------------- */

static void
test_put_get (Fixture *fx, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autofree gchar *version = NULL;
  g_autofree gchar *text = NULL;
  g_autoptr (FsStorageObject) obj = NULL;
  g_autoptr (GBytes) empty = g_bytes_new_static ("", 0);
  g_autoptr (GBytes) got = NULL;

  g_assert_true (
    put_string (fx->storage, "dir/sub/hello.txt", "hello, world", NULL, &version, &error));
  g_assert_no_error (error);
  g_assert_nonnull (version);

  obj = fs_storage_stat (fx->storage, "dir/sub/hello.txt", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (obj->key, ==, "dir/sub/hello.txt");
  g_assert_cmpuint (obj->size, ==, 12);
  g_assert_cmpstr (obj->version, ==, version);

  text = get_string (fx->storage, "dir/sub/hello.txt");
  g_assert_cmpstr (text, ==, "hello, world");

  /* An empty object is an object. */
  g_assert_true (fs_storage_put_bytes (fx->storage, "empty", empty, NULL, NULL, &error));
  g_assert_no_error (error);
  got = fs_storage_get_bytes (fx->storage, "empty", 10, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_bytes_get_size (got), ==, 0);
  g_clear_pointer (&obj, fs_storage_object_free);
  obj = fs_storage_stat (fx->storage, "empty", &error);
  g_assert_no_error (error);
  g_assert_cmpuint (obj->size, ==, 0);
  assert_no_leftovers (fx);
}

static void
test_missing (Fixture *fx, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (FsStorageObject) obj = NULL;
  g_autoptr (GInputStream) in = NULL;

  obj = fs_storage_stat (fx->storage, "no/such/key", &error);
  g_assert_error (error, FS_STORAGE_ERROR, FS_STORAGE_ERROR_NOT_FOUND);
  g_assert_null (obj);
  g_clear_error (&error);

  in = fs_storage_get (fx->storage, "no-such-key", 0, -1, &error);
  g_assert_error (error, FS_STORAGE_ERROR, FS_STORAGE_ERROR_NOT_FOUND);
  g_assert_null (in);
  g_clear_error (&error);

  /* A "directory" that only exists because of deeper keys is not an object. */
  put_ok (fx->storage, "a/b/c", "x");
  obj = fs_storage_stat (fx->storage, "a/b", &error);
  g_assert_error (error, FS_STORAGE_ERROR, FS_STORAGE_ERROR_NOT_FOUND);
  g_clear_error (&error);
  in = fs_storage_get (fx->storage, "a", 0, -1, &error);
  g_assert_error (error, FS_STORAGE_ERROR, FS_STORAGE_ERROR_NOT_FOUND);
}

static void
test_overwrite_version (Fixture *fx, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GHashTable) seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autofree gchar *text = NULL;
  g_autofree gchar *last = NULL;

  /* Identical bytes, rapid succession: still a new version every time where
   * versions guard conditional puts (no ABA); an S3 ETag only has to change
   * with the bytes. */
  gboolean conditional = fs_storage_supports_conditional_put (fx->storage);

  for (guint i = 0; i < 50; i++)
    {
      g_autofree gchar *version = NULL;
      g_autoptr (FsStorageObject) obj = NULL;
      g_autofree gchar *bytes = conditional ? g_strdup ("same bytes") : g_strdup_printf ("bytes %u", i);

      g_assert_true (put_string (fx->storage, "k", bytes, NULL, &version, &error));
      g_assert_no_error (error);
      g_assert_false (g_hash_table_contains (seen, version));
      obj = fs_storage_stat (fx->storage, "k", &error);
      g_assert_no_error (error);
      g_assert_cmpstr (obj->version, ==, version);
      g_free (last);
      last = g_strdup (version);
      g_hash_table_add (seen, g_steal_pointer (&version));
    }
  put_ok (fx->storage, "k", "different bytes");
  text = get_string (fx->storage, "k");
  g_assert_cmpstr (text, ==, "different bytes");
}

static const gchar *
page_last (GPtrArray *objects, GPtrArray *prefixes)
{
  const gchar *last = NULL;

  if (objects->len > 0)
    last = ((FsStorageObject *)objects->pdata[objects->len - 1])->key;
  if (prefixes != NULL && prefixes->len > 0
      && (last == NULL || strcmp (prefixes->pdata[prefixes->len - 1], last) > 0))
    last = prefixes->pdata[prefixes->len - 1];
  return last;
}

#define MANY_KEYS 2500

#define MANY_KEYS_THREADS 4

typedef struct
{
  FsStorage *storage;
  GPtrArray *keys;
  guint first;
} ManyKeysData;

static gpointer
put_many_keys_thread (gpointer user_data)
{
  ManyKeysData *d = user_data;

  for (guint i = d->first; i < d->keys->len; i += MANY_KEYS_THREADS)
    {
      g_autoptr (GError) error = NULL;
      if (!put_string (d->storage, d->keys->pdata[i], d->keys->pdata[i], NULL, NULL, &error))
        return g_strdup (error->message);
    }
  return NULL;
}

/* MANY_KEYS keys, put from several threads at once; returned in byte order. */
static GPtrArray *
make_many_keys (FsStorage *storage, const StorageBackend *backend)
{
  GPtrArray *keys = g_ptr_array_new_with_free_func (g_free);
  /* Chosen to interleave around '/' in byte order: '-' < '.' < '/' < '0'.
   * A backend that cannot order across '/' gets keys shaped like the remote
   * format's (same-length names per directory); list-byte-order says why. */
  const gchar *interleaved[] = { "/a", "-b", ".c", "/e/f", "0" };
  const gchar *plain[] = { "/a", "/b", "/c", "/e/f", "/g" };
  const gchar *const *suffixes = backend->no_byte_order == NULL ? interleaved : plain;
  GThread *threads[MANY_KEYS_THREADS];
  ManyKeysData data[MANY_KEYS_THREADS];

  for (guint i = 0; i < MANY_KEYS; i++)
    g_ptr_array_add (keys, g_strdup_printf ("d%03u%s", i / 5, suffixes[i % 5]));
  for (guint t = 0; t < MANY_KEYS_THREADS; t++)
    {
      data[t] = (ManyKeysData){ storage, keys, t };
      threads[t] = g_thread_new ("put", put_many_keys_thread, &data[t]);
    }
  for (guint t = 0; t < MANY_KEYS_THREADS; t++)
    {
      g_autofree gchar *failure = g_thread_join (threads[t]);
      g_assert_cmpstr (failure, ==, NULL);
    }
  g_ptr_array_sort (keys, compare_strings);
  return keys;
}

static void
test_list_pagination (Fixture *fx, gconstpointer data)
{
  g_autoptr (GPtrArray) keys = make_many_keys (fx->storage, fx->backend);
  g_autofree gchar *after = NULL;
  guint seen = 0;
  guint pages = 0;
  gboolean truncated = TRUE;
  const guint expected_sizes[] = { 1000, 1000, 500 };

  while (truncated)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (GPtrArray) page = NULL;

      g_assert_true (
        fs_storage_list (fx->storage, "", NULL, after, 1000, &page, NULL, &truncated, &error));
      g_assert_no_error (error);
      g_assert_cmpuint (pages, <, 3);
      g_assert_cmpuint (page->len, ==, expected_sizes[pages]);
      g_assert_true (truncated == (pages < 2));
      for (guint i = 0; i < page->len; i++)
        {
          FsStorageObject *obj = page->pdata[i];
          g_assert_cmpstr (obj->key, ==, keys->pdata[seen]);
          g_assert_cmpuint (obj->size, ==, strlen (obj->key));
          g_assert_nonnull (obj->version);
          seen++;
        }
      g_free (after);
      after = g_strdup (((FsStorageObject *)page->pdata[page->len - 1])->key);
      pages++;
    }
  g_assert_cmpuint (pages, ==, 3);
  g_assert_cmpuint (seen, ==, MANY_KEYS);
}

static void
test_list_start_after (Fixture *fx, gconstpointer data)
{
  g_autoptr (GPtrArray) keys = make_many_keys (fx->storage, fx->backend);
  g_autoptr (GPtrArray) got = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) page = NULL;
  gboolean truncated = TRUE;

  /* After an existing key: exactly the keys after it, across pages. */
  got = list_all_keys (fx->storage, "", keys->pdata[1234]);
  g_assert_cmpuint (got->len, ==, MANY_KEYS - 1235);
  for (guint i = 0; i < got->len; i++)
    g_assert_cmpstr (got->pdata[i], ==, keys->pdata[1235 + i]);
  g_clear_pointer (&got, g_ptr_array_unref);

  if (fx->backend->no_byte_order == NULL)
    {
      /* After a string that is no key, between "d100/a" and "d100/e/f". */
      got = list_all_keys (fx->storage, "d100/", "d100/b");
      g_assert_cmpuint (got->len, ==, 1);
      g_assert_cmpstr (got->pdata[0], ==, "d100/e/f");
      g_clear_pointer (&got, g_ptr_array_unref);

      /* After a "directory" name: everything inside it is after it. */
      got = list_all_keys (fx->storage, "d100", "d100/");
      g_assert_cmpuint (got->len, ==, 3);
      g_assert_cmpstr (got->pdata[0], ==, "d100/a");
      g_assert_cmpstr (got->pdata[1], ==, "d100/e/f");
      g_assert_cmpstr (got->pdata[2], ==, "d1000");
      g_clear_pointer (&got, g_ptr_array_unref);
    }
  else
    {
      /* The same with the plain key set (d100/a, /b, /c, /e/f, /g). */
      got = list_all_keys (fx->storage, "d100/", "d100/bb");
      g_assert_cmpuint (got->len, ==, 3);
      g_assert_cmpstr (got->pdata[0], ==, "d100/c");
      g_assert_cmpstr (got->pdata[1], ==, "d100/e/f");
      g_assert_cmpstr (got->pdata[2], ==, "d100/g");
      g_clear_pointer (&got, g_ptr_array_unref);
    }

  /* After the last key, and after everything. */
  g_assert_true (fs_storage_list (fx->storage, "", NULL, keys->pdata[MANY_KEYS - 1], 1000, &page,
                                  NULL, &truncated, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (page->len, ==, 0);
  g_assert_false (truncated);
  got = list_all_keys (fx->storage, "", "~");
  g_assert_cmpuint (got->len, ==, 0);
}

static const gchar *const prefix_keys[]
  = { "a.b", "a/b-1", "a/b.x", "a/b/c", "a/ba", "a/bc/d", "a/c", "ab", NULL };

static void
put_prefix_keys (FsStorage *storage)
{
  /* Put in reverse so the listing cannot just reflect creation order. */
  for (gint i = G_N_ELEMENTS (prefix_keys) - 2; i >= 0; i--)
    put_ok (storage, prefix_keys[i], prefix_keys[i]);
}

static void
test_list_prefix (Fixture *fx, gconstpointer data)
{
  g_autoptr (GPtrArray) got = NULL;
  const gchar *const under_a_b[] = { "a/b-1", "a/b.x", "a/b/c", "a/ba", "a/bc/d", NULL };
  const gchar *const under_a[] = { "a/b-1", "a/b.x", "a/b/c", "a/ba", "a/bc/d", "a/c", NULL };
  const gchar *const under_a_bc[] = { "a/bc/d", NULL };
  const gchar *const none[] = { NULL };

  put_prefix_keys (fx->storage);

  got = list_all_keys (fx->storage, "", NULL);
  assert_keys (got, prefix_keys);
  g_clear_pointer (&got, g_ptr_array_unref);

  /* String-prefix semantics: "a/b" matches "a/bc/d", not only "a/b/…". */
  got = list_all_keys (fx->storage, "a/b", NULL);
  assert_keys (got, under_a_b);
  g_clear_pointer (&got, g_ptr_array_unref);

  got = list_all_keys (fx->storage, "a/", NULL);
  assert_keys (got, under_a);
  g_clear_pointer (&got, g_ptr_array_unref);

  got = list_all_keys (fx->storage, "a/bc/", NULL);
  assert_keys (got, under_a_bc);
  g_clear_pointer (&got, g_ptr_array_unref);

  got = list_all_keys (fx->storage, "a/bc/d", NULL);
  assert_keys (got, under_a_bc);
  g_clear_pointer (&got, g_ptr_array_unref);

  got = list_all_keys (fx->storage, "zz", NULL);
  assert_keys (got, none);
  g_clear_pointer (&got, g_ptr_array_unref);

  got = list_all_keys (fx->storage, "no/such/dir/", NULL);
  assert_keys (got, none);
}

static void
list_page (FsStorage *storage, const gchar *prefix, const gchar *start_after, guint max_keys,
           const gchar *const *want_objects, const gchar *const *want_prefixes,
           gboolean want_truncated, gchar **last)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) objects = NULL;
  g_autoptr (GPtrArray) prefixes = NULL;
  gboolean truncated = !want_truncated;

  g_assert_true (fs_storage_list (storage, prefix, "/", start_after, max_keys, &objects, &prefixes,
                                  &truncated, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (objects->len, ==, g_strv_length ((gchar **)want_objects));
  for (guint i = 0; i < objects->len; i++)
    g_assert_cmpstr (((FsStorageObject *)objects->pdata[i])->key, ==, want_objects[i]);
  g_assert_nonnull (prefixes);
  assert_keys (prefixes, want_prefixes);
  g_assert_true (truncated == want_truncated);
  if (last != NULL)
    {
      g_free (*last);
      *last = g_strdup (page_last (objects, prefixes));
    }
}

static void
test_list_delimiter (Fixture *fx, gconstpointer data)
{
  g_autofree gchar *last = NULL;
  const gchar *const none[] = { NULL };

  put_prefix_keys (fx->storage);
  put_ok (fx->storage, "p/.journal/dev1/0000000000000001", "j");
  put_ok (fx->storage, "p/.journal/dev1/0000000000000002", "j");
  put_ok (fx->storage, "p/.journal/dev2/0000000000000001", "j");
  put_ok (fx->storage, "p/ab/stem.version", "o");

  /* s3rver drops "p/" here (it hides the dot-directory below it); the remote
   * format never lists the bucket root with a delimiter. */
  if (!loose_order)
    {
      const gchar *const objs[] = { "a.b", "ab", NULL };
      const gchar *const cps[] = { "a/", "p/", NULL };
      list_page (fx->storage, "", NULL, 1000, objs, cps, FALSE, NULL);
    }
  {
    const gchar *const objs[] = { "a/b-1", "a/b.x", "a/ba", "a/c", NULL };
    const gchar *const cps[] = { "a/b/", "a/bc/", NULL };
    list_page (fx->storage, "a/", NULL, 1000, objs, cps, FALSE, NULL);
  }
  {
    const gchar *const cps[] = { "a/b/", "a/bc/", NULL };
    const gchar *const objs[] = { "a/b-1", "a/b.x", "a/ba", NULL };
    list_page (fx->storage, "a/b", NULL, 1000, objs, cps, FALSE, NULL);
  }
  {
    const gchar *const cps[] = { "p/.journal/dev1/", "p/.journal/dev2/", NULL };
    list_page (fx->storage, "p/.journal/", NULL, 1000, none, cps, FALSE, NULL);
  }

  /* Paging across '/' needs byte order (see list-byte-order). */
  if (!loose_order)
    {
    /* Pages of two over "a/": a/b-1 a/b.x | a/b/ a/ba | a/bc/ a/c.
     * Common prefixes count toward max_keys and are returned once. */
    {
      const gchar *const objs[] = { "a/b-1", "a/b.x", NULL };
      list_page (fx->storage, "a/", NULL, 2, objs, none, TRUE, &last);
      g_assert_cmpstr (last, ==, "a/b.x");
    }
    {
      const gchar *const objs[] = { "a/ba", NULL };
      const gchar *const cps[] = { "a/b/", NULL };
      list_page (fx->storage, "a/", last, 2, objs, cps, TRUE, &last);
      g_assert_cmpstr (last, ==, "a/ba");
    }
    {
      const gchar *const objs[] = { "a/c", NULL };
      const gchar *const cps[] = { "a/bc/", NULL };
      list_page (fx->storage, "a/", last, 2, objs, cps, FALSE, &last);
    }
    /* Starting after a common prefix skips everything under it. */
    {
      const gchar *const objs[] = { "a/ba", "a/c", NULL };
      const gchar *const cps[] = { "a/bc/", NULL };
      list_page (fx->storage, "a/", "a/b/", 1000, objs, cps, FALSE, NULL);
    }
    }
  /* One common prefix per page. */
  {
    const gchar *const cps1[] = { "p/.journal/dev1/", NULL };
    const gchar *const cps2[] = { "p/.journal/dev2/", NULL };
    list_page (fx->storage, "p/.journal/", NULL, 1, none, cps1, TRUE, &last);
    list_page (fx->storage, "p/.journal/", last, 1, none, cps2, FALSE, &last);
  }
}

static void
test_range_get (Fixture *fx, gconstpointer data)
{
  g_autoptr (GString) body = g_string_new (NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (GInputStream) in = NULL;

  for (guint i = 0; i < 100; i++)
    g_string_append_c (body, (gchar)('!' + i % 90));
  put_ok (fx->storage, "r", body->str);

#define ASSERT_RANGE(off, len, want_off, want_len)                                                 \
  G_STMT_START                                                                                     \
  {                                                                                                \
    g_autofree gchar *got = get_range_string (fx->storage, "r", (off), (len));                     \
    g_autofree gchar *want = g_strndup (body->str + (want_off), (want_len));                       \
    g_assert_cmpstr (got, ==, want);                                                               \
  }                                                                                                \
  G_STMT_END

  ASSERT_RANGE (0, -1, 0, 100);  /* whole */
  ASSERT_RANGE (10, 20, 10, 20); /* middle */
  ASSERT_RANGE (90, -1, 90, 10); /* to the end */
  ASSERT_RANGE (90, 50, 90, 10); /* length past the end: cut at the end */
  ASSERT_RANGE (0, 0, 0, 0);     /* empty range */
  ASSERT_RANGE (99, 1, 99, 1);   /* last byte */
  ASSERT_RANGE (100, -1, 0, 0);  /* offset at the end: nothing */
  ASSERT_RANGE (150, 10, 0, 0);  /* offset past the end: nothing */
#undef ASSERT_RANGE

  in = fs_storage_get (fx->storage, "missing", 10, 5, &error);
  g_assert_error (error, FS_STORAGE_ERROR, FS_STORAGE_ERROR_NOT_FOUND);
  g_assert_null (in);
}

#define LARGE_SIZE (G_GUINT64_CONSTANT (100) * 1024 * 1024)

static void
test_large_object (Fixture *fx, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (FsStorageObject) obj = NULL;
  g_autoptr (GTimer) timer = g_timer_new ();
  guint8 digest[32];

  put_random (fx->storage, "big/object", LARGE_SIZE, 0x5eed, digest);
  g_test_message ("put 100 MiB in %.2f s", g_timer_elapsed (timer, NULL));
  obj = fs_storage_stat (fx->storage, "big/object", &error);
  g_assert_no_error (error);
  g_assert_cmpuint (obj->size, ==, LARGE_SIZE);
  g_timer_start (timer);
  assert_object_digest (fx->storage, "big/object", LARGE_SIZE, digest);
  g_test_message ("read back and hashed 100 MiB in %.2f s", g_timer_elapsed (timer, NULL));
  assert_no_leftovers (fx);
}

static gboolean
skip_unless_conditional (Fixture *fx)
{
  if (fs_storage_supports_conditional_put (fx->storage))
    return FALSE;
  g_test_skip ("the backend does not support conditional puts (supports_conditional_put is FALSE)");
  return TRUE;
}

static void
test_if_absent (Fixture *fx, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autofree gchar *version = NULL;
  g_autofree gchar *text = NULL;
  g_autoptr (FsStorageObject) obj = NULL;

  if (skip_unless_conditional (fx))
    return;

  g_assert_true (
    put_string (fx->storage, "once/k", "first", FS_STORAGE_IF_ABSENT, &version, &error));
  g_assert_no_error (error);
  obj = fs_storage_stat (fx->storage, "once/k", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (obj->version, ==, version);

  g_assert_false (put_string (fx->storage, "once/k", "second", FS_STORAGE_IF_ABSENT, NULL, &error));
  g_assert_error (error, FS_STORAGE_ERROR, FS_STORAGE_ERROR_PRECONDITION_FAILED);
  text = get_string (fx->storage, "once/k");
  g_assert_cmpstr (text, ==, "first");
  assert_no_leftovers (fx);
}

static void
test_expected_version (Fixture *fx, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autofree gchar *v1 = NULL;
  g_autofree gchar *v2 = NULL;
  g_autofree gchar *text = NULL;

  if (skip_unless_conditional (fx))
    return;

  g_assert_true (put_string (fx->storage, "cas", "one", NULL, &v1, &error));
  g_assert_no_error (error);
  g_assert_true (put_string (fx->storage, "cas", "two", v1, &v2, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (v1, !=, v2);

  /* Stale version loses, and changes nothing. */
  g_assert_false (put_string (fx->storage, "cas", "three", v1, NULL, &error));
  g_assert_error (error, FS_STORAGE_ERROR, FS_STORAGE_ERROR_PRECONDITION_FAILED);
  g_clear_error (&error);
  text = get_string (fx->storage, "cas");
  g_assert_cmpstr (text, ==, "two");

  /* An expected version of a missing key loses. */
  g_assert_false (put_string (fx->storage, "cas-missing", "x", v2, NULL, &error));
  g_assert_error (error, FS_STORAGE_ERROR, FS_STORAGE_ERROR_PRECONDITION_FAILED);
  g_clear_error (&error);
  g_assert_null (fs_storage_stat (fx->storage, "cas-missing", &error));
  g_assert_error (error, FS_STORAGE_ERROR, FS_STORAGE_ERROR_NOT_FOUND);
  assert_no_leftovers (fx);
}

/* In a child process: wait for the parent to close our stdin, then try the
 * conditional put. Arguments: plugin key expected content setting=value… */
static int
race_child (int argc, char **argv)
{
  g_autoptr (GHashTable) settings = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  g_autoptr (GObject) obj = NULL;
  g_autoptr (GError) error = NULL;
  char c;

  if (argc < 6)
    return RACE_EXIT_ERROR;
  for (int i = 6; i < argc; i++)
    {
      g_auto (GStrv) kv = g_strsplit (argv[i], "=", 2);
      if (g_strv_length (kv) == 2)
        g_hash_table_insert (settings, g_strdup (kv[0]), g_strdup (kv[1]));
    }
  obj = fs_plugin_new_instance (argv[2], FS_TYPE_STORAGE, &error);
  if (obj == NULL || !fs_storage_configure (FS_STORAGE (obj), settings, &error))
    {
      g_printerr ("race child: %s\n", error->message);
      return RACE_EXIT_ERROR;
    }
  while (read (STDIN_FILENO, &c, 1) > 0)
    ;
  if (put_string (FS_STORAGE (obj), argv[3], argv[5], argv[4], NULL, &error))
    return RACE_EXIT_WON;
  if (g_error_matches (error, FS_STORAGE_ERROR, FS_STORAGE_ERROR_PRECONDITION_FAILED))
    return RACE_EXIT_LOST;
  g_printerr ("race child: %s\n", error->message);
  return RACE_EXIT_ERROR;
}

static void
test_race (Fixture *fx, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autofree gchar *v0 = NULL;
  g_autofree gchar *self_exe = g_file_read_link ("/proc/self/exe", &error);
  g_autofree gchar *text = NULL;
  GSubprocess *procs[RACE_PROCESSES];
  gint winner = -1;
  guint lost = 0;

  g_assert_no_error (error);
  if (skip_unless_conditional (fx))
    return;
  g_assert_true (put_string (fx->storage, "race/k", "base", NULL, &v0, &error));
  g_assert_no_error (error);

  for (guint i = 0; i < RACE_PROCESSES; i++)
    {
      g_autoptr (GStrvBuilder) args = g_strv_builder_new ();
      g_auto (GStrv) argv = NULL;
      g_autofree gchar *content = g_strdup_printf ("child %u", i);
      GHashTableIter iter;
      gpointer k, v;

      g_strv_builder_add_many (args, self_exe, RACE_CHILD_ARG, fx->backend->plugin, "race/k", v0,
                               content, NULL);
      g_hash_table_iter_init (&iter, fx->settings);
      while (g_hash_table_iter_next (&iter, &k, &v))
        {
          g_autofree gchar *kv = g_strdup_printf ("%s=%s", (gchar *)k, (gchar *)v);
          g_strv_builder_add (args, kv);
        }
      argv = g_strv_builder_end (args);
      procs[i]
        = g_subprocess_newv ((const gchar *const *)argv, G_SUBPROCESS_FLAGS_STDIN_PIPE, &error);
      g_assert_no_error (error);
    }
  /* Release them all at once. */
  for (guint i = 0; i < RACE_PROCESSES; i++)
    g_output_stream_close (g_subprocess_get_stdin_pipe (procs[i]), NULL, NULL);

  for (guint i = 0; i < RACE_PROCESSES; i++)
    {
      g_assert_true (g_subprocess_wait (procs[i], NULL, &error));
      g_assert_no_error (error);
      g_assert_true (g_subprocess_get_if_exited (procs[i]));
      switch (g_subprocess_get_exit_status (procs[i]))
        {
          case RACE_EXIT_WON:
            g_assert_cmpint (winner, ==, -1);
            winner = (gint)i;
            break;
          case RACE_EXIT_LOST:
            lost++;
            break;
          default:
            g_error ("race child %u failed with status %d", i,
                     g_subprocess_get_exit_status (procs[i]));
        }
      g_object_unref (procs[i]);
    }
  g_assert_cmpint (winner, >=, 0);
  g_assert_cmpuint (lost, ==, RACE_PROCESSES - 1);
  text = get_string (fx->storage, "race/k");
  {
    g_autofree gchar *want = g_strdup_printf ("child %d", winner);
    g_assert_cmpstr (text, ==, want);
  }
  assert_no_leftovers (fx);
}

static void
test_delete (Fixture *fx, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) keys = NULL;
  g_autoptr (FsStorageObject) obj = NULL;
  const gchar *const left[] = { "x/keep", NULL };

  put_ok (fx->storage, "x/y/z", "data");
  put_ok (fx->storage, "x/keep", "data");
  g_assert_true (fs_storage_delete (fx->storage, "x/y/z", &error));
  g_assert_no_error (error);
  obj = fs_storage_stat (fx->storage, "x/y/z", &error);
  g_assert_error (error, FS_STORAGE_ERROR, FS_STORAGE_ERROR_NOT_FOUND);
  g_clear_error (&error);

  /* Deleting again, and deleting what never existed, succeed. */
  g_assert_true (fs_storage_delete (fx->storage, "x/y/z", &error));
  g_assert_no_error (error);
  g_assert_true (fs_storage_delete (fx->storage, "never/was", &error));
  g_assert_no_error (error);

  keys = list_all_keys (fx->storage, "", NULL);
  assert_keys (keys, left);

  /* The key can be created again. */
  put_ok (fx->storage, "x/y/z", "again");
}

static gchar *
random_base32 (GRand *rand, guint len)
{
  const gchar alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";
  gchar *s = g_malloc (len + 1);

  for (guint i = 0; i < len; i++)
    s[i] = alphabet[g_rand_int_range (rand, 0, 32)];
  s[len] = '\0';
  return s;
}

static void
test_format_keys (Fixture *fx, gconstpointer data)
{
  g_autoptr (GRand) rand = g_rand_new_with_seed (42);
  g_autoptr (GPtrArray) keys = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GPtrArray) got = NULL;
  const gchar *prefixes[] = { "", "photos/", "my-folder_2/", "a.b/c-d/" };

  for (guint p = 0; p < G_N_ELEMENTS (prefixes); p++)
    {
      for (guint i = 0; i < 6; i++)
        {
          g_autofree gchar *fan = random_base32 (rand, 2);
          g_autofree gchar *stem = random_base32 (rand, 52 + i);
          g_autofree gchar *ver = random_base32 (rand, 26);
          g_ptr_array_add (keys, g_strdup_printf ("%s%s/%s.%s", prefixes[p], fan, stem, ver));
        }
      for (guint d = 0; d < 2; d++)
        {
          g_autofree gchar *dev = random_base32 (rand, 26);
          for (guint64 seq = 1; seq <= 3; seq++)
            g_ptr_array_add (keys, g_strdup_printf ("%s.journal/%s/%016" G_GINT64_MODIFIER "x",
                                                    prefixes[p], dev,
                                                    seq * G_GUINT64_CONSTANT (0x0123456789)));
        }
    }
  g_ptr_array_add (keys, g_strdup ("0123456789-_.abcxyz234567"));
  g_ptr_array_add (keys, g_strdup ("config"));

  for (guint i = 0; i < keys->len; i++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (FsStorageObject) obj = NULL;
      g_autofree gchar *text = NULL;

      put_ok (fx->storage, keys->pdata[i], keys->pdata[i]);
      obj = fs_storage_stat (fx->storage, keys->pdata[i], &error);
      g_assert_no_error (error);
      g_assert_cmpuint (obj->size, ==, strlen (keys->pdata[i]));
      text = get_string (fx->storage, keys->pdata[i]);
      g_assert_cmpstr (text, ==, keys->pdata[i]);
    }
  g_ptr_array_sort (keys, compare_strings);
  g_ptr_array_add (keys, NULL);
  got = list_all_keys (fx->storage, "", NULL);
  assert_keys (got, (const gchar *const *)keys->pdata);
}

static void
test_invalid_keys (Fixture *fx, gconstpointer data)
{
  const gchar *bad[]
    = { "", "/abs", "a//b", "./a", "a/./b", "a/.", "..", ".", "../x", "a/../b", "a/", "/", "//" };
  FsStorageInterface *iface = FS_STORAGE_GET_IFACE (fx->storage);
  g_autoptr (GPtrArray) keys = NULL;

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (GInputStream) in = NULL;
      g_autoptr (GInputStream) src = g_memory_input_stream_new_from_data ("x", 1, NULL);
      g_autoptr (FsStorageObject) obj = NULL;

      g_test_message ("key ‘%s’", bad[i]);
      /* The put wrapper refuses "" with a critical; ask the backend itself. */
      g_assert_false (iface->put (fx->storage, bad[i], src, NULL, NULL, NULL, &error));
      g_assert_error (error, FS_STORAGE_ERROR, FS_STORAGE_ERROR_INVALID);
      g_clear_error (&error);
      obj = fs_storage_stat (fx->storage, bad[i], &error);
      g_assert_error (error, FS_STORAGE_ERROR, FS_STORAGE_ERROR_INVALID);
      g_assert_null (obj);
      g_clear_error (&error);
      in = fs_storage_get (fx->storage, bad[i], 0, -1, &error);
      g_assert_error (error, FS_STORAGE_ERROR, FS_STORAGE_ERROR_INVALID);
      g_assert_null (in);
      g_clear_error (&error);
      g_assert_false (fs_storage_delete (fx->storage, bad[i], &error));
      g_assert_error (error, FS_STORAGE_ERROR, FS_STORAGE_ERROR_INVALID);
    }
  keys = list_all_keys (fx->storage, "", NULL);
  g_assert_cmpuint (keys->len, ==, 0);
  assert_no_leftovers (fx);
}

static void
test_missing_store (gconstpointer data)
{
  const StorageBackend *backend = data;
  g_autoptr (GHashTable) settings = backend->new_missing_store ();
  g_autoptr (GError) error = NULL;
  g_autoptr (GObject) obj = fs_plugin_new_instance (backend->plugin, FS_TYPE_STORAGE, &error);

  g_assert_no_error (error);
  g_assert_false (fs_storage_configure (FS_STORAGE (obj), settings, &error));
  g_assert_error (error, FS_STORAGE_ERROR, FS_STORAGE_ERROR_NO_BUCKET);
  g_test_message ("%s", error->message);
}

static void
assert_only_key (Fixture *fx, const gchar *key, const gchar *text)
{
  g_autoptr (GPtrArray) keys = list_all_keys (fx->storage, "", NULL);
  g_autofree gchar *got = get_string (fx->storage, key);
  const gchar *const want[] = { key, NULL };

  assert_keys (keys, want);
  g_assert_cmpstr (got, ==, text);
  assert_no_leftovers (fx);
}

static void
test_failing_source (Fixture *fx, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (TestStream) src = test_stream_new (8 * 1024 * 1024, 7);

  put_ok (fx->storage, "f/k", "previous");
  src->fail_at = 3 * 1024 * 1024 + 17;
  g_assert_false (
    fs_storage_put (fx->storage, "f/k", G_INPUT_STREAM (src), NULL, NULL, NULL, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_FAILED);
  g_test_message ("%s", error->message);
  assert_only_key (fx, "f/k", "previous");

  /* The same for a key that did not exist: nothing appears. */
  g_clear_object (&src);
  g_clear_error (&error);
  src = test_stream_new (1024 * 1024, 8);
  src->fail_at = 1000;
  g_assert_false (fs_storage_put (fx->storage, "f/new", G_INPUT_STREAM (src), FS_STORAGE_IF_ABSENT,
                                  NULL, NULL, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_FAILED);
  assert_only_key (fx, "f/k", "previous");
}

static void
test_cancel (Fixture *fx, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (TestStream) src = test_stream_new (8 * 1024 * 1024, 9);
  g_autoptr (GCancellable) cancellable = g_cancellable_new ();

  put_ok (fx->storage, "c/k", "previous");
  src->cancel = g_object_ref (cancellable);
  src->cancel_at = 2 * 1024 * 1024;
  g_assert_false (
    fs_storage_put (fx->storage, "c/k", G_INPUT_STREAM (src), NULL, NULL, cancellable, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_cmpuint (src->pos, <, src->size);
  assert_only_key (fx, "c/k", "previous");
}

typedef struct
{
  FsStorage *storage;
  guint thread;
} ChurnData;

static gpointer
churn_thread (gpointer user_data)
{
  ChurnData *cd = user_data;

  for (guint i = 0; i < 100; i++)
    {
      g_autoptr (GError) error = NULL;
      g_autofree gchar *key = g_strdup_printf ("shared/dir/t%u-%u", cd->thread, i);

      if (!put_string (cd->storage, key, key, NULL, NULL, &error)
          || !fs_storage_delete (cd->storage, key, &error))
        return g_strdup (error->message);
    }
  return NULL;
}

/* Puts and deletes in one directory from several threads: a delete pruning
 * the directory must never make a concurrent put fail. */
static void
test_concurrent_put_delete (Fixture *fx, gconstpointer data)
{
  GThread *threads[6];
  ChurnData cds[G_N_ELEMENTS (threads)];
  g_autoptr (GPtrArray) keys = NULL;

  if (fx->backend->no_concurrent_delete != NULL)
    {
      g_test_skip (fx->backend->no_concurrent_delete);
      return;
    }

  for (guint i = 0; i < G_N_ELEMENTS (threads); i++)
    {
      cds[i].storage = fx->storage;
      cds[i].thread = i;
      threads[i] = g_thread_new ("churn", churn_thread, &cds[i]);
    }
  for (guint i = 0; i < G_N_ELEMENTS (threads); i++)
    {
      g_autofree gchar *failure = g_thread_join (threads[i]);
      g_assert_cmpstr (failure, ==, NULL);
    }
  keys = list_all_keys (fx->storage, "", NULL);
  g_assert_cmpuint (keys->len, ==, 0);
  assert_no_leftovers (fx);
}

static void
test_list_byte_order (Fixture *fx, gconstpointer data)
{
  const gchar *keys[] = { "d/a", "d-b", "d.c", "d/e/f", "d0", "d/\xc3\xa9", "d/z" };
  const gchar *sorted[] = { "d-b", "d.c", "d/a", "d/e/f", "d/z", "d/\xc3\xa9", "d0" };
  g_autoptr (GPtrArray) listed = NULL;

  if (fx->backend->no_byte_order != NULL)
    {
      g_test_skip (fx->backend->no_byte_order);
      return;
    }
  for (gsize i = 0; i < G_N_ELEMENTS (keys); i++)
    put_ok (fx->storage, keys[i], "x");
  listed = list_all_keys (fx->storage, "", NULL);
  g_assert_cmpuint (listed->len, ==, G_N_ELEMENTS (sorted));
  for (gsize i = 0; i < G_N_ELEMENTS (sorted); i++)
    g_assert_cmpstr (g_ptr_array_index (listed, i), ==, sorted[i]);
}

static void
add_test (const StorageBackend *backend, const gchar *behaviour,
          void (*func) (Fixture *, gconstpointer))
{
  g_autofree gchar *path = g_strdup_printf ("/storage/%s/%s", backend->name, behaviour);
  g_test_add (path, Fixture, backend, fixture_setup, func, fixture_teardown);
}

static void
add_conformance_tests (const StorageBackend *backend)
{
  g_autofree gchar *missing = g_strdup_printf ("/storage/%s/missing-store", backend->name);

  add_test (backend, "put-get", test_put_get);
  add_test (backend, "not-found", test_missing);
  add_test (backend, "overwrite-version", test_overwrite_version);
  add_test (backend, "list-pagination", test_list_pagination);
  add_test (backend, "list-byte-order", test_list_byte_order);
  add_test (backend, "list-start-after", test_list_start_after);
  add_test (backend, "list-prefix", test_list_prefix);
  add_test (backend, "list-delimiter", test_list_delimiter);
  add_test (backend, "range-get", test_range_get);
  add_test (backend, "large-object", test_large_object);
  add_test (backend, "if-absent", test_if_absent);
  add_test (backend, "expected-version", test_expected_version);
  add_test (backend, "race", test_race);
  add_test (backend, "delete", test_delete);
  add_test (backend, "format-keys", test_format_keys);
  add_test (backend, "invalid-keys", test_invalid_keys);
  add_test (backend, "failing-source", test_failing_source);
  add_test (backend, "cancel", test_cancel);
  add_test (backend, "concurrent-put-delete", test_concurrent_put_delete);
  g_test_add_data_func (missing, backend, test_missing_store);
}

/* ---- storage-local ------------------------------------------------------ */

static GHashTable *
local_settings (const gchar *root)
{
  GHashTable *settings = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  g_hash_table_insert (settings, g_strdup ("root"), g_strdup (root));
  return settings;
}

static GHashTable *
local_new_store (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree gchar *root = g_dir_make_tmp ("fs-storage-XXXXXX", &error);

  g_assert_no_error (error);
  return local_settings (root);
}

static GHashTable *
local_new_missing_store (void)
{
  g_autofree gchar *root
    = g_build_filename (g_get_tmp_dir (), "fs-storage-missing", "does-not-exist", NULL);
  return local_settings (root);
}

static void
local_destroy_store (GHashTable *settings)
{
  rm_rf (g_hash_table_lookup (settings, "root"));
}

static guint
local_count_leftovers (GHashTable *settings)
{
  g_autofree gchar *tmpdir
    = g_build_filename (g_hash_table_lookup (settings, "root"), ".fs-tmp", NULL);
  g_autoptr (GDir) dir = g_dir_open (tmpdir, 0, NULL);
  guint n = 0;

  while (dir != NULL && g_dir_read_name (dir) != NULL)
    n++;
  return n;
}

static const StorageBackend local_backend = {
  .name = "local",
  .plugin = "storage-local",
  .new_store = local_new_store,
  .new_missing_store = local_new_missing_store,
  .destroy_store = local_destroy_store,
  .count_leftovers = local_count_leftovers,
};

/* ---- storage-s3 (only under tests/s3/with-s3) --------------------------- */

static GHashTable *
s3_settings (const gchar *bucket)
{
  GHashTable *settings = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  const struct {
    const gchar *setting;
    const gchar *env;
  } from_env[] = {
    { "endpoint", "FOLDERSYNC_TEST_S3_ENDPOINT" },
    { "region", "FOLDERSYNC_TEST_S3_REGION" },
    { "access-key", "FOLDERSYNC_TEST_S3_ACCESS_KEY" },
    { "secret-key", "FOLDERSYNC_TEST_S3_SECRET_KEY" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (from_env); i++)
    g_hash_table_insert (settings, g_strdup (from_env[i].setting),
                         g_strdup (g_getenv (from_env[i].env)));
  g_hash_table_insert (settings, g_strdup ("bucket"), g_strdup (bucket));
  return settings;
}

/* A fresh bucket per test, made by an independent client (curl). */
static GHashTable *
s3_new_store (void)
{
  static guint counter;
  g_autofree gchar *bucket = g_strdup_printf ("conformance-%d-%u", (int) getpid (), ++counter);
  g_autofree gchar *url = g_strdup_printf ("%s/%s", g_getenv ("FOLDERSYNC_TEST_S3_ENDPOINT"), bucket);
  g_autofree gchar *user = g_strdup_printf ("%s:%s", g_getenv ("FOLDERSYNC_TEST_S3_ACCESS_KEY"),
                                            g_getenv ("FOLDERSYNC_TEST_S3_SECRET_KEY"));
  g_autofree gchar *sigv4 = g_strdup_printf ("aws:amz:%s:s3", g_getenv ("FOLDERSYNC_TEST_S3_REGION"));
  const gchar *argv[] = { "curl", "-sS", "--fail", "-X", "PUT", "--aws-sigv4", sigv4, "--user", user,
                          "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD", url, NULL };
  g_autoptr (GError) error = NULL;
  gint status = 0;

  g_spawn_sync (NULL, (gchar **) argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL, NULL,
                NULL, NULL, NULL, &status, &error);
  g_assert_no_error (error);
  g_spawn_check_wait_status (status, &error);
  g_assert_no_error (error);
  return s3_settings (bucket);
}

static GHashTable *
s3_new_missing_store (void)
{
  return s3_settings ("no-such-bucket-here");
}

static void
s3_destroy_store (GHashTable *settings)
{
  /* The server and its data go when tests/s3/with-s3 stops it. */
}

static const StorageBackend s3_backend = {
  .name = "s3",
  .plugin = "storage-s3",
  .new_store = s3_new_store,
  .new_missing_store = s3_new_missing_store,
  .destroy_store = s3_destroy_store,
  .count_leftovers = NULL,
  /* AWS S3 and MinIO list in UTF-8 byte order; s3rver walks its data
   * directory instead ("d/a" before "d-b"). The remote format never relies
   * on order across '/'. */
  .no_byte_order = "s3rver lists in file-system order, not byte order, and hides "
                   "dot-directories from a delimiter listing of the bucket root",
  .no_concurrent_delete = "s3rver crashes on concurrent PUT and DELETE in one directory "
                          "(a race in its file store)",
};

static void
test_local_missing_root_setting (void)
{
  g_autoptr (GHashTable) settings = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr (GError) error = NULL;
  g_autoptr (GObject) obj = fs_plugin_new_instance ("storage-local", FS_TYPE_STORAGE, &error);
  g_autoptr (GHashTable) file_settings = NULL;
  g_autofree gchar *file = NULL;
  int fd;

  g_assert_no_error (error);
  g_assert_false (fs_storage_configure (FS_STORAGE (obj), settings, &error));
  g_assert_error (error, FS_STORAGE_ERROR, FS_STORAGE_ERROR_INVALID);
  g_assert_nonnull (strstr (error->message, "root"));
  g_clear_error (&error);

  /* A root that is a file, not a directory. */
  fd = g_file_open_tmp ("fs-storage-file-XXXXXX", &file, &error);
  g_assert_no_error (error);
  close (fd);
  file_settings = local_settings (file);
  g_assert_false (fs_storage_configure (FS_STORAGE (obj), file_settings, &error));
  g_assert_error (error, FS_STORAGE_ERROR, FS_STORAGE_ERROR_NO_BUCKET);
  g_assert_nonnull (strstr (error->message, file));
  unlink (file);
}

static void
test_local_reserved (Fixture *fx, gconstpointer data)
{
  const gchar *root = g_hash_table_lookup (fx->settings, "root");
  const gchar *reserved[] = { ".fs-tmp/x", ".fs-lock", "a/.fs-x", ".fs-", "ok/.fs-tmp/y" };
  g_autofree gchar *stray = g_build_filename (root, ".fs-other", NULL);
  g_autofree gchar *link_path = g_build_filename (root, "link", NULL);
  g_autofree gchar *long_key = g_strnfill (300, 'a');
  g_autoptr (GPtrArray) keys = NULL;
  g_autoptr (GError) error = NULL;
  const gchar *const want[] = { "a/b", "c", NULL };
  const gchar *const none[] = { NULL };

  for (guint i = 0; i < G_N_ELEMENTS (reserved); i++)
    {
      g_assert_false (put_string (fx->storage, reserved[i], "x", NULL, NULL, &error));
      g_assert_error (error, FS_STORAGE_ERROR, FS_STORAGE_ERROR_INVALID);
      g_clear_error (&error);
    }
  g_assert_false (put_string (fx->storage, long_key, "x", NULL, NULL, &error));
  g_assert_error (error, FS_STORAGE_ERROR, FS_STORAGE_ERROR_INVALID);
  g_clear_error (&error);

  put_ok (fx->storage, "a/b", "x");
  put_ok (fx->storage, "c", "x");
  /* A key cannot also be a directory of keys here. */
  g_assert_false (put_string (fx->storage, "c/d", "x", NULL, NULL, &error));
  g_assert_error (error, FS_STORAGE_ERROR, FS_STORAGE_ERROR_INVALID);
  g_clear_error (&error);
  g_assert_false (put_string (fx->storage, "a", "x", NULL, NULL, &error));
  g_assert_error (error, FS_STORAGE_ERROR, FS_STORAGE_ERROR_INVALID);
  g_clear_error (&error);
  g_assert_true (g_file_set_contents (stray, "x", 1, NULL));
  g_assert_cmpint (symlink ("/etc/passwd", link_path), ==, 0);

  /* Neither the backend's own files nor symlinks are objects. */
  keys = list_all_keys (fx->storage, "", NULL);
  assert_keys (keys, want);
  g_clear_pointer (&keys, g_ptr_array_unref);
  keys = list_all_keys (fx->storage, ".fs-", NULL);
  assert_keys (keys, none);
  g_assert_null (fs_storage_get (fx->storage, "link", 0, -1, &error));
  g_assert_error (error, FS_STORAGE_ERROR, FS_STORAGE_ERROR_NOT_FOUND);
  g_clear_error (&error);

  /* A prefix that would leave the store matches nothing. */
  g_clear_pointer (&keys, g_ptr_array_unref);
  keys = list_all_keys (fx->storage, "../", NULL);
  assert_keys (keys, none);
}

static void
test_local_delete_prunes (Fixture *fx, gconstpointer data)
{
  const gchar *root = g_hash_table_lookup (fx->settings, "root");
  g_autofree gchar *a = g_build_filename (root, "a", NULL);
  g_autofree gchar *ab = g_build_filename (root, "a", "b", NULL);
  g_autoptr (GError) error = NULL;

  put_ok (fx->storage, "a/b/c/d", "x");
  put_ok (fx->storage, "a/keep", "x");
  g_assert_true (fs_storage_delete (fx->storage, "a/b/c/d", &error));
  g_assert_no_error (error);
  g_assert_false (g_file_test (ab, G_FILE_TEST_EXISTS));
  g_assert_true (g_file_test (a, G_FILE_TEST_IS_DIR));
  g_assert_true (fs_storage_delete (fx->storage, "a/keep", &error));
  g_assert_no_error (error);
  g_assert_false (g_file_test (a, G_FILE_TEST_EXISTS));
  g_assert_true (g_file_test (root, G_FILE_TEST_IS_DIR));
}

/* The mount point, derived from the test process's pid so that the trapped
 * child (whose parent it is) finds it without an environment variable. */
static gchar *
no_space_mount_point (pid_t test_pid)
{
  g_autofree gchar *name = g_strdup_printf ("fs-storage-nospace-%d", (int)test_pid);
  return g_build_filename (g_get_tmp_dir (), name, NULL);
}

static void
test_local_no_space (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree gchar *mnt = NULL;
  g_autofree gchar *err_out = NULL;
  gint status = 0;

  if (g_test_subprocess ())
    {
      /* In the child: the store is a 1 MiB tmpfs. */
      g_autofree gchar *store = no_space_mount_point (getppid ());
      Fixture fx = { &local_backend, local_settings (store), NULL };
      g_autoptr (TestStream) big = test_stream_new (4 * 1024 * 1024, 11);
      guint8 digest[32];

      fx.storage = storage_new (&local_backend, fx.settings, &error);
      g_assert_no_error (error);
      put_random (fx.storage, "k", 100 * 1024, 10, digest);

      g_assert_false (
        fs_storage_put (fx.storage, "k", G_INPUT_STREAM (big), NULL, NULL, NULL, &error));
      g_assert_error (error, FS_STORAGE_ERROR, FS_STORAGE_ERROR_NO_SPACE);
      g_test_message ("%s", error->message);
      g_clear_error (&error);
      assert_object_digest (fx.storage, "k", 100 * 1024, digest);
      assert_no_leftovers (&fx);

      g_clear_object (&big);
      big = test_stream_new (4 * 1024 * 1024, 12);
      g_assert_false (fs_storage_put (fx.storage, "new/key", G_INPUT_STREAM (big),
                                      FS_STORAGE_IF_ABSENT, NULL, NULL, &error));
      g_assert_error (error, FS_STORAGE_ERROR, FS_STORAGE_ERROR_NO_SPACE);
      assert_no_leftovers (&fx);
      {
        g_autoptr (GPtrArray) keys = list_all_keys (fx.storage, "", NULL);
        const gchar *const want[] = { "k", NULL };
        assert_keys (keys, want);
      }
      g_object_unref (fx.storage);
      g_hash_table_unref (fx.settings);
      return;
    }

  if (getuid () != 0)
    {
      g_test_skip ("filling a disk needs a small tmpfs, and mounting one needs root");
      return;
    }
  mnt = no_space_mount_point (getpid ());
  g_assert_cmpint (g_mkdir (mnt, 0700), ==, 0);
  {
    const gchar *argv[] = { "mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", mnt, NULL };
    if (!g_spawn_sync (NULL, (gchar **)argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL,
                       NULL, NULL, NULL, &err_out, &status, &error)
        || !g_spawn_check_wait_status (status, NULL))
      {
        g_autofree gchar *reason
          = g_strdup_printf ("could not mount a 1 MiB tmpfs to fill: %s",
                             error != NULL ? error->message : g_strstrip (err_out));
        rmdir (mnt);
        g_test_skip (reason);
        return;
      }
  }
  /* The checks run in a subprocess so that a failed assertion still lets us
   * unmount here. */
  g_test_trap_subprocess (NULL, 120 * G_USEC_PER_SEC, G_TEST_SUBPROCESS_INHERIT_STDERR);
  {
    const gchar *argv[] = { "umount", mnt, NULL };
    g_spawn_sync (NULL, (gchar **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, &status,
                  NULL);
    g_assert_true (g_spawn_check_wait_status (status, NULL));
  }
  g_assert_cmpint (rmdir (mnt), ==, 0);
  g_test_trap_assert_passed ();
}

int
main (int argc, char **argv)
{
  if (argc > 1 && strcmp (argv[1], RACE_CHILD_ARG) == 0)
    return race_child (argc, argv);

  g_test_init (&argc, &argv, NULL);
  fs_gcrypt_init ();

  add_conformance_tests (&local_backend);
  if (g_getenv ("FOLDERSYNC_TEST_S3_ENDPOINT") != NULL)
    add_conformance_tests (&s3_backend);

  g_test_add_func ("/storage/local/missing-root-setting", test_local_missing_root_setting);
  add_test (&local_backend, "reserved-names", test_local_reserved);
  add_test (&local_backend, "delete-prunes-directories", test_local_delete_prunes);
  g_test_add_func ("/storage/local/no-space", test_local_no_space);

  return g_test_run ();
}
