/* Constructors and helpers of the shared plain data types. */
#include <string.h>

#include "fs-types.h"

gint64
fs_stat_mtime_ns (const struct stat *st)
{
  return (gint64) st->st_mtim.tv_sec * G_GINT64_CONSTANT (1000000000) + st->st_mtim.tv_nsec;
}

FsEntry *
fs_entry_new (const gchar *path, FsKind kind)
{
  FsEntry *e = g_new0 (FsEntry, 1);
  e->path = g_strdup (path);
  e->kind = kind;
  return e;
}

FsEntry *
fs_entry_copy (const FsEntry *entry)
{
  FsEntry *e;
  if (entry == NULL)
    return NULL;
  e = g_memdup2 (entry, sizeof *entry);
  e->path = g_strdup (entry->path);
  e->disk_path = g_strdup (entry->disk_path);
  e->hash = g_strdup (entry->hash);
  e->target = g_strdup (entry->target);
  e->version = g_strdup (entry->version);
  return e;
}

void
fs_entry_free (FsEntry *entry)
{
  if (entry == NULL)
    return;
  g_free (entry->path);
  g_free (entry->disk_path);
  g_free (entry->hash);
  g_free (entry->target);
  g_free (entry->version);
  g_free (entry);
}

const gchar *
fs_entry_disk_path (const FsEntry *entry)
{
  return entry->disk_path != NULL ? entry->disk_path : entry->path;
}

FsRecord *
fs_record_new (void)
{
  FsRecord *r = g_new0 (FsRecord, 1);
  r->object_length = -1;
  return r;
}

FsRecord *
fs_record_copy (const FsRecord *record)
{
  FsRecord *r;
  if (record == NULL)
    return NULL;
  r = g_memdup2 (record, sizeof *record);
  r->version = g_strdup (record->version);
  r->replaces = g_strdup (record->replaces);
  r->path = g_strdup (record->path);
  r->hash = g_strdup (record->hash);
  r->target = g_strdup (record->target);
  r->object = g_strdup (record->object);
  r->device_id = g_strdup (record->device_id);
  r->device_name = g_strdup (record->device_name);
  return r;
}

void
fs_record_free (FsRecord *record)
{
  if (record == NULL)
    return;
  g_free (record->version);
  g_free (record->replaces);
  g_free (record->path);
  g_free (record->hash);
  g_free (record->target);
  g_free (record->object);
  g_free (record->device_id);
  g_free (record->device_name);
  g_free (record);
}

gchar *
fs_hex_encode (const guint8 *data, gsize len)
{
  static const gchar digits[] = "0123456789abcdef";
  gchar *out = g_malloc (len * 2 + 1);
  for (gsize i = 0; i < len; i++)
    {
      out[2 * i] = digits[data[i] >> 4];
      out[2 * i + 1] = digits[data[i] & 0xf];
    }
  out[len * 2] = '\0';
  return out;
}

gchar *
fs_base32_encode (const guint8 *data, gsize len)
{
  static const gchar alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";
  GString *out = g_string_sized_new ((len * 8 + 4) / 5 + 1);
  guint32 buffer = 0;
  guint bits = 0;

  for (gsize i = 0; i < len; i++)
    {
      buffer = (buffer << 8) | data[i];
      bits += 8;
      while (bits >= 5)
        {
          g_string_append_c (out, alphabet[(buffer >> (bits - 5)) & 31]);
          bits -= 5;
        }
    }
  if (bits > 0)
    g_string_append_c (out, alphabet[(buffer << (5 - bits)) & 31]);
  return g_string_free (out, FALSE);
}

gchar *
fs_path_normalize (const gchar *path)
{
  gboolean ascii = TRUE;

  for (const gchar *p = path; *p != '\0' && ascii; p++)
    ascii = (guchar) *p < 0x80;
  /* ASCII is NFC already: no Unicode tables for most paths. */
  if (ascii)
    return g_strdup (path);
  if (!g_utf8_validate (path, -1, NULL))
    return NULL;
  return g_utf8_normalize (path, -1, G_NORMALIZE_NFC);
}

gboolean
fs_device_name_valid (const gchar *name)
{
  if (name == NULL || *name == '\0' || strlen (name) > 64 || !g_utf8_validate (name, -1, NULL))
    return FALSE;
  for (const gchar *p = name; *p != '\0'; p = g_utf8_next_char (p))
    {
      gunichar c = g_utf8_get_char (p);
      if (c == '/' || c == '(' || c == ')' || g_unichar_iscntrl (c))
        return FALSE;
    }
  return TRUE;
}

gint
fs_path_tree_cmp_n (const gchar *a, gsize a_len, const gchar *b, gsize b_len)
{
  gsize n = MIN (a_len, b_len);

  for (gsize i = 0; i < n; i++)
    {
      guint ca = (guchar) a[i];
      guint cb = (guchar) b[i];

      if (ca == cb)
        continue;
      /* '/' ranks below every byte, NUL included (never in a path). */
      ca = ca == '/' ? 0 : ca + 1;
      cb = cb == '/' ? 0 : cb + 1;
      return ca < cb ? -1 : 1;
    }
  return a_len < b_len ? -1 : a_len > b_len ? 1 : 0;
}

gint
fs_path_tree_cmp (const gchar *a, const gchar *b)
{
  return fs_path_tree_cmp_n (a, strlen (a), b, strlen (b));
}
