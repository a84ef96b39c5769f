/* FsStorageLocal: FsStorage on a plain directory (the embedded default store,
 * a NAS mount, and the backend the tests run against).
 *
 * Each key is a file under the store root; '/' in a key is a directory.
 * Names whose first segment starts with ".fs-" belong to the backend:
 * root/.fs-tmp/ holds the temp files of puts in progress and root/.fs-lock
 * serializes the compare-and-replace of conditional puts. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <gio/gunixinputstream.h>
#include <gmodule.h>
#include <glib/gi18n-lib.h>

#include "fs-error.h"
#include "fs-range-input-stream.h"
#include "fs-storage-local.h"

#define FS_TYPE_STORAGE_LOCAL (fs_storage_local_get_type ())

#define RESERVED_PREFIX ".fs-"
#define TMP_DIR ".fs-tmp"
#define LOCK_FILE ".fs-lock"
#define COPY_BUFFER_SIZE (256 * 1024)
/* A put whose parent directory vanishes under it (a concurrent delete pruned it)
 * recreates it and tries again this many times. */
#define PUT_ATTEMPTS 8
/* Temp files left by a crashed process are removed by configure() after this. */
#define STALE_TMP_SECONDS (24 * 60 * 60)

struct _FsStorageLocal
{
  GObject parent_instance;

  GMutex lock; /* protects root */
  gchar *root; /* absolute path of the store directory, NULL until configured */
};

static void fs_storage_local_iface_init (FsStorageInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (FsStorageLocal, fs_storage_local, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (FS_TYPE_STORAGE, fs_storage_local_iface_init))

/* ---- helpers ------------------------------------------------------------ */

static gint
storage_code_from_errno (int errsv)
{
  switch (errsv)
    {
      case ENOSPC:
      case EDQUOT:
        return FS_STORAGE_ERROR_NO_SPACE;
      case ENOENT:
      case ENOTDIR:
        return FS_STORAGE_ERROR_NOT_FOUND;
      case ENAMETOOLONG:
      case EISDIR:
        return FS_STORAGE_ERROR_INVALID;
      case EINTR:
      case EAGAIN:
      case ETIMEDOUT:
      case ESTALE:
        return FS_STORAGE_ERROR_TRANSIENT;
      default:
        return FS_STORAGE_ERROR_FAILED;
    }
}

static gboolean
set_errno_error (GError **error, int errsv, gint code, const gchar *what, const gchar *name)
{
  /* TRANSLATORS: "Could not open object ‘notes/a.txt’: Permission denied"; the
   * first %s is one of the "Could not …" phrases. */
  g_set_error (error, FS_STORAGE_ERROR, code, _("%s ‘%s’: %s"), what, name, g_strerror (errsv));
  return FALSE;
}

static gboolean
segment_is_valid (const gchar *seg, gsize len)
{
  if (len == 0 || len > NAME_MAX)
    return FALSE;
  if (len == 1 && seg[0] == '.')
    return FALSE;
  if (len == 2 && seg[0] == '.' && seg[1] == '.')
    return FALSE;
  if (len >= strlen (RESERVED_PREFIX)
      && strncmp (seg, RESERVED_PREFIX, strlen (RESERVED_PREFIX)) == 0)
    return FALSE;
  return TRUE;
}

/* Whether every '/'-separated segment of @path[0..len) is a valid name. */
static gboolean
segments_are_valid (const gchar *path, gsize len)
{
  gsize start = 0;

  for (gsize i = 0; i <= len; i++)
    {
      if (i == len || path[i] == '/')
        {
          if (!segment_is_valid (path + start, i - start))
            return FALSE;
          start = i + 1;
        }
    }
  return TRUE;
}

static gboolean
check_key (const gchar *key, GError **error)
{
  if (key == NULL || *key == '\0')
    {
      g_set_error_literal (error, FS_STORAGE_ERROR, FS_STORAGE_ERROR_INVALID,
                           _("The empty key is not a valid object key"));
      return FALSE;
    }
  if (key[0] == '/' || !segments_are_valid (key, strlen (key)))
    {
      g_set_error (error, FS_STORAGE_ERROR, FS_STORAGE_ERROR_INVALID,
                   _("Key ‘%s’ is not valid: it must be relative, without empty, ‘.’, ‘..’ or "
                      "‘.fs-…’ segments"),
                   key);
      return FALSE;
    }
  return TRUE;
}

static gchar *
dup_root (FsStorageLocal *self, GError **error)
{
  gchar *root;

  g_mutex_lock (&self->lock);
  root = g_strdup (self->root);
  g_mutex_unlock (&self->lock);
  if (root == NULL)
    g_set_error_literal (error, FS_STORAGE_ERROR, FS_STORAGE_ERROR_INVALID,
                         _("The local store is not configured (no ‘root’ directory)"));
  return root;
}

static gchar *
version_from_stat (const struct stat *st)
{
  guint64 mtime_ns
    = (guint64)st->st_mtim.tv_sec * G_GUINT64_CONSTANT (1000000000) + (guint64)st->st_mtim.tv_nsec;

  return g_strdup_printf ("%" G_GINT64_MODIFIER "x-%" G_GINT64_MODIFIER "x-%" G_GINT64_MODIFIER "x",
                          (guint64)st->st_ino, mtime_ns, (guint64)st->st_size);
}

/* A fine-grained, strictly increasing (within the process) timestamp for the
 * mtime of a new object. The kernel stamps files with a coarse clock (one
 * tick, several ms), and inode numbers are reused, so without this two puts
 * of the same size in quick succession could get the same version and a stale
 * conditional put could win (ABA). */
static struct timespec
unique_timestamp (void)
{
  G_LOCK_DEFINE_STATIC (timestamp);
  static gint64 last_ns;
  struct timespec ts;
  gint64 ns;

  clock_gettime (CLOCK_REALTIME, &ts);
  ns = (gint64)ts.tv_sec * G_GINT64_CONSTANT (1000000000) + ts.tv_nsec;
  G_LOCK (timestamp);
  if (ns <= last_ns)
    ns = last_ns + 1;
  last_ns = ns;
  G_UNLOCK (timestamp);
  ts.tv_sec = ns / G_GINT64_CONSTANT (1000000000);
  ts.tv_nsec = ns % G_GINT64_CONSTANT (1000000000);
  return ts;
}

static void
fsync_dir (const gchar *path)
{
  int fd = open (path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

  if (fd < 0)
    return;
  /* Some file systems refuse fsync on directories (EINVAL); their metadata is
   * then as durable as they make it. */
  if (fsync (fd) < 0 && errno != EINVAL)
    g_debug ("fsync of directory %s failed: %s", path, g_strerror (errno));
  close (fd);
}

/* Creates the directories of @key's parent below @root, fsyncing each new
 * entry's directory so the object's path survives a crash. */
static gboolean
make_parents (const gchar *root, const gchar *key, GError **error)
{
  g_autoptr (GString) path = g_string_new (root);
  const gchar *p = key;
  const gchar *slash;
  guint restarts = 0;

  while ((slash = strchr (p, '/')) != NULL)
    {
      g_string_append_c (path, '/');
      g_string_append_len (path, p, slash - p);
      if (mkdir (path->str, 0777) == 0)
        {
          g_autofree gchar *parent = g_path_get_dirname (path->str);
          fsync_dir (parent);
        }
      else if (errno == ENOENT && restarts++ < PUT_ATTEMPTS)
        {
          /* A concurrent delete pruned a directory we just made or saw. */
          g_string_assign (path, root);
          p = key;
          continue;
        }
      else if (errno != EEXIST)
        {
          int errsv = errno;
          return set_errno_error (error, errsv,
                                  errsv == ENOTDIR ? FS_STORAGE_ERROR_INVALID
                                                   : storage_code_from_errno (errsv),
                                  _("Could not create directory"), path->str);
        }
      p = slash + 1;
    }
  return TRUE;
}

/* Opens root/.fs-lock and takes a flock() on it; returns the fd (closing it
 * releases the lock). Every change of the visible tree holds it shared, and a
 * conditional put holds it exclusive while it compares and replaces. */
static int
take_lock (const gchar *root, int operation, GError **error)
{
  g_autofree gchar *path = g_build_filename (root, LOCK_FILE, NULL);
  int fd = open (path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);

  if (fd < 0)
    {
      int errsv = errno;
      set_errno_error (error, errsv, storage_code_from_errno (errsv),
                       _("Could not open lock file"), path);
      return -1;
    }
  while (flock (fd, operation) < 0)
    {
      int errsv = errno;
      if (errsv == EINTR)
        continue;
      close (fd);
      set_errno_error (error, errsv, storage_code_from_errno (errsv), _("Could not lock"), path);
      return -1;
    }
  return fd;
}

static gboolean
write_all (int fd, const guint8 *buf, gsize len)
{
  while (len > 0)
    {
      ssize_t n = write (fd, buf, len);
      if (n < 0)
        {
          if (errno == EINTR)
            continue;
          return FALSE;
        }
      buf += n;
      len -= (gsize)n;
    }
  return TRUE;
}

/* ---- configure ---------------------------------------------------------- */

static void
remove_stale_temp_files (const gchar *root)
{
  g_autofree gchar *tmpdir = g_build_filename (root, TMP_DIR, NULL);
  g_autoptr (GDir) dir = g_dir_open (tmpdir, 0, NULL);
  const gchar *name;
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;

  if (dir == NULL)
    return;
  while ((name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree gchar *path = g_build_filename (tmpdir, name, NULL);
      struct stat st;

      if (lstat (path, &st) == 0 && S_ISREG (st.st_mode) && now - st.st_mtime > STALE_TMP_SECONDS)
        {
          g_debug ("removing stale temp file %s", path);
          unlink (path);
        }
    }
}

static gboolean
fs_storage_local_configure (FsStorage *storage, GHashTable *settings, GError **error)
{
  FsStorageLocal *self = FS_STORAGE_LOCAL (storage);
  const gchar *root = g_hash_table_lookup (settings, "root");
  g_autofree gchar *abs_root = NULL;
  struct stat st;

  if (root == NULL || *root == '\0')
    {
      g_set_error_literal (error, FS_STORAGE_ERROR, FS_STORAGE_ERROR_INVALID,
                           _("Setting ‘root’ (the store directory) is missing"));
      return FALSE;
    }
  abs_root = g_canonicalize_filename (root, NULL);
  if (stat (abs_root, &st) < 0 || !S_ISDIR (st.st_mode))
    {
      g_set_error (error, FS_STORAGE_ERROR, FS_STORAGE_ERROR_NO_BUCKET,
                   _("Store directory ‘%s’ does not exist"), abs_root);
      return FALSE;
    }
  remove_stale_temp_files (abs_root);

  g_mutex_lock (&self->lock);
  g_free (self->root);
  self->root = g_steal_pointer (&abs_root);
  g_debug ("store directory %s", self->root);
  g_mutex_unlock (&self->lock);
  return TRUE;
}

/* ---- stat / get --------------------------------------------------------- */

static FsStorageObject *
fs_storage_local_stat (FsStorage *storage, const gchar *key, GError **error)
{
  g_autofree gchar *root = NULL;
  g_autofree gchar *path = NULL;
  g_autofree gchar *version = NULL;
  struct stat st;

  if (!check_key (key, error) || (root = dup_root (FS_STORAGE_LOCAL (storage), error)) == NULL)
    return NULL;
  path = g_build_filename (root, key, NULL);
  if (lstat (path, &st) < 0)
    {
      int errsv = errno;
      set_errno_error (error, errsv, storage_code_from_errno (errsv), _("Could not stat object"),
                       key);
      return NULL;
    }
  if (!S_ISREG (st.st_mode))
    {
      g_set_error (error, FS_STORAGE_ERROR, FS_STORAGE_ERROR_NOT_FOUND, _("No object ‘%s’"), key);
      return NULL;
    }
  version = version_from_stat (&st);
  return fs_storage_object_new (key, (guint64)st.st_size, version);
}

static GInputStream *
fs_storage_local_get (FsStorage *storage, const gchar *key, guint64 offset, gint64 length,
                      GError **error)
{
  g_autofree gchar *root = NULL;
  g_autofree gchar *path = NULL;
  g_autoptr (GInputStream) base = NULL;
  struct stat st;
  int fd;

  if (!check_key (key, error) || (root = dup_root (FS_STORAGE_LOCAL (storage), error)) == NULL)
    return NULL;
  if (length < -1)
    {
      g_set_error (error, FS_STORAGE_ERROR, FS_STORAGE_ERROR_INVALID,
                   _("Invalid range length %lld for ‘%s’"), (long long)length, key);
      return NULL;
    }
  path = g_build_filename (root, key, NULL);
  fd = open (path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0)
    {
      int errsv = errno;
      set_errno_error (
        error, errsv, errsv == ELOOP ? FS_STORAGE_ERROR_NOT_FOUND : storage_code_from_errno (errsv),
        _("Could not open object"), key);
      return NULL;
    }
  if (fstat (fd, &st) < 0 || !S_ISREG (st.st_mode))
    {
      close (fd);
      g_set_error (error, FS_STORAGE_ERROR, FS_STORAGE_ERROR_NOT_FOUND, _("No object ‘%s’"), key);
      return NULL;
    }
  /* A range starting at or past the end reads nothing; one running past the
   * end is cut at the end (as HTTP range requests are). */
  if (offset > (guint64)st.st_size)
    offset = (guint64)st.st_size;
  if (offset > 0 && lseek (fd, (off_t)offset, SEEK_SET) < 0)
    {
      int errsv = errno;
      close (fd);
      set_errno_error (error, errsv, storage_code_from_errno (errsv),
                       _("Could not seek in object"), key);
      return NULL;
    }
  base = g_unix_input_stream_new (fd, TRUE);
  if (length < 0)
    return g_steal_pointer (&base);
  return fs_range_input_stream_new (base, (guint64)length);
}

/* ---- put ---------------------------------------------------------------- */

/* Copies @source into @fd, checking @cancellable between reads. On failure
 * @error holds the source's error (or the write's, as FS_STORAGE_ERROR). */
static gboolean
copy_source (int fd, GInputStream *source, const gchar *key, GCancellable *cancellable,
             GError **error)
{
  g_autofree guint8 *buf = g_malloc (COPY_BUFFER_SIZE);

  for (;;)
    {
      gssize n;

      if (g_cancellable_set_error_if_cancelled (cancellable, error))
        return FALSE;
      n = g_input_stream_read (source, buf, COPY_BUFFER_SIZE, cancellable, error);
      if (n < 0)
        {
          g_prefix_error (error, _("Reading the data for ‘%s’: "), key);
          return FALSE;
        }
      if (n == 0)
        return TRUE;
      if (!write_all (fd, buf, (gsize)n))
        {
          int errsv = errno;
          return set_errno_error (error, errsv, storage_code_from_errno (errsv),
                                  _("Could not write object"), key);
        }
    }
}

/* Makes the finished temp file @tmp visible as @path according to
 * @expected_version. Called with the parents of @path existing. */
static gboolean
publish (const gchar *root, const gchar *tmp, const gchar *path, const gchar *key,
         const gchar *expected_version, gboolean *retry, GError **error)
{
  int lock_fd;
  int errsv = 0;
  gboolean ok = FALSE;

  *retry = FALSE;
  lock_fd = take_lock (root, expected_version == NULL ? LOCK_SH : LOCK_EX, error);
  if (lock_fd < 0)
    return FALSE;

  if (expected_version == NULL)
    {
      ok = rename (tmp, path) == 0;
      errsv = errno;
    }
  else if (*expected_version == '\0')
    {
      /* link() never replaces an existing name, so creation is atomic even
       * against writers that do not use our lock (another host on a NAS). */
      gboolean linked = link (tmp, path) == 0;
      ok = linked;
      errsv = errno;
      if (!ok && (errsv == EPERM || errsv == EOPNOTSUPP || errsv == ENOSYS))
        {
          /* No hard links on this file system: check-and-rename under the
           * exclusive lock instead. */
          struct stat st;
          if (lstat (path, &st) == 0)
            errsv = EEXIST;
          else
            {
              ok = rename (tmp, path) == 0;
              errsv = errno;
            }
        }
      if (!ok && errsv == EEXIST)
        {
          close (lock_fd);
          g_set_error (error, FS_STORAGE_ERROR, FS_STORAGE_ERROR_PRECONDITION_FAILED,
                       _("Object ‘%s’ already exists"), key);
          return FALSE;
        }
      if (linked)
        unlink (tmp);
    }
  else
    {
      struct stat st;
      g_autofree gchar *current = NULL;

      if (lstat (path, &st) < 0 || !S_ISREG (st.st_mode))
        {
          close (lock_fd);
          g_set_error (error, FS_STORAGE_ERROR, FS_STORAGE_ERROR_PRECONDITION_FAILED,
                       _("Object ‘%s’ does not exist (expected version %s)"), key,
                       expected_version);
          return FALSE;
        }
      current = version_from_stat (&st);
      if (g_strcmp0 (current, expected_version) != 0)
        {
          close (lock_fd);
          g_set_error (error, FS_STORAGE_ERROR, FS_STORAGE_ERROR_PRECONDITION_FAILED,
                       _("Object ‘%s’ is at version %s, not the expected %s"), key, current,
                       expected_version);
          return FALSE;
        }
      ok = rename (tmp, path) == 0;
      errsv = errno;
    }
  close (lock_fd);

  if (ok)
    return TRUE;
  if (errsv == ENOENT)
    {
      /* A concurrent delete pruned the now-empty parent directory. */
      *retry = TRUE;
      return FALSE;
    }
  return set_errno_error (error, errsv,
                          errsv == EISDIR || errsv == ENOTDIR || errsv == EEXIST
                              || errsv == ENOTEMPTY
                            ? FS_STORAGE_ERROR_INVALID
                            : storage_code_from_errno (errsv),
                          _("Could not store object"), key);
}

static gboolean
fs_storage_local_put (FsStorage *storage, const gchar *key, GInputStream *source,
                      const gchar *expected_version, gchar **new_version, GCancellable *cancellable,
                      GError **error)
{
  g_autofree gchar *root = NULL;
  g_autofree gchar *tmpdir = NULL;
  g_autofree gchar *tmp = NULL;
  g_autofree gchar *path = NULL;
  g_autofree gchar *version = NULL;
  g_autofree gchar *parent = NULL;
  struct timespec times[2];
  struct stat st;
  gboolean ok = FALSE;
  int fd;

  if (!check_key (key, error) || (root = dup_root (FS_STORAGE_LOCAL (storage), error)) == NULL)
    return FALSE;
  path = g_build_filename (root, key, NULL);

  tmpdir = g_build_filename (root, TMP_DIR, NULL);
  if (mkdir (tmpdir, 0777) < 0 && errno != EEXIST)
    {
      int errsv = errno;
      return set_errno_error (error, errsv, storage_code_from_errno (errsv),
                              _("Could not create directory"), tmpdir);
    }
  tmp = g_build_filename (tmpdir, "put-XXXXXX", NULL);
  fd = g_mkstemp_full (tmp, O_RDWR | O_CLOEXEC, 0666);
  if (fd < 0)
    {
      int errsv = errno;
      return set_errno_error (error, errsv, storage_code_from_errno (errsv),
                              _("Could not create a temp file in"), tmpdir);
    }

  /* Data first, durably, then the name: a reader or a crash sees the old
   * object or the new one, never a partial file. */
  if (!copy_source (fd, source, key, cancellable, error))
    goto out;
  if (fsync (fd) < 0)
    {
      int errsv = errno;
      set_errno_error (error, errsv, storage_code_from_errno (errsv), _("Could not write object"),
                       key);
      goto out;
    }
  times[0] = times[1] = unique_timestamp ();
  if (futimens (fd, times) < 0 || fstat (fd, &st) < 0)
    {
      int errsv = errno;
      set_errno_error (error, errsv, storage_code_from_errno (errsv), _("Could not write object"),
                       key);
      goto out;
    }
  version = version_from_stat (&st);
  if (close (fd) < 0)
    {
      int errsv = errno;
      fd = -1;
      set_errno_error (error, errsv, storage_code_from_errno (errsv), _("Could not write object"),
                       key);
      goto out;
    }
  fd = -1;

  for (guint attempt = 0; attempt < PUT_ATTEMPTS; attempt++)
    {
      gboolean retry = FALSE;

      if (!make_parents (root, key, error))
        goto out;
      if (publish (root, tmp, path, key, expected_version, &retry, error))
        {
          ok = TRUE;
          break;
        }
      if (!retry)
        goto out;
    }
  if (!ok)
    {
      g_set_error (error, FS_STORAGE_ERROR, FS_STORAGE_ERROR_TRANSIENT,
                   _("Could not store object ‘%s’: its directory keeps disappearing"), key);
      goto out;
    }
  parent = g_path_get_dirname (path);
  fsync_dir (parent);
  g_debug ("stored %s version %s", key, version);
  if (new_version != NULL)
    *new_version = g_steal_pointer (&version);

out:
  /* goto keeps the temp file's removal in one place for every failure path. */
  if (fd >= 0)
    close (fd);
  if (!ok)
    unlink (tmp);
  return ok;
}

/* ---- delete ------------------------------------------------------------- */

static gboolean
fs_storage_local_delete (FsStorage *storage, const gchar *key, GError **error)
{
  g_autofree gchar *root = NULL;
  g_autofree gchar *path = NULL;
  g_autofree gchar *dir = NULL;
  struct stat st;
  int lock_fd;

  if (!check_key (key, error) || (root = dup_root (FS_STORAGE_LOCAL (storage), error)) == NULL)
    return FALSE;
  path = g_build_filename (root, key, NULL);

  /* A directory is not an object: deleting it is deleting a missing key. */
  if (lstat (path, &st) < 0 || S_ISDIR (st.st_mode))
    return TRUE;

  lock_fd = take_lock (root, LOCK_SH, error);
  if (lock_fd < 0)
    return FALSE;
  if (unlink (path) < 0 && errno != ENOENT && errno != ENOTDIR)
    {
      int errsv = errno;
      close (lock_fd);
      return set_errno_error (error, errsv, storage_code_from_errno (errsv),
                              _("Could not delete object"), key);
    }
  close (lock_fd);

  /* Prune directories left empty, up to (not including) the root. rmdir()
   * refuses a non-empty one, which is where we stop. */
  dir = g_path_get_dirname (path);
  fsync_dir (dir);
  while (strlen (dir) > strlen (root))
    {
      gchar *up;
      if (rmdir (dir) < 0)
        break;
      up = g_path_get_dirname (dir);
      g_free (dir);
      dir = up;
    }
  return TRUE;
}

/* ---- list --------------------------------------------------------------- */

typedef struct
{
  const gchar *prefix;
  gsize prefix_len;
  const gchar *delimiter;   /* NULL or non-empty */
  const gchar *start_after; /* NULL or non-empty */
  guint max_keys;
  GPtrArray *objects;
  GPtrArray *common_prefixes;
  guint count;
  gboolean truncated;
  gboolean done;
  gchar *last_prefix; /* the last common prefix counted */
} ListWalk;

typedef struct
{
  gchar *name;
  gchar *sort_key; /* name, with '/' appended for a directory */
  gboolean is_dir;
} ListEntry;

static void
list_entry_clear (ListEntry *entry)
{
  g_free (entry->name);
  g_free (entry->sort_key);
}

static gint
list_entry_compare (gconstpointer a, gconstpointer b)
{
  return strcmp (((const ListEntry *)a)->sort_key, ((const ListEntry *)b)->sort_key);
}

/* Counts one result; FALSE once the page is full (then @truncated is set). */
static gboolean
walk_take_slot (ListWalk *walk)
{
  if (walk->count == walk->max_keys)
    {
      walk->truncated = TRUE;
      walk->done = TRUE;
      return FALSE;
    }
  walk->count++;
  return TRUE;
}

/* The common prefix @key rolls up into, or NULL. */
static gchar *
walk_roll_up (ListWalk *walk, const gchar *key)
{
  const gchar *rest;
  const gchar *hit;

  if (walk->delimiter == NULL)
    return NULL;
  rest = key + walk->prefix_len;
  hit = strstr (rest, walk->delimiter);
  if (hit == NULL)
    return NULL;
  return g_strndup (key, (hit - key) + strlen (walk->delimiter));
}

static void
walk_add_prefix (ListWalk *walk, gchar *common_prefix)
{
  g_autofree gchar *cp = common_prefix;

  if (g_strcmp0 (cp, walk->last_prefix) == 0)
    return;
  if (walk->start_after != NULL && strcmp (cp, walk->start_after) <= 0)
    return;
  if (!walk_take_slot (walk))
    return;
  g_free (walk->last_prefix);
  walk->last_prefix = g_strdup (cp);
  if (walk->common_prefixes != NULL)
    g_ptr_array_add (walk->common_prefixes, g_steal_pointer (&cp));
}

static gboolean
dir_has_object (int dfd)
{
  DIR *dir = fdopendir (dfd);
  struct dirent *de;
  gboolean found = FALSE;

  if (dir == NULL)
    {
      close (dfd);
      return FALSE;
    }
  while (!found && (de = readdir (dir)) != NULL)
    {
      struct stat st;

      if (g_str_has_prefix (de->d_name, RESERVED_PREFIX) || strcmp (de->d_name, ".") == 0
          || strcmp (de->d_name, "..") == 0)
        continue;
      if (fstatat (dirfd (dir), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        continue;
      if (S_ISREG (st.st_mode))
        found = TRUE;
      else if (S_ISDIR (st.st_mode))
        {
          int sub
            = openat (dirfd (dir), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
          if (sub >= 0)
            found = dir_has_object (sub);
        }
    }
  closedir (dir);
  return found;
}

/* Walks directory @dfd (taken over), whose keys start with @dir_key (empty or
 * ending in '/'), in key order. Only names starting with @name_prefix count. */
static gboolean
walk_dir (ListWalk *walk, int dfd, const gchar *dir_key, const gchar *name_prefix,
          const gchar *root, GError **error)
{
  g_autoptr (GArray) entries = g_array_new (FALSE, FALSE, sizeof (ListEntry));
  DIR *dir = fdopendir (dfd);
  struct dirent *de;

  g_array_set_clear_func (entries, (GDestroyNotify)list_entry_clear);
  if (dir == NULL)
    {
      int errsv = errno;
      close (dfd);
      return set_errno_error (error, errsv, storage_code_from_errno (errsv),
                              _("Could not list directory"), dir_key[0] != '\0' ? dir_key : root);
    }
  errno = 0;
  while ((de = readdir (dir)) != NULL)
    {
      ListEntry entry = { 0 };
      gboolean is_dir;

      if (strcmp (de->d_name, ".") == 0 || strcmp (de->d_name, "..") == 0
          || g_str_has_prefix (de->d_name, RESERVED_PREFIX)
          || !g_str_has_prefix (de->d_name, name_prefix))
        continue;
      if (de->d_type == DT_DIR)
        is_dir = TRUE;
      else if (de->d_type == DT_REG)
        is_dir = FALSE;
      else if (de->d_type == DT_UNKNOWN)
        {
          struct stat st;
          if (fstatat (dirfd (dir), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            continue;
          if (S_ISDIR (st.st_mode))
            is_dir = TRUE;
          else if (S_ISREG (st.st_mode))
            is_dir = FALSE;
          else
            continue;
        }
      else
        continue; /* symlinks, fifos, … are not objects */
      entry.name = g_strdup (de->d_name);
      entry.sort_key = is_dir ? g_strconcat (de->d_name, "/", NULL) : g_strdup (de->d_name);
      entry.is_dir = is_dir;
      g_array_append_val (entries, entry);
    }
  g_array_sort (entries, list_entry_compare);

  for (guint i = 0; i < entries->len && !walk->done; i++)
    {
      ListEntry *entry = &g_array_index (entries, ListEntry, i);
      g_autofree gchar *key = g_strconcat (dir_key, entry->sort_key, NULL);

      /* Everything under a directory key K (ending in '/') sorts after K, and
       * before start_after unless start_after starts with K. */
      if (walk->start_after != NULL && strcmp (key, walk->start_after) <= 0
          && !(entry->is_dir && g_str_has_prefix (walk->start_after, key)))
        continue;

      if (entry->is_dir)
        {
          g_autofree gchar *cp = walk_roll_up (walk, key);
          int sub;

          /* The whole subtree rolls up into one prefix: count it once if it
           * holds any object, without listing it. */
          if (cp != NULL && g_str_has_prefix (key, cp))
            {
              if (g_strcmp0 (cp, walk->last_prefix) == 0
                  || (walk->start_after != NULL && strcmp (cp, walk->start_after) <= 0))
                continue;
              sub = openat (dirfd (dir), entry->name,
                            O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
              if (sub >= 0 && dir_has_object (sub))
                walk_add_prefix (walk, g_steal_pointer (&cp));
              continue;
            }
          sub = openat (dirfd (dir), entry->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
          if (sub < 0)
            continue; /* removed meanwhile */
          if (!walk_dir (walk, sub, key, "", root, error))
            {
              closedir (dir);
              return FALSE;
            }
        }
      else
        {
          g_autofree gchar *cp = walk_roll_up (walk, key);
          g_autofree gchar *version = NULL;
          struct stat st;

          if (cp != NULL)
            {
              walk_add_prefix (walk, g_steal_pointer (&cp));
              continue;
            }
          if (fstatat (dirfd (dir), entry->name, &st, AT_SYMLINK_NOFOLLOW) < 0
              || !S_ISREG (st.st_mode))
            continue; /* removed or replaced meanwhile */
          if (!walk_take_slot (walk))
            break;
          version = version_from_stat (&st);
          g_ptr_array_add (walk->objects,
                           fs_storage_object_new (key, (guint64)st.st_size, version));
        }
    }
  closedir (dir);
  return TRUE;
}

static gboolean
fs_storage_local_list (FsStorage *storage, const gchar *prefix, const gchar *delimiter,
                       const gchar *start_after, guint max_keys, GPtrArray **objects,
                       GPtrArray **common_prefixes, gboolean *truncated, GError **error)
{
  g_autofree gchar *root = NULL;
  g_autofree gchar *dir_key = NULL;
  g_autofree gchar *dir_path = NULL;
  g_autoptr (GPtrArray) objs
    = g_ptr_array_new_with_free_func ((GDestroyNotify)fs_storage_object_free);
  g_autoptr (GPtrArray) prefixes = g_ptr_array_new_with_free_func (g_free);
  const gchar *slash = strrchr (prefix, '/');
  ListWalk walk = { 0 };
  int dfd;

  if ((root = dup_root (FS_STORAGE_LOCAL (storage), error)) == NULL)
    return FALSE;

  walk.prefix = prefix;
  walk.prefix_len = strlen (prefix);
  walk.delimiter = delimiter != NULL && *delimiter != '\0' ? delimiter : NULL;
  walk.start_after = start_after != NULL && *start_after != '\0' ? start_after : NULL;
  walk.max_keys = max_keys;
  walk.objects = objs;
  walk.common_prefixes = prefixes;

  /* Only the directory that holds the prefix's last segment can contain
   * matching keys. A prefix whose directory part no valid key can have (a
   * leading '/', "..", …) matches nothing. */
  dir_key = slash != NULL ? g_strndup (prefix, (slash - prefix) + 1) : g_strdup ("");
  if (prefix[0] == '/' || (slash != NULL && !segments_are_valid (prefix, slash - prefix)))
    goto done;
  dir_path = g_build_filename (root, dir_key, NULL);
  dfd = open (dir_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0)
    {
      int errsv = errno;
      if (errsv == ENOENT || errsv == ENOTDIR)
        goto done;
      return set_errno_error (error, errsv, storage_code_from_errno (errsv),
                              _("Could not list directory"), dir_path);
    }
  if (!walk_dir (&walk, dfd, dir_key, slash != NULL ? slash + 1 : prefix, root, error))
    {
      g_free (walk.last_prefix);
      return FALSE;
    }

done:
  g_free (walk.last_prefix);
  *objects = g_steal_pointer (&objs);
  if (common_prefixes != NULL)
    *common_prefixes = g_steal_pointer (&prefixes);
  if (truncated != NULL)
    *truncated = walk.truncated;
  return TRUE;
}

static gboolean
fs_storage_local_supports_conditional_put (FsStorage *storage)
{
  return TRUE;
}

/* ---- GObject ------------------------------------------------------------ */

static void
fs_storage_local_finalize (GObject *object)
{
  FsStorageLocal *self = FS_STORAGE_LOCAL (object);

  g_free (self->root);
  g_mutex_clear (&self->lock);
  G_OBJECT_CLASS (fs_storage_local_parent_class)->finalize (object);
}

static void
fs_storage_local_class_init (FsStorageLocalClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = fs_storage_local_finalize;
}

static void
fs_storage_local_init (FsStorageLocal *self)
{
  g_mutex_init (&self->lock);
}

static void
fs_storage_local_iface_init (FsStorageInterface *iface)
{
  iface->configure = fs_storage_local_configure;
  iface->list = fs_storage_local_list;
  iface->stat = fs_storage_local_stat;
  iface->get = fs_storage_local_get;
  iface->put = fs_storage_local_put;
  iface->delete = fs_storage_local_delete;
  iface->supports_conditional_put = fs_storage_local_supports_conditional_put;
}

G_MODULE_EXPORT GType fs_plugin_register (void);

GType
fs_plugin_register (void)
{
  return FS_TYPE_STORAGE_LOCAL;
}
