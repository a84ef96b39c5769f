/* Loads plugins (GModules) by name and instantiates their types.
 *
 * A plugin NAME is the file NAME.so in one of the plugin directories:
 * $FOLDERSYNC_PLUGIN_DIR (a ':'-separated list) if set, else FS_PLUGINDIR.
 * It exports `GType fs_plugin_register (void)`, which registers and returns
 * one type implementing FsStorage, FsCrypto or FsPairing. */
#pragma once

#include <glib-object.h>

G_BEGIN_DECLS

#define FS_PLUGIN_ENTRY_SYMBOL "fs_plugin_register"

typedef GType (*FsPluginRegisterFunc) (void);

/* A new instance of plugin @name's type, which must implement @iface_type. */
GObject *fs_plugin_new_instance (const gchar *name, GType iface_type, GError **error);

G_END_DECLS
