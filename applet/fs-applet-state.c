/* The states the applet shows: the daemon's State property folded into
 * FsAppletState, and an icon and a word for each. */
#include "config.h"

#include "fs-applet-state.h"

#include <glib/gi18n.h>

FsAppletState
fs_applet_state_from_daemon (const gchar *state)
{
  if (g_strcmp0 (state, "scanning") == 0 || g_strcmp0 (state, "syncing") == 0)
    return FS_APPLET_STATE_SYNCING;
  if (g_strcmp0 (state, "paused") == 0)
    return FS_APPLET_STATE_PAUSED;
  if (g_strcmp0 (state, "offline") == 0)
    return FS_APPLET_STATE_OFFLINE;
  if (g_strcmp0 (state, "error") == 0)
    return FS_APPLET_STATE_ERROR;
  /* idle, and anything a newer daemon may add */
  return FS_APPLET_STATE_IDLE;
}

static const gchar *const names[] = { "idle", "syncing", "paused", "offline", "conflict", "error" };

const gchar *
fs_applet_state_to_string (FsAppletState state)
{
  g_return_val_if_fail (state <= FS_APPLET_STATE_ERROR, "idle");
  return names[state];
}

const gchar *
fs_applet_state_icon_name (FsAppletState state)
{
  static const gchar *const icons[] = {
    "foldersync-idle-symbolic",    "foldersync-syncing-symbolic",  "foldersync-paused-symbolic",
    "foldersync-offline-symbolic", "foldersync-conflict-symbolic", "foldersync-error-symbolic",
  };

  g_return_val_if_fail (state <= FS_APPLET_STATE_ERROR, icons[0]);
  return icons[state];
}

/* A word for people, as in "Notes — Paused". */
const gchar *
fs_applet_state_describe (FsAppletState state)
{
  switch (state)
    {
    case FS_APPLET_STATE_IDLE:
      return _("Up to date");
    case FS_APPLET_STATE_SYNCING:
      return _("Syncing");
    case FS_APPLET_STATE_PAUSED:
      return _("Paused");
    case FS_APPLET_STATE_OFFLINE:
      return _("Offline");
    case FS_APPLET_STATE_CONFLICT:
      return _("Conflicts");
    case FS_APPLET_STATE_ERROR:
      return _("Error");
    default:
      g_return_val_if_reached ("");
    }
}
