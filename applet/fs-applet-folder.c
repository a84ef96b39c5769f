/* FsAppletFolder: one synced folder as the applet sees it.
 *
 * It follows the Folder proxy's PropertiesChanged and signals (the daemon
 * coalesces property changes to about 4 per second) and keeps the list of
 * conflicts, which is not a property: it is read again with ListConflicts
 * when a conflict is reported and after each sync run (SyncCount changes),
 * because a conflict copy can also arrive from another device or be removed
 * by the user. Signals:
 *   "changed"            state, progress or labels changed
 *   "conflicts-changed"  the conflict list is different
 *   "event" (kind, detail)  something to notify (FsAppletEvent)
 *   "event-over" (kind)     an error or held deletions are gone
 */
#include "config.h"

#include "fs-applet-folder.h"

#include <glib/gi18n.h>

struct _FsAppletFolder
{
  GObject parent_instance;

  FsDBusFolder *proxy;
  GCancellable *cancellable;
  GVariant *conflicts; /* a(ss), never NULL */
  gchar *last_state;   /* the State seen last, to notice transitions */
  guint last_held;
  guint64 last_sync_count;
  gboolean listing;      /* a ListConflicts call is in flight */
  gboolean list_again;   /* and another was asked for meanwhile */
};

G_DEFINE_FINAL_TYPE (FsAppletFolder, fs_applet_folder, G_TYPE_OBJECT)

enum
{
  SIGNAL_CHANGED,
  SIGNAL_CONFLICTS_CHANGED,
  SIGNAL_EVENT,
  SIGNAL_EVENT_OVER,
  N_SIGNALS
};
static guint signals[N_SIGNALS];

static void
fs_applet_folder_dispose (GObject *object)
{
  FsAppletFolder *self = FS_APPLET_FOLDER (object);

  g_cancellable_cancel (self->cancellable);
  if (self->proxy != NULL)
    g_signal_handlers_disconnect_by_data (self->proxy, self);
  g_clear_object (&self->proxy);
  G_OBJECT_CLASS (fs_applet_folder_parent_class)->dispose (object);
}

static void
fs_applet_folder_finalize (GObject *object)
{
  FsAppletFolder *self = FS_APPLET_FOLDER (object);

  g_clear_object (&self->cancellable);
  g_clear_pointer (&self->conflicts, g_variant_unref);
  g_free (self->last_state);
  G_OBJECT_CLASS (fs_applet_folder_parent_class)->finalize (object);
}

static void
fs_applet_folder_class_init (FsAppletFolderClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = fs_applet_folder_dispose;
  object_class->finalize = fs_applet_folder_finalize;

  signals[SIGNAL_CHANGED] = g_signal_new ("changed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                                          NULL, NULL, NULL, G_TYPE_NONE, 0);
  signals[SIGNAL_CONFLICTS_CHANGED] = g_signal_new ("conflicts-changed", G_TYPE_FROM_CLASS (klass),
                                                    G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                                    G_TYPE_NONE, 0);
  signals[SIGNAL_EVENT] = g_signal_new ("event", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL,
                                        NULL, NULL, G_TYPE_NONE, 2, G_TYPE_UINT, G_TYPE_STRING);
  signals[SIGNAL_EVENT_OVER] = g_signal_new ("event-over", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                                             NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_UINT);
}

static void
fs_applet_folder_init (FsAppletFolder *self)
{
  self->cancellable = g_cancellable_new ();
  self->conflicts = g_variant_ref_sink (g_variant_new_array (G_VARIANT_TYPE ("(ss)"), NULL, 0));
}

/* ---- conflicts ---------------------------------------------------------- */

static void
list_conflicts_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (FsAppletFolder) self = user_data;
  g_autoptr (GVariant) conflicts = NULL;
  g_autoptr (GError) error = NULL;

  if (!fs_dbus_folder_call_list_conflicts_finish (FS_DBUS_FOLDER (source), &conflicts, result, &error))
    {
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        g_debug ("ListConflicts failed: %s", error->message);
      self->listing = FALSE;
      return;
    }
  self->listing = FALSE;
  if (!g_variant_equal (conflicts, self->conflicts))
    {
      g_clear_pointer (&self->conflicts, g_variant_unref);
      self->conflicts = g_steal_pointer (&conflicts);
      g_signal_emit (self, signals[SIGNAL_CONFLICTS_CHANGED], 0);
      g_signal_emit (self, signals[SIGNAL_CHANGED], 0);
    }
  if (self->list_again)
    fs_applet_folder_refresh_conflicts (self);
}

/* Reads the conflicts again; one call at a time, and at most one more after it. */
void
fs_applet_folder_refresh_conflicts (FsAppletFolder *self)
{
  g_return_if_fail (FS_APPLET_IS_FOLDER (self));

  if (self->proxy == NULL) /* disposed */
    return;
  if (self->listing)
    {
      self->list_again = TRUE;
      return;
    }
  self->listing = TRUE;
  self->list_again = FALSE;
  fs_dbus_folder_call_list_conflicts (self->proxy, self->cancellable, list_conflicts_done,
                                      g_object_ref (self));
}

/* ---- following the proxy ------------------------------------------------ */

static void
properties_changed_cb (GDBusProxy *proxy, GVariant *changed, const gchar *const *invalidated,
                       FsAppletFolder *self)
{
  const gchar *state = fs_dbus_folder_get_state (self->proxy);
  guint held = fs_dbus_folder_get_held_deletes (self->proxy);
  guint64 sync_count = fs_dbus_folder_get_sync_count (self->proxy);

  /* Only transitions are news: a folder already in error when the applet
   * (or the daemon) started was not just stopped by an error. */
  if (g_strcmp0 (state, "error") == 0 && g_strcmp0 (self->last_state, "error") != 0)
    g_signal_emit (self, signals[SIGNAL_EVENT], 0, (guint)FS_APPLET_EVENT_ERROR,
                   fs_dbus_folder_get_last_error (self->proxy));
  else if (g_strcmp0 (state, "error") != 0 && g_strcmp0 (self->last_state, "error") == 0)
    g_signal_emit (self, signals[SIGNAL_EVENT_OVER], 0, (guint)FS_APPLET_EVENT_ERROR);
  if (held > 0 && self->last_held == 0)
    {
      g_autofree gchar *count = g_strdup_printf ("%u", held);
      g_signal_emit (self, signals[SIGNAL_EVENT], 0, (guint)FS_APPLET_EVENT_HELD_DELETES, count);
    }
  else if (held == 0 && self->last_held > 0)
    g_signal_emit (self, signals[SIGNAL_EVENT_OVER], 0, (guint)FS_APPLET_EVENT_HELD_DELETES);
  g_free (self->last_state);
  self->last_state = g_strdup (state);
  self->last_held = held;
  if (sync_count != self->last_sync_count)
    {
      self->last_sync_count = sync_count;
      fs_applet_folder_refresh_conflicts (self);
    }
  g_signal_emit (self, signals[SIGNAL_CHANGED], 0);
}

static void
conflict_detected_cb (FsDBusFolder *proxy, const gchar *path, const gchar *copy, FsAppletFolder *self)
{
  g_signal_emit (self, signals[SIGNAL_EVENT], 0, (guint)FS_APPLET_EVENT_CONFLICT, path);
  fs_applet_folder_refresh_conflicts (self);
}

FsAppletFolder *
fs_applet_folder_new (FsDBusFolder *proxy)
{
  FsAppletFolder *self;

  g_return_val_if_fail (FS_DBUS_IS_FOLDER (proxy), NULL);

  self = g_object_new (FS_APPLET_TYPE_FOLDER, NULL);
  self->proxy = g_object_ref (proxy);
  self->last_state = g_strdup (fs_dbus_folder_get_state (proxy));
  self->last_held = fs_dbus_folder_get_held_deletes (proxy);
  self->last_sync_count = fs_dbus_folder_get_sync_count (proxy);
  g_signal_connect (proxy, "g-properties-changed", G_CALLBACK (properties_changed_cb), self);
  g_signal_connect (proxy, "conflict-detected", G_CALLBACK (conflict_detected_cb), self);
  fs_applet_folder_refresh_conflicts (self);
  return self;
}

/* ---- what to show ------------------------------------------------------- */

FsDBusFolder *
fs_applet_folder_get_proxy (FsAppletFolder *self)
{
  g_return_val_if_fail (FS_APPLET_IS_FOLDER (self), NULL);
  return self->proxy;
}

const gchar *
fs_applet_folder_get_object_path (FsAppletFolder *self)
{
  g_return_val_if_fail (FS_APPLET_IS_FOLDER (self), NULL);
  return g_dbus_proxy_get_object_path (G_DBUS_PROXY (self->proxy));
}

const gchar *
fs_applet_folder_get_local_path (FsAppletFolder *self)
{
  const gchar *path;

  g_return_val_if_fail (FS_APPLET_IS_FOLDER (self), NULL);
  path = fs_dbus_folder_get_local_path (self->proxy);
  return path != NULL ? path : "";
}

/* The folder's name as people know it: the last component of its path. */
gchar *
fs_applet_folder_dup_name (FsAppletFolder *self)
{
  const gchar *path = fs_applet_folder_get_local_path (self);

  if (path == NULL || *path == '\0')
    return g_strdup (fs_applet_folder_get_object_path (self));
  return g_path_get_basename (path);
}

gboolean
fs_applet_folder_is_paused (FsAppletFolder *self)
{
  g_return_val_if_fail (FS_APPLET_IS_FOLDER (self), FALSE);
  return g_strcmp0 (fs_dbus_folder_get_state (self->proxy), "paused") == 0;
}

guint
fs_applet_folder_get_held_deletes (FsAppletFolder *self)
{
  g_return_val_if_fail (FS_APPLET_IS_FOLDER (self), 0);
  return fs_dbus_folder_get_held_deletes (self->proxy);
}

/* a(ss): (original, conflict copy) pairs, as ListConflicts returned them. */
GVariant *
fs_applet_folder_get_conflicts (FsAppletFolder *self)
{
  g_return_val_if_fail (FS_APPLET_IS_FOLDER (self), NULL);
  return self->conflicts;
}

FsAppletState
fs_applet_folder_get_state (FsAppletFolder *self)
{
  FsAppletState state;

  g_return_val_if_fail (FS_APPLET_IS_FOLDER (self), FS_APPLET_STATE_IDLE);

  state = fs_applet_state_from_daemon (fs_dbus_folder_get_state (self->proxy));
  if (state != FS_APPLET_STATE_ERROR
      && (g_variant_n_children (self->conflicts) > 0 || fs_dbus_folder_get_held_deletes (self->proxy) > 0))
    return FS_APPLET_STATE_CONFLICT;
  return state;
}

/* One line for the menu: "Syncing 3 of 10 files", "Error: …", "2 conflicts". */
gchar *
fs_applet_folder_describe (FsAppletFolder *self)
{
  FsAppletState state = fs_applet_folder_get_state (self);

  switch (state)
    {
    case FS_APPLET_STATE_SYNCING:
      {
        GVariant *progress = fs_dbus_folder_get_progress (self->proxy);
        guint64 files_done = 0, files_total = 0, bytes_done = 0, bytes_total = 0;

        if (progress != NULL && g_variant_is_of_type (progress, G_VARIANT_TYPE ("(tttt)")))
          g_variant_get (progress, "(tttt)", &files_done, &files_total, &bytes_done, &bytes_total);
        if (files_total > 0)
          {
            g_autofree gchar *done = g_format_size (bytes_done);
            g_autofree gchar *total = g_format_size (bytes_total);
            /* TRANSLATORS: "Syncing 3 of 10 files (1.2 MB of 5.0 MB)" */
            /* %llu, not G_GUINT64_FORMAT: xgettext cannot see through the macro. */
            return g_strdup_printf (g_dngettext (GETTEXT_PACKAGE, "Syncing %llu of %llu file (%s of %s)",
                                                 "Syncing %llu of %llu files (%s of %s)", files_total),
                                    (unsigned long long) files_done, (unsigned long long) files_total,
                                    done, total);
          }
        return g_strdup (fs_applet_state_describe (state));
      }
    case FS_APPLET_STATE_ERROR:
      {
        const gchar *message = fs_dbus_folder_get_last_error (self->proxy);
        if (message != NULL && *message != '\0')
          /* TRANSLATORS: "Error: <the daemon's message>" */
          return g_strdup_printf (_("Error: %s"), message);
        return g_strdup (fs_applet_state_describe (state));
      }
    case FS_APPLET_STATE_CONFLICT:
      {
        gsize n = g_variant_n_children (self->conflicts);
        guint held = fs_dbus_folder_get_held_deletes (self->proxy);
        if (n > 0)
          return g_strdup_printf (g_dngettext (GETTEXT_PACKAGE, "%u conflict", "%u conflicts", n), (guint)n);
        return g_strdup_printf (g_dngettext (GETTEXT_PACKAGE, "%u deletion held back",
                                             "%u deletions held back", held), held);
      }
    case FS_APPLET_STATE_IDLE:
    case FS_APPLET_STATE_PAUSED:
    case FS_APPLET_STATE_OFFLINE:
    default:
      return g_strdup (fs_applet_state_describe (state));
    }
}
