/* FsEngine: one synced folder and its one-shot two-way sync.
 *
 * Order of durability (DESIGN §2): an upload writes the content object, then
 * the journal record, then the index row; a download writes a temp file,
 * fsyncs it, re-checks the local file, renames, fsyncs the directory, then
 * updates the index. A crash between steps leaves nothing that the next sync
 * does not find again.
 *
 * Transfers run in parallel (max_workers): before the actions, every file
 * download is handed to a pool that decrypts it into a staging directory
 * (.foldersync.tmp.staging-*, removed at the end of the sync and as a stale
 * temp by the next one), and every file upload to the same pool that reads,
 * seals and puts its object. The actions themselves still run one by one on
 * the sync thread in path order: each takes its transfer's result (waiting
 * for it if needed), re-checks the local file, then renames / appends the
 * journal record / updates the index exactly as a sequential sync would. An
 * upload whose record is never published has its object deleted. */
#include "config.h"

#include <glib/gi18n-lib.h>
#include <errno.h>
#include <fcntl.h>
#include <gcrypt.h>
#include <gio/gunixinputstream.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs-crypto.h"
#include "fs-engine.h"
#include "fs-error.h"
#include "fs-gcrypt.h"
#include "fs-hash-stream.h"
#include "fs-stream-length.h"
#include "fs-index.h"
#include "fs-journal.h"
#include "fs-packer.h"
#include "fs-plugin-loader.h"
#include "fs-reconcile.h"
#include "fs-remote-tree.h"
#include "fs-scanner.h"

#define STORE_CONFIG_NAME "foldersync-store.json"
#define STORE_FORMAT_VERSION 1
#define TRASH_DIR ".foldersync.trash"
#define TEMP_TEMPLATE ".foldersync.tmp.XXXXXX"
#define COPY_BUFFER_SIZE (256 * 1024)
#define WRITEBACK_STEP (8 * 1024 * 1024)
#define STAGING_TEMPLATE ".foldersync.tmp.staging-XXXXXX"
/* A segment is written when it has this much JSON (or
 * FS_JOURNAL_SEGMENT_MAX_RECORDS records), and at the end of each pass. */
#define SEGMENT_MAX_BYTES (256 * 1024)
/* A batch of more changed paths than this is synced by a whole walk. */
#define TARGETED_MAX_PATHS 1000
#define DEFAULT_MAX_WORKERS 4
#define PROGRESS_INTERVAL_US (250 * 1000)
/* Small files go into pack objects when a sync uploads at least PACK_MIN_FILES
 * of them (a single edit keeps an object of its own); a pack is written at
 * PACK_MAX_BYTES or PACK_MAX_MEMBERS. docs/decisions.md, "Packs". */
#define PACK_FILE_MAX_SIZE (128 * 1024)
#define PACK_MIN_FILES 8
#define PACK_MAX_BYTES (4 * 1024 * 1024)
#define PACK_MAX_MEMBERS 1024

/* One transfer run ahead of the sequential pass by a worker of the pool: the
 * fetch of a remote file into the staging directory, or the read, seal and
 * put of a local file. The sequential pass only takes the result (in path
 * order, waiting for it if needed) and still decides everything. */
typedef enum {
  TRANSFER_DOWNLOAD,
  TRANSFER_UPLOAD,
} TransferKind;

typedef struct {
  TransferKind kind;
  const FsRecord *remote; /* download: borrowed from the sync's remote tree */
  const FsEntry *local;   /* upload: borrowed from the scan */
  FsRecord *record;       /* upload: the prepared record, its object written */
  gchar *tmp;             /* download: the staged file */
  struct stat st;         /* download: its stat */
  GError *error;
  gboolean object_read;
  gboolean done; /* under FsEngine.lock */
  gboolean taken;
} Transfer;

static void
transfer_free (Transfer *t)
{
  g_clear_pointer (&t->record, fs_record_free);
  g_free (t->tmp);
  g_clear_error (&t->error);
  g_free (t);
}

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
  int lock_fd;
  double delete_guard_share;
  guint delete_guard_min;
  gboolean confirm_deletes;
  guint max_workers;
  FsEngineProgressFunc progress_func;
  gpointer progress_data;
  GDestroyNotify progress_notify;
  FsEngineEventFunc event_func;
  gpointer event_data;
  GDestroyNotify event_notify;

  /* Per sync run. */
  GHashTable *records;      /* version → FsRecord or NULL: looked up in the index so far */
  GHashTable *remote;       /* effective path → FsRecord head or NULL (see remote_head()) */
  GHashTable *local;        /* path → FsEntry (scan) */
  GHashTable *actions;      /* path → FsActionType planned for it */
  GHashTable *lost;         /* path → the synced version base_lost() found lost */
  GHashTable *head_versions; /* versions that are heads (is_head_anywhere()) */
  FsIgnore *ignore;         /* the rules of the walk */
  FsSyncStats *stats;
  GPtrArray *messages;
  GCancellable *cancellable;
  GPtrArray *pending;       /* PendingRecord: written to the journal as one segment */
  gsize pending_bytes;
  gboolean seq_checked;     /* next_seq was checked against the store this sync */
  guint held_deletes;       /* held back by the last whole sync */

  /* Kept between syncs (a daemon's engine lives long): the ignore rules of
   * the last whole scan, so a sync of a few changed paths need not walk the
   * folder. The remote tree is kept in the index (its heads table), not in
   * memory: see ensure_remote_tree(). */
  FsIgnore *cache_ignore;

  /* Per sync run: the worker pool and what it was given. Workers read the
   * fields above (never the index, never @stats); everything they report is
   * in their Transfer or under @lock. */
  GThreadPool *pool;
  GHashTable *fetches;  /* FsRecord* → Transfer (downloads) */
  GHashTable *uploads;  /* FsEntry* → Transfer (uploads) */
  FsPacker *packer;     /* NULL unless this sync packs small files */
  gchar *staging;       /* absolute; NULL until a download is staged */
  GMutex lock;
  GCond cond;
  guint64 bytes_moved;  /* under @lock */
  FsSyncProgress progress;
  gint64 last_progress_us;
};

G_DEFINE_FINAL_TYPE (FsEngine, fs_engine, G_TYPE_OBJECT)

/* The head of @path in the remote tree (borrowed), or NULL. A whole sync
 * loaded every head; otherwise they are looked up in the index as needed. */
static FsRecord *
remote_head (FsEngine *self, const gchar *path)
{
  g_autoptr(GError) error = NULL;
  gpointer value = NULL;
  FsRecord *head;

  if (g_hash_table_lookup_extended (self->remote, path, NULL, &value))
    return value;
  head = fs_index_lookup_head (self->index, path, NULL, &error);
  if (error != NULL)
    g_warning ("Reading the remote tree: %s", error->message);
  g_hash_table_insert (self->remote, g_strdup (path), head);
  return head;
}

/* The record of @version as it was written (its disk spelling), or NULL. */
static FsRecord *
record_by_version (FsEngine *self, const gchar *version)
{
  g_autoptr(GError) error = NULL;
  gpointer value = NULL;
  FsRecord *record;

  if (g_hash_table_lookup_extended (self->records, version, NULL, &value))
    return value;
  record = fs_index_lookup_record (self->index, version, &error);
  if (error != NULL)
    g_warning ("Reading a journal record: %s", error->message);
  g_hash_table_insert (self->records, g_strdup (version), record);
  return record;
}

/* Whether @version is the head of some path (maybe under a conflict name).
 * Rare (a version that lost a sibling conflict, mostly): the heads are read
 * once, when first asked, not scanned per path; planning drops them, as our
 * records move them. */
static gboolean
is_head_anywhere (FsEngine *self, const gchar *version, gboolean *is_head, GError **error)
{
  if (self->head_versions == NULL)
    {
      self->head_versions = fs_index_head_versions (self->index, error);
      if (self->head_versions == NULL)
        return FALSE;
    }
  *is_head = g_hash_table_contains (self->head_versions, version);
  return TRUE;
}

/* Whether the version this device synced @base with left the remote tree
 * without anything replacing it: two chains of records of one path that did
 * not see each other (a directory two devices made, each then changed on
 * its own) both end there, the tree keeps one head per path, and the other
 * chain's won. Following @head would then drop @local's content everywhere,
 * so the caller keeps it if it is still here (as a conflict copy beside a
 * live head, or as the edit that beats a deletion) and then ends its chain
 * (retire_lost()). A directory has no content to lose; a version kept
 * under a conflict name is not lost. */
static gboolean
base_lost (FsEngine *self, const FsEntry *base, const FsRecord *head, gboolean *lost,
           GError **error)
{
  const FsRecord *ours;
  gboolean replaced = FALSE;
  gboolean kept = FALSE;

  *lost = FALSE;
  if (base == NULL || head == NULL || base->version == NULL
      || (base->kind != FS_KIND_FILE && base->kind != FS_KIND_SYMLINK)
      || g_strcmp0 (head->version, base->version) == 0
      || g_strcmp0 (head->replaces, base->version) == 0)
    return TRUE;
  ours = record_by_version (self, base->version);
  if (ours == NULL || ours->deleted)
    return TRUE;
  /* An ancestor of the head is replaced too (records_replaces). */
  if (!fs_index_version_replaced (self->index, base->version, &replaced, error))
    return FALSE;
  if (replaced)
    return TRUE;
  if (!is_head_anywhere (self, base->version, &kept, error))
    return FALSE;
  *lost = !kept;
  return TRUE;
}

/* Per sync: the heads and records the sync looks at, read from the index as
 * needed. */
static void
begin_remote (FsEngine *self)
{
  self->records = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                         (GDestroyNotify) fs_record_free);
  self->remote = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                        (GDestroyNotify) fs_record_free);
}

static void
end_remote (FsEngine *self)
{
  g_clear_pointer (&self->remote, g_hash_table_unref);
  g_clear_pointer (&self->records, g_hash_table_unref);
  g_clear_pointer (&self->head_versions, g_hash_table_unref);
}

#define HEADS_MARKER "heads_marker"
/* The derivation rule the kept heads follow, stored with the marker ("2:N"):
 * a table kept under an older rule is derived again once. 2: directories two
 * devices made are one (fs-remote-tree.c, "merged"). */
#define HEADS_RULE "2"

/* Whether the index's heads table is the remote tree of its records: it is
 * when it was written under this rule and the record marker has not moved
 * since. */
static gboolean
heads_valid (FsEngine *self, gint64 marker, gboolean *valid, GError **error)
{
  g_autofree gchar *stored = NULL;

  if (!fs_index_read_meta (self->index, HEADS_MARKER, &stored, error))
    return FALSE;
  *valid = stored != NULL && g_str_has_prefix (stored, HEADS_RULE ":")
           && g_ascii_strtoll (stored + strlen (HEADS_RULE ":"), NULL, 10) == marker;
  return TRUE;
}

static gboolean
set_heads_marker (FsEngine *self, gint64 marker, GError **error)
{
  g_autofree gchar *text = g_strdup_printf (HEADS_RULE ":%" G_GINT64_FORMAT, marker);
  return fs_index_set_meta (self->index, HEADS_MARKER, text, error);
}

/* Makes the index's heads table the remote tree of all its records. Derived
 * again (every record read, resolved) when records came in that are not
 * simple continuations of ours (another device's, a conflict, a contested
 * path), and on @force (an audit). */
static gboolean
ensure_remote_tree (FsEngine *self, gboolean force, GError **error)
{
  gint64 marker = fs_index_get_record_marker (self->index, error);
  g_autoptr(GPtrArray) records = NULL;
  g_autoptr(GHashTable) heads = NULL;
  g_autoptr(GHashTable) contested = NULL;
  GHashTableIter iter;
  gpointer key, value;
  gboolean valid;

  if (marker < 0 || !heads_valid (self, marker, &valid, error))
    return FALSE;
  if (valid && !force)
    return TRUE;
  records = fs_index_list_records (self->index, error);
  if (records == NULL)
    return FALSE;
  heads = fs_remote_tree_resolve_contested (records, &contested);
  g_debug ("remote tree derived again: %u records, %u heads", records->len,
           g_hash_table_size (heads));
  if (!fs_index_begin (self->index, error))
    return FALSE;
  if (!fs_index_clear_heads (self->index, error))
    goto fail;
  g_hash_table_iter_init (&iter, heads);
  while (g_hash_table_iter_next (&iter, &key, &value))
    if (!fs_index_put_head (self->index, key, ((FsRecord *) value)->version,
                            g_hash_table_contains (contested, key), error))
      goto fail;
  if (!set_heads_marker (self, marker, error))
    goto fail;
  return fs_index_commit (self->index, error);

fail:
  fs_index_rollback (self->index);
  return FALSE;
}

/* Inside flush_records()' transaction: our landed @record continues the
 * plain chain at its path (no conflict name involved), so the heads table
 * takes it as the new head, as deriving the tree again would. FALSE (and no
 * change) when it does not: the tree is derived again next time. */
static gboolean
apply_own_head (FsEngine *self, const FsRecord *record, GError **error)
{
  g_autofree gchar *key = fs_path_normalize (record->path);
  g_autoptr(FsRecord) head = NULL;
  g_autoptr(GError) local_error = NULL;
  gboolean contested = FALSE;

  if (key == NULL)
    return FALSE;
  head = fs_index_lookup_head (self->index, key, &contested, &local_error);
  if (local_error != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&local_error));
      return FALSE;
    }
  /* Another candidate at this path may win once the head moves (a chain of
   * another device's ends there, live, and beats our deletion): derive
   * instead. */
  if (contested)
    return FALSE;
  if (head == NULL ? record->replaces != NULL : g_strcmp0 (head->version, record->replaces) != 0)
    return FALSE;
  if (head != NULL)
    {
      g_autoptr(FsRecord) original = fs_index_lookup_record (self->index, head->version, error);
      g_autofree gchar *normalized = original != NULL ? fs_path_normalize (original->path) : NULL;
      if (g_strcmp0 (normalized, key) != 0)
        return FALSE;
    }
  return fs_index_put_head (self->index, key, record->version, FALSE, error);
}

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
  g_clear_pointer (&self->cache_ignore, fs_ignore_free);
  if (self->lock_fd >= 0)
    close (self->lock_fd);
  if (self->progress_notify != NULL)
    self->progress_notify (self->progress_data);
  if (self->event_notify != NULL)
    self->event_notify (self->event_data);
  g_mutex_clear (&self->lock);
  g_cond_clear (&self->cond);
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
  self->lock_fd = -1;
  self->delete_guard_share = 0.5;
  self->delete_guard_min = 10;
  self->max_workers = DEFAULT_MAX_WORKERS;
  g_mutex_init (&self->lock);
  g_cond_init (&self->cond);
}

void
fs_engine_set_progress_func (FsEngine *self, FsEngineProgressFunc func, gpointer user_data,
                             GDestroyNotify notify)
{
  g_return_if_fail (FS_IS_ENGINE (self));
  if (self->progress_notify != NULL)
    self->progress_notify (self->progress_data);
  self->progress_func = func;
  self->progress_data = user_data;
  self->progress_notify = notify;
}

void
fs_engine_set_event_func (FsEngine *self, FsEngineEventFunc func, gpointer user_data,
                          GDestroyNotify notify)
{
  g_return_if_fail (FS_IS_ENGINE (self));
  if (self->event_notify != NULL)
    self->event_notify (self->event_data);
  self->event_func = func;
  self->event_data = user_data;
  self->event_notify = notify;
}

void
fs_engine_set_max_workers (FsEngine *self, guint max_workers)
{
  g_return_if_fail (FS_IS_ENGINE (self));
  self->max_workers = max_workers > 0 ? max_workers : DEFAULT_MAX_WORKERS;
}

static void
emit_event (FsEngine *self, FsSyncEventType type, const gchar *path, const gchar *detail)
{
  if (self->event_func != NULL)
    self->event_func (type, path, detail, self->event_data);
}

static void
report_progress (FsEngine *self)
{
  guint64 moved;

  if (self->progress_func == NULL)
    return;
  g_mutex_lock (&self->lock);
  moved = self->bytes_moved;
  g_mutex_unlock (&self->lock);
  self->progress.bytes_done = MIN (moved, self->progress.bytes_total);
  self->last_progress_us = g_get_monotonic_time ();
  self->progress_func (&self->progress, self->progress_data);
}

static void
add_bytes_moved (FsEngine *self, guint64 n)
{
  g_mutex_lock (&self->lock);
  self->bytes_moved += n;
  g_mutex_unlock (&self->lock);
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
      g_set_error (error, FS_ENGINE_ERROR, FS_ENGINE_ERROR_FOLDER, _("Folder ‘%s’ is not an absolute path"),
                   path);
      return FALSE;
    }
  if (!g_file_test (path, G_FILE_TEST_IS_DIR))
    {
      g_set_error (error, FS_ENGINE_ERROR, FS_ENGINE_ERROR_FOLDER, _("Folder ‘%s’ does not exist"), path);
      return FALSE;
    }
  if (access (path, R_OK | W_OK | X_OK) != 0)
    {
      g_set_error (error, FS_ENGINE_ERROR, FS_ENGINE_ERROR_FOLDER, _("Folder ‘%s’ is not writable: %s"),
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
                           _("The store location is not a FolderSync store: it holds other data "
                             "and no %s"),
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
                       _("The store's %s is not valid JSON"), STORE_CONFIG_NAME);
          return FALSE;
        }
      o = json_node_get_object (json_parser_get_root (parser));
      if (g_strcmp0 (json_object_get_string_member_with_default (o, "format", ""), "foldersync") != 0)
        {
          g_set_error (error, FS_ENGINE_ERROR, FS_ENGINE_ERROR_NOT_A_STORE,
                       _("The store's %s does not describe a FolderSync store"), STORE_CONFIG_NAME);
          return FALSE;
        }
      if (json_object_get_int_member_with_default (o, "version", 0) > STORE_FORMAT_VERSION)
        {
          g_set_error (error, FS_ENGINE_ERROR, FS_ENGINE_ERROR_NOT_A_STORE,
                       _("The store uses format version %lld, newer than this FolderSync "
                         "understands (%d)"),
                       (long long) json_object_get_int_member_with_default (o, "version", 0),
                       STORE_FORMAT_VERSION);
          return FALSE;
        }
      if (g_strcmp0 (json_object_get_string_member_with_default (o, "key_id", ""), key_id) != 0)
        {
          g_set_error_literal (error, FS_ENGINE_ERROR, FS_ENGINE_ERROR_WRONG_KEY,
                               _("Wrong key: this store was created with a different key; "
                                 "nothing was changed"));
          return FALSE;
        }
      return TRUE;
    }
  g_set_error_literal (error, FS_ENGINE_ERROR, FS_ENGINE_ERROR_NOT_A_STORE,
                       _("The store's config object could not be read or created"));
  return FALSE;
}

/* One sync of a folder at a time: a second process would reuse journal
 * sequence numbers. The lock lives as long as the engine. */
static gboolean
lock_folder (FsEngine *self, GError **error)
{
  g_autofree gchar *lock_path = g_strconcat (self->index_path, ".lock", NULL);

  self->lock_fd = open (lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (self->lock_fd < 0)
    {
      g_set_error (error, FS_ENGINE_ERROR, FS_ENGINE_ERROR_FAILED, _("Cannot open ‘%s’: %s"),
                   lock_path, g_strerror (errno));
      return FALSE;
    }
  if (flock (self->lock_fd, LOCK_EX | LOCK_NB) != 0)
    {
      g_set_error (error, FS_ENGINE_ERROR, FS_ENGINE_ERROR_BUSY,
                   _("Folder ‘%s’ is being synced by another process"), self->root);
      return FALSE;
    }
  return TRUE;
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
                   _("Cannot create the state directory ‘%s’: %s"), index_dir, g_strerror (errno));
      return NULL;
    }
  if (!lock_folder (self, error))
    return NULL;
  self->index = fs_index_open (self->index_path, error);
  if (self->index == NULL)
    return NULL;

  if (!fs_index_read_meta (self->index, "device_id", &self->device_id, error))
    return NULL;
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
    {
      if (!fs_device_name_valid (config->device_name))
        {
          g_set_error_literal (error, FS_ENGINE_ERROR, FS_ENGINE_ERROR_INVALID_ARGUMENT,
                               _("A device name must be 1 to 64 characters without ‘/’, "
                                 "parentheses or control characters"));
          return NULL;
        }
      self->device_name = g_strdup (config->device_name);
    }
  else
    self->device_name = g_strdup_printf ("%s-%.4s", g_get_host_name (), self->device_id);
  fs_engine_set_max_workers (self, config->max_workers);
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
  /* TRANSLATORS: "Cannot read ‘notes/a.txt’: Permission denied"; the first
   * %s is one of the "Cannot …" phrases. */
  g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errnum), _("%s ‘%s’: %s"), what, rel,
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

/* Stat data of @abs as an FsEntry for key @path (no hash); NULL when absent. */
static FsEntry *
lstat_entry_at (const gchar *abs, const gchar *path, const gchar *disk_rel)
{
  struct stat st;
  FsEntry *e;

  if (lstat (abs, &st) != 0)
    return NULL;
  e = fs_entry_new (path, S_ISDIR (st.st_mode) ? FS_KIND_DIR
                          : S_ISLNK (st.st_mode) ? FS_KIND_SYMLINK
                                                 : FS_KIND_FILE);
  if (disk_rel != NULL && g_strcmp0 (path, disk_rel) != 0)
    e->disk_path = g_strdup (disk_rel);
  /* As the scanner records it: a link's size is its target's length. */
  e->size = e->kind == FS_KIND_DIR ? 0 : (guint64) st.st_size;
  e->mtime_ns = fs_stat_mtime_ns (&st);
  e->inode = (guint64) st.st_ino;
  e->mode = st.st_mode & 07777;
  return e;
}

static FsEntry *
lstat_entry (FsEngine *self, const gchar *path, const gchar *disk_rel)
{
  g_autofree gchar *abs = abs_path (self, disk_rel);
  return lstat_entry_at (abs, path, disk_rel);
}

static gboolean
same_disk_state (const FsEntry *now, const FsEntry *scanned)
{
  if (now == NULL || scanned == NULL)
    return now == scanned;
  if (now->kind != scanned->kind)
    return FALSE;
  if (now->kind == FS_KIND_DIR)
    return TRUE;
  return now->size == scanned->size && now->mtime_ns == scanned->mtime_ns &&
         now->inode == scanned->inode;
}

/* Whether the disk still holds what the scan saw at @path (or still nothing). */
static gboolean
local_unchanged (FsEngine *self, const FsEntry *scanned, const gchar *path, const gchar *disk_rel)
{
  g_autoptr(FsEntry) now = lstat_entry (self, path, disk_rel);
  return same_disk_state (now, scanned);
}

/* A conflict name for @disk_rel that nothing uses yet: not on disk, not
 * remote, not in the index. Two conflicts on one path within a second get
 * " 2", " 3", … */
static gchar *
unique_conflict_name (FsEngine *self, const gchar *disk_rel, const gchar *device, gint64 time_us)
{
  g_autofree gchar *name = fs_conflict_name (disk_rel, device, time_us);
  const gchar *close = strrchr (name, ')');

  for (guint n = 1;; n++)
    {
      g_autofree gchar *candidate = n == 1 ? g_strdup (name)
                                           : g_strdup_printf ("%.*s %u%s", (int) (close - name),
                                                              name, n, close);
      g_autofree gchar *abs = abs_path (self, candidate);
      g_autofree gchar *key = fs_path_normalize (candidate);
      g_autoptr(FsEntry) base = fs_index_lookup (self->index, key, NULL);

      if (base == NULL && remote_head (self, key) == NULL &&
          !g_hash_table_contains (self->local, key) &&
          !g_file_test (abs, G_FILE_TEST_EXISTS | G_FILE_TEST_IS_SYMLINK))
        return g_steal_pointer (&candidate);
    }
}

/* Renames what is at @abs (the path @disk_rel, or a temp name holding what
 * was there) to a fresh conflict name beside @disk_rel. */
static gboolean
keep_as_conflict_copy (FsEngine *self, const gchar *abs, const gchar *disk_rel, const gchar *why,
                       GError **error)
{
  g_autofree gchar *copy_rel = unique_conflict_name (self, disk_rel, self->device_name,
                                                     g_get_real_time ());
  g_autofree gchar *copy_abs = abs_path (self, copy_rel);

  if (rename (abs, copy_abs) != 0)
    return set_io_error (error, errno, _("Cannot keep a copy of"), disk_rel);
  self->stats->conflicts++;
  g_ptr_array_add (self->messages, g_strdup_printf (_("Conflict: ‘%s’ %s; it is kept as ‘%s’"),
                                                    disk_rel, why, copy_rel));
  g_message ("Conflict on ‘%s’ (%s); kept as ‘%s’", disk_rel, why, copy_rel);
  emit_event (self, FS_SYNC_EVENT_CONFLICT, disk_rel, copy_rel);
  return TRUE;
}

/* Makes every parent of @disk_rel a real directory. A link or a file where
 * the remote tree has a directory with content is moved aside as a conflict
 * copy (a directory with content wins), so nothing is ever written through
 * a symbolic link out of the folder. */
static gboolean
prepare_parents (FsEngine *self, const gchar *disk_rel, GError **error)
{
  g_auto(GStrv) parts = g_strsplit (disk_rel, "/", -1);
  g_autoptr(GString) rel = g_string_new (NULL);
  guint n = g_strv_length (parts);

  for (guint i = 0; i + 1 < n; i++)
    {
      g_autofree gchar *abs = NULL;
      struct stat st;

      if (i > 0)
        g_string_append_c (rel, '/');
      g_string_append (rel, parts[i]);
      abs = abs_path (self, rel->str);
      if (lstat (abs, &st) == 0)
        {
          if (S_ISDIR (st.st_mode))
            continue;
          if (!keep_as_conflict_copy (self, abs, rel->str,
                                      _("is a directory with content on another device"), error))
            return FALSE;
        }
      else if (errno != ENOENT)
        return set_io_error (error, errno, _("Cannot inspect"), rel->str);
      if (mkdir (abs, 0755) != 0 && errno != EEXIST)
        return set_io_error (error, errno, _("Cannot create the directory"), rel->str);
    }
  return TRUE;
}

/* rename() that never replaces: "name", then "name (2)", "name (3)", … */
static gboolean
rename_unique (const gchar *src, const gchar *dst_base)
{
  g_autofree gchar *dst = g_strdup (dst_base);

  for (guint n = 2; n < 1000; n++)
    {
      if (renameat2 (AT_FDCWD, src, AT_FDCWD, dst, RENAME_NOREPLACE) == 0)
        return TRUE;
      if (errno == EINVAL || errno == ENOSYS)
        {
          if (!g_file_test (dst, G_FILE_TEST_EXISTS | G_FILE_TEST_IS_SYMLINK))
            return rename (src, dst) == 0;
        }
      else if (errno != EEXIST)
        return FALSE;
      g_free (dst);
      dst = g_strdup_printf ("%s (%u)", dst_base, n);
    }
  errno = EEXIST;
  return FALSE;
}

/* Moves @disk_rel into .foldersync.trash/DAY/ inside the folder, under its
 * own path if possible, else under its base name; on another file system
 * (a mount point inside the folder) into a trash folder beside it. */
gboolean
fs_engine_move_to_trash (const gchar *root, const gchar *disk_rel, GError **error)
{
  g_autoptr(GDateTime) now = g_date_time_new_now_utc ();
  g_autofree gchar *day = g_date_time_format (now, "%Y-%m-%d");
  g_autofree gchar *src = g_build_filename (root, disk_rel, NULL);
  g_autofree gchar *base = g_path_get_basename (disk_rel);
  g_autofree gchar *src_dir = g_path_get_dirname (src);
  g_autofree gchar *nested = g_build_filename (root, TRASH_DIR, day, disk_rel, NULL);
  g_autofree gchar *flat = g_build_filename (root, TRASH_DIR, day, base, NULL);
  g_autofree gchar *beside = g_build_filename (src_dir, TRASH_DIR, base, NULL);
  const gchar *candidates[] = { nested, flat, beside };
  int saved = 0;

  for (gsize i = 0; i < G_N_ELEMENTS (candidates); i++)
    {
      g_autofree gchar *dir = g_path_get_dirname (candidates[i]);
      if (g_mkdir_with_parents (dir, 0700) == 0 && rename_unique (src, candidates[i]))
        return TRUE;
      saved = errno;
    }
  return set_io_error (error, saved, _("Cannot move to the trash"), disk_rel);
}

static gboolean
move_to_trash (FsEngine *self, const gchar *disk_rel, GError **error)
{
  return fs_engine_move_to_trash (self->root, disk_rel, error);
}

/* ---- index and journal updates ------------------------------------------ */

/* Appends @record to our journal, then records it and @base (NULL: forget the
 * path) in the index in one transaction. */
/* A record waiting for its segment, and what to do when the segment landed. */
typedef struct
{
  FsRecord *record;
  FsEntry *base;       /* the index entry to put, or NULL */
  gchar *forget_path;  /* the index entry to remove, or NULL */
  const gchar *direction; /* the FILE_SYNCED event: "up", "deleted-remote" */
  FsSyncStats counts;  /* added to the sync's stats when it landed */
  gchar *retired;      /* the lost version it ends (retire_lost()), or NULL */
} PendingRecord;

static void
pending_record_free (PendingRecord *p)
{
  fs_record_free (p->record);
  fs_entry_free (p->base);
  g_free (p->forget_path);
  g_free (p->retired);
  g_free (p);
}

static void
add_counts (FsSyncStats *stats, const FsSyncStats *counts)
{
  stats->files_up += counts->files_up;
  stats->files_hashed += counts->files_hashed;
  stats->bytes_up += counts->bytes_up;
  stats->dirs_created += counts->dirs_created;
  stats->deleted_remote += counts->deleted_remote;
}

static gboolean forget_lost (FsEngine *self, const gchar *version, GError **error);

/* Writes the queued records to the journal as one segment, then records
 * them, their cursor and their index entries in one transaction. Until then
 * nothing of them is in the index: a crash before leaves only unreferenced
 * objects, and the next sync does the work again; a crash between the two
 * is caught up from the journal (catch_up_own_records). */
static gboolean
flush_records (FsEngine *self, GError **error)
{
  g_autoptr(GPtrArray) pending = self->pending;
  g_autofree const FsRecord **records = NULL;
  g_autofree gchar *next = NULL;
  guint n = pending != NULL ? pending->len : 0;
  gint64 marker;
  gboolean heads_follow;

  self->pending = NULL;
  self->pending_bytes = 0;
  if (n == 0)
    return TRUE;
  /* No record may name a pack member that is not stored yet. */
  if (self->packer != NULL && !fs_packer_flush (self->packer, self->cancellable, error))
    return FALSE;
  records = g_new (const FsRecord *, n);
  for (gboolean checked = self->seq_checked;; checked = FALSE)
    {
      g_autoptr(GError) local_error = NULL;

      /* A segment's numbers must all be free, and create-if-absent guards
       * only its last key: start past every object of ours already there (an
       * index restored from a backup, a cloned device). Once per sync, and
       * again when a key was taken. */
      if (!checked)
        {
          gint64 newest;
          if (!fs_journal_newest_seq (self->storage, self->prefix, self->device_id,
                                      self->next_seq - 1, &newest, error))
            return FALSE;
          self->next_seq = newest + 1;
          self->seq_checked = TRUE;
        }

      for (guint i = 0; i < n; i++)
        {
          PendingRecord *p = g_ptr_array_index (pending, i);
          p->record->seq = self->next_seq + i;
          records[i] = p->record;
        }
      if (fs_journal_append_segment (self->storage, self->crypto, self->prefix, records, n,
                                     &local_error))
        break;
      /* A taken sequence number (an index restored from a backup, say):
       * never overwrite, take the next. A segment whose outcome is unknown
       * (a timeout) may have landed: none of its numbers is reused. */
      if (g_error_matches (local_error, FS_STORAGE_ERROR, FS_STORAGE_ERROR_PRECONDITION_FAILED))
        {
          self->next_seq++;
          continue; /* and look for the objects above it again */
        }
      if (g_error_matches (local_error, FS_STORAGE_ERROR, FS_STORAGE_ERROR_TRANSIENT))
        {
          g_autofree gchar *skip = NULL;
          self->next_seq += n;
          skip = g_strdup_printf ("%" G_GINT64_FORMAT, self->next_seq);
          fs_index_set_meta (self->index, "next_seq", skip, NULL);
        }
      g_propagate_error (error, g_steal_pointer (&local_error));
      return FALSE;
    }
  self->next_seq += n;
  self->stats->records_written += n;

  next = g_strdup_printf ("%" G_GINT64_FORMAT, self->next_seq);
  marker = fs_index_get_record_marker (self->index, error);
  if (marker < 0 || !heads_valid (self, marker, &heads_follow, error))
    return FALSE;
  if (!fs_index_begin (self->index, error))
    return FALSE;
  for (guint i = 0; i < n; i++)
    {
      PendingRecord *p = g_ptr_array_index (pending, i);
      if (!fs_index_add_record (self->index, p->record, error) ||
          (p->base != NULL && !fs_index_put (self->index, p->base, error)) ||
          (p->forget_path != NULL && !fs_index_remove (self->index, p->forget_path, error)) ||
          (p->retired != NULL && !forget_lost (self, p->retired, error)))
        {
          fs_index_rollback (self->index);
          return FALSE;
        }
    }
  /* Our records move the heads they continue, in the same transaction, so
   * the next sync need not derive the tree again. */
  for (guint i = 0; i < n && heads_follow; i++)
    {
      PendingRecord *p = g_ptr_array_index (pending, i);
      g_autoptr(GError) local_error = NULL;

      heads_follow = apply_own_head (self, p->record, &local_error);
      if (local_error != NULL)
        {
          fs_index_rollback (self->index);
          g_propagate_error (error, g_steal_pointer (&local_error));
          return FALSE;
        }
    }
  if (heads_follow)
    {
      marker = fs_index_get_record_marker (self->index, error);
      if (marker < 0 || !set_heads_marker (self, marker, error))
        {
          fs_index_rollback (self->index);
          return FALSE;
        }
    }
  if (!fs_index_set_cursor (self->index, self->device_id, self->next_seq - 1, error) ||
      !fs_index_set_meta (self->index, "next_seq", next, error))
    {
      fs_index_rollback (self->index);
      return FALSE;
    }
  if (!fs_index_commit (self->index, error))
    return FALSE;
  for (guint i = 0; i < n; i++)
    {
      PendingRecord *p = g_ptr_array_index (pending, i);
      add_counts (self->stats, &p->counts);
      if (p->base != NULL || p->forget_path != NULL)
        emit_event (self, FS_SYNC_EVENT_FILE_SYNCED,
                    p->base != NULL ? p->base->path : p->forget_path, p->direction);
    }
  return TRUE;
}

/* Queues @record (taking it) for the journal; @base and @forget_path are
 * applied to the index when its segment landed, @counts added to the stats. */
static gboolean
commit_record (FsEngine *self, FsRecord *record, FsEntry *base, const gchar *forget_path,
               const gchar *direction, const FsSyncStats *counts, GError **error)
{
  PendingRecord *p = g_new0 (PendingRecord, 1);
  g_autoptr(GBytes) json = NULL;

  record->device_id = g_strdup (self->device_id);
  record->device_name = g_strdup (self->device_name);
  record->time_us = g_get_real_time ();
  p->record = record;
  p->base = base;
  p->forget_path = g_strdup (forget_path);
  p->direction = direction;
  p->counts = *counts;
  if (self->pending == NULL)
    self->pending = g_ptr_array_new_with_free_func ((GDestroyNotify) pending_record_free);
  g_ptr_array_add (self->pending, p);
  json = fs_record_to_json (record);
  self->pending_bytes += g_bytes_get_size (json);
  if (self->pending->len >= FS_JOURNAL_SEGMENT_MAX_RECORDS || self->pending_bytes >= SEGMENT_MAX_BYTES)
    return flush_records (self, error);
  return TRUE;
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
  /* Left out for a file hashed while it is sealed (the record has it). */
  if (r->hash != NULL)
    {
      json_builder_set_member_name (b, "hash");
      json_builder_add_string_value (b, r->hash);
    }
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  data = json_generator_to_data (gen, &len);
  return g_bytes_new_take (data, len);
}

/* More than the sealing of a file of PACK_FILE_MAX_SIZE adds (preamble,
 * header of at most a few KiB, one chunk's frame). */
#define PACK_SEAL_SLACK (64 * 1024)

/* Reads @in to its end; more than @max bytes is an error (the file grew). */
static GBytes *
read_all (GInputStream *in, gsize max, GCancellable *cancellable, GError **error)
{
  g_autoptr(GByteArray) buf = g_byte_array_sized_new ((guint) MIN (max, 64 * 1024));
  guint8 chunk[16 * 1024];

  for (;;)
    {
      gssize n = g_input_stream_read (in, chunk, sizeof chunk, cancellable, error);
      if (n < 0)
        return NULL;
      if (n == 0)
        break;
      if (buf->len + (gsize) n > max)
        {
          g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_BUSY,
                               _("The file grew while it was synced"));
          return NULL;
        }
      g_byte_array_append (buf, chunk, (guint) n);
    }
  return g_byte_array_free_to_bytes (g_steal_pointer (&buf));
}

static gboolean
upload_file_once (FsEngine *self, const FsEntry *local, FsRecord *record, GError **error)
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
  g_autoptr(GBytes) member = NULL;
  gboolean packed = self->packer != NULL && local->size <= PACK_FILE_MAX_SIZE;
  struct stat st;
  int fd;

  fd = open (abs, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    {
      if (errno == ENOENT || errno == ELOOP)
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_BUSY, _("‘%s’ changed while it was synced"),
                       disk_rel);
          return FALSE;
        }
      return set_io_error (error, errno, _("Cannot read"), disk_rel);
    }
  file_in = g_unix_input_stream_new (fd, TRUE);
  /* A file the scan did not hash (new, see merge_defer_hash()) is hashed
   * here, as it is sealed; that it was read untorn then rests on its stat. */
  if (fstat (fd, &st) != 0 || (guint64) st.st_size != local->size || st.st_ino != local->inode ||
      (local->hash == NULL && fs_stat_mtime_ns (&st) != local->mtime_ns))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_BUSY, _("‘%s’ changed while it was synced"), disk_rel);
      return FALSE;
    }

  record->kind = FS_KIND_FILE;
  record->size = local->size;
  record->mtime_ns = local->mtime_ns;
  record->mode = local->mode;
  g_free (record->hash);
  record->hash = g_strdup (local->hash);
  g_free (record->object);
  record->object = g_strdup (object);
  header = object_header (record);

  hashing = fs_hash_input_stream_new (file_in);
  fs_stream_set_length (hashing, local->size);
  sealed = fs_crypto_seal_stream (self->crypto, header, hashing, NULL, error);
  if (sealed == NULL)
    return FALSE;
  if (packed)
    {
      /* Sealed in memory, and into a pack only once it proved untorn. */
      member = read_all (sealed, local->size + PACK_SEAL_SLACK, self->cancellable, error);
      if (member == NULL)
        return FALSE;
    }
  else
    {
      g_autoptr(GError) local_error = NULL;

      if (!fs_storage_put (self->storage, key, sealed, NULL, NULL, self->cancellable,
                           &local_error))
        {
          /* Sent while read, it was not the length announced: it changed. */
          if (g_error_matches (local_error, G_IO_ERROR, G_IO_ERROR_PARTIAL_INPUT))
            g_set_error (error, G_IO_ERROR, G_IO_ERROR_BUSY, _("‘%s’ changed while it was synced"),
                         disk_rel);
          else
            g_propagate_error (error, g_steal_pointer (&local_error));
          return FALSE;
        }
    }

  /* Never publish a torn file: what was read must be what was scanned. */
  hash = fs_hash_input_stream_get_hex (FS_HASH_INPUT_STREAM (hashing));
  if ((local->hash != NULL && g_strcmp0 (hash, local->hash) != 0) ||
      fs_hash_input_stream_get_bytes (FS_HASH_INPUT_STREAM (hashing)) != local->size ||
      !local_unchanged (self, local, local->path, disk_rel))
    {
      if (!packed)
        fs_storage_delete (self->storage, key, NULL);
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_BUSY, _("‘%s’ changed while it was synced"), disk_rel);
      return FALSE;
    }
  if (record->hash == NULL)
    record->hash = g_steal_pointer (&hash);
  if (packed)
    {
      g_clear_pointer (&record->object, g_free);
      if (!fs_packer_add (self->packer, member, &record->object, &record->object_offset,
                          self->cancellable, error))
        return FALSE;
      record->object_length = (gint64) g_bytes_get_size (member);
    }
  add_bytes_moved (self, local->size);
  return TRUE;
}

/* Deletes the content object of @record (written, never published). */
static void
delete_unpublished (FsEngine *self, const FsRecord *record)
{
  g_autofree gchar *key = NULL;

  /* A pack member is left: the pack holds other files too. */
  if (record->object == NULL || record->object_length > 0)
    return;
  key = g_strconcat (self->prefix, record->object, NULL);
  fs_storage_delete (self->storage, key, NULL);
}

/* How often a file is read and put again when its put failed after part of
 * it was sent (FS_STORAGE_ERROR_STREAM_CONSUMED: a backend that sends while
 * the file is read cannot replay the body itself). */
#define PUT_ATTEMPTS 3

static gboolean
upload_file (FsEngine *self, const FsEntry *local, FsRecord *record, GError **error)
{
  for (guint attempt = 1;; attempt++)
    {
      g_autoptr(GError) local_error = NULL;

      if (upload_file_once (self, local, record, &local_error))
        return TRUE;
      if (!g_error_matches (local_error, FS_STORAGE_ERROR, FS_STORAGE_ERROR_STREAM_CONSUMED))
        {
          g_propagate_error (error, g_steal_pointer (&local_error));
          return FALSE;
        }
      /* The body may have arrived with its answer lost: that object goes,
       * and the next attempt is a version of its own, so the version a
       * record names identifies one upload. */
      delete_unpublished (self, record);
      if (attempt == PUT_ATTEMPTS)
        {
          g_set_error (error, FS_STORAGE_ERROR, FS_STORAGE_ERROR_TRANSIENT, "‘%s’: %s",
                       fs_entry_disk_path (local), local_error->message);
          return FALSE;
        }
      g_free (record->version);
      record->version = random_id (16);
      g_debug ("%s: put again: %s", local->path, local_error->message);
    }
}

/* Blocks until a worker finished @t; reports progress meanwhile. Sync thread. */
static void
wait_transfer (FsEngine *self, Transfer *t)
{
  g_mutex_lock (&self->lock);
  while (!t->done)
    {
      gint64 deadline = g_get_monotonic_time () + PROGRESS_INTERVAL_US;
      if (!g_cond_wait_until (&self->cond, &self->lock, deadline) && !t->done)
        {
          g_mutex_unlock (&self->lock);
          report_progress (self);
          g_mutex_lock (&self->lock);
        }
    }
  g_mutex_unlock (&self->lock);
  t->taken = TRUE;
}

static gboolean
do_upload (FsEngine *self, const FsEntry *local, const FsRecord *remote, GError **error)
{
  g_autoptr(FsRecord) record = NULL;
  g_autoptr(FsEntry) base = NULL;
  FsSyncStats counts = { 0 };
  Transfer *t = NULL;

  if (local->kind == FS_KIND_FILE && self->uploads != NULL)
    t = g_hash_table_lookup (self->uploads, local);
  if (t != NULL && !t->taken)
    {
      wait_transfer (self, t);
      if (t->error != NULL)
        {
          g_propagate_error (error, g_steal_pointer (&t->error));
          return FALSE;
        }
      record = g_steal_pointer (&t->record);
      /* Read by a worker a moment ago; published only if the file is still
       * what the scan saw now, as a sequential upload would check. */
      if (!local_unchanged (self, local, local->path, fs_entry_disk_path (local)))
        {
          delete_unpublished (self, record);
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_BUSY, _("‘%s’ changed while it was synced"),
                       fs_entry_disk_path (local));
          return FALSE;
        }
    }
  else
    {
      record = fs_record_new ();
      record->version = random_id (16);
    }
  record->replaces = remote != NULL ? g_strdup (remote->version) : NULL;
  record->path = g_strdup (fs_entry_disk_path (local));
  record->kind = local->kind;
  record->mode = local->mode;
  record->mtime_ns = local->mtime_ns;
  switch (local->kind)
    {
    case FS_KIND_FILE:
      if (record->object == NULL && !upload_file (self, local, record, error))
        return FALSE;
      /* A pack member's pack is counted once, when the sync ends. */
      if (record->object_length <= 0)
        self->stats->objects_written++;
      counts.files_up = 1;
      counts.bytes_up = local->size;
      counts.files_hashed = local->hash == NULL; /* by its upload */
      break;
    case FS_KIND_SYMLINK:
      record->target = g_strdup (local->target);
      record->hash = g_strdup (local->hash);
      break;
    case FS_KIND_DIR:
      counts.dirs_created = 1;
      break;
    case FS_KIND_NONE:
    default:
      g_assert_not_reached ();
    }
  base = fs_entry_copy (local);
  g_free (base->version);
  base->version = g_strdup (record->version);
  if (base->hash == NULL)
    base->hash = g_strdup (record->hash);
  return commit_record (self, g_steal_pointer (&record), g_steal_pointer (&base), NULL, "up",
                        &counts, error);
}

/* A new deletion record that replaces @of, at @of's own path. */
static FsRecord *
deletion_of (const FsRecord *of)
{
  FsRecord *record = fs_record_new ();

  record->version = random_id (16);
  record->replaces = g_strdup (of->version);
  record->path = g_strdup (of->path);
  record->kind = of->kind;
  record->deleted = TRUE;
  return record;
}

static gboolean
do_delete_remote (FsEngine *self, const FsEntry *base, const FsRecord *remote, GError **error)
{
  FsRecord *record = deletion_of (remote);
  const FsSyncStats counts = { .deleted_remote = 1 };

  return commit_record (self, record, NULL, base != NULL ? base->path : remote->path,
                        "deleted-remote", &counts, error);
}

#define LOST_PREFIX "lost/"

/* Ends the chain of @version, which lost its path to another chain
 * (base_lost()), with a deletion once its content was kept (a conflict copy,
 * a new version) or deleted here: "lost" is not lasting (which of two chains
 * wins is a comparison of their current heads), so the lost chain must never
 * take the path back when the other one moves on (a live record beats a
 * deletion), and another device that synced the same version must see it
 * replaced and follow the head instead of keeping a copy of its own. */
static gboolean
retire_lost (FsEngine *self, const gchar *version, GError **error)
{
  const FsRecord *ours = record_by_version (self, version);
  PendingRecord *p;
  const FsSyncStats counts = { 0 };

  if (ours == NULL)
    return forget_lost (self, version, error);
  if (!commit_record (self, deletion_of (ours), NULL, NULL, "deleted-remote", &counts, error))
    return FALSE;
  if (self->pending == NULL) /* it filled a segment, which landed */
    return forget_lost (self, version, error);
  p = g_ptr_array_index (self->pending, self->pending->len - 1);
  p->retired = g_strdup (version);
  return TRUE;
}

/* The index remembers a lost version from before its content is kept until
 * its deletion record landed: keeping it may already be in the index (the
 * download of the head), its deletion record not yet in the journal, when
 * the sync fails or the process dies. retire_noted() finishes it then. */
static gboolean
note_lost (FsEngine *self, const gchar *version, const gchar *path, GError **error)
{
  g_autofree gchar *key = g_strconcat (LOST_PREFIX, version, NULL);
  return fs_index_set_meta (self->index, key, path, error);
}

static gboolean
forget_lost (FsEngine *self, const gchar *version, GError **error)
{
  g_autofree gchar *key = g_strconcat (LOST_PREFIX, version, NULL);
  return fs_index_delete_meta (self->index, key, error);
}

/* Whether a record of this sync, not landed yet, ends @version. */
static gboolean
retire_pending (FsEngine *self, const gchar *version)
{
  for (guint i = 0; self->pending != NULL && i < self->pending->len; i++)
    {
      PendingRecord *p = g_ptr_array_index (self->pending, i);
      if (g_strcmp0 (p->retired, version) == 0)
        return TRUE;
    }
  return FALSE;
}

/* Retires each lost version noted by a sync that did not finish, once its
 * path moved on here. A note whose path is still at that version is this
 * sync's to act on (it is still lost: planned) or stale (the version is its
 * path's head again). A stale note is forgotten, never acted on: so is one
 * whose version a record replaces already, or that is a head anywhere now,
 * or whose path is ignored now.
 *
 * "A head" is the heads table: the tree as this sync began, plus our own
 * records that continued a plain chain. On purpose not a tree derived
 * again here: where this sync deleted or edited the path the lost version
 * had lost, a fresh derivation may give it the path back (a live record
 * beats a deletion; ids decide between two live ones), which is the very
 * flip-back that ending its chain prevents; its content is kept already. */
static gboolean
retire_noted (FsEngine *self, GError **error)
{
  g_autoptr(GHashTable) noted = fs_index_list_meta (self->index, LOST_PREFIX, error);
  GHashTableIter iter;
  gpointer version, path;

  if (noted == NULL)
    return FALSE;
  g_hash_table_iter_init (&iter, noted);
  while (g_hash_table_iter_next (&iter, &version, &path))
    {
      g_autoptr(FsEntry) entry = NULL;
      g_autoptr(GError) local_error = NULL;
      const FsRecord *head;
      gboolean replaced = FALSE;
      gboolean is_head = FALSE;

      if (retire_pending (self, version))
        continue;
      if (self->ignore != NULL && fs_ignore_matches (self->ignore, path, FALSE))
        {
          if (!forget_lost (self, version, error))
            return FALSE;
          continue;
        }
      entry = fs_index_lookup (self->index, path, &local_error);
      if (local_error != NULL)
        {
          g_propagate_error (error, g_steal_pointer (&local_error));
          return FALSE;
        }
      if (entry != NULL && g_strcmp0 (entry->version, version) == 0)
        {
          head = remote_head (self, path);
          if (head != NULL && g_strcmp0 (head->version, version) == 0
              && !forget_lost (self, version, error))
            return FALSE;
          continue;
        }
      if (!fs_index_version_replaced (self->index, version, &replaced, error))
        return FALSE;
      /* A head again, at its path or under a conflict name: live, and
       * ending its chain would delete it everywhere. */
      if (!replaced && !is_head_anywhere (self, version, &is_head, error))
        return FALSE;
      if (replaced || is_head)
        {
          if (!forget_lost (self, version, error))
            return FALSE;
        }
      else if (!retire_lost (self, version, error))
        return FALSE;
    }
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
      const gchar *hash;

      o = json_node_get_object (json_parser_get_root (parser));
      hash = json_object_get_string_member_with_default (o, "hash", NULL);
      /* The writer's own account of the content, where it agrees with the record. */
      if (g_strcmp0 (json_object_get_string_member_with_default (o, "version", ""),
                     remote->version) == 0 &&
          json_object_get_int_member_with_default (o, "size", -1) == (gint64) remote->size &&
          (hash == NULL || g_strcmp0 (hash, remote->hash) == 0))
        return TRUE;
    }
  g_set_error_literal (error, FS_CRYPTO_ERROR, FS_CRYPTO_ERROR_CORRUPT,
                       _("the object does not hold the version the journal names"));
  return FALSE;
}

/* Decrypts @remote's object into a temp file in directory @dir (@disk_rel
 * names the file in messages); returns its absolute name, fsynced, with mode
 * and mtime set, and its stat in @st. @object_read: whether the object was
 * fetched. Any thread: touches neither the index nor the stats. */
static gchar *
fetch_to_temp (FsEngine *self, const FsRecord *remote, const gchar *dir, const gchar *disk_rel,
               struct stat *st, gboolean *object_read, GError **error)
{
  g_autofree gchar *key = g_strconcat (self->prefix, remote->object, NULL);
  g_autofree gchar *tmp = g_build_filename (dir, TEMP_TEMPLATE, NULL);
  g_autoptr(GInputStream) in = NULL;
  g_autoptr(GInputStream) plain = NULL;
  g_autoptr(GBytes) header = NULL;
  g_autofree guint8 *buf = NULL;
  guint64 total = 0;
  G_GNUC_UNUSED guint64 started_writeback = 0;
  struct timespec times[2];
  gboolean ok = FALSE;
  int fd;

  if (remote->object_length > 0)
    in = fs_storage_get (self->storage, key, remote->object_offset, remote->object_length, error);
  else
    in = fs_storage_get (self->storage, key, 0, -1, error);
  if (in == NULL)
    return NULL;
  *object_read = TRUE;
  plain = fs_crypto_open_stream (self->crypto, in, &header, self->cancellable, error);
  if (plain == NULL || !check_object_header (header, remote, error))
    return NULL;

  fd = g_mkstemp_full (tmp, O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0)
    {
      set_io_error (error, errno, _("Cannot create a temporary file for"), disk_rel);
      return NULL;
    }
  buf = g_malloc (COPY_BUFFER_SIZE);
  for (;;)
    {
      gssize n = g_input_stream_read (plain, buf, COPY_BUFFER_SIZE, self->cancellable, error);
      if (n < 0)
        goto out;
      if (n == 0)
        break;
      total += (guint64) n;
      add_bytes_moved (self, (guint64) n);
      for (gssize off = 0; off < n;)
        {
          gssize w = write (fd, buf + off, (size_t) (n - off));
          if (w < 0 && errno == EINTR)
            continue;
          if (w < 0)
            {
              set_io_error (error, errno, _("Cannot write"), disk_rel);
              goto out;
            }
          off += w;
        }
#ifdef SYNC_FILE_RANGE_WRITE
      /* Start the writeback of each WRITEBACK_STEP as it is written, so the
       * fsync below waits for the tail only, not for the whole file. */
      if (total - started_writeback >= WRITEBACK_STEP)
        {
          sync_file_range (fd, (off64_t) started_writeback, (off64_t) (total - started_writeback),
                           SYNC_FILE_RANGE_WRITE);
          started_writeback = total;
        }
#endif
    }
  /* The content is what the writer sealed under this version: every chunk
   * authenticated, the last one marked, the header naming the version. Its
   * SHA-256 is the one the writer read, not computed again here (decisions.md). */
  if (total != remote->size)
    {
      g_set_error_literal (error, FS_CRYPTO_ERROR, FS_CRYPTO_ERROR_CORRUPT,
                           _("the decrypted content is not as long as the journal says"));
      goto out;
    }
  times[0].tv_sec = 0;
  times[0].tv_nsec = UTIME_OMIT;
  times[1].tv_sec = remote->mtime_ns / G_GINT64_CONSTANT (1000000000);
  times[1].tv_nsec = remote->mtime_ns % G_GINT64_CONSTANT (1000000000);
  /* Permission bits only: setuid/setgid/sticky never come from a remote. */
  if (fchmod (fd, remote->mode & 0777) != 0 || fsync (fd) != 0 || futimens (fd, times) != 0 ||
      fstat (fd, st) != 0)
    {
      set_io_error (error, errno, _("Cannot finish writing"), disk_rel);
      goto out;
    }
  ok = TRUE;
out:
  close (fd);
  if (!ok)
    {
      g_unlink (tmp);
      return NULL;
    }
  return g_steal_pointer (&tmp);
}

/* Puts @tmp at @disk_rel in one atomic step. Where the scan saw nothing, it
 * never replaces what appeared since; otherwise the two are swapped and what
 * was swapped out is kept as a conflict copy unless it is exactly what the
 * scan saw: an edit in the very last moment is never lost. */
static gboolean
place_file (FsEngine *self, const gchar *tmp, const gchar *disk_rel, const FsEntry *scanned,
            GError **error)
{
  g_autofree gchar *abs = abs_path (self, disk_rel);
  int saved;

  if (scanned == NULL)
    {
      if (renameat2 (AT_FDCWD, tmp, AT_FDCWD, abs, RENAME_NOREPLACE) == 0)
        return TRUE;
      saved = errno;
      if (saved == EINVAL || saved == ENOSYS) /* no renameat2 here: check, then rename */
        {
          if (!g_file_test (abs, G_FILE_TEST_EXISTS | G_FILE_TEST_IS_SYMLINK) &&
              rename (tmp, abs) == 0)
            return TRUE;
          saved = EEXIST;
        }
      g_unlink (tmp);
      if (saved == EEXIST)
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_BUSY, _("‘%s’ appeared while it was synced"),
                       disk_rel);
          return FALSE;
        }
      return set_io_error (error, saved, _("Cannot put in place"), disk_rel);
    }

  if (renameat2 (AT_FDCWD, tmp, AT_FDCWD, abs, RENAME_EXCHANGE) == 0)
    {
      /* @tmp now holds what was at @disk_rel a moment ago. */
      g_autoptr(FsEntry) old = lstat_entry_at (tmp, scanned->path, disk_rel);
      if (same_disk_state (old, scanned))
        {
          g_unlink (tmp);
          return TRUE;
        }
      return keep_as_conflict_copy (self, tmp, disk_rel, _("changed while it was synced"), error);
    }
  saved = errno;
  if ((saved == EINVAL || saved == ENOSYS) && rename (tmp, abs) == 0)
    return TRUE;
  saved = errno;
  g_unlink (tmp);
  return set_io_error (error, saved, _("Cannot put in place"), disk_rel);
}

/* Writes @remote (a file or link) at @disk_rel, where the scan saw @scanned
 * (NULL: nothing). @st gets the stat of what was written. */
static gboolean
write_remote_entry (FsEngine *self, const FsRecord *remote, const gchar *disk_rel,
                    const FsEntry *scanned, struct stat *st, GError **error)
{
  g_autofree gchar *tmp = NULL;
  g_autofree gchar *target = abs_path (self, disk_rel);

  if (remote->kind == FS_KIND_FILE)
    {
      Transfer *t = self->fetches != NULL ? g_hash_table_lookup (self->fetches, remote) : NULL;
      g_autofree gchar *dir = g_path_get_dirname (target);
      gboolean object_read = FALSE;

      if (t != NULL && !t->taken)
        {
          struct stat dir_st;

          wait_transfer (self, t);
          if (t->object_read)
            self->stats->objects_read++;
          /* A full disk while other downloads were staged at the same time
           * may have room now that they are placed or gone: fetch once more,
           * alone, below. */
          if (g_error_matches (t->error, G_IO_ERROR, G_IO_ERROR_NO_SPACE))
            g_clear_error (&t->error);
          else if (t->error != NULL)
            {
              g_propagate_error (error, g_steal_pointer (&t->error));
              return FALSE;
            }
          tmp = g_steal_pointer (&t->tmp);
          *st = t->st;
          /* Staged on another file system (a mount inside the folder): a
           * rename cannot place it; fetch again beside the target. */
          if (tmp != NULL && (stat (dir, &dir_st) != 0 || dir_st.st_dev != st->st_dev))
            {
              g_unlink (tmp);
              g_clear_pointer (&tmp, g_free);
            }
        }
      if (tmp == NULL)
        {
          tmp = fetch_to_temp (self, remote, dir, disk_rel, st, &object_read, error);
          if (object_read)
            self->stats->objects_read++;
          if (tmp == NULL)
            return FALSE;
        }
    }
  else
    {
      g_autofree gchar *abs = abs_path (self, disk_rel);
      g_autofree gchar *dir = g_path_get_dirname (abs);
      for (guint attempt = 0; tmp == NULL && attempt < 10; attempt++)
        {
          g_autofree gchar *id = random_id (6);
          g_autofree gchar *candidate = g_strdup_printf ("%s/.foldersync.tmp.%s", dir, id);
          if (symlink (remote->target, candidate) == 0)
            tmp = g_steal_pointer (&candidate);
          else if (errno != EEXIST)
            return set_io_error (error, errno, _("Cannot create the link"), disk_rel);
        }
      if (tmp == NULL)
        return set_io_error (error, EEXIST, _("Cannot create the link"), disk_rel);
      if (lstat (tmp, st) != 0)
        {
          int saved = errno;
          g_unlink (tmp);
          return set_io_error (error, saved, _("Cannot create the link"), disk_rel);
        }
    }
  if (!place_file (self, tmp, disk_rel, scanned, error))
    return FALSE;
  fsync_dir_of (target);
  return TRUE;
}

static gboolean do_upload (FsEngine *self, const FsEntry *local, const FsRecord *remote,
                           GError **error);
static gboolean has_live_children (FsEngine *self, const gchar *path, const gchar *disk_rel);

/* The remote replaced a directory by a file or link, but the directory here
 * still has content: the directory wins, the remote entry is kept beside it
 * as a conflict copy, and the directory is written again. */
static gboolean
keep_remote_beside_dir (FsEngine *self, const FsEntry *dir, const FsRecord *remote,
                        const gchar *disk_rel, GError **error)
{
  g_autofree gchar *copy_rel = unique_conflict_name (self, disk_rel, remote->device_name,
                                                     remote->time_us);
  struct stat st;

  g_autoptr(FsEntry) copy = NULL;

  if (!write_remote_entry (self, remote, copy_rel, NULL, &st, error))
    return FALSE;
  self->stats->conflicts++;
  g_ptr_array_add (self->messages,
                   g_strdup_printf (_("Conflict: ‘%s’ is a directory with content here but not on "
                                      "another device; the other version is kept as ‘%s’"),
                                    disk_rel, copy_rel));
  emit_event (self, FS_SYNC_EVENT_CONFLICT, disk_rel, copy_rel);
  if (!do_upload (self, dir, remote, error))
    return FALSE;
  /* The copy is a new path: publish it now, so every device has it. */
  copy = fs_entry_new (NULL, remote->kind);
  copy->path = fs_path_normalize (copy_rel);
  copy->disk_path = g_strcmp0 (copy->path, copy_rel) != 0 ? g_strdup (copy_rel) : NULL;
  copy->size = (guint64) st.st_size;
  copy->mtime_ns = fs_stat_mtime_ns (&st);
  copy->inode = (guint64) st.st_ino;
  copy->mode = st.st_mode & 07777;
  copy->hash = g_strdup (remote->hash);
  copy->target = g_strdup (remote->target);
  return do_upload (self, copy, remote_head (self, copy->path), error);
}

/* Makes the disk hold @remote at @path; @scanned is what the scan saw there. */
static gboolean
do_download (FsEngine *self, const gchar *path, const FsEntry *scanned, const FsRecord *remote,
             GError **error)
{
  FsRecord *original = record_by_version (self, remote->version);
  const gchar *record_path = original != NULL ? original->path : remote->path;
  g_autofree gchar *normalized = fs_path_normalize (record_path);
  g_autofree gchar *disk_rel = NULL;
  g_autofree gchar *abs = NULL;
  g_autoptr(FsEntry) base = NULL;
  struct stat st;

  /* A conflict copy carries the loser's record: its own path is elsewhere. */
  disk_rel = disk_path_for (self, path, g_strcmp0 (normalized, path) == 0 ? record_path : path);
  abs = abs_path (self, disk_rel);

  /* The disk changed since the scan: the next sync decides; nothing is fetched. */
  if (!local_unchanged (self, scanned, path, disk_rel))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_BUSY, _("‘%s’ changed while it was synced"), disk_rel);
      return FALSE;
    }
  if (!prepare_parents (self, disk_rel, error))
    return FALSE;

  if (scanned != NULL && scanned->kind == FS_KIND_DIR && remote->kind != FS_KIND_DIR)
    {
      if (g_rmdir (abs) != 0)
        {
          if (errno != ENOTEMPTY && errno != EEXIST)
            return set_io_error (error, errno, _("Cannot replace the directory"), disk_rel);
          if (has_live_children (self, path, disk_rel))
            return keep_remote_beside_dir (self, scanned, remote, disk_rel, error);
          /* Only ignored or unsyncable things inside: they go with it, as
           * for a deleted directory. */
          if (!move_to_trash (self, disk_rel, error))
            return FALSE;
        }
      scanned = NULL;
    }

  if (remote->kind == FS_KIND_DIR)
    {
      /* A file or link here is the synced base: it is in the store. */
      if (scanned != NULL && scanned->kind != FS_KIND_DIR && !move_to_trash (self, disk_rel, error))
        return FALSE;
      if (g_mkdir (abs, 0755) == 0)
        self->stats->dirs_created++;
      else if (errno != EEXIST)
        return set_io_error (error, errno, _("Cannot create the directory"), disk_rel);
      base = lstat_entry (self, path, disk_rel);
      if (base == NULL)
        return set_io_error (error, errno, _("Cannot stat"), disk_rel);
    }
  else
    {
      if (!write_remote_entry (self, remote, disk_rel, scanned, &st, error))
        return FALSE;
      /* The stat of what was written, not of whatever is there now: an edit
       * right after the rename must look changed to the next scan. */
      base = fs_entry_new (path, remote->kind);
      if (g_strcmp0 (path, disk_rel) != 0)
        base->disk_path = g_strdup (disk_rel);
      base->size = (guint64) st.st_size;
      base->mtime_ns = fs_stat_mtime_ns (&st);
      base->inode = (guint64) st.st_ino;
      base->mode = st.st_mode & 07777;
      if (remote->kind == FS_KIND_FILE)
        {
          self->stats->files_down++;
          self->stats->bytes_down += remote->size;
        }
    }
  base->hash = g_strdup (remote->hash);
  base->target = g_strdup (remote->target);
  base->version = g_strdup (remote->version);
  return index_put (self, base, error);
}

/* Whether something under directory @path stays after this sync. */
static gboolean
has_live_children (FsEngine *self, const gchar *path, const gchar *disk_rel)
{
  g_autofree gchar *abs = abs_path (self, disk_rel);
  g_autoptr(GDir) dir = g_dir_open (abs, 0, NULL);
  const gchar *name;

  /* What the walk would sync (not ours, not special, not ignored) and this
   * sync does not delete; the sync's tables hold only what changed. */
  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree gchar *nfc = fs_path_normalize (name);
      g_autofree gchar *key = NULL;
      g_autofree gchar *child_disk = NULL;
      g_autofree gchar *child_abs = NULL;
      struct stat st;
      gboolean is_dir;

      if (nfc == NULL || g_str_has_prefix (name, ".foldersync."))
        continue;
      key = g_strconcat (path, "/", nfc, NULL);
      child_disk = g_build_filename (disk_rel, name, NULL);
      child_abs = abs_path (self, child_disk);
      if (lstat (child_abs, &st) != 0 ||
          !(S_ISREG (st.st_mode) || S_ISDIR (st.st_mode) || S_ISLNK (st.st_mode)))
        continue;
      is_dir = S_ISDIR (st.st_mode);
      if (self->ignore != NULL && fs_ignore_matches (self->ignore, key, is_dir))
        continue;
      if (GPOINTER_TO_INT (g_hash_table_lookup (self->actions, key)) != FS_ACTION_DELETE_LOCAL ||
          (is_dir && has_live_children (self, key, child_disk)))
        return TRUE;
    }
  return FALSE;
}

static gboolean
do_delete_local (FsEngine *self, const FsEntry *local, const FsEntry *base, GError **error)
{
  const gchar *disk_rel = fs_entry_disk_path (local);

  if (!local_unchanged (self, local, local->path, disk_rel))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_BUSY, _("‘%s’ changed while it was synced"), disk_rel);
      return FALSE;
    }
  if (local->kind == FS_KIND_DIR)
    {
      g_autofree gchar *abs = abs_path (self, disk_rel);
      if (g_rmdir (abs) != 0)
        {
          if (errno != ENOTEMPTY && errno != EEXIST)
            return set_io_error (error, errno, _("Cannot remove the directory"), disk_rel);
          /* New content here: the directory stays and is written again. */
          if (has_live_children (self, local->path, disk_rel))
            return index_remove (self, local->path, error);
          /* Only ignored or unsyncable things inside: they go with it. */
          if (!move_to_trash (self, disk_rel, error))
            return FALSE;
        }
    }
  else if (!move_to_trash (self, disk_rel, error))
    return FALSE;
  self->stats->deleted_local++;
  return index_remove (self, local->path, error);
}

static gboolean
do_conflict (FsEngine *self, const gchar *path, const FsEntry *local, const FsRecord *remote,
             GError **error)
{
  const gchar *disk_rel = fs_entry_disk_path (local);
  g_autofree gchar *copy_rel = unique_conflict_name (self, disk_rel, self->device_name,
                                                     g_get_real_time ());
  g_autofree gchar *src = abs_path (self, disk_rel);
  g_autofree gchar *dst = abs_path (self, copy_rel);
  g_autoptr(FsEntry) moved = NULL;

  if (!local_unchanged (self, local, path, disk_rel))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_BUSY, _("‘%s’ changed while it was synced"), disk_rel);
      return FALSE;
    }
  if (!rename_unique (src, dst))
    return set_io_error (error, errno, _("Cannot keep the conflicting copy of"), disk_rel);
  self->stats->conflicts++;
  g_ptr_array_add (self->messages,
                   g_strdup_printf (_("Conflict: ‘%s’ changed on both sides; this device's version "
                                      "is kept as ‘%s’"),
                                    disk_rel, copy_rel));
  g_message ("Conflict on ‘%s’; local version kept as ‘%s’", disk_rel, copy_rel);
  emit_event (self, FS_SYNC_EVENT_CONFLICT, disk_rel, copy_rel);

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
  if (!do_upload (self, moved, remote_head (self, moved->path), error))
    return FALSE;
  emit_event (self, FS_SYNC_EVENT_FILE_SYNCED, moved->path, "up");
  return TRUE;
}

/* ---- parallel transfers ------------------------------------------------- */

/* A worker of the pool: the heavy I/O of one transfer, nothing else. */
static void
transfer_run (gpointer data, gpointer user_data)
{
  Transfer *t = data;
  FsEngine *self = user_data;

  if (!g_cancellable_set_error_if_cancelled (self->cancellable, &t->error))
    {
      if (t->kind == TRANSFER_DOWNLOAD)
        t->tmp = fetch_to_temp (self, t->remote, self->staging, t->remote->path, &t->st,
                                &t->object_read, &t->error);
      else
        {
          t->record = fs_record_new ();
          t->record->version = random_id (16);
          if (!upload_file (self, t->local, t->record, &t->error))
            g_clear_pointer (&t->record, fs_record_free);
        }
    }
  g_mutex_lock (&self->lock);
  t->done = TRUE;
  g_cond_broadcast (&self->cond);
  g_mutex_unlock (&self->lock);
}

/* Removes a staging directory (flat: only staged files inside) or a stale
 * temp file. */
static void
remove_temp (const gchar *abs)
{
  g_autoptr(GDir) dir = NULL;
  const gchar *name;

  if (g_unlink (abs) == 0 || (errno != EISDIR && errno != EPERM))
    return;
  dir = g_dir_open (abs, 0, NULL);
  if (dir == NULL)
    return;
  while ((name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree gchar *child = g_build_filename (abs, name, NULL);
      g_unlink (child);
    }
  g_rmdir (abs);
}

/* Hands every planned file transfer to the pool, in path order (the order
 * the first pass takes them; a file that replaces a directory waits for the
 * second, fetched). Counts them in self->progress. */
static gboolean
start_transfers (FsEngine *self, GPtrArray *paths, GArray *actions, GError **error)
{
  g_autoptr(GPtrArray) queue = g_ptr_array_new ();
  guint n_small = 0;

  self->fetches = g_hash_table_new_full (g_direct_hash, g_direct_equal, NULL,
                                         (GDestroyNotify) transfer_free);
  self->uploads = g_hash_table_new_full (g_direct_hash, g_direct_equal, NULL,
                                         (GDestroyNotify) transfer_free);
  for (guint i = 0; i < paths->len; i++)
    {
      const gchar *path = g_ptr_array_index (paths, i);
      FsActionType action = g_array_index (actions, FsActionType, i);
      FsEntry *local = g_hash_table_lookup (self->local, path);
      FsRecord *remote = remote_head (self, path);
      Transfer *t;

      if (action == FS_ACTION_UPLOAD && local != NULL && local->kind == FS_KIND_FILE &&
          !g_hash_table_contains (self->uploads, local))
        {
          t = g_new0 (Transfer, 1);
          t->kind = TRANSFER_UPLOAD;
          t->local = local;
          g_hash_table_insert (self->uploads, local, t);
          n_small += local->size <= PACK_FILE_MAX_SIZE;
          self->progress.pending_uploads++;
          self->progress.bytes_total += local->size;
        }
      else if ((action == FS_ACTION_DOWNLOAD || action == FS_ACTION_CONFLICT) && remote != NULL &&
               remote->kind == FS_KIND_FILE && !g_hash_table_contains (self->fetches, remote))
        {
          t = g_new0 (Transfer, 1);
          t->kind = TRANSFER_DOWNLOAD;
          t->remote = remote;
          g_hash_table_insert (self->fetches, remote, t);
          self->progress.pending_downloads++;
          self->progress.bytes_total += remote->size;
        }
      else
        continue;
      g_ptr_array_add (queue, t);
    }
  self->progress.files_total = self->progress.pending_uploads + self->progress.pending_downloads;
  if (queue->len == 0)
    return TRUE;
  if (n_small >= PACK_MIN_FILES)
    self->packer = fs_packer_new (self->storage, self->prefix, PACK_MAX_BYTES, PACK_MAX_MEMBERS);

  if (g_hash_table_size (self->fetches) > 0)
    {
      g_autofree gchar *staging = g_build_filename (self->root, STAGING_TEMPLATE, NULL);
      if (g_mkdtemp_full (staging, 0700) == NULL)
        return set_io_error (error, errno, _("Cannot create a staging directory in"), self->root);
      self->staging = g_steal_pointer (&staging);
    }
  self->pool = g_thread_pool_new (transfer_run, self, (gint) self->max_workers, FALSE, error);
  if (self->pool == NULL)
    return FALSE;
  for (guint i = 0; i < queue->len; i++)
    if (!g_thread_pool_push (self->pool, g_ptr_array_index (queue, i), error))
      return FALSE;
  return TRUE;
}

/* Stops the pool (dropping what no worker started), deletes the objects of
 * uploads that were never published and the staging directory. */
static void
finish_transfers (FsEngine *self)
{
  GHashTableIter iter;
  gpointer value;

  if (self->pool != NULL)
    g_thread_pool_free (g_steal_pointer (&self->pool), TRUE, TRUE);
  if (self->uploads != NULL)
    {
      g_hash_table_iter_init (&iter, self->uploads);
      while (g_hash_table_iter_next (&iter, NULL, &value))
        {
          Transfer *t = value;
          if (t->record != NULL)
            delete_unpublished (self, t->record);
        }
    }
  g_clear_pointer (&self->uploads, g_hash_table_unref);
  g_clear_pointer (&self->fetches, g_hash_table_unref);
  if (self->packer != NULL && self->stats != NULL)
    self->stats->objects_written += fs_packer_get_packs_written (self->packer);
  g_clear_pointer (&self->packer, fs_packer_free);
  if (self->staging != NULL)
    remove_temp (self->staging);
  g_clear_pointer (&self->staging, g_free);
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
  FsRecord *remote = remote_head (self, path);
  const gchar *lost_version = self->lost != NULL ? g_hash_table_lookup (self->lost, path) : NULL;
  gboolean lost = base != NULL && lost_version != NULL
                  && g_strcmp0 (lost_version, base->version) == 0;
  gboolean ok;

  if (base == NULL && error != NULL && *error != NULL)
    return FALSE;
  g_debug ("%s: %s", path, fs_action_to_string (action));
  if (lost && !note_lost (self, base->version, path, error))
    return FALSE;
  switch (action)
    {
    case FS_ACTION_NOTHING:
      /* Same content, new stat data (a touch): remember it so the next scan
       * does not hash the file again. */
      ok = TRUE;
      if (local != NULL && base != NULL && !fs_entry_same_stat (local, base))
        {
          g_autoptr(FsEntry) updated = fs_entry_copy (local);
          updated->version = g_strdup (base->version);
          ok = index_put (self, updated, error);
        }
      break;
    case FS_ACTION_UPLOAD:
      ok = do_upload (self, local, remote, error);
      break;
    case FS_ACTION_DOWNLOAD:
      ok = do_download (self, path, local, remote, error);
      break;
    case FS_ACTION_DELETE_REMOTE:
      ok = do_delete_remote (self, base, remote, error);
      break;
    case FS_ACTION_DELETE_LOCAL:
      ok = do_delete_local (self, local, base, error);
      break;
    case FS_ACTION_RECORD:
      {
        g_autoptr(FsEntry) updated = fs_entry_copy (local);
        g_free (updated->version);
        updated->version = g_strdup (remote->version);
        ok = index_put (self, updated, error);
      }
      break;
    case FS_ACTION_FORGET:
      ok = base == NULL || index_remove (self, path, error);
      break;
    case FS_ACTION_CONFLICT:
      ok = do_conflict (self, path, local, remote, error);
      break;
    default:
      g_assert_not_reached ();
    }
  /* After the content was kept, never before (see note_lost()). */
  return ok && (!lost || retire_lost (self, base->version, error));
}

static gint
compare_paths (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const gchar *const *) a, *(const gchar *const *) b);
}

/* The mass-delete guard (DESIGN §5): deletions in one direction that would
 * remove more than a share of the folder are held back until confirmed. An
 * unmounted disk or an emptied folder must not empty every other device. */
static void
hold_mass_deletes (FsEngine *self, GPtrArray *paths, GArray *actions, guint n_base,
                   FsSyncStats *stats, GPtrArray *messages)
{
  const FsActionType kinds[] = { FS_ACTION_DELETE_LOCAL, FS_ACTION_DELETE_REMOTE };

  for (gsize k = 0; k < G_N_ELEMENTS (kinds); k++)
    {
      guint count = 0;
      for (guint i = 0; i < actions->len; i++)
        count += g_array_index (actions, FsActionType, i) == kinds[k];
      if (count < self->delete_guard_min || count <= self->delete_guard_share * n_base)
        continue;
      for (guint i = 0; i < actions->len; i++)
        if (g_array_index (actions, FsActionType, i) == kinds[k])
          g_array_index (actions, FsActionType, i) = FS_ACTION_NOTHING;
      stats->held_deletes += count;
      g_ptr_array_add (messages,
                       /* TRANSLATORS: the second %s is "made on another device" or
                        * "made in this folder"; there are always at least 10. */
                       g_strdup_printf (_("Held back %u deletions %s (%u%% of the folder); "
                                          "nothing was deleted. Confirm them to apply."),
                                        count,
                                        kinds[k] == FS_ACTION_DELETE_LOCAL ? _("made on another device")
                                                                           : _("made in this folder"),
                                        n_base > 0 ? count * 100 / n_base : 100));
    }
}

void
fs_engine_set_confirm_deletes (FsEngine *self, gboolean confirm)
{
  g_return_if_fail (FS_IS_ENGINE (self));
  self->confirm_deletes = confirm;
}

/* Begins a sync run: progress reset, then the journal records after our
 * cursors into the index. */
static gboolean
begin_sync (FsEngine *self, gboolean audit, FsSyncStats *stats, GPtrArray *messages,
            GError **error)
{
  FsJournalStats jstats = { 0 };

  memset (stats, 0, sizeof *stats);
  self->seq_checked = FALSE;
  if (!check_folder (self->root, error))
    return FALSE;
  memset (&self->progress, 0, sizeof self->progress);
  self->bytes_moved = 0;
  self->progress.phase = FS_SYNC_PHASE_SCANNING;
  report_progress (self);

  if (!fs_journal_fetch (self->storage, self->crypto, self->prefix, self->index, audit, &jstats,
                         messages, error))
    return FALSE;
  stats->records_read = jstats.records_read;
  /* Our own records found in the journal (say, after a crash before the
   * index was updated) must never be overwritten. */
  self->next_seq = MAX (self->next_seq, fs_index_get_cursor (self->index, self->device_id) + 1);
  return TRUE;
}

/* FsScanDeferHashFunc of an incremental sync: as merge_defer_hash(). */
static gboolean
defer_hash_unless_remote (gpointer data, const gchar *key)
{
  return remote_head (data, key) == NULL;
}

/* Whether @action at @path runs in the second, bottom-up pass: deletions,
 * and a download that puts a file or link where a directory is here that
 * keeps nothing (all it holds goes away in this sync), so that its content
 * is gone first. A directory that keeps something (a file made here
 * meanwhile) is settled in the first pass, before that content's upload is
 * published, as the conflict it is. Decided once, before either pass. */
static gboolean
runs_late (FsEngine *self, const gchar *path, FsActionType action, const FsEntry *local,
           const FsRecord *remote)
{
  if (action == FS_ACTION_DELETE_LOCAL || action == FS_ACTION_DELETE_REMOTE)
    return TRUE;
  return action == FS_ACTION_DOWNLOAD && local != NULL && local->kind == FS_KIND_DIR &&
         remote != NULL && !remote->deleted && remote->kind != FS_KIND_DIR &&
         !has_live_children (self, path, fs_entry_disk_path (local));
}

/* Reconciles @paths (sorted; any side may know them) of @local (scanned),
 * @base (the index's entries for them) and the remote tree, then acts.
 * @n_base: how many entries the index has (for the mass-delete guard). */
static gboolean
plan_and_act (FsEngine *self, GPtrArray *paths, GHashTable *local, GHashTable *base,
              FsIgnore *ignore, guint n_base, FsSyncStats *stats, GPtrArray *messages,
              GCancellable *cancellable, GError **error)
{
  g_autoptr(GArray) actions = NULL;
  g_autoptr(GArray) touch = NULL;
  g_autoptr(GArray) late = NULL;
  g_autoptr(GHashTable) action_of = NULL;
  g_autoptr(GHashTable) lost = NULL;
  gboolean ok = TRUE;

  actions = g_array_sized_new (FALSE, FALSE, sizeof (FsActionType), paths->len);
  /* Whether a path whose action is NOTHING has new stat data to record: the
   * others (nearly all, in a sync with few changes) are skipped below. */
  touch = g_array_sized_new (FALSE, TRUE, sizeof (gboolean), paths->len);
  action_of = g_hash_table_new (g_str_hash, g_str_equal);
  lost = g_hash_table_new (g_str_hash, g_str_equal);
  for (guint i = 0; i < paths->len; i++)
    {
      const gchar *path = g_ptr_array_index (paths, i);
      FsEntry *l = g_hash_table_lookup (local, path);
      FsEntry *b = g_hash_table_lookup (base, path);
      FsRecord *r = remote_head (self, path);
      FsActionType action = fs_reconcile (l, b, r);
      FsKind kind = l != NULL ? l->kind : b != NULL ? b->kind : r != NULL ? r->kind : FS_KIND_NONE;
      gboolean stat_changed = l != NULL && b != NULL && !fs_entry_same_stat (l, b);
      gboolean lost_here = FALSE;

      /* Ignored means no longer synced, in either direction; never deleted. */
      if (fs_ignore_matches (ignore, path, kind == FS_KIND_DIR))
        {
          if (b != NULL && !index_remove (self, path, error))
            return FALSE;
          action = FS_ACTION_NOTHING;
          stat_changed = FALSE;
        }
      else if (action != FS_ACTION_NOTHING && !base_lost (self, b, r, &lost_here, error))
        return FALSE;
      if (lost_here)
        {
          g_debug ("‘%s’: version %s lost the path to another chain", path, b->version);
          /* Still here unchanged: not to be overwritten or deleted. */
          if (l != NULL && (action == FS_ACTION_DOWNLOAD || action == FS_ACTION_DELETE_LOCAL))
            action = r->deleted ? FS_ACTION_UPLOAD : FS_ACTION_CONFLICT;
          g_hash_table_insert (lost, (gpointer) path, b->version);
        }
      g_array_append_val (actions, action);
      g_array_append_val (touch, stat_changed);
    }
  /* The heads move as our records land: read again next time. */
  g_clear_pointer (&self->head_versions, g_hash_table_unref);
  if (!self->confirm_deletes)
    hold_mass_deletes (self, paths, actions, n_base, stats, messages);
  /* After the guard: a held deletion keeps its path. */
  for (guint i = 0; i < paths->len; i++)
    g_hash_table_insert (action_of, g_ptr_array_index (paths, i),
                         GINT_TO_POINTER (g_array_index (actions, FsActionType, i)));

  /* 4. Act: parents before children, then (bottom-up) deletions and the
   * files that replace directories whose content goes (runs_late()). */
  self->local = local;
  self->ignore = ignore;
  self->actions = action_of;
  self->lost = lost;
  self->stats = stats;
  self->messages = messages;
  self->cancellable = cancellable;
  self->progress.phase = FS_SYNC_PHASE_TRANSFERRING;
  /* The heavy I/O of file transfers runs ahead in the pool; the decisions
   * and the commits below stay sequential, in this thread. */
  late = g_array_sized_new (FALSE, FALSE, sizeof (gboolean), paths->len);
  for (guint i = 0; i < paths->len; i++)
    {
      const gchar *path = g_ptr_array_index (paths, i);
      gboolean is_late = runs_late (self, path, g_array_index (actions, FsActionType, i),
                                    g_hash_table_lookup (local, path), remote_head (self, path));
      g_array_append_val (late, is_late);
    }
  ok = start_transfers (self, paths, actions, error);
  report_progress (self);
  for (guint pass = 0; pass < 2 && ok; pass++)
    {
      /* The records of pass 0 are in the index before any deletion runs. */
      if (pass == 1)
        ok = flush_records (self, error);
      for (guint n = 0; n < paths->len && ok; n++)
        {
          guint i = pass == 0 ? n : paths->len - 1 - n;
          const gchar *path = g_ptr_array_index (paths, i);
          FsActionType action = g_array_index (actions, FsActionType, i);
          FsEntry *l = g_hash_table_lookup (self->local, path);
          FsRecord *r = remote_head (self, path);
          g_autoptr(GError) local_error = NULL;
          gboolean done;

          if (g_array_index (late, gboolean, i) != (pass == 1))
            continue;
          if (action == FS_ACTION_NOTHING && !g_array_index (touch, gboolean, i))
            continue;
          if (action != FS_ACTION_NOTHING &&
              g_cancellable_set_error_if_cancelled (cancellable, error))
            {
              ok = FALSE;
              break;
            }
          done = run_action (self, path, action, &local_error);
          if (action == FS_ACTION_UPLOAD && l != NULL && g_hash_table_contains (self->uploads, l))
            {
              self->progress.files_done++;
              self->progress.pending_uploads--;
            }
          else if ((action == FS_ACTION_DOWNLOAD || action == FS_ACTION_CONFLICT) && r != NULL &&
                   g_hash_table_contains (self->fetches, r))
            {
              self->progress.files_done++;
              self->progress.pending_downloads--;
            }
          if (action != FS_ACTION_NOTHING && action != FS_ACTION_RECORD &&
              action != FS_ACTION_FORGET)
            report_progress (self);
          if (done)
            {
              /* Uploads and remote deletions are told when their segment
               * landed (flush_records). */
              static const gchar *const directions[] = {
                [FS_ACTION_DOWNLOAD] = "down",
                [FS_ACTION_CONFLICT] = "down",
                [FS_ACTION_DELETE_LOCAL] = "deleted-local",
              };
              if ((guint) action < G_N_ELEMENTS (directions) && directions[action] != NULL)
                emit_event (self, FS_SYNC_EVENT_FILE_SYNCED, path, directions[action]);
              continue;
            }
          /* Not deleted after all: it is kept content of its directory. */
          if (action == FS_ACTION_DELETE_LOCAL)
            g_hash_table_insert (self->actions, (gpointer) path,
                                 GINT_TO_POINTER (FS_ACTION_NOTHING));
          if (is_fatal (local_error))
            {
              g_propagate_error (error, g_steal_pointer (&local_error));
              ok = FALSE;
            }
          else if (g_error_matches (local_error, G_IO_ERROR, G_IO_ERROR_BUSY))
            {
              stats->deferred++;
              g_ptr_array_add (messages, g_strdup_printf (_("Deferred: %s"), local_error->message));
            }
          else
            {
              stats->errors++;
              if (local_error->domain == FS_CRYPTO_ERROR)
                g_ptr_array_add (messages,
                                 g_strdup_printf (_("‘%s’ was not downloaded, its stored object is "
                                                    "corrupt (%s); the local copy is untouched"),
                                                  path, local_error->message));
              else
                g_ptr_array_add (messages, g_strdup_printf (_("‘%s’: %s"), path, local_error->message));
            }
        }
    }
  /* Only a whole sync with no error and nothing deferred, after every
   * conflict copy here went up: an incremental one does not look at them. */
  if (ok && n_base != G_MAXUINT && stats->errors == 0 && stats->deferred == 0)
    ok = retire_noted (self, error);
  if (ok)
    ok = flush_records (self, error);
  else
    g_clear_pointer (&self->pending, g_ptr_array_unref); /* done again next time */
  finish_transfers (self);
  self->local = NULL;
  self->ignore = NULL;
  self->actions = NULL;
  self->lost = NULL;
  self->stats = NULL;
  self->messages = NULL;
  self->cancellable = NULL;
  return ok;
}

/* ---- a whole sync: the walk, the entries and the heads merged ---------- */

/* The walk hands over local entries in tree order; the index's entries and
 * heads are read in the same order; each path is reconciled as soon as all
 * three have moved past it, and only paths with something to do are kept
 * (plus local directories, whose disk names their children's need). A
 * no-change sync holds the local directories and one directory listing. */
typedef struct {
  FsEngine *self;
  FsIndexCursor *base_cursor;
  GQueue base_ahead;        /* FsEntry: read from base_cursor, not planned yet */
  FsIndexCursor *head_cursor;
  FsRecord *head_next;      /* read from head_cursor, not planned yet */
  GError *error;            /* the first cursor error */

  GPtrArray *paths;         /* kept paths (owned), in tree order */
  GHashTable *local;        /* path → FsEntry: kept paths' and every directory's */
  GHashTable *base;         /* path → FsEntry of kept paths */
  GPtrArray *caught_up;     /* FsEntry to put in the index (kind NONE: remove) */
  guint n_base;
} Merge;

/* Where a cursor error goes: the first one is kept. */
static GError **
merge_error (Merge *m)
{
  return m->error == NULL ? &m->error : NULL;
}

/* Reads one more entry of the index into base_ahead; FALSE at the end. */
static gboolean
merge_base_fetch (Merge *m)
{
  FsEntry *e = m->base_cursor != NULL ? fs_index_cursor_next_entry (m->base_cursor, merge_error (m))
                                      : NULL;
  if (e == NULL)
    {
      g_clear_pointer (&m->base_cursor, fs_index_cursor_free);
      return FALSE;
    }
  g_queue_push_tail (&m->base_ahead, e);
  return TRUE;
}

static FsEntry *
merge_base_peek (Merge *m)
{
  if (g_queue_is_empty (&m->base_ahead))
    merge_base_fetch (m);
  return g_queue_peek_head (&m->base_ahead);
}

static FsRecord *
merge_head_peek (Merge *m)
{
  if (m->head_next == NULL && m->head_cursor != NULL)
    {
      m->head_next = fs_index_cursor_next_head (m->head_cursor, merge_error (m));
      if (m->head_next == NULL)
        g_clear_pointer (&m->head_cursor, fs_index_cursor_free);
    }
  return m->head_next;
}

/* The whole record of a light head (taken). */
static FsRecord *
merge_full_head (Merge *m, FsRecord *light)
{
  g_autoptr(GError) error = NULL;
  FsRecord *full = fs_index_lookup_head (m->self->index, light->path, NULL, &error);

  if (full == NULL)
    {
      /* The row was just read: only an index error gets here; it fails the sync. */
      if (m->error == NULL)
        m->error = error != NULL ? g_steal_pointer (&error)
                                 : g_error_new (FS_INDEX_ERROR, FS_INDEX_ERROR_FAILED,
                                                _("The remote tree changed while it was read"));
      return light;
    }
  fs_record_free (light);
  return full;
}

/* A crash after our journal append but before the index commit leaves a
 * remote head that is our own record replacing the base. Catch the base up
 * to it (with no stat data, so the scan hashes the file) instead of seeing a
 * conflict with ourselves. @base: the queued base entry of @head's path. */
static FsEntry *
catch_up_own_record (Merge *m, FsEntry *base, const FsRecord *head)
{
  FsEngine *self = m->self;
  FsRecord *original;
  g_autofree gchar *normalized = NULL;
  FsEntry *caught;

  if (base == NULL || head == NULL || g_strcmp0 (head->device_id, self->device_id) != 0 ||
      head->replaces == NULL || g_strcmp0 (base->version, head->replaces) != 0)
    return base;
  g_message ("Catching up with our own record for ‘%s’", base->path);
  if (head->deleted)
    {
      caught = fs_entry_new (base->path, FS_KIND_NONE);
      g_ptr_array_add (m->caught_up, caught);
      fs_entry_free (base);
      return NULL;
    }
  original = record_by_version (self, head->version);
  caught = fs_entry_new (base->path, head->kind);
  normalized = original != NULL ? fs_path_normalize (original->path) : NULL;
  if (original != NULL && g_strcmp0 (normalized, base->path) == 0 &&
      g_strcmp0 (original->path, base->path) != 0)
    caught->disk_path = g_strdup (original->path);
  caught->mode = head->mode;
  caught->hash = g_strdup (head->hash);
  caught->target = g_strdup (head->target);
  caught->version = g_strdup (head->version);
  g_ptr_array_add (m->caught_up, fs_entry_copy (caught));
  fs_entry_free (base);
  return caught;
}

/* Reconciles @path with what each side has (all taken); keeps it when there
 * is something to do. */
static void
merge_plan (Merge *m, const gchar *path, FsEntry *local, FsEntry *base, FsRecord *head)
{
  g_autofree gchar *key = g_strdup (path); /* @path may belong to @base */
  gboolean full = FALSE;
  FsActionType action;

  /* Heads come light (path, version, deleted): enough when the version is
   * the one we synced with; the whole record otherwise, or to act on it. */
  if (head != NULL && (base == NULL || g_strcmp0 (head->version, base->version) != 0))
    {
      head = merge_full_head (m, head);
      full = TRUE;
    }
  base = catch_up_own_record (m, base, head);
  m->n_base += base != NULL;
  action = fs_reconcile (local, base, head);
  if (action != FS_ACTION_NOTHING || (local != NULL && base != NULL &&
                                      !fs_entry_same_stat (local, base)))
    {
      if (head != NULL && !full)
        head = merge_full_head (m, head);
      if (local != NULL)
        g_hash_table_replace (m->local, g_strdup (key), local);
      if (base != NULL)
        g_hash_table_replace (m->base, g_strdup (key), base);
      g_hash_table_replace (m->self->remote, g_strdup (key), head);
      g_ptr_array_add (m->paths, g_steal_pointer (&key));
      return;
    }
  if (local != NULL && local->kind == FS_KIND_DIR)
    {
      g_hash_table_replace (m->local, g_steal_pointer (&key), local);
      local = NULL;
    }
  fs_entry_free (local);
  fs_entry_free (base);
  fs_record_free (head);
}

/* Plans every path of the index that comes before @key (NULL: all): the
 * walk has passed them, so they are not on the disk. */
static void
merge_before (Merge *m, const gchar *key)
{
  for (;;)
    {
      FsEntry *b = merge_base_peek (m);
      FsRecord *h = merge_head_peek (m);
      gint c;

      if (b != NULL && key != NULL && fs_path_tree_cmp (b->path, key) >= 0)
        b = NULL;
      if (h != NULL && key != NULL && fs_path_tree_cmp (h->path, key) >= 0)
        h = NULL;
      if (b == NULL && h == NULL)
        return;
      c = b == NULL ? 1 : h == NULL ? -1 : fs_path_tree_cmp (b->path, h->path);
      if (c <= 0)
        g_queue_pop_head (&m->base_ahead);
      if (c >= 0)
        m->head_next = NULL;
      merge_plan (m, c <= 0 ? b->path : h->path, NULL, c <= 0 ? b : NULL, c >= 0 ? h : NULL);
    }
}

static const FsEntry *
merge_base_lookup (gpointer data, const gchar *key)
{
  Merge *m = data;
  FsEntry *b;
  FsRecord *h;

  merge_before (m, key);
  b = merge_base_peek (m);
  if (b == NULL || strcmp (b->path, key) != 0)
    return NULL;
  h = merge_head_peek (m);
  if (h != NULL && strcmp (h->path, key) == 0 && g_strcmp0 (h->version, b->version) != 0)
    {
      /* The scan must see the caught-up base (it has no stat data); that
       * takes the whole head. */
      m->head_next = merge_full_head (m, h);
      g_queue_pop_head (&m->base_ahead);
      b = catch_up_own_record (m, b, m->head_next);
      if (b == NULL)
        return NULL;
      g_queue_push_head (&m->base_ahead, b);
    }
  return b;
}

static GPtrArray *
merge_base_below (gpointer data, const gchar *key)
{
  Merge *m = data;
  g_autofree gchar *prefix = g_strconcat (key, "/", NULL);
  GPtrArray *below = g_ptr_array_new_with_free_func ((GDestroyNotify) fs_entry_free);

  /* What is below @key follows @key (or its place) in tree order. */
  for (guint i = 0;; i++)
    {
      FsEntry *b;

      if (i == g_queue_get_length (&m->base_ahead) && !merge_base_fetch (m))
        break;
      b = g_queue_peek_nth (&m->base_ahead, i);
      if (g_str_has_prefix (b->path, prefix))
        {
          /* Kept as the local state: caught up first, as merge_base_lookup() does. */
          g_autoptr(FsRecord) head = fs_index_lookup_head (m->self->index, b->path, NULL,
                                                           merge_error (m));
          FsEntry *caught = catch_up_own_record (m, b, head);

          if (caught == NULL)
            {
              g_queue_pop_nth (&m->base_ahead, i--);
              continue;
            }
          if (caught != b)
            {
              g_queue_pop_nth (&m->base_ahead, i);
              g_queue_push_nth (&m->base_ahead, caught, (gint) i);
            }
          g_ptr_array_add (below, fs_entry_copy (caught));
        }
      else if (strcmp (b->path, key) != 0)
        break;
    }
  return below;
}

/* FsScanSink.defer_hash: a new file is hashed by its upload unless the
 * remote tree has its path too, when reconciling compares the contents. */
static gboolean
merge_defer_hash (gpointer data, const gchar *key)
{
  Merge *m = data;
  FsRecord *h = merge_head_peek (m);

  return h == NULL || strcmp (h->path, key) != 0;
}

static void
merge_emit (gpointer data, FsEntry *entry)
{
  Merge *m = data;
  FsEntry *b;
  FsRecord *h;

  merge_before (m, entry->path);
  b = merge_base_peek (m);
  if (b != NULL && strcmp (b->path, entry->path) == 0)
    g_queue_pop_head (&m->base_ahead);
  else
    b = NULL;
  h = merge_head_peek (m);
  if (h != NULL && strcmp (h->path, entry->path) == 0)
    m->head_next = NULL;
  else
    h = NULL;
  merge_plan (m, entry->path, entry, b, h);
}

static void
merge_clear (Merge *m)
{
  g_clear_pointer (&m->base_cursor, fs_index_cursor_free);
  g_clear_pointer (&m->head_cursor, fs_index_cursor_free);
  g_queue_clear_full (&m->base_ahead, (GDestroyNotify) fs_entry_free);
  g_clear_pointer (&m->head_next, fs_record_free);
  g_clear_error (&m->error);
  g_clear_pointer (&m->paths, g_ptr_array_unref);
  g_clear_pointer (&m->local, g_hash_table_unref);
  g_clear_pointer (&m->base, g_hash_table_unref);
  g_clear_pointer (&m->caught_up, g_ptr_array_unref);
}

gboolean
fs_engine_sync (FsEngine *self, gboolean audit, FsSyncStats *stats, GPtrArray *messages,
                GCancellable *cancellable, GError **error)
{
  g_autoptr(GPtrArray) own_messages = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(FsScanResult) scan = NULL;
  FsSyncStats own_stats = { 0 };
  Merge m = { 0 };
  const FsScanSink sink = { merge_base_lookup, merge_base_below, merge_emit, &m, merge_defer_hash };
  gboolean ok = FALSE;

  g_return_val_if_fail (FS_IS_ENGINE (self), FALSE);
  if (stats == NULL)
    stats = &own_stats;
  if (messages == NULL)
    messages = own_messages;

  /* 1. What changed remotely: only journal records after our cursors. */
  if (!begin_sync (self, audit, stats, messages, error) || !ensure_remote_tree (self, audit, error))
    goto out;
  begin_remote (self);

  /* 2. What changed locally: a stat walk, hashing only what changed, merged
   * with the index as it goes (3. reconcile). */
  m.self = self;
  m.paths = g_ptr_array_new_with_free_func (g_free);
  m.local = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) fs_entry_free);
  m.base = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) fs_entry_free);
  m.caught_up = g_ptr_array_new_with_free_func ((GDestroyNotify) fs_entry_free);
  g_queue_init (&m.base_ahead);
  m.base_cursor = fs_index_entries_cursor (self->index, error);
  if (m.base_cursor == NULL)
    goto out;
  m.head_cursor = fs_index_heads_cursor (self->index, error);
  if (m.head_cursor == NULL)
    goto out;
  scan = fs_scan_to_sink (self->root, &sink, cancellable, error);
  if (scan == NULL)
    goto out;
  merge_before (&m, NULL);
  if (m.error != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&m.error));
      goto out;
    }
  for (guint i = 0; i < m.caught_up->len; i++)
    {
      FsEntry *e = g_ptr_array_index (m.caught_up, i);
      if (e->kind == FS_KIND_NONE ? !index_remove (self, e->path, error) : !index_put (self, e, error))
        goto out;
    }
  /* We hold the folder lock: no other sync is writing these. */
  for (guint i = 0; i < scan->stale_temps->len; i++)
    {
      g_autofree gchar *abs = abs_path (self, g_ptr_array_index (scan->stale_temps, i));
      g_debug ("removing the stale temp file %s", abs);
      remove_temp (abs);
    }
  stats->files_hashed += scan->stats.files_hashed;
  stats->deferred = scan->stats.deferred;
  for (guint i = 0; i < scan->warnings->len; i++)
    g_ptr_array_add (messages, g_strdup (g_ptr_array_index (scan->warnings, i)));
  g_debug ("whole sync: %u of %u known paths to reconcile", m.paths->len, m.n_base);

  /* 4. Act on what needs it. */
  ok = plan_and_act (self, m.paths, m.local, m.base, scan->ignore, m.n_base, stats, messages,
                     cancellable, error);
  self->held_deletes = stats->held_deletes;
  /* The rules a later sync of single paths applies. */
  g_clear_pointer (&self->cache_ignore, fs_ignore_free);
  self->cache_ignore = g_steal_pointer (&scan->ignore);

out:
  merge_clear (&m);
  end_remote (self);
  return ok;
}

gboolean
fs_engine_sync_paths (FsEngine *self, const gchar *const *changed, FsSyncStats *stats,
                      GPtrArray *messages, GCancellable *cancellable, GError **error)
{
  g_autoptr(GPtrArray) own_messages = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GHashTable) base = NULL;
  g_autoptr(FsScanResult) scan = NULL;
  g_autoptr(GPtrArray) paths = NULL;
  FsSyncStats own_stats = { 0 };
  gboolean needs_full = FALSE;
  gboolean ok;
  guint n_deleted = 0;
  guint records_read;

  g_return_val_if_fail (FS_IS_ENGINE (self), FALSE);
  if (stats == NULL)
    stats = &own_stats;
  if (messages == NULL)
    messages = own_messages;
  /* Only after a whole sync (it knows the ignore rules), for few paths, and
   * not while deletions are held back (the guard sees only whole syncs). */
  if (changed == NULL || self->cache_ignore == NULL || self->held_deletes > 0 ||
      g_strv_length ((gchar **) changed) > TARGETED_MAX_PATHS)
    return fs_engine_sync (self, FALSE, stats, messages, cancellable, error);

  if (!begin_sync (self, FALSE, stats, messages, error))
    return FALSE;
  records_read = stats->records_read;
  if (records_read > 0)
    goto whole; /* other devices changed things: reconcile everything */
  if (!ensure_remote_tree (self, FALSE, error))
    goto fail;
  begin_remote (self);

  /* The index's entries for these paths (ASCII, else the scan says "whole"),
   * and their parents: a file in a directory not synced yet needs the walk. */
  base = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) fs_entry_free);
  paths = g_ptr_array_new ();
  for (guint i = 0; changed[i] != NULL; i++)
    {
      const gchar *path = changed[i];
      g_autofree gchar *parent = g_path_get_dirname (path);
      FsEntry *b;

      /* Our own temporary files, and anything a record could not name. */
      if (!fs_journal_path_valid (path) || g_hash_table_contains (base, path) ||
          fs_ignore_matches_path (self->cache_ignore, path, FALSE))
        continue;
      if (!g_str_equal (parent, "."))
        {
          g_autoptr(FsEntry) pb = fs_index_lookup (self->index, parent, error);
          if (pb == NULL && error != NULL && *error != NULL)
            goto fail;
          if (pb == NULL || pb->kind != FS_KIND_DIR)
            goto whole;
        }
      b = fs_index_lookup (self->index, path, error);
      if (b == NULL && error != NULL && *error != NULL)
        goto fail;
      g_hash_table_insert (base, g_strdup (path), b);
      /* A synced directory that changed (moved away, replaced): its
       * children are only seen by the walk. */
      if (b != NULL && b->kind == FS_KIND_DIR)
        goto whole;
    }
  scan = fs_scan_paths (self->root, base, self->cache_ignore, changed, defer_hash_unless_remote,
                        self, &needs_full, cancellable, error);
  if (scan == NULL)
    {
      if (needs_full)
        goto whole;
      goto fail;
    }
  {
    GHashTableIter iter;
    gpointer key, value;
    g_hash_table_iter_init (&iter, base);
    while (g_hash_table_iter_next (&iter, &key, &value))
      {
        g_ptr_array_add (paths, key);
        if (value != NULL && !g_hash_table_contains (scan->entries, key))
          n_deleted++;
      }
  }
  /* Many deletions at once: the mass-delete guard needs the whole picture;
   * and deletions here of what another device deleted are the guard's too. */
  if (n_deleted >= self->delete_guard_min)
    goto whole;
  for (guint i = 0; i < paths->len; i++)
    {
      const gchar *path = g_ptr_array_index (paths, i);
      if (fs_reconcile (g_hash_table_lookup (scan->entries, path), g_hash_table_lookup (base, path),
                        remote_head (self, path)) == FS_ACTION_DELETE_LOCAL)
        goto whole;
    }
  g_ptr_array_sort (paths, compare_paths);
  stats->files_hashed += scan->stats.files_hashed;
  stats->deferred = scan->stats.deferred;
  for (guint i = 0; i < scan->warnings->len; i++)
    g_ptr_array_add (messages, g_strdup (g_ptr_array_index (scan->warnings, i)));
  g_debug ("syncing %u changed path(s) without a walk", paths->len);
  ok = plan_and_act (self, paths, scan->entries, base, self->cache_ignore, G_MAXUINT, stats,
                     messages, cancellable, error);
  end_remote (self);
  return ok;

fail:
  end_remote (self);
  return FALSE;

whole:
  end_remote (self);
  if (!fs_engine_sync (self, FALSE, stats, messages, cancellable, error))
    return FALSE;
  stats->records_read += records_read;
  return TRUE;
}
