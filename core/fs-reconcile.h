/* The reconciler: a pure function from (local, base, remote) of one path to
 * the action that makes them agree. DESIGN §5; no I/O. */
#pragma once

#include "fs-types.h"

G_BEGIN_DECLS

typedef enum {
  FS_ACTION_NOTHING,       /* all agree */
  FS_ACTION_UPLOAD,        /* local → remote (new version replacing base/remote) */
  FS_ACTION_DOWNLOAD,      /* remote → local */
  FS_ACTION_DELETE_REMOTE, /* write a deletion record */
  FS_ACTION_DELETE_LOCAL,  /* move the local file to the trash / remove dir */
  FS_ACTION_RECORD,        /* both sides already agree: only update the index */
  FS_ACTION_FORGET,        /* gone on both sides: drop the index row */
  FS_ACTION_CONFLICT,      /* both changed differently: keep both */
} FsActionType;

const gchar *fs_action_to_string (FsActionType action);

/* @local: the path on disk now (NULL if absent).
 * @base: the index entry (NULL if never synced); base->version is the remote
 *   version it was synced with.
 * @remote: the current remote head (NULL if never existed; remote->deleted for
 *   a deletion).
 * "Local changed" means local differs from base by fs_entry_same_content();
 * "remote changed" means remote->version differs from base->version. */
FsActionType fs_reconcile (const FsEntry *local, const FsEntry *base, const FsRecord *remote);

/* Whether a local entry and a remote record hold the same content. */
gboolean fs_entry_matches_record (const FsEntry *local, const FsRecord *remote);

G_END_DECLS
