/* FsPacker on the real local store: members from several threads land in a
 * few packs and read back by range; a failed write is sticky; an unflushed
 * pack is never written. */
#include <ftw.h>
#include <stdio.h>
#include <string.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "fs-packer.h"
#include "fs-plugin-loader.h"
#include "fs-storage.h"

#define THREADS 4
#define MEMBERS_PER_THREAD 200

typedef struct {
  gchar *root;
  FsStorage *storage;
} Fixture;

typedef struct {
  FsPacker *packer;
  guint seed;
  GPtrArray *members; /* Member* */
} Worker;

typedef struct {
  GBytes *data;
  gchar *object;
  guint64 offset;
} Member;

static void
member_free (Member *m)
{
  g_bytes_unref (m->data);
  g_free (m->object);
  g_free (m);
}

static int
rm_rf_cb (const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
  return remove (path);
}

static void
fixture_setup (Fixture *fx, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GHashTable) settings = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr(GObject) obj = NULL;

  fx->root = g_dir_make_tmp ("test-packer-XXXXXX", &error);
  g_assert_no_error (error);
  g_hash_table_insert (settings, (gpointer) "root", fx->root);
  obj = fs_plugin_new_instance ("storage-local", FS_TYPE_STORAGE, &error);
  g_assert_no_error (error);
  g_assert_true (fs_storage_configure (FS_STORAGE (obj), settings, &error));
  g_assert_no_error (error);
  fx->storage = FS_STORAGE (g_steal_pointer (&obj));
}

static void
fixture_teardown (Fixture *fx, gconstpointer data)
{
  g_clear_object (&fx->storage);
  nftw (fx->root, rm_rf_cb, 16, FTW_DEPTH | FTW_PHYS);
  g_free (fx->root);
}

static GBytes *
random_bytes (GRand *rand, gsize len)
{
  guint8 *buf = g_malloc (MAX (len, 1));
  for (gsize i = 0; i < len; i++)
    buf[i] = (guint8) g_rand_int (rand);
  return g_bytes_new_take (buf, len);
}

static gpointer
worker_run (gpointer data)
{
  Worker *w = data;
  g_autoptr(GRand) rand = g_rand_new_with_seed (w->seed);

  for (guint i = 0; i < MEMBERS_PER_THREAD; i++)
    {
      Member *m = g_new0 (Member, 1);
      g_autoptr(GError) error = NULL;

      m->data = random_bytes (rand, (gsize) g_rand_int_range (rand, 1, 9000));
      g_assert_true (fs_packer_add (w->packer, m->data, &m->object, &m->offset, NULL, &error));
      g_assert_no_error (error);
      g_ptr_array_add (w->members, m);
    }
  return NULL;
}

static guint
count_packs (const gchar *root)
{
  g_autofree gchar *dir = g_build_filename (root, "pre", "p", NULL);
  g_autoptr(GDir) d = g_dir_open (dir, 0, NULL);
  const gchar *name;
  guint n = 0;

  while (d != NULL && (name = g_dir_read_name (d)) != NULL)
    {
      g_autofree gchar *sub = g_build_filename (dir, name, NULL);
      g_autoptr(GDir) s = g_dir_open (sub, 0, NULL);
      while (s != NULL && g_dir_read_name (s) != NULL)
        n++;
    }
  return n;
}

static void
test_members (Fixture *fx, gconstpointer data)
{
  g_autoptr(FsPacker) packer = fs_packer_new (fx->storage, "pre/", 64 * 1024, 1024);
  g_autoptr(GError) error = NULL;
  g_autoptr(GHashTable) packs = g_hash_table_new (g_str_hash, g_str_equal);
  Worker workers[THREADS];
  GThread *threads[THREADS];
  guint total = 0;

  for (guint t = 0; t < THREADS; t++)
    {
      workers[t].packer = packer;
      workers[t].seed = t + 1;
      workers[t].members = g_ptr_array_new_with_free_func ((GDestroyNotify) member_free);
      threads[t] = g_thread_new ("packer-test", worker_run, &workers[t]);
    }
  for (guint t = 0; t < THREADS; t++)
    g_thread_join (threads[t]);
  g_assert_true (fs_packer_flush (packer, NULL, &error));
  g_assert_no_error (error);

  for (guint t = 0; t < THREADS; t++)
    {
      for (guint i = 0; i < workers[t].members->len; i++)
        {
          Member *m = g_ptr_array_index (workers[t].members, i);
          g_autofree gchar *key = g_strconcat ("pre/", m->object, NULL);
          gsize len = g_bytes_get_size (m->data);
          g_autoptr(GInputStream) in = fs_storage_get (fx->storage, key, m->offset, (gint64) len,
                                                       &error);
          g_autoptr(GBytes) back = NULL;
          guint8 extra;

          g_assert_no_error (error);
          g_assert_true (g_str_has_prefix (m->object, "p/"));
          back = g_input_stream_read_bytes (in, len, NULL, &error);
          g_assert_no_error (error);
          g_assert_true (g_bytes_equal (back, m->data));
          g_assert_cmpint (g_input_stream_read (in, &extra, 1, NULL, NULL), ==, 0);
          g_hash_table_add (packs, m->object);
          total++;
        }
    }
  g_assert_cmpuint (total, ==, THREADS * MEMBERS_PER_THREAD);
  /* 800 members of 4.5 KiB on average in packs of 64 KiB: about 56 packs. */
  g_test_message ("%u members in %u packs", total, g_hash_table_size (packs));
  g_assert_cmpuint (g_hash_table_size (packs), >=, 40);
  g_assert_cmpuint (g_hash_table_size (packs), <=, 80);
  g_assert_cmpuint (count_packs (fx->root), ==, g_hash_table_size (packs));
  g_assert_cmpuint (fs_packer_get_packs_written (packer), ==, g_hash_table_size (packs));
  for (guint t = 0; t < THREADS; t++)
    g_ptr_array_unref (workers[t].members);
}

/* A pack that is never flushed is never written: its members were not
 * published, and nothing of them reaches the store. */
static void
test_unflushed (Fixture *fx, gconstpointer data)
{
  FsPacker *packer = fs_packer_new (fx->storage, "pre/", 1024 * 1024, 1024);
  g_autoptr(GBytes) bytes = g_bytes_new_static ("member", 6);
  g_autofree gchar *object = NULL;
  g_autoptr(GError) error = NULL;
  guint64 offset = 99;

  g_assert_true (fs_packer_add (packer, bytes, &object, &offset, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (offset, ==, 0);
  fs_packer_free (packer);
  g_assert_cmpuint (count_packs (fx->root), ==, 0);
}

/* The store is gone: the member that fills a pack gets the error, and so does
 * every later flush, also after a member went into a fresh pack. */
static void
test_failure_sticky (Fixture *fx, gconstpointer data)
{
  g_autoptr(FsPacker) packer = fs_packer_new (fx->storage, "pre/", 100, 1024);
  g_autoptr(GBytes) small = g_bytes_new_static ("small", 5);
  g_autoptr(GBytes) big = g_bytes_new_static (
    "a member of more than one hundred bytes, which fills the pack at once and so makes the "
    "packer write it in this thread", 118);
  g_autoptr(GError) error = NULL;
  g_autofree gchar *o1 = NULL;
  g_autofree gchar *o2 = NULL;
  g_autofree gchar *o3 = NULL;
  guint64 off;

  nftw (fx->root, rm_rf_cb, 16, FTW_DEPTH | FTW_PHYS);
  g_assert_true (fs_packer_add (packer, small, &o1, &off, NULL, &error));
  g_assert_false (fs_packer_add (packer, big, &o2, &off, NULL, &error));
  g_assert_nonnull (error);
  g_test_message ("%s", error->message);
  g_assert_cmpstr (o1, ==, o2);
  g_clear_error (&error);

  g_assert_true (fs_packer_add (packer, small, &o3, &off, NULL, &error));
  g_assert_cmpstr (o3, !=, o1);
  g_assert_false (fs_packer_flush (packer, NULL, &error));
  g_assert_nonnull (error);
  g_clear_error (&error);
  g_assert_false (fs_packer_flush (packer, NULL, &error));
  g_assert_nonnull (error);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add ("/packer/members", Fixture, NULL, fixture_setup, test_members, fixture_teardown);
  g_test_add ("/packer/unflushed", Fixture, NULL, fixture_setup, test_unflushed, fixture_teardown);
  g_test_add ("/packer/failure-sticky", Fixture, NULL, fixture_setup, test_failure_sticky,
              fixture_teardown);
  return g_test_run ();
}
