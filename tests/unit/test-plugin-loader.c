/* Plugin loader: finding modules by name, refusing broken or wrong ones with
 * a clear GError. Runs with FOLDERSYNC_PLUGIN_DIR on the build tree, which
 * also holds the deliberately broken modules of plugins/test/. */
#include "config.h"

#include <string.h>

#include "fs-crypto.h"
#include "fs-error.h"
#include "fs-plugin-loader.h"
#include "fs-storage.h"

static void
test_load_storage_local (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GObject) obj = fs_plugin_new_instance ("storage-local", FS_TYPE_STORAGE, &error);

  g_assert_no_error (error);
  g_assert_nonnull (obj);
  g_assert_true (FS_IS_STORAGE (obj));
  g_assert_true (fs_storage_supports_conditional_put (FS_STORAGE (obj)));
}

static void
test_load_twice (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GObject) a = fs_plugin_new_instance ("storage-local", FS_TYPE_STORAGE, &error);
  g_autoptr (GObject) b = NULL;

  g_assert_no_error (error);
  b = fs_plugin_new_instance ("storage-local", FS_TYPE_STORAGE, &error);
  g_assert_no_error (error);
  g_assert_true (a != b);
  g_assert_cmpuint (G_OBJECT_TYPE (a), ==, G_OBJECT_TYPE (b));
}

static void
assert_load_fails (const gchar *name, GType iface, gint code, const gchar *must_mention)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GObject) obj = fs_plugin_new_instance (name, iface, &error);

  g_assert_null (obj);
  g_assert_error (error, FS_PLUGIN_ERROR, code);
  g_test_message ("%s: %s", name, error->message);
  /* One line, naming what failed. */
  g_assert_null (strchr (error->message, '\n'));
  g_assert_nonnull (strstr (error->message, must_mention));
}

static void
test_no_entry (void)
{
  assert_load_fails ("test-no-entry", FS_TYPE_STORAGE, FS_PLUGIN_ERROR_INVALID,
                     "fs_plugin_register");
  /* Still refused the second time (nothing half-registered is cached). */
  assert_load_fails ("test-no-entry", FS_TYPE_STORAGE, FS_PLUGIN_ERROR_INVALID, "test-no-entry");
}

static void
test_wrong_type (void)
{
  assert_load_fails ("test-wrong-type", FS_TYPE_STORAGE, FS_PLUGIN_ERROR_INVALID,
                     "test-wrong-type");
  assert_load_fails ("test-wrong-type", FS_TYPE_CRYPTO, FS_PLUGIN_ERROR_INVALID, "FsCrypto");
}

static void
test_not_found (void)
{
  assert_load_fails ("no-such-plugin", FS_TYPE_STORAGE, FS_PLUGIN_ERROR_NOT_FOUND,
                     "no-such-plugin");
}

static void
test_bad_name (void)
{
  assert_load_fails ("../etc/x", FS_TYPE_STORAGE, FS_PLUGIN_ERROR_NOT_FOUND, "../etc/x");
  assert_load_fails ("", FS_TYPE_STORAGE, FS_PLUGIN_ERROR_NOT_FOUND, "plugin name");
  assert_load_fails ("storage-local/../storage-local", FS_TYPE_STORAGE, FS_PLUGIN_ERROR_NOT_FOUND,
                     "storage-local");
}

static void
test_wrong_interface (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GObject) obj = NULL;

  assert_load_fails ("storage-local", FS_TYPE_CRYPTO, FS_PLUGIN_ERROR_INVALID, "FsCrypto");
  /* The refusal does not poison the module for its real interface. */
  obj = fs_plugin_new_instance ("storage-local", FS_TYPE_STORAGE, &error);
  g_assert_no_error (error);
  g_assert_true (FS_IS_STORAGE (obj));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/plugin-loader/load-storage-local", test_load_storage_local);
  g_test_add_func ("/plugin-loader/load-twice-same-type", test_load_twice);
  g_test_add_func ("/plugin-loader/no-entry-point", test_no_entry);
  g_test_add_func ("/plugin-loader/wrong-type", test_wrong_type);
  g_test_add_func ("/plugin-loader/not-found", test_not_found);
  g_test_add_func ("/plugin-loader/bad-name", test_bad_name);
  g_test_add_func ("/plugin-loader/wrong-interface", test_wrong_interface);

  return g_test_run ();
}
