/* FsAppletNotifier: desktop notifications (GNotification, which reaches
 * org.freedesktop.Notifications or GNOME Shell through the application).
 *
 * Rate limit: per folder and kind, the first event after a quiet period is
 * shown at once and opens a window of @interval seconds; events inside the
 * window are counted and shown as one notification when it closes (which
 * opens the next window). A notification replaces the previous one of its
 * folder and kind (same id), so a burst of conflicts is one bubble, not ten.
 */
#include "config.h"

#include "fs-applet-notify.h"

#include <glib/gi18n.h>

struct _FsAppletNotifier
{
  GObject parent_instance;

  GApplication *application; /* not owned: it owns us */
  guint interval;
  GHashTable *windows; /* "kind:object path" → Window */
};

G_DEFINE_FINAL_TYPE (FsAppletNotifier, fs_applet_notifier, G_TYPE_OBJECT)

typedef struct
{
  FsAppletNotifier *self;
  gchar *key;
  FsAppletFolder *folder;
  FsAppletEvent kind;
  guint pending;  /* events since the last notification */
  gchar *detail;  /* the latest event's */
  guint timer;
} Window;

static void
window_free (gpointer data)
{
  Window *w = data;

  g_clear_handle_id (&w->timer, g_source_remove);
  g_object_unref (w->folder);
  g_free (w->detail);
  g_free (w->key);
  g_free (w);
}

static void
fs_applet_notifier_finalize (GObject *object)
{
  FsAppletNotifier *self = FS_APPLET_NOTIFIER (object);

  g_hash_table_unref (self->windows);
  G_OBJECT_CLASS (fs_applet_notifier_parent_class)->finalize (object);
}

static void
fs_applet_notifier_class_init (FsAppletNotifierClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = fs_applet_notifier_finalize;
}

static void
fs_applet_notifier_init (FsAppletNotifier *self)
{
  self->windows = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, window_free);
}

FsAppletNotifier *
fs_applet_notifier_new (GApplication *application, guint interval_seconds)
{
  FsAppletNotifier *self = g_object_new (FS_APPLET_TYPE_NOTIFIER, NULL);

  self->application = application;
  self->interval = MAX (interval_seconds, 1);
  return self;
}

/* Title and body for @count events of @w's kind, the latest with @w->detail. */
static GNotification *
build_notification (Window *w, guint count)
{
  g_autofree gchar *name = fs_applet_folder_dup_name (w->folder);
  const gchar *detail = w->detail != NULL ? w->detail : "";
  g_autoptr (GNotification) n = NULL;
  g_autoptr (GIcon) icon = NULL;
  g_autofree gchar *title = NULL;
  g_autofree gchar *body = NULL;
  const gchar *icon_name = "foldersync-idle-symbolic";

  switch (w->kind)
    {
    case FS_APPLET_EVENT_CONFLICT:
      if (count == 1)
        {
          title = g_strdup_printf (_("Conflict in “%s”"), name);
          body = g_strdup_printf (_("“%s” was changed on two devices. Both versions were kept; "
                                    "choose one from the FolderSync menu."), detail);
        }
      else
        {
          title = g_strdup_printf (g_dngettext (GETTEXT_PACKAGE, "%u new conflict in “%s”",
                                                "%u new conflicts in “%s”", count), count, name);
          body = g_strdup_printf (_("The latest: “%s”. Choose the versions to keep from the "
                                    "FolderSync menu."), detail);
        }
      icon_name = "foldersync-conflict-symbolic";
      break;
    case FS_APPLET_EVENT_ERROR:
      title = g_strdup_printf (_("Syncing “%s” stopped"), name);
      body = g_strdup (*detail != '\0' ? detail : _("An error stopped syncing this folder."));
      icon_name = "foldersync-error-symbolic";
      break;
    case FS_APPLET_EVENT_HELD_DELETES:
      {
        guint held = (guint)g_ascii_strtoull (detail, NULL, 10);
        title = g_strdup_printf (_("Deletions held back in “%s”"), name);
        body = g_strdup_printf (g_dngettext (GETTEXT_PACKAGE,
                                             "%u deletion would remove more than half of the folder. "
                                             "It waits for your confirmation.",
                                             "%u deletions would remove more than half of the folder. "
                                             "They wait for your confirmation.", held),
                                held);
        icon_name = "foldersync-conflict-symbolic";
        break;
      }
    case FS_APPLET_EVENT_PAIRED:
      title = g_strdup_printf (_("“%s” is paired"), name);
      body = g_strdup_printf (_("This device now syncs %s with the other device."), detail);
      break;
    default:
      g_return_val_if_reached (NULL);
    }

  n = g_notification_new (title);
  g_notification_set_body (n, body);
  icon = g_themed_icon_new (icon_name);
  g_notification_set_icon (n, icon);
  g_notification_set_priority (n, w->kind == FS_APPLET_EVENT_ERROR ? G_NOTIFICATION_PRIORITY_HIGH
                                                                   : G_NOTIFICATION_PRIORITY_NORMAL);
  g_notification_set_default_action_and_target (n, "app.open-folder", "s",
                                                 fs_applet_folder_get_local_path (w->folder));
  if (w->kind == FS_APPLET_EVENT_HELD_DELETES)
    g_notification_add_button_with_target (n, _("Apply deletions"), "app.confirm-deletes", "s",
                                           fs_applet_folder_get_object_path (w->folder));
  return g_steal_pointer (&n);
}

static void
send (Window *w, guint count)
{
  g_autoptr (GNotification) n = build_notification (w, count);

  if (n != NULL)
    g_application_send_notification (w->self->application, w->key, n);
}

static gboolean
window_closed_cb (gpointer data)
{
  Window *w = data;

  if (w->pending == 0)
    {
      w->timer = 0;
      g_hash_table_remove (w->self->windows, w->key);
      return G_SOURCE_REMOVE;
    }
  send (w, w->pending);
  w->pending = 0;
  return G_SOURCE_CONTINUE; /* the next window */
}

/* The notification id of @folder's notifications of @kind. */
static gchar *
notification_id (FsAppletFolder *folder, FsAppletEvent kind)
{
  return g_strdup_printf ("%s-%s", kind == FS_APPLET_EVENT_CONFLICT       ? "conflict"
                                   : kind == FS_APPLET_EVENT_ERROR        ? "error"
                                   : kind == FS_APPLET_EVENT_HELD_DELETES ? "held-deletes"
                                                                          : "paired",
                          fs_applet_folder_get_object_path (folder));
}

void
fs_applet_notifier_post (FsAppletNotifier *self, FsAppletFolder *folder, FsAppletEvent kind,
                         const gchar *detail)
{
  g_autofree gchar *key = NULL;
  Window *w;

  g_return_if_fail (FS_APPLET_IS_NOTIFIER (self));
  g_return_if_fail (FS_APPLET_IS_FOLDER (folder));

  key = notification_id (folder, kind);
  w = g_hash_table_lookup (self->windows, key);
  if (w != NULL)
    {
      w->pending++;
      g_free (w->detail);
      w->detail = g_strdup (detail);
      return;
    }
  w = g_new0 (Window, 1);
  w->self = self;
  w->key = g_steal_pointer (&key);
  w->folder = g_object_ref (folder);
  w->kind = kind;
  w->detail = g_strdup (detail);
  g_hash_table_insert (self->windows, w->key, w);
  send (w, 1);
  w->timer = g_timeout_add_seconds (self->interval, window_closed_cb, w);
}

/* What was notified is over (the folder recovered, the deletions were
 * applied): the notification goes, and so does anything still counted. */
void
fs_applet_notifier_withdraw (FsAppletNotifier *self, FsAppletFolder *folder, FsAppletEvent kind)
{
  g_autofree gchar *key = NULL;
  Window *w;

  g_return_if_fail (FS_APPLET_IS_NOTIFIER (self));
  g_return_if_fail (FS_APPLET_IS_FOLDER (folder));

  key = notification_id (folder, kind);
  w = g_hash_table_lookup (self->windows, key);
  if (w != NULL)
    w->pending = 0; /* the window stays: the rate limit still holds */
  g_application_withdraw_notification (self->application, key);
}
