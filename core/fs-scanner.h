/* The scanner: walks a folder and returns its current local state, hashing
 * only files whose (size, mtime ns, inode, mode) differ from the index. */
#pragma once

#include <gio/gio.h>
#include "fs-ignore.h"
#include "fs-types.h"

G_BEGIN_DECLS

typedef struct {
  guint files_hashed;
  guint64 bytes_hashed;
  guint skipped_special;  /* fifos, sockets, devices */
  guint skipped_ignored;
  guint deferred;         /* files still being written: base kept or left out */
} FsScanStats;

typedef struct {
  /* path → FsEntry, for every file, directory and symlink under the root
   * (the root itself excluded), after .foldersyncignore. Keys are owned
   * copies of entry->path (g_free), values are freed with fs_entry_free. */
  GHashTable *entries;
  /* Human-readable problems that did not stop the scan (one line each):
   * non-UTF-8 names, NFC/NFD twins, case collisions, unreadable files. */
  GPtrArray *warnings;
  /* The .foldersyncignore rules found, to filter remote paths the same way. */
  FsIgnore *ignore;
  /* ".foldersync.tmp.*" files (relative disk paths): left by an interrupted
   * download; never synced, removed by the engine. */
  GPtrArray *stale_temps;
  FsScanStats stats;
} FsScanResult;

void fs_scan_result_free (FsScanResult *result);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (FsScanResult, fs_scan_result_free)

/* @base: path → FsEntry from the index (may be NULL). An unchanged file takes
 * its hash from the base entry; a changed one is hashed (SHA-256, libgcrypt). */
FsScanResult *fs_scan (const gchar *root, GHashTable *base, GCancellable *cancellable,
                       GError **error);

/* Asked for a readable file that has no base entry and was last written more
 * than 2 s ago: TRUE leaves it unhashed (hash NULL), for its upload to hash
 * as it reads it, instead of reading it twice. */
typedef gboolean (*FsScanDeferHashFunc) (gpointer data, const gchar *key);

/* A whole scan that hands each entry over as it is found, in tree order
 * (fs_path_tree_cmp()), instead of collecting them: the caller merges them
 * with the index as they come, in constant memory. */
typedef struct {
  /* The base entry of @key, or NULL; asked for in increasing tree order. */
  const FsEntry *(*base_lookup) (gpointer data, const gchar *key);
  /* Copies of the base entries strictly below directory @key, in tree order
   * (asked for right after base_lookup (@key)). */
  GPtrArray *(*base_below) (gpointer data, const gchar *key);
  /* The next local entry (taken), in increasing tree order. */
  void (*emit) (gpointer data, FsEntry *entry);
  gpointer data;
  /* Optional; asked right after base_lookup (@key) gave NULL for a file. */
  FsScanDeferHashFunc defer_hash;
} FsScanSink;

/* As fs_scan(), entries going to @sink: the result's entries table is empty. */
FsScanResult *fs_scan_to_sink (const gchar *root, const FsScanSink *sink,
                               GCancellable *cancellable, GError **error);

/* Only @paths (relative disk paths of files and symbolic links that may have
 * changed; absent ones are left out of the result), under the rules of
 * @ignore from an earlier fs_scan(); the result's ignore is NULL. When only
 * a whole scan can tell (a path is a directory, an ignore file, not ASCII,
 * below a directory that went away), returns NULL with *@needs_full set and
 * no error. */
FsScanResult *fs_scan_paths (const gchar *root, GHashTable *base, FsIgnore *ignore,
                             const gchar *const *paths, FsScanDeferHashFunc defer_hash,
                             gpointer defer_data, gboolean *needs_full,
                             GCancellable *cancellable, GError **error);

/* SHA-256 of a file's content as lowercase hex. */
gchar *fs_hash_file (const gchar *filename, guint64 *size, GCancellable *cancellable,
                     GError **error);

/* Whether two entries describe the same content (kind, hash/target, exec bit). */
gboolean fs_entry_same_content (const FsEntry *a, const FsEntry *b);

/* Whether the stat data (size, mtime, inode, mode) of @a and @b match. */
gboolean fs_entry_same_stat (const FsEntry *a, const FsEntry *b);

G_END_DECLS
