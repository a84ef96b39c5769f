/* Unit tests of the watcher (FsWatcher) on temporary trees, on a private main
 * context. Every wait is for a specific event with a guard of several
 * seconds; "no event" is checked by waiting for a marker file written after
 * the change (events of one directory arrive in order). */
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "fs-watcher.h"

#define GUARD_MS 5000
#define RESCAN "(rescan)" /* how a NULL path is recorded */

typedef struct
{
  GMainContext *context;
  gchar *root;
  FsWatcher *watcher;
  GPtrArray *events; /* relative paths, or RESCAN */
  guint n_mode_notifies;
} Fixture;

static void
remove_tree (const gchar *dir)
{
  const gchar *rm_argv[] = { "rm", "-rf", dir, NULL };
  g_spawn_sync (NULL, (gchar **)rm_argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, NULL,
                NULL);
}

static void
write_file (const gchar *root, const gchar *rel, const gchar *contents)
{
  g_autoptr (GError) error = NULL;
  g_autofree gchar *path = g_build_filename (root, rel, NULL);

  g_file_set_contents (path, contents, -1, &error);
  g_assert_no_error (error);
}

static void
make_dir (const gchar *root, const gchar *rel)
{
  g_autofree gchar *path = g_build_filename (root, rel, NULL);
  g_assert_cmpint (g_mkdir_with_parents (path, 0755), ==, 0);
}

static void
on_changed (FsWatcher *watcher, const gchar *path, gpointer user_data)
{
  Fixture *fx = user_data;

  g_test_message ("changed: %s", path != NULL ? path : RESCAN);
  g_ptr_array_add (fx->events, g_strdup (path != NULL ? path : RESCAN));
}

static void
on_notify_mode (GObject *object, GParamSpec *pspec, gpointer user_data)
{
  Fixture *fx = user_data;
  fx->n_mode_notifies++;
}

static void
fixture_setup (Fixture *fx)
{
  g_autoptr (GError) error = NULL;

  fx->context = g_main_context_new ();
  g_main_context_push_thread_default (fx->context);
  fx->root = g_dir_make_tmp ("fs-watcher-XXXXXX", &error);
  g_assert_no_error (error);
  fx->events = g_ptr_array_new_with_free_func (g_free);
  fx->n_mode_notifies = 0;
  fx->watcher = NULL;
}

/* Starts watching; FALSE (the test is skipped) when this system's GIO does
 * not give inotify monitors. */
static gboolean
fixture_start (Fixture *fx, guint poll_interval_s)
{
  g_autoptr (GError) error = NULL;

  fx->watcher = fs_watcher_new (fx->root, poll_interval_s);
  g_signal_connect (fx->watcher, "changed", G_CALLBACK (on_changed), fx);
  g_signal_connect (fx->watcher, "notify::mode", G_CALLBACK (on_notify_mode), fx);
  g_assert_true (fs_watcher_start (fx->watcher, &error));
  g_assert_no_error (error);
  if (g_getenv ("FOLDERSYNC_MAX_WATCHES") == NULL
      && fs_watcher_get_mode (fx->watcher) != FS_WATCH_MODE_INOTIFY)
    {
      g_test_skip ("no inotify file monitors here");
      return FALSE;
    }
  return TRUE;
}

static void
fixture_teardown (Fixture *fx)
{
  if (fx->watcher != NULL)
    {
      fs_watcher_stop (fx->watcher);
      g_assert_cmpuint (fs_watcher_get_n_watches (fx->watcher), ==, 0);
      g_clear_object (&fx->watcher);
    }
  while (g_main_context_iteration (fx->context, FALSE))
    ;
  remove_tree (fx->root);
  g_free (fx->root);
  g_ptr_array_unref (fx->events);
  g_main_context_pop_thread_default (fx->context);
  g_main_context_unref (fx->context);
}

static gboolean
has_event (Fixture *fx, const gchar *path)
{
  for (guint i = 0; i < fx->events->len; i++)
    if (g_strcmp0 (fx->events->pdata[i], path) == 0)
      return TRUE;
  return FALSE;
}

static gboolean
has_event_with (Fixture *fx, const gchar *needle)
{
  for (guint i = 0; i < fx->events->len; i++)
    if (strstr (fx->events->pdata[i], needle) != NULL)
      return TRUE;
  return FALSE;
}

static gboolean
on_guard (gpointer user_data)
{
  *(gboolean *)user_data = TRUE;
  return G_SOURCE_REMOVE;
}

/* Iterates the context until @path was reported or the guard expires. */
static gboolean
wait_for (Fixture *fx, const gchar *path)
{
  gboolean expired = FALSE;
  GSource *guard = g_timeout_source_new (GUARD_MS);

  g_source_set_callback (guard, on_guard, &expired, NULL);
  g_source_attach (guard, fx->context);
  while (!expired && !has_event (fx, path))
    g_main_context_iteration (fx->context, TRUE);
  g_source_destroy (guard);
  g_source_unref (guard);
  if (!has_event (fx, path))
    g_test_message ("timed out waiting for %s", path);
  return has_event (fx, path);
}

/* Iterates the context until the watcher has @n watches or the guard expires;
 * watch changes come with no signal of their own, so it rechecks every 20 ms. */
static gboolean
wait_for_n_watches (Fixture *fx, guint n)
{
  gint64 deadline = g_get_monotonic_time () + GUARD_MS * G_TIME_SPAN_MILLISECOND;

  while (fs_watcher_get_n_watches (fx->watcher) != n && g_get_monotonic_time () < deadline)
    {
      gboolean ticked = FALSE;
      GSource *tick = g_timeout_source_new (20);

      g_source_set_callback (tick, on_guard, &ticked, NULL);
      g_source_attach (tick, fx->context);
      while (!ticked)
        g_main_context_iteration (fx->context, TRUE);
      g_source_destroy (tick);
      g_source_unref (tick);
    }
  return fs_watcher_get_n_watches (fx->watcher) == n;
}

static void
test_files (void)
{
  Fixture fx;
  g_autofree gchar *path = NULL;

  fixture_setup (&fx);
  make_dir (fx.root, "sub");
  if (!fixture_start (&fx, 30))
    {
      fixture_teardown (&fx);
      return;
    }
  g_assert_cmpuint (fs_watcher_get_mode (fx.watcher), ==, FS_WATCH_MODE_INOTIFY);
  g_assert_cmpuint (fs_watcher_get_n_watches (fx.watcher), ==, 2);

  /* created */
  write_file (fx.root, "a.txt", "one");
  g_assert_true (wait_for (&fx, "a.txt"));
  write_file (fx.root, "sub/b.txt", "one");
  g_assert_true (wait_for (&fx, "sub/b.txt"));

  /* modified in place (not through a rename) */
  g_ptr_array_set_size (fx.events, 0);
  path = g_build_filename (fx.root, "sub/b.txt", NULL);
  {
    FILE *f = fopen (path, "a");
    g_assert_nonnull (f);
    fputs ("two", f);
    fclose (f);
  }
  g_assert_true (wait_for (&fx, "sub/b.txt"));

  /* deleted */
  g_ptr_array_set_size (fx.events, 0);
  g_assert_cmpint (g_unlink (path), ==, 0);
  g_assert_true (wait_for (&fx, "sub/b.txt"));

  /* renamed: both names */
  g_ptr_array_set_size (fx.events, 0);
  {
    g_autofree gchar *from = g_build_filename (fx.root, "a.txt", NULL);
    g_autofree gchar *to = g_build_filename (fx.root, "sub/c.txt", NULL);
    g_assert_cmpint (g_rename (from, to), ==, 0);
  }
  g_assert_true (wait_for (&fx, "a.txt"));
  g_assert_true (wait_for (&fx, "sub/c.txt"));
  g_assert_false (has_event (&fx, RESCAN));

  fixture_teardown (&fx);
}

static void
test_new_directory (void)
{
  Fixture fx;

  fixture_setup (&fx);
  if (!fixture_start (&fx, 30))
    {
      fixture_teardown (&fx);
      return;
    }
  g_assert_cmpuint (fs_watcher_get_n_watches (fx.watcher), ==, 1);

  /* written before the watcher can have seen the directory */
  make_dir (fx.root, "new/deep/er");
  write_file (fx.root, "new/f.txt", "x");
  write_file (fx.root, "new/deep/er/g.txt", "x");
  g_assert_true (wait_for (&fx, "new"));
  g_assert_true (wait_for (&fx, "new/f.txt"));
  g_assert_true (wait_for (&fx, "new/deep/er/g.txt"));
  g_assert_cmpuint (fs_watcher_get_n_watches (fx.watcher), ==, 4);

  /* and later writes are seen by the new monitors */
  write_file (fx.root, "new/deep/er/h.txt", "x");
  g_assert_true (wait_for (&fx, "new/deep/er/h.txt"));

  fixture_teardown (&fx);
}

/* A directory without subdirectories is not listed at the start (its link
 * count says so on ext4, xfs and tmpfs): one made in it later is watched
 * all the same, from the event of its creation. */
static void
test_leaf_directory_grows (void)
{
  Fixture fx;

  fixture_setup (&fx);
  make_dir (fx.root, "leaf");
  for (guint i = 0; i < 50; i++)
    {
      g_autofree gchar *name = g_strdup_printf ("leaf/f%02u.txt", i);
      write_file (fx.root, name, "x");
    }
  if (!fixture_start (&fx, 30))
    {
      fixture_teardown (&fx);
      return;
    }
  g_assert_cmpuint (fs_watcher_get_n_watches (fx.watcher), ==, 2);

  make_dir (fx.root, "leaf/sub");
  write_file (fx.root, "leaf/sub/g.txt", "x");
  g_assert_true (wait_for (&fx, "leaf/sub/g.txt"));
  g_assert_cmpuint (fs_watcher_get_n_watches (fx.watcher), ==, 3);
  write_file (fx.root, "leaf/sub/h.txt", "x");
  g_assert_true (wait_for (&fx, "leaf/sub/h.txt"));

  fixture_teardown (&fx);
}

static void
test_rename_directory (void)
{
  Fixture fx;
  g_autofree gchar *from = NULL;
  g_autofree gchar *to = NULL;

  fixture_setup (&fx);
  make_dir (fx.root, "old/inner");
  write_file (fx.root, "old/inner/f.txt", "x");
  if (!fixture_start (&fx, 30))
    {
      fixture_teardown (&fx);
      return;
    }
  g_assert_cmpuint (fs_watcher_get_n_watches (fx.watcher), ==, 3);

  from = g_build_filename (fx.root, "old", NULL);
  to = g_build_filename (fx.root, "renamed", NULL);
  g_assert_cmpint (g_rename (from, to), ==, 0);
  g_assert_true (wait_for (&fx, "old"));
  g_assert_true (wait_for (&fx, "renamed"));
  g_assert_true (wait_for (&fx, "renamed/inner/f.txt"));
  /* the old names' monitors went, the new names' came */
  g_assert_cmpuint (fs_watcher_get_n_watches (fx.watcher), ==, 3);

  write_file (fx.root, "renamed/inner/new.txt", "x");
  g_assert_true (wait_for (&fx, "renamed/inner/new.txt"));
  g_assert_false (has_event_with (&fx, "old/"));

  /* renamed over an existing (empty) directory: the new contents are watched */
  make_dir (fx.root, "empty");
  g_assert_true (wait_for (&fx, "empty"));
  g_assert_cmpuint (fs_watcher_get_n_watches (fx.watcher), ==, 4);
  {
    g_autofree gchar *empty = g_build_filename (fx.root, "empty", NULL);
    g_assert_cmpint (g_rename (to, empty), ==, 0);
  }
  g_assert_true (wait_for (&fx, "empty/inner/f.txt"));
  g_assert_cmpuint (fs_watcher_get_n_watches (fx.watcher), ==, 3);
  write_file (fx.root, "empty/inner/newer.txt", "x");
  g_assert_true (wait_for (&fx, "empty/inner/newer.txt"));

  fixture_teardown (&fx);
}

static void
test_delete_directory (void)
{
  Fixture fx;
  g_autofree gchar *dir = NULL;

  fixture_setup (&fx);
  make_dir (fx.root, "a/b/c");
  make_dir (fx.root, "keep");
  write_file (fx.root, "a/b/c/f.txt", "x");
  if (!fixture_start (&fx, 30))
    {
      fixture_teardown (&fx);
      return;
    }
  g_assert_cmpuint (fs_watcher_get_n_watches (fx.watcher), ==, 5);

  dir = g_build_filename (fx.root, "a", NULL);
  remove_tree (dir);
  g_assert_true (wait_for (&fx, "a"));
  g_assert_true (wait_for_n_watches (&fx, 2));

  /* a directory moved out of the root drops its monitors too */
  {
    g_autofree gchar *outside = g_strconcat (fx.root, "-outside", NULL);
    g_autofree gchar *keep = g_build_filename (fx.root, "keep", NULL);
    g_assert_cmpint (g_rename (keep, outside), ==, 0);
    g_assert_true (wait_for (&fx, "keep"));
    g_assert_true (wait_for_n_watches (&fx, 1));
    remove_tree (outside);
  }

  fixture_teardown (&fx);
}

static void
test_internal_names (void)
{
  Fixture fx;
  g_autofree gchar *from = NULL;
  g_autofree gchar *to = NULL;

  fixture_setup (&fx);
  if (!fixture_start (&fx, 30))
    {
      fixture_teardown (&fx);
      return;
    }

  write_file (fx.root, ".foldersync.tmp.x", "x");
  make_dir (fx.root, ".foldersync.trash");
  write_file (fx.root, ".foldersync.trash/t", "x");
  /* an atomic replace through a temp file reports only the final name */
  write_file (fx.root, ".foldersync.tmp.y", "y");
  from = g_build_filename (fx.root, ".foldersync.tmp.y", NULL);
  to = g_build_filename (fx.root, "final.txt", NULL);
  g_assert_cmpint (g_rename (from, to), ==, 0);
  write_file (fx.root, "marker", "x");

  g_assert_true (wait_for (&fx, "marker"));
  g_assert_true (has_event (&fx, "final.txt"));
  g_assert_false (has_event_with (&fx, ".foldersync."));
  g_assert_cmpuint (fs_watcher_get_n_watches (fx.watcher), ==, 1);

  fixture_teardown (&fx);
}

static void
test_polling_fallback_body (void)
{
  Fixture fx;
  gint64 start;

  fixture_setup (&fx);
  /* 5 directories with the root */
  make_dir (fx.root, "a/b");
  make_dir (fx.root, "c");
  make_dir (fx.root, "d");
  fixture_start (&fx, 1);

  g_assert_cmpuint (fs_watcher_get_mode (fx.watcher), ==, FS_WATCH_MODE_POLLING);
  g_assert_cmpstr (fs_watch_mode_to_string (fs_watcher_get_mode (fx.watcher)), ==, "polling");
  g_assert_cmpuint (fx.n_mode_notifies, ==, 1);
  g_assert_cmpuint (fs_watcher_get_n_watches (fx.watcher), ==, 0);
  {
    FsWatchMode mode;
    g_object_get (fx.watcher, "mode", &mode, NULL);
    g_assert_cmpuint (mode, ==, FS_WATCH_MODE_POLLING);
  }
  /* one rescan right away... */
  g_assert_cmpuint (fx.events->len, ==, 1);
  g_assert_cmpstr (fx.events->pdata[0], ==, RESCAN);

  /* ...and one per poll interval (1 s), with nothing else */
  g_ptr_array_set_size (fx.events, 0);
  start = g_get_monotonic_time ();
  g_assert_true (wait_for (&fx, RESCAN));
  g_test_message ("poll tick after %" G_GINT64_FORMAT " ms",
                  (g_get_monotonic_time () - start) / 1000);
  write_file (fx.root, "a/b/f.txt", "x");
  g_ptr_array_set_size (fx.events, 0);
  g_assert_true (wait_for (&fx, RESCAN));
  g_assert_cmpuint (fx.events->len, ==, 1);
  g_assert_cmpuint (fx.n_mode_notifies, ==, 1);

  fixture_teardown (&fx);
}

static void
test_polling_fallback_later_body (void)
{
  Fixture fx;

  fixture_setup (&fx);
  make_dir (fx.root, "a");
  fixture_start (&fx, 30);
  if (fs_watcher_get_mode (fx.watcher) != FS_WATCH_MODE_INOTIFY)
    {
      g_test_skip ("no inotify file monitors here");
      fixture_teardown (&fx);
      return;
    }
  g_assert_cmpuint (fs_watcher_get_n_watches (fx.watcher), ==, 2);

  /* one more directory fits, the next does not */
  make_dir (fx.root, "b");
  g_assert_true (wait_for (&fx, "b"));
  g_assert_cmpuint (fs_watcher_get_mode (fx.watcher), ==, FS_WATCH_MODE_INOTIFY);
  g_assert_cmpuint (fs_watcher_get_n_watches (fx.watcher), ==, 3);
  make_dir (fx.root, "c");
  g_assert_true (wait_for (&fx, RESCAN));
  g_assert_cmpuint (fs_watcher_get_mode (fx.watcher), ==, FS_WATCH_MODE_POLLING);
  g_assert_cmpuint (fx.n_mode_notifies, ==, 1);
  g_assert_cmpuint (fs_watcher_get_n_watches (fx.watcher), ==, 0);

  fixture_teardown (&fx);
}

/* $FOLDERSYNC_MAX_WATCHES is set in a fresh test process, before GIO has
 * started any thread (setenv is not thread-safe). */
static void
run_with_max_watches (const gchar *max_watches, void (*body) (void))
{
  if (g_test_subprocess ())
    {
      g_setenv ("FOLDERSYNC_MAX_WATCHES", max_watches, TRUE);
      body ();
      return;
    }
  g_test_trap_subprocess (NULL, 30 * G_USEC_PER_SEC, G_TEST_SUBPROCESS_INHERIT_STDERR);
  g_test_trap_assert_passed ();
}

static void
test_polling_fallback (void)
{
  run_with_max_watches ("2", test_polling_fallback_body);
}

static void
test_polling_fallback_later (void)
{
  run_with_max_watches ("3", test_polling_fallback_later_body);
}

/* With nothing changing, nothing wakes the main context but the test's own guard. */
static void
test_idle (void)
{
  Fixture fx;
  gboolean expired = FALSE;
  guint n_dispatches = 0;
  GSource *guard;

  fixture_setup (&fx);
  make_dir (fx.root, "a/b");
  make_dir (fx.root, "c");
  write_file (fx.root, "a/b/f.txt", "x");
  if (!fixture_start (&fx, 30))
    {
      fixture_teardown (&fx);
      return;
    }
  /* let the start settle (nothing should be pending anyway) */
  while (g_main_context_iteration (fx.context, FALSE))
    ;
  guard = g_timeout_source_new (1500);
  g_source_set_callback (guard, on_guard, &expired, NULL);
  g_source_attach (guard, fx.context);
  while (!expired)
    {
      if (g_main_context_iteration (fx.context, TRUE))
        n_dispatches++;
    }
  g_source_destroy (guard);
  g_source_unref (guard);
  g_assert_cmpuint (n_dispatches, ==, 1);
  g_assert_cmpuint (fx.events->len, ==, 0);
  fixture_teardown (&fx);
}

static void
test_symlink (void)
{
  Fixture fx;
  g_autoptr (GError) error = NULL;
  g_autofree gchar *outside = g_dir_make_tmp ("fs-watcher-outside-XXXXXX", &error);
  g_autofree gchar *link = NULL;

  g_assert_no_error (error);
  make_dir (outside, "sub");
  fixture_setup (&fx);
  link = g_build_filename (fx.root, "link", NULL);
  g_assert_cmpint (symlink (outside, link), ==, 0);
  if (!fixture_start (&fx, 30))
    {
      fixture_teardown (&fx);
      return;
    }
  g_assert_cmpuint (fs_watcher_get_n_watches (fx.watcher), ==, 1);

  write_file (outside, "f.txt", "x");
  write_file (outside, "sub/g.txt", "x");
  write_file (fx.root, "marker", "x");
  g_assert_true (wait_for (&fx, "marker"));
  g_assert_false (has_event_with (&fx, "link/"));

  /* a symlink created later is reported, not followed */
  {
    g_autofree gchar *link2 = g_build_filename (fx.root, "link2", NULL);
    g_assert_cmpint (symlink (outside, link2), ==, 0);
  }
  g_assert_true (wait_for (&fx, "link2"));
  g_assert_cmpuint (fs_watcher_get_n_watches (fx.watcher), ==, 1);
  g_assert_false (has_event_with (&fx, "link2/"));

  fixture_teardown (&fx);
  remove_tree (outside);
}

static void
test_stop (void)
{
  Fixture fx;

  fixture_setup (&fx);
  make_dir (fx.root, "a");
  if (!fixture_start (&fx, 30))
    {
      fixture_teardown (&fx);
      return;
    }
  g_assert_cmpuint (fs_watcher_get_n_watches (fx.watcher), ==, 2);
  fs_watcher_stop (fx.watcher);
  g_assert_cmpuint (fs_watcher_get_n_watches (fx.watcher), ==, 0);
  write_file (fx.root, "a/f.txt", "x");
  /* nothing left in the context that could report it */
  for (guint i = 0; i < 20; i++)
    {
      g_usleep (10000);
      while (g_main_context_iteration (fx.context, FALSE))
        ;
    }
  g_assert_cmpuint (fx.events->len, ==, 0);

  fixture_teardown (&fx);
}

static void
test_missing_root (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (FsWatcher) watcher = fs_watcher_new ("/nonexistent/fs-watcher-test", 30);

  g_assert_false (fs_watcher_start (watcher, &error));
  g_assert_nonnull (error);
  g_assert_nonnull (strstr (error->message, "/nonexistent/fs-watcher-test"));
  g_assert_cmpstr (fs_watch_mode_to_string (FS_WATCH_MODE_INOTIFY), ==, "inotify");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/watcher/files", test_files);
  g_test_add_func ("/watcher/new-directory", test_new_directory);
  g_test_add_func ("/watcher/leaf-directory-grows", test_leaf_directory_grows);
  g_test_add_func ("/watcher/rename-directory", test_rename_directory);
  g_test_add_func ("/watcher/delete-directory", test_delete_directory);
  g_test_add_func ("/watcher/internal-names", test_internal_names);
  g_test_add_func ("/watcher/polling-fallback", test_polling_fallback);
  g_test_add_func ("/watcher/polling-fallback-later", test_polling_fallback_later);
  g_test_add_func ("/watcher/symlink", test_symlink);
  g_test_add_func ("/watcher/stop", test_stop);
  g_test_add_func ("/watcher/idle", test_idle);
  g_test_add_func ("/watcher/missing-root", test_missing_root);

  return g_test_run ();
}
