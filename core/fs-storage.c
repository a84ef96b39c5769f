/* FsStorage interface: argument checks and helpers shared by all backends. */
#include "config.h"

#include <glib/gi18n-lib.h>

#include "fs-storage.h"
#include "fs-error.h"

G_DEFINE_INTERFACE (FsStorage, fs_storage, G_TYPE_OBJECT)

static void
fs_storage_default_init (FsStorageInterface *iface)
{
}

FsStorageObject *
fs_storage_object_new (const gchar *key, guint64 size, const gchar *version)
{
  FsStorageObject *obj = g_new0 (FsStorageObject, 1);
  obj->key = g_strdup (key);
  obj->size = size;
  obj->version = g_strdup (version);
  return obj;
}

void
fs_storage_object_free (FsStorageObject *obj)
{
  if (obj == NULL)
    return;
  g_free (obj->key);
  g_free (obj->version);
  g_free (obj);
}

gboolean
fs_storage_check_key (const gchar *key, GError **error)
{
  gboolean ok = key != NULL && *key != '\0' && strlen (key) <= 1024 &&
                g_utf8_validate (key, -1, NULL) && *key != '/';

  if (ok)
    {
      g_auto(GStrv) parts = g_strsplit (key, "/", -1);
      for (guint i = 0; ok && parts[i] != NULL; i++)
        ok = *parts[i] != '\0' && !g_str_equal (parts[i], ".") && !g_str_equal (parts[i], "..");
    }
  if (!ok)
    g_set_error (error, FS_STORAGE_ERROR, FS_STORAGE_ERROR_INVALID,
                 _("‘%s’ is not a valid object key: it must be relative UTF-8 without empty, "
                   "‘.’ or ‘..’ segments"),
                 key != NULL && g_utf8_validate (key, -1, NULL) ? key : "");
  return ok;
}

gboolean
fs_storage_configure (FsStorage *self, GHashTable *settings, GError **error)
{
  g_return_val_if_fail (FS_IS_STORAGE (self), FALSE);
  g_return_val_if_fail (settings != NULL, FALSE);
  return FS_STORAGE_GET_IFACE (self)->configure (self, settings, error);
}

gboolean
fs_storage_list (FsStorage *self, const gchar *prefix, const gchar *delimiter,
                 const gchar *start_after, guint max_keys, GPtrArray **objects,
                 GPtrArray **common_prefixes, gboolean *truncated, GError **error)
{
  g_return_val_if_fail (FS_IS_STORAGE (self), FALSE);
  g_return_val_if_fail (prefix != NULL, FALSE);
  g_return_val_if_fail (objects != NULL, FALSE);
  g_return_val_if_fail (max_keys > 0, FALSE);
  return FS_STORAGE_GET_IFACE (self)->list (self, prefix, delimiter, start_after, max_keys,
                                            objects, common_prefixes, truncated, error);
}

GPtrArray *
fs_storage_list_all (FsStorage *self, const gchar *prefix, const gchar *start_after,
                     GError **error)
{
  g_autoptr(GPtrArray) all = g_ptr_array_new_with_free_func ((GDestroyNotify) fs_storage_object_free);
  g_autofree gchar *after = g_strdup (start_after);
  gboolean truncated = TRUE;

  while (truncated)
    {
      g_autoptr(GPtrArray) page = NULL;
      if (!fs_storage_list (self, prefix, NULL, after, 1000, &page, NULL, &truncated, error))
        return NULL;
      if (page->len == 0)
        break;
      g_free (after);
      after = g_strdup (((FsStorageObject *) g_ptr_array_index (page, page->len - 1))->key);
      g_ptr_array_extend_and_steal (all, g_steal_pointer (&page));
    }
  return g_steal_pointer (&all);
}

FsStorageObject *
fs_storage_stat (FsStorage *self, const gchar *key, GError **error)
{
  g_return_val_if_fail (FS_IS_STORAGE (self), NULL);
  g_return_val_if_fail (key != NULL, NULL);
  return FS_STORAGE_GET_IFACE (self)->stat (self, key, error);
}

GInputStream *
fs_storage_get (FsStorage *self, const gchar *key, guint64 offset, gint64 length, GError **error)
{
  g_return_val_if_fail (FS_IS_STORAGE (self), NULL);
  g_return_val_if_fail (key != NULL, NULL);
  return FS_STORAGE_GET_IFACE (self)->get (self, key, offset, length, error);
}

GBytes *
fs_storage_get_bytes (FsStorage *self, const gchar *key, gsize max_size, GError **error)
{
  g_autoptr(GInputStream) in = fs_storage_get (self, key, 0, -1, error);
  g_autoptr(GByteArray) buf = g_byte_array_new ();
  guint8 chunk[8192];

  if (in == NULL)
    return NULL;
  for (;;)
    {
      gssize n = g_input_stream_read (in, chunk, sizeof chunk, NULL, error);
      if (n < 0)
        return NULL;
      if (n == 0)
        break;
      if (buf->len + (gsize) n > max_size)
        {
          g_set_error (error, FS_STORAGE_ERROR, FS_STORAGE_ERROR_INVALID,
                       _("Object %s is larger than the %zu bytes expected"), key,
                       (size_t) max_size);
          return NULL;
        }
      g_byte_array_append (buf, chunk, (guint) n);
    }
  return g_byte_array_free_to_bytes (g_steal_pointer (&buf));
}

gboolean
fs_storage_put (FsStorage *self, const gchar *key, GInputStream *source,
                const gchar *expected_version, gchar **new_version, GCancellable *cancellable,
                GError **error)
{
  g_return_val_if_fail (FS_IS_STORAGE (self), FALSE);
  g_return_val_if_fail (key != NULL && *key != '\0', FALSE);
  g_return_val_if_fail (G_IS_INPUT_STREAM (source), FALSE);
  return FS_STORAGE_GET_IFACE (self)->put (self, key, source, expected_version, new_version,
                                           cancellable, error);
}

gboolean
fs_storage_put_bytes (FsStorage *self, const gchar *key, GBytes *bytes,
                      const gchar *expected_version, gchar **new_version, GError **error)
{
  g_autoptr(GInputStream) in = g_memory_input_stream_new_from_bytes (bytes);
  return fs_storage_put (self, key, in, expected_version, new_version, NULL, error);
}

gboolean
fs_storage_delete (FsStorage *self, const gchar *key, GError **error)
{
  g_return_val_if_fail (FS_IS_STORAGE (self), FALSE);
  g_return_val_if_fail (key != NULL, FALSE);
  return FS_STORAGE_GET_IFACE (self)->delete (self, key, error);
}

gboolean
fs_storage_supports_conditional_put (FsStorage *self)
{
  g_return_val_if_fail (FS_IS_STORAGE (self), FALSE);
  if (FS_STORAGE_GET_IFACE (self)->supports_conditional_put == NULL)
    return FALSE;
  return FS_STORAGE_GET_IFACE (self)->supports_conditional_put (self);
}

gchar *
fs_storage_presign (FsStorage *self, const gchar *method, const gchar *key,
                    guint expires_seconds, GError **error)
{
  FsStorageInterface *iface;

  g_return_val_if_fail (FS_IS_STORAGE (self), NULL);
  g_return_val_if_fail (method != NULL, NULL);
  iface = FS_STORAGE_GET_IFACE (self);
  if (iface->presign == NULL)
    {
      g_set_error_literal (error, FS_STORAGE_ERROR, FS_STORAGE_ERROR_NOT_SUPPORTED,
                           _("This storage cannot hand out presigned URLs"));
      return NULL;
    }
  if (!fs_storage_check_key (key, error))
    return NULL;
  return iface->presign (self, method, key, expires_seconds, error);
}
