/* Journal records: JSON inside a sealed record, one storage object each. */
#include "config.h"

#include <glib/gi18n-lib.h>
#include <json-glib/json-glib.h>
#include <stdlib.h>

#include "fs-error.h"
#include "fs-journal.h"
#include "fs-json.h"

#define JOURNAL_DIR "journal/"
/* A sealed journal object: one record, or a segment of up to
 * FS_JOURNAL_SEGMENT_MAX_RECORDS (well under this). */
#define OBJECT_MAX_SIZE (8 * 1024 * 1024)

gchar *
fs_journal_record_key (const gchar *prefix, const gchar *device_id, gint64 seq)
{
  return g_strdup_printf ("%s" JOURNAL_DIR "%s/%016" G_GINT64_MODIFIER "x", prefix, device_id,
                          seq);
}

gboolean
fs_journal_path_valid (const gchar *path)
{
  g_auto(GStrv) parts = NULL;

  if (path == NULL || *path == '\0' || *path == '/' || !g_utf8_validate (path, -1, NULL))
    return FALSE;
  parts = g_strsplit (path, "/", -1);
  for (guint i = 0; parts[i] != NULL; i++)
    if (*parts[i] == '\0' || g_str_equal (parts[i], ".") || g_str_equal (parts[i], "..") ||
        g_str_has_prefix (parts[i], ".foldersync."))
      return FALSE;
  return TRUE;
}

static void
build_record (JsonBuilder *b, const FsRecord *r)
{
  json_builder_begin_object (b);
  fs_json_add_int (b, "format", 1);
  fs_json_add_string (b, "version", r->version);
  fs_json_add_string (b, "replaces", r->replaces);
  fs_json_add_string (b, "path", r->path);
  fs_json_add_int (b, "kind", r->kind);
  json_builder_set_member_name (b, "deleted");
  json_builder_add_boolean_value (b, r->deleted);
  fs_json_add_int (b, "size", (gint64) r->size);
  fs_json_add_int (b, "mtime_ns", r->mtime_ns);
  fs_json_add_int (b, "mode", r->mode);
  fs_json_add_string (b, "hash", r->hash);
  fs_json_add_string (b, "target", r->target);
  fs_json_add_string (b, "object", r->object);
  if (r->object_length > 0)
    {
      fs_json_add_int (b, "object_offset", (gint64) r->object_offset);
      fs_json_add_int (b, "object_length", r->object_length);
    }
  fs_json_add_string (b, "device_id", r->device_id);
  fs_json_add_string (b, "device_name", r->device_name);
  fs_json_add_int (b, "seq", r->seq);
  fs_json_add_int (b, "time_us", r->time_us);
  json_builder_end_object (b);
}

GBytes *
fs_record_to_json (const FsRecord *r)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();

  build_record (b, r);
  return fs_json_builder_to_bytes (b);
}

static FsRecord *
record_from_object (JsonObject *o, GError **error)
{
  g_autoptr(FsRecord) r = fs_record_new ();
  gint64 object_offset;

  if (json_object_get_int_member_with_default (o, "format", 0) != 1)
    {
      g_set_error_literal (error, FS_CRYPTO_ERROR, FS_CRYPTO_ERROR_CORRUPT,
                           _("Journal record has an unknown format version"));
      return NULL;
    }
  r->version = fs_json_dup_string (o, "version");
  r->replaces = fs_json_dup_string (o, "replaces");
  r->path = fs_json_dup_string (o, "path");
  r->kind = (FsKind) json_object_get_int_member_with_default (o, "kind", FS_KIND_NONE);
  r->deleted = json_object_get_boolean_member_with_default (o, "deleted", FALSE);
  r->size = (guint64) json_object_get_int_member_with_default (o, "size", 0);
  r->mtime_ns = json_object_get_int_member_with_default (o, "mtime_ns", 0);
  r->mode = (guint32) json_object_get_int_member_with_default (o, "mode", 0644);
  r->hash = fs_json_dup_string (o, "hash");
  r->target = fs_json_dup_string (o, "target");
  r->object = fs_json_dup_string (o, "object");
  object_offset = fs_json_get_int (o, "object_offset", 0);
  r->object_length = fs_json_get_int (o, "object_length", -1);
  r->device_id = fs_json_dup_string (o, "device_id");
  r->device_name = fs_json_dup_string (o, "device_name");
  r->seq = json_object_get_int_member_with_default (o, "seq", -1);
  r->time_us = json_object_get_int_member_with_default (o, "time_us", 0);

  if (r->path != NULL && !fs_journal_path_valid (r->path))
    {
      g_set_error_literal (error, FS_CRYPTO_ERROR, FS_CRYPTO_ERROR_CORRUPT,
                           _("Journal record names a path outside the folder"));
      return NULL;
    }
  if (r->version == NULL || r->path == NULL || r->device_id == NULL || r->seq < 0 ||
      r->kind < FS_KIND_FILE || r->kind > FS_KIND_SYMLINK ||
      (!r->deleted && r->kind == FS_KIND_FILE && (r->object == NULL || r->hash == NULL)) ||
      object_offset < 0 || r->object_length < -1 || r->object_length == 0)
    {
      g_set_error_literal (error, FS_CRYPTO_ERROR, FS_CRYPTO_ERROR_CORRUPT,
                           _("Journal record lacks required fields"));
      return NULL;
    }
  r->object_offset = (guint64) object_offset;
  return g_steal_pointer (&r);
}

FsRecord *
fs_record_from_json (GBytes *json, GError **error)
{
  g_autoptr(GPtrArray) records = fs_records_from_json (json, error);

  if (records == NULL)
    return NULL;
  if (records->len != 1)
    {
      g_set_error_literal (error, FS_CRYPTO_ERROR, FS_CRYPTO_ERROR_CORRUPT,
                           _("Journal record is not a JSON object"));
      return NULL;
    }
  return g_ptr_array_steal_index (records, 0);
}

GPtrArray *
fs_records_from_json (GBytes *json, GError **error)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GPtrArray) records = g_ptr_array_new_with_free_func ((GDestroyNotify) fs_record_free);
  gsize len = 0;
  const gchar *data = g_bytes_get_data (json, &len);
  JsonNode *root;

  if (!json_parser_load_from_data (parser, data, (gssize) len, error))
    return NULL;
  root = json_parser_get_root (parser);
  if (JSON_NODE_HOLDS_OBJECT (root))
    {
      FsRecord *r = record_from_object (json_node_get_object (root), error);
      if (r == NULL)
        return NULL;
      g_ptr_array_add (records, r);
      return g_steal_pointer (&records);
    }
  if (JSON_NODE_HOLDS_ARRAY (root) && json_array_get_length (json_node_get_array (root)) > 0)
    {
      JsonArray *array = json_node_get_array (root);
      for (guint i = 0; i < json_array_get_length (array); i++)
        {
          JsonNode *node = json_array_get_element (array, i);
          FsRecord *r;
          if (!JSON_NODE_HOLDS_OBJECT (node))
            break;
          r = record_from_object (json_node_get_object (node), error);
          if (r == NULL)
            return NULL;
          g_ptr_array_add (records, r);
        }
      if (records->len == json_array_get_length (array))
        return g_steal_pointer (&records);
    }
  g_set_error_literal (error, FS_CRYPTO_ERROR, FS_CRYPTO_ERROR_CORRUPT,
                       _("Journal object is neither a record nor a segment of records"));
  return NULL;
}

gboolean
fs_journal_append (FsStorage *storage, FsCrypto *crypto, const gchar *prefix,
                   const FsRecord *record, GError **error)
{
  const FsRecord *records[] = { record };

  return fs_journal_append_segment (storage, crypto, prefix, records, 1, error);
}

gboolean
fs_journal_append_segment (FsStorage *storage, FsCrypto *crypto, const gchar *prefix,
                           const FsRecord *const *records, guint n_records, GError **error)
{
  const FsRecord *last = records[n_records - 1];
  g_autofree gchar *key = fs_journal_record_key (prefix, last->device_id, last->seq);
  g_autoptr(GBytes) json = NULL;
  g_autoptr(GBytes) sealed = NULL;

  g_return_val_if_fail (n_records > 0, FALSE);
  if (n_records == 1)
    json = fs_record_to_json (last);
  else
    {
      g_autoptr(JsonBuilder) b = json_builder_new ();
      json_builder_begin_array (b);
      for (guint i = 0; i < n_records; i++)
        {
          g_return_val_if_fail (records[i]->seq == last->seq - (gint64) (n_records - 1 - i), FALSE);
          build_record (b, records[i]);
        }
      json_builder_end_array (b);
      json = fs_json_builder_to_bytes (b);
    }

  /* The context binds the record to its key: it cannot be moved or renumbered. */
  sealed = fs_crypto_seal_record (crypto, json, key + strlen (prefix), error);
  if (sealed == NULL)
    return FALSE;
  /* Records are write-once: where the backend can refuse an overwrite, it must. */
  return fs_storage_put_bytes (storage, key, sealed,
                               fs_storage_supports_conditional_put (storage) ? FS_STORAGE_IF_ABSENT
                                                                            : NULL,
                               NULL, error);
}

static gboolean
parse_seq (const gchar *name, gint64 *seq)
{
  gchar *end = NULL;
  guint64 v;

  if (strlen (name) != 16)
    return FALSE;
  v = g_ascii_strtoull (name, &end, 16);
  if (end == NULL || *end != '\0' || v > G_MAXINT64)
    return FALSE;
  *seq = (gint64) v;
  return TRUE;
}

gboolean
fs_journal_newest_seq (FsStorage *storage, const gchar *prefix, const gchar *device_id,
                       gint64 after, gint64 *newest, GError **error)
{
  g_autofree gchar *dir = g_strdup_printf ("%s" JOURNAL_DIR "%s/", prefix, device_id);
  g_autofree gchar *start_after = after >= 0 ? fs_journal_record_key (prefix, device_id, after)
                                             : NULL;
  g_autoptr(GPtrArray) objects = fs_storage_list_all (storage, dir, start_after, error);

  if (objects == NULL)
    return FALSE;
  *newest = after;
  for (guint i = 0; i < objects->len; i++)
    {
      FsStorageObject *obj = g_ptr_array_index (objects, i);
      gint64 seq;
      if (parse_seq (obj->key + strlen (dir), &seq))
        *newest = MAX (*newest, seq);
    }
  return TRUE;
}

static gboolean
fetch_device (FsStorage *storage, FsCrypto *crypto, const gchar *prefix, FsIndex *index,
              const gchar *device_id, gboolean audit, FsJournalStats *stats,
              GPtrArray *warnings, GError **error)
{
  g_autofree gchar *dir = g_strdup_printf ("%s" JOURNAL_DIR "%s/", prefix, device_id);
  gint64 cursor = audit ? -1 : fs_index_get_cursor (index, device_id);
  gint64 expected = cursor + 1;
  g_autofree gchar *start_after = cursor >= 0 ? fs_journal_record_key (prefix, device_id, cursor)
                                              : NULL;
  g_autoptr(GPtrArray) objects = NULL;
  gint64 newest = cursor;

  objects = fs_storage_list_all (storage, dir, start_after, error);
  if (objects == NULL)
    return FALSE;
  stats->list_requests++;

  if (!fs_index_begin (index, error))
    return FALSE;
  for (guint i = 0; i < objects->len; i++)
    {
      FsStorageObject *obj = g_ptr_array_index (objects, i);
      g_autoptr(GBytes) sealed = NULL;
      g_autoptr(GBytes) json = NULL;
      g_autoptr(GPtrArray) records = NULL;
      g_autoptr(GError) local_error = NULL;
      gint64 seq, first;

      if (!parse_seq (obj->key + strlen (dir), &seq))
        continue; /* not a record; leave it alone */
      sealed = fs_storage_get_bytes (storage, obj->key, OBJECT_MAX_SIZE, &local_error);
      if (sealed != NULL)
        json = fs_crypto_open_record (crypto, sealed, obj->key + strlen (prefix), &local_error);
      if (json != NULL)
        records = fs_records_from_json (json, &local_error);
      /* A segment's key is the seq of its last record; its records are
       * numbered consecutively up to it. */
      first = records != NULL ? seq - (gint64) records->len + 1 : seq;
      for (guint j = 0; records != NULL && j < records->len; j++)
        {
          const FsRecord *r = g_ptr_array_index (records, j);
          if (g_strcmp0 (r->device_id, device_id) != 0 || r->seq != first + (gint64) j)
            {
              g_clear_pointer (&records, g_ptr_array_unref);
              g_set_error_literal (&local_error, FS_CRYPTO_ERROR, FS_CRYPTO_ERROR_CORRUPT,
                                   _("record does not belong at its key"));
            }
        }
      if (records != NULL && first > expected)
        g_ptr_array_add (warnings,
                         g_strdup_printf ("Journal of device %s skips from record %" G_GINT64_FORMAT
                                          " to %" G_GINT64_FORMAT ": records are missing",
                                          device_id, expected, first));
      else if (records != NULL && first < expected)
        g_ptr_array_add (warnings,
                         g_strdup_printf ("Journal of device %s has records %" G_GINT64_FORMAT
                                          " to %" G_GINT64_FORMAT " twice (overlapping objects)",
                                          device_id, first, expected - 1));
      if (records == NULL)
        {
          if (g_error_matches (local_error, FS_STORAGE_ERROR, FS_STORAGE_ERROR_TRANSIENT) ||
              g_error_matches (local_error, FS_STORAGE_ERROR, FS_STORAGE_ERROR_AUTH))
            {
              fs_index_rollback (index);
              g_propagate_error (error, g_steal_pointer (&local_error));
              return FALSE;
            }
          /* Later records may depend on this one: stop this device here. */
          g_ptr_array_add (warnings, g_strdup_printf ("Journal record %s is unreadable: %s",
                                                      obj->key, local_error->message));
          break;
        }
      for (guint j = 0; j < records->len; j++)
        {
          stats->records_read++;
          if (!fs_index_add_record (index, g_ptr_array_index (records, j), error))
            {
              fs_index_rollback (index);
              return FALSE;
            }
        }
      newest = seq;
      expected = seq + 1;
    }
  if (audit)
    newest = MAX (newest, fs_index_get_cursor (index, device_id));
  else if (objects->len == 0 && cursor >= 0)
    {
      /* Nothing new: the record at the cursor must still be there, else the
       * server lost records or serves an older state (rollback). */
      g_autoptr(GError) stat_error = NULL;
      g_autoptr(FsStorageObject) last = fs_storage_stat (storage, start_after, &stat_error);
      if (last == NULL && g_error_matches (stat_error, FS_STORAGE_ERROR, FS_STORAGE_ERROR_NOT_FOUND))
        g_ptr_array_add (warnings,
                         g_strdup_printf ("Journal of device %s no longer has record %" G_GINT64_FORMAT
                                          ": the server lost records or rolled back",
                                          device_id, cursor));
    }
  if (newest != cursor && !fs_index_set_cursor (index, device_id, newest, error))
    {
      fs_index_rollback (index);
      return FALSE;
    }
  return fs_index_commit (index, error);
}

gboolean
fs_journal_fetch (FsStorage *storage, FsCrypto *crypto, const gchar *prefix, FsIndex *index,
                  gboolean audit, FsJournalStats *stats, GPtrArray *warnings, GError **error)
{
  g_autofree gchar *journal = g_strconcat (prefix, JOURNAL_DIR, NULL);
  g_autoptr(GPtrArray) devices = g_ptr_array_new_with_free_func (g_free);
  g_autofree gchar *after = NULL;
  gboolean truncated = TRUE;

  while (truncated)
    {
      g_autoptr(GPtrArray) objects = NULL;
      g_autoptr(GPtrArray) prefixes = NULL;
      if (!fs_storage_list (storage, journal, "/", after, 1000, &objects, &prefixes, &truncated,
                            error))
        return FALSE;
      stats->list_requests++;
      if (prefixes == NULL || prefixes->len == 0)
        break;
      for (guint i = 0; i < prefixes->len; i++)
        {
          const gchar *p = g_ptr_array_index (prefixes, i);
          g_autofree gchar *id = g_strndup (p + strlen (journal), strlen (p) - strlen (journal) - 1);
          g_ptr_array_add (devices, g_steal_pointer (&id));
        }
      g_free (after);
      after = g_strdup (g_ptr_array_index (prefixes, prefixes->len - 1));
    }

  /* A device we read before must still be there, even with nothing new. */
  {
    g_autoptr(GPtrArray) known = fs_index_list_cursor_devices (index, error);
    if (known == NULL)
      return FALSE;
    for (guint i = 0; i < known->len; i++)
      if (!g_ptr_array_find_with_equal_func (devices, g_ptr_array_index (known, i), g_str_equal, NULL))
        g_ptr_array_add (devices, g_strdup (g_ptr_array_index (known, i)));
  }

  stats->devices = devices->len;
  for (guint i = 0; i < devices->len; i++)
    if (!fetch_device (storage, crypto, prefix, index, g_ptr_array_index (devices, i), audit,
                       stats, warnings, error))
      return FALSE;
  return TRUE;
}
