/* Unit tests of the pairing-token plugin (FsPairing) against storage-local in
 * a temp dir: round trips, the token's check character (every substitution
 * and transposition), expiry, single use, cleanup, tampering, the async
 * wrappers, the vectors of docs/format.md, and that no token reaches an
 * error message or the log. Argon2id timings are printed.
 *
 * A counting FsStorage wraps storage-local, so a test can prove a malformed
 * token makes no request at all. The test carries its own reference of the
 * token check and the key derivation (from docs/format.md), so the plugin is
 * checked against the spec as written.
 *
 * FOLDERSYNC_TEST_ARGON2_MEMORY_KIB lowers Argon2id's memory for the tests
 * that do not check the format (e.g. under sanitizers); the vector and timing
 * tests always use the format's 64 MiB. */
#include <ftw.h>
#include <stdlib.h>
#include <string.h>

#include <gcrypt.h>
#include <gio/gio.h>
#include <glib/gstdio.h>

#include "fs-test-vectors.h"
#include "fs-error.h"
#include "fs-gcrypt.h"
#include "fs-pairing.h"
#include "fs-plugin-loader.h"
#include "fs-storage.h"

#define ALPHABET "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
#define AREA "foldersync-pairing/"
#define FORMAT_MEMORY_KIB (64 * 1024)

/* ---- secrets that must never be printed ------------------------------------ */

static GMutex secrets_lock;
static GPtrArray *secrets;  /* every token the tests used, in the forms to look for */
static GPtrArray *log_lines; /* every log message, debug included */

static void
remember_token (const gchar *token)
{
  g_autofree gchar *plain = NULL;
  GString *s = g_string_new (NULL);

  for (const gchar *p = token; *p != '\0'; p++)
    if (*p != '-')
      g_string_append_c (s, g_ascii_toupper (*p));
  plain = g_string_free (s, FALSE);

  /* Kept upper case; texts are compared upper-cased. */
  g_mutex_lock (&secrets_lock);
  g_ptr_array_add (secrets, g_ascii_strup (token, -1));
  g_ptr_array_add (secrets, g_strdup (plain));
  /* The 11 secret symbols without the check symbol. */
  g_ptr_array_add (secrets, g_strndup (plain, 11));
  g_mutex_unlock (&secrets_lock);
}

static void
assert_no_secret_in (const gchar *text)
{
  g_autofree gchar *upper = g_ascii_strup (text, -1);

  g_mutex_lock (&secrets_lock);
  for (guint i = 0; i < secrets->len; i++)
    if (strstr (upper, g_ptr_array_index (secrets, i)) != NULL)
      g_error ("a token appears in: %s", text);
  g_mutex_unlock (&secrets_lock);
}

static GLogWriterOutput
record_log (GLogLevelFlags level, const GLogField *fields, gsize n_fields, gpointer user_data)
{
  for (gsize i = 0; i < n_fields; i++)
    if (g_strcmp0 (fields[i].key, "MESSAGE") == 0)
      {
        g_mutex_lock (&secrets_lock);
        g_ptr_array_add (log_lines, fields[i].length < 0
                                      ? g_strdup (fields[i].value)
                                      : g_strndup (fields[i].value, fields[i].length));
        g_mutex_unlock (&secrets_lock);
      }
  if (level & G_LOG_LEVEL_DEBUG)
    return G_LOG_WRITER_HANDLED;
  return g_log_writer_default (level, fields, n_fields, user_data);
}

static void
assert_logs_clean (void)
{
  g_autoptr (GPtrArray) lines = NULL;

  lines = g_ptr_array_new_with_free_func (g_free);
  g_mutex_lock (&secrets_lock);
  for (guint i = 0; i < log_lines->len; i++)
    g_ptr_array_add (lines, g_strdup (g_ptr_array_index (log_lines, i)));
  g_mutex_unlock (&secrets_lock);
  for (guint i = 0; i < lines->len; i++)
    assert_no_secret_in (g_ptr_array_index (lines, i));
}

/* Asserts @error is @domain/@code and that its message holds no token. */
static void
assert_error (const GError *error, GQuark domain, gint code)
{
  g_assert_error (error, domain, code);
  g_assert_nonnull (error->message);
  g_assert_cmpstr (error->message, !=, "");
  assert_no_secret_in (error->message);
}

/* ---- a counting FsStorage around storage-local ----------------------------- */

#define TEST_TYPE_COUNTING_STORAGE (test_counting_storage_get_type ())
G_DECLARE_FINAL_TYPE (TestCountingStorage, test_counting_storage, TEST, COUNTING_STORAGE,
                      GObject)

struct _TestCountingStorage {
  GObject parent_instance;
  FsStorage *inner;
  gint requests;
};

static void test_counting_storage_iface_init (FsStorageInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (TestCountingStorage, test_counting_storage, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (FS_TYPE_STORAGE,
                                                      test_counting_storage_iface_init))

#define INNER(s) (TEST_COUNTING_STORAGE (s)->inner)
#define COUNT(s) g_atomic_int_inc (&TEST_COUNTING_STORAGE (s)->requests)

static gboolean
counting_configure (FsStorage *self, GHashTable *settings, GError **error)
{
  return fs_storage_configure (INNER (self), settings, error);
}

static gboolean
counting_list (FsStorage *self, const gchar *prefix, const gchar *delimiter,
               const gchar *start_after, guint max_keys, GPtrArray **objects,
               GPtrArray **common_prefixes, gboolean *truncated, GError **error)
{
  COUNT (self);
  return fs_storage_list (INNER (self), prefix, delimiter, start_after, max_keys, objects,
                          common_prefixes, truncated, error);
}

static FsStorageObject *
counting_stat (FsStorage *self, const gchar *key, GError **error)
{
  COUNT (self);
  return fs_storage_stat (INNER (self), key, error);
}

static GInputStream *
counting_get (FsStorage *self, const gchar *key, guint64 offset, gint64 length, GError **error)
{
  COUNT (self);
  return fs_storage_get (INNER (self), key, offset, length, error);
}

static gboolean
counting_put (FsStorage *self, const gchar *key, GInputStream *source,
              const gchar *expected_version, gchar **new_version, GCancellable *cancellable,
              GError **error)
{
  COUNT (self);
  return fs_storage_put (INNER (self), key, source, expected_version, new_version, cancellable,
                         error);
}

static gboolean
counting_delete (FsStorage *self, const gchar *key, GError **error)
{
  COUNT (self);
  return fs_storage_delete (INNER (self), key, error);
}

static gboolean
counting_supports_conditional_put (FsStorage *self)
{
  return fs_storage_supports_conditional_put (INNER (self));
}

static void
test_counting_storage_iface_init (FsStorageInterface *iface)
{
  iface->configure = counting_configure;
  iface->list = counting_list;
  iface->stat = counting_stat;
  iface->get = counting_get;
  iface->put = counting_put;
  iface->delete = counting_delete;
  iface->supports_conditional_put = counting_supports_conditional_put;
}

static void
test_counting_storage_finalize (GObject *object)
{
  g_clear_object (&TEST_COUNTING_STORAGE (object)->inner);
  G_OBJECT_CLASS (test_counting_storage_parent_class)->finalize (object);
}

static void
test_counting_storage_class_init (TestCountingStorageClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = test_counting_storage_finalize;
}

static void
test_counting_storage_init (TestCountingStorage *self)
{
}

/* ---- fixture ---------------------------------------------------------------- */

typedef struct {
  gchar *root;
  TestCountingStorage *counting;
  FsStorage *storage; /* = counting */
  FsPairing *pairing;
} Fixture;

static int
rm_rf_cb (const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
  return remove (path);
}

static guint
test_memory_kib (void)
{
  const gchar *env = g_getenv ("FOLDERSYNC_TEST_ARGON2_MEMORY_KIB");
  return env != NULL ? (guint) g_ascii_strtoull (env, NULL, 10) : 0;
}

static FsPairing *
new_pairing (guint memory_kib)
{
  g_autoptr (GError) error = NULL;
  GObject *obj = fs_plugin_new_instance ("pairing-token", FS_TYPE_PAIRING, &error);

  g_assert_no_error (error);
  g_assert_nonnull (obj);
  if (memory_kib != 0)
    g_object_set (obj, "argon2-memory-kib", memory_kib, NULL);
  return FS_PAIRING (obj);
}

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GHashTable) settings
    = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  GObject *inner;

  f->root = g_dir_make_tmp ("fs-pairing-XXXXXX", &error);
  g_assert_no_error (error);
  g_hash_table_insert (settings, g_strdup ("root"), g_strdup (f->root));
  inner = fs_plugin_new_instance ("storage-local", FS_TYPE_STORAGE, &error);
  g_assert_no_error (error);
  g_assert_true (fs_storage_configure (FS_STORAGE (inner), settings, &error));
  g_assert_no_error (error);
  f->counting = g_object_new (TEST_TYPE_COUNTING_STORAGE, NULL);
  f->counting->inner = FS_STORAGE (inner);
  f->storage = FS_STORAGE (f->counting);
  f->pairing = new_pairing (test_memory_kib ());
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  assert_logs_clean ();
  g_clear_object (&f->pairing);
  g_clear_object (&f->counting);
  nftw (f->root, rm_rf_cb, 16, FTW_DEPTH | FTW_PHYS);
  g_free (f->root);
}

static GBytes *
sample_envelope (void)
{
  static const gchar json[]
    = "{\"key\":\"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\","
      "\"bucket\":\"notes\",\"prefix\":\"alice/notes/\",\"endpoint\":\"https://s3.example\"}";
  return g_bytes_new_static (json, sizeof json - 1);
}

static gchar *
issue (Fixture *f, guint ttl, guint64 *expires, gchar **object_key)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) envelope = sample_envelope ();
  gchar *token = fs_pairing_issue (f->pairing, f->storage, envelope, ttl, expires, object_key,
                                   &error);

  g_assert_no_error (error);
  g_assert_nonnull (token);
  remember_token (token);
  return token;
}

static gboolean
object_exists (Fixture *f, const gchar *key)
{
  g_autofree gchar *path = g_build_filename (f->root, key, NULL);
  return g_file_test (path, G_FILE_TEST_EXISTS);
}

static guint
count_area (Fixture *f)
{
  g_autofree gchar *dir = g_build_filename (f->root, AREA, NULL);
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  guint n = 0;

  while (d != NULL && g_dir_read_name (d) != NULL)
    n++;
  return n;
}

static gint
compare_names (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const gchar *const *) a, *(const gchar *const *) b);
}

/* A recursive listing of the store (names and sizes), to prove it untouched. */
static void
snapshot_dir (const gchar *dir, const gchar *rel, GString *out)
{
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  const gchar *name;

  while (d != NULL && (name = g_dir_read_name (d)) != NULL)
    g_ptr_array_add (names, g_strdup (name));
  g_ptr_array_sort (names, compare_names);
  for (guint i = 0; i < names->len; i++)
    {
      const gchar *n = g_ptr_array_index (names, i);
      g_autofree gchar *path = g_build_filename (dir, n, NULL);
      g_autofree gchar *sub = g_build_filename (rel, n, NULL);
      GStatBuf st;

      g_assert_cmpint (g_stat (path, &st), ==, 0);
      g_string_append_printf (out, "%s %ld\n", sub, (long) st.st_size);
      if (S_ISDIR (st.st_mode))
        snapshot_dir (path, sub, out);
    }
}

static gchar *
snapshot (Fixture *f)
{
  GString *out = g_string_new (NULL);
  snapshot_dir (f->root, "", out);
  return g_string_free (out, FALSE);
}

/* ---- reference token check (docs/format.md) ------------------------------- */

static guint8
ref_mul_x (guint8 v)
{
  v <<= 1;
  return (v & 0x20) ? v ^ 0x25 : v;
}

static guint8
ref_syndrome (const guint8 *sym, gsize n)
{
  guint8 s = 0;
  for (gsize i = 0; i < n; i++)
    s = ref_mul_x (s) ^ sym[i];
  return s;
}

static gchar *
ref_format (const guint8 sym[12])
{
  GString *s = g_string_new (NULL);
  for (guint i = 0; i < 12; i++)
    {
      if (i > 0 && i % 4 == 0)
        g_string_append_c (s, '-');
      g_string_append_c (s, ALPHABET[sym[i]]);
    }
  return g_string_free (s, FALSE);
}

static void
ref_random_token (GRand *rand, guint8 sym[12])
{
  for (guint i = 0; i < 11; i++)
    sym[i] = (guint8) g_rand_int_range (rand, 0, 32);
  sym[11] = ref_mul_x (ref_syndrome (sym, 11));
  g_assert_cmpuint (ref_syndrome (sym, 12), ==, 0);
}

/* ---- tests ------------------------------------------------------------------ */

static void
test_round_trip (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) envelope = sample_envelope ();
  g_autoptr (GBytes) opened = NULL;
  g_autoptr (GRegex) shape = g_regex_new ("^[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){2}$", 0,
                                          0, NULL);
  g_autofree gchar *token = NULL;
  g_autofree gchar *object_key = NULL;
  g_autofree gchar *normalized = NULL;
  guint64 expires = 0;
  guint64 before = g_get_real_time () / G_USEC_PER_SEC;

  token = issue (f, 300, &expires, &object_key);
  g_assert_true (g_regex_match (shape, token, 0, NULL));
  g_assert_cmpuint (expires, >=, before + 300);
  g_assert_cmpuint (expires, <=, g_get_real_time () / G_USEC_PER_SEC + 300);
  g_assert_true (g_str_has_prefix (object_key, AREA));
  g_assert_cmpuint (strlen (object_key), ==, strlen (AREA) + 26);
  g_assert_true (object_exists (f, object_key));
  g_assert_cmpuint (count_area (f), ==, 1);

  g_assert_true (fs_pairing_check_token (f->pairing, token, &normalized, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (normalized, ==, token);

  /* The envelope on the storage holds no plaintext. */
  {
    g_autofree gchar *path = g_build_filename (f->root, object_key, NULL);
    g_autofree gchar *raw = NULL;
    gsize raw_len = 0;
    g_assert_true (g_file_get_contents (path, &raw, &raw_len, NULL));
    g_assert_cmpuint (raw_len, ==, g_bytes_get_size (envelope) + 40);
    g_assert_null (g_strstr_len (raw, raw_len, "bucket"));
    g_assert_null (g_strstr_len (raw, raw_len, "000102030405"));
  }

  opened = fs_pairing_redeem (f->pairing, f->storage, token, &error);
  g_assert_no_error (error);
  g_assert_true (g_bytes_equal (opened, envelope));
  g_assert_false (object_exists (f, object_key));
  g_assert_cmpuint (count_area (f), ==, 0);

  /* The plugin's debug messages reach the recorder, so the check of the log
   * in the teardown covers them. */
  {
    gboolean seen = FALSE;
    g_mutex_lock (&secrets_lock);
    for (guint i = 0; i < log_lines->len; i++)
      seen |= strstr (g_ptr_array_index (log_lines, i), "Redeemed and deleted") != NULL;
    g_mutex_unlock (&secrets_lock);
    g_assert_true (seen);
  }
}

static void
test_second_redeem (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) first = NULL;
  g_autoptr (GBytes) second = NULL;
  g_autofree gchar *token = issue (f, 300, NULL, NULL);

  first = fs_pairing_redeem (f->pairing, f->storage, token, &error);
  g_assert_no_error (error);
  g_assert_nonnull (first);
  second = fs_pairing_redeem (f->pairing, f->storage, token, &error);
  g_assert_null (second);
  assert_error (error, FS_PAIRING_ERROR, FS_PAIRING_ERROR_NOT_FOUND);
  g_test_message ("second redeem: %s", error->message);
}

static void
test_case_and_dashes (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) opened = NULL;
  g_autoptr (GBytes) envelope = sample_envelope ();
  g_autofree gchar *token = issue (f, 300, NULL, NULL);
  g_autofree gchar *lower = g_ascii_strdown (token, -1);
  g_autoptr (GString) bare = g_string_new (NULL);
  g_autoptr (GString) aliased = g_string_new (NULL);
  g_autoptr (GString) spaced = g_string_new ("  ");
  const gchar *variants[5];

  for (const gchar *p = token; *p != '\0'; p++)
    {
      if (*p == '-')
        continue;
      g_string_append_c (bare, g_ascii_tolower (*p));
      /* Crockford's aliases: I and L for 1, O for 0. */
      if (*p == '1')
        g_string_append_c (aliased, bare->len % 2 ? 'l' : 'I');
      else if (*p == '0')
        g_string_append_c (aliased, bare->len % 2 ? 'o' : 'O');
      else
        g_string_append_c (aliased, *p);
      if (bare->len % 3 == 0)
        g_string_append (aliased, "--");
      g_string_append_c (spaced, *p);
      if (bare->len == 4 || bare->len == 8)
        g_string_append_c (spaced, ' ');
    }
  g_string_append (spaced, " \n");
  variants[0] = lower;
  variants[1] = bare->str;
  variants[2] = aliased->str;
  variants[3] = spaced->str;
  variants[4] = NULL;

  for (guint i = 0; variants[i] != NULL; i++)
    {
      g_autofree gchar *normalized = NULL;
      g_assert_true (fs_pairing_check_token (f->pairing, variants[i], &normalized, &error));
      g_assert_no_error (error);
      g_assert_cmpstr (normalized, ==, token);
    }
  /* Lowercase, no dashes, and aliases where the token has a 0 or 1. */
  opened = fs_pairing_redeem (f->pairing, f->storage, aliased->str, &error);
  g_assert_no_error (error);
  g_assert_true (g_bytes_equal (opened, envelope));
}

/* Redeems @text, expects INVALID and no storage request at all. */
static void
assert_rejected_locally (Fixture *f, const gchar *text)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) opened = NULL;
  gint before = f->counting->requests;

  opened = fs_pairing_redeem (f->pairing, f->storage, text, &error);
  g_assert_null (opened);
  assert_error (error, FS_PAIRING_ERROR, FS_PAIRING_ERROR_INVALID);
  g_assert_cmpint (f->counting->requests, ==, before);
}

static void
test_substitutions (Fixture *f, gconstpointer data)
{
  g_autoptr (GRand) rand = g_rand_new_with_seed (20260501);
  g_autofree gchar *issued = issue (f, 300, NULL, NULL);
  g_autofree gchar *before = snapshot (f);
  guint tokens = 0, tried = 0;

  f->counting->requests = 0;
  /* The issued token, then random valid ones built by the reference check. */
  for (guint t = 0; t < 200; t++)
    {
      guint8 sym[12];
      g_autofree gchar *token = NULL;
      g_autoptr (GError) error = NULL;

      if (t == 0)
        {
          g_autofree gchar *bare = NULL;
          GString *s = g_string_new (NULL);
          for (const gchar *p = issued; *p != '\0'; p++)
            if (*p != '-')
              g_string_append_c (s, *p);
          bare = g_string_free (s, FALSE);
          for (guint i = 0; i < 12; i++)
            sym[i] = (guint8) (strchr (ALPHABET, bare[i]) - ALPHABET);
          g_assert_cmpuint (ref_syndrome (sym, 12), ==, 0);
        }
      else
        ref_random_token (rand, sym);
      token = ref_format (sym);
      remember_token (token);
      g_assert_true (fs_pairing_check_token (f->pairing, token, NULL, &error));
      g_assert_no_error (error);
      tokens++;

      for (guint pos = 0; pos < 12; pos++)
        for (guint v = 0; v < 32; v++)
          {
            guint8 bad[12];
            g_autofree gchar *text = NULL;

            if (v == sym[pos])
              continue;
            memcpy (bad, sym, sizeof bad);
            bad[pos] = (guint8) v;
            text = ref_format (bad);
            /* Every one through redeem on the issued token; the rest locally. */
            if (t == 0)
              assert_rejected_locally (f, text);
            else
              {
                g_autoptr (GError) e = NULL;
                g_assert_false (fs_pairing_check_token (f->pairing, text, NULL, &e));
                assert_error (e, FS_PAIRING_ERROR, FS_PAIRING_ERROR_INVALID);
              }
            tried++;
          }
    }
  g_test_message ("%u single-character substitutions of %u tokens: all rejected as INVALID",
                  tried, tokens);
  g_assert_cmpint (f->counting->requests, ==, 0);
  {
    g_autofree gchar *after = snapshot (f);
    g_assert_cmpstr (before, ==, after);
  }
}

static void
test_transpositions (Fixture *f, gconstpointer data)
{
  g_autoptr (GRand) rand = g_rand_new_with_seed (7);
  guint adjacent = 0, distant = 0;

  f->counting->requests = 0;
  for (guint t = 0; t < 500; t++)
    {
      guint8 sym[12];
      g_autofree gchar *token = NULL;

      ref_random_token (rand, sym);
      token = ref_format (sym);
      remember_token (token);
      for (guint i = 0; i < 12; i++)
        for (guint j = i + 1; j < 12; j++)
          {
            guint8 bad[12];
            g_autofree gchar *text = NULL;

            if (sym[i] == sym[j])
              continue;
            memcpy (bad, sym, sizeof bad);
            bad[i] = sym[j];
            bad[j] = sym[i];
            text = ref_format (bad);
            if (j == i + 1 && t < 20)
              assert_rejected_locally (f, text);
            else
              g_assert_false (fs_pairing_check_token (f->pairing, text, NULL, NULL));
            if (j == i + 1)
              adjacent++;
            else
              distant++;
          }
    }
  g_test_message ("%u adjacent and %u non-adjacent transpositions: all rejected", adjacent,
                  distant);
  g_assert_cmpint (f->counting->requests, ==, 0);
}

/* What the check symbol cannot promise: two independent typos pass 1 in 32. */
static void
test_double_errors (Fixture *f, gconstpointer data)
{
  g_autoptr (GRand) rand = g_rand_new_with_seed (11);
  guint passed = 0, total = 20000;

  for (guint t = 0; t < total; t++)
    {
      guint8 sym[12];
      guint i = g_rand_int_range (rand, 0, 12);
      guint j = (i + g_rand_int_range (rand, 1, 12)) % 12;
      g_autofree gchar *text = NULL;

      ref_random_token (rand, sym);
      sym[i] = (sym[i] + g_rand_int_range (rand, 1, 32)) % 32;
      sym[j] = (sym[j] + g_rand_int_range (rand, 1, 32)) % 32;
      text = ref_format (sym);
      if (fs_pairing_check_token (f->pairing, text, NULL, NULL))
        passed++;
    }
  g_test_message ("two substituted characters: %u of %u (%.2f%%) pass the check (1/32 = 3.1%%)",
                  passed, total, 100.0 * passed / total);
  g_assert_cmpuint (passed, <, total / 20);
}

static void
test_malformed (Fixture *f, gconstpointer data)
{
  static const gchar *bad[] = {
    "",
    "----",
    "7KQ2-M9XD-4HR",        /* 11 */
    "7KQ2-M9XD-4HRTT",      /* 13 */
    "7KQ2-M9XD-4HRU",       /* U */
    "7KQ2-M9XD-4HR*",
    "7KQ2_M9XD_4HRT",
    "7KQ2-M9XD-4HR\xc3\xa9", /* é */
    "7KQ2-M9XD-4HR\xff",     /* not UTF-8 */
    "7KQ2/M9XD/4HRT",
    "https://example.com/7KQ2-M9XD-4HRT",
  };
  g_autofree gchar *before = snapshot (f);

  f->counting->requests = 0;
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr (GError) error = NULL;
      g_assert_false (fs_pairing_check_token (f->pairing, bad[i], NULL, &error));
      g_assert_error (error, FS_PAIRING_ERROR, FS_PAIRING_ERROR_INVALID);
      g_assert_true (g_str_has_prefix (error->message, "Invalid pairing token: "));
      g_test_message ("%s", error->message);
      assert_rejected_locally (f, bad[i]);
    }
  {
    g_autoptr (GError) error = NULL;
    g_assert_false (fs_pairing_check_token (f->pairing, "7KQ2-M9XD-4HRU", NULL, &error));
    g_assert_nonnull (strstr (error->message, "character 14 is a U"));
  }
  g_assert_cmpint (f->counting->requests, ==, 0);
  {
    g_autofree gchar *after = snapshot (f);
    g_assert_cmpstr (before, ==, after);
  }
}

static void
test_wrong_token_not_found (Fixture *f, gconstpointer data)
{
  g_autoptr (GRand) rand = g_rand_new ();
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) opened = NULL;
  g_autofree gchar *issued = issue (f, 300, NULL, NULL);
  g_autofree gchar *other = NULL;
  guint8 sym[12];

  /* A token that passes the check but was never issued (two typos). */
  ref_random_token (rand, sym);
  other = ref_format (sym);
  remember_token (other);
  opened = fs_pairing_redeem (f->pairing, f->storage, other, &error);
  g_assert_null (opened);
  assert_error (error, FS_PAIRING_ERROR, FS_PAIRING_ERROR_NOT_FOUND);
  g_assert_cmpuint (count_area (f), ==, 1);
}

static void
test_expired (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) opened = NULL;
  g_autofree gchar *object_key = NULL;
  g_autofree gchar *token = issue (f, 1, NULL, &object_key);

  g_assert_true (object_exists (f, object_key));
  g_usleep (2 * G_USEC_PER_SEC);
  opened = fs_pairing_redeem (f->pairing, f->storage, token, &error);
  g_assert_null (opened);
  assert_error (error, FS_PAIRING_ERROR, FS_PAIRING_ERROR_EXPIRED);
  g_test_message ("%s", error->message);
  g_assert_false (object_exists (f, object_key));
  g_clear_error (&error);

  /* And then it is simply gone. */
  opened = fs_pairing_redeem (f->pairing, f->storage, token, &error);
  assert_error (error, FS_PAIRING_ERROR, FS_PAIRING_ERROR_NOT_FOUND);
}

static void
test_cleanup (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) opened = NULL;
  g_autoptr (GBytes) foreign = g_bytes_new_static ("FSP9 a newer format we must not delete....",
                                                   42);
  g_autoptr (GBytes) tiny = g_bytes_new_static ("x", 1);
  g_autofree gchar *key_a = NULL, *key_b = NULL, *key_live = NULL;
  /* Issued last and with a few seconds, so nothing expires before the first
   * cleanup even on a slow machine (each issue derives a key). */
  g_autofree gchar *live = issue (f, 300, NULL, &key_live);
  g_autofree gchar *a = issue (f, 3, NULL, &key_a);
  g_autofree gchar *b = issue (f, 3, NULL, &key_b);
  guint removed = 99;

  g_assert_true (fs_storage_put_bytes (f->storage, AREA "zzzz-foreign", foreign, NULL, NULL,
                                       &error));
  g_assert_true (fs_storage_put_bytes (f->storage, AREA "tiny", tiny, NULL, NULL, &error));
  g_assert_no_error (error);

  /* Nothing has expired yet. */
  g_assert_true (fs_pairing_cleanup (f->pairing, f->storage, &removed, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (removed, ==, 0);
  g_assert_cmpuint (count_area (f), ==, 5);

  g_usleep (4 * G_USEC_PER_SEC);
  g_assert_true (fs_pairing_cleanup (f->pairing, f->storage, &removed, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (removed, ==, 2);
  g_assert_false (object_exists (f, key_a));
  g_assert_false (object_exists (f, key_b));
  g_assert_true (object_exists (f, key_live));
  g_assert_true (object_exists (f, AREA "zzzz-foreign"));
  g_assert_true (object_exists (f, AREA "tiny"));

  opened = fs_pairing_redeem (f->pairing, f->storage, live, &error);
  g_assert_no_error (error);
  g_assert_nonnull (opened);

  /* An empty or missing pairing area is fine. */
  g_assert_true (fs_pairing_cleanup (f->pairing, f->storage, &removed, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (removed, ==, 0);
}

static GBytes *
read_object (Fixture *f, const gchar *key)
{
  g_autoptr (GError) error = NULL;
  GBytes *bytes = fs_storage_get_bytes (f->storage, key, 1 << 20, &error);
  g_assert_no_error (error);
  return bytes;
}

static void
write_object (Fixture *f, const gchar *key, const guint8 *data, gsize len)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) bytes = g_bytes_new (data, len);
  g_assert_true (fs_storage_put_bytes (f->storage, key, bytes, NULL, NULL, &error));
  g_assert_no_error (error);
}

static void
test_tampered (Fixture *f, gconstpointer data)
{
  g_autofree gchar *object_key = NULL;
  g_autofree gchar *token = issue (f, 300, NULL, &object_key);
  g_autoptr (GBytes) original = read_object (f, object_key);
  gsize len = g_bytes_get_size (original);
  const guint8 *orig = g_bytes_get_data (original, NULL);
  /* magic, expiry (low byte: a later expiry), nonce, ciphertext, tag */
  const gsize flips[] = { 0, 11, 12, 24, 60, len - 1 };
  g_autoptr (GBytes) opened = NULL;
  g_autoptr (GError) error = NULL;

  for (guint i = 0; i < G_N_ELEMENTS (flips) + 3; i++)
    {
      g_autofree guint8 *bad = g_memdup2 (orig, len);
      gsize bad_len = len;
      g_autoptr (GBytes) out = NULL;
      g_autoptr (GError) e = NULL;

      if (i < G_N_ELEMENTS (flips))
        bad[flips[i]] ^= 0x01;
      else if (i == G_N_ELEMENTS (flips))
        bad_len = len - 1; /* truncated */
      else if (i == G_N_ELEMENTS (flips) + 1)
        bad_len = 39; /* shorter than any envelope */
      else
        memset (bad + 4, 0xff, 8); /* expiry pushed to the end of time */
      write_object (f, object_key, bad, bad_len);
      out = fs_pairing_redeem (f->pairing, f->storage, token, &e);
      g_assert_null (out);
      assert_error (e, FS_PAIRING_ERROR, FS_PAIRING_ERROR_FAILED);
      if (i == 0 || i == 2)
        g_test_message ("%s", e->message);
      /* A refused envelope is left for the issuer's cleanup. */
      g_assert_true (object_exists (f, object_key));
    }

  /* Moved to another lookup id: the name is in the associated data. */
  {
    g_autofree gchar *other_key = NULL;
    g_autofree gchar *other = issue (f, 300, NULL, &other_key);
    g_autoptr (GBytes) out = NULL;
    g_autoptr (GError) e = NULL;

    write_object (f, other_key, orig, len);
    out = fs_pairing_redeem (f->pairing, f->storage, other, &e);
    g_assert_null (out);
    assert_error (e, FS_PAIRING_ERROR, FS_PAIRING_ERROR_FAILED);
  }

  /* Restored, it opens. */
  write_object (f, object_key, orig, len);
  opened = fs_pairing_redeem (f->pairing, f->storage, token, &error);
  g_assert_no_error (error);
  g_assert_nonnull (opened);
}

static void
test_limits (Fixture *f, gconstpointer data)
{
  g_autoptr (GBytes) envelope = sample_envelope ();
  g_autofree guint8 *big_data = g_malloc0 (FS_PAIRING_MAX_ENVELOPE + 1);
  g_autoptr (GBytes) big = g_bytes_new_take (g_steal_pointer (&big_data),
                                             FS_PAIRING_MAX_ENVELOPE + 1);
  g_autoptr (GBytes) empty = g_bytes_new_static ("", 0);
  g_autoptr (GBytes) opened = NULL;
  const guint bad_ttl[] = { 0, FS_PAIRING_MAX_TTL + 1, G_MAXUINT };
  g_autoptr (GError) error = NULL;
  g_autofree gchar *token = NULL;

  f->counting->requests = 0;
  for (guint i = 0; i < G_N_ELEMENTS (bad_ttl); i++)
    {
      g_autoptr (GError) e = NULL;
      g_assert_null (fs_pairing_issue (f->pairing, f->storage, envelope, bad_ttl[i], NULL, NULL,
                                       &e));
      assert_error (e, FS_PAIRING_ERROR, FS_PAIRING_ERROR_INVALID);
    }
  g_assert_null (fs_pairing_issue (f->pairing, f->storage, big, 60, NULL, NULL, &error));
  assert_error (error, FS_PAIRING_ERROR, FS_PAIRING_ERROR_INVALID);
  g_assert_cmpint (f->counting->requests, ==, 0);
  g_clear_error (&error);

  /* An empty envelope is a valid one. */
  token = fs_pairing_issue (f->pairing, f->storage, empty, FS_PAIRING_MAX_TTL, NULL, NULL,
                            &error);
  g_assert_no_error (error);
  remember_token (token);
  opened = fs_pairing_redeem (f->pairing, f->storage, token, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_bytes_get_size (opened), ==, 0);
}

typedef struct {
  GMainLoop *loop;
  GAsyncResult *result;
} AsyncWait;

static void
async_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  AsyncWait *w = user_data;
  w->result = g_object_ref (result);
  g_main_loop_quit (w->loop);
}

static GAsyncResult *
async_wait (AsyncWait *w)
{
  g_main_loop_run (w->loop);
  return w->result;
}

static void
test_async (Fixture *f, gconstpointer data)
{
  g_autoptr (GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  g_autoptr (GBytes) envelope = sample_envelope ();
  g_autoptr (GBytes) opened = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GCancellable) cancelled = g_cancellable_new ();
  g_autofree gchar *token = NULL;
  g_autofree gchar *object_key = NULL;
  guint64 expires = 0;
  guint removed = 99;
  AsyncWait w = { loop, NULL };

  fs_pairing_issue_async (f->pairing, f->storage, envelope, 300, NULL, async_done, &w);
  token = fs_pairing_issue_finish (f->pairing, async_wait (&w), &expires, &object_key, &error);
  g_clear_object (&w.result);
  g_assert_no_error (error);
  remember_token (token);
  g_assert_cmpuint (expires, >, 0);
  g_assert_true (object_exists (f, object_key));

  /* A call cancelled before it starts does nothing. */
  g_cancellable_cancel (cancelled);
  f->counting->requests = 0;
  fs_pairing_redeem_async (f->pairing, f->storage, token, cancelled, async_done, &w);
  opened = fs_pairing_redeem_finish (f->pairing, async_wait (&w), &error);
  g_clear_object (&w.result);
  g_assert_null (opened);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);
  g_assert_cmpint (f->counting->requests, ==, 0);

  fs_pairing_redeem_async (f->pairing, f->storage, token, NULL, async_done, &w);
  opened = fs_pairing_redeem_finish (f->pairing, async_wait (&w), &error);
  g_clear_object (&w.result);
  g_assert_no_error (error);
  g_assert_true (g_bytes_equal (opened, envelope));

  fs_pairing_redeem_async (f->pairing, f->storage, "7KQ2-M9XD-4HRU", NULL, async_done, &w);
  g_assert_null (fs_pairing_redeem_finish (f->pairing, async_wait (&w), &error));
  g_clear_object (&w.result);
  assert_error (error, FS_PAIRING_ERROR, FS_PAIRING_ERROR_INVALID);

  fs_pairing_cleanup_async (f->pairing, f->storage, NULL, async_done, &w);
  g_assert_true (fs_pairing_cleanup_finish (f->pairing, async_wait (&w), &removed, NULL));
  g_clear_object (&w.result);
  g_assert_cmpuint (removed, ==, 0);
}

/* Several threads issue and redeem on one instance and one storage. */
static gpointer
thread_round_trip (gpointer data)
{
  Fixture *f = data;
  g_autoptr (GBytes) envelope = sample_envelope ();
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) opened = NULL;
  g_autofree gchar *token = fs_pairing_issue (f->pairing, f->storage, envelope, 60, NULL, NULL,
                                              &error);

  g_assert_no_error (error);
  remember_token (token);
  opened = fs_pairing_redeem (f->pairing, f->storage, token, &error);
  g_assert_no_error (error);
  g_assert_true (g_bytes_equal (opened, envelope));
  return NULL;
}

static void
test_threads (Fixture *f, gconstpointer data)
{
  GThread *threads[3];

  for (guint i = 0; i < G_N_ELEMENTS (threads); i++)
    threads[i] = g_thread_new ("pairing", thread_round_trip, f);
  for (guint i = 0; i < G_N_ELEMENTS (threads); i++)
    g_thread_join (threads[i]);
  g_assert_cmpuint (count_area (f), ==, 0);
}

/* ---- reference derivation and docs/format.md vectors ---------------------- */

static void
ref_hmac (const guint8 *key, gsize key_len, const guint8 *data, gsize len, guint8 out[32])
{
  gcry_md_hd_t md = NULL;
  g_assert_cmpint (gcry_md_open (&md, GCRY_MD_SHA256, GCRY_MD_FLAG_HMAC), ==, 0);
  g_assert_cmpint (gcry_md_setkey (md, key, key_len), ==, 0);
  gcry_md_write (md, data, len);
  memcpy (out, gcry_md_read (md, GCRY_MD_SHA256), 32);
  gcry_md_close (md);
}

static void
ref_hkdf (const guint8 ikm[32], const gchar *info, guint8 *out, gsize len)
{
  static const guint8 zero[32] = { 0 };
  guint8 prk[32], t[32];
  g_autofree gchar *block = g_strdup_printf ("%s\x01", info);

  ref_hmac (zero, 32, ikm, 32, prk);
  ref_hmac (prk, 32, (const guint8 *) block, strlen (block), t);
  memcpy (out, t, len);
}

/* lookup id (16), envelope key (32) and object key of @token (canonical). */
static gdouble
ref_derive (const gchar *token, guint memory_kib, guint8 lookup[16], guint8 key[32],
            gchar **object_key)
{
  const unsigned long params[4] = { 32, 3, memory_kib, 1 };
  gchar password[11];
  guint8 seed[32];
  gcry_kdf_hd_t hd = NULL;
  gint64 start;
  gdouble seconds;
  guint n = 0;
  static const gchar salt[] = "foldersync pairing v1";
  static const gchar b32[] = "abcdefghijklmnopqrstuvwxyz234567";
  GString *id = g_string_new (AREA);
  guint32 buf = 0;
  guint bits = 0;

  for (const gchar *p = token; *p != '\0' && n < 11; p++)
    if (*p != '-')
      password[n++] = *p;
  start = g_get_monotonic_time ();
  g_assert_cmpint (gcry_kdf_open (&hd, GCRY_KDF_ARGON2, GCRY_KDF_ARGON2ID, params, 4, password,
                                  11, salt, sizeof salt - 1, NULL, 0, NULL, 0),
                   ==, 0);
  g_assert_cmpint (gcry_kdf_compute (hd, NULL), ==, 0);
  g_assert_cmpint (gcry_kdf_final (hd, 32, seed), ==, 0);
  gcry_kdf_close (hd);
  seconds = (g_get_monotonic_time () - start) / (gdouble) G_USEC_PER_SEC;
  ref_hkdf (seed, "foldersync pairing v1 lookup", lookup, 16);
  ref_hkdf (seed, "foldersync pairing v1 envelope", key, 32);
  for (guint i = 0; i < 16; i++)
    {
      buf = (buf << 8) | lookup[i];
      bits += 8;
      while (bits >= 5)
        {
          g_string_append_c (id, b32[(buf >> (bits - 5)) & 31]);
          bits -= 5;
        }
    }
  g_string_append_c (id, b32[(buf << (5 - bits)) & 31]);
  *object_key = g_string_free (id, FALSE);
  return seconds;
}

static gchar *
hex (const guint8 *data, gsize len)
{
  GString *s = g_string_new (NULL);
  for (gsize i = 0; i < len; i++)
    g_string_append_printf (s, "%02x", data[i]);
  return g_string_free (s, FALSE);
}

static GBytes *
unhex (const gchar *text)
{
  gsize len = strlen (text);
  GByteArray *out = g_byte_array_new ();
  g_assert_cmpuint (len % 2, ==, 0);
  for (gsize i = 0; i < len; i += 2)
    {
      guint8 b = (guint8) (g_ascii_xdigit_value (text[i]) << 4 | g_ascii_xdigit_value (text[i + 1]));
      g_byte_array_append (out, &b, 1);
    }
  return g_byte_array_free_to_bytes (out);
}


static void
print_vector (const gchar *name, const gchar *value)
{
  for (gsize i = 0, len = strlen (value); i < len; i += 64)
    g_print ("vector %s: %.*s\n", name, (int) MIN (64, len - i), value + i);
}

static void
test_vectors (Fixture *f, gconstpointer data)
{
  g_autoptr (GHashTable) v = fs_test_load_vectors ();
  gboolean printing = g_getenv ("FOLDERSYNC_PRINT_VECTORS") != NULL;
  g_autoptr (FsPairing) format_pairing = new_pairing (0);
  g_autofree gchar *object_key = NULL;
  g_autofree gchar *lookup_hex = NULL;
  g_autofree gchar *key_hex = NULL;
  g_autoptr (GBytes) sealed = NULL;
  g_autoptr (GBytes) plaintext = NULL;
  g_autoptr (GBytes) opened = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree gchar *normalized = NULL;
  g_autofree gchar *printed_token = NULL;
  const gchar *token;
  guint8 lookup[16], key[32];

  if (printing)
    {
      /* Symbols "7KQ2M9XD4HR" and their check symbol. */
      guint8 sym[12];
      for (guint i = 0; i < 11; i++)
        sym[i] = (guint8) (strchr (ALPHABET, "7KQ2M9XD4HR"[i]) - ALPHABET);
      sym[11] = ref_mul_x (ref_syndrome (sym, 11));
      token = printed_token = ref_format (sym);
    }
  else
    token = fs_test_vector (v, "pairing-token");
  remember_token (token);

  g_assert_true (fs_pairing_check_token (format_pairing, token, &normalized, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (normalized, ==, token);

  ref_derive (token, FORMAT_MEMORY_KIB, lookup, key, &object_key);
  lookup_hex = hex (lookup, 16);
  key_hex = hex (key, 32);

  if (printing)
    {
      /* The test's reference sealer, with a fixed nonce. */
      static const gchar json[] = "{\"key\":\"000102030405060708090a0b0c0d0e0f101112131415161718"
                                  "191a1b1c1d1e1f\",\"bucket\":\"notes\"}";
      const guint64 expires = 253402300799; /* 9999-12-31T23:59:59Z */
      gsize n = sizeof json - 1;
      guint8 *out = g_malloc (40 + n);
      guint8 ad[28];
      gcry_cipher_hd_t hd = NULL;
      g_autofree gchar *sealed_hex = NULL;
      g_autofree gchar *plain_hex = hex ((const guint8 *) json, n);

      memcpy (out, "FSP1", 4);
      for (guint i = 0; i < 8; i++)
        out[4 + i] = (guint8) (expires >> (56 - 8 * i));
      for (guint i = 0; i < 12; i++)
        out[12 + i] = (guint8) (0xa0 + i);
      memcpy (out + 24, json, n);
      memcpy (ad, "FSP1", 4);
      memcpy (ad + 4, lookup, 16);
      memcpy (ad + 20, out + 4, 8);
      g_assert_cmpint (gcry_cipher_open (&hd, GCRY_CIPHER_AES256, GCRY_CIPHER_MODE_GCM, 0), ==, 0);
      g_assert_cmpint (gcry_cipher_setkey (hd, key, 32), ==, 0);
      g_assert_cmpint (gcry_cipher_setiv (hd, out + 12, 12), ==, 0);
      g_assert_cmpint (gcry_cipher_authenticate (hd, ad, sizeof ad), ==, 0);
      g_assert_cmpint (gcry_cipher_final (hd), ==, 0);
      g_assert_cmpint (gcry_cipher_encrypt (hd, out + 24, n, NULL, 0), ==, 0);
      g_assert_cmpint (gcry_cipher_gettag (hd, out + 24 + n, 16), ==, 0);
      gcry_cipher_close (hd);
      sealed_hex = hex (out, 40 + n);
      g_free (out);
      g_print ("vector pairing-token: %s\n", token);
      g_print ("vector pairing-lookup-id: %s\n", lookup_hex);
      g_print ("vector pairing-object-key: %s\n", object_key);
      g_print ("vector pairing-envelope-key: %s\n", key_hex);
      print_vector ("pairing-plaintext", plain_hex);
      print_vector ("pairing-envelope", sealed_hex);
      return;
    }

  g_assert_cmpstr (lookup_hex, ==, fs_test_vector (v, "pairing-lookup-id"));
  g_assert_cmpstr (key_hex, ==, fs_test_vector (v, "pairing-envelope-key"));
  g_assert_cmpstr (object_key, ==, fs_test_vector (v, "pairing-object-key"));

  /* The plugin opens the vector envelope (it expires in the year 9999) and
   * finds it where the spec says. */
  sealed = unhex (fs_test_vector (v, "pairing-envelope"));
  plaintext = unhex (fs_test_vector (v, "pairing-plaintext"));
  g_assert_true (fs_storage_put_bytes (f->storage, object_key, sealed, FS_STORAGE_IF_ABSENT, NULL,
                                       &error));
  g_assert_no_error (error);
  opened = fs_pairing_redeem (format_pairing, f->storage, token, &error);
  g_assert_no_error (error);
  g_assert_true (g_bytes_equal (opened, plaintext));
  g_assert_false (object_exists (f, object_key));
}

/* One Argon2id derivation with the format's parameters, then a full issue
 * and redeem through the plugin. */
static void
test_timing (Fixture *f, gconstpointer data)
{
  g_autoptr (FsPairing) format_pairing = new_pairing (0);
  g_autoptr (GBytes) envelope = sample_envelope ();
  g_autoptr (GBytes) opened = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree gchar *token = NULL;
  gdouble runs[3], best = G_MAXDOUBLE, issue_s, redeem_s;
  gint64 start;
  guint memory = test_memory_kib ();

  for (guint i = 0; i < G_N_ELEMENTS (runs); i++)
    {
      guint8 lookup[16], key[32];
      g_autofree gchar *object_key = NULL;
      runs[i] = ref_derive ("7KQ2-M9XD-4HR", FORMAT_MEMORY_KIB, lookup, key, &object_key);
      best = MIN (best, runs[i]);
    }
  start = g_get_monotonic_time ();
  token = fs_pairing_issue (format_pairing, f->storage, envelope, 60, NULL, NULL, &error);
  issue_s = (g_get_monotonic_time () - start) / (gdouble) G_USEC_PER_SEC;
  g_assert_no_error (error);
  remember_token (token);
  start = g_get_monotonic_time ();
  opened = fs_pairing_redeem (format_pairing, f->storage, token, &error);
  redeem_s = (g_get_monotonic_time () - start) / (gdouble) G_USEC_PER_SEC;
  g_assert_no_error (error);

  g_test_message ("Argon2id t=3 m=65536 KiB p=1: %.3f s, %.3f s, %.3f s (best %.3f s)", runs[0],
                  runs[1], runs[2], best);
  g_test_message ("issue %.3f s, redeem %.3f s (one derivation each, storage-local)", issue_s,
                  redeem_s);
  if (memory != 0)
    {
      guint8 lookup[16], key[32];
      g_autofree gchar *object_key = NULL;
      gdouble s = ref_derive ("7KQ2-M9XD-4HR", memory, lookup, key, &object_key);
      g_test_message ("FOLDERSYNC_TEST_ARGON2_MEMORY_KIB=%u for the other tests: %.3f s", memory,
                      s);
    }
  /* Well under a second on the reference 2-core machine (~0.3 s); a generous
   * bound so a loaded CI machine does not fail it. */
  g_assert_cmpfloat (best, <, 3.0);
}

int
main (int argc, char **argv)
{
  secrets = g_ptr_array_new_with_free_func (g_free);
  log_lines = g_ptr_array_new_with_free_func (g_free);
  g_log_set_writer_func (record_log, NULL, NULL);
  g_test_init (&argc, &argv, NULL);
  fs_gcrypt_init ();

#define ADD(path, func) g_test_add (path, Fixture, NULL, fixture_setup, func, fixture_teardown)
  ADD ("/pairing/round-trip", test_round_trip);
  ADD ("/pairing/redeem/case-and-dashes", test_case_and_dashes);
  ADD ("/pairing/redeem/second-not-found", test_second_redeem);
  ADD ("/pairing/redeem/unknown-token-not-found", test_wrong_token_not_found);
  ADD ("/pairing/redeem/expired", test_expired);
  ADD ("/pairing/redeem/tampered", test_tampered);
  ADD ("/pairing/token/substitutions", test_substitutions);
  ADD ("/pairing/token/transpositions", test_transpositions);
  ADD ("/pairing/token/double-errors", test_double_errors);
  ADD ("/pairing/token/malformed", test_malformed);
  ADD ("/pairing/issue/limits", test_limits);
  ADD ("/pairing/cleanup", test_cleanup);
  ADD ("/pairing/async", test_async);
  ADD ("/pairing/threads", test_threads);
  ADD ("/pairing/vectors", test_vectors);
  ADD ("/pairing/timing", test_timing);
#undef ADD

  return g_test_run ();
}
