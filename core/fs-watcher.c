/* FsWatcher: one GFileMonitor (inotify) per directory of a synced folder,
 * kept in step with the tree: a directory that is created or moved in gets
 * monitors for its whole subtree (and its contents are reported, since files
 * may be written into it before its monitor exists); a directory that is
 * deleted or moved away loses the monitors of its subtree. Symlinks are never
 * followed. When inotify cannot cover the tree (watch limit, a monitor that
 * fails, a GIO that does not use inotify) the watcher drops every monitor and
 * polls: a "changed" with path NULL every poll interval, and nothing else. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#include <glib/gi18n-lib.h>
#include <string.h>

#include "fs-error.h"
#include "fs-watcher.h"

/* The engine's own temp files and trash folder. */
#define INTERNAL_PREFIX ".foldersync."
#define MAX_WATCHES_ENV "FOLDERSYNC_MAX_WATCHES"
#define MAX_WATCHES_PROC "/proc/sys/fs/inotify/max_user_watches"
#define MAX_WATCHES_USERNS_PROC "/proc/sys/user/max_inotify_watches"
/* The kernel's default before 5.11, used when /proc cannot be read. */
#define MAX_WATCHES_FALLBACK 8192
#define INOTIFY_MONITOR_TYPE "GInotifyFileMonitor"

struct _FsWatcher
{
  GObject parent_instance;

  GFile *root;
  guint poll_interval_s;
  FsWatchMode mode;
  gboolean started;
  guint max_watches;
  GMainContext *context; /* thread-default context of fs_watcher_start() */
  GTree *monitors;       /* relative directory path ("" = root) -> GFileMonitor */
  GSource *poll_source;
};

G_DEFINE_TYPE (FsWatcher, fs_watcher, G_TYPE_OBJECT)

enum
{
  PROP_0,
  PROP_MODE,
  N_PROPS,
};

enum
{
  SIGNAL_CHANGED,
  N_SIGNALS,
};

static GParamSpec *props[N_PROPS];
static guint signals[N_SIGNALS];

static void on_monitor_changed (GFileMonitor *monitor, GFile *file, GFile *other,
                                GFileMonitorEvent event, gpointer user_data);

/* Registered here rather than in the header: it only types the "mode"
 * property; callers use FsWatchMode and fs_watch_mode_to_string(). */
static GType
watch_mode_get_type (void)
{
  static gsize type = 0;
  static const GEnumValue values[] = {
    { FS_WATCH_MODE_INOTIFY, "FS_WATCH_MODE_INOTIFY", "inotify" },
    { FS_WATCH_MODE_POLLING, "FS_WATCH_MODE_POLLING", "polling" },
    { 0, NULL, NULL },
  };

  if (g_once_init_enter (&type))
    g_once_init_leave (&type,
                       g_enum_register_static (g_intern_static_string ("FsWatchMode"), values));
  return type;
}

const gchar *
fs_watch_mode_to_string (FsWatchMode mode)
{
  switch (mode)
    {
      case FS_WATCH_MODE_INOTIFY:
        return "inotify";
      case FS_WATCH_MODE_POLLING:
        return "polling";
      default:
        return "unknown";
    }
}

static gboolean
is_internal (const gchar *rel)
{
  return g_str_has_prefix (rel, INTERNAL_PREFIX) || strstr (rel, "/" INTERNAL_PREFIX) != NULL;
}

static guint
read_max_watches (void)
{
  static const gchar *const max_watches_proc[] = { MAX_WATCHES_PROC, MAX_WATCHES_USERNS_PROC };
  const gchar *env = g_getenv (MAX_WATCHES_ENV);
  guint limit = G_MAXUINT;
  guint64 value;

  if (env != NULL)
    {
      if (g_ascii_string_to_unsigned (env, 10, 0, G_MAXUINT, &value, NULL))
        return (guint)value;
      g_warning ("Ignoring %s=%s: not a number", MAX_WATCHES_ENV, env);
    }
  /* The machine's limit, and this user namespace's own (both apply). */
  for (guint i = 0; i < G_N_ELEMENTS (max_watches_proc); i++)
    {
      g_autofree gchar *contents = NULL;
      if (g_file_get_contents (max_watches_proc[i], &contents, NULL, NULL)
          && g_ascii_string_to_unsigned (g_strstrip (contents), 10, 0, G_MAXUINT, &value, NULL))
        limit = MIN (limit, (guint)value);
    }
  return limit != G_MAXUINT ? limit : MAX_WATCHES_FALLBACK;
}

static gint
compare_paths (gconstpointer a, gconstpointer b, gpointer user_data)
{
  return strcmp (a, b);
}

/* Directory monitors all FsWatchers of this process hold. GIO shares one
 * inotify instance; when the kernel refuses a watch (the user's
 * max_user_watches is shared with every other process), GIO quietly polls
 * the directory itself every few seconds instead and says nothing, so the
 * kernel's count of watches is compared with ours. */
static gint expected_watches;

/* Watches the kernel holds for this process's inotify instances. */
static guint
kernel_inotify_watches (void)
{
  g_autoptr (GDir) fds = g_dir_open ("/proc/self/fd", 0, NULL);
  const gchar *name;
  guint count = 0;

  if (fds == NULL)
    return G_MAXUINT; /* cannot tell: trust GIO */
  while ((name = g_dir_read_name (fds)) != NULL)
    {
      g_autofree gchar *link = g_strconcat ("/proc/self/fd/", name, NULL);
      g_autofree gchar *target = g_file_read_link (link, NULL);
      g_autofree gchar *info_path = NULL;
      g_autofree gchar *info = NULL;

      if (g_strcmp0 (target, "anon_inode:inotify") != 0)
        continue;
      info_path = g_strconcat ("/proc/self/fdinfo/", name, NULL);
      if (!g_file_get_contents (info_path, &info, NULL, NULL))
        continue;
      for (const gchar *line = info; line != NULL && *line != '\0';)
        {
          if (g_str_has_prefix (line, "inotify wd:"))
            count++;
          line = strchr (line, '\n');
          if (line != NULL)
            line++;
        }
    }
  return count;
}

/* FALSE when the kernel holds fewer watches than the monitors we made. */
static gboolean
watches_all_granted (void)
{
  guint kernel = kernel_inotify_watches ();
  guint expected = (guint) g_atomic_int_get (&expected_watches);

  if (kernel >= expected)
    return TRUE;
  g_message ("The kernel granted %u of %u inotify watches (fs.inotify.max_user_watches)", kernel,
             expected);
  return FALSE;
}

static void
release_monitor (gpointer data)
{
  GFileMonitor *monitor = data;

  g_atomic_int_add (&expected_watches, -1);
  g_signal_handlers_disconnect_matched (monitor, G_SIGNAL_MATCH_FUNC, 0, 0, NULL,
                                        on_monitor_changed, NULL);
  g_file_monitor_cancel (monitor);
  g_object_unref (monitor);
}

static GFile *
resolve (FsWatcher *self, const gchar *rel)
{
  return *rel == '\0' ? g_object_ref (self->root) : g_file_resolve_relative_path (self->root, rel);
}

/* Drops the monitors of @rel and of every directory below it. Paths with the
 * prefix "rel/" are contiguous in strcmp order, so this is a range walk. */
static void
drop_subtree (FsWatcher *self, const gchar *rel)
{
  g_autofree gchar *prefix = g_strconcat (rel, "/", NULL);
  g_autoptr (GPtrArray) below = g_ptr_array_new_with_free_func (g_free);
  GTreeNode *node;

  g_tree_remove (self->monitors, rel);
  for (node = g_tree_lower_bound (self->monitors, prefix); node != NULL;
       node = g_tree_node_next (node))
    {
      const gchar *key = g_tree_node_key (node);
      if (!g_str_has_prefix (key, prefix))
        break;
      g_ptr_array_add (below, g_strdup (key));
    }
  for (guint i = 0; i < below->len; i++)
    g_tree_remove (self->monitors, below->pdata[i]);
  if (below->len > 0)
    g_debug ("dropped %u monitors below %s", below->len, rel);
}

/* Whether the directory open as @fd has no subdirectory, as its link count
 * tells on file systems that count them (2: "." and its entry in the
 * parent), as find(1) does: no need to list its files then. Its monitor
 * exists already, so a subdirectory made from now on is an event. */
static gboolean
has_no_subdirectories (int fd)
{
  struct stat st;
  struct statfs sfs;

  if (fstat (fd, &st) != 0 || st.st_nlink != 2 || fstatfs (fd, &sfs) != 0)
    return FALSE;
  switch ((unsigned long) sfs.f_type)
    {
    case EXT4_SUPER_MAGIC: /* ext2, ext3 too */
    case XFS_SUPER_MAGIC:
    case TMPFS_MAGIC:
      return TRUE;
    default: /* btrfs counts 1, others may not count at all */
      return FALSE;
    }
}

/* Adds monitors for @rel and every directory below it that is not watched
 * yet; the paths of everything found below @rel go to @contents when it is
 * not NULL. Each directory is listed after its monitor exists, so nothing
 * created in between is missed. Returns FALSE when inotify cannot cover the
 * tree: the caller switches to polling. */
static gboolean
watch_tree (FsWatcher *self, const gchar *rel, GPtrArray *contents)
{
  g_autoptr (GPtrArray) todo = g_ptr_array_new_with_free_func (g_free);

  g_ptr_array_add (todo, g_strdup (rel));
  while (todo->len > 0)
    {
      g_autofree gchar *dir = g_ptr_array_steal_index (todo, todo->len - 1);
      g_autoptr (GFile) dir_file = NULL;
      g_autoptr (GFileMonitor) monitor = NULL;
      g_autoptr (GError) error = NULL;
      const gchar *type_name;
      struct dirent *de;
      DIR *dir_stream;

      if (g_tree_lookup (self->monitors, dir) != NULL)
        continue;
      if ((guint)g_tree_nnodes (self->monitors) >= self->max_watches)
        {
          g_message ("%s: more than %u directories, beyond the inotify watch limit",
                     g_file_peek_path (self->root), self->max_watches);
          return FALSE;
        }

      dir_file = resolve (self, dir);
      monitor = g_file_monitor_directory (dir_file, G_FILE_MONITOR_WATCH_MOVES, NULL, &error);
      if (monitor == NULL)
        {
          g_message ("Cannot monitor %s: %s", g_file_peek_path (dir_file), error->message);
          return FALSE;
        }
      type_name = G_OBJECT_TYPE_NAME (monitor);
      if (g_strcmp0 (type_name, INOTIFY_MONITOR_TYPE) != 0)
        {
          g_message ("%s: GIO monitors it with %s, not inotify", g_file_peek_path (dir_file),
                     type_name);
          g_file_monitor_cancel (monitor);
          return FALSE;
        }
      g_signal_connect (monitor, "changed", G_CALLBACK (on_monitor_changed), self);
      g_tree_insert (self->monitors, g_strdup (dir), g_steal_pointer (&monitor));
      g_atomic_int_inc (&expected_watches);

      /* readdir's d_type rather than a GFileInfo per entry: a start on a
       * tree of 100,000 files lists them all. */
      dir_stream = opendir (g_file_peek_path (dir_file));
      if (dir_stream == NULL)
        {
          /* Gone already, or unreadable (the scanner skips it too): a monitor
           * on it would only make GIO poll for it. */
          g_debug ("not watching %s: %s", g_file_peek_path (dir_file), g_strerror (errno));
          g_tree_remove (self->monitors, dir);
          continue;
        }
      if (contents == NULL && has_no_subdirectories (dirfd (dir_stream)))
        {
          closedir (dir_stream);
          continue;
        }
      while ((de = readdir (dir_stream)) != NULL)
        {
          g_autofree gchar *child = NULL;
          gboolean is_dir = de->d_type == DT_DIR;
          struct stat st;

          if (g_str_equal (de->d_name, ".") || g_str_equal (de->d_name, "..") ||
              g_str_has_prefix (de->d_name, INTERNAL_PREFIX))
            continue;
          if (de->d_type == DT_UNKNOWN)
            is_dir = fstatat (dirfd (dir_stream), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                     S_ISDIR (st.st_mode);
          child = *dir == '\0' ? g_strdup (de->d_name) : g_strconcat (dir, "/", de->d_name, NULL);
          if (contents != NULL)
            g_ptr_array_add (contents, g_strdup (child));
          if (is_dir)
            g_ptr_array_add (todo, g_steal_pointer (&child));
        }
      closedir (dir_stream);
    }
  return watches_all_granted ();
}

static gboolean
on_poll (gpointer user_data)
{
  FsWatcher *self = user_data;
  g_autoptr (FsWatcher) keep = g_object_ref (self);

  g_signal_emit (self, signals[SIGNAL_CHANGED], 0, NULL);
  return G_SOURCE_CONTINUE;
}

static void
switch_to_polling (FsWatcher *self)
{
  g_autoptr (FsWatcher) keep = g_object_ref (self);

  if (self->mode == FS_WATCH_MODE_POLLING)
    return;
  g_tree_remove_all (self->monitors);
  self->mode = FS_WATCH_MODE_POLLING;
  self->poll_source = g_timeout_source_new_seconds (self->poll_interval_s);
  g_source_set_callback (self->poll_source, on_poll, self, NULL);
  g_source_set_static_name (self->poll_source, "[foldersync] watcher poll");
  g_source_attach (self->poll_source, self->context);
  g_message ("%s: watching by polling every %u s", g_file_peek_path (self->root),
             self->poll_interval_s);

  g_object_notify_by_pspec (G_OBJECT (self), props[PROP_MODE]);
  /* Whatever happened since the last event is only seen by a rescan. */
  if (self->started)
    g_signal_emit (self, signals[SIGNAL_CHANGED], 0, NULL);
}

/* @file's path relative to the root; NULL outside the root or internal. */
static gchar *
relative_path (FsWatcher *self, GFile *file)
{
  g_autofree gchar *rel = NULL;

  if (file == NULL)
    return NULL;
  rel = g_file_get_relative_path (self->root, file);
  if (rel == NULL || is_internal (rel))
    return NULL;
  return g_steal_pointer (&rel);
}

static void
note_path (FsWatcher *self, GFile *file, GPtrArray *out)
{
  gchar *rel = relative_path (self, file);

  if (rel != NULL)
    g_ptr_array_add (out, rel);
}

/* @file was created or moved in: report it, and watch it if it is a directory. */
static gboolean
appeared (FsWatcher *self, GFile *file, GPtrArray *out)
{
  g_autofree gchar *rel = relative_path (self, file);
  g_autoptr (GFileInfo) info = NULL;

  if (rel == NULL)
    return TRUE;
  g_ptr_array_add (out, g_strdup (rel));
  info = g_file_query_info (file, G_FILE_ATTRIBUTE_STANDARD_TYPE,
                            G_FILE_QUERY_INFO_NOFOLLOW_SYMLINKS, NULL, NULL);
  if (info == NULL || g_file_info_get_file_type (info) != G_FILE_TYPE_DIRECTORY)
    return TRUE;
  /* inotify watches inodes: a monitor already at this path (a directory
   * renamed over an empty one) watches the replaced directory, not this one */
  drop_subtree (self, rel);
  return watch_tree (self, rel, out);
}

/* @file was deleted or moved away: report it, and drop its monitors. */
static void
gone (FsWatcher *self, GFile *file, GPtrArray *out)
{
  g_autofree gchar *rel = NULL;

  if (g_file_equal (file, self->root))
    {
      g_message ("%s: the folder itself was deleted or moved", g_file_peek_path (self->root));
      g_ptr_array_add (out, NULL);
      return;
    }
  rel = relative_path (self, file);
  if (rel == NULL)
    return;
  drop_subtree (self, rel);
  g_ptr_array_add (out, g_steal_pointer (&rel));
}

static void
on_monitor_changed (GFileMonitor *monitor, GFile *file, GFile *other, GFileMonitorEvent event,
                    gpointer user_data)
{
  FsWatcher *self = user_data;
  g_autoptr (FsWatcher) keep = g_object_ref (self); /* a handler may drop the last ref */
  g_autoptr (GPtrArray) out = g_ptr_array_new_with_free_func (g_free);
  gboolean ok = TRUE;

  if (!self->started || self->mode != FS_WATCH_MODE_INOTIFY)
    return;

  switch (event)
    {
      case G_FILE_MONITOR_EVENT_CHANGED:
      case G_FILE_MONITOR_EVENT_CHANGES_DONE_HINT:
      case G_FILE_MONITOR_EVENT_ATTRIBUTE_CHANGED:
        note_path (self, file, out);
        break;
      case G_FILE_MONITOR_EVENT_CREATED:
        ok = appeared (self, file, out);
        break;
      case G_FILE_MONITOR_EVENT_MOVED_IN:
        /* @other is where it came from, when that is known */
        if (other != NULL)
          note_path (self, other, out);
        ok = appeared (self, file, out);
        break;
      case G_FILE_MONITOR_EVENT_DELETED:
        gone (self, file, out);
        break;
      case G_FILE_MONITOR_EVENT_MOVED_OUT:
        /* @other is where it went; its own directory's monitor sees it arrive */
        gone (self, file, out);
        if (other != NULL)
          note_path (self, other, out);
        break;
      case G_FILE_MONITOR_EVENT_RENAMED:
        gone (self, file, out);
        if (other != NULL)
          ok = appeared (self, other, out);
        break;
      case G_FILE_MONITOR_EVENT_PRE_UNMOUNT:
      case G_FILE_MONITOR_EVENT_UNMOUNTED:
      case G_FILE_MONITOR_EVENT_MOVED: /* not sent with WATCH_MOVES */
      default:
        g_ptr_array_add (out, NULL);
        break;
    }

  if (!ok)
    {
      switch_to_polling (self);
      return;
    }
  for (guint i = 0; i < out->len; i++)
    {
      /* A handler may have stopped us. */
      if (!self->started || self->mode != FS_WATCH_MODE_INOTIFY)
        break;
      g_signal_emit (self, signals[SIGNAL_CHANGED], 0, out->pdata[i]);
    }
}

gboolean
fs_watcher_start (FsWatcher *self, GError **error)
{
  g_autoptr (GFileEnumerator) enumerator = NULL;
  g_autoptr (GError) local_error = NULL;

  g_return_val_if_fail (FS_IS_WATCHER (self), FALSE);
  g_return_val_if_fail (!self->started, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  /* The root must be a readable directory (a symlink to one is fine). */
  enumerator = g_file_enumerate_children (self->root, G_FILE_ATTRIBUTE_STANDARD_NAME,
                                          G_FILE_QUERY_INFO_NONE, NULL, &local_error);
  if (enumerator == NULL)
    {
      g_set_error (error, FS_ENGINE_ERROR, FS_ENGINE_ERROR_FOLDER, _("Cannot watch %s: %s"),
                   g_file_peek_path (self->root), local_error->message);
      return FALSE;
    }
  g_file_enumerator_close (enumerator, NULL, NULL);

  self->context = g_main_context_ref_thread_default ();
  self->max_watches = read_max_watches ();
  self->started = TRUE;
  if (self->mode != FS_WATCH_MODE_INOTIFY)
    {
      /* started again after a stop */
      self->mode = FS_WATCH_MODE_INOTIFY;
      g_object_notify_by_pspec (G_OBJECT (self), props[PROP_MODE]);
    }

  if (!watch_tree (self, "", NULL))
    switch_to_polling (self);
  else
    g_debug ("%s: watching %d directories (limit %u)", g_file_peek_path (self->root),
             g_tree_nnodes (self->monitors), self->max_watches);
  return TRUE;
}

void
fs_watcher_stop (FsWatcher *self)
{
  g_return_if_fail (FS_IS_WATCHER (self));

  self->started = FALSE;
  g_tree_remove_all (self->monitors);
  if (self->poll_source != NULL)
    {
      g_source_destroy (self->poll_source);
      g_clear_pointer (&self->poll_source, g_source_unref);
    }
  g_clear_pointer (&self->context, g_main_context_unref);
}

FsWatchMode
fs_watcher_get_mode (FsWatcher *self)
{
  g_return_val_if_fail (FS_IS_WATCHER (self), FS_WATCH_MODE_INOTIFY);
  return self->mode;
}

guint
fs_watcher_get_n_watches (FsWatcher *self)
{
  g_return_val_if_fail (FS_IS_WATCHER (self), 0);
  return (guint)g_tree_nnodes (self->monitors);
}

static void
fs_watcher_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  FsWatcher *self = FS_WATCHER (object);

  switch (prop_id)
    {
      case PROP_MODE:
        g_value_set_enum (value, self->mode);
        break;
      default:
        G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
        break;
    }
}

static void
fs_watcher_dispose (GObject *object)
{
  fs_watcher_stop (FS_WATCHER (object));
  G_OBJECT_CLASS (fs_watcher_parent_class)->dispose (object);
}

static void
fs_watcher_finalize (GObject *object)
{
  FsWatcher *self = FS_WATCHER (object);

  g_tree_unref (self->monitors);
  g_clear_object (&self->root);
  G_OBJECT_CLASS (fs_watcher_parent_class)->finalize (object);
}

static void
fs_watcher_class_init (FsWatcherClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->get_property = fs_watcher_get_property;
  object_class->dispose = fs_watcher_dispose;
  object_class->finalize = fs_watcher_finalize;

  props[PROP_MODE]
    = g_param_spec_enum ("mode", NULL, NULL, watch_mode_get_type (), FS_WATCH_MODE_INOTIFY,
                         G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, props);

  /* FsWatcher::changed (const gchar *path or NULL) */
  signals[SIGNAL_CHANGED] = g_signal_new ("changed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                                          0, NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_STRING);
}

static void
fs_watcher_init (FsWatcher *self)
{
  self->mode = FS_WATCH_MODE_INOTIFY;
  self->monitors = g_tree_new_full (compare_paths, NULL, g_free, release_monitor);
}

FsWatcher *
fs_watcher_new (const gchar *root, guint poll_interval_s)
{
  FsWatcher *self;

  g_return_val_if_fail (root != NULL, NULL);

  self = g_object_new (FS_TYPE_WATCHER, NULL);
  self->root = g_file_new_for_path (root);
  self->poll_interval_s = MAX (poll_interval_s, 1);
  return self;
}
