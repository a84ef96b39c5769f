/* foldersync: the command line. `keygen` and `sync` work without a daemon;
 * the daemon verbs come with foldersyncd. Exit codes: docs/cli.md. */
#include "config.h"

#include <errno.h>
#include <glib/gi18n.h>
#include <glib/gstdio.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <json-glib/json-glib.h>

#include "fs-cli.h"
#include "fs-engine.h"
#include "fs-error.h"
#include "fs-index.h"
#include "fs-keyfile.h"
#include "fs-plugin-loader.h"
#include "fs-storage.h"
#include "fs-store-config.h"


static gboolean opt_verbose;

static GLogWriterOutput
log_writer (GLogLevelFlags level, const GLogField *fields, gsize n_fields, gpointer user_data)
{
  /* People see warnings; messages and debug output only with --verbose or
   * G_MESSAGES_DEBUG. */
  if (!opt_verbose && (level & (G_LOG_LEVEL_MESSAGE | G_LOG_LEVEL_INFO)) != 0)
    return G_LOG_WRITER_HANDLED;
  return g_log_writer_default (level, fields, n_fields, user_data);
}

/* ---- keygen ------------------------------------------------------------- */

static int
cmd_keygen (int argc, char **argv)
{
  g_autoptr(GOptionContext) context = g_option_context_new (_("— print a new random key"));
  g_autofree gchar *hex = NULL;

  g_option_context_set_description (context,
                                    _("Prints 64 hex characters (a 256-bit key). Keep it in a file "
                                      "of mode 0600:\n  umask 077; foldersync keygen > notes.key"));
  if (!fs_cli_parse_options (context, NULL, &argc, &argv))
    return FS_CLI_EXIT_USAGE;
  if (argc > 1)
    return fs_cli_usage_error (_("keygen takes no arguments"));
  if (isatty (STDOUT_FILENO))
    fs_cli_error (_("warning: printing a secret key to a terminal"));
  hex = fs_keyfile_generate_hex ();
  g_print ("%s\n", hex);
  explicit_bzero (hex, strlen (hex));
  return FS_CLI_EXIT_OK;
}

/* ---- sync --------------------------------------------------------------- */

static gchar *
format_size (guint64 bytes)
{
  return g_format_size_full (bytes, G_FORMAT_SIZE_DEFAULT);
}

static void add_storage_counters (JsonBuilder *b, FsStorage *storage);

static void
print_summary_json (const FsSyncStats *s, GPtrArray *messages, FsStorage *storage,
                    const GError *error)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autoptr(JsonGenerator) gen = json_generator_new ();
  g_autoptr(JsonNode) root = NULL;
  g_autofree gchar *text = NULL;
  const struct {
    const gchar *name;
    guint64 value;
  } counters[] = {
    { "files_up", s->files_up },           { "bytes_up", s->bytes_up },
    { "files_down", s->files_down },       { "bytes_down", s->bytes_down },
    { "dirs_created", s->dirs_created },   { "deleted_local", s->deleted_local },
    { "deleted_remote", s->deleted_remote }, { "conflicts", s->conflicts },
    { "errors", s->errors },               { "deferred", s->deferred },
    { "files_hashed", s->files_hashed },   { "objects_read", s->objects_read },
    { "objects_written", s->objects_written }, { "records_read", s->records_read },
    { "records_written", s->records_written }, { "held_deletes", s->held_deletes },
  };

  json_builder_begin_object (b);
  for (gsize i = 0; i < G_N_ELEMENTS (counters); i++)
    {
      json_builder_set_member_name (b, counters[i].name);
      json_builder_add_int_value (b, (gint64) counters[i].value);
    }
  json_builder_set_member_name (b, "messages");
  json_builder_begin_array (b);
  for (guint i = 0; i < messages->len; i++)
    json_builder_add_string_value (b, g_ptr_array_index (messages, i));
  json_builder_end_array (b);
  add_storage_counters (b, storage);
  if (error != NULL)
    {
      json_builder_set_member_name (b, "error");
      json_builder_add_string_value (b, error->message);
    }
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  text = json_generator_to_data (gen, NULL);
  g_print ("%s\n", text);
}

static void
print_summary (const gchar *path, const FsSyncStats *s)
{
  g_autofree gchar *up = format_size (s->bytes_up);
  g_autofree gchar *down = format_size (s->bytes_down);

  /* TRANSLATORS: the summary of `foldersync sync`; "up" is uploaded to the
   * store, "down" downloaded from it, the values in parentheses are sizes. */
  g_print (_("Synced %s: %u up (%s), %u down (%s), %u deleted here, %u deleted remotely, "
             "%u conflicts, %u errors"),
           path, s->files_up, up, s->files_down, down, s->deleted_local, s->deleted_remote,
           s->conflicts, s->errors);
  if (s->deferred > 0)
    g_print (_(", %u deferred"), s->deferred);
  if (s->held_deletes > 0)
    g_print (_(", %u deletions held back"), s->held_deletes);
  g_print ("\n");
}

static void
add_storage_counters (JsonBuilder *b, FsStorage *storage)
{
  const gchar *names[] = { "retries", "requests" };

  /* Backends that count their requests (storage-s3) say so as properties. */
  for (gsize i = 0; i < G_N_ELEMENTS (names); i++)
    if (g_object_class_find_property (G_OBJECT_GET_CLASS (storage), names[i]) != NULL)
      {
        guint64 value = 0;
        g_autofree gchar *member = g_strconcat ("storage_", names[i], NULL);
        g_object_get (storage, names[i], &value, NULL);
        json_builder_set_member_name (b, member);
        json_builder_add_int_value (b, (gint64) value);
      }
}

static int
cmd_sync (int argc, char **argv)
{
  g_autofree gchar *opt_path = NULL;
  g_autofree gchar *opt_key_file = NULL;
  g_autofree gchar *opt_store = NULL;
  g_autofree gchar *opt_prefix = NULL;
  g_autofree gchar *opt_device_name = NULL;
  g_autofree gchar *opt_endpoint = NULL;
  g_autofree gchar *opt_bucket = NULL;
  g_autofree gchar *opt_region = NULL;
  g_autofree gchar *opt_access_key = NULL;
  g_autofree gchar *opt_secret_key_file = NULL;
  g_autofree gchar *opt_ca_file = NULL;
  gboolean opt_audit = FALSE;
  gboolean opt_json = FALSE;
  gboolean opt_confirm_deletes = FALSE;
  gint opt_max_workers = 0;
  const GOptionEntry entries[] = {
    { "path", 'p', 0, G_OPTION_ARG_FILENAME, &opt_path, N_("The folder to sync (required)"), "DIR" },
    { "key-file", 'k', 0, G_OPTION_ARG_FILENAME, &opt_key_file,
      N_("The folder's key: 64 hex characters, mode 0600 (required)"), "FILE" },
    { "store", 's', 0, G_OPTION_ARG_FILENAME, &opt_store,
      N_("A local store directory (default: $XDG_DATA_HOME/foldersync/store)"), "DIR" },
    { "endpoint", 0, 0, G_OPTION_ARG_STRING, &opt_endpoint,
      N_("An S3 server (http(s)://host[:port]) instead of a local store"), "URL" },
    { "bucket", 'b', 0, G_OPTION_ARG_STRING, &opt_bucket, N_("The S3 bucket"), "BUCKET" },
    { "prefix", 0, 0, G_OPTION_ARG_STRING, &opt_prefix, N_("Key prefix inside the store"), "PREFIX" },
    { "region", 0, 0, G_OPTION_ARG_STRING, &opt_region, N_("S3 region (default us-east-1)"),
      "REGION" },
    { "access-key", 0, 0, G_OPTION_ARG_STRING, &opt_access_key,
      N_("S3 access key (default: $AWS_ACCESS_KEY_ID)"), "KEY" },
    { "secret-key-file", 0, 0, G_OPTION_ARG_FILENAME, &opt_secret_key_file,
      N_("File holding the S3 secret key, mode 0600 (default: $AWS_SECRET_ACCESS_KEY)"), "FILE" },
    { "ca-file", 0, 0, G_OPTION_ARG_FILENAME, &opt_ca_file,
      N_("PEM file of the CA to trust for https (default: the system's)"), "FILE" },
    { "device-name", 0, 0, G_OPTION_ARG_STRING, &opt_device_name,
      N_("Name used in conflict copies (default: host name and device id)"), "NAME" },
    { "audit", 0, 0, G_OPTION_ARG_NONE, &opt_audit,
      N_("Read the whole remote journal again, not only what is new"), NULL },
    { "confirm-deletes", 0, 0, G_OPTION_ARG_NONE, &opt_confirm_deletes,
      N_("Apply deletions even when they would remove more than half of the folder"), NULL },
    { "json", 0, 0, G_OPTION_ARG_NONE, &opt_json, N_("Print the summary as JSON"), NULL },
    { "max-workers", 0, 0, G_OPTION_ARG_INT, &opt_max_workers, N_("Parallel transfers (default 4)"),
      "N" },
    { NULL },
  };
  g_autoptr(GOptionContext) context = g_option_context_new (_("— make a folder and its store agree, both ways"));
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) key = NULL;
  g_autoptr(FsStorage) storage = NULL;
  g_autoptr(FsEngine) engine = NULL;
  g_autoptr(GPtrArray) messages = g_ptr_array_new_with_free_func (g_free);
  g_auto(FsStoreConfig) store = { 0 };
  g_autofree gchar *path = NULL;
  g_autofree gchar *store_id = NULL;
  g_autofree gchar *prefix = NULL;
  FsSyncStats stats = { 0 };
  FsEngineConfig config = { 0 };
  gboolean ok;

  g_option_context_set_description (context, _("Exit codes are listed in foldersync(1)."));
  if (!fs_cli_parse_options (context, entries, &argc, &argv))
    return FS_CLI_EXIT_USAGE;
  /* --json output is for programs: its messages stay untranslated. */
  if (opt_json)
    setlocale (LC_MESSAGES, "C");
  if (argc > 1)
    return fs_cli_usage_error (_("sync takes no positional arguments"));
  if (opt_path == NULL)
    return fs_cli_usage_error (_("--path is required"));
  if (opt_key_file == NULL)
    return fs_cli_usage_error (_("--key-file is required (create one with: foldersync keygen)"));
  if (opt_endpoint != NULL && opt_store != NULL)
    return fs_cli_usage_error (_("--endpoint and --store exclude each other"));
  if (opt_max_workers < 0 || opt_max_workers > 64)
    return fs_cli_usage_error (_("--max-workers must be 1 to 64"));

  key = fs_keyfile_load (opt_key_file, &error);
  if (key == NULL)
    return fs_cli_fail (error);

  path = fs_cli_absolute_path (opt_path);
  if (opt_endpoint != NULL)
    {
      store.endpoint = g_strdup (opt_endpoint);
      store.bucket = g_strdup (opt_bucket);
      store.region = g_strdup (opt_region);
      store.access_key = g_strdup (opt_access_key != NULL ? opt_access_key
                                                          : g_getenv ("AWS_ACCESS_KEY_ID"));
      store.ca_file = g_strdup (opt_ca_file);
      if (opt_secret_key_file != NULL)
        {
          store.secret_key = fs_store_config_read_secret (opt_secret_key_file, &error);
          if (store.secret_key == NULL)
            return fs_cli_fail (error);
        }
      else
        store.secret_key = g_strdup (g_getenv ("AWS_SECRET_ACCESS_KEY"));
      prefix = g_strdup (opt_prefix);
    }
  else
    {
      if (opt_store != NULL)
        store.store_dir = fs_cli_absolute_path (opt_store);
      /* In a local store a bucket is just the first level of the prefix. */
      if (opt_bucket != NULL)
        prefix = opt_prefix != NULL ? g_strdup_printf ("%s/%s", opt_bucket, opt_prefix)
                                    : g_strdup (opt_bucket);
      else
        prefix = g_strdup (opt_prefix);
    }
  storage = fs_store_config_open (&store, &store_id, &error);
  if (storage == NULL)
    return fs_cli_fail (error);

  config.local_path = path;
  config.storage = storage;
  config.store_id = store_id;
  config.prefix = prefix;
  config.key = key;
  config.device_name = opt_device_name != NULL ? opt_device_name : g_getenv ("FOLDERSYNC_DEVICE_NAME");
  config.max_workers = (guint) opt_max_workers;
  engine = fs_engine_new (&config, &error);
  if (engine == NULL)
    return fs_cli_fail (error);

  fs_engine_set_confirm_deletes (engine, opt_confirm_deletes);
  ok = fs_engine_sync (engine, opt_audit, &stats, messages, NULL, &error);
  if (opt_json)
    print_summary_json (&stats, messages, storage, error);
  else
    {
      for (guint i = 0; i < messages->len; i++)
        fs_cli_error ("%s", (const gchar *) g_ptr_array_index (messages, i));
      if (ok)
        print_summary (path, &stats);
    }
  if (!ok)
    return opt_json ? fs_cli_exit_code_for (error) : fs_cli_fail (error);
  if (stats.errors > 0)
    return FS_CLI_EXIT_PARTIAL;
  return stats.held_deletes > 0 ? FS_CLI_EXIT_HELD : FS_CLI_EXIT_OK;
}

/* ---- dispatch ----------------------------------------------------------- */

typedef struct {
  const gchar *name;
  int (*run) (int argc, char **argv);
  const gchar *summary;
} Verb;

static const Verb verbs[] = {
  { "start", fs_cli_start, N_("Sync a folder live, in the daemon") },
  { "stop", fs_cli_stop, N_("Stop syncing (the folder stays configured)") },
  { "status", fs_cli_status, N_("Show every synced folder") },
  { "force-sync", fs_cli_force_sync, N_("A full reconcile now") },
  { "conflicts", fs_cli_conflicts, N_("List conflict copies") },
  { "remove", fs_cli_remove, N_("Forget a folder (its files stay)") },
  { "generate-token", fs_cli_generate_token, N_("A short-lived token to share a folder") },
  { "pair", fs_cli_pair, N_("Join a folder another device shares, with its token") },
  { "sync", cmd_sync, N_("Make a folder and its store agree, both ways, once, without the daemon") },
  { "keygen", cmd_keygen, N_("Print a new random key") },
};

static void
print_usage (FILE *out)
{
  fprintf (out, "%s\n\n%s\n", _("Usage: foldersync [--verbose] COMMAND [OPTIONS]"), _("Commands:"));
  for (gsize i = 0; i < G_N_ELEMENTS (verbs); i++)
    fprintf (out, "  %-15s %s\n", verbs[i].name, _(verbs[i].summary));
  fprintf (out, "\n%s\n", _("Run ‘foldersync COMMAND --help’ for the options of a command."));
}

int
main (int argc, char **argv)
{
  int first = 1;
  const gchar *localedir = g_getenv ("FOLDERSYNC_LOCALEDIR");

  setlocale (LC_ALL, "");
  /* FOLDERSYNC_LOCALEDIR: the catalogs of an uninstalled build (meson devenv). */
  bindtextdomain (GETTEXT_PACKAGE, localedir != NULL && *localedir != '\0' ? localedir : LOCALEDIR);
  bind_textdomain_codeset (GETTEXT_PACKAGE, "UTF-8");
  textdomain (GETTEXT_PACKAGE);
  g_log_set_writer_func (log_writer, NULL, NULL);
  /* stdout is for results (--json, keygen, tokens): logs never mix into it. */
  g_log_writer_default_set_use_stderr (TRUE);

  for (; first < argc && argv[first][0] == '-'; first++)
    {
      if (g_str_equal (argv[first], "--verbose") || g_str_equal (argv[first], "-v"))
        opt_verbose = TRUE;
      else if (g_str_equal (argv[first], "--version"))
        {
          g_print ("foldersync %s\n", PACKAGE_VERSION);
          return FS_CLI_EXIT_OK;
        }
      else if (g_str_equal (argv[first], "--help") || g_str_equal (argv[first], "-h"))
        {
          print_usage (stdout);
          return FS_CLI_EXIT_OK;
        }
      else
        {
          fs_cli_error (_("unknown option %s"), argv[first]);
          print_usage (stderr);
          return FS_CLI_EXIT_USAGE;
        }
    }
  if (first >= argc)
    {
      print_usage (stderr);
      return FS_CLI_EXIT_USAGE;
    }
  for (gsize i = 0; i < G_N_ELEMENTS (verbs); i++)
    if (g_str_equal (argv[first], verbs[i].name))
      {
        g_autofree gchar *prgname = g_strconcat ("foldersync ", verbs[i].name, NULL);
        g_set_prgname (prgname);
        return verbs[i].run (argc - first, argv + first);
      }
  fs_cli_error (_("unknown command ‘%s’"), argv[first]);
  print_usage (stderr);
  return FS_CLI_EXIT_USAGE;
}
