/* The states the applet shows, worst last, and their icons and words; the
 * events it tells the user about. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Ordered by severity: the tray icon shows the highest across folders.
 * Paused ranks above syncing (a pause lasts until the user resumes; a sync
 * ends by itself); "conflict" also stands for deletions held back: both
 * wait for the user's decision. */
typedef enum
{
  FS_APPLET_STATE_IDLE,
  FS_APPLET_STATE_SYNCING,
  FS_APPLET_STATE_PAUSED,
  FS_APPLET_STATE_OFFLINE,
  FS_APPLET_STATE_CONFLICT,
  FS_APPLET_STATE_ERROR,
} FsAppletState;

/* What a desktop notification is sent for (never for routine syncs). */
typedef enum
{
  FS_APPLET_EVENT_CONFLICT,     /* ConflictDetected: detail is the file */
  FS_APPLET_EVENT_ERROR,        /* State became error: detail is LastError */
  FS_APPLET_EVENT_HELD_DELETES, /* HeldDeletes became > 0: detail is the count */
  FS_APPLET_EVENT_PAIRED,       /* Manager.FolderPaired: detail is the local path */
} FsAppletEvent;

FsAppletState fs_applet_state_from_daemon (const gchar *state);
const gchar *fs_applet_state_icon_name (FsAppletState state);
const gchar *fs_applet_state_to_string (FsAppletState state);
const gchar *fs_applet_state_describe (FsAppletState state);

G_END_DECLS
