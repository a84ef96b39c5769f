/* GModule plugin loader: find NAME.so, resolve its entry point, check the
 * type it registers implements the wanted interface. */
#include "config.h"

#include <glib/gi18n-lib.h>
#include <gmodule.h>

#include "fs-error.h"
#include "fs-plugin-loader.h"

G_LOCK_DEFINE_STATIC (plugins);
static GHashTable *plugin_types; /* name → GType, for modules already loaded */

static gboolean
valid_plugin_name (const gchar *name)
{
  if (name == NULL || *name == '\0')
    return FALSE;
  for (const gchar *p = name; *p != '\0'; p++)
    if (!g_ascii_isalnum (*p) && *p != '-' && *p != '_')
      return FALSE;
  return TRUE;
}

static gchar *
find_module_file (const gchar *name)
{
  const gchar *env = g_getenv ("FOLDERSYNC_PLUGIN_DIR");
  g_auto(GStrv) dirs = g_strsplit (env != NULL && *env != '\0' ? env : FS_PLUGINDIR, ":", -1);
  g_autofree gchar *file = g_strconcat (name, ".so", NULL);

  for (guint i = 0; dirs[i] != NULL; i++)
    {
      g_autofree gchar *path = NULL;
      if (*dirs[i] == '\0')
        continue;
      path = g_build_filename (dirs[i], file, NULL);
      if (g_file_test (path, G_FILE_TEST_IS_REGULAR))
        return g_steal_pointer (&path);
    }
  return NULL;
}

static GType
load_plugin_type (const gchar *name, GError **error)
{
  g_autofree gchar *path = NULL;
  GModule *module;
  gpointer symbol = NULL;
  FsPluginRegisterFunc register_func;
  GType type;

  if (plugin_types != NULL && g_hash_table_contains (plugin_types, name))
    return (GType) GPOINTER_TO_SIZE (g_hash_table_lookup (plugin_types, name));

  path = find_module_file (name);
  if (path == NULL)
    {
      g_set_error (error, FS_PLUGIN_ERROR, FS_PLUGIN_ERROR_NOT_FOUND,
                   _("Plugin ‘%s’ not found (searched %s)"), name,
                   g_getenv ("FOLDERSYNC_PLUGIN_DIR") != NULL ? g_getenv ("FOLDERSYNC_PLUGIN_DIR")
                                                              : FS_PLUGINDIR);
      return G_TYPE_INVALID;
    }
  module = g_module_open (path, G_MODULE_BIND_LAZY | G_MODULE_BIND_LOCAL);
  if (module == NULL)
    {
      g_set_error (error, FS_PLUGIN_ERROR, FS_PLUGIN_ERROR_INVALID,
                   _("Plugin ‘%s’ could not be loaded: %s"), name, g_module_error ());
      return G_TYPE_INVALID;
    }
  if (!g_module_symbol (module, FS_PLUGIN_ENTRY_SYMBOL, &symbol) || symbol == NULL)
    {
      g_set_error (error, FS_PLUGIN_ERROR, FS_PLUGIN_ERROR_INVALID,
                   _("Plugin ‘%s’ (%s) has no %s entry point"), name, path, FS_PLUGIN_ENTRY_SYMBOL);
      g_module_close (module);
      return G_TYPE_INVALID;
    }
  /* Types registered statically can never be unregistered, so the module stays. */
  g_module_make_resident (module);
  register_func = (FsPluginRegisterFunc) (void (*) (void)) symbol;
  type = register_func ();
  if (type == G_TYPE_INVALID || !G_TYPE_IS_INSTANTIATABLE (type) || G_TYPE_IS_ABSTRACT (type))
    {
      g_set_error (error, FS_PLUGIN_ERROR, FS_PLUGIN_ERROR_INVALID,
                   _("Plugin ‘%s’ registered no instantiable type"), name);
      return G_TYPE_INVALID;
    }
  if (plugin_types == NULL)
    plugin_types = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_hash_table_insert (plugin_types, g_strdup (name), GSIZE_TO_POINTER (type));
  g_debug ("loaded plugin %s from %s: %s", name, path, g_type_name (type));
  return type;
}

GObject *
fs_plugin_new_instance (const gchar *name, GType iface_type, GError **error)
{
  GType type;

  g_return_val_if_fail (G_TYPE_IS_INTERFACE (iface_type), NULL);

  if (!valid_plugin_name (name))
    {
      g_set_error (error, FS_PLUGIN_ERROR, FS_PLUGIN_ERROR_NOT_FOUND,
                   _("‘%s’ is not a valid plugin name"), name != NULL ? name : "");
      return NULL;
    }
  G_LOCK (plugins);
  type = load_plugin_type (name, error);
  G_UNLOCK (plugins);
  if (type == G_TYPE_INVALID)
    return NULL;
  if (!g_type_is_a (type, iface_type))
    {
      g_set_error (error, FS_PLUGIN_ERROR, FS_PLUGIN_ERROR_INVALID,
                   _("Plugin ‘%s’ provides %s, which does not implement %s"), name,
                   g_type_name (type), g_type_name (iface_type));
      return NULL;
    }
  return g_object_new (type, NULL);
}
