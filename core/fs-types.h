/* Plain data types shared by the index, scanner, reconciler and engine. */
#pragma once

#include <glib.h>
#include <sys/stat.h>

G_BEGIN_DECLS

typedef enum {
  FS_KIND_NONE = 0,
  FS_KIND_FILE = 1,
  FS_KIND_DIR = 2,
  FS_KIND_SYMLINK = 3,
} FsKind;

/* The state of one path on the local disk, or (in the index) as it was when
 * local and remote last agreed: the "base". */
typedef struct {
  gchar *path;      /* comparison key: NFC-normalized, relative, '/'-separated */
  gchar *disk_path; /* the name as it is on disk (bytes; may be NFD); NULL = same as path */
  FsKind kind;
  guint64 size;
  gint64 mtime_ns;
  guint64 inode;
  guint32 mode;     /* permission bits (07777) */
  gchar *hash;      /* lowercase hex SHA-256 of the content (files), or of the target (symlinks) */
  gchar *target;    /* symlink target */
  gchar *version;   /* base only: the remote version this state was synced with */
} FsEntry;

/* st_mtim in nanoseconds since the epoch, as FsEntry.mtime_ns holds it. */
gint64 fs_stat_mtime_ns (const struct stat *st);

FsEntry *fs_entry_new (const gchar *path, FsKind kind);
FsEntry *fs_entry_copy (const FsEntry *entry);
void fs_entry_free (FsEntry *entry);
const gchar *fs_entry_disk_path (const FsEntry *entry);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (FsEntry, fs_entry_free)

/* One journal record: a new version of a path (or its deletion) written by a
 * device. Versions are globally unique random ids. */
typedef struct {
  gchar *version;
  gchar *replaces;   /* the version it supersedes, NULL for a first version */
  gchar *path;       /* relative path as on the writer's disk (UTF-8) */
  FsKind kind;
  gboolean deleted;
  guint64 size;
  gint64 mtime_ns;
  guint32 mode;
  gchar *hash;
  gchar *target;     /* symlink target */
  gchar *object;     /* storage key of the content (files only) */
  guint64 object_offset; /* where the content starts in @object (a pack member) */
  gint64 object_length;  /* its length in @object; -1 (or 0): the whole object */
  gchar *device_id;
  gchar *device_name;
  gint64 seq;        /* the writer's journal sequence number */
  gint64 time_us;    /* wall-clock time of the write, for conflict names */
} FsRecord;

FsRecord *fs_record_new (void);
FsRecord *fs_record_copy (const FsRecord *record);
void fs_record_free (FsRecord *record);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (FsRecord, fs_record_free)

/* Lowercase hex of @len bytes. */
gchar *fs_hex_encode (const guint8 *data, gsize len);
/* Lowercase RFC 4648 base32 without padding. */
gchar *fs_base32_encode (const guint8 *data, gsize len);
/* Whether @name can stand in conflict copies' names: 1 to 64 bytes of UTF-8,
 * no '/', parentheses or control characters. */
gboolean fs_device_name_valid (const gchar *name);

/* NFC normalization of a UTF-8 path; NULL if @path is not valid UTF-8. */
gchar *fs_path_normalize (const gchar *path);

/* Tree order of relative paths: byte order with '/' before every other byte,
 * so a directory comes right before everything below it and then its next
 * sibling ("a", "a/z", "a b", "a.txt"): the order of a depth-first walk that
 * visits names in byte order. The index's collation "fs_tree". */
gint fs_path_tree_cmp (const gchar *a, const gchar *b);
gint fs_path_tree_cmp_n (const gchar *a, gsize a_len, const gchar *b, gsize b_len);

G_END_DECLS
