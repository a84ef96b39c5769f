/* Exit codes and error output shared by every foldersync verb. */
#include "config.h"

#include <gio/gio.h>
#include <glib/gi18n.h>
#include <stdarg.h>

#include "fs-cli.h"
#include "fs-dbus-error.h"
#include "fs-error.h"

int
fs_cli_exit_code_for (const GError *error)
{
  if (error->domain == FS_ENGINE_ERROR)
    switch ((FsEngineError) error->code)
      {
      case FS_ENGINE_ERROR_KEY_FILE:
        return FS_CLI_EXIT_KEY_FILE;
      case FS_ENGINE_ERROR_WRONG_KEY:
        return FS_CLI_EXIT_WRONG_KEY;
      case FS_ENGINE_ERROR_NOT_A_STORE:
        return FS_CLI_EXIT_STORE;
      case FS_ENGINE_ERROR_FOLDER:
        return FS_CLI_EXIT_FOLDER;
      case FS_ENGINE_ERROR_INVALID_ARGUMENT:
        return FS_CLI_EXIT_USAGE;
      case FS_ENGINE_ERROR_PARTIAL:
        return FS_CLI_EXIT_PARTIAL;
      case FS_ENGINE_ERROR_BUSY:
        return FS_CLI_EXIT_BUSY;
      default:
        return FS_CLI_EXIT_FAILED;
      }
  if (error->domain == FS_STORAGE_ERROR)
    return FS_CLI_EXIT_STORE;
  if (error->domain == FS_INDEX_ERROR)
    return FS_CLI_EXIT_INDEX;
  if (error->domain == FS_CRYPTO_ERROR && error->code == FS_CRYPTO_ERROR_INVALID_KEY)
    return FS_CLI_EXIT_KEY_FILE;
  if (error->domain == FS_DAEMON_ERROR)
    switch ((FsDaemonError) error->code)
      {
      case FS_DAEMON_ERROR_NOT_FOUND:
        return FS_CLI_EXIT_NOT_FOUND;
      case FS_DAEMON_ERROR_ALREADY_EXISTS:
        return FS_CLI_EXIT_EXISTS;
      case FS_DAEMON_ERROR_INVALID_ARGUMENT:
        return FS_CLI_EXIT_USAGE;
      default:
        return FS_CLI_EXIT_FAILED;
      }
  if (error->domain == FS_PAIRING_ERROR)
    switch ((FsPairingError) error->code)
      {
      case FS_PAIRING_ERROR_INVALID:
        return FS_CLI_EXIT_BAD_TOKEN;
      case FS_PAIRING_ERROR_NOT_FOUND:
        return FS_CLI_EXIT_NOT_FOUND;
      case FS_PAIRING_ERROR_EXPIRED:
        return FS_CLI_EXIT_EXPIRED;
      default:
        return FS_CLI_EXIT_FAILED;
      }
  if (error->domain == G_DBUS_ERROR || g_error_matches (error, G_IO_ERROR, G_IO_ERROR_DBUS_ERROR))
    return FS_CLI_EXIT_NO_DAEMON;
  return FS_CLI_EXIT_FAILED;
}

void
fs_cli_error (const gchar *format, ...)
{
  g_autofree gchar *message = NULL;
  va_list args;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  /* The prefix is not translated: scripts and tests look for it. */
  g_printerr ("foldersync: %s\n", message);
}

int
fs_cli_fail (const GError *error)
{
  fs_cli_error ("%s", error->message);
  return fs_cli_exit_code_for (error);
}

int
fs_cli_usage_error (const gchar *message)
{
  fs_cli_error ("%s", message);
  g_printerr (_("Run ‘%s --help’ for usage.\n"), g_get_prgname ());
  return FS_CLI_EXIT_USAGE;
}

gchar *
fs_cli_absolute_path (const gchar *path)
{
  g_autofree gchar *cwd = NULL;
  if (g_path_is_absolute (path))
    return g_canonicalize_filename (path, NULL);
  cwd = g_get_current_dir ();
  return g_canonicalize_filename (path, cwd);
}

gboolean
fs_cli_parse_options (GOptionContext *context, const GOptionEntry *entries, int *argc,
                      char ***argv)
{
  g_autoptr (GError) error = NULL;

  if (entries != NULL)
    g_option_context_add_main_entries (context, entries, GETTEXT_PACKAGE);
  if (g_option_context_parse (context, argc, argv, &error))
    return TRUE;
  fs_cli_usage_error (error->message);
  return FALSE;
}
