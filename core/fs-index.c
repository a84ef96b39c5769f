/* FsIndex: the per-folder SQLite index (DESIGN §6). One database file per
 * synced folder, WAL journal, schema versioned in PRAGMA user_version and
 * upgraded by the migrations below, prepared statements kept for the life of
 * the object. */
#include "config.h"

#include <glib/gi18n-lib.h>
#include <sqlite3.h>

#include "fs-error.h"
#include "fs-index.h"

typedef enum {
  STMT_ENTRY_PUT,
  STMT_ENTRY_LOOKUP,
  STMT_ENTRY_LIST,
  STMT_ENTRY_REMOVE,
  STMT_RECORD_ADD,
  STMT_RECORD_LIST,
  STMT_CURSOR_GET,
  STMT_CURSOR_SET,
  STMT_META_GET,
  STMT_META_SET,
  STMT_CURSOR_LIST,
  STMT_RECORD_LOOKUP,
  STMT_HEAD_LOOKUP,
  STMT_HEAD_PUT,
  STMT_HEAD_CLEAR,
  STMT_VERSION_REPLACED,
  STMT_HEAD_VERSIONS,
  STMT_META_DELETE,
  STMT_META_PREFIX,
  STMT_LAST
} FsIndexStmt;

#define ENTRY_COLUMNS "path, disk_path, kind, size, mtime_ns, inode, mode, hash, target, version"
#define RECORD_COLUMNS                                                                      \
  "version, replaces, path, kind, deleted, size, mtime_ns, mode, hash, target, object, " \
  "device_id, device_name, seq, time_us, object_offset, object_length"

/* A head is a copy of its record (record_path: the record's own path) shown
 * at its effective path: one table to scan, no join. */
#define HEAD_COLUMNS                                                                          \
  "version, replaces, record_path, kind, deleted, size, mtime_ns, mode, hash, target, object, " \
  "device_id, device_name, seq, time_us, object_offset, object_length, path"

static const gchar *const stmt_sql[STMT_LAST] = {
  [STMT_ENTRY_PUT] = "INSERT OR REPLACE INTO entries (" ENTRY_COLUMNS ", synced_at) "
                     "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
  [STMT_ENTRY_LOOKUP] = "SELECT " ENTRY_COLUMNS " FROM entries WHERE path = ?1",
  [STMT_ENTRY_LIST] = "SELECT " ENTRY_COLUMNS " FROM entries ORDER BY path",
  [STMT_ENTRY_REMOVE] = "DELETE FROM entries WHERE path = ?1",
  [STMT_RECORD_ADD] = "INSERT OR IGNORE INTO records (" RECORD_COLUMNS ") "
                      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
  [STMT_RECORD_LIST] = "SELECT " RECORD_COLUMNS " FROM records ORDER BY rowid",
  [STMT_CURSOR_GET] = "SELECT seq FROM cursors WHERE device_id = ?1",
  [STMT_CURSOR_SET] = "INSERT OR REPLACE INTO cursors (device_id, seq) VALUES (?1, ?2)",
  [STMT_META_GET] = "SELECT value FROM meta WHERE key = ?1",
  [STMT_META_SET] = "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
  [STMT_CURSOR_LIST] = "SELECT device_id FROM cursors ORDER BY device_id",
  [STMT_RECORD_LOOKUP] = "SELECT " RECORD_COLUMNS " FROM records WHERE version = ?1",
  [STMT_HEAD_LOOKUP] = "SELECT " HEAD_COLUMNS ", contested FROM heads WHERE path = ?1",
  [STMT_HEAD_PUT] = "INSERT OR REPLACE INTO heads (" HEAD_COLUMNS ", contested) SELECT "
                    RECORD_COLUMNS ", ?1, ?3 FROM records WHERE version = ?2",
  [STMT_HEAD_CLEAR] = "DELETE FROM heads",
  [STMT_VERSION_REPLACED] = "SELECT EXISTS (SELECT 1 FROM records WHERE replaces = ?1)",
  [STMT_HEAD_VERSIONS] = "SELECT version FROM heads",
  [STMT_META_DELETE] = "DELETE FROM meta WHERE key = ?1",
  [STMT_META_PREFIX] = "SELECT substr (key, length (?1) + 1), value FROM meta "
                       "WHERE substr (key, 1, length (?1)) = ?1",
};

/* migrations[i] takes the schema from version i to i + 1. Append only: a
 * released migration is never edited. */
static const gchar *const migrations[FS_INDEX_SCHEMA_VERSION] = {
  /* v0 → v1 */
  "CREATE TABLE entries ("
  "  path TEXT PRIMARY KEY NOT NULL,"
  "  disk_path TEXT,"
  "  kind INTEGER NOT NULL,"
  "  size INTEGER NOT NULL DEFAULT 0,"
  "  mtime_ns INTEGER NOT NULL DEFAULT 0,"
  "  inode INTEGER NOT NULL DEFAULT 0,"
  "  mode INTEGER NOT NULL DEFAULT 0,"
  "  hash TEXT,"
  "  target TEXT,"
  "  version TEXT,"
  "  synced_at INTEGER NOT NULL DEFAULT 0"
  ");"
  "CREATE TABLE records ("
  "  version TEXT PRIMARY KEY NOT NULL,"
  "  replaces TEXT,"
  "  path TEXT NOT NULL,"
  "  kind INTEGER NOT NULL,"
  "  deleted INTEGER NOT NULL DEFAULT 0,"
  "  size INTEGER NOT NULL DEFAULT 0,"
  "  mtime_ns INTEGER NOT NULL DEFAULT 0,"
  "  mode INTEGER NOT NULL DEFAULT 0,"
  "  hash TEXT,"
  "  target TEXT,"
  "  object TEXT,"
  "  device_id TEXT,"
  "  device_name TEXT,"
  "  seq INTEGER NOT NULL DEFAULT 0,"
  "  time_us INTEGER NOT NULL DEFAULT 0"
  ");"
  "CREATE INDEX records_replaces ON records (replaces);"
  "CREATE TABLE cursors ("
  "  device_id TEXT PRIMARY KEY NOT NULL,"
  "  seq INTEGER NOT NULL"
  ");"
  "CREATE TABLE meta ("
  "  key TEXT PRIMARY KEY NOT NULL,"
  "  value TEXT"
  ");",
  /* v1 → v2: records may name a range of a pack object */
  "ALTER TABLE records ADD COLUMN object_offset INTEGER NOT NULL DEFAULT 0;"
  "ALTER TABLE records ADD COLUMN object_length INTEGER NOT NULL DEFAULT -1;",
  /* v2 → v3: the remote tree as derived from the records (valid while the
   * meta "heads_marker" equals the record marker); heads and entries stored
   * in tree order (collation fs_tree, fs_path_tree_cmp()) */
  "CREATE TABLE heads ("
  "  path TEXT PRIMARY KEY COLLATE fs_tree NOT NULL,"
  "  version TEXT NOT NULL,"
  "  replaces TEXT,"
  "  record_path TEXT NOT NULL,"
  "  kind INTEGER NOT NULL,"
  "  deleted INTEGER NOT NULL DEFAULT 0,"
  "  size INTEGER NOT NULL DEFAULT 0,"
  "  mtime_ns INTEGER NOT NULL DEFAULT 0,"
  "  mode INTEGER NOT NULL DEFAULT 0,"
  "  hash TEXT,"
  "  target TEXT,"
  "  object TEXT,"
  "  device_id TEXT,"
  "  device_name TEXT,"
  "  seq INTEGER NOT NULL DEFAULT 0,"
  "  time_us INTEGER NOT NULL DEFAULT 0,"
  "  object_offset INTEGER NOT NULL DEFAULT 0,"
  "  object_length INTEGER NOT NULL DEFAULT -1,"
  "  contested INTEGER NOT NULL DEFAULT 0"
  ") WITHOUT ROWID;"
  /* entries kept in tree order too: a whole sync reads both in one pass */
  "CREATE TABLE entries_tree ("
  "  path TEXT PRIMARY KEY COLLATE fs_tree NOT NULL,"
  "  disk_path TEXT,"
  "  kind INTEGER NOT NULL,"
  "  size INTEGER NOT NULL DEFAULT 0,"
  "  mtime_ns INTEGER NOT NULL DEFAULT 0,"
  "  inode INTEGER NOT NULL DEFAULT 0,"
  "  mode INTEGER NOT NULL DEFAULT 0,"
  "  hash TEXT,"
  "  target TEXT,"
  "  version TEXT,"
  "  synced_at INTEGER NOT NULL DEFAULT 0"
  ") WITHOUT ROWID;"
  "INSERT INTO entries_tree SELECT path, disk_path, kind, size, mtime_ns, inode, mode, hash,"
  "  target, version, synced_at FROM entries;"
  "DROP TABLE entries;"
  "ALTER TABLE entries_tree RENAME TO entries;",
};

struct _FsIndex
{
  GObject parent_instance;
  sqlite3 *db;
  gchar *filename;
  gint schema_version;
  sqlite3_stmt *stmts[STMT_LAST];
};

G_DEFINE_TYPE (FsIndex, fs_index, G_TYPE_OBJECT)

static void
fs_index_finalize (GObject *object)
{
  FsIndex *self = FS_INDEX (object);

  for (guint i = 0; i < STMT_LAST; i++)
    sqlite3_finalize (self->stmts[i]);
  if (self->db != NULL)
    sqlite3_close (self->db);
  g_free (self->filename);
  G_OBJECT_CLASS (fs_index_parent_class)->finalize (object);
}

static void
fs_index_class_init (FsIndexClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = fs_index_finalize;
}

static void
fs_index_init (FsIndex *self)
{
}

static gboolean
is_corrupt_code (int rc)
{
  return (rc & 0xff) == SQLITE_NOTADB || (rc & 0xff) == SQLITE_CORRUPT;
}

/* Sets @error from the database's last error, naming the file and the step. */
static gboolean
set_db_error (FsIndex *self, int rc, const gchar *what, GError **error)
{
  if (is_corrupt_code (rc))
    g_set_error (error, FS_INDEX_ERROR, FS_INDEX_ERROR_CORRUPT,
                 _("Index ‘%s’ is damaged or not a FolderSync index: %s"), self->filename,
                 sqlite3_errmsg (self->db));
  else
    g_set_error (error, FS_INDEX_ERROR, FS_INDEX_ERROR_FAILED, _("Index ‘%s’: %s failed: %s"),
                 self->filename, what, sqlite3_errmsg (self->db));
  return FALSE;
}

static gboolean
exec_sql (FsIndex *self, const gchar *sql, GError **error)
{
  int rc = sqlite3_exec (self->db, sql, NULL, NULL, NULL);
  if (rc != SQLITE_OK)
    return set_db_error (self, rc, sql, error);
  return TRUE;
}

/* Runs a one-row, one-column query (a PRAGMA). */
static gboolean
query_int (FsIndex *self, const gchar *sql, gint64 *out, GError **error)
{
  sqlite3_stmt *stmt = NULL;
  int rc = sqlite3_prepare_v2 (self->db, sql, -1, &stmt, NULL);
  if (rc != SQLITE_OK)
    return set_db_error (self, rc, sql, error);
  rc = sqlite3_step (stmt);
  if (rc != SQLITE_ROW)
    {
      set_db_error (self, rc, sql, error);
      sqlite3_finalize (stmt);
      return FALSE;
    }
  *out = sqlite3_column_int64 (stmt, 0);
  sqlite3_finalize (stmt);
  return TRUE;
}

static gboolean
migrate (FsIndex *self, GError **error)
{
  for (gint v = self->schema_version; v < FS_INDEX_SCHEMA_VERSION; v++)
    {
      g_autofree gchar *bump = g_strdup_printf ("PRAGMA user_version = %d", v + 1);

      if (!exec_sql (self, "BEGIN IMMEDIATE", error))
        return FALSE;
      if (!exec_sql (self, migrations[v], error) || !exec_sql (self, bump, error))
        {
          sqlite3_exec (self->db, "ROLLBACK", NULL, NULL, NULL);
          g_prefix_error (error, _("Migrating index schema from version %d to %d: "), v, v + 1);
          return FALSE;
        }
      if (!exec_sql (self, "COMMIT", error))
        {
          sqlite3_exec (self->db, "ROLLBACK", NULL, NULL, NULL);
          return FALSE;
        }
      self->schema_version = v + 1;
      g_debug ("Index %s migrated to schema version %d", self->filename, v + 1);
    }
  return TRUE;
}

static int
tree_collation (void *data, int a_len, const void *a, int b_len, const void *b)
{
  return fs_path_tree_cmp_n (a, (gsize) a_len, b, (gsize) b_len);
}

FsIndex *
fs_index_open (const gchar *filename, GError **error)
{
  g_autoptr (FsIndex) self = NULL;
  gint64 version = 0;
  int rc;

  g_return_val_if_fail (filename != NULL, NULL);

  self = g_object_new (FS_TYPE_INDEX, NULL);
  self->filename = g_strdup (filename);
  rc = sqlite3_open_v2 (filename, &self->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
  if (rc != SQLITE_OK)
    {
      g_set_error (error, FS_INDEX_ERROR, FS_INDEX_ERROR_FAILED, _("Cannot open index ‘%s’: %s"),
                   filename, self->db != NULL ? sqlite3_errmsg (self->db) : sqlite3_errstr (rc));
      return NULL;
    }
  sqlite3_extended_result_codes (self->db, 1);
  sqlite3_busy_timeout (self->db, 5000);
  rc = sqlite3_create_collation_v2 (self->db, "fs_tree", SQLITE_UTF8, NULL, tree_collation, NULL);
  if (rc != SQLITE_OK)
    {
      set_db_error (self, rc, "setting up the index", error);
      return NULL;
    }

  /* Reading the header first tells a foreign file (NOTADB) from other errors
   * before anything is written to it. */
  if (!query_int (self, "PRAGMA user_version", &version, error))
    return NULL;
  if (version > FS_INDEX_SCHEMA_VERSION)
    {
      g_set_error (error, FS_INDEX_ERROR, FS_INDEX_ERROR_SCHEMA_TOO_NEW,
                   _("Index ‘%s’ has schema version %lld, but this FolderSync only knows up "
                     "to version %d; upgrade FolderSync"),
                   filename, (long long) version, FS_INDEX_SCHEMA_VERSION);
      return NULL;
    }
  if (version < 0)
    {
      g_set_error (error, FS_INDEX_ERROR, FS_INDEX_ERROR_CORRUPT,
                   _("Index ‘%s’ has an invalid schema version %lld"), filename,
                   (long long) version);
      return NULL;
    }
  self->schema_version = (gint) version;

  /* WAL: readers never block the writer, and a crash loses at most the last
   * transactions, never the file; NORMAL sync is durable enough with WAL. */
  if (!exec_sql (self, "PRAGMA journal_mode = WAL", error) ||
      !exec_sql (self, "PRAGMA synchronous = NORMAL", error) ||
      !exec_sql (self, "PRAGMA foreign_keys = ON", error))
    return NULL;

  if (!migrate (self, error))
    return NULL;

  for (guint i = 0; i < STMT_LAST; i++)
    {
      rc = sqlite3_prepare_v3 (self->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
                               &self->stmts[i], NULL);
      if (rc != SQLITE_OK)
        {
          set_db_error (self, rc, "preparing statements", error);
          return NULL;
        }
    }
  return g_steal_pointer (&self);
}

/* Returns the cached statement, reset and with its bindings cleared. */
static sqlite3_stmt *
get_stmt (FsIndex *self, FsIndexStmt id)
{
  sqlite3_stmt *stmt = self->stmts[id];
  sqlite3_reset (stmt);
  sqlite3_clear_bindings (stmt);
  return stmt;
}

/* Steps a statement that returns no rows and resets it. */
static gboolean
step_done (FsIndex *self, sqlite3_stmt *stmt, const gchar *what, GError **error)
{
  int rc = sqlite3_step (stmt);
  sqlite3_reset (stmt);
  if (rc != SQLITE_DONE)
    return set_db_error (self, rc, what, error);
  return TRUE;
}

static void
bind_text (sqlite3_stmt *stmt, int col, const gchar *text)
{
  if (text != NULL)
    sqlite3_bind_text (stmt, col, text, -1, SQLITE_STATIC);
  else
    sqlite3_bind_null (stmt, col);
}

static gchar *
column_strdup (sqlite3_stmt *stmt, int col)
{
  const guchar *text = sqlite3_column_text (stmt, col);
  if (text == NULL)
    return NULL;
  return g_strndup ((const gchar *) text, sqlite3_column_bytes (stmt, col));
}

gboolean
fs_index_begin (FsIndex *self, GError **error)
{
  g_return_val_if_fail (FS_IS_INDEX (self), FALSE);
  return exec_sql (self, "BEGIN IMMEDIATE", error);
}

gboolean
fs_index_commit (FsIndex *self, GError **error)
{
  g_return_val_if_fail (FS_IS_INDEX (self), FALSE);
  return exec_sql (self, "COMMIT", error);
}

void
fs_index_rollback (FsIndex *self)
{
  g_return_if_fail (FS_IS_INDEX (self));
  if (!sqlite3_get_autocommit (self->db))
    sqlite3_exec (self->db, "ROLLBACK", NULL, NULL, NULL);
}

/* Columns in ENTRY_COLUMNS order. */
static FsEntry *
entry_from_row (sqlite3_stmt *stmt)
{
  FsEntry *e = g_new0 (FsEntry, 1);
  e->path = column_strdup (stmt, 0);
  e->disk_path = column_strdup (stmt, 1);
  e->kind = (FsKind) sqlite3_column_int (stmt, 2);
  e->size = (guint64) sqlite3_column_int64 (stmt, 3);
  e->mtime_ns = sqlite3_column_int64 (stmt, 4);
  e->inode = (guint64) sqlite3_column_int64 (stmt, 5);
  e->mode = (guint32) sqlite3_column_int64 (stmt, 6);
  e->hash = column_strdup (stmt, 7);
  e->target = column_strdup (stmt, 8);
  e->version = column_strdup (stmt, 9);
  return e;
}

FsEntry *
fs_index_lookup (FsIndex *self, const gchar *path, GError **error)
{
  sqlite3_stmt *stmt;
  FsEntry *entry;
  int rc;

  g_return_val_if_fail (FS_IS_INDEX (self), NULL);
  g_return_val_if_fail (path != NULL, NULL);

  stmt = get_stmt (self, STMT_ENTRY_LOOKUP);
  bind_text (stmt, 1, path);
  rc = sqlite3_step (stmt);
  if (rc == SQLITE_DONE)
    {
      sqlite3_reset (stmt);
      return NULL;
    }
  if (rc != SQLITE_ROW)
    {
      sqlite3_reset (stmt);
      set_db_error (self, rc, "looking up an entry", error);
      return NULL;
    }
  entry = entry_from_row (stmt);
  sqlite3_reset (stmt);
  return entry;
}

/* Calls @func for every entry row; FALSE with @error on a database error. */
static gboolean
foreach_entry (FsIndex *self, void (*func) (FsEntry *entry, gpointer data), gpointer data,
               GError **error)
{
  sqlite3_stmt *stmt = get_stmt (self, STMT_ENTRY_LIST);
  int rc;

  while ((rc = sqlite3_step (stmt)) == SQLITE_ROW)
    func (entry_from_row (stmt), data);
  sqlite3_reset (stmt);
  if (rc != SQLITE_DONE)
    return set_db_error (self, rc, "listing entries", error);
  return TRUE;
}

static void
add_to_array (FsEntry *entry, gpointer data)
{
  g_ptr_array_add (data, entry);
}

GPtrArray *
fs_index_list (FsIndex *self, GError **error)
{
  g_autoptr (GPtrArray) entries = g_ptr_array_new_with_free_func ((GDestroyNotify) fs_entry_free);

  g_return_val_if_fail (FS_IS_INDEX (self), NULL);
  if (!foreach_entry (self, add_to_array, entries, error))
    return NULL;
  return g_steal_pointer (&entries);
}

static void
add_to_table (FsEntry *entry, gpointer data)
{
  g_hash_table_replace (data, g_strdup (entry->path), entry);
}

/* Keys are owned copies of entry->path (g_free), values FsEntry (fs_entry_free),
 * so callers may g_hash_table_insert/replace without caring which key survives. */
GHashTable *
fs_index_load_all (FsIndex *self, GError **error)
{
  g_autoptr (GHashTable) table =
    g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) fs_entry_free);

  g_return_val_if_fail (FS_IS_INDEX (self), NULL);
  if (!foreach_entry (self, add_to_table, table, error))
    return NULL;
  return g_steal_pointer (&table);
}

gboolean
fs_index_put (FsIndex *self, const FsEntry *entry, GError **error)
{
  sqlite3_stmt *stmt;

  g_return_val_if_fail (FS_IS_INDEX (self), FALSE);
  g_return_val_if_fail (entry != NULL && entry->path != NULL, FALSE);

  stmt = get_stmt (self, STMT_ENTRY_PUT);
  bind_text (stmt, 1, entry->path);
  bind_text (stmt, 2, entry->disk_path);
  sqlite3_bind_int (stmt, 3, entry->kind);
  sqlite3_bind_int64 (stmt, 4, (sqlite3_int64) entry->size);
  sqlite3_bind_int64 (stmt, 5, entry->mtime_ns);
  sqlite3_bind_int64 (stmt, 6, (sqlite3_int64) entry->inode);
  sqlite3_bind_int64 (stmt, 7, entry->mode);
  bind_text (stmt, 8, entry->hash);
  bind_text (stmt, 9, entry->target);
  bind_text (stmt, 10, entry->version);
  sqlite3_bind_int64 (stmt, 11, g_get_real_time ());
  return step_done (self, stmt, "storing an entry", error);
}

gboolean
fs_index_remove (FsIndex *self, const gchar *path, GError **error)
{
  sqlite3_stmt *stmt;

  g_return_val_if_fail (FS_IS_INDEX (self), FALSE);
  g_return_val_if_fail (path != NULL, FALSE);

  stmt = get_stmt (self, STMT_ENTRY_REMOVE);
  bind_text (stmt, 1, path);
  return step_done (self, stmt, "removing an entry", error);
}

gboolean
fs_index_add_record (FsIndex *self, const FsRecord *record, GError **error)
{
  sqlite3_stmt *stmt;

  g_return_val_if_fail (FS_IS_INDEX (self), FALSE);
  g_return_val_if_fail (record != NULL && record->version != NULL && record->path != NULL,
                        FALSE);

  stmt = get_stmt (self, STMT_RECORD_ADD);
  bind_text (stmt, 1, record->version);
  bind_text (stmt, 2, record->replaces);
  bind_text (stmt, 3, record->path);
  sqlite3_bind_int (stmt, 4, record->kind);
  sqlite3_bind_int (stmt, 5, record->deleted ? 1 : 0);
  sqlite3_bind_int64 (stmt, 6, (sqlite3_int64) record->size);
  sqlite3_bind_int64 (stmt, 7, record->mtime_ns);
  sqlite3_bind_int64 (stmt, 8, record->mode);
  bind_text (stmt, 9, record->hash);
  bind_text (stmt, 10, record->target);
  bind_text (stmt, 11, record->object);
  bind_text (stmt, 12, record->device_id);
  bind_text (stmt, 13, record->device_name);
  sqlite3_bind_int64 (stmt, 14, record->seq);
  sqlite3_bind_int64 (stmt, 15, record->time_us);
  sqlite3_bind_int64 (stmt, 16, (sqlite3_int64) record->object_offset);
  sqlite3_bind_int64 (stmt, 17, record->object_length > 0 ? record->object_length : -1);
  return step_done (self, stmt, "storing a journal record", error);
}

/* The RECORD_COLUMNS of the current row. */
static FsRecord *
record_from_row (sqlite3_stmt *stmt)
{
  FsRecord *r = fs_record_new ();

  r->version = column_strdup (stmt, 0);
  r->replaces = column_strdup (stmt, 1);
  r->path = column_strdup (stmt, 2);
  r->kind = (FsKind) sqlite3_column_int (stmt, 3);
  r->deleted = sqlite3_column_int (stmt, 4) != 0;
  r->size = (guint64) sqlite3_column_int64 (stmt, 5);
  r->mtime_ns = sqlite3_column_int64 (stmt, 6);
  r->mode = (guint32) sqlite3_column_int64 (stmt, 7);
  r->hash = column_strdup (stmt, 8);
  r->target = column_strdup (stmt, 9);
  r->object = column_strdup (stmt, 10);
  r->device_id = column_strdup (stmt, 11);
  r->device_name = column_strdup (stmt, 12);
  r->seq = sqlite3_column_int64 (stmt, 13);
  r->time_us = sqlite3_column_int64 (stmt, 14);
  r->object_offset = (guint64) sqlite3_column_int64 (stmt, 15);
  r->object_length = sqlite3_column_int64 (stmt, 16);
  return r;
}

/* A HEAD_COLUMNS row: the record, its path replaced by the effective one. */
static FsRecord *
head_from_row (sqlite3_stmt *stmt)
{
  FsRecord *r = record_from_row (stmt);

  g_free (r->path);
  r->path = column_strdup (stmt, 17);
  return r;
}

GPtrArray *
fs_index_list_records (FsIndex *self, GError **error)
{
  g_autoptr (GPtrArray) records =
    g_ptr_array_new_with_free_func ((GDestroyNotify) fs_record_free);
  sqlite3_stmt *stmt;
  int rc;

  g_return_val_if_fail (FS_IS_INDEX (self), NULL);

  stmt = get_stmt (self, STMT_RECORD_LIST);
  while ((rc = sqlite3_step (stmt)) == SQLITE_ROW)
    g_ptr_array_add (records, record_from_row (stmt));
  sqlite3_reset (stmt);
  if (rc != SQLITE_DONE)
    {
      set_db_error (self, rc, "listing journal records", error);
      return NULL;
    }
  return g_steal_pointer (&records);
}

FsRecord *
fs_index_lookup_record (FsIndex *self, const gchar *version, GError **error)
{
  sqlite3_stmt *stmt;
  FsRecord *r = NULL;
  int rc;

  g_return_val_if_fail (FS_IS_INDEX (self), NULL);
  g_return_val_if_fail (version != NULL, NULL);

  stmt = get_stmt (self, STMT_RECORD_LOOKUP);
  bind_text (stmt, 1, version);
  rc = sqlite3_step (stmt);
  if (rc == SQLITE_ROW)
    r = record_from_row (stmt);
  sqlite3_reset (stmt);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE)
    set_db_error (self, rc, "looking up a journal record", error);
  return r;
}

FsRecord *
fs_index_lookup_head (FsIndex *self, const gchar *path, gboolean *contested, GError **error)
{
  sqlite3_stmt *stmt;
  FsRecord *r = NULL;
  int rc;

  g_return_val_if_fail (FS_IS_INDEX (self), NULL);
  g_return_val_if_fail (path != NULL, NULL);

  stmt = get_stmt (self, STMT_HEAD_LOOKUP);
  bind_text (stmt, 1, path);
  rc = sqlite3_step (stmt);
  if (rc == SQLITE_ROW)
    {
      r = head_from_row (stmt);
      if (contested != NULL)
        *contested = sqlite3_column_int (stmt, 18) != 0;
    }
  sqlite3_reset (stmt);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE)
    set_db_error (self, rc, "looking up the remote tree", error);
  return r;
}

gboolean
fs_index_put_head (FsIndex *self, const gchar *path, const gchar *version, gboolean contested,
                   GError **error)
{
  sqlite3_stmt *stmt;

  g_return_val_if_fail (FS_IS_INDEX (self), FALSE);
  g_return_val_if_fail (path != NULL && version != NULL, FALSE);

  stmt = get_stmt (self, STMT_HEAD_PUT);
  bind_text (stmt, 1, path);
  bind_text (stmt, 2, version);
  sqlite3_bind_int (stmt, 3, contested ? 1 : 0);
  return step_done (self, stmt, "storing the remote tree", error);
}

gboolean
fs_index_version_replaced (FsIndex *self, const gchar *version, gboolean *replaced,
                           GError **error)
{
  sqlite3_stmt *stmt;
  int rc;

  g_return_val_if_fail (FS_IS_INDEX (self), FALSE);
  g_return_val_if_fail (version != NULL && replaced != NULL, FALSE);

  stmt = get_stmt (self, STMT_VERSION_REPLACED);
  bind_text (stmt, 1, version);
  rc = sqlite3_step (stmt);
  if (rc == SQLITE_ROW)
    *replaced = sqlite3_column_int (stmt, 0) != 0;
  sqlite3_reset (stmt);
  if (rc != SQLITE_ROW)
    {
      set_db_error (self, rc, "looking up a journal record", error);
      return FALSE;
    }
  return TRUE;
}

GHashTable *
fs_index_head_versions (FsIndex *self, GError **error)
{
  g_autoptr(GHashTable) versions = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  sqlite3_stmt *stmt;
  int rc;

  g_return_val_if_fail (FS_IS_INDEX (self), NULL);

  stmt = get_stmt (self, STMT_HEAD_VERSIONS);
  while ((rc = sqlite3_step (stmt)) == SQLITE_ROW)
    g_hash_table_add (versions, column_strdup (stmt, 0));
  sqlite3_reset (stmt);
  if (rc != SQLITE_DONE)
    {
      set_db_error (self, rc, "reading the remote tree", error);
      return NULL;
    }
  return g_steal_pointer (&versions);
}

gboolean
fs_index_clear_heads (FsIndex *self, GError **error)
{
  g_return_val_if_fail (FS_IS_INDEX (self), FALSE);
  return step_done (self, get_stmt (self, STMT_HEAD_CLEAR), "clearing the remote tree", error);
}

gint64
fs_index_get_cursor (FsIndex *self, const gchar *device_id)
{
  sqlite3_stmt *stmt;
  gint64 seq = -1;
  int rc;

  g_return_val_if_fail (FS_IS_INDEX (self), -1);
  g_return_val_if_fail (device_id != NULL, -1);

  stmt = get_stmt (self, STMT_CURSOR_GET);
  bind_text (stmt, 1, device_id);
  rc = sqlite3_step (stmt);
  if (rc == SQLITE_ROW)
    seq = sqlite3_column_int64 (stmt, 0);
  else if (rc != SQLITE_DONE)
    g_warning ("Index ‘%s’: reading the cursor of device %s failed: %s", self->filename,
               device_id, sqlite3_errmsg (self->db));
  sqlite3_reset (stmt);
  return seq;
}

GPtrArray *
fs_index_list_cursor_devices (FsIndex *self, GError **error)
{
  g_autoptr(GPtrArray) devices = g_ptr_array_new_with_free_func (g_free);
  sqlite3_stmt *stmt;
  int rc;

  g_return_val_if_fail (FS_IS_INDEX (self), NULL);

  stmt = get_stmt (self, STMT_CURSOR_LIST);
  while ((rc = sqlite3_step (stmt)) == SQLITE_ROW)
    g_ptr_array_add (devices, g_strdup ((const gchar *) sqlite3_column_text (stmt, 0)));
  sqlite3_reset (stmt);
  if (rc != SQLITE_DONE)
    {
      set_db_error (self, rc, "listing journal cursors", error);
      return NULL;
    }
  return g_steal_pointer (&devices);
}

gboolean
fs_index_set_cursor (FsIndex *self, const gchar *device_id, gint64 seq, GError **error)
{
  sqlite3_stmt *stmt;

  g_return_val_if_fail (FS_IS_INDEX (self), FALSE);
  g_return_val_if_fail (device_id != NULL, FALSE);

  stmt = get_stmt (self, STMT_CURSOR_SET);
  bind_text (stmt, 1, device_id);
  sqlite3_bind_int64 (stmt, 2, seq);
  return step_done (self, stmt, "storing a journal cursor", error);
}

gboolean
fs_index_read_meta (FsIndex *self, const gchar *key, gchar **value, GError **error)
{
  sqlite3_stmt *stmt;
  int rc;

  g_return_val_if_fail (FS_IS_INDEX (self), FALSE);
  g_return_val_if_fail (key != NULL && value != NULL, FALSE);

  *value = NULL;
  stmt = get_stmt (self, STMT_META_GET);
  bind_text (stmt, 1, key);
  rc = sqlite3_step (stmt);
  if (rc == SQLITE_ROW)
    *value = column_strdup (stmt, 0);
  sqlite3_reset (stmt);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE)
    {
      set_db_error (self, rc, "reading a setting", error);
      return FALSE;
    }
  return TRUE;
}

gchar *
fs_index_get_meta (FsIndex *self, const gchar *key)
{
  g_autoptr(GError) error = NULL;
  gchar *value = NULL;

  if (!fs_index_read_meta (self, key, &value, &error))
    g_warning ("Index ‘%s’: reading setting %s failed: %s", self->filename, key, error->message);
  return value;
}

gboolean
fs_index_set_meta (FsIndex *self, const gchar *key, const gchar *value, GError **error)
{
  sqlite3_stmt *stmt;

  g_return_val_if_fail (FS_IS_INDEX (self), FALSE);
  g_return_val_if_fail (key != NULL, FALSE);

  stmt = get_stmt (self, STMT_META_SET);
  bind_text (stmt, 1, key);
  bind_text (stmt, 2, value);
  return step_done (self, stmt, "storing a setting", error);
}

gboolean
fs_index_delete_meta (FsIndex *self, const gchar *key, GError **error)
{
  sqlite3_stmt *stmt;

  g_return_val_if_fail (FS_IS_INDEX (self), FALSE);
  g_return_val_if_fail (key != NULL, FALSE);

  stmt = get_stmt (self, STMT_META_DELETE);
  bind_text (stmt, 1, key);
  return step_done (self, stmt, "removing a setting", error);
}

GHashTable *
fs_index_list_meta (FsIndex *self, const gchar *prefix, GError **error)
{
  g_autoptr(GHashTable) found = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  sqlite3_stmt *stmt;
  int rc;

  g_return_val_if_fail (FS_IS_INDEX (self), NULL);
  g_return_val_if_fail (prefix != NULL, NULL);

  stmt = get_stmt (self, STMT_META_PREFIX);
  bind_text (stmt, 1, prefix);
  while ((rc = sqlite3_step (stmt)) == SQLITE_ROW)
    g_hash_table_insert (found, column_strdup (stmt, 0), column_strdup (stmt, 1));
  sqlite3_reset (stmt);
  if (rc != SQLITE_DONE)
    {
      set_db_error (self, rc, "reading the settings", error);
      return NULL;
    }
  return g_steal_pointer (&found);
}

gint
fs_index_get_schema_version (FsIndex *self)
{
  g_return_val_if_fail (FS_IS_INDEX (self), -1);
  return self->schema_version;
}

gint64
fs_index_get_record_marker (FsIndex *self, GError **error)
{
  gint64 marker = -1;

  g_return_val_if_fail (FS_IS_INDEX (self), -1);
  if (!query_int (self, "SELECT coalesce(max(rowid), 0) FROM records", &marker, error))
    return -1;
  return marker;
}

/* ---- cursors in tree order ---------------------------------------------- */

struct _FsIndexCursor {
  FsIndex *index;
  sqlite3_stmt *stmt;
  gboolean done;
  gboolean light; /* heads: path, version and deleted only */
};

static FsIndexCursor *
cursor_new (FsIndex *self, const gchar *sql, GError **error)
{
  FsIndexCursor *cursor = g_new0 (FsIndexCursor, 1);
  int rc = sqlite3_prepare_v2 (self->db, sql, -1, &cursor->stmt, NULL);

  if (rc != SQLITE_OK)
    {
      set_db_error (self, rc, "reading the index in order", error);
      g_free (cursor);
      return NULL;
    }
  cursor->index = g_object_ref (self);
  return cursor;
}

FsIndexCursor *
fs_index_entries_cursor (FsIndex *self, GError **error)
{
  g_return_val_if_fail (FS_IS_INDEX (self), NULL);
  return cursor_new (self, "SELECT " ENTRY_COLUMNS " FROM entries ORDER BY path", error);
}

FsIndexCursor *
fs_index_heads_cursor (FsIndex *self, GError **error)
{
  FsIndexCursor *cursor;

  g_return_val_if_fail (FS_IS_INDEX (self), NULL);
  cursor = cursor_new (self, "SELECT path, version, deleted FROM heads ORDER BY path", error);
  if (cursor != NULL)
    cursor->light = TRUE;
  return cursor;
}

/* Steps @cursor: TRUE with a row, FALSE at the end or on error (@error set). */
static gboolean
cursor_step (FsIndexCursor *cursor, GError **error)
{
  int rc;

  if (cursor->done)
    return FALSE;
  rc = sqlite3_step (cursor->stmt);
  if (rc == SQLITE_ROW)
    return TRUE;
  cursor->done = TRUE;
  if (rc != SQLITE_DONE)
    set_db_error (cursor->index, rc, "reading the index in order", error);
  return FALSE;
}

FsEntry *
fs_index_cursor_next_entry (FsIndexCursor *cursor, GError **error)
{
  g_return_val_if_fail (cursor != NULL, NULL);
  return cursor_step (cursor, error) ? entry_from_row (cursor->stmt) : NULL;
}

FsRecord *
fs_index_cursor_next_head (FsIndexCursor *cursor, GError **error)
{
  FsRecord *r;

  g_return_val_if_fail (cursor != NULL && cursor->light, NULL);
  if (!cursor_step (cursor, error))
    return NULL;
  r = fs_record_new ();
  r->path = column_strdup (cursor->stmt, 0);
  r->version = column_strdup (cursor->stmt, 1);
  r->deleted = sqlite3_column_int (cursor->stmt, 2) != 0;
  return r;
}

void
fs_index_cursor_free (FsIndexCursor *cursor)
{
  if (cursor == NULL)
    return;
  sqlite3_finalize (cursor->stmt);
  g_object_unref (cursor->index);
  g_free (cursor);
}
