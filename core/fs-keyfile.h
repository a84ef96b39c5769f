/* Key files: 64 lowercase or uppercase hex characters (a 32-byte key), one
 * optional trailing newline, mode 0600 (never readable by group or others). */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* The key bytes (32), or FS_ENGINE_ERROR_KEY_FILE with a one-line reason. */
GBytes *fs_keyfile_load (const gchar *filename, GError **error);

/* A fresh random key as 64 hex characters. */
gchar *fs_keyfile_generate_hex (void);

/* Writes a fresh key to @filename (created 0600, must not exist). */
gboolean fs_keyfile_create (const gchar *filename, GError **error);

G_END_DECLS
