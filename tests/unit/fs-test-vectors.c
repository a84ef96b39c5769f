#include <string.h>

#include "fs-test-vectors.h"

GHashTable *
fs_test_load_vectors (void)
{
  const gchar *dir = g_getenv ("FOLDERSYNC_DOCS_DIR");
  g_autofree gchar *path = NULL;
  g_autofree gchar *text = NULL;
  g_autoptr (GError) error = NULL;
  g_auto (GStrv) lines = NULL;
  GHashTable *vectors = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);

  g_assert_nonnull (dir);
  path = g_build_filename (dir, "format.md", NULL);
  g_file_get_contents (path, &text, NULL, &error);
  g_assert_no_error (error);
  lines = g_strsplit (text, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      const gchar *colon;
      g_autofree gchar *name = NULL;
      g_autofree gchar *value = NULL;
      const gchar *old;

      if (!g_str_has_prefix (lines[i], "vector "))
        continue;
      colon = strstr (lines[i], ": ");
      g_assert_nonnull (colon);
      name = g_strstrip (g_strndup (lines[i] + 7, colon - (lines[i] + 7)));
      value = g_strstrip (g_strdup (colon + 2));
      old = g_hash_table_lookup (vectors, name);
      g_hash_table_insert (vectors, g_strdup (name),
                           old != NULL ? g_strconcat (old, value, NULL) : g_strdup (value));
    }
  return vectors;
}

const gchar *
fs_test_vector (GHashTable *vectors, const gchar *name)
{
  const gchar *value = g_hash_table_lookup (vectors, name);
  if (value == NULL)
    g_error ("docs/format.md has no ‘vector %s:’ line", name);
  return value;
}
