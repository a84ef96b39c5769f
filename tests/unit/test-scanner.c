/* Unit tests of the scanner (fs_scan) on temporary trees. */
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "fs-scanner.h"

#define NFC_E "\xc3\xa9"  /* é precomposed */
#define NFD_E "e\xcc\x81" /* e + combining acute */

static gchar *
make_tmp_dir (void)
{
  g_autoptr (GError) error = NULL;
  gchar *dir = g_dir_make_tmp ("fs-scanner-XXXXXX", &error);
  g_assert_no_error (error);
  return dir;
}

static void
remove_tree (const gchar *dir)
{
  const gchar *chmod_argv[] = { "chmod", "-R", "u+rwx", dir, NULL };
  const gchar *rm_argv[] = { "rm", "-rf", dir, NULL };
  g_spawn_sync (NULL, (gchar **) chmod_argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_STDERR_TO_DEV_NULL,
                NULL, NULL, NULL, NULL, NULL, NULL);
  g_spawn_sync (NULL, (gchar **) rm_argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, NULL,
                NULL);
}

static void
write_file (const gchar *root, const gchar *rel, const gchar *contents)
{
  g_autoptr (GError) error = NULL;
  g_autofree gchar *path = g_build_filename (root, rel, NULL);
  g_autofree gchar *dir = g_path_get_dirname (path);

  g_assert_cmpint (g_mkdir_with_parents (dir, 0755), ==, 0);
  g_file_set_contents (path, contents, -1, &error);
  g_assert_no_error (error);
}

static void
make_dir (const gchar *root, const gchar *rel)
{
  g_autofree gchar *path = g_build_filename (root, rel, NULL);
  g_assert_cmpint (g_mkdir_with_parents (path, 0755), ==, 0);
}

static gchar *
sha256_hex (const gchar *data)
{
  return g_compute_checksum_for_string (G_CHECKSUM_SHA256, data, -1);
}

static gboolean
has_warning (FsScanResult *result, const gchar *needle1, const gchar *needle2)
{
  for (guint i = 0; i < result->warnings->len; i++)
    {
      const gchar *w = result->warnings->pdata[i];
      if (strstr (w, needle1) != NULL && (needle2 == NULL || strstr (w, needle2) != NULL))
        return TRUE;
    }
  return FALSE;
}

static void
print_warnings (FsScanResult *result)
{
  for (guint i = 0; i < result->warnings->len; i++)
    g_test_message ("warning: %s", (const gchar *) result->warnings->pdata[i]);
}

static FsScanResult *
scan (const gchar *root, GHashTable *base)
{
  g_autoptr (GError) error = NULL;
  FsScanResult *result = fs_scan (root, base, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (result);
  return result;
}

static FsEntry *
get (FsScanResult *result, const gchar *key)
{
  FsEntry *e = g_hash_table_lookup (result->entries, key);
  if (e == NULL)
    g_error ("no entry for ‘%s’", key);
  return e;
}

/* A copy of a result's entries, to use as the base of the next scan. */
static GHashTable *
as_base (FsScanResult *result)
{
  GHashTable *base =
    g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) fs_entry_free);
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, result->entries);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    g_hash_table_insert (base, g_strdup (((FsEntry *) value)->path), fs_entry_copy (value));
  return base;
}

static void
build_tree (const gchar *root, const gchar *outside)
{
  g_autofree gchar *exec = g_build_filename (root, "exec.sh", NULL);
  g_autofree gchar *link = g_build_filename (root, "link", NULL);
  g_autofree gchar *out_link = g_build_filename (root, "outside", NULL);
  g_autofree gchar *fifo = g_build_filename (root, "pipe", NULL);

  write_file (root, "a.txt", "hello");
  write_file (root, "exec.sh", "#!/bin/sh\n");
  g_assert_cmpint (g_chmod (exec, 0755), ==, 0);
  make_dir (root, "empty");
  make_dir (root, "deep/er/est");
  write_file (root, "sub/b.txt", "b");
  write_file (root, "sub/.foldersyncignore", "*.tmp\n");
  write_file (root, "sub/x.tmp", "ignored by sub");
  write_file (root, "x.tmp", "not ignored at the root");
  write_file (root, ".foldersyncignore", "# root patterns\nbuild/\n*.log\n");
  write_file (root, "build/out.o", "ignored dir");
  write_file (root, "debug.log", "ignored file");
  write_file (root, "nested/build", "a file named build: dir-only pattern does not apply");
  write_file (root, ".foldersync.tmp.x", "engine temp file");
  write_file (root, ".foldersync.trash/old.txt", "engine trash");
  g_assert_cmpint (symlink ("a.txt", link), ==, 0);
  g_assert_cmpint (symlink (outside, out_link), ==, 0);
  g_assert_cmpint (mkfifo (fifo, 0644), ==, 0);
  write_file (root, "bad\xff name", "x");
  write_file (root, "caf" NFD_E ".txt", "nfd");
  write_file (root, "twins/" NFD_E, "nfd twin");
  write_file (root, "twins/" NFC_E, "nfc twin");
  write_file (root, "case/README", "upper");
  write_file (root, "case/readme", "lower");
}

static void
test_scanner_tree (void)
{
  g_autofree gchar *root = make_tmp_dir ();
  g_autofree gchar *outside = make_tmp_dir ();
  g_autoptr (FsScanResult) result = NULL;
  g_autofree gchar *hello_hash = sha256_hex ("hello");
  g_autofree gchar *link_hash = sha256_hex ("a.txt");
  FsEntry *e;

  write_file (outside, "secret.txt", "must not be scanned");
  build_tree (root, outside);
  result = scan (root, NULL);
  print_warnings (result);

  e = get (result, "a.txt");
  g_assert_cmpint (e->kind, ==, FS_KIND_FILE);
  g_assert_cmpuint (e->size, ==, 5);
  g_assert_cmpstr (e->hash, ==, hello_hash);
  g_assert_cmpuint (e->mode, ==, 0644);
  g_assert_cmpint (e->mtime_ns, >, 0);
  g_assert_cmpuint (e->inode, >, 0);
  g_assert_null (e->disk_path);

  e = get (result, "exec.sh");
  g_assert_cmpuint (e->mode, ==, 0755);

  e = get (result, "empty");
  g_assert_cmpint (e->kind, ==, FS_KIND_DIR);
  g_assert_null (e->hash);
  g_assert_cmpint (get (result, "deep")->kind, ==, FS_KIND_DIR);
  g_assert_cmpint (get (result, "deep/er/est")->kind, ==, FS_KIND_DIR);

  e = get (result, "link");
  g_assert_cmpint (e->kind, ==, FS_KIND_SYMLINK);
  g_assert_cmpstr (e->target, ==, "a.txt");
  g_assert_cmpstr (e->hash, ==, link_hash);

  /* a link out of the root is recorded as a link; nothing behind it is scanned */
  e = get (result, "outside");
  g_assert_cmpint (e->kind, ==, FS_KIND_SYMLINK);
  g_assert_cmpstr (e->target, ==, outside);
  g_assert_false (g_hash_table_contains (result->entries, "outside/secret.txt"));

  /* fifo skipped with one warning */
  g_assert_false (g_hash_table_contains (result->entries, "pipe"));
  g_assert_cmpuint (result->stats.skipped_special, ==, 1);
  g_assert_true (has_warning (result, "Skipping fifo ‘pipe’", NULL));

  /* a non-UTF-8 name is reported with its bytes escaped, never dropped silently */
  g_assert_true (has_warning (result, "bad\\377 name", "UTF-8"));

  /* NFD on disk, keyed NFC */
  e = get (result, "caf" NFC_E ".txt");
  g_assert_cmpstr (e->disk_path, ==, "caf" NFD_E ".txt");
  g_assert_false (g_hash_table_contains (result->entries, "caf" NFD_E ".txt"));

  /* NFC/NFD twins: the first by disk name (NFD sorts first) kept, the other warned */
  e = get (result, "twins/" NFC_E);
  g_assert_cmpstr (e->disk_path, ==, "twins/" NFD_E);
  g_assert_true (has_warning (result, "twins/" NFC_E, "normalization"));

  /* case collision: both kept, one warning */
  get (result, "case/README");
  get (result, "case/readme");
  g_assert_true (has_warning (result, "case/README", "case-insensitive"));

  /* .foldersyncignore honoured in the root and in a subdirectory */
  get (result, ".foldersyncignore");
  get (result, "sub/.foldersyncignore");
  get (result, "sub/b.txt");
  get (result, "x.tmp");
  get (result, "nested/build");
  g_assert_false (g_hash_table_contains (result->entries, "sub/x.tmp"));
  g_assert_false (g_hash_table_contains (result->entries, "build"));
  g_assert_false (g_hash_table_contains (result->entries, "build/out.o"));
  g_assert_false (g_hash_table_contains (result->entries, "debug.log"));
  g_assert_cmpuint (result->stats.skipped_ignored, ==, 3);

  /* the engine's own files are skipped silently */
  g_assert_false (g_hash_table_contains (result->entries, ".foldersync.tmp.x"));
  g_assert_false (g_hash_table_contains (result->entries, ".foldersync.trash"));
  g_assert_false (g_hash_table_contains (result->entries, ".foldersync.trash/old.txt"));
  g_assert_false (has_warning (result, ".foldersync.", NULL));

  /* exactly the expected warnings: fifo, non-UTF-8, twin, case */
  g_assert_cmpuint (result->warnings->len, ==, 4);
  g_assert_cmpuint (result->stats.deferred, ==, 0);
  g_assert_cmpuint (result->stats.files_hashed, ==, 11);

  remove_tree (root);
  remove_tree (outside);
}

static void
test_scanner_unchanged_not_hashed (void)
{
  g_autofree gchar *root = make_tmp_dir ();
  g_autofree gchar *outside = make_tmp_dir ();
  g_autoptr (FsScanResult) first = NULL;
  g_autoptr (FsScanResult) second = NULL;
  g_autoptr (FsScanResult) third = NULL;
  g_autoptr (GHashTable) base = NULL;
  g_autoptr (GHashTable) base2 = NULL;
  g_autofree gchar *new_hash = sha256_hex ("hello, world");
  GHashTableIter iter;
  gpointer key, value;

  build_tree (root, outside);
  first = scan (root, NULL);
  g_assert_cmpuint (first->stats.files_hashed, >, 0);

  base = as_base (first);
  second = scan (root, base);
  g_assert_cmpuint (second->stats.files_hashed, ==, 0);
  g_assert_cmpuint (second->stats.bytes_hashed, ==, 0);
  g_assert_cmpuint (g_hash_table_size (second->entries), ==, g_hash_table_size (first->entries));
  g_hash_table_iter_init (&iter, first->entries);
  while (g_hash_table_iter_next (&iter, &key, &value))
    {
      FsEntry *other = get (second, key);
      g_assert_true (fs_entry_same_stat (value, other));
      g_assert_true (fs_entry_same_content (value, other));
    }

  /* one file's content changes: exactly one file hashed */
  write_file (root, "sub/b.txt", "hello, world");
  base2 = as_base (second);
  third = scan (root, base2);
  g_assert_cmpuint (third->stats.files_hashed, ==, 1);
  g_assert_cmpuint (third->stats.bytes_hashed, ==, 12);
  g_assert_cmpstr (get (third, "sub/b.txt")->hash, ==, new_hash);
  g_assert_false (fs_entry_same_content (get (first, "sub/b.txt"), get (third, "sub/b.txt")));

  remove_tree (root);
  remove_tree (outside);
}

static void
test_scanner_many (void)
{
  const guint n = 10000;
  g_autofree gchar *root = make_tmp_dir ();
  g_autoptr (FsScanResult) first = NULL;
  g_autoptr (FsScanResult) second = NULL;
  g_autoptr (GHashTable) base = NULL;
  g_autoptr (GTimer) timer = g_timer_new ();
  gdouble create_s, first_s, second_s;

  for (guint i = 0; i < n; i++)
    {
      g_autofree gchar *rel = g_strdup_printf ("d%02u/file-%05u.txt", i % 100, i);
      g_autofree gchar *contents = g_strdup_printf ("content of file %u\n", i);
      write_file (root, rel, contents);
    }
  create_s = g_timer_elapsed (timer, NULL);

  g_timer_start (timer);
  first = scan (root, NULL);
  first_s = g_timer_elapsed (timer, NULL);
  g_assert_cmpuint (first->stats.files_hashed, ==, n);
  g_assert_cmpuint (g_hash_table_size (first->entries), ==, n + 100);

  base = as_base (first);
  g_timer_start (timer);
  second = scan (root, base);
  second_s = g_timer_elapsed (timer, NULL);
  g_assert_cmpuint (second->stats.files_hashed, ==, 0);
  g_assert_cmpuint (g_hash_table_size (second->entries), ==, n + 100);
  g_test_message ("%u files: created in %.3f s, first scan (all hashed) %.3f s, "
                  "rescan with base (none hashed) %.3f s",
                  n, create_s, first_s, second_s);
  remove_tree (root);
}

typedef struct {
  gchar *path;
  gint stop;
  gint written;
} Writer;

static gpointer
writer_thread (gpointer data)
{
  Writer *w = data;
  FILE *f = fopen (w->path, "a");
  g_assert_nonnull (f);
  while (!g_atomic_int_get (&w->stop))
    {
      fputc ('x', f);
      fflush (f);
      g_atomic_int_inc (&w->written);
    }
  fclose (f);
  return NULL;
}

/* Scans @root while a thread keeps appending to @w->path. The writer can be
 * descheduled for a whole scan on a loaded machine, so retry a few times
 * until the scan has caught it mid-read. */
static FsScanResult *
scan_while_writing (const gchar *root, GHashTable *base, Writer *w)
{
  FsScanResult *result = NULL;

  for (guint attempt = 0; attempt < 10; attempt++)
    {
      g_autoptr (GThread) thread = NULL;

      g_clear_pointer (&result, fs_scan_result_free);
      g_atomic_int_set (&w->stop, 0);
      g_atomic_int_set (&w->written, 0);
      thread = g_thread_new ("writer", writer_thread, w);
      while (g_atomic_int_get (&w->written) == 0)
        g_usleep (100);
      result = scan (root, base);
      g_atomic_int_set (&w->stop, 1);
      g_thread_join (g_steal_pointer (&thread));
      if (result->stats.deferred > 0)
        break;
      g_test_message ("attempt %u: the writer was not caught mid-read, retrying", attempt);
    }
  return result;
}

static void
test_scanner_still_being_written (void)
{
  g_autofree gchar *root = make_tmp_dir ();
  g_autoptr (FsScanResult) first = NULL;
  g_autoptr (FsScanResult) second = NULL;
  g_autoptr (FsScanResult) quiet = NULL;
  g_autoptr (GHashTable) base = NULL;
  g_autofree gchar *big = g_malloc (64 * 1024 * 1024 + 1);
  Writer w = { 0 };

  /* big enough that hashing takes a while, so the writer is caught mid-read */
  memset (big, 'b', 64 * 1024 * 1024);
  big[64 * 1024 * 1024] = '\0';
  write_file (root, "big", big);
  write_file (root, "calm", "calm");
  w.path = g_build_filename (root, "big", NULL);

  /* no base: left out */
  first = scan_while_writing (root, NULL, &w);
  print_warnings (first);
  g_assert_cmpuint (first->stats.deferred, ==, 1);
  g_assert_false (g_hash_table_contains (first->entries, "big"));
  g_assert_true (has_warning (first, "Deferring ‘big’: still being written", NULL));
  get (first, "calm");

  /* with a base: the base state is kept */
  quiet = scan (root, NULL);
  base = as_base (quiet);
  second = scan_while_writing (root, base, &w);
  g_assert_cmpuint (second->stats.deferred, ==, 1);
  g_assert_true (fs_entry_same_stat (get (second, "big"), get (quiet, "big")));
  g_assert_cmpstr (get (second, "big")->hash, ==, get (quiet, "big")->hash);
  g_free (w.path);
  remove_tree (root);
}

static void
test_scanner_hash_file (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree gchar *root = make_tmp_dir ();
  g_autofree gchar *path = g_build_filename (root, "f", NULL);
  g_autofree gchar *missing = g_build_filename (root, "missing", NULL);
  g_autofree gchar *hex = NULL;
  g_autofree gchar *expected = NULL;
  g_autofree gchar *big = g_malloc (3 * 1024 * 1024 + 7);
  guint64 size = 0;

  /* crosses the 1 MiB read buffer */
  memset (big, 'x', 3 * 1024 * 1024 + 6);
  big[3 * 1024 * 1024 + 6] = '\0';
  write_file (root, "f", big);
  hex = fs_hash_file (path, &size, NULL, &error);
  g_assert_no_error (error);
  expected = sha256_hex (big);
  g_assert_cmpstr (hex, ==, expected);
  g_assert_cmpuint (size, ==, 3 * 1024 * 1024 + 6);
  g_clear_pointer (&hex, g_free);

  hex = fs_hash_file (missing, NULL, NULL, &error);
  g_assert_null (hex);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
  remove_tree (root);
}

static void
test_scanner_same (void)
{
  g_autoptr (FsEntry) a = fs_entry_new ("f", FS_KIND_FILE);
  g_autoptr (FsEntry) b = NULL;
  g_autoptr (FsEntry) l1 = fs_entry_new ("l", FS_KIND_SYMLINK);
  g_autoptr (FsEntry) l2 = fs_entry_new ("l", FS_KIND_SYMLINK);
  g_autoptr (FsEntry) d1 = fs_entry_new ("d", FS_KIND_DIR);
  g_autoptr (FsEntry) d2 = fs_entry_new ("d", FS_KIND_DIR);

  a->hash = g_strdup ("h");
  a->mode = 0644;
  a->size = 1;
  a->mtime_ns = 10;
  a->inode = 5;
  b = fs_entry_copy (a);
  g_assert_true (fs_entry_same_content (a, b));
  g_assert_true (fs_entry_same_stat (a, b));
  b->mode = 0600; /* only the exec bit is content */
  g_assert_true (fs_entry_same_content (a, b));
  g_assert_false (fs_entry_same_stat (a, b));
  b->mode = 0744;
  g_assert_false (fs_entry_same_content (a, b));
  b->mode = 0644;
  b->mtime_ns = 11;
  g_assert_true (fs_entry_same_content (a, b));
  g_assert_false (fs_entry_same_stat (a, b));
  g_free (b->hash);
  b->hash = g_strdup ("other");
  g_assert_false (fs_entry_same_content (a, b));

  l1->target = g_strdup ("x");
  l2->target = g_strdup ("y");
  g_assert_false (fs_entry_same_content (l1, l2));
  g_free (l2->target);
  l2->target = g_strdup ("x");
  g_assert_true (fs_entry_same_content (l1, l2));
  d2->mtime_ns = 99;
  g_assert_true (fs_entry_same_content (d1, d2));
  g_assert_false (fs_entry_same_content (d1, l1));
  g_assert_false (fs_entry_same_content (a, d1));
}

static void
test_scanner_cancelled (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree gchar *root = make_tmp_dir ();
  g_autoptr (GCancellable) cancellable = g_cancellable_new ();
  g_autoptr (FsScanResult) result = NULL;

  write_file (root, "a", "a");
  g_cancellable_cancel (cancellable);
  result = fs_scan (root, NULL, cancellable, &error);
  g_assert_null (result);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  remove_tree (root);
}

static void
test_scanner_missing_root (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (FsScanResult) result = fs_scan ("/nonexistent/fs-scanner-root", NULL, NULL, &error);
  g_assert_null (result);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
}

/* Scans @root once while everything is readable (the base), then makes a
 * file and a folder unreadable and checks they keep their base state
 * instead of looking deleted. */
static void
check_unreadable (const gchar *root, gboolean drop_privileges)
{
  g_autofree gchar *secret = g_build_filename (root, "secret.txt", NULL);
  g_autofree gchar *locked = g_build_filename (root, "locked", NULL);
  g_autoptr (FsScanResult) first = NULL;
  g_autoptr (FsScanResult) second = NULL;
  g_autoptr (GHashTable) base = NULL;

  g_assert_cmpint (g_chmod (root, 0755), ==, 0);
  write_file (root, "secret.txt", "secret");
  write_file (root, "plain.txt", "plain");
  write_file (root, "locked/inner.txt", "inner");
  write_file (root, "locked/deeper/x", "x");
  first = scan (root, NULL);
  base = as_base (first);
  get (first, "locked/deeper/x");

  g_assert_cmpint (g_chmod (secret, 0), ==, 0);
  g_assert_cmpint (g_chmod (locked, 0), ==, 0);
  write_file (root, "new-secret.txt", "no base");
  {
    g_autofree gchar *p = g_build_filename (root, "new-secret.txt", NULL);
    g_assert_cmpint (g_chmod (p, 0), ==, 0);
  }

  if (drop_privileges)
    {
      if (setgid (65534) != 0 || setuid (65534) != 0)
        {
          g_test_skip_printf ("cannot drop privileges to nobody: %s", g_strerror (errno));
          return;
        }
      if (access (root, R_OK | X_OK) != 0)
        {
          g_test_skip_printf ("nobody cannot reach the temp dir %s", root);
          return;
        }
    }

  second = scan (root, base);
  print_warnings (second);
  g_assert_true (fs_entry_same_content (get (second, "secret.txt"), get (first, "secret.txt")));
  g_assert_true (has_warning (second, "secret.txt", "keeping"));
  g_assert_false (g_hash_table_contains (second->entries, "new-secret.txt"));
  g_assert_true (has_warning (second, "new-secret.txt", "not synced"));
  g_assert_cmpint (get (second, "locked")->kind, ==, FS_KIND_DIR);
  g_assert_true (fs_entry_same_content (get (second, "locked/inner.txt"),
                                        get (first, "locked/inner.txt")));
  get (second, "locked/deeper");
  get (second, "locked/deeper/x");
  g_assert_true (has_warning (second, "locked", "keeping"));
  get (second, "plain.txt");
}

static void
test_scanner_unreadable (void)
{
  g_autofree gchar *root = NULL;

  if (g_test_subprocess ())
    {
      /* as root in a child that drops to nobody, so access checks apply */
      check_unreadable (g_getenv ("FS_TEST_UNREADABLE_ROOT"), TRUE);
      return;
    }

  root = make_tmp_dir ();
  if (geteuid () != 0)
    check_unreadable (root, FALSE);
  else
    {
      /* Root bypasses access checks, so chmod 000 alone proves nothing: run the
       * test in a child process that drops its privileges to nobody. */
      g_setenv ("FS_TEST_UNREADABLE_ROOT", root, TRUE);
      g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_INHERIT_STDERR);
      g_test_trap_assert_passed ();
    }
  remove_tree (root);
}

/* Last written an hour ago. */
static void
set_old_mtime (const gchar *root, const gchar *rel)
{
  g_autofree gchar *path = g_build_filename (root, rel, NULL);
  struct timespec times[2] = { { 0, UTIME_OMIT }, { time (NULL) - 3600, 0 } };

  g_assert_cmpint (utimensat (AT_FDCWD, path, times, 0), ==, 0);
}

static gboolean
defer_new_txt (gpointer data, const gchar *key)
{
  g_ptr_array_add (data, g_strdup (key));
  return g_str_has_suffix (key, "/new.txt");
}

/* fs_scan_paths: only the given paths, the same entries a walk would give,
 * and "needs a walk" where only a walk can tell. */
static void
test_scanner_paths (void)
{
  g_autofree gchar *root = make_tmp_dir ();
  g_autofree gchar *outside = make_tmp_dir ();
  g_autoptr (FsScanResult) whole = NULL;
  g_autoptr (GHashTable) base = NULL;

  write_file (root, ".foldersyncignore", "*.tmp\nbuild/\n");
  write_file (root, "docs/a.txt", "a");
  write_file (root, "docs/b.txt", "b");
  write_file (root, "build/out.o", "o");
  write_file (root, "docs/x.tmp", "x");
  write_file (outside, "secret.txt", "s");
  make_dir (root, "docs/sub");
  {
    g_autofree gchar *link = g_build_filename (root, "escape", NULL);
    g_assert_cmpint (symlink (outside, link), ==, 0);
  }
  whole = scan (root, NULL);
  base = as_base (whole);

  {
    const gchar *paths[] = { "docs/a.txt", "docs/gone.txt", "docs/x.tmp", "build/out.o", NULL };
    gboolean full = TRUE;
    g_autoptr (GError) error = NULL;
    g_autoptr (FsScanResult) r = NULL;

    write_file (root, "docs/a.txt", "changed");
    r = fs_scan_paths (root, base, whole->ignore, paths, NULL, NULL, &full, NULL, &error);
    g_assert_no_error (error);
    g_assert_nonnull (r);
    g_assert_false (full);
    /* the changed file, hashed again; nothing for a path that is gone or ignored */
    g_assert_cmpuint (g_hash_table_size (r->entries), ==, 1);
    g_assert_nonnull (get (r, "docs/a.txt"));
    g_assert_cmpstr (get (r, "docs/a.txt")->hash, !=, get (whole, "docs/a.txt")->hash);
    g_assert_cmpuint (r->stats.files_hashed, ==, 1);
  }
  /* New files: the one the defer function keeps for its upload is not read
   * (hash NULL, its stat data all the same); the other one is hashed; one
   * written just now is hashed without asking (two reads must agree), and
   * so is a file with a base entry. */
  {
    const gchar *paths[] = { "docs/new.txt", "docs/other.txt", "docs/fresh.txt", "docs/b.txt",
                             NULL };
    gboolean full = TRUE;
    g_autoptr (GError) error = NULL;
    g_autoptr (FsScanResult) r = NULL;
    g_autoptr (GPtrArray) asked = g_ptr_array_new_with_free_func (g_free);

    write_file (root, "docs/new.txt", "new");
    write_file (root, "docs/other.txt", "other");
    write_file (root, "docs/fresh.txt", "fresh");
    write_file (root, "docs/b.txt", "b, changed");
    set_old_mtime (root, "docs/new.txt");
    set_old_mtime (root, "docs/other.txt");
    set_old_mtime (root, "docs/b.txt");
    r = fs_scan_paths (root, base, whole->ignore, paths, defer_new_txt, asked, &full, NULL,
                       &error);
    g_assert_no_error (error);
    g_assert_nonnull (r);
    g_assert_cmpuint (asked->len, ==, 2);
    g_assert_cmpstr (g_ptr_array_index (asked, 0), ==, "docs/new.txt");
    g_assert_cmpstr (g_ptr_array_index (asked, 1), ==, "docs/other.txt");
    g_assert_null (get (r, "docs/new.txt")->hash);
    g_assert_cmpuint (get (r, "docs/new.txt")->size, ==, 3);
    g_assert_cmpuint (get (r, "docs/new.txt")->kind, ==, FS_KIND_FILE);
    g_assert_nonnull (get (r, "docs/other.txt")->hash);
    g_assert_nonnull (get (r, "docs/fresh.txt")->hash);
    g_assert_nonnull (get (r, "docs/b.txt")->hash);
    g_assert_cmpuint (r->stats.files_hashed, ==, 3);
  }
  /* Only a walk can tell: a directory, an ignore file, a non-ASCII name, a
   * path through a symbolic link (never followed). */
  {
    const gchar *cases[] = { "docs/sub", ".foldersyncignore", "docs/caf" NFC_E ".txt",
                             "escape/secret.txt" };
    for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
      {
        const gchar *paths[] = { cases[i], NULL };
        gboolean full = FALSE;
        g_autoptr (GError) error = NULL;
        g_autoptr (FsScanResult) r = fs_scan_paths (root, base, whole->ignore, paths, NULL, NULL, &full, NULL,
                                                    &error);
        g_assert_no_error (error);
        g_assert_null (r);
        g_assert_true (full);
      }
  }
  remove_tree (root);
  remove_tree (outside);
}

/* Tree order: '/' before every other byte, so a directory is followed by
 * everything below it and then by its next sibling. */
static void
test_scanner_tree_order (void)
{
  const gchar *sorted[] = { "", "a", "a/b", "a/b/c", "a/z", "a b", "a.txt", "a0", "ab",
                            "b", NFC_E, NFC_E "/x" };

  for (gsize i = 0; i < G_N_ELEMENTS (sorted); i++)
    for (gsize j = 0; j < G_N_ELEMENTS (sorted); j++)
      {
        gint c = fs_path_tree_cmp (sorted[i], sorted[j]);
        g_assert_cmpint (i < j ? -1 : i > j ? 1 : 0, ==, c < 0 ? -1 : c > 0 ? 1 : 0);
      }
}

typedef struct {
  GPtrArray *emitted; /* paths */
  GPtrArray *asked;   /* base_lookup keys */
  GHashTable *base;
} SinkLog;

static const FsEntry *
log_base_lookup (gpointer data, const gchar *key)
{
  SinkLog *log = data;
  g_ptr_array_add (log->asked, g_strdup (key));
  return g_hash_table_lookup (log->base, key);
}

static GPtrArray *
log_base_below (gpointer data, const gchar *key)
{
  return g_ptr_array_new_with_free_func ((GDestroyNotify) fs_entry_free);
}

static void
log_emit (gpointer data, FsEntry *entry)
{
  SinkLog *log = data;
  g_ptr_array_add (log->emitted, g_strdup (entry->path));
  fs_entry_free (entry);
}

static void
assert_tree_ordered (GPtrArray *paths)
{
  for (guint i = 1; i < paths->len; i++)
    {
      const gchar *a = g_ptr_array_index (paths, i - 1);
      const gchar *b = g_ptr_array_index (paths, i);
      if (fs_path_tree_cmp (a, b) >= 0)
        g_error ("not in tree order: ‘%s’ before ‘%s’", a, b);
    }
}

/* A sink gets every entry in tree order (NFD names by their NFC key), and is
 * asked for base entries in increasing order: what the engine's merge needs. */
static void
test_scanner_sink_order (void)
{
  g_autofree gchar *root = make_tmp_dir ();
  g_autoptr (GError) error = NULL;
  g_autoptr (FsScanResult) result = NULL;
  g_autoptr (GHashTable) base =
    g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) fs_entry_free);
  SinkLog log = { g_ptr_array_new_with_free_func (g_free), g_ptr_array_new_with_free_func (g_free),
                  base };
  const FsScanSink sink = { log_base_lookup, log_base_below, log_emit, &log };
  /* NFD_E sorts before "f" on disk (e...) and after "z" as its key (0xc3). */
  const gchar *files[] = { "a/b/c", "a/z", "a b", "a.txt", "a0", "ab", "b", "d" NFD_E "/x",
                           "d" NFC_E "0", "z/.foldersync.tmp.1", "z/y", NFD_E, "f" };
  const gchar *expected[] = { "a", "a/b", "a/b/c", "a/z", "a b", "a.txt", "a0", "ab", "b",
                              "d" NFC_E, "d" NFC_E "/x", "d" NFC_E "0", "f", "z", "z/y", NFC_E };

  for (gsize i = 0; i < G_N_ELEMENTS (files); i++)
    write_file (root, files[i], files[i]);
  g_hash_table_insert (base, g_strdup ("a.txt"), fs_entry_new ("a.txt", FS_KIND_FILE));

  result = fs_scan_to_sink (root, &sink, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_hash_table_size (result->entries), ==, 0);
  g_assert_cmpuint (result->stale_temps->len, ==, 1);
  g_assert_cmpuint (log.emitted->len, ==, G_N_ELEMENTS (expected));
  for (gsize i = 0; i < G_N_ELEMENTS (expected); i++)
    g_assert_cmpstr (g_ptr_array_index (log.emitted, i), ==, expected[i]);
  assert_tree_ordered (log.asked);
  g_assert_cmpuint (log.asked->len, >=, 9); /* every file */
  g_ptr_array_unref (log.emitted);
  g_ptr_array_unref (log.asked);
  remove_tree (root);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/scanner/tree-order", test_scanner_tree_order);
  g_test_add_func ("/scanner/sink-order", test_scanner_sink_order);
  g_test_add_func ("/scanner/tree", test_scanner_tree);
  g_test_add_func ("/scanner/unchanged-not-hashed", test_scanner_unchanged_not_hashed);
  g_test_add_func ("/scanner/many", test_scanner_many);
  g_test_add_func ("/scanner/still-being-written", test_scanner_still_being_written);
  g_test_add_func ("/scanner/hash-file", test_scanner_hash_file);
  g_test_add_func ("/scanner/same", test_scanner_same);
  g_test_add_func ("/scanner/cancelled", test_scanner_cancelled);
  g_test_add_func ("/scanner/missing-root", test_scanner_missing_root);
  g_test_add_func ("/scanner/unreadable", test_scanner_unreadable);
  g_test_add_func ("/scanner/paths", test_scanner_paths);
  return g_test_run ();
}
