/* Unit tests of the remote tree: resolving journal records into the head of
 * every effective path, and conflict names. */
#include <string.h>

#include "fs-remote-tree.h"

#define T_LAPTOP G_GINT64_CONSTANT (1795669950000000) /* 2026-11-26 05:12:30 UTC */
#define T_PHONE G_GINT64_CONSTANT (1709251199000000)  /* 2024-02-29 23:59:59 UTC */

static FsRecord *
rec (const gchar *version, const gchar *replaces, const gchar *path, gboolean deleted,
     const gchar *device, gint64 time_us)
{
  FsRecord *r = fs_record_new ();
  r->version = g_strdup (version);
  r->replaces = g_strdup (replaces);
  r->path = g_strdup (path);
  r->deleted = deleted;
  r->kind = deleted ? FS_KIND_NONE : FS_KIND_FILE;
  r->hash = deleted ? NULL : g_strdup_printf ("hash-of-%s", version != NULL ? version : "none");
  r->mode = 0644;
  r->device_id = g_strdup_printf ("id-%s", device);
  r->device_name = g_strdup (device);
  r->time_us = time_us;
  return r;
}

static GPtrArray *
records_new (void)
{
  return g_ptr_array_new_with_free_func ((GDestroyNotify) fs_record_free);
}

static gint
str_ptr_cmp (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const gchar *const *) a, *(const gchar *const *) b);
}

/* A canonical text of a resolved tree: "path=version[ deleted]" lines, sorted. */
static gchar *
tree_dump (GHashTable *tree)
{
  g_autoptr(GPtrArray) lines = g_ptr_array_new_with_free_func (g_free);
  GString *out = g_string_new (NULL);
  GHashTableIter iter;
  gpointer key, value;

  g_hash_table_iter_init (&iter, tree);
  while (g_hash_table_iter_next (&iter, &key, &value))
    {
      const FsRecord *r = value;
      g_assert_cmpstr (r->path, ==, key);
      g_ptr_array_add (lines, g_strdup_printf ("%s=%s%s", (const gchar *) key, r->version,
                                               r->deleted ? " deleted" : ""));
    }
  g_ptr_array_sort (lines, str_ptr_cmp);
  for (guint i = 0; i < lines->len; i++)
    g_string_append_printf (out, "%s\n", (const gchar *) lines->pdata[i]);
  return g_string_free (out, FALSE);
}

static void
assert_head (GHashTable *tree, const gchar *path, const gchar *version, gboolean deleted)
{
  const FsRecord *r = g_hash_table_lookup (tree, path);

  if (r == NULL)
    {
      g_autofree gchar *dump = tree_dump (tree);
      g_test_message ("no head at '%s' in:\n%s", path, dump);
    }
  g_assert_nonnull (r);
  g_assert_cmpstr (r->version, ==, version);
  g_assert_cmpstr (r->path, ==, path);
  g_assert_cmpint (r->deleted, ==, deleted);
}

/* Resolves @records in 50 shuffled orders (fixed seed) and checks every
 * result is identical to the one for the given order. */
static void
assert_order_independent (GPtrArray *records)
{
  g_autoptr(GHashTable) first = fs_remote_tree_resolve (records);
  g_autofree gchar *expected = tree_dump (first);
  g_autoptr(GRand) rand = g_rand_new_with_seed (20261126);
  g_autoptr(GPtrArray) shuffled = g_ptr_array_new ();

  for (guint i = 0; i < records->len; i++)
    g_ptr_array_add (shuffled, records->pdata[i]);

  for (guint round = 0; round < 50; round++)
    {
      g_autoptr(GHashTable) tree = NULL;
      g_autofree gchar *got = NULL;

      for (guint i = shuffled->len; i > 1; i--)
        {
          guint j = g_rand_int_range (rand, 0, (gint32) i);
          gpointer tmp = shuffled->pdata[i - 1];
          shuffled->pdata[i - 1] = shuffled->pdata[j];
          shuffled->pdata[j] = tmp;
        }
      tree = fs_remote_tree_resolve (shuffled);
      got = tree_dump (tree);
      g_assert_cmpstr (got, ==, expected);
    }
}

static void
test_empty (void)
{
  g_autoptr(GPtrArray) records = records_new ();
  g_autoptr(GHashTable) tree = fs_remote_tree_resolve (records);

  g_assert_cmpuint (g_hash_table_size (tree), ==, 0);
}

static void
test_single_create (void)
{
  g_autoptr(GPtrArray) records = records_new ();
  g_autoptr(GHashTable) tree = NULL;

  g_ptr_array_add (records, rec ("v1", NULL, "docs/a.txt", FALSE, "laptop", T_LAPTOP));
  tree = fs_remote_tree_resolve (records);
  g_assert_cmpuint (g_hash_table_size (tree), ==, 1);
  assert_head (tree, "docs/a.txt", "v1", FALSE);
}

static void
test_linear_chain (void)
{
  g_autoptr(GPtrArray) records = records_new ();
  g_autoptr(GHashTable) tree = NULL;

  g_ptr_array_add (records, rec ("v3", "v2", "a.txt", FALSE, "laptop", T_LAPTOP));
  g_ptr_array_add (records, rec ("v1", NULL, "a.txt", FALSE, "laptop", T_LAPTOP));
  g_ptr_array_add (records, rec ("v2", "v1", "a.txt", FALSE, "phone", T_PHONE));
  tree = fs_remote_tree_resolve (records);
  g_assert_cmpuint (g_hash_table_size (tree), ==, 1);
  assert_head (tree, "a.txt", "v3", FALSE);
  assert_order_independent (records);
}

static void
test_deletion_head (void)
{
  g_autoptr(GPtrArray) records = records_new ();
  g_autoptr(GHashTable) tree = NULL;

  g_ptr_array_add (records, rec ("v1", NULL, "a.txt", FALSE, "laptop", T_LAPTOP));
  g_ptr_array_add (records, rec ("v2", "v1", "a.txt", TRUE, "phone", T_PHONE));
  tree = fs_remote_tree_resolve (records);
  g_assert_cmpuint (g_hash_table_size (tree), ==, 1);
  assert_head (tree, "a.txt", "v2", TRUE);
}

static void
test_concurrent_edits (void)
{
  g_autoptr(GPtrArray) records = records_new ();
  g_autoptr(GHashTable) tree = NULL;
  g_autofree gchar *conflict = fs_conflict_name ("dir/a.txt", "phone", T_PHONE);

  g_ptr_array_add (records, rec ("v1", NULL, "dir/a.txt", FALSE, "laptop", T_LAPTOP));
  g_ptr_array_add (records, rec ("v3", "v1", "dir/a.txt", FALSE, "phone", T_PHONE));
  g_ptr_array_add (records, rec ("v2", "v1", "dir/a.txt", FALSE, "laptop", T_LAPTOP));
  tree = fs_remote_tree_resolve (records);
  g_assert_cmpuint (g_hash_table_size (tree), ==, 2);
  assert_head (tree, "dir/a.txt", "v2", FALSE);
  assert_head (tree, conflict, "v3", FALSE);
  g_assert_cmpstr (conflict, ==, "dir/a (conflict phone 2024-02-29 235959).txt");
  assert_order_independent (records);
}

static void
test_edit_beats_delete (void)
{
  g_autoptr(GPtrArray) records = records_new ();
  g_autoptr(GHashTable) tree = NULL;

  /* The deletion has the smaller version, yet the edit wins. */
  g_ptr_array_add (records, rec ("v1", NULL, "a.txt", FALSE, "laptop", T_LAPTOP));
  g_ptr_array_add (records, rec ("v2", "v1", "a.txt", TRUE, "laptop", T_LAPTOP));
  g_ptr_array_add (records, rec ("v3", "v1", "a.txt", FALSE, "phone", T_PHONE));
  tree = fs_remote_tree_resolve (records);
  g_assert_cmpuint (g_hash_table_size (tree), ==, 1);
  assert_head (tree, "a.txt", "v3", FALSE);
  assert_order_independent (records);
}

static void
test_concurrent_deletes (void)
{
  g_autoptr(GPtrArray) records = records_new ();
  g_autoptr(GHashTable) tree = NULL;

  g_ptr_array_add (records, rec ("v1", NULL, "a.txt", FALSE, "laptop", T_LAPTOP));
  g_ptr_array_add (records, rec ("v3", "v1", "a.txt", TRUE, "phone", T_PHONE));
  g_ptr_array_add (records, rec ("v2", "v1", "a.txt", TRUE, "laptop", T_LAPTOP));
  tree = fs_remote_tree_resolve (records);
  g_assert_cmpuint (g_hash_table_size (tree), ==, 1);
  assert_head (tree, "a.txt", "v2", TRUE);
  assert_order_independent (records);
}

static void
test_loser_followed (void)
{
  g_autoptr(GPtrArray) records = records_new ();
  g_autoptr(GHashTable) tree = NULL;
  g_autofree gchar *conflict = fs_conflict_name ("a.txt", "phone", T_PHONE);

  g_ptr_array_add (records, rec ("v1", NULL, "a.txt", FALSE, "laptop", T_LAPTOP));
  g_ptr_array_add (records, rec ("v2", "v1", "a.txt", FALSE, "laptop", T_LAPTOP));
  g_ptr_array_add (records, rec ("v3", "v1", "a.txt", FALSE, "phone", T_PHONE));
  /* The phone edits again under the old name before it learns of the conflict. */
  g_ptr_array_add (records, rec ("v4", "v3", "a.txt", FALSE, "phone", T_PHONE + 1000000));
  g_ptr_array_add (records, rec ("v5", "v4", "a.txt", FALSE, "phone", T_PHONE + 2000000));
  tree = fs_remote_tree_resolve (records);
  g_assert_cmpuint (g_hash_table_size (tree), ==, 2);
  assert_head (tree, "a.txt", "v2", FALSE);
  assert_head (tree, conflict, "v5", FALSE);
  assert_order_independent (records);
}

static void
test_conflict_copy_edited (void)
{
  g_autoptr(GPtrArray) records = records_new ();
  g_autoptr(GHashTable) tree = NULL;
  g_autofree gchar *conflict = fs_conflict_name ("a.txt", "phone", T_PHONE);

  g_ptr_array_add (records, rec ("v1", NULL, "a.txt", FALSE, "laptop", T_LAPTOP));
  g_ptr_array_add (records, rec ("v2", "v1", "a.txt", FALSE, "laptop", T_LAPTOP));
  g_ptr_array_add (records, rec ("v3", "v1", "a.txt", FALSE, "phone", T_PHONE));
  /* A device that knows the conflict edits the copy under its conflict name,
   * and the winner moves on too. */
  g_ptr_array_add (records, rec ("v4", "v3", conflict, FALSE, "laptop", T_LAPTOP + 1000000));
  g_ptr_array_add (records, rec ("v5", "v2", "a.txt", FALSE, "laptop", T_LAPTOP + 2000000));
  tree = fs_remote_tree_resolve (records);
  g_assert_cmpuint (g_hash_table_size (tree), ==, 2);
  assert_head (tree, "a.txt", "v5", FALSE);
  assert_head (tree, conflict, "v4", FALSE);
  assert_order_independent (records);

  /* Deleting the conflict copy leaves a deletion head there. */
  g_ptr_array_add (records, rec ("v6", "v4", conflict, TRUE, "laptop", T_LAPTOP + 3000000));
  g_clear_pointer (&tree, g_hash_table_unref);
  tree = fs_remote_tree_resolve (records);
  g_assert_cmpuint (g_hash_table_size (tree), ==, 2);
  assert_head (tree, conflict, "v6", TRUE);
}

static void
test_concurrent_creates (void)
{
  g_autoptr(GPtrArray) records = records_new ();
  g_autoptr(GHashTable) tree = NULL;
  g_autofree gchar *conflict = fs_conflict_name ("new/notes.md", "phone", T_PHONE);

  g_ptr_array_add (records, rec ("v9", NULL, "new/notes.md", FALSE, "laptop", T_LAPTOP));
  g_ptr_array_add (records, rec ("vb", NULL, "new/notes.md", FALSE, "phone", T_PHONE));
  tree = fs_remote_tree_resolve (records);
  g_assert_cmpuint (g_hash_table_size (tree), ==, 2);
  assert_head (tree, "new/notes.md", "v9", FALSE);
  assert_head (tree, conflict, "vb", FALSE);
  assert_order_independent (records);
}

static void
test_concurrent_dir_creates (void)
{
  g_autoptr(GPtrArray) records = records_new ();
  g_autoptr(GHashTable) tree = NULL;
  FsRecord *a = rec ("v1", NULL, "photos", FALSE, "laptop", T_LAPTOP);
  FsRecord *b = rec ("v2", NULL, "photos", FALSE, "phone", T_PHONE);

  /* Directories have no content to lose: no conflict copy of a directory. */
  a->kind = b->kind = FS_KIND_DIR;
  g_clear_pointer (&a->hash, g_free);
  g_clear_pointer (&b->hash, g_free);
  g_ptr_array_add (records, a);
  g_ptr_array_add (records, b);
  tree = fs_remote_tree_resolve (records);
  g_assert_cmpuint (g_hash_table_size (tree), ==, 1);
  assert_head (tree, "photos", "v1", FALSE);
  assert_order_independent (records);
}

static FsRecord *
dir_rec (const gchar *version, const gchar *replaces, const gchar *path, gboolean deleted,
         const gchar *device, gint64 time_us)
{
  FsRecord *r = rec (version, replaces, path, deleted, device, time_us);

  r->kind = FS_KIND_DIR;
  g_clear_pointer (&r->hash, g_free);
  return r;
}

/* What follows two devices' (and a third's) records of one directory
 * "photos": v1 (the winner), v2, v3, then the records of a case, each
 * "version:replaces:deleted" (deleted 1 or 0). The directory is one: what
 * replaces the winner replaces the others too (a deletion by any device
 * removes it; nothing is contested), while a device's change to its own
 * record, made before it saw the winner, is a chain of its own (contested,
 * as any two chains of one path). */
static void
test_concurrent_dir_creates_then (void)
{
  const struct
  {
    const gchar *records[2];
    const gchar *head;
    gboolean deleted;
    gboolean contested;
  } cases[] = {
    { { "v4:v1:1", NULL }, "v4", TRUE, FALSE },      /* the winner's device deletes it */
    { { "v0:v1:1", NULL }, "v0", TRUE, FALSE },      /* a smaller id than every twin */
    { { "v4:v1:1", "v5:v4:0" }, "v5", FALSE, FALSE }, /* deleted, then made again */
    { { "v4:v1:0", NULL }, "v4", FALSE, FALSE },     /* the winner changed (its mode) */
    { { "v4:v1:1", "v5:v2:0" }, "v5", FALSE, TRUE }, /* phone changed its own record */
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GPtrArray) records = records_new ();
      g_autoptr(GHashTable) tree = NULL;
      g_autoptr(GHashTable) contested = NULL;

      g_ptr_array_add (records, dir_rec ("v1", NULL, "photos", FALSE, "laptop", T_LAPTOP));
      g_ptr_array_add (records, dir_rec ("v2", NULL, "photos", FALSE, "phone", T_PHONE));
      g_ptr_array_add (records, dir_rec ("v3", NULL, "photos", FALSE, "tablet", T_PHONE + 1));
      for (gsize j = 0; j < G_N_ELEMENTS (cases[i].records) && cases[i].records[j] != NULL; j++)
        {
          g_auto(GStrv) f = g_strsplit (cases[i].records[j], ":", 3);

          g_ptr_array_add (records, dir_rec (f[0], f[1], "photos", g_str_equal (f[2], "1"),
                                             "phone", T_PHONE + 2 + (gint64) j));
        }
      tree = fs_remote_tree_resolve_contested (records, &contested);
      g_test_message ("case %" G_GSIZE_FORMAT, i);
      g_assert_cmpuint (g_hash_table_size (tree), ==, 1);
      assert_head (tree, "photos", cases[i].head, cases[i].deleted);
      g_assert_cmpint (g_hash_table_contains (contested, "photos"), ==, cases[i].contested);
      assert_order_independent (records);
    }
}

/* Only a live directory winner merges: a file that wins the name sends the
 * directories of that name to conflict names, as any loser. */
static void
test_file_wins_over_dir_creates (void)
{
  g_autoptr(GPtrArray) records = records_new ();
  g_autoptr(GHashTable) tree = NULL;
  g_autofree gchar *c2 = fs_conflict_name ("photos", "phone", T_PHONE);
  g_autofree gchar *c3 = fs_conflict_name ("photos", "tablet", T_PHONE + 1);

  g_ptr_array_add (records, rec ("v1", NULL, "photos", FALSE, "laptop", T_LAPTOP));
  g_ptr_array_add (records, dir_rec ("v2", NULL, "photos", FALSE, "phone", T_PHONE));
  g_ptr_array_add (records, dir_rec ("v3", NULL, "photos", FALSE, "tablet", T_PHONE + 1));
  tree = fs_remote_tree_resolve (records);
  g_assert_cmpuint (g_hash_table_size (tree), ==, 3);
  assert_head (tree, "photos", "v1", FALSE);
  assert_head (tree, c2, "v2", FALSE);
  assert_head (tree, c3, "v3", FALSE);
  assert_order_independent (records);
}

static void
test_delete_then_recreate (void)
{
  g_autoptr(GPtrArray) records = records_new ();
  g_autoptr(GHashTable) tree = NULL;

  g_ptr_array_add (records, rec ("v1", NULL, "a.txt", FALSE, "laptop", T_LAPTOP));
  g_ptr_array_add (records, rec ("v2", "v1", "a.txt", TRUE, "phone", T_PHONE));
  g_ptr_array_add (records, rec ("v3", "v2", "a.txt", FALSE, "laptop", T_LAPTOP));
  g_ptr_array_add (records, rec ("v4", "v3", "a.txt", TRUE, "laptop", T_LAPTOP));
  g_ptr_array_add (records, rec ("v5", "v4", "a.txt", FALSE, "phone", T_PHONE));
  tree = fs_remote_tree_resolve (records);
  g_assert_cmpuint (g_hash_table_size (tree), ==, 1);
  assert_head (tree, "a.txt", "v5", FALSE);
  assert_order_independent (records);
}

static void
test_nfd_nfc (void)
{
  g_autoptr(GPtrArray) records = records_new ();
  g_autoptr(GHashTable) tree = NULL;
  const gchar *nfc = "caf\xc3\xa9/r\xc3\xa9sum\xc3\xa9.txt";
  const gchar *nfd = "cafe\xcc\x81/re\xcc\x81sume\xcc\x81.txt";

  /* Created on a Mac (NFD), edited on Linux (NFC): one path. */
  g_ptr_array_add (records, rec ("v1", NULL, nfd, FALSE, "mac", T_LAPTOP));
  g_ptr_array_add (records, rec ("v2", "v1", nfc, FALSE, "linux", T_LAPTOP));
  g_ptr_array_add (records, rec ("v3", "v2", nfd, FALSE, "mac", T_LAPTOP));
  /* A lone NFD record is keyed by its NFC form. */
  g_ptr_array_add (records, rec ("w1", NULL, "Ne\xcc\x81", FALSE, "mac", T_LAPTOP));
  tree = fs_remote_tree_resolve (records);
  g_assert_cmpuint (g_hash_table_size (tree), ==, 2);
  assert_head (tree, nfc, "v3", FALSE);
  assert_head (tree, "N\xc3\xa9", "w1", FALSE);
  g_assert_null (g_hash_table_lookup (tree, nfd));
  assert_order_independent (records);
}

static void
test_nfd_nfc_concurrent_creates (void)
{
  g_autoptr(GPtrArray) records = records_new ();
  g_autoptr(GHashTable) tree = NULL;
  g_autofree gchar *conflict = fs_conflict_name ("\xc3\xa9t\xc3\xa9.txt", "mac", T_PHONE);

  /* The same name created on two devices in two normal forms collides. */
  g_ptr_array_add (records, rec ("v1", NULL, "\xc3\xa9t\xc3\xa9.txt", FALSE, "linux", T_LAPTOP));
  g_ptr_array_add (records, rec ("v2", NULL, "e\xcc\x81te\xcc\x81.txt", FALSE, "mac", T_PHONE));
  tree = fs_remote_tree_resolve (records);
  g_assert_cmpuint (g_hash_table_size (tree), ==, 2);
  assert_head (tree, "\xc3\xa9t\xc3\xa9.txt", "v1", FALSE);
  assert_head (tree, conflict, "v2", FALSE);
}

static void
test_replaces_cycle (void)
{
  g_autoptr(GPtrArray) records = records_new ();
  g_autoptr(GHashTable) tree = NULL;

  /* Only a buggy or hostile writer produces these; they must not hang. */
  g_ptr_array_add (records, rec ("c1", "c3", "loop.txt", FALSE, "evil", T_PHONE));
  g_ptr_array_add (records, rec ("c2", "c1", "loop.txt", FALSE, "evil", T_PHONE));
  g_ptr_array_add (records, rec ("c3", "c2", "loop.txt", FALSE, "evil", T_PHONE));
  g_ptr_array_add (records, rec ("c4", "c2", "loop.txt", FALSE, "evil", T_PHONE));
  g_ptr_array_add (records, rec ("s1", "s1", "self.txt", FALSE, "evil", T_PHONE));
  g_ptr_array_add (records, rec ("n1", NULL, "fine.txt", FALSE, "laptop", T_LAPTOP));
  g_ptr_array_add (records, rec ("n2", "n1", "fine.txt", FALSE, "laptop", T_LAPTOP));
  tree = fs_remote_tree_resolve (records);
  g_assert_nonnull (g_hash_table_lookup (tree, "loop.txt"));
  assert_head (tree, "self.txt", "s1", FALSE);
  assert_head (tree, "fine.txt", "n2", FALSE);
  assert_order_independent (records);
}

static void
test_bad_records (void)
{
  g_autoptr(GPtrArray) records = records_new ();
  g_autoptr(GHashTable) tree = NULL;

  /* Not UTF-8, no version, no path: skipped; a child of a skipped record is
   * a root. Two records with one version id: one is kept, whatever the order. */
  g_ptr_array_add (records, rec ("b1", NULL, "bad\xff.txt", FALSE, "laptop", T_LAPTOP));
  g_ptr_array_add (records, rec ("b2", "b1", "good.txt", FALSE, "laptop", T_LAPTOP));
  g_ptr_array_add (records, rec (NULL, NULL, "noversion.txt", FALSE, "laptop", T_LAPTOP));
  g_ptr_array_add (records, rec ("b3", NULL, NULL, FALSE, "laptop", T_LAPTOP));
  g_ptr_array_add (records, rec ("d1", NULL, "dup-a.txt", FALSE, "laptop", T_LAPTOP));
  g_ptr_array_add (records, rec ("d1", NULL, "dup-b.txt", FALSE, "phone", T_PHONE));
  tree = fs_remote_tree_resolve (records);
  g_assert_cmpuint (g_hash_table_size (tree), ==, 2);
  assert_head (tree, "good.txt", "b2", FALSE);
  assert_head (tree, "dup-a.txt", "d1", FALSE);
  assert_order_independent (records);
}

static void
test_large (void)
{
  g_autoptr(GPtrArray) records = records_new ();
  g_autoptr(GHashTable) tree = NULL;
  g_autoptr(GRand) rand = g_rand_new_with_seed (7);
  g_autoptr(GTimer) timer = NULL;
  const guint files = 16000;
  const guint chain = 20000;
  guint conflicts = 0;
  g_autofree gchar *last = NULL;

  /* 16,000 files with 5 versions each (every 10th with a concurrent edit
   * instead of its 5th version), plus one 20,000-deep history: 100,000
   * records, shuffled. */
  for (guint f = 0; f < files; f++)
    {
      g_autofree gchar *path = g_strdup_printf ("dir%03u/file%05u.txt", f % 500, f);
      for (guint v = 0; v < 5; v++)
        {
          g_autofree gchar *version = g_strdup_printf ("f%05u-%u", f, v);
          g_autofree gchar *replaces = v == 0 ? NULL : g_strdup_printf ("f%05u-%u", f, v - 1);
          if (v == 4 && f % 10 == 0)
            {
              g_free (replaces);
              replaces = g_strdup_printf ("f%05u-%u", f, 2);
              conflicts++;
            }
          g_ptr_array_add (records, rec (version, replaces, path, FALSE, "dev", T_LAPTOP));
        }
    }
  for (guint v = 0; v < chain; v++)
    {
      g_autofree gchar *version = g_strdup_printf ("deep%06u", v);
      g_autofree gchar *replaces = v == 0 ? NULL : g_strdup_printf ("deep%06u", v - 1);
      g_ptr_array_add (records, rec (version, replaces, "deep.txt", FALSE, "dev", T_LAPTOP));
    }
  g_assert_cmpuint (records->len, ==, 100000);
  for (guint i = records->len; i > 1; i--)
    {
      guint j = g_rand_int_range (rand, 0, (gint32) i);
      gpointer tmp = records->pdata[i - 1];
      records->pdata[i - 1] = records->pdata[j];
      records->pdata[j] = tmp;
    }

  timer = g_timer_new ();
  tree = fs_remote_tree_resolve (records);
  g_timer_stop (timer);
  g_test_message ("resolved %u records into %u paths in %.3f s", records->len,
                  g_hash_table_size (tree), g_timer_elapsed (timer, NULL));

  g_assert_cmpuint (g_hash_table_size (tree), ==, files + conflicts + 1);
  last = g_strdup_printf ("deep%06u", chain - 1);
  assert_head (tree, "deep.txt", last, FALSE);
  assert_head (tree, "dir001/file00001.txt", "f00001-4", FALSE);
  assert_head (tree, "dir000/file00000.txt", "f00000-3", FALSE);
  /* Generous: catches a quadratic algorithm, not a slow machine. */
  g_assert_cmpfloat (g_timer_elapsed (timer, NULL), <, 10.0);
}

typedef struct {
  const gchar *path;
  const gchar *device;
  gint64 time_us;
  const gchar *expected;
} ConflictNameRow;

static void
test_conflict_name (void)
{
  static const ConflictNameRow rows[] = {
    { "a/b/report.final.txt", "laptop-7x", T_LAPTOP,
      "a/b/report.final (conflict laptop-7x 2026-11-26 051230).txt" },
    { "report.txt", "laptop-7x", T_LAPTOP + 999999,
      "report (conflict laptop-7x 2026-11-26 051230).txt" },
    { "archive.tar.gz", "phone", T_PHONE, "archive.tar (conflict phone 2024-02-29 235959).gz" },
    { "Makefile", "phone", T_PHONE, "Makefile (conflict phone 2024-02-29 235959)" },
    { "src.d/Makefile", "phone", T_PHONE, "src.d/Makefile (conflict phone 2024-02-29 235959)" },
    { ".bashrc", "phone", T_PHONE, ".bashrc (conflict phone 2024-02-29 235959)" },
    { "home/.config.bak", "phone", T_PHONE,
      "home/.config (conflict phone 2024-02-29 235959).bak" },
    { "name.", "phone", T_PHONE, "name. (conflict phone 2024-02-29 235959)" },
    { "x.txt", "a/b/c", T_PHONE, "x (conflict a-b-c 2024-02-29 235959).txt" },
    { "x.txt", "phone", 0, "x (conflict phone 1970-01-01 000000).txt" },
    { "x.txt", "phone", -1, "x (conflict phone 1969-12-31 235959).txt" },
    /* Out of GDateTime's range: a stable name, not a crash. */
    { "x.txt", "phone", G_MAXINT64, "x (conflict phone 1970-01-01 000000).txt" },
    { "x.txt", "", T_PHONE, "x (conflict unknown 2024-02-29 235959).txt" },
    { "caf\xc3\xa9.txt", "t\xc3\xa9l\xc3\xa9phone", T_PHONE,
      "caf\xc3\xa9 (conflict t\xc3\xa9l\xc3\xa9phone 2024-02-29 235959).txt" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (rows); i++)
    {
      g_autofree gchar *got = fs_conflict_name (rows[i].path, rows[i].device, rows[i].time_us);
      g_assert_cmpstr (got, ==, rows[i].expected);
    }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/remote-tree/empty", test_empty);
  g_test_add_func ("/remote-tree/concurrent-dir-creates", test_concurrent_dir_creates);
  g_test_add_func ("/remote-tree/concurrent-dir-creates-then", test_concurrent_dir_creates_then);
  g_test_add_func ("/remote-tree/file-wins-over-dir-creates", test_file_wins_over_dir_creates);
  g_test_add_func ("/remote-tree/single-create", test_single_create);
  g_test_add_func ("/remote-tree/linear-chain", test_linear_chain);
  g_test_add_func ("/remote-tree/deletion-head", test_deletion_head);
  g_test_add_func ("/remote-tree/concurrent-edits", test_concurrent_edits);
  g_test_add_func ("/remote-tree/edit-beats-delete", test_edit_beats_delete);
  g_test_add_func ("/remote-tree/concurrent-deletes", test_concurrent_deletes);
  g_test_add_func ("/remote-tree/loser-followed", test_loser_followed);
  g_test_add_func ("/remote-tree/conflict-copy-edited", test_conflict_copy_edited);
  g_test_add_func ("/remote-tree/concurrent-creates", test_concurrent_creates);
  g_test_add_func ("/remote-tree/delete-then-recreate", test_delete_then_recreate);
  g_test_add_func ("/remote-tree/nfd-nfc", test_nfd_nfc);
  g_test_add_func ("/remote-tree/nfd-nfc-concurrent-creates", test_nfd_nfc_concurrent_creates);
  g_test_add_func ("/remote-tree/replaces-cycle", test_replaces_cycle);
  g_test_add_func ("/remote-tree/bad-records", test_bad_records);
  g_test_add_func ("/remote-tree/large", test_large);
  g_test_add_func ("/remote-tree/conflict-name", test_conflict_name);
  return g_test_run ();
}
