/* Shared by the foldersync verbs: exit codes (docs/cli.md) and messages. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

enum {
  FS_CLI_EXIT_OK = 0,
  FS_CLI_EXIT_FAILED = 1,
  FS_CLI_EXIT_USAGE = 2,
  FS_CLI_EXIT_KEY_FILE = 3,
  FS_CLI_EXIT_WRONG_KEY = 4,
  FS_CLI_EXIT_STORE = 5,
  FS_CLI_EXIT_FOLDER = 6,
  FS_CLI_EXIT_PARTIAL = 7,
  FS_CLI_EXIT_INDEX = 8,
  FS_CLI_EXIT_BUSY = 9,
  FS_CLI_EXIT_HELD = 10,
  FS_CLI_EXIT_NOT_FOUND = 11,
  FS_CLI_EXIT_EXISTS = 12,
  FS_CLI_EXIT_NO_DAEMON = 13,
  FS_CLI_EXIT_BAD_TOKEN = 14,
  FS_CLI_EXIT_EXPIRED = 15,
};

int fs_cli_exit_code_for (const GError *error);
/* Prints "foldersync: <message>" on stderr (the message already translated). */
void fs_cli_error (const gchar *format, ...) G_GNUC_PRINTF (1, 2);
/* Prints "foldersync: <message>" and returns the exit code for @error. */
int fs_cli_fail (const GError *error);
int fs_cli_usage_error (const gchar *message);
/* Adds @entries (may be NULL: already added) to @context and parses; on a
 * usage error prints it and returns FALSE (exit with FS_CLI_EXIT_USAGE). */
gboolean fs_cli_parse_options (GOptionContext *context, const GOptionEntry *entries, int *argc,
                               char ***argv);
gchar *fs_cli_absolute_path (const gchar *path);

int fs_cli_start (int argc, char **argv);
int fs_cli_stop (int argc, char **argv);
int fs_cli_remove (int argc, char **argv);
int fs_cli_status (int argc, char **argv);
int fs_cli_force_sync (int argc, char **argv);
int fs_cli_conflicts (int argc, char **argv);
int fs_cli_generate_token (int argc, char **argv);
int fs_cli_pair (int argc, char **argv);

G_END_DECLS
