/* foldersyncd: the FolderSync daemon. Owns org.toolbox.FolderSync on the
 * session bus and syncs the folders configured under
 * $XDG_CONFIG_HOME/foldersync/ (see fs-daemon.h, docs/dbus.md). */
#include "config.h"

#include <glib-unix.h>
#include <glib/gi18n.h>
#include <locale.h>
#include <signal.h>
#include <stdlib.h>

#include "fs-daemon.h"
#include "fs-dbus-error.h"

typedef struct
{
  GMainLoop *loop;
  FsDaemon *daemon;
  guint owner_id;
  gboolean acquired;
  gboolean lost;
  gboolean stopping;
  int exit_code;
} Daemon;

static void
shutdown_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Daemon *d = user_data;

  fs_daemon_shutdown_finish (FS_DAEMON (source), result, NULL);
  g_message ("All folders stopped, exiting");
  /* Releasing a name that was taken over only earns a warning. */
  if (!d->lost)
    g_clear_handle_id (&d->owner_id, g_bus_unown_name);
  g_main_loop_quit (d->loop);
}

static void
begin_shutdown (Daemon *d, int exit_code)
{
  if (d->stopping)
    return;
  d->stopping = TRUE;
  d->exit_code = exit_code;
  fs_daemon_shutdown_async (d->daemon, shutdown_done, d);
}

static gboolean
on_signal (gpointer user_data)
{
  Daemon *d = user_data;

  g_message ("Terminating on a signal");
  begin_shutdown (d, EXIT_SUCCESS);
  return G_SOURCE_CONTINUE;
}

static void
on_bus_acquired (GDBusConnection *connection, const gchar *name, gpointer user_data)
{
  Daemon *d = user_data;

  /* Objects are exported before the name is ours, so a client activating
   * us finds them at once. */
  fs_daemon_export (d->daemon, connection);
}

static void
on_name_acquired (GDBusConnection *connection, const gchar *name, gpointer user_data)
{
  Daemon *d = user_data;

  d->acquired = TRUE;
  g_message ("foldersyncd %s owns %s", PACKAGE_VERSION, name);
  /* Only the owner of the name syncs: a second daemon that does not get it
   * must not touch the folders. */
  if (!d->stopping)
    fs_daemon_start_folders (d->daemon);
}

static void
on_name_lost (GDBusConnection *connection, const gchar *name, gpointer user_data)
{
  Daemon *d = user_data;

  if (connection == NULL)
    {
      g_warning ("Cannot connect to the session bus");
      begin_shutdown (d, EXIT_FAILURE);
    }
  else if (d->acquired)
    {
      d->lost = TRUE;
      g_message ("Lost %s (replaced by another foldersyncd), exiting", name);
      begin_shutdown (d, EXIT_SUCCESS);
    }
  else
    {
      g_warning ("%s is owned by another process (use --replace to take it over)", name);
      begin_shutdown (d, EXIT_FAILURE);
    }
}

int
main (int argc, char **argv)
{
  gboolean opt_replace = FALSE;
  gboolean opt_version = FALSE;
  gboolean opt_verbose = FALSE;
  const GOptionEntry entries[] = {
    { "replace", 'r', 0, G_OPTION_ARG_NONE, &opt_replace, N_("Replace a running foldersyncd"), NULL },
    { "verbose", 'v', 0, G_OPTION_ARG_NONE, &opt_verbose, N_("Show debug messages"), NULL },
    { "version", 0, 0, G_OPTION_ARG_NONE, &opt_version, N_("Print the version and exit"), NULL },
    { NULL },
  };
  g_autoptr (GOptionContext) context = g_option_context_new (_("— the FolderSync daemon"));
  g_autoptr (GError) error = NULL;
  GBusNameOwnerFlags flags;
  Daemon d = { 0 };
  const gchar *localedir = g_getenv ("FOLDERSYNC_LOCALEDIR");

  /* The daemon's messages for people are its D-Bus errors (and LastError):
   * in the language of the session that started it. Log lines stay English. */
  setlocale (LC_ALL, "");
  bindtextdomain (GETTEXT_PACKAGE, localedir != NULL && *localedir != '\0' ? localedir : LOCALEDIR);
  bind_textdomain_codeset (GETTEXT_PACKAGE, "UTF-8");
  textdomain (GETTEXT_PACKAGE);
  g_set_prgname ("foldersyncd");
  g_option_context_add_main_entries (context, entries, GETTEXT_PACKAGE);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("foldersyncd: %s\n", error->message);
      return 2;
    }
  if (opt_version)
    {
      g_print ("foldersyncd %s\n", PACKAGE_VERSION);
      return EXIT_SUCCESS;
    }
  if (opt_verbose)
    g_log_set_debug_enabled (TRUE);

  fs_dbus_error_register ();
  d.loop = g_main_loop_new (NULL, FALSE);
  d.daemon = fs_daemon_new ();
  g_unix_signal_add (SIGTERM, on_signal, &d);
  g_unix_signal_add (SIGINT, on_signal, &d);

  flags = G_BUS_NAME_OWNER_FLAGS_ALLOW_REPLACEMENT | G_BUS_NAME_OWNER_FLAGS_DO_NOT_QUEUE;
  if (opt_replace)
    flags |= G_BUS_NAME_OWNER_FLAGS_REPLACE;
  d.owner_id = g_bus_own_name (G_BUS_TYPE_SESSION, FS_DAEMON_BUS_NAME, flags, on_bus_acquired,
                               on_name_acquired, on_name_lost, &d, NULL);

  g_main_loop_run (d.loop);

  if (!d.lost)
    g_clear_handle_id (&d.owner_id, g_bus_unown_name);
  g_clear_object (&d.daemon);
  g_main_loop_unref (d.loop);
  return d.exit_code;
}
