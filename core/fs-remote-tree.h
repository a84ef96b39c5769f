/* The remote tree: the current head of every path, derived from all journal
 * records by a deterministic rule, so every device derives the same tree
 * without talking to the others. Pure; no I/O.
 *
 * Records form chains by `replaces`. When two records replace the same
 * version of the same path (concurrent writers), one wins the path: a
 * non-deleted record beats a deletion (the edit wins), then the smaller
 * version id wins. The loser, and the records that later replace it, appear
 * under a conflict name of the path (fs_conflict_name() with the loser's
 * device name and time); a losing deletion simply disappears. When the winner
 * is a live directory, the other live directory records are that one
 * directory (merged: no conflict name, never a head of their own), so what
 * replaces the winner replaces them too. */
#pragma once

#include "fs-types.h"

G_BEGIN_DECLS

/* @records: FsRecord*, any order. Returns effective normalized path → FsRecord
 * (a copy of the head record, its `path` set to the effective path). Deletion
 * heads are included (record->deleted). */
GHashTable *fs_remote_tree_resolve (GPtrArray *records);

/* As fs_remote_tree_resolve(); @contested gets the set of effective paths
 * where more than one record is a candidate head (two chains of one path,
 * chains from elsewhere ending there): a new record replacing the head of
 * such a path does not simply become its head. */
GHashTable *fs_remote_tree_resolve_contested (GPtrArray *records, GHashTable **contested);

/* "dir/name (conflict DEVICE YYYY-MM-DD HHMMSS).ext" in UTC; the extension is
 * the part after the last dot of the basename, if the basename does not start
 * with it. */
gchar *fs_conflict_name (const gchar *path, const gchar *device_name, gint64 time_us);

G_END_DECLS
