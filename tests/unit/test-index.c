/* Unit tests of the per-folder SQLite index (FsIndex). */
#include <glib.h>
#include <glib/gstdio.h>
#include <sqlite3.h>
#include <string.h>

#include "fs-error.h"
#include "fs-index.h"

typedef struct {
  gchar *dir;
  gchar *db;
} Fixture;

static void
fixture_set_up (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  f->dir = g_dir_make_tmp ("fs-index-XXXXXX", &error);
  g_assert_no_error (error);
  f->db = g_build_filename (f->dir, "folder.db", NULL);
}

static void
fixture_tear_down (Fixture *f, gconstpointer data)
{
  const gchar *suffixes[] = { "", "-wal", "-shm" };
  for (guint i = 0; i < G_N_ELEMENTS (suffixes); i++)
    {
      g_autofree gchar *p = g_strconcat (f->db, suffixes[i], NULL);
      g_unlink (p);
    }
  g_rmdir (f->dir);
  g_free (f->db);
  g_free (f->dir);
}

static FsEntry *
make_file (const gchar *path, const gchar *hash)
{
  FsEntry *e = fs_entry_new (path, FS_KIND_FILE);
  e->size = 1234;
  e->mtime_ns = G_GINT64_CONSTANT (1700000000123456789);
  e->inode = G_GUINT64_CONSTANT (18446744073709551000); /* above INT64_MAX */
  e->mode = 0755;
  e->hash = g_strdup (hash);
  e->version = g_strdup ("v1");
  return e;
}

static void
assert_entry_equal (const FsEntry *a, const FsEntry *b)
{
  g_assert_cmpstr (a->path, ==, b->path);
  g_assert_cmpstr (a->disk_path, ==, b->disk_path);
  g_assert_cmpint (a->kind, ==, b->kind);
  g_assert_cmpuint (a->size, ==, b->size);
  g_assert_cmpint (a->mtime_ns, ==, b->mtime_ns);
  g_assert_cmpuint (a->inode, ==, b->inode);
  g_assert_cmpuint (a->mode, ==, b->mode);
  g_assert_cmpstr (a->hash, ==, b->hash);
  g_assert_cmpstr (a->target, ==, b->target);
  g_assert_cmpstr (a->version, ==, b->version);
}

static void
test_index_create_reopen (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (FsEntry) e = make_file ("caf\xc3\xa9/a.txt", "aa");
  g_autoptr (FsEntry) got = NULL;

  e->disk_path = g_strdup ("cafe\xcc\x81/a.txt");
  {
    g_autoptr (FsIndex) index = fs_index_open (f->db, &error);
    g_assert_no_error (error);
    g_assert_cmpint (fs_index_get_schema_version (index), ==, FS_INDEX_SCHEMA_VERSION);
    g_assert_true (fs_index_put (index, e, &error));
    g_assert_no_error (error);
    g_assert_true (fs_index_set_meta (index, "device_id", "dev-1", &error));
    g_assert_no_error (error);
  }
  {
    g_autoptr (FsIndex) index = fs_index_open (f->db, &error);
    g_autofree gchar *device = NULL;
    g_assert_no_error (error);
    g_assert_cmpint (fs_index_get_schema_version (index), ==, FS_INDEX_SCHEMA_VERSION);
    got = fs_index_lookup (index, e->path, &error);
    g_assert_no_error (error);
    g_assert_nonnull (got);
    assert_entry_equal (got, e);
    device = fs_index_get_meta (index, "device_id");
    g_assert_cmpstr (device, ==, "dev-1");
  }
}

static void
test_index_entries (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (FsIndex) index = fs_index_open (f->db, &error);
  g_autoptr (FsEntry) a = make_file ("b/a", "h1");
  g_autoptr (FsEntry) b = make_file ("a", "h2");
  g_autoptr (FsEntry) link = fs_entry_new ("link", FS_KIND_SYMLINK);
  g_autoptr (FsEntry) dir = fs_entry_new ("b", FS_KIND_DIR);
  g_autoptr (FsEntry) got = NULL;
  g_autoptr (GPtrArray) list = NULL;
  g_autoptr (GHashTable) all = NULL;

  g_assert_no_error (error);
  link->target = g_strdup ("../x");
  link->hash = g_strdup ("h3");
  dir->mode = 0700;
  g_assert_true (fs_index_put (index, a, &error));
  g_assert_true (fs_index_put (index, b, &error));
  g_assert_true (fs_index_put (index, link, &error));
  g_assert_true (fs_index_put (index, dir, &error));
  g_assert_no_error (error);

  got = fs_index_lookup (index, "missing", &error);
  g_assert_no_error (error);
  g_assert_null (got);

  got = fs_index_lookup (index, "link", &error);
  g_assert_no_error (error);
  assert_entry_equal (got, link);
  g_clear_pointer (&got, fs_entry_free);

  /* put replaces */
  g_free (a->hash);
  a->hash = g_strdup ("h1-new");
  g_assert_true (fs_index_put (index, a, &error));
  got = fs_index_lookup (index, "b/a", &error);
  assert_entry_equal (got, a);
  g_clear_pointer (&got, fs_entry_free);

  list = fs_index_list (index, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (list->len, ==, 4);
  g_assert_cmpstr (((FsEntry *) list->pdata[0])->path, ==, "a");
  g_assert_cmpstr (((FsEntry *) list->pdata[1])->path, ==, "b");
  g_assert_cmpstr (((FsEntry *) list->pdata[2])->path, ==, "b/a");
  g_assert_cmpstr (((FsEntry *) list->pdata[3])->path, ==, "link");

  g_assert_true (fs_index_remove (index, "a", &error));
  g_assert_true (fs_index_remove (index, "never-there", &error));
  g_assert_no_error (error);
  all = fs_index_load_all (index, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_hash_table_size (all), ==, 3);
  g_assert_false (g_hash_table_contains (all, "a"));
  assert_entry_equal (g_hash_table_lookup (all, "b"), dir);
  assert_entry_equal (g_hash_table_lookup (all, "b/a"), a);
  /* Keys are owned copies: replacing a value must not leave a dangling key. */
  g_hash_table_insert (all, g_strdup ("b"), fs_entry_copy (dir));
  g_assert_true (g_hash_table_contains (all, "b"));
}

static void
test_index_records_cursors_meta (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (FsIndex) index = fs_index_open (f->db, &error);
  g_autoptr (FsRecord) r1 = fs_record_new ();
  g_autoptr (FsRecord) r2 = NULL;
  g_autoptr (FsRecord) dup = NULL;
  g_autoptr (GPtrArray) records = NULL;
  g_autofree gchar *missing = NULL;
  g_autofree gchar *value = NULL;
  FsRecord *got;

  g_assert_no_error (error);
  r1->version = g_strdup ("ver-1");
  r1->path = g_strdup ("docs/a.txt");
  r1->kind = FS_KIND_FILE;
  r1->size = 42;
  r1->mtime_ns = 99;
  r1->mode = 0644;
  r1->hash = g_strdup ("abc");
  r1->object = g_strdup ("obj/1");
  r1->device_id = g_strdup ("dev-a");
  r1->device_name = g_strdup ("laptop");
  r1->seq = 7;
  r1->time_us = 123456;
  r2 = fs_record_copy (r1);
  g_free (r2->version);
  r2->version = g_strdup ("ver-2");
  r2->replaces = g_strdup ("ver-1");
  r2->deleted = TRUE;
  r2->seq = 8;

  g_assert_true (fs_index_add_record (index, r1, &error));
  g_assert_true (fs_index_add_record (index, r2, &error));
  /* records are immutable: a second add of a version is ignored */
  dup = fs_record_copy (r1);
  g_free (dup->path);
  dup->path = g_strdup ("changed");
  g_assert_true (fs_index_add_record (index, dup, &error));
  g_assert_no_error (error);

  records = fs_index_list_records (index, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (records->len, ==, 2);
  got = records->pdata[0];
  g_assert_cmpstr (got->version, ==, "ver-1");
  g_assert_null (got->replaces);
  g_assert_cmpstr (got->path, ==, "docs/a.txt");
  g_assert_cmpint (got->kind, ==, FS_KIND_FILE);
  g_assert_false (got->deleted);
  g_assert_cmpuint (got->size, ==, 42);
  g_assert_cmpint (got->mtime_ns, ==, 99);
  g_assert_cmpuint (got->mode, ==, 0644);
  g_assert_cmpstr (got->hash, ==, "abc");
  g_assert_null (got->target);
  g_assert_cmpstr (got->object, ==, "obj/1");
  g_assert_cmpstr (got->device_id, ==, "dev-a");
  g_assert_cmpstr (got->device_name, ==, "laptop");
  g_assert_cmpint (got->seq, ==, 7);
  g_assert_cmpint (got->time_us, ==, 123456);
  got = records->pdata[1];
  g_assert_cmpstr (got->version, ==, "ver-2");
  g_assert_cmpstr (got->replaces, ==, "ver-1");
  g_assert_true (got->deleted);

  g_assert_cmpint (fs_index_get_cursor (index, "dev-a"), ==, -1);
  g_assert_true (fs_index_set_cursor (index, "dev-a", 5, &error));
  g_assert_true (fs_index_set_cursor (index, "dev-a", 9, &error));
  g_assert_true (fs_index_set_cursor (index, "dev-b", 0, &error));
  g_assert_no_error (error);
  g_assert_cmpint (fs_index_get_cursor (index, "dev-a"), ==, 9);
  g_assert_cmpint (fs_index_get_cursor (index, "dev-b"), ==, 0);
  {
    g_autoptr(GPtrArray) devices = fs_index_list_cursor_devices (index, &error);
    g_assert_no_error (error);
    g_assert_cmpuint (devices->len, ==, 2);
    g_assert_cmpstr (g_ptr_array_index (devices, 0), ==, "dev-a");
    g_assert_cmpstr (g_ptr_array_index (devices, 1), ==, "dev-b");
  }

  missing = fs_index_get_meta (index, "nothing");
  g_assert_null (missing);
  g_assert_true (fs_index_set_meta (index, "k", "v1", &error));
  g_assert_true (fs_index_set_meta (index, "k", "v2", &error));
  g_assert_no_error (error);
  value = fs_index_get_meta (index, "k");
  g_assert_cmpstr (value, ==, "v2");

  /* Settings by prefix (the engine's lost/VERSION notes), and removal. */
  {
    g_autoptr (GHashTable) lost = NULL;

    g_assert_true (fs_index_set_meta (index, "lost/v1", "a.txt", &error));
    g_assert_true (fs_index_set_meta (index, "lost/v2", "d/b.txt", &error));
    g_assert_true (fs_index_set_meta (index, "lostx", "not one", &error));
    lost = fs_index_list_meta (index, "lost/", &error);
    g_assert_no_error (error);
    g_assert_cmpuint (g_hash_table_size (lost), ==, 2);
    g_assert_cmpstr (g_hash_table_lookup (lost, "v1"), ==, "a.txt");
    g_assert_cmpstr (g_hash_table_lookup (lost, "v2"), ==, "d/b.txt");
    g_assert_true (fs_index_delete_meta (index, "lost/v1", &error));
    g_assert_true (fs_index_delete_meta (index, "lost/none", &error));
    g_clear_pointer (&lost, g_hash_table_unref);
    lost = fs_index_list_meta (index, "lost/", &error);
    g_assert_cmpuint (g_hash_table_size (lost), ==, 1);
    g_assert_true (g_hash_table_contains (lost, "v2"));
    g_assert_no_error (error);
  }
}

static void
test_index_rollback (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (FsIndex) index = fs_index_open (f->db, &error);
  g_autoptr (FsEntry) kept = make_file ("kept", "h");
  g_autoptr (FsEntry) gone = make_file ("gone", "h");
  g_autoptr (FsEntry) got = NULL;
  g_autofree gchar *meta = NULL;

  g_assert_no_error (error);
  g_assert_true (fs_index_begin (index, &error));
  g_assert_true (fs_index_put (index, kept, &error));
  g_assert_true (fs_index_commit (index, &error));
  g_assert_no_error (error);

  g_assert_true (fs_index_begin (index, &error));
  g_assert_true (fs_index_put (index, gone, &error));
  g_assert_true (fs_index_remove (index, "kept", &error));
  g_assert_true (fs_index_set_meta (index, "m", "x", &error));
  g_assert_true (fs_index_set_cursor (index, "dev", 3, &error));
  g_assert_no_error (error);
  fs_index_rollback (index);
  /* a rollback outside a transaction is harmless */
  fs_index_rollback (index);

  got = fs_index_lookup (index, "gone", &error);
  g_assert_null (got);
  got = fs_index_lookup (index, "kept", &error);
  g_assert_nonnull (got);
  meta = fs_index_get_meta (index, "m");
  g_assert_null (meta);
  g_assert_cmpint (fs_index_get_cursor (index, "dev"), ==, -1);
  g_assert_no_error (error);

  /* a commit without a transaction is an error, not a crash */
  g_assert_false (fs_index_commit (index, &error));
  g_assert_error (error, FS_INDEX_ERROR, FS_INDEX_ERROR_FAILED);
}

static void
test_index_wal (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (FsIndex) index = fs_index_open (f->db, &error);
  sqlite3 *db = NULL;
  sqlite3_stmt *stmt = NULL;
  g_autofree gchar *wal = g_strconcat (f->db, "-wal", NULL);

  g_assert_no_error (error);
  g_assert_true (g_file_test (wal, G_FILE_TEST_EXISTS));
  /* journal_mode=WAL is persistent in the file: a second connection sees it */
  g_assert_cmpint (sqlite3_open (f->db, &db), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_prepare_v2 (db, "PRAGMA journal_mode", -1, &stmt, NULL), ==,
                   SQLITE_OK);
  g_assert_cmpint (sqlite3_step (stmt), ==, SQLITE_ROW);
  g_assert_cmpstr ((const gchar *) sqlite3_column_text (stmt, 0), ==, "wal");
  sqlite3_finalize (stmt);
  g_assert_cmpint (sqlite3_prepare_v2 (db, "PRAGMA user_version", -1, &stmt, NULL), ==,
                   SQLITE_OK);
  g_assert_cmpint (sqlite3_step (stmt), ==, SQLITE_ROW);
  g_assert_cmpint (sqlite3_column_int (stmt, 0), ==, FS_INDEX_SCHEMA_VERSION);
  sqlite3_finalize (stmt);
  sqlite3_close (db);
}

static void
test_index_schema_too_new (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (FsIndex) index = fs_index_open (f->db, &error);
  sqlite3 *db = NULL;

  g_assert_no_error (error);
  g_clear_object (&index);

  g_assert_cmpint (sqlite3_open (f->db, &db), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_exec (db, "PRAGMA user_version = 99", NULL, NULL, NULL), ==,
                   SQLITE_OK);
  sqlite3_close (db);

  index = fs_index_open (f->db, &error);
  g_assert_null (index);
  g_assert_error (error, FS_INDEX_ERROR, FS_INDEX_ERROR_SCHEMA_TOO_NEW);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, f->db));
  g_assert_nonnull (strstr (error->message, "99"));
  g_assert_nonnull (strstr (error->message, G_STRINGIFY (FS_INDEX_SCHEMA_VERSION)));
}

static void
test_index_corrupt (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (FsIndex) index = NULL;
  g_autoptr (GString) garbage = g_string_new (NULL);

  for (guint i = 0; i < 512; i++)
    g_string_append (garbage, "this is not an SQLite database. ");
  g_assert_true (g_file_set_contents (f->db, garbage->str, garbage->len, &error));

  index = fs_index_open (f->db, &error);
  g_assert_null (index);
  g_assert_error (error, FS_INDEX_ERROR, FS_INDEX_ERROR_CORRUPT);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, f->db));
}

static void
test_index_unopenable (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autofree gchar *path = g_build_filename (f->dir, "no", "such", "dir.db", NULL);
  g_autoptr (FsIndex) index = fs_index_open (path, &error);

  g_assert_null (index);
  g_assert_error (error, FS_INDEX_ERROR, FS_INDEX_ERROR_FAILED);
}

static void
test_index_many (Fixture *f, gconstpointer data)
{
  const guint n = 100000;
  g_autoptr (GError) error = NULL;
  g_autoptr (FsIndex) index = fs_index_open (f->db, &error);
  g_autoptr (GHashTable) all = NULL;
  g_autoptr (GTimer) timer = g_timer_new ();
  g_autoptr (FsEntry) e = make_file ("", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
  gdouble put_s, load_s;
  FsEntry *got;

  g_assert_no_error (error);
  g_assert_true (fs_index_begin (index, &error));
  for (guint i = 0; i < n; i++)
    {
      g_free (e->path);
      e->path = g_strdup_printf ("dir%03u/sub/file-%06u.txt", i % 500, i);
      e->size = i;
      if (!fs_index_put (index, e, &error))
        break;
    }
  g_assert_no_error (error);
  g_assert_true (fs_index_commit (index, &error));
  g_assert_no_error (error);
  put_s = g_timer_elapsed (timer, NULL);

  g_timer_start (timer);
  all = fs_index_load_all (index, &error);
  load_s = g_timer_elapsed (timer, NULL);
  g_assert_no_error (error);
  g_assert_cmpuint (g_hash_table_size (all), ==, n);
  got = g_hash_table_lookup (all, "dir123/sub/file-012623.txt");
  g_assert_nonnull (got);
  g_assert_cmpuint (got->size, ==, 12623);
  g_test_message ("%u puts in one transaction: %.3f s; load_all: %.3f s", n, put_s, load_s);
  g_assert_cmpfloat (put_s + load_s, <, 10.0);
}

/* An index of schema 1 (before pack members) keeps its records: they name
 * whole objects; a record with a range round-trips after the migration. */
static void
test_index_migrate_v1 (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (FsIndex) index = NULL;
  g_autoptr (GPtrArray) records = NULL;
  g_autoptr (FsRecord) packed = fs_record_new ();
  sqlite3 *db = NULL;
  const gchar *v1 =
    "CREATE TABLE entries (path TEXT PRIMARY KEY NOT NULL, disk_path TEXT, kind INTEGER NOT NULL,"
    " size INTEGER NOT NULL DEFAULT 0, mtime_ns INTEGER NOT NULL DEFAULT 0, inode INTEGER NOT NULL"
    " DEFAULT 0, mode INTEGER NOT NULL DEFAULT 0, hash TEXT, target TEXT, version TEXT,"
    " synced_at INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE records (version TEXT PRIMARY KEY NOT NULL, replaces TEXT, path TEXT NOT NULL,"
    " kind INTEGER NOT NULL, deleted INTEGER NOT NULL DEFAULT 0, size INTEGER NOT NULL DEFAULT 0,"
    " mtime_ns INTEGER NOT NULL DEFAULT 0, mode INTEGER NOT NULL DEFAULT 0, hash TEXT, target TEXT,"
    " object TEXT, device_id TEXT, device_name TEXT, seq INTEGER NOT NULL DEFAULT 0,"
    " time_us INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX records_replaces ON records (replaces);"
    "CREATE TABLE cursors (device_id TEXT PRIMARY KEY NOT NULL, seq INTEGER NOT NULL);"
    "CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value TEXT);"
    "INSERT INTO records (version, path, kind, hash, object, device_id, seq)"
    " VALUES ('v1', 'a.txt', 1, 'h', 'o/ab/abc.v1', 'dev', 0);"
    "PRAGMA user_version = 1;";

  g_assert_cmpint (sqlite3_open (f->db, &db), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_exec (db, v1, NULL, NULL, NULL), ==, SQLITE_OK);
  sqlite3_close (db);

  index = fs_index_open (f->db, &error);
  g_assert_no_error (error);
  g_assert_cmpint (fs_index_get_schema_version (index), ==, FS_INDEX_SCHEMA_VERSION);
  packed->version = g_strdup ("v2");
  packed->replaces = g_strdup ("v1");
  packed->path = g_strdup ("a.txt");
  packed->kind = FS_KIND_FILE;
  packed->hash = g_strdup ("h2");
  packed->object = g_strdup ("p/cd/cdef");
  packed->object_offset = 1 << 20;
  packed->object_length = 777;
  packed->device_id = g_strdup ("dev");
  packed->seq = 1;
  g_assert_true (fs_index_add_record (index, packed, &error));
  records = fs_index_list_records (index, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (records->len, ==, 2);
  for (guint i = 0; i < records->len; i++)
    {
      FsRecord *r = g_ptr_array_index (records, i);
      if (g_strcmp0 (r->version, "v1") == 0)
        {
          g_assert_cmpstr (r->object, ==, "o/ab/abc.v1");
          g_assert_cmpint (r->object_length, ==, -1);
          g_assert_cmpuint (r->object_offset, ==, 0);
        }
      else
        {
          g_assert_cmpstr (r->object, ==, "p/cd/cdef");
          g_assert_cmpint (r->object_length, ==, 777);
          g_assert_cmpuint (r->object_offset, ==, 1 << 20);
        }
    }
}

static FsRecord *
head_record (const gchar *version, const gchar *path, const gchar *replaces)
{
  FsRecord *r = fs_record_new ();
  r->version = g_strdup (version);
  r->replaces = g_strdup (replaces);
  r->path = g_strdup (path);
  r->kind = FS_KIND_FILE;
  r->size = 42;
  r->hash = g_strdup ("h");
  r->object = g_strdup ("p/ab/abcd");
  r->object_offset = 7;
  r->object_length = 99;
  r->device_id = g_strdup ("dev");
  r->device_name = g_strdup ("laptop");
  r->seq = 3;
  return r;
}

/* The heads table: a head is its record shown at the effective path (a
 * conflict name, an NFC key); replacing and clearing work; a head of an
 * unknown version is not invented. */
static void
test_index_heads (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (FsIndex) index = fs_index_open (f->db, &error);
  g_autoptr (FsRecord) r1 = head_record ("v1", "Caf\x65\xcc\x81.txt", NULL);
  g_autoptr (FsRecord) r2 = head_record ("v2", "a.txt", NULL);
  g_autoptr (FsRecord) r3 = head_record ("v3", "a.txt", "v2");
  g_autoptr (FsRecord) got = NULL;
  g_autoptr (FsRecord) original = NULL;
  g_autoptr (FsIndexCursor) cursor = NULL;
  gboolean contested = FALSE;

  g_assert_no_error (error);
  g_assert_true (fs_index_add_record (index, r1, &error));
  g_assert_true (fs_index_add_record (index, r2, &error));
  g_assert_true (fs_index_add_record (index, r3, &error));
  g_assert_true (fs_index_put_head (index, "Caf\xc3\xa9.txt", "v1", TRUE, &error));
  g_assert_true (fs_index_put_head (index, "a.txt", "v2", FALSE, &error));
  g_assert_true (fs_index_put_head (index, "a.txt", "v3", FALSE, &error));
  g_assert_true (fs_index_put_head (index, "ghost.txt", "no-such-version", FALSE, &error));
  g_assert_no_error (error);

  got = fs_index_lookup_head (index, "Caf\xc3\xa9.txt", &contested, &error);
  g_assert_no_error (error);
  g_assert_nonnull (got);
  g_assert_true (contested);
  g_assert_cmpstr (got->path, ==, "Caf\xc3\xa9.txt");
  g_assert_cmpstr (got->version, ==, "v1");
  g_assert_cmpstr (got->device_name, ==, "laptop");
  g_assert_cmpuint (got->object_offset, ==, 7);
  g_assert_cmpint (got->object_length, ==, 99);
  original = fs_index_lookup_record (index, got->version, &error);
  g_assert_cmpstr (original->path, ==, "Caf\x65\xcc\x81.txt");
  g_clear_pointer (&got, fs_record_free);
  got = fs_index_lookup_head (index, "ghost.txt", NULL, &error);
  g_assert_no_error (error);
  g_assert_null (got);

  got = fs_index_lookup_head (index, "a.txt", &contested, &error);
  g_assert_cmpstr (got->version, ==, "v3");
  g_assert_cmpstr (got->replaces, ==, "v2");
  g_assert_false (contested);
  g_clear_pointer (&got, fs_record_free);

  /* What base_lost() in the engine asks: is a version replaced by a record,
   * or a head somewhere (under its NFC key here)? */
  {
    g_autoptr (GHashTable) versions = fs_index_head_versions (index, &error);
    gboolean replaced = TRUE;

    g_assert_no_error (error);
    g_assert_cmpuint (g_hash_table_size (versions), ==, 2); /* no ghost */
    g_assert_true (g_hash_table_contains (versions, "v1"));
    g_assert_true (g_hash_table_contains (versions, "v3"));
    g_assert_false (g_hash_table_contains (versions, "v2"));
    g_assert_true (fs_index_version_replaced (index, "v2", &replaced, &error));
    g_assert_true (replaced);
    g_assert_true (fs_index_version_replaced (index, "v3", &replaced, &error));
    g_assert_false (replaced);
    g_assert_no_error (error);
  }

  /* The light cursor: tree order, path, version and deleted only. */
  cursor = fs_index_heads_cursor (index, &error);
  g_assert_no_error (error);
  got = fs_index_cursor_next_head (cursor, &error);
  g_assert_cmpstr (got->path, ==, "Caf\xc3\xa9.txt"); /* 'C' < 'a' */
  g_clear_pointer (&got, fs_record_free);
  got = fs_index_cursor_next_head (cursor, &error);
  g_assert_cmpstr (got->path, ==, "a.txt");
  g_assert_cmpstr (got->version, ==, "v3");
  g_assert_null (got->hash);
  g_clear_pointer (&got, fs_record_free);
  g_assert_null (fs_index_cursor_next_head (cursor, &error));
  g_assert_no_error (error);
  g_clear_pointer (&cursor, fs_index_cursor_free);

  g_assert_true (fs_index_clear_heads (index, &error));
  cursor = fs_index_heads_cursor (index, &error);
  g_assert_null (fs_index_cursor_next_head (cursor, &error));
  g_assert_no_error (error);
  g_assert_null (fs_index_lookup_record (index, "v9", &error));
  g_assert_no_error (error);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
#define ADD(path, func) \
  g_test_add (path, Fixture, NULL, fixture_set_up, func, fixture_tear_down)
  ADD ("/index/create-reopen", test_index_create_reopen);
  ADD ("/index/entries", test_index_entries);
  ADD ("/index/records-cursors-meta", test_index_records_cursors_meta);
  ADD ("/index/rollback", test_index_rollback);
  ADD ("/index/wal", test_index_wal);
  ADD ("/index/schema/too-new", test_index_schema_too_new);
  ADD ("/index/schema/corrupt", test_index_corrupt);
  ADD ("/index/schema/migrate-v1", test_index_migrate_v1);
  ADD ("/index/heads", test_index_heads);
  ADD ("/index/open-error", test_index_unopenable);
  ADD ("/index/many", test_index_many);
#undef ADD
  return g_test_run ();
}
