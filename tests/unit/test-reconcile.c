/* Unit tests of the reconciler: the decision table of DESIGN §5, one test per
 * row, on small literal (local, base, remote) triples. */
#include "fs-reconcile.h"

/* One side of a row. Kind NONE and not deleted means absent (NULL). */
typedef struct {
  FsKind kind;
  const gchar *hash;
  guint32 mode;
  const gchar *target;
  gint64 mtime_ns;
  const gchar *version; /* base and remote */
  gboolean deleted;     /* remote: a deletion record */
} Side;

#define NONE_ { FS_KIND_NONE, NULL, 0, NULL, 0, NULL, FALSE }
/* local entries */
#define FILE_(h) { FS_KIND_FILE, h, 0644, NULL, 1000, NULL, FALSE }
#define FILE_M(h, mode, mtime) { FS_KIND_FILE, h, mode, NULL, mtime, NULL, FALSE }
#define EXEC_(h) { FS_KIND_FILE, h, 0755, NULL, 1000, NULL, FALSE }
#define DIR_ { FS_KIND_DIR, NULL, 0755, NULL, 1000, NULL, FALSE }
#define DIR_M(mtime) { FS_KIND_DIR, NULL, 0755, NULL, mtime, NULL, FALSE }
#define LINK_(t) { FS_KIND_SYMLINK, NULL, 0777, t, 1000, NULL, FALSE }
/* base entries and remote records, with a version */
#define FILE_V(h, v) { FS_KIND_FILE, h, 0644, NULL, 1000, v, FALSE }
#define EXEC_V(h, v) { FS_KIND_FILE, h, 0755, NULL, 1000, v, FALSE }
#define DIR_V(v) { FS_KIND_DIR, NULL, 0755, NULL, 1000, v, FALSE }
#define LINK_V(t, v) { FS_KIND_SYMLINK, NULL, 0777, t, 1000, v, FALSE }
#define DELETED_V(v) { FS_KIND_NONE, NULL, 0, NULL, 0, v, TRUE }

typedef struct {
  const gchar *name;
  Side local;
  Side base;
  Side remote;
  FsActionType expected;
} Row;

static const Row rows[] = {
  /* never synced */
  { "absent-everywhere", NONE_, NONE_, NONE_, FS_ACTION_NOTHING },
  { "new-local", FILE_ ("a"), NONE_, NONE_, FS_ACTION_UPLOAD },
  { "new-remote", NONE_, NONE_, FILE_V ("a", "v1"), FS_ACTION_DOWNLOAD },
  { "new-remote-deletion-only", NONE_, NONE_, DELETED_V ("v2"), FS_ACTION_NOTHING },
  { "new-local-over-remote-deletion", FILE_ ("a"), NONE_, DELETED_V ("v2"), FS_ACTION_UPLOAD },
  { "new-both-same-content", FILE_ ("a"), NONE_, FILE_V ("a", "v1"), FS_ACTION_RECORD },
  { "new-both-different", FILE_ ("a"), NONE_, FILE_V ("b", "v1"), FS_ACTION_CONFLICT },
  /* synced before: one side changed */
  { "unchanged", FILE_ ("a"), FILE_V ("a", "v1"), FILE_V ("a", "v1"), FS_ACTION_NOTHING },
  { "local-edit", FILE_ ("b"), FILE_V ("a", "v1"), FILE_V ("a", "v1"), FS_ACTION_UPLOAD },
  { "local-delete", NONE_, FILE_V ("a", "v1"), FILE_V ("a", "v1"), FS_ACTION_DELETE_REMOTE },
  { "local-gone-base-is-deletion", NONE_, FILE_V ("a", "v2"), DELETED_V ("v2"),
    FS_ACTION_FORGET },
  { "remote-edit", FILE_ ("a"), FILE_V ("a", "v1"), FILE_V ("b", "v2"), FS_ACTION_DOWNLOAD },
  { "remote-delete", FILE_ ("a"), FILE_V ("a", "v1"), DELETED_V ("v2"), FS_ACTION_DELETE_LOCAL },
  { "remote-vanished", FILE_ ("a"), FILE_V ("a", "v1"), NONE_, FS_ACTION_DELETE_LOCAL },
  /* synced before: both changed */
  { "both-deleted", NONE_, FILE_V ("a", "v1"), DELETED_V ("v2"), FS_ACTION_FORGET },
  { "local-deleted-remote-vanished", NONE_, FILE_V ("a", "v1"), NONE_, FS_ACTION_FORGET },
  { "both-edited-same-content", FILE_ ("b"), FILE_V ("a", "v1"), FILE_V ("b", "v2"),
    FS_ACTION_RECORD },
  { "both-edited-differently", FILE_ ("b"), FILE_V ("a", "v1"), FILE_V ("c", "v2"),
    FS_ACTION_CONFLICT },
  { "local-delete-vs-remote-edit", NONE_, FILE_V ("a", "v1"), FILE_V ("b", "v2"),
    FS_ACTION_DOWNLOAD },
  { "local-edit-vs-remote-delete", FILE_ ("b"), FILE_V ("a", "v1"), DELETED_V ("v2"),
    FS_ACTION_UPLOAD },
  { "local-edit-vs-remote-vanished", FILE_ ("b"), FILE_V ("a", "v1"), NONE_, FS_ACTION_UPLOAD },
  /* metadata: only the exec bit is content */
  { "mtime-only-change", FILE_M ("a", 0644, 99999), FILE_V ("a", "v1"), FILE_V ("a", "v1"),
    FS_ACTION_NOTHING },
  { "non-exec-mode-change", FILE_M ("a", 0600, 1000), FILE_V ("a", "v1"), FILE_V ("a", "v1"),
    FS_ACTION_NOTHING },
  { "exec-bit-local", EXEC_ ("a"), FILE_V ("a", "v1"), FILE_V ("a", "v1"), FS_ACTION_UPLOAD },
  { "exec-bit-remote", FILE_ ("a"), FILE_V ("a", "v1"), EXEC_V ("a", "v2"), FS_ACTION_DOWNLOAD },
  { "exec-bit-both", EXEC_ ("a"), FILE_V ("a", "v1"), EXEC_V ("a", "v2"), FS_ACTION_RECORD },
  { "exec-bit-local-vs-remote-plain", EXEC_ ("a"), FILE_V ("a", "v1"), FILE_V ("a", "v2"),
    FS_ACTION_CONFLICT },
  /* directories */
  { "dir-new-local", DIR_, NONE_, NONE_, FS_ACTION_UPLOAD },
  { "dir-new-remote", NONE_, NONE_, DIR_V ("v1"), FS_ACTION_DOWNLOAD },
  { "dir-new-both", DIR_, NONE_, DIR_V ("v1"), FS_ACTION_RECORD },
  { "dir-unchanged-mtime-moved", DIR_M (5555), DIR_V ("v1"), DIR_V ("v1"), FS_ACTION_NOTHING },
  { "dir-deleted-local", NONE_, DIR_V ("v1"), DIR_V ("v1"), FS_ACTION_DELETE_REMOTE },
  { "dir-deleted-remote", DIR_, DIR_V ("v1"), DELETED_V ("v2"), FS_ACTION_DELETE_LOCAL },
  { "dir-deleted-both", NONE_, DIR_V ("v1"), DELETED_V ("v2"), FS_ACTION_FORGET },
  { "dir-remote-new-version", DIR_, DIR_V ("v1"), DIR_V ("v2"), FS_ACTION_DOWNLOAD },
  { "dir-local-deleted-remote-new-version", NONE_, DIR_V ("v1"), DIR_V ("v2"),
    FS_ACTION_DOWNLOAD },
  /* symlinks: the target is the content */
  { "symlink-unchanged", LINK_ ("t1"), LINK_V ("t1", "v1"), LINK_V ("t1", "v1"),
    FS_ACTION_NOTHING },
  { "symlink-target-local", LINK_ ("t2"), LINK_V ("t1", "v1"), LINK_V ("t1", "v1"),
    FS_ACTION_UPLOAD },
  { "symlink-target-remote", LINK_ ("t1"), LINK_V ("t1", "v1"), LINK_V ("t2", "v2"),
    FS_ACTION_DOWNLOAD },
  { "symlink-target-both-same", LINK_ ("t2"), LINK_V ("t1", "v1"), LINK_V ("t2", "v2"),
    FS_ACTION_RECORD },
  { "symlink-target-both-different", LINK_ ("t2"), LINK_V ("t1", "v1"), LINK_V ("t3", "v2"),
    FS_ACTION_CONFLICT },
  /* a kind change is a content change */
  { "kind-file-to-dir-local", DIR_, FILE_V ("a", "v1"), FILE_V ("a", "v1"), FS_ACTION_UPLOAD },
  { "kind-file-to-dir-remote", FILE_ ("a"), FILE_V ("a", "v1"), DIR_V ("v2"),
    FS_ACTION_DOWNLOAD },
  { "kind-file-to-dir-vs-remote-edit", DIR_, FILE_V ("a", "v1"), FILE_V ("b", "v2"),
    FS_ACTION_CONFLICT },
  { "kind-file-to-dir-both", DIR_, FILE_V ("a", "v1"), DIR_V ("v2"), FS_ACTION_RECORD },
  { "kind-file-to-symlink-local", LINK_ ("a"), FILE_V ("a", "v1"), FILE_V ("a", "v1"),
    FS_ACTION_UPLOAD },
  { "kind-new-file-vs-new-dir", FILE_ ("a"), NONE_, DIR_V ("v1"), FS_ACTION_CONFLICT },
};

static gboolean
side_absent (const Side *s)
{
  return s->kind == FS_KIND_NONE && !s->deleted;
}

static FsEntry *
entry_from_side (const Side *s)
{
  FsEntry *e;

  if (side_absent (s))
    return NULL;
  e = fs_entry_new ("some/path", s->kind);
  e->hash = g_strdup (s->hash);
  e->mode = s->mode;
  e->target = g_strdup (s->target);
  e->mtime_ns = s->mtime_ns;
  e->version = g_strdup (s->version);
  return e;
}

static FsRecord *
record_from_side (const Side *s)
{
  FsRecord *r;

  if (side_absent (s))
    return NULL;
  r = fs_record_new ();
  r->path = g_strdup ("some/path");
  r->kind = s->kind;
  r->hash = g_strdup (s->hash);
  r->mode = s->mode;
  r->target = g_strdup (s->target);
  r->mtime_ns = s->mtime_ns;
  r->version = g_strdup (s->version);
  r->deleted = s->deleted;
  return r;
}

static void
test_row (gconstpointer data)
{
  const Row *row = data;
  g_autoptr(FsEntry) local = entry_from_side (&row->local);
  g_autoptr(FsEntry) base = entry_from_side (&row->base);
  g_autoptr(FsRecord) remote = record_from_side (&row->remote);
  FsActionType got = fs_reconcile (local, base, remote);

  if (got != row->expected)
    g_test_message ("%s: expected %s, got %s", row->name, fs_action_to_string (row->expected),
                    fs_action_to_string (got));
  g_assert_cmpstr (fs_action_to_string (got), ==, fs_action_to_string (row->expected));
}

static void
test_action_to_string (void)
{
  g_assert_cmpstr (fs_action_to_string (FS_ACTION_NOTHING), ==, "nothing");
  g_assert_cmpstr (fs_action_to_string (FS_ACTION_UPLOAD), ==, "upload");
  g_assert_cmpstr (fs_action_to_string (FS_ACTION_DOWNLOAD), ==, "download");
  g_assert_cmpstr (fs_action_to_string (FS_ACTION_DELETE_REMOTE), ==, "delete-remote");
  g_assert_cmpstr (fs_action_to_string (FS_ACTION_DELETE_LOCAL), ==, "delete-local");
  g_assert_cmpstr (fs_action_to_string (FS_ACTION_RECORD), ==, "record");
  g_assert_cmpstr (fs_action_to_string (FS_ACTION_FORGET), ==, "forget");
  g_assert_cmpstr (fs_action_to_string (FS_ACTION_CONFLICT), ==, "conflict");
}

static void
test_matches_record (void)
{
  static const Side file_a = FILE_ ("a");
  static const Side rec_a = FILE_V ("a", "v1");
  static const Side rec_b = FILE_V ("b", "v1");
  static const Side rec_x = EXEC_V ("a", "v1");
  static const Side deleted = DELETED_V ("v2");
  g_autoptr(FsEntry) local = entry_from_side (&file_a);
  g_autoptr(FsRecord) same = record_from_side (&rec_a);
  g_autoptr(FsRecord) other = record_from_side (&rec_b);
  g_autoptr(FsRecord) exec = record_from_side (&rec_x);
  g_autoptr(FsRecord) gone = record_from_side (&deleted);

  g_assert_true (fs_entry_matches_record (local, same));
  g_assert_false (fs_entry_matches_record (local, other));
  g_assert_false (fs_entry_matches_record (local, exec));
  g_assert_false (fs_entry_matches_record (local, gone));
  g_assert_false (fs_entry_matches_record (local, NULL));
  g_assert_false (fs_entry_matches_record (NULL, same));

  /* The mtime is not content. */
  local->mtime_ns = 123456789;
  g_assert_true (fs_entry_matches_record (local, same));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  for (gsize i = 0; i < G_N_ELEMENTS (rows); i++)
    {
      g_autofree gchar *path = g_strdup_printf ("/reconcile/%s", rows[i].name);
      g_test_add_data_func (path, &rows[i], test_row);
    }
  g_test_add_func ("/reconcile/action-to-string", test_action_to_string);
  g_test_add_func ("/reconcile/matches-record", test_matches_record);
  return g_test_run ();
}
