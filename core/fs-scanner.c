/* The scanner: walks a synced folder with openat/fstatat (never following a
 * symlink) and returns its local state, hashing only files whose stat data
 * differ from the index (base). It never reports a path as gone because it
 * could not read it: a file or folder it cannot open keeps its base state. */
#include "config.h"

#include <glib/gi18n-lib.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <gcrypt.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs-gcrypt.h"
#include "fs-scanner.h"

#define HASH_BUFFER_SIZE (1024 * 1024)
#define IGNORE_FILE ".foldersyncignore"
#define IGNORE_FILE_MAX (1024 * 1024)
/* The engine's own temp files and trash folder. */
#define INTERNAL_PREFIX ".foldersync."
#define TEMP_PREFIX ".foldersync.tmp."

typedef struct {
  FsScanResult *result;
  GHashTable *base;
  const FsScanSink *sink; /* instead of @base and result->entries */
  FsScanDeferHashFunc defer_hash;
  gpointer defer_data;
  FsIgnore *ignore;
  GCancellable *cancellable;
  guint8 *buffer;
} ScanState;

void
fs_scan_result_free (FsScanResult *result)
{
  if (result == NULL)
    return;
  g_clear_pointer (&result->entries, g_hash_table_unref);
  g_clear_pointer (&result->warnings, g_ptr_array_unref);
  g_clear_pointer (&result->ignore, fs_ignore_free);
  g_clear_pointer (&result->stale_temps, g_ptr_array_unref);
  g_free (result);
}

G_GNUC_PRINTF (2, 3)
static void
add_warning (ScanState *state, const gchar *format, ...)
{
  va_list args;
  gchar *line;

  va_start (args, format);
  line = g_strdup_vprintf (format, args);
  va_end (args);
  g_debug ("Scan: %s", line);
  g_ptr_array_add (state->result->warnings, line);
}

static void
add_entry (ScanState *state, FsEntry *entry)
{
  if (state->sink != NULL)
    state->sink->emit (state->sink->data, entry);
  else
    g_hash_table_replace (state->result->entries, g_strdup (entry->path), entry);
}

static gchar *
join (const gchar *prefix, const gchar *name)
{
  if (prefix[0] == '\0')
    return g_strdup (name);
  return g_strconcat (prefix, "/", name, NULL);
}

/* A copy of a base entry as local state (the version belongs to the base). */
static FsEntry *
copy_base (const FsEntry *base)
{
  FsEntry *e = fs_entry_copy (base);
  g_clear_pointer (&e->version, g_free);
  return e;
}

/* The base entries strictly below directory @key, in tree order. */
static GPtrArray *
base_below (ScanState *state, const gchar *key)
{
  g_autofree gchar *prefix = g_strconcat (key, "/", NULL);
  GPtrArray *below;
  GHashTableIter iter;
  gpointer value;

  if (state->sink != NULL)
    return state->sink->base_below (state->sink->data, key);
  below = g_ptr_array_new_with_free_func ((GDestroyNotify) fs_entry_free);
  if (state->base == NULL)
    return below;
  g_hash_table_iter_init (&iter, state->base);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    if (g_str_has_prefix (((const FsEntry *) value)->path, prefix))
      g_ptr_array_add (below, fs_entry_copy (value));
  return below;
}

static const FsEntry *
base_lookup (ScanState *state, const gchar *key)
{
  if (state->sink != NULL)
    return state->sink->base_lookup (state->sink->data, key);
  if (state->base == NULL)
    return NULL;
  return g_hash_table_lookup (state->base, key);
}

/* Reads @fd to the end into SHA-256; @bytes is how much was read. */
static gchar *
hash_fd (int fd, guint8 *buffer, guint64 *bytes, GCancellable *cancellable, GError **error)
{
  gcry_md_hd_t md = NULL;
  gcry_error_t gerr;
  guint64 total = 0;
  gchar *hex;

  fs_gcrypt_init ();
  gerr = gcry_md_open (&md, GCRY_MD_SHA256, 0);
  if (gerr != 0)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, _("Cannot start SHA-256: %s"),
                   gcry_strerror (gerr));
      return NULL;
    }
  for (;;)
    {
      ssize_t n;

      if (g_cancellable_set_error_if_cancelled (cancellable, error))
        {
          gcry_md_close (md);
          return NULL;
        }
      n = read (fd, buffer, HASH_BUFFER_SIZE);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        {
          int saved = errno;
          gcry_md_close (md);
          g_set_error_literal (error, G_IO_ERROR, g_io_error_from_errno (saved),
                               g_strerror (saved));
          return NULL;
        }
      if (n == 0)
        break;
      gcry_md_write (md, buffer, (size_t) n);
      total += (guint64) n;
    }
  hex = fs_hex_encode (gcry_md_read (md, GCRY_MD_SHA256), 32);
  gcry_md_close (md);
  if (bytes != NULL)
    *bytes = total;
  return hex;
}

gchar *
fs_hash_file (const gchar *filename, guint64 *size, GCancellable *cancellable, GError **error)
{
  g_autofree guint8 *buffer = NULL;
  g_autoptr (GError) local_error = NULL;
  gchar *hex;
  int fd;

  g_return_val_if_fail (filename != NULL, NULL);

  fd = open (filename, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0)
    {
      int saved = errno;
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved), _("Cannot open ‘%s’: %s"),
                   filename, g_strerror (saved));
      return NULL;
    }
  buffer = g_malloc (HASH_BUFFER_SIZE);
  hex = hash_fd (fd, buffer, size, cancellable, &local_error);
  close (fd);
  if (hex == NULL)
    {
      if (g_error_matches (local_error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        g_propagate_error (error, g_steal_pointer (&local_error));
      else
        g_set_error (error, local_error->domain, local_error->code, _("Cannot read ‘%s’: %s"),
                     filename, local_error->message);
    }
  return hex;
}

gboolean
fs_entry_same_content (const FsEntry *a, const FsEntry *b)
{
  g_return_val_if_fail (a != NULL && b != NULL, FALSE);

  if (a->kind != b->kind)
    return FALSE;
  switch (a->kind)
    {
    case FS_KIND_FILE:
      return g_strcmp0 (a->hash, b->hash) == 0 && a->hash != NULL &&
             ((a->mode & 0111) != 0) == ((b->mode & 0111) != 0);
    case FS_KIND_SYMLINK:
      return g_strcmp0 (a->target, b->target) == 0;
    case FS_KIND_DIR:
    case FS_KIND_NONE:
    default:
      return TRUE;
    }
}

gboolean
fs_entry_same_stat (const FsEntry *a, const FsEntry *b)
{
  g_return_val_if_fail (a != NULL && b != NULL, FALSE);

  return a->kind == b->kind && a->size == b->size && a->mtime_ns == b->mtime_ns &&
         a->inode == b->inode && a->mode == b->mode;
}

static FsEntry *
entry_from_stat (const gchar *key, const gchar *disk, FsKind kind, const struct stat *st)
{
  FsEntry *e = fs_entry_new (key, kind);
  if (g_strcmp0 (key, disk) != 0)
    e->disk_path = g_strdup (disk);
  e->size = kind == FS_KIND_DIR ? 0 : (guint64) st->st_size;
  e->mtime_ns = fs_stat_mtime_ns (st);
  e->inode = (guint64) st->st_ino;
  e->mode = st->st_mode & 07777;
  return e;
}

/* The base state is kept when the current one cannot be read: leaving the
 * path out would look like a deletion and delete it on every device. */
static void
keep_unreadable_file (ScanState *state, const gchar *key, const gchar *reason)
{
  const FsEntry *b = base_lookup (state, key);
  if (b != NULL)
    {
      add_entry (state, copy_base (b));
      add_warning (state, _("Cannot read ‘%s’: %s; keeping its last synced state"), key, reason);
    }
  else
    add_warning (state, _("Cannot read ‘%s’: %s; not synced"), key, reason);
}

static void
scan_symlink (ScanState *state, int dirfd, const gchar *name, const gchar *key,
              const gchar *disk, const struct stat *st)
{
  gchar target[PATH_MAX + 1];
  ssize_t n = readlinkat (dirfd, name, target, sizeof target);
  FsEntry *e;

  if (n < 0 || (gsize) n >= sizeof target)
    {
      keep_unreadable_file (state, key, n < 0 ? g_strerror (errno) : _("link target too long"));
      return;
    }
  target[n] = '\0';
  if (!g_utf8_validate (target, n, NULL) || memchr (target, '\0', n) != NULL)
    {
      g_autofree gchar *escaped = g_strescape (target, NULL);
      g_autofree gchar *reason = g_strdup_printf (_("its target ‘%s’ is not valid UTF-8"), escaped);
      keep_unreadable_file (state, key, reason);
      return;
    }
  e = entry_from_stat (key, disk, FS_KIND_SYMLINK, st);
  e->target = g_strndup (target, n);
  {
    guint8 digest[32];
    gcry_md_hash_buffer (GCRY_MD_SHA256, digest, target, (size_t) n);
    e->hash = fs_hex_encode (digest, sizeof digest);
  }
  add_entry (state, e);
}

/* A new file is left for its upload to hash (FsScanDeferHashFunc) only when
 * it was last written longer ago than this: its one read is then checked by
 * its stat alone, and any write during that read moves its mtime past the
 * one scanned (timestamps come from a coarse clock: a write in the same tick
 * as the scanned mtime would not). A file written just now is read twice,
 * by the scan and by the upload, and the two hashes must agree. */
#define DEFER_HASH_MIN_AGE_NS (G_GINT64_CONSTANT (2) * 1000000000)

/* FALSE only when cancelled. */
static gboolean
scan_file (ScanState *state, int dirfd, const gchar *name, const gchar *key, const gchar *disk,
           const struct stat *st, GError **error)
{
  g_autoptr (FsEntry) e = entry_from_stat (key, disk, FS_KIND_FILE, st);
  g_autoptr (GError) local_error = NULL;
  const FsEntry *b = base_lookup (state, key);
  struct stat before, after;
  guint64 bytes = 0;
  gchar *hash;
  int fd;

  if (b != NULL && b->kind == FS_KIND_FILE && b->hash != NULL && fs_entry_same_stat (b, e))
    {
      e->hash = g_strdup (b->hash);
      add_entry (state, g_steal_pointer (&e));
      return TRUE;
    }
  fd = openat (dirfd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0)
    {
      if (errno != ENOENT)
        keep_unreadable_file (state, key, g_strerror (errno));
      return TRUE;
    }
  /* Describe the file that is actually read, in case it was replaced since
   * the directory was listed. */
  if (fstat (fd, &before) != 0 || !S_ISREG (before.st_mode))
    {
      close (fd);
      keep_unreadable_file (state, key, _("it changed type while being scanned"));
      return TRUE;
    }
  g_clear_pointer (&e, fs_entry_free);
  e = entry_from_stat (key, disk, FS_KIND_FILE, &before);
  if (b == NULL && e->mtime_ns < g_get_real_time () * 1000 - DEFER_HASH_MIN_AGE_NS &&
      state->defer_hash != NULL && state->defer_hash (state->defer_data, key))
    {
      close (fd);
      add_entry (state, g_steal_pointer (&e));
      return TRUE;
    }

  hash = hash_fd (fd, state->buffer, &bytes, state->cancellable, &local_error);
  if (hash == NULL)
    {
      close (fd);
      if (g_error_matches (local_error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        {
          g_propagate_error (error, g_steal_pointer (&local_error));
          return FALSE;
        }
      keep_unreadable_file (state, key, local_error->message);
      return TRUE;
    }
  state->result->stats.files_hashed++;
  state->result->stats.bytes_hashed += bytes;
  e->hash = hash;

  /* A file still being written must not be reported half-written. */
  if (fstat (fd, &after) != 0 || after.st_size != before.st_size ||
      fs_stat_mtime_ns (&after) != fs_stat_mtime_ns (&before) || bytes != (guint64) before.st_size)
    {
      close (fd);
      state->result->stats.deferred++;
      if (b != NULL)
        add_entry (state, copy_base (b));
      add_warning (state, _("Deferring ‘%s’: still being written"), key);
      return TRUE;
    }
  close (fd);
  add_entry (state, g_steal_pointer (&e));
  return TRUE;
}

static void
read_ignore_file (ScanState *state, int dirfd, const gchar *dir_key)
{
  g_autofree gchar *contents = NULL;
  struct stat st;
  gssize n;
  int fd;

  fd = openat (dirfd, IGNORE_FILE, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0)
    {
      if (errno != ENOENT && errno != ELOOP)
        add_warning (state, _("Cannot read ‘%s’: %s; its patterns are not applied"),
                     dir_key[0] != '\0' ? dir_key : IGNORE_FILE, g_strerror (errno));
      return;
    }
  if (fstat (fd, &st) != 0 || !S_ISREG (st.st_mode) || st.st_size > IGNORE_FILE_MAX)
    {
      close (fd);
      return;
    }
  contents = g_malloc (st.st_size + 1);
  n = 0;
  while (n < st.st_size)
    {
      ssize_t r = read (fd, contents + n, st.st_size - n);
      if (r < 0 && errno == EINTR)
        continue;
      if (r <= 0)
        break;
      n += r;
    }
  close (fd);
  contents[n] = '\0';
  fs_ignore_add_patterns (state->ignore, dir_key, contents);
}

static const gchar *
special_kind_name (mode_t mode)
{
  if (S_ISFIFO (mode))
    return _("fifo");
  if (S_ISSOCK (mode))
    return _("socket");
  if (S_ISCHR (mode))
    return _("character device");
  if (S_ISBLK (mode))
    return _("block device");
  return _("special file");
}

static gboolean
is_ascii (const gchar *s)
{
  for (; *s != '\0'; s++)
    if ((guchar) *s >= 0x80)
      return FALSE;
  return TRUE;
}

static gint
compare_names (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const gchar *const *) a, *(const gchar *const *) b);
}

static gboolean scan_dir (ScanState *state, int fd, const gchar *key_prefix,
                          const gchar *disk_prefix, GError **error);

static gboolean
scan_subdir (ScanState *state, int dirfd, const gchar *name, const gchar *key,
             const gchar *disk, const struct stat *st, GError **error)
{
  int fd = openat (dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);

  if (fd < 0)
    {
      int saved = errno;
      const FsEntry *b;
      g_autoptr (GPtrArray) below = NULL;

      if (saved == ENOENT)
        return TRUE;
      b = base_lookup (state, key);
      below = base_below (state, key);
      if (b != NULL || below->len > 0)
        {
          /* The directory, then what it held (tree order for a sink). */
          add_entry (state, entry_from_stat (key, disk, FS_KIND_DIR, st));
          for (guint i = 0; i < below->len; i++)
            add_entry (state, copy_base (g_ptr_array_index (below, i)));
          add_warning (state, _("Cannot open folder ‘%s’: %s; keeping its last synced contents"),
                       key, g_strerror (saved));
        }
      else
        add_warning (state, _("Cannot open folder ‘%s’: %s; not synced"), key, g_strerror (saved));
      return TRUE;
    }
  add_entry (state, entry_from_stat (key, disk, FS_KIND_DIR, st));
  return scan_dir (state, fd, key, disk, error);
}

/* A name of a directory that passed the checks of the listing: scanned in
 * the second pass, in tree order. */
typedef struct {
  gchar *name; /* on disk */
  gchar *nfc;  /* NULL: the same as @name (ASCII) */
  struct stat st;
  int stat_errno; /* fstatat failed: keep the base state */
} Child;

static const gchar *
child_nfc (const Child *c)
{
  return c->nfc != NULL ? c->nfc : c->name;
}

static void
child_free (Child *c)
{
  g_free (c->name);
  g_free (c->nfc);
  g_free (c);
}

static gint
compare_children (gconstpointer a, gconstpointer b)
{
  return strcmp (child_nfc (*(Child *const *) a), child_nfc (*(Child *const *) b));
}

/* Case folding of ASCII names, without a folded copy (g_utf8_casefold()
 * agrees with it on ASCII). */
static guint
ascii_case_hash (gconstpointer v)
{
  guint32 h = 5381;

  for (const gchar *p = v; *p != '\0'; p++)
    h = (h << 5) + h + (guchar) g_ascii_tolower (*p);
  return h;
}

static gboolean
ascii_case_equal (gconstpointer a, gconstpointer b)
{
  return g_ascii_strcasecmp (a, b) == 0;
}

/* @buf holding @prefix and a '/' (@base_len bytes; none for the root), then @name. */
static const gchar *
path_in (GString *buf, gsize base_len, const gchar *name)
{
  g_string_truncate (buf, base_len);
  return g_string_append (buf, name)->str;
}

static GString *
path_buf_new (const gchar *prefix, gsize *base_len)
{
  GString *buf = g_string_new (prefix);

  if (prefix[0] != '\0')
    g_string_append_c (buf, '/');
  *base_len = buf->len;
  return buf;
}

/* Scans the directory open as @fd (taken over and closed). Two passes: the
 * listing in the bytes' order on disk (so "keep the first twin" is
 * deterministic), then the entries in tree order of their keys, which is the
 * order a sink gets them in. */
static gboolean
scan_dir (ScanState *state, int fd, const gchar *key_prefix, const gchar *disk_prefix,
          GError **error)
{
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GPtrArray) children = g_ptr_array_new_with_free_func ((GDestroyNotify) child_free);
  g_autoptr (GHashTable) nfc_seen = NULL;
  g_autoptr (GHashTable) fold_seen = NULL;
  gsize key_base, disk_base;
  g_autoptr (GString) key_buf = path_buf_new (key_prefix, &key_base);
  g_autoptr (GString) disk_buf = path_buf_new (disk_prefix, &disk_base);
  gboolean has_ignore_file = FALSE;
  gboolean all_ascii = TRUE;
  gboolean ok = TRUE;
  struct dirent *de;
  DIR *dir;
  int dfd;

  dir = fdopendir (fd);
  if (dir == NULL)
    {
      int saved = errno;
      close (fd);
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved), _("Cannot list ‘%s’: %s"),
                   disk_prefix[0] != '\0' ? disk_prefix : ".", g_strerror (saved));
      return FALSE;
    }
  dfd = dirfd (dir);
  errno = 0;
  while ((de = readdir (dir)) != NULL)
    {
      if (g_str_equal (de->d_name, ".") || g_str_equal (de->d_name, ".."))
        continue;
      if (g_str_equal (de->d_name, IGNORE_FILE))
        has_ignore_file = TRUE;
      all_ascii = all_ascii && is_ascii (de->d_name);
      g_ptr_array_add (names, g_strdup (de->d_name));
    }
  g_ptr_array_sort (names, compare_names);

  if (has_ignore_file)
    read_ignore_file (state, dfd, key_prefix);

  /* Names that are all ASCII (nearly every directory) are their own NFC and
   * fold by ASCII case alone: no twins to look for, no copies to make. */
  if (all_ascii)
    fold_seen = g_hash_table_new (ascii_case_hash, ascii_case_equal);
  else
    {
      nfc_seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
      fold_seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
    }

  for (guint i = 0; i < names->len; i++)
    {
      const gchar *name = g_ptr_array_index (names, i);
      g_autofree gchar *nfc_owned = NULL;
      const gchar *nfc;
      const gchar *key;
      const gchar *twin;
      const gchar *fold_twin;
      Child *child;
      gboolean is_dir;

      if (g_str_has_prefix (name, INTERNAL_PREFIX))
        {
          /* A temp file of an interrupted download: the engine removes it. */
          if (g_str_has_prefix (name, TEMP_PREFIX))
            g_ptr_array_add (state->result->stale_temps, join (disk_prefix, name));
          continue;
        }

      if (is_ascii (name))
        nfc = name;
      else
        nfc = nfc_owned = fs_path_normalize (name);
      if (nfc == NULL)
        {
          g_autofree gchar *escaped = g_strescape (name, NULL);
          g_autofree gchar *shown = join (disk_prefix, escaped);
          add_warning (state, _("Skipping ‘%s’: its name is not valid UTF-8"), shown);
          continue;
        }
      key = path_in (key_buf, key_base, nfc);

      child = g_new0 (Child, 1);
      if (fstatat (dfd, name, &child->st, AT_SYMLINK_NOFOLLOW) != 0)
        {
          if (errno == ENOENT)
            {
              g_free (child);
              continue;
            }
          child->stat_errno = errno;
          child->name = g_steal_pointer (&names->pdata[i]);
          child->nfc = g_steal_pointer (&nfc_owned);
          g_ptr_array_add (children, child);
          continue;
        }
      is_dir = S_ISDIR (child->st.st_mode);

      if (fs_ignore_matches (state->ignore, key, is_dir))
        {
          state->result->stats.skipped_ignored++;
          g_free (child);
          continue;
        }

      if (!is_dir && !S_ISREG (child->st.st_mode) && !S_ISLNK (child->st.st_mode))
        {
          state->result->stats.skipped_special++;
          add_warning (state, _("Skipping %s ‘%s’"), special_kind_name (child->st.st_mode), key);
          g_free (child);
          continue;
        }

      twin = nfc_seen != NULL ? g_hash_table_lookup (nfc_seen, nfc) : NULL;
      if (twin != NULL)
        {
          g_autofree gchar *twin_disk = join (disk_prefix, twin);
          add_warning (state,
                       _("Skipping ‘%s’: its name is the same as ‘%s’ after Unicode "
                         "normalization"),
                       path_in (disk_buf, disk_base, name), twin_disk);
          g_free (child);
          continue;
        }
      if (nfc_seen != NULL)
        g_hash_table_insert (nfc_seen, g_strdup (nfc), (gpointer) name);

      if (all_ascii)
        {
          /* Keys and values are the children's names, alive as long as the table. */
          fold_twin = g_hash_table_lookup (fold_seen, nfc);
          if (fold_twin == NULL)
            g_hash_table_insert (fold_seen, (gpointer) nfc, (gpointer) nfc);
        }
      else
        {
          g_autofree gchar *fold = g_utf8_casefold (nfc, -1);

          fold_twin = g_hash_table_lookup (fold_seen, fold);
          if (fold_twin == NULL)
            g_hash_table_insert (fold_seen, g_steal_pointer (&fold), g_strdup (nfc));
        }
      if (fold_twin != NULL)
        {
          g_autofree gchar *twin_key = join (key_prefix, fold_twin);
          add_warning (state, _("‘%s’ and ‘%s’ would collide on a case-insensitive file system"),
                       twin_key, key);
        }

      child->name = g_steal_pointer (&names->pdata[i]);
      child->nfc = g_steal_pointer (&nfc_owned);
      g_ptr_array_add (children, child);
    }
  g_clear_pointer (&nfc_seen, g_hash_table_unref);
  g_clear_pointer (&fold_seen, g_hash_table_unref);
  g_clear_pointer (&names, g_ptr_array_unref);

  /* Names hold no '/': their byte order is the tree order of the keys. */
  g_ptr_array_sort (children, compare_children);
  for (guint i = 0; i < children->len && ok; i++)
    {
      Child *c = g_ptr_array_index (children, i);
      const gchar *key = path_in (key_buf, key_base, child_nfc (c));
      const gchar *disk = path_in (disk_buf, disk_base, c->name);

      if (g_cancellable_set_error_if_cancelled (state->cancellable, error))
        ok = FALSE;
      else if (c->stat_errno != 0)
        keep_unreadable_file (state, key, g_strerror (c->stat_errno));
      else if (S_ISDIR (c->st.st_mode))
        ok = scan_subdir (state, dfd, c->name, key, disk, &c->st, error);
      else if (S_ISLNK (c->st.st_mode))
        scan_symlink (state, dfd, c->name, key, disk, &c->st);
      else
        ok = scan_file (state, dfd, c->name, key, disk, &c->st, error);
    }
  closedir (dir);
  return ok;
}

/* Opens @root (the fd is returned) and sets up an empty result in @state;
 * the caller frees state->result and state->buffer. -1 on error. */
static int
scan_begin (ScanState *state, const gchar *root, GHashTable *base, FsIgnore *ignore,
            GCancellable *cancellable, GError **error)
{
  FsScanResult *result;
  int fd;

  fs_gcrypt_init ();
  fd = open (root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    {
      int saved = errno;
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved),
                   _("Cannot open folder ‘%s’: %s"), root, g_strerror (saved));
      return -1;
    }
  result = g_new0 (FsScanResult, 1);
  result->entries =
    g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) fs_entry_free);
  result->warnings = g_ptr_array_new_with_free_func (g_free);
  result->stale_temps = g_ptr_array_new_with_free_func (g_free);
  state->result = result;
  state->base = base;
  state->sink = NULL;
  state->defer_hash = NULL;
  state->defer_data = NULL;
  state->ignore = ignore;
  state->cancellable = cancellable;
  state->buffer = g_malloc (HASH_BUFFER_SIZE);
  return fd;
}

static FsScanResult *
scan_whole (const gchar *root, GHashTable *base, const FsScanSink *sink,
            GCancellable *cancellable, GError **error)
{
  g_autoptr (FsScanResult) result = NULL;
  g_autoptr (FsIgnore) ignore = fs_ignore_new ();
  g_autofree guint8 *buffer = NULL;
  ScanState state;
  int fd;

  fd = scan_begin (&state, root, base, ignore, cancellable, error);
  if (fd < 0)
    return NULL;
  state.sink = sink;
  if (sink != NULL)
    {
      state.defer_hash = sink->defer_hash;
      state.defer_data = sink->data;
    }
  result = state.result;
  buffer = state.buffer;
  if (!scan_dir (&state, fd, "", "", error))
    return NULL;
  result->ignore = g_steal_pointer (&ignore);
  return g_steal_pointer (&result);
}

FsScanResult *
fs_scan (const gchar *root, GHashTable *base, GCancellable *cancellable, GError **error)
{
  g_return_val_if_fail (root != NULL, NULL);
  return scan_whole (root, base, NULL, cancellable, error);
}

FsScanResult *
fs_scan_to_sink (const gchar *root, const FsScanSink *sink, GCancellable *cancellable,
                 GError **error)
{
  g_return_val_if_fail (root != NULL && sink != NULL, NULL);
  return scan_whole (root, NULL, sink, cancellable, error);
}

/* Opens the directory @parent (relative, "" for @rootfd itself) one component
 * at a time without following symbolic links; -1 with errno on failure. */
static int
open_parent (int rootfd, const gchar *parent)
{
  g_auto (GStrv) parts = *parent != '\0' ? g_strsplit (parent, "/", -1) : g_new0 (gchar *, 1);
  int fd = dup (rootfd);

  for (guint i = 0; fd >= 0 && parts[i] != NULL; i++)
    {
      int next = openat (fd, parts[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
      int saved = errno;
      close (fd);
      fd = next;
      errno = saved;
    }
  return fd;
}

/* One path of fs_scan_paths(); FALSE with *@full when only a whole scan can
 * tell (a directory, an ignore file, a non-ASCII name). */
static gboolean
scan_one (ScanState *state, int rootfd, const gchar *disk, gboolean *full, GError **error)
{
  g_autofree gchar *parent = g_path_get_dirname (disk);
  g_autofree gchar *name = g_path_get_basename (disk);
  struct stat st;
  int dfd;
  gboolean ok = TRUE;

  if (g_str_equal (parent, "."))
    {
      g_free (parent);
      parent = g_strdup ("");
    }
  if (g_str_has_prefix (name, INTERNAL_PREFIX) || strstr (disk, "/" INTERNAL_PREFIX) != NULL)
    return TRUE;
  /* Twins under Unicode normalization are only seen by listing a directory;
   * a parent that went away or changed needs the walk too. */
  if (!is_ascii (disk) || g_str_equal (name, IGNORE_FILE) || *disk == '\0' || *disk == '/'
      || (dfd = open_parent (rootfd, parent)) < 0)
    {
      *full = TRUE;
      return FALSE;
    }
  if (fstatat (dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
    {
      if (errno != ENOENT)
        keep_unreadable_file (state, disk, g_strerror (errno));
    }
  else if (S_ISDIR (st.st_mode))
    {
      *full = TRUE;
      ok = FALSE;
    }
  else if (fs_ignore_matches_path (state->ignore, disk, FALSE))
    state->result->stats.skipped_ignored++;
  else if (S_ISLNK (st.st_mode))
    scan_symlink (state, dfd, name, disk, disk, &st);
  else if (S_ISREG (st.st_mode))
    ok = scan_file (state, dfd, name, disk, disk, &st, error);
  else
    {
      state->result->stats.skipped_special++;
      add_warning (state, _("Skipping %s ‘%s’"), special_kind_name (st.st_mode), disk);
    }
  close (dfd);
  return ok;
}

FsScanResult *
fs_scan_paths (const gchar *root, GHashTable *base, FsIgnore *ignore,
               const gchar *const *paths, FsScanDeferHashFunc defer_hash, gpointer defer_data,
               gboolean *needs_full, GCancellable *cancellable, GError **error)
{
  g_autoptr (FsScanResult) result = NULL;
  g_autofree guint8 *buffer = NULL;
  ScanState state;
  int fd;

  g_return_val_if_fail (root != NULL && ignore != NULL && paths != NULL, NULL);

  *needs_full = FALSE;
  fd = scan_begin (&state, root, base, ignore, cancellable, error);
  if (fd < 0)
    return NULL;
  result = state.result;
  buffer = state.buffer;
  state.defer_hash = defer_hash;
  state.defer_data = defer_data;
  for (guint i = 0; paths[i] != NULL; i++)
    if (!scan_one (&state, fd, paths[i], needs_full, error))
      {
        close (fd);
        return NULL;
      }
  close (fd);
  return g_steal_pointer (&result);
}
