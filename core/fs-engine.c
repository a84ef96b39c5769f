/* FsEngine: one synced folder and its one-shot two-way sync.
 *
 * Order of durability (DESIGN §2): an upload writes the content object, then
 * the journal record, then the index row; a download writes a temp file,
 * fsyncs it, re-checks the local file, renames, fsyncs the directory, then
 * updates the index. A crash between steps leaves nothing that the next sync
 * does not find again. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <gcrypt.h>
#include <gio/gunixinputstream.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs-crypto.h"
#include "fs-engine.h"
#include "fs-error.h"
#include "fs-gcrypt.h"
#include "fs-hash-stream.h"
#include "fs-index.h"
#include "fs-journal.h"
#include "fs-plugin-loader.h"
#include "fs-reconcile.h"
#include "fs-remote-tree.h"
#include "fs-scanner.h"

#define STORE_CONFIG_NAME "foldersync-store.json"
#define STORE_FORMAT_VERSION 1
#define TRASH_DIR ".foldersync.trash"
#define TEMP_TEMPLATE ".foldersync.tmp.XXXXXX"
#define COPY_BUFFER_SIZE (256 * 1024)

struct _FsEngine {
  GObject parent_instance;

  gchar *root;
  FsStorage *storage;
  FsCrypto *crypto;
  gchar *prefix; /* "" or ending in '/' */
  FsIndex *index;
  gchar *index_path;
  gchar *device_id;
  gchar *device_name;
  gint64 next_seq;

  /* Per sync run. */
  GHashTable *records;      /* version → FsRecord (borrowed from records_array) */
  GPtrArray *records_array;
  GHashTable *remote;       /* effective path → FsRecord head */
  GHashTable *local;        /* path → FsEntry (scan) */
  FsSyncStats *stats;
  GPtrArray *messages;
  GCancellable *cancellable;
};

G_DEFINE_FINAL_TYPE (FsEngine, fs_engine, G_TYPE_OBJECT)

static void
fs_engine_finalize (GObject *object)
{
  FsEngine *self = FS_ENGINE (object);

  g_free (self->root);
  g_clear_object (&self->storage);
  g_clear_object (&self->crypto);
  g_free (self->prefix);
  g_clear_object (&self->index);
  g_free (self->index_path);
  g_free (self->device_id);
  g_free (self->device_name);
  G_OBJECT_CLASS (fs_engine_parent_class)->finalize (object);
}

static void
fs_engine_class_init (FsEngineClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = fs_engine_finalize;
}

static void
fs_engine_init (FsEngine *self)
{
}

const gchar *
fs_engine_get_index_path (FsEngine *self)
{
  return self->index_path;
}

const gchar *
fs_engine_get_device_id (FsEngine *self)
{
  return self->device_id;
}

static gchar *
random_id (gsize bytes)
{
  guint8 buf[32];
  g_assert (bytes <= sizeof buf);
  fs_gcrypt_init ();
  gcry_create_nonce (buf, bytes);
  return fs_base32_encode (buf, bytes);
}

static gchar *
sha256_hex (const gchar *data, gsize len)
{
  guint8 digest[32];
  fs_gcrypt_init ();
  gcry_md_hash_buffer (GCRY_MD_SHA256, digest, data, len);
  return fs_hex_encode (digest, sizeof digest);
}

static gboolean
check_folder (const gchar *path, GError **error)
{
  if (!g_path_is_absolute (path))
    {
      g_set_error (error, FS_ENGINE_ERROR, FS_ENGINE_ERROR_FOLDER, "Folder ‘%s’ is not an absolute path",
                   path);
      return FALSE;
    }
  if (!g_file_test (path, G_FILE_TEST_IS_DIR))
    {
      g_set_error (error, FS_ENGINE_ERROR, FS_ENGINE_ERROR_FOLDER, "Folder ‘%s’ does not exist", path);
      return FALSE;
    }
  if (access (path, R_OK | W_OK | X_OK) != 0)
    {
      g_set_error (error, FS_ENGINE_ERROR, FS_ENGINE_ERROR_FOLDER, "Folder ‘%s’ is not writable: %s",
                   path, g_strerror (errno));
      return FALSE;
    }
  return TRUE;
}

/* The store's config object says what it is and which key it belongs to. */
static gboolean
verify_store (FsEngine *self, GError **error)
{
  g_autofree gchar *key = g_strconcat (self->prefix, STORE_CONFIG_NAME, NULL);
  g_autofree gchar *key_id = fs_crypto_get_key_id (self->crypto);
  g_autoptr(GError) local_error = NULL;

  for (guint attempt = 0; attempt < 2; attempt++)
    {
      g_autoptr(GBytes) bytes = fs_storage_get_bytes (self->storage, key, 64 * 1024, &local_error);
      g_autoptr(JsonParser) parser = NULL;
      JsonObject *o;

      if (bytes == NULL && !g_error_matches (local_error, FS_STORAGE_ERROR, FS_STORAGE_ERROR_NOT_FOUND))
        {
          g_propagate_error (error, g_steal_pointer (&local_error));
          return FALSE;
        }
      if (bytes == NULL)
        {
          g_autoptr(GPtrArray) objects = NULL;
          g_autoptr(JsonBuilder) b = json_builder_new ();
          g_autoptr(JsonGenerator) gen = json_generator_new ();
          g_autoptr(JsonNode) root = NULL;
          g_autoptr(GBytes) config = NULL;
          g_autoptr(GDateTime) now = g_date_time_new_now_utc ();
          g_autofree gchar *created = g_date_time_format_iso8601 (now);
          gboolean truncated = FALSE;
          gchar *data;
          gsize len;

          g_clear_error (&local_error);
          if (!fs_storage_list (self->storage, self->prefix, NULL, NULL, 1, &objects, NULL,
                                &truncated, error))
            return FALSE;
          if (objects->len > 0)
            {
              g_set_error (error, FS_ENGINE_ERROR, FS_ENGINE_ERROR_NOT_A_STORE,
                           "The store location is not a FolderSync store: it holds other data "
                           "and no %s",
                           STORE_CONFIG_NAME);
              return FALSE;
            }
          json_builder_begin_object (b);
          json_builder_set_member_name (b, "format");
          json_builder_add_string_value (b, "foldersync");
          json_builder_set_member_name (b, "version");
          json_builder_add_int_value (b, STORE_FORMAT_VERSION);
          json_builder_set_member_name (b, "key_id");
          json_builder_add_string_value (b, key_id);
          json_builder_set_member_name (b, "created");
          json_builder_add_string_value (b, created);
          json_builder_end_object (b);
          root = json_builder_get_root (b);
          json_generator_set_root (gen, root);
          json_generator_set_pretty (gen, TRUE);
          data = json_generator_to_data (gen, &len);
          config = g_bytes_new_take (data, len);
          if (fs_storage_put_bytes (self->storage, key, config, FS_STORAGE_IF_ABSENT, NULL,
                                    &local_error))
            {
              g_message ("Initialized a new store");
              return TRUE;
            }
          /* Another device created it first: read theirs. */
          if (!g_error_matches (local_error, FS_STORAGE_ERROR, FS_STORAGE_ERROR_PRECONDITION_FAILED))
            {
              g_propagate_error (error, g_steal_pointer (&local_error));
              return FALSE;
            }
          g_clear_error (&local_error);
          continue;
        }

      parser = json_parser_new ();
      if (!json_parser_load_from_data (parser, g_bytes_get_data (bytes, NULL),
                                       (gssize) g_bytes_get_size (bytes), NULL) ||
          !JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
        {
          g_set_error (error, FS_ENGINE_ERROR, FS_ENGINE_ERROR_NOT_A_STORE,
                       "The store's %s is not valid JSON", STORE_CONFIG_NAME);
          return FALSE;
        }
      o = json_node_get_object (json_parser_get_root (parser));
      if (g_strcmp0 (json_object_get_string_member_with_default (o, "format", ""), "foldersync") != 0)
        {
          g_set_error (error, FS_ENGINE_ERROR, FS_ENGINE_ERROR_NOT_A_STORE,
                       "The store's %s does not describe a FolderSync store", STORE_CONFIG_NAME);
          return FALSE;
        }
      if (json_object_get_int_member_with_default (o, "version", 0) > STORE_FORMAT_VERSION)
        {
          g_set_error (error, FS_ENGINE_ERROR, FS_ENGINE_ERROR_NOT_A_STORE,
                       "The store uses format version %" G_GINT64_FORMAT
                       ", newer than this FolderSync understands (%d)",
                       json_object_get_int_member_with_default (o, "version", 0),
                       STORE_FORMAT_VERSION);
          return FALSE;
        }
      if (g_strcmp0 (json_object_get_string_member_with_default (o, "key_id", ""), key_id) != 0)
        {
          g_set_error_literal (error, FS_ENGINE_ERROR, FS_ENGINE_ERROR_WRONG_KEY,
                               "Wrong key: this store was created with a different key; "
                               "nothing was changed");
          return FALSE;
        }
      return TRUE;
    }
  g_set_error_literal (error, FS_ENGINE_ERROR, FS_ENGINE_ERROR_NOT_A_STORE,
                       "The store's config object could not be read or created");
  return FALSE;
}

static gchar *
index_path_for (const gchar *root, const gchar *store_id, const gchar *prefix)
{
  g_autofree gchar *id_source = g_strjoin ("\n", root, store_id, prefix, NULL);
  g_autofree gchar *id = sha256_hex (id_source, strlen (id_source));
  g_autofree gchar *file = g_strdup_printf ("%.16s.db", id);
  return g_build_filename (g_get_user_data_dir (), "foldersync", "folders", file, NULL);
}

FsEngine *
fs_engine_new (const FsEngineConfig *config, GError **error)
{
  g_autoptr(FsEngine) self = g_object_new (FS_TYPE_ENGINE, NULL);
  g_autofree gchar *index_dir = NULL;
  g_autofree gchar *next_seq = NULL;
  g_autofree gchar *canonical = NULL;

  g_return_val_if_fail (config != NULL, NULL);
  g_return_val_if_fail (FS_IS_STORAGE (config->storage), NULL);
  g_return_val_if_fail (config->key != NULL, NULL);

  if (!check_folder (config->local_path, error))
    return NULL;
  canonical = realpath (config->local_path, NULL);
  self->root = g_strdup (canonical != NULL ? canonical : config->local_path);
  self->storage = g_object_ref (config->storage);
  if (config->prefix == NULL || *config->prefix == '\0')
    self->prefix = g_strdup ("");
  else if (g_str_has_suffix (config->prefix, "/"))
    self->prefix = g_strdup (config->prefix);
  else
    self->prefix = g_strconcat (config->prefix, "/", NULL);

  self->crypto = FS_CRYPTO (fs_plugin_new_instance ("crypto-aes", FS_TYPE_CRYPTO, error));
  if (self->crypto == NULL)
    return NULL;
  if (!fs_crypto_set_key (self->crypto, g_bytes_get_data (config->key, NULL),
                          g_bytes_get_size (config->key), error))
    return NULL;
  if (!verify_store (self, error))
    return NULL;

  self->index_path = index_path_for (self->root, config->store_id, self->prefix);
  index_dir = g_path_get_dirname (self->index_path);
  if (g_mkdir_with_parents (index_dir, 0700) != 0)
    {
      g_set_error (error, FS_ENGINE_ERROR, FS_ENGINE_ERROR_FAILED,
                   "Cannot create the state directory ‘%s’: %s", index_dir, g_strerror (errno));
      return NULL;
    }
  self->index = fs_index_open (self->index_path, error);
  if (self->index == NULL)
    return NULL;

  self->device_id = fs_index_get_meta (self->index, "device_id");
  if (self->device_id == NULL)
    {
      self->device_id = random_id (10);
      if (!fs_index_set_meta (self->index, "device_id", self->device_id, error) ||
          !fs_index_set_meta (self->index, "local_path", self->root, error) ||
          !fs_index_set_meta (self->index, "store", config->store_id, error))
        return NULL;
    }
  next_seq = fs_index_get_meta (self->index, "next_seq");
  self->next_seq = next_seq != NULL ? g_ascii_strtoll (next_seq, NULL, 10) : 0;

  if (config->device_name != NULL && *config->device_name != '\0')
    self->device_name = g_strdup (config->device_name);
  else
    self->device_name = g_strdup_printf ("%s-%.4s", g_get_host_name (), self->device_id);
  return g_steal_pointer (&self);
}

/* ---- helpers on paths and the local disk -------------------------------- */

static gchar *
abs_path (FsEngine *self, const gchar *rel)
{
  return g_build_filename (self->root, rel, NULL);
}

/* The name to use on disk for key @path: what the scan found, else the
 * parent's disk name plus @record_path's basename (keeps NFD names exact). */
static gchar *
disk_path_for (FsEngine *self, const gchar *path, const gchar *record_path)
{
  FsEntry *local = g_hash_table_lookup (self->local, path);
  g_autofree gchar *parent = NULL;
  g_autofree gchar *record_parent = NULL;
  g_autofree gchar *base = NULL;
  g_autofree gchar *parent_disk = NULL;

  if (local != NULL)
    return g_strdup (fs_entry_disk_path (local));
  base = g_path_get_basename (record_path);
  parent = g_path_get_dirname (path);
  if (g_strcmp0 (parent, ".") == 0)
    return g_steal_pointer (&base);
  record_parent = g_path_get_dirname (record_path);
  parent_disk = disk_path_for (self, parent, g_strcmp0 (record_parent, ".") == 0 ? parent : record_parent);
  return g_build_filename (parent_disk, base, NULL);
}

static gboolean
set_io_error (GError **error, int errnum, const gchar *what, const gchar *rel)
{
  g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errnum), "%s ‘%s’: %s", what, rel,
               g_strerror (errnum));
  return FALSE;
}

static gboolean
fsync_dir_of (const gchar *abs)
{
  g_autofree gchar *dir = g_path_get_dirname (abs);
  int fd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return FALSE;
  fsync (fd);
  close (fd);
  return TRUE;
}

static gboolean
ensure_parent_dirs (FsEngine *self, const gchar *disk_rel, GError **error)
{
  g_autofree gchar *abs = abs_path (self, disk_rel);
  g_autofree gchar *dir = g_path_get_dirname (abs);
  if (g_mkdir_with_parents (dir, 0755) != 0)
    return set_io_error (error, errno, "Cannot create the directory for", disk_rel);
  return TRUE;
}

/* Stat data of a path as an FsEntry (no hash). NULL with errno when absent. */
static FsEntry *
lstat_entry (FsEngine *self, const gchar *path, const gchar *disk_rel)
{
  g_autofree gchar *abs = abs_path (self, disk_rel);
  struct stat st;
  FsEntry *e;

  if (lstat (abs, &st) != 0)
    return NULL;
  e = fs_entry_new (path, S_ISDIR (st.st_mode) ? FS_KIND_DIR
                          : S_ISLNK (st.st_mode) ? FS_KIND_SYMLINK
                                                 : FS_KIND_FILE);
  if (g_strcmp0 (path, disk_rel) != 0)
    e->disk_path = g_strdup (disk_rel);
  e->size = e->kind == FS_KIND_FILE ? (guint64) st.st_size : 0;
  e->mtime_ns = (gint64) st.st_mtim.tv_sec * G_GINT64_CONSTANT (1000000000) + st.st_mtim.tv_nsec;
  e->inode = (guint64) st.st_ino;
  e->mode = st.st_mode & 07777;
  return e;
}

/* Whether the disk still holds what the scan saw at @path (or still nothing). */
static gboolean
local_unchanged (FsEngine *self, const FsEntry *scanned, const gchar *path, const gchar *disk_rel)
{
  g_autoptr(FsEntry) now = lstat_entry (self, path, disk_rel);

  if (scanned == NULL)
    return now == NULL;
  if (now == NULL || now->kind != scanned->kind)
    return FALSE;
  if (now->kind == FS_KIND_DIR)
    return TRUE;
  return now->size == scanned->size && now->mtime_ns == scanned->mtime_ns &&
         now->inode == scanned->inode;
}

static gboolean
move_to_trash (FsEngine *self, const gchar *disk_rel, GError **error)
{
  g_autoptr(GDateTime) now = g_date_time_new_now_utc ();
  g_autofree gchar *day = g_date_time_format (now, "%Y-%m-%d");
  g_autofree gchar *src = abs_path (self, disk_rel);
  g_autofree gchar *dst = g_build_filename (self->root, TRASH_DIR, day, disk_rel, NULL);
  g_autofree gchar *dst_dir = g_path_get_dirname (dst);

  if (g_mkdir_with_parents (dst_dir, 0700) != 0)
    return set_io_error (error, errno, "Cannot create the trash folder for", disk_rel);
  for (guint n = 2; g_file_test (dst, G_FILE_TEST_EXISTS | G_FILE_TEST_IS_SYMLINK); n++)
    {
      g_free (dst);
      dst = g_strdup_printf ("%s/%s/%s/%s (%u)", self->root, TRASH_DIR, day, disk_rel, n);
    }
  if (rename (src, dst) != 0)
    return set_io_error (error, errno, "Cannot move to the trash", disk_rel);
  return TRUE;
}

/* ---- index and journal updates ------------------------------------------ */

/* Appends @record to our journal, then records it and @base (NULL: forget the
 * path) in the index in one transaction. */
static gboolean
commit_record (FsEngine *self, FsRecord *record, const FsEntry *base, const gchar *forget_path,
               GError **error)
{
  g_autofree gchar *next = NULL;

  record->device_id = g_strdup (self->device_id);
  record->device_name = g_strdup (self->device_name);
  record->seq = self->next_seq;
  record->time_us = g_get_real_time ();
  if (!fs_journal_append (self->storage, self->crypto, self->prefix, record, error))
    return FALSE;
  self->next_seq++;
  self->stats->records_written++;

  next = g_strdup_printf ("%" G_GINT64_FORMAT, self->next_seq);
  if (!fs_index_begin (self->index, error))
    return FALSE;
  if (!fs_index_add_record (self->index, record, error) ||
      !fs_index_set_cursor (self->index, self->device_id, record->seq, error) ||
      !fs_index_set_meta (self->index, "next_seq", next, error) ||
      (base != NULL && !fs_index_put (self->index, base, error)) ||
      (forget_path != NULL && !fs_index_remove (self->index, forget_path, error)))
    {
      fs_index_rollback (self->index);
      return FALSE;
    }
  return fs_index_commit (self->index, error);
}

static gboolean
index_put (FsEngine *self, const FsEntry *entry, GError **error)
{
  if (!fs_index_begin (self->index, error))
    return FALSE;
  if (!fs_index_put (self->index, entry, error))
    {
      fs_index_rollback (self->index);
      return FALSE;
    }
  return fs_index_commit (self->index, error);
}

static gboolean
index_remove (FsEngine *self, const gchar *path, GError **error)
{
  if (!fs_index_begin (self->index, error))
    return FALSE;
  if (!fs_index_remove (self->index, path, error))
    {
      fs_index_rollback (self->index);
      return FALSE;
    }
  return fs_index_commit (self->index, error);
}

/* ---- uploads ------------------------------------------------------------ */

static GBytes *
object_header (const FsRecord *r)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autoptr(JsonGenerator) gen = json_generator_new ();
  g_autoptr(JsonNode) root = NULL;
  gsize len = 0;
  gchar *data;

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "version");
  json_builder_add_string_value (b, r->version);
  json_builder_set_member_name (b, "path");
  json_builder_add_string_value (b, r->path);
  json_builder_set_member_name (b, "size");
  json_builder_add_int_value (b, (gint64) r->size);
  json_builder_set_member_name (b, "mtime_ns");
  json_builder_add_int_value (b, r->mtime_ns);
  json_builder_set_member_name (b, "mode");
  json_builder_add_int_value (b, r->mode);
  json_builder_set_member_name (b, "hash");
  json_builder_add_string_value (b, r->hash);
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  data = json_generator_to_data (gen, &len);
  return g_bytes_new_take (data, len);
}

static gboolean
upload_file (FsEngine *self, const FsEntry *local, FsRecord *record, GError **error)
{
  const gchar *disk_rel = fs_entry_disk_path (local);
  g_autofree gchar *abs = abs_path (self, disk_rel);
  g_autofree gchar *stem = fs_crypto_object_stem (self->crypto, local->path);
  g_autofree gchar *object = g_strdup_printf ("o/%.2s/%s.%s", stem, stem, record->version);
  g_autofree gchar *key = g_strconcat (self->prefix, object, NULL);
  g_autoptr(GInputStream) file_in = NULL;
  g_autoptr(GInputStream) hashing = NULL;
  g_autoptr(GInputStream) sealed = NULL;
  g_autoptr(GBytes) header = NULL;
  g_autofree gchar *hash = NULL;
  struct stat st;
  int fd;

  fd = open (abs, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    {
      if (errno == ENOENT || errno == ELOOP)
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_BUSY, "‘%s’ changed while it was synced",
                       disk_rel);
          return FALSE;
        }
      return set_io_error (error, errno, "Cannot read", disk_rel);
    }
  file_in = g_unix_input_stream_new (fd, TRUE);
  if (fstat (fd, &st) != 0 || (guint64) st.st_size != local->size || st.st_ino != local->inode)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_BUSY, "‘%s’ changed while it was synced", disk_rel);
      return FALSE;
    }

  record->kind = FS_KIND_FILE;
  record->size = local->size;
  record->mtime_ns = local->mtime_ns;
  record->mode = local->mode;
  record->hash = g_strdup (local->hash);
  record->object = g_strdup (object);
  header = object_header (record);

  hashing = fs_hash_input_stream_new (file_in);
  sealed = fs_crypto_seal_stream (self->crypto, header, hashing, NULL, error);
  if (sealed == NULL)
    return FALSE;
  if (!fs_storage_put (self->storage, key, sealed, NULL, NULL, self->cancellable, error))
    return FALSE;

  /* Never publish a torn file: what was read must be what was scanned. */
  hash = fs_hash_input_stream_get_hex (FS_HASH_INPUT_STREAM (hashing));
  if (g_strcmp0 (hash, local->hash) != 0 ||
      fs_hash_input_stream_get_bytes (FS_HASH_INPUT_STREAM (hashing)) != local->size ||
      !local_unchanged (self, local, local->path, disk_rel))
    {
      fs_storage_delete (self->storage, key, NULL);
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_BUSY, "‘%s’ changed while it was synced", disk_rel);
      return FALSE;
    }
  self->stats->objects_written++;
  self->stats->files_up++;
  self->stats->bytes_up += local->size;
  return TRUE;
}

static gboolean
do_upload (FsEngine *self, const FsEntry *local, const FsRecord *remote, GError **error)
{
  g_autoptr(FsRecord) record = fs_record_new ();
  g_autoptr(FsEntry) base = NULL;

  record->version = random_id (16);
  record->replaces = remote != NULL ? g_strdup (remote->version) : NULL;
  record->path = g_strdup (fs_entry_disk_path (local));
  record->kind = local->kind;
  record->mode = local->mode;
  record->mtime_ns = local->mtime_ns;
  switch (local->kind)
    {
    case FS_KIND_FILE:
      if (!upload_file (self, local, record, error))
        return FALSE;
      break;
    case FS_KIND_SYMLINK:
      record->target = g_strdup (local->target);
      record->hash = g_strdup (local->hash);
      break;
    case FS_KIND_DIR:
      self->stats->dirs_created++;
      break;
    case FS_KIND_NONE:
    default:
      g_assert_not_reached ();
    }
  base = fs_entry_copy (local);
  g_free (base->version);
  base->version = g_strdup (record->version);
  return commit_record (self, record, base, NULL, error);
}

static gboolean
do_delete_remote (FsEngine *self, const FsEntry *base, const FsRecord *remote, GError **error)
{
  g_autoptr(FsRecord) record = fs_record_new ();

  record->version = random_id (16);
  record->replaces = g_strdup (remote->version);
  record->path = g_strdup (remote->path);
  record->kind = remote->kind;
  record->deleted = TRUE;
  if (!commit_record (self, record, NULL, base != NULL ? base->path : remote->path, error))
    return FALSE;
  self->stats->deleted_remote++;
  return TRUE;
}

/* ---- downloads ---------------------------------------------------------- */

static gboolean
check_object_header (GBytes *header, const FsRecord *remote, GError **error)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  JsonObject *o;

  if (json_parser_load_from_data (parser, g_bytes_get_data (header, NULL),
                                  (gssize) g_bytes_get_size (header), NULL) &&
      JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
    {
      o = json_node_get_object (json_parser_get_root (parser));
      if (g_strcmp0 (json_object_get_string_member_with_default (o, "version", ""),
                     remote->version) == 0)
        return TRUE;
    }
  g_set_error_literal (error, FS_CRYPTO_ERROR, FS_CRYPTO_ERROR_CORRUPT,
                       "the object does not hold the version the journal names");
  return FALSE;
}

/* Decrypts @remote's object into a temp file next to @disk_rel; returns its
 * absolute name, fsynced, with mode and mtime set. */
static gchar *
fetch_to_temp (FsEngine *self, const FsRecord *remote, const gchar *disk_rel, GError **error)
{
  g_autofree gchar *key = g_strconcat (self->prefix, remote->object, NULL);
  g_autofree gchar *abs = abs_path (self, disk_rel);
  g_autofree gchar *dir = g_path_get_dirname (abs);
  g_autofree gchar *tmp = g_build_filename (dir, TEMP_TEMPLATE, NULL);
  g_autoptr(GInputStream) in = NULL;
  g_autoptr(GInputStream) plain = NULL;
  g_autoptr(GBytes) header = NULL;
  g_autofree guint8 *buf = NULL;
  gcry_md_hd_t md = NULL;
  g_autofree gchar *hash = NULL;
  guint64 total = 0;
  struct timespec times[2];
  gboolean ok = FALSE;
  int fd;

  in = fs_storage_get (self->storage, key, 0, -1, error);
  if (in == NULL)
    return NULL;
  self->stats->objects_read++;
  plain = fs_crypto_open_stream (self->crypto, in, &header, self->cancellable, error);
  if (plain == NULL || !check_object_header (header, remote, error))
    return NULL;

  fd = g_mkstemp_full (tmp, O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0)
    {
      set_io_error (error, errno, "Cannot create a temporary file for", disk_rel);
      return NULL;
    }
  fs_gcrypt_init ();
  gcry_md_open (&md, GCRY_MD_SHA256, 0);
  buf = g_malloc (COPY_BUFFER_SIZE);
  for (;;)
    {
      gssize n = g_input_stream_read (plain, buf, COPY_BUFFER_SIZE, self->cancellable, error);
      if (n < 0)
        goto out;
      if (n == 0)
        break;
      gcry_md_write (md, buf, (size_t) n);
      total += (guint64) n;
      for (gssize off = 0; off < n;)
        {
          gssize w = write (fd, buf + off, (size_t) (n - off));
          if (w < 0 && errno == EINTR)
            continue;
          if (w < 0)
            {
              set_io_error (error, errno, "Cannot write", disk_rel);
              goto out;
            }
          off += w;
        }
    }
  hash = fs_hex_encode (gcry_md_read (md, GCRY_MD_SHA256), 32);
  if (g_strcmp0 (hash, remote->hash) != 0 || total != remote->size)
    {
      g_set_error_literal (error, FS_CRYPTO_ERROR, FS_CRYPTO_ERROR_CORRUPT,
                           "the decrypted content does not match the journal's hash");
      goto out;
    }
  times[0].tv_sec = 0;
  times[0].tv_nsec = UTIME_OMIT;
  times[1].tv_sec = remote->mtime_ns / G_GINT64_CONSTANT (1000000000);
  times[1].tv_nsec = remote->mtime_ns % G_GINT64_CONSTANT (1000000000);
  if (fchmod (fd, remote->mode & 07777) != 0 || fsync (fd) != 0 || futimens (fd, times) != 0)
    {
      set_io_error (error, errno, "Cannot finish writing", disk_rel);
      goto out;
    }
  ok = TRUE;
out:
  gcry_md_close (md);
  close (fd);
  if (!ok)
    {
      g_unlink (tmp);
      return NULL;
    }
  return g_steal_pointer (&tmp);
}

/* Makes the disk hold @remote at @path; @scanned is what the scan saw there. */
static gboolean
do_download (FsEngine *self, const gchar *path, const FsEntry *scanned, const FsRecord *remote,
             GError **error)
{
  FsRecord *original = g_hash_table_lookup (self->records, remote->version);
  const gchar *record_path = original != NULL ? original->path : remote->path;
  g_autofree gchar *normalized = fs_path_normalize (record_path);
  g_autofree gchar *disk_rel = NULL;
  g_autofree gchar *abs = NULL;
  g_autofree gchar *tmp = NULL;
  g_autoptr(FsEntry) base = NULL;

  /* A conflict copy carries the loser's record: its own path is elsewhere. */
  disk_rel = disk_path_for (self, path, g_strcmp0 (normalized, path) == 0 ? record_path : path);
  abs = abs_path (self, disk_rel);
  if (!ensure_parent_dirs (self, disk_rel, error))
    return FALSE;

  if (remote->kind == FS_KIND_FILE)
    {
      tmp = fetch_to_temp (self, remote, disk_rel, error);
      if (tmp == NULL)
        return FALSE;
    }
  else if (remote->kind == FS_KIND_SYMLINK)
    {
      g_autofree gchar *dir = g_path_get_dirname (abs);
      for (guint attempt = 0; tmp == NULL && attempt < 10; attempt++)
        {
          g_autofree gchar *id = random_id (6);
          g_autofree gchar *candidate = g_strdup_printf ("%s/.foldersync.tmp.%s", dir, id);
          if (symlink (remote->target, candidate) == 0)
            tmp = g_steal_pointer (&candidate);
          else if (errno != EEXIST)
            return set_io_error (error, errno, "Cannot create the link", disk_rel);
        }
    }

  /* The last moment to notice a local edit made since the scan. */
  if (!local_unchanged (self, scanned, path, disk_rel))
    {
      if (tmp != NULL)
        g_unlink (tmp);
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_BUSY, "‘%s’ changed while it was synced", disk_rel);
      return FALSE;
    }
  if (scanned != NULL && scanned->kind != remote->kind)
    {
      /* The other side replaced a file by a directory or the reverse. */
      if (scanned->kind == FS_KIND_DIR ? g_rmdir (abs) != 0 : !move_to_trash (self, disk_rel, error))
        {
          if (tmp != NULL)
            g_unlink (tmp);
          if (scanned->kind == FS_KIND_DIR)
            return set_io_error (error, errno, "Cannot replace the directory", disk_rel);
          return FALSE;
        }
    }

  if (remote->kind == FS_KIND_DIR)
    {
      if (g_mkdir (abs, (remote->mode & 07777) != 0 ? remote->mode & 07777 : 0755) != 0 &&
          errno != EEXIST)
        return set_io_error (error, errno, "Cannot create the directory", disk_rel);
      self->stats->dirs_created++;
    }
  else
    {
      if (rename (tmp, abs) != 0)
        {
          int saved = errno;
          g_unlink (tmp);
          return set_io_error (error, saved, "Cannot put in place", disk_rel);
        }
      fsync_dir_of (abs);
      if (remote->kind == FS_KIND_FILE)
        {
          self->stats->files_down++;
          self->stats->bytes_down += remote->size;
        }
    }

  base = lstat_entry (self, path, disk_rel);
  if (base == NULL)
    return set_io_error (error, errno, "Cannot stat", disk_rel);
  base->hash = g_strdup (remote->hash);
  base->target = g_strdup (remote->target);
  base->version = g_strdup (remote->version);
  return index_put (self, base, error);
}

static gboolean
do_delete_local (FsEngine *self, const FsEntry *local, const FsEntry *base, GError **error)
{
  const gchar *disk_rel = fs_entry_disk_path (local);

  if (!local_unchanged (self, local, local->path, disk_rel))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_BUSY, "‘%s’ changed while it was synced", disk_rel);
      return FALSE;
    }
  if (local->kind == FS_KIND_DIR)
    {
      g_autofree gchar *abs = abs_path (self, disk_rel);
      /* A directory with new content stays; it is uploaded again next time. */
      if (g_rmdir (abs) != 0 && errno != ENOTEMPTY && errno != EEXIST)
        return set_io_error (error, errno, "Cannot remove the directory", disk_rel);
    }
  else if (!move_to_trash (self, disk_rel, error))
    return FALSE;
  self->stats->deleted_local++;
  return index_remove (self, local->path, error);
}

/* A conflict name that nothing uses yet: not on disk, not remote, not in the
 * index. Two conflicts on one path within a second get " 2", " 3", … */
static gchar *
unique_conflict_name (FsEngine *self, const gchar *disk_rel)
{
  g_autofree gchar *name = fs_conflict_name (disk_rel, self->device_name, g_get_real_time ());
  const gchar *close = strrchr (name, ')');

  for (guint n = 1;; n++)
    {
      g_autofree gchar *candidate = n == 1 ? g_strdup (name)
                                           : g_strdup_printf ("%.*s %u%s", (int) (close - name),
                                                              name, n, close);
      g_autofree gchar *abs = abs_path (self, candidate);
      g_autofree gchar *key = fs_path_normalize (candidate);
      g_autoptr(FsEntry) base = fs_index_lookup (self->index, key, NULL);

      if (base == NULL && !g_hash_table_contains (self->remote, key) &&
          !g_hash_table_contains (self->local, key) &&
          !g_file_test (abs, G_FILE_TEST_EXISTS | G_FILE_TEST_IS_SYMLINK))
        return g_steal_pointer (&candidate);
    }
}

static gboolean
do_conflict (FsEngine *self, const gchar *path, const FsEntry *local, const FsRecord *remote,
             GError **error)
{
  const gchar *disk_rel = fs_entry_disk_path (local);
  g_autofree gchar *copy_rel = unique_conflict_name (self, disk_rel);
  g_autofree gchar *src = abs_path (self, disk_rel);
  g_autofree gchar *dst = abs_path (self, copy_rel);
  g_autoptr(FsEntry) moved = NULL;

  if (!local_unchanged (self, local, path, disk_rel))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_BUSY, "‘%s’ changed while it was synced", disk_rel);
      return FALSE;
    }
  if (g_file_test (dst, G_FILE_TEST_EXISTS) || rename (src, dst) != 0)
    return set_io_error (error, g_file_test (dst, G_FILE_TEST_EXISTS) ? EEXIST : errno,
                         "Cannot keep the conflicting copy of", disk_rel);
  self->stats->conflicts++;
  g_ptr_array_add (self->messages,
                   g_strdup_printf ("Conflict: ‘%s’ changed on both sides; this device's version "
                                    "is kept as ‘%s’",
                                    disk_rel, copy_rel));
  g_message ("Conflict on ‘%s’; local version kept as ‘%s’", disk_rel, copy_rel);

  /* The path is now empty locally: take the remote version there. */
  if (!do_download (self, path, NULL, remote, error))
    return FALSE;

  /* The copy is a new file; a directory's content follows on the next scan. */
  if (local->kind == FS_KIND_DIR)
    return TRUE;
  moved = fs_entry_copy (local);
  g_free (moved->path);
  g_free (moved->disk_path);
  moved->path = fs_path_normalize (copy_rel);
  moved->disk_path = g_strcmp0 (moved->path, copy_rel) != 0 ? g_strdup (copy_rel) : NULL;
  return do_upload (self, moved, g_hash_table_lookup (self->remote, moved->path), error);
}

/* ---- the sync run ------------------------------------------------------- */

static gboolean
is_fatal (const GError *error)
{
  return g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED) ||
         g_error_matches (error, FS_STORAGE_ERROR, FS_STORAGE_ERROR_AUTH) ||
         g_error_matches (error, FS_STORAGE_ERROR, FS_STORAGE_ERROR_TRANSIENT) ||
         g_error_matches (error, FS_STORAGE_ERROR, FS_STORAGE_ERROR_NO_BUCKET) ||
         g_error_matches (error, FS_STORAGE_ERROR, FS_STORAGE_ERROR_NO_SPACE) ||
         error->domain == FS_INDEX_ERROR;
}

static gboolean
run_action (FsEngine *self, const gchar *path, FsActionType action, GError **error)
{
  FsEntry *local = g_hash_table_lookup (self->local, path);
  g_autoptr(FsEntry) base = fs_index_lookup (self->index, path, error);
  FsRecord *remote = g_hash_table_lookup (self->remote, path);

  if (base == NULL && error != NULL && *error != NULL)
    return FALSE;
  g_debug ("%s: %s", path, fs_action_to_string (action));
  switch (action)
    {
    case FS_ACTION_NOTHING:
      /* Same content, new stat data (a touch): remember it so the next scan
       * does not hash the file again. */
      if (local != NULL && base != NULL && !fs_entry_same_stat (local, base))
        {
          g_autoptr(FsEntry) updated = fs_entry_copy (local);
          updated->version = g_strdup (base->version);
          return index_put (self, updated, error);
        }
      return TRUE;
    case FS_ACTION_UPLOAD:
      return do_upload (self, local, remote, error);
    case FS_ACTION_DOWNLOAD:
      return do_download (self, path, local, remote, error);
    case FS_ACTION_DELETE_REMOTE:
      return do_delete_remote (self, base, remote, error);
    case FS_ACTION_DELETE_LOCAL:
      return do_delete_local (self, local, base, error);
    case FS_ACTION_RECORD:
      {
        g_autoptr(FsEntry) updated = fs_entry_copy (local);
        g_free (updated->version);
        updated->version = g_strdup (remote->version);
        return index_put (self, updated, error);
      }
    case FS_ACTION_FORGET:
      return base == NULL || index_remove (self, path, error);
    case FS_ACTION_CONFLICT:
      return do_conflict (self, path, local, remote, error);
    default:
      g_assert_not_reached ();
    }
}

static gint
compare_paths (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const gchar *const *) a, *(const gchar *const *) b);
}

gboolean
fs_engine_sync (FsEngine *self, gboolean audit, FsSyncStats *stats, GPtrArray *messages,
                GCancellable *cancellable, GError **error)
{
  g_autoptr(GPtrArray) own_messages = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GHashTable) base = NULL;
  g_autoptr(FsScanResult) scan = NULL;
  g_autoptr(GHashTable) all_paths = NULL;
  g_autoptr(GPtrArray) paths = NULL;
  g_autoptr(GArray) actions = NULL;
  g_autoptr(GPtrArray) records = NULL;
  g_autoptr(GHashTable) remote = NULL;
  g_autoptr(GHashTable) by_version = NULL;
  FsJournalStats jstats = { 0 };
  FsSyncStats own_stats = { 0 };
  GHashTableIter iter;
  gpointer key;
  gboolean ok = TRUE;

  g_return_val_if_fail (FS_IS_ENGINE (self), FALSE);
  if (stats == NULL)
    stats = &own_stats;
  if (messages == NULL)
    messages = own_messages;
  memset (stats, 0, sizeof *stats);

  if (!check_folder (self->root, error))
    return FALSE;

  /* 1. What changed remotely: only journal records after our cursors. */
  if (!fs_journal_fetch (self->storage, self->crypto, self->prefix, self->index, audit, &jstats,
                         messages, error))
    return FALSE;
  stats->records_read = jstats.records_read;
  /* Our own records found in the journal (say, after a crash before the
   * index was updated) must never be overwritten. */
  self->next_seq = MAX (self->next_seq, fs_index_get_cursor (self->index, self->device_id) + 1);

  records = fs_index_list_records (self->index, error);
  if (records == NULL)
    return FALSE;
  by_version = g_hash_table_new (g_str_hash, g_str_equal);
  for (guint i = 0; i < records->len; i++)
    {
      FsRecord *r = g_ptr_array_index (records, i);
      g_hash_table_insert (by_version, r->version, r);
    }
  remote = fs_remote_tree_resolve (records);

  /* 2. What changed locally: a stat walk, hashing only what changed. */
  base = fs_index_load_all (self->index, error);
  if (base == NULL)
    return FALSE;
  scan = fs_scan (self->root, base, cancellable, error);
  if (scan == NULL)
    return FALSE;
  stats->files_hashed = scan->stats.files_hashed;
  stats->deferred = scan->stats.deferred;
  for (guint i = 0; i < scan->warnings->len; i++)
    g_ptr_array_add (messages, g_strdup (g_ptr_array_index (scan->warnings, i)));

  /* 3. Reconcile every path any side knows. */
  all_paths = g_hash_table_new (g_str_hash, g_str_equal);
  g_hash_table_iter_init (&iter, scan->entries);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    g_hash_table_add (all_paths, key);
  g_hash_table_iter_init (&iter, base);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    g_hash_table_add (all_paths, key);
  g_hash_table_iter_init (&iter, remote);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    g_hash_table_add (all_paths, key);
  paths = g_ptr_array_sized_new (g_hash_table_size (all_paths));
  g_hash_table_iter_init (&iter, all_paths);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    g_ptr_array_add (paths, key);
  g_ptr_array_sort (paths, compare_paths);

  actions = g_array_sized_new (FALSE, FALSE, sizeof (FsActionType), paths->len);
  for (guint i = 0; i < paths->len; i++)
    {
      const gchar *path = g_ptr_array_index (paths, i);
      FsActionType action = fs_reconcile (g_hash_table_lookup (scan->entries, path),
                                          g_hash_table_lookup (base, path),
                                          g_hash_table_lookup (remote, path));
      g_array_append_val (actions, action);
    }

  /* 4. Act: parents before children, then local deletions children first. */
  self->records = by_version;
  self->remote = remote;
  self->local = scan->entries;
  self->stats = stats;
  self->messages = messages;
  self->cancellable = cancellable;
  for (guint pass = 0; pass < 2 && ok; pass++)
    for (guint n = 0; n < paths->len && ok; n++)
      {
        guint i = pass == 0 ? n : paths->len - 1 - n;
        const gchar *path = g_ptr_array_index (paths, i);
        FsActionType action = g_array_index (actions, FsActionType, i);
        g_autoptr(GError) local_error = NULL;

        if ((action == FS_ACTION_DELETE_LOCAL) != (pass == 1))
          continue;
        if (run_action (self, path, action, &local_error))
          continue;
        if (is_fatal (local_error))
          {
            g_propagate_error (error, g_steal_pointer (&local_error));
            ok = FALSE;
          }
        else if (g_error_matches (local_error, G_IO_ERROR, G_IO_ERROR_BUSY))
          {
            stats->deferred++;
            g_ptr_array_add (messages, g_strdup_printf ("Deferred: %s", local_error->message));
          }
        else
          {
            stats->errors++;
            if (local_error->domain == FS_CRYPTO_ERROR)
              g_ptr_array_add (messages,
                               g_strdup_printf ("‘%s’ was not downloaded, its stored object is "
                                                "corrupt (%s); the local copy is untouched",
                                                path, local_error->message));
            else
              g_ptr_array_add (messages, g_strdup_printf ("‘%s’: %s", path, local_error->message));
          }
      }
  self->records = NULL;
  self->remote = NULL;
  self->local = NULL;
  self->stats = NULL;
  self->messages = NULL;
  self->cancellable = NULL;
  return ok;
}
