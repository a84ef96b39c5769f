/* D-Bus error names of foldersyncd: every libfoldersync error domain and the
 * daemon's own FS_DAEMON_ERROR map to org.toolbox.FolderSync.Error.<Code>, so
 * a client (the CLI, gdbus, an applet) gets a GError of the same domain and
 * code back after g_dbus_error_strip_remote_error(). */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define FS_DAEMON_ERROR (fs_daemon_error_quark ())

typedef enum
{
  FS_DAEMON_ERROR_FAILED,
  FS_DAEMON_ERROR_NOT_FOUND,        /* no such folder object */
  FS_DAEMON_ERROR_ALREADY_EXISTS,   /* already synced, or inside/containing a synced folder */
  FS_DAEMON_ERROR_NOT_SUPPORTED,    /* not implemented yet (Pair, GenerateToken, ...) */
  FS_DAEMON_ERROR_INVALID_ARGUMENT, /* bad a{sv} key or type, relative path, ... */
} FsDaemonError;

GQuark fs_daemon_error_quark (void);

/* Registers all error domains with GDBus (idempotent, thread-safe). Call it
 * once before making or answering calls; the quark functions of the domains
 * do not do it by themselves. */
void fs_dbus_error_register (void);

/* Returns a copy of @error whose domain is registered with D-Bus: errors of
 * registered domains are copied as they are, except FS_ENGINE_ERROR_FAILED
 * and _INVALID_ARGUMENT which become the daemon's Failed / InvalidArgument;
 * anything else (GIOError, ...) becomes FS_DAEMON_ERROR_FAILED with the same
 * message. */
GError *fs_dbus_error_normalize (const GError *error);

G_END_DECLS
