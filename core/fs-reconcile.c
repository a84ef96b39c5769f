/* The reconciler: the three-way decision of DESIGN §5 for one path, as a pure
 * function of (local, base, remote). No I/O, no allocation. */
#include "fs-reconcile.h"

const gchar *
fs_action_to_string (FsActionType action)
{
  switch (action)
    {
    case FS_ACTION_NOTHING:
      return "nothing";
    case FS_ACTION_UPLOAD:
      return "upload";
    case FS_ACTION_DOWNLOAD:
      return "download";
    case FS_ACTION_DELETE_REMOTE:
      return "delete-remote";
    case FS_ACTION_DELETE_LOCAL:
      return "delete-local";
    case FS_ACTION_RECORD:
      return "record";
    case FS_ACTION_FORGET:
      return "forget";
    case FS_ACTION_CONFLICT:
      return "conflict";
    default:
      return "unknown";
    }
}

static gboolean
mode_is_exec (guint32 mode)
{
  return (mode & 0111) != 0;
}

/* The content of a path, whichever side it comes from: what is synced. The
 * mtime, size (implied by the hash), inode and the other permission bits are
 * not part of it, so a touch or a chmod 600 → 644 is not a change. */
static gboolean
same_content (FsKind kind_a, const gchar *hash_a, guint32 mode_a, const gchar *target_a,
              FsKind kind_b, const gchar *hash_b, guint32 mode_b, const gchar *target_b)
{
  if (kind_a != kind_b)
    return FALSE;
  switch (kind_a)
    {
    case FS_KIND_FILE:
      return g_strcmp0 (hash_a, hash_b) == 0 && mode_is_exec (mode_a) == mode_is_exec (mode_b);
    case FS_KIND_SYMLINK:
      return g_strcmp0 (target_a, target_b) == 0;
    case FS_KIND_DIR:
    case FS_KIND_NONE:
    default:
      return TRUE;
    }
}

/* Kept local on purpose (fs_entry_same_content() in the scanner has the same
 * meaning): the reconciler stays a self-contained pure module. */
static gboolean
entry_same_content (const FsEntry *a, const FsEntry *b)
{
  return same_content (a->kind, a->hash, a->mode, a->target, b->kind, b->hash, b->mode,
                       b->target);
}

gboolean
fs_entry_matches_record (const FsEntry *local, const FsRecord *remote)
{
  if (local == NULL || remote == NULL || remote->deleted)
    return FALSE;
  return same_content (local->kind, local->hash, local->mode, local->target, remote->kind,
                       remote->hash, remote->mode, remote->target);
}

FsActionType
fs_reconcile (const FsEntry *local, const FsEntry *base, const FsRecord *remote)
{
  gboolean local_present = local != NULL;
  gboolean remote_present = remote != NULL && !remote->deleted;
  gboolean local_changed;
  gboolean remote_changed;

  if (local_present != (base != NULL))
    local_changed = TRUE;
  else
    local_changed = local_present && !entry_same_content (local, base);

  /* Never synced: any live remote version is new to us. Synced: the remote
   * moved on (an edit, a deletion record, or the head vanished) iff its
   * version is not the one we synced with. */
  if (base == NULL)
    remote_changed = remote_present;
  else
    remote_changed = remote == NULL || g_strcmp0 (remote->version, base->version) != 0;

  if (!local_changed && !remote_changed)
    return FS_ACTION_NOTHING;

  if (local_changed && !remote_changed)
    {
      if (local_present)
        return FS_ACTION_UPLOAD;
      return remote_present ? FS_ACTION_DELETE_REMOTE : FS_ACTION_FORGET;
    }

  if (!local_changed && remote_changed)
    {
      if (remote_present)
        return FS_ACTION_DOWNLOAD;
      return local_present ? FS_ACTION_DELETE_LOCAL : FS_ACTION_FORGET;
    }

  /* Both changed. An edit wins over a delete, on either side. */
  if (!local_present && !remote_present)
    return FS_ACTION_FORGET;
  if (!local_present)
    return FS_ACTION_DOWNLOAD;
  if (!remote_present)
    return FS_ACTION_UPLOAD;
  /* Includes a directory on both sides: directories have no content. */
  if (fs_entry_matches_record (local, remote))
    return FS_ACTION_RECORD;
  return FS_ACTION_CONFLICT;
}
