/* FsIndex: the per-folder SQLite index (WAL). Holds the base state of every
 * path, every journal record seen, per-device journal cursors and settings.
 * Schema versioned with migrations; see DESIGN §6 and docs/format.md.
 * Not thread-safe: owned by one thread (the engine's). */
#pragma once

#include <glib-object.h>
#include "fs-types.h"

G_BEGIN_DECLS

#define FS_TYPE_INDEX (fs_index_get_type ())
G_DECLARE_FINAL_TYPE (FsIndex, fs_index, FS, INDEX, GObject)

#define FS_INDEX_SCHEMA_VERSION 3

/* Opens or creates the database, runs migrations. A schema newer than this
 * code knows is FS_INDEX_ERROR_SCHEMA_TOO_NEW. */
FsIndex *fs_index_open (const gchar *filename, GError **error);

/* Transactions; all writes between begin and commit land together. */
gboolean fs_index_begin (FsIndex *self, GError **error);
gboolean fs_index_commit (FsIndex *self, GError **error);
void fs_index_rollback (FsIndex *self);

/* Base entries, keyed by FsEntry.path. lookup returns NULL without an error
 * when the path is absent. list returns every entry sorted by path. */
FsEntry *fs_index_lookup (FsIndex *self, const gchar *path, GError **error);
GPtrArray *fs_index_list (FsIndex *self, GError **error);
GHashTable *fs_index_load_all (FsIndex *self, GError **error); /* path → FsEntry */
gboolean fs_index_put (FsIndex *self, const FsEntry *entry, GError **error);
gboolean fs_index_remove (FsIndex *self, const gchar *path, GError **error);

/* Journal records seen (own and others'), keyed by version. */
gboolean fs_index_add_record (FsIndex *self, const FsRecord *record, GError **error);
GPtrArray *fs_index_list_records (FsIndex *self, GError **error);
/* The record of @version, or NULL (with @error unset when it is only absent). */
FsRecord *fs_index_lookup_record (FsIndex *self, const gchar *version, GError **error);

/* The remote tree kept in the index: effective path → version of its head.
 * Heads are returned as records whose `path` is the effective path. */
FsRecord *fs_index_lookup_head (FsIndex *self, const gchar *path, gboolean *contested,
                                GError **error);
/* @contested: other records are candidates for this path's head too
 * (fs_remote_tree_resolve_contested()). */
gboolean fs_index_put_head (FsIndex *self, const gchar *path, const gchar *version,
                            gboolean contested, GError **error);
gboolean fs_index_clear_heads (FsIndex *self, GError **error);
/* @replaced: some record replaces @version. */
gboolean fs_index_version_replaced (FsIndex *self, const gchar *version, gboolean *replaced,
                                    GError **error);
/* The set of the versions that are heads of some path (maybe under a
 * conflict name): one pass over the remote tree. */
GHashTable *fs_index_head_versions (FsIndex *self, GError **error);

/* Entries or heads one at a time in tree order (fs_path_tree_cmp()), for a
 * whole sync that must not hold the folder in memory. next_*() return NULL at
 * the end, or on error with @error set. The index may be read meanwhile.
 * Heads come with their path, version and deleted flag only: the rest, when
 * needed, from fs_index_lookup_head(). */
typedef struct _FsIndexCursor FsIndexCursor;
FsIndexCursor *fs_index_entries_cursor (FsIndex *self, GError **error);
FsIndexCursor *fs_index_heads_cursor (FsIndex *self, GError **error);
FsEntry *fs_index_cursor_next_entry (FsIndexCursor *cursor, GError **error);
FsRecord *fs_index_cursor_next_head (FsIndexCursor *cursor, GError **error);
void fs_index_cursor_free (FsIndexCursor *cursor);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (FsIndexCursor, fs_index_cursor_free)
/* Changes whenever a record is added (the largest rowid); -1 on error. */
gint64 fs_index_get_record_marker (FsIndex *self, GError **error);

/* Highest journal sequence seen per device (-1 when none). */
gint64 fs_index_get_cursor (FsIndex *self, const gchar *device_id);
/* Every device a cursor is kept for. */
GPtrArray *fs_index_list_cursor_devices (FsIndex *self, GError **error);
gboolean fs_index_set_cursor (FsIndex *self, const gchar *device_id, gint64 seq, GError **error);

/* Settings and identity (device_id, …). get returns NULL when unset. */
gchar *fs_index_get_meta (FsIndex *self, const gchar *key);
/* Like get_meta, but a database error is an error, not a missing value. */
gboolean fs_index_read_meta (FsIndex *self, const gchar *key, gchar **value, GError **error);
gboolean fs_index_set_meta (FsIndex *self, const gchar *key, const gchar *value, GError **error);
gboolean fs_index_delete_meta (FsIndex *self, const gchar *key, GError **error);
/* The settings whose key starts with @prefix: key without @prefix → value. */
GHashTable *fs_index_list_meta (FsIndex *self, const gchar *prefix, GError **error);

gint fs_index_get_schema_version (FsIndex *self);

G_END_DECLS
