/* Journal records: JSON round trip and the checks on what a record may name. */
#include "fs-error.h"
#include "fs-journal.h"

static void
test_path_valid (void)
{
  const struct {
    const gchar *path;
    gboolean valid;
  } rows[] = {
    { "a.txt", TRUE },
    { "dir/sub/file", TRUE },
    { "caf\xc3\xa9/na\xc3\xafve.txt", TRUE },
    { ".hidden/.x", TRUE },
    { "..hidden", TRUE },
    { "", FALSE },
    { "/etc/passwd", FALSE },
    { "../escape", FALSE },
    { "a/../../escape", FALSE },
    { "a/./b", FALSE },
    { "a//b", FALSE },
    { "a/", FALSE },
    { ".foldersync.trash/x", FALSE },
    { "d/.foldersync.tmp.abc", FALSE },
    { "bad\xff", FALSE },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (rows); i++)
    {
      g_autofree gchar *shown = g_strescape (rows[i].path, NULL);
      g_test_message ("path %s", shown);
      g_assert_cmpint (fs_journal_path_valid (rows[i].path), ==, rows[i].valid);
    }
}

static FsRecord *
sample_record (const gchar *path)
{
  FsRecord *r = fs_record_new ();
  r->version = g_strdup ("v2");
  r->replaces = g_strdup ("v1");
  r->path = g_strdup (path);
  r->kind = FS_KIND_FILE;
  r->size = 42;
  r->mtime_ns = G_GINT64_CONSTANT (1700000000123456789);
  r->mode = 0755;
  r->hash = g_strdup ("00ff");
  r->object = g_strdup ("o/ab/abc.v2");
  r->device_id = g_strdup ("dev");
  r->device_name = g_strdup ("laptop");
  r->seq = 7;
  r->time_us = 1700000000000000;
  return r;
}

static void
test_json_round_trip (void)
{
  g_autoptr(FsRecord) r = sample_record ("docs/r\xc3\xa9sum\xc3\xa9.txt");
  g_autoptr(GBytes) json = fs_record_to_json (r);
  g_autoptr(GError) error = NULL;
  g_autoptr(FsRecord) back = fs_record_from_json (json, &error);

  g_assert_no_error (error);
  g_assert_cmpstr (back->version, ==, r->version);
  g_assert_cmpstr (back->replaces, ==, r->replaces);
  g_assert_cmpstr (back->path, ==, r->path);
  g_assert_cmpint (back->kind, ==, r->kind);
  g_assert_false (back->deleted);
  g_assert_cmpuint (back->size, ==, r->size);
  g_assert_cmpint (back->mtime_ns, ==, r->mtime_ns);
  g_assert_cmpuint (back->mode, ==, r->mode);
  g_assert_cmpstr (back->hash, ==, r->hash);
  g_assert_cmpstr (back->object, ==, r->object);
  g_assert_cmpstr (back->device_id, ==, r->device_id);
  g_assert_cmpstr (back->device_name, ==, r->device_name);
  g_assert_cmpint (back->seq, ==, r->seq);
  g_assert_cmpint (back->time_us, ==, r->time_us);
  g_assert_cmpint (back->object_length, ==, -1);
  g_assert_cmpuint (back->object_offset, ==, 0);
}

/* A pack member: its range travels with the record; an impossible range is
 * refused. */
static void
test_json_pack_member (void)
{
  g_autoptr(FsRecord) r = sample_record ("a.txt");
  g_autoptr(GBytes) json = NULL;
  g_autoptr(FsRecord) back = NULL;
  g_autoptr(GError) error = NULL;
  const gchar *bad[] = { "\"object_length\": 0", "\"object_length\": -5",
                         "\"object_offset\": -1, \"object_length\": 9" };

  r->object_offset = 123456;
  r->object_length = 4242;
  json = fs_record_to_json (r);
  back = fs_record_from_json (json, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (back->object_offset, ==, 123456);
  g_assert_cmpint (back->object_length, ==, 4242);

  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autofree gchar *text = g_strdup_printf (
        "{\"format\": 1, \"version\": \"v\", \"path\": \"a\", \"kind\": 1, \"hash\": \"h\", "
        "\"object\": \"p/ab/abc\", \"device_id\": \"d\", \"seq\": 0, %s}", bad[i]);
      g_autoptr(GBytes) bytes = g_bytes_new (text, strlen (text));
      g_autoptr(GError) bad_error = NULL;
      g_autoptr(FsRecord) none = fs_record_from_json (bytes, &bad_error);
      g_assert_null (none);
      g_assert_error (bad_error, FS_CRYPTO_ERROR, FS_CRYPTO_ERROR_CORRUPT);
    }
}

static void
test_json_rejects (void)
{
  const gchar *bad_paths[] = { "../../../escaped.txt", "/abs", ".foldersync.trash/x" };
  const gchar *bad_json[] = { "[]", "{\"format\": 2}", "not json",
                              "{\"format\": 1, \"version\": \"v\", \"path\": \"a\", \"kind\": 1, "
                              "\"device_id\": \"d\", \"seq\": 0}" /* a file without object */ };

  for (gsize i = 0; i < G_N_ELEMENTS (bad_paths); i++)
    {
      g_autoptr(FsRecord) r = sample_record (bad_paths[i]);
      g_autoptr(GBytes) json = fs_record_to_json (r);
      g_autoptr(GError) error = NULL;
      g_autoptr(FsRecord) back = fs_record_from_json (json, &error);
      g_assert_null (back);
      g_assert_error (error, FS_CRYPTO_ERROR, FS_CRYPTO_ERROR_CORRUPT);
    }
  for (gsize i = 0; i < G_N_ELEMENTS (bad_json); i++)
    {
      g_autoptr(GBytes) json = g_bytes_new_static (bad_json[i], strlen (bad_json[i]));
      g_autoptr(GError) error = NULL;
      g_autoptr(FsRecord) back = fs_record_from_json (json, &error);
      g_assert_null (back);
      g_assert_nonnull (error);
    }
}

/* A segment: a JSON array of records, read back in order; an empty array,
 * or one with anything but valid records in it, is corrupt. */
static void
test_segment_json (void)
{
  g_autoptr(FsRecord) a = sample_record ("a.txt");
  g_autoptr(FsRecord) b = sample_record ("b.txt");
  g_autoptr(GBytes) ja = fs_record_to_json (a);
  g_autoptr(GBytes) jb = fs_record_to_json (b);
  g_autofree gchar *text = g_strdup_printf ("[%.*s,%.*s]", (int) g_bytes_get_size (ja),
                                            (const gchar *) g_bytes_get_data (ja, NULL),
                                            (int) g_bytes_get_size (jb),
                                            (const gchar *) g_bytes_get_data (jb, NULL));
  g_autoptr(GBytes) segment = g_bytes_new (text, strlen (text));
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) records = fs_records_from_json (segment, &error);
  const gchar *bad[] = { "[]", "[1]", "[{\"format\": 1}]", "\"text\"", "7" };

  g_assert_no_error (error);
  g_assert_cmpuint (records->len, ==, 2);
  g_assert_cmpstr (((FsRecord *) g_ptr_array_index (records, 0))->path, ==, "a.txt");
  g_assert_cmpstr (((FsRecord *) g_ptr_array_index (records, 1))->path, ==, "b.txt");
  /* A single record's reader refuses a segment. */
  g_assert_null (fs_record_from_json (segment, NULL));
  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr(GBytes) json = g_bytes_new_static (bad[i], strlen (bad[i]));
      g_autoptr(GError) bad_error = NULL;
      g_autoptr(GPtrArray) none = fs_records_from_json (json, &bad_error);
      g_assert_null (none);
      g_assert_error (bad_error, FS_CRYPTO_ERROR, FS_CRYPTO_ERROR_CORRUPT);
    }
}

static void
test_record_key (void)
{
  g_autofree gchar *key = fs_journal_record_key ("user/notes/", "abcd", 255);
  g_assert_cmpstr (key, ==, "user/notes/journal/abcd/00000000000000ff");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/journal/path-valid", test_path_valid);
  g_test_add_func ("/journal/json-round-trip", test_json_round_trip);
  g_test_add_func ("/journal/json-rejects", test_json_rejects);
  g_test_add_func ("/journal/json-pack-member", test_json_pack_member);
  g_test_add_func ("/journal/record-key", test_record_key);
  g_test_add_func ("/journal/segment-json", test_segment_json);
  return g_test_run ();
}
