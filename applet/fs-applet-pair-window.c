/* FsAppletPairWindow: asks the daemon for a share token (Folder.GenerateToken,
 * the default lifetime) and shows it as text and as a QR code, with the time
 * left; once it expired, only "New token" helps. The token is wiped from
 * memory when the window goes. The once-a-second timer only redraws the
 * countdown: the expiry itself came with the token. */
#include "config.h"

#include "fs-applet-pair-window.h"

#include <glib/gi18n.h>
#include <string.h>

#include "fs-applet-qr.h"

#define QR_SIZE 288

struct _FsAppletPairWindow
{
  GtkWindow parent_instance;

  FsDBusFolder *proxy;
  gchar *folder_name;
  GCancellable *cancellable;
  gchar *token; /* NULL until the daemon answered */
  gchar *long_token; /* the long form (S3 folders), or NULL */
  guint64 expires;
  guint countdown;

  GtkWidget *token_label;
  GtkWidget *qr_area;
  GtkWidget *countdown_label;
  GtkWidget *copy_button;
  GtkWidget *new_button;
};

G_DEFINE_FINAL_TYPE (FsAppletPairWindow, fs_applet_pair_window, GTK_TYPE_WINDOW)

static void
forget_token (FsAppletPairWindow *self)
{
  if (self->token != NULL)
    {
      explicit_bzero (self->token, strlen (self->token));
      g_clear_pointer (&self->token, g_free);
    }
  if (self->long_token != NULL)
    {
      explicit_bzero (self->long_token, strlen (self->long_token));
      g_clear_pointer (&self->long_token, g_free);
    }
  g_clear_handle_id (&self->countdown, g_source_remove);
}

static void
fs_applet_pair_window_destroy (GtkWidget *widget)
{
  FsAppletPairWindow *self = FS_APPLET_PAIR_WINDOW (widget);

  g_cancellable_cancel (self->cancellable);
  forget_token (self);
  GTK_WIDGET_CLASS (fs_applet_pair_window_parent_class)->destroy (widget);
}

static void
fs_applet_pair_window_finalize (GObject *object)
{
  FsAppletPairWindow *self = FS_APPLET_PAIR_WINDOW (object);

  g_clear_object (&self->cancellable);
  g_clear_object (&self->proxy);
  g_free (self->folder_name);
  G_OBJECT_CLASS (fs_applet_pair_window_parent_class)->finalize (object);
}

static void
fs_applet_pair_window_class_init (FsAppletPairWindowClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = fs_applet_pair_window_finalize;
  GTK_WIDGET_CLASS (klass)->destroy = fs_applet_pair_window_destroy;
}

static gint64
now_seconds (void)
{
  return g_get_real_time () / G_USEC_PER_SEC;
}

static gboolean
expired (FsAppletPairWindow *self)
{
  return self->token == NULL || now_seconds () >= (gint64)self->expires;
}

static gboolean
qr_draw_cb (GtkWidget *area, cairo_t *cr, FsAppletPairWindow *self)
{
  if (self->token == NULL)
    return GDK_EVENT_PROPAGATE;
  /* The long form pairs a device with no storage configured; the short
   * token, shown below, is the one to type. */
  fs_applet_qr_draw (cr, self->long_token != NULL ? self->long_token : self->token, QR_SIZE);
  if (expired (self))
    {
      /* Greyed out: an expired token must not be scanned. */
      cairo_set_source_rgba (cr, 0.5, 0.5, 0.5, 0.85);
      cairo_paint (cr);
    }
  return GDK_EVENT_STOP;
}

static gboolean
countdown_cb (gpointer data)
{
  FsAppletPairWindow *self = data;
  gint64 left = self->token != NULL ? (gint64)self->expires - now_seconds () : 0;

  if (left <= 0)
    {
      gtk_label_set_text (GTK_LABEL (self->countdown_label),
                          _("This token has expired. Make a new one to pair a device."));
      gtk_widget_set_sensitive (self->token_label, FALSE);
      gtk_widget_set_sensitive (self->copy_button, FALSE);
      gtk_widget_queue_draw (self->qr_area);
      self->countdown = 0;
      return G_SOURCE_REMOVE;
    }
  {
    /* TRANSLATORS: minutes and seconds, "Valid for 4:59" */
    g_autofree gchar *text = g_strdup_printf (_("Valid for %u:%02u"), (guint)(left / 60), (guint)(left % 60));
    gtk_label_set_text (GTK_LABEL (self->countdown_label), text);
  }
  return G_SOURCE_CONTINUE;
}

static void
generate_token_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  FsAppletPairWindow *self;
  g_autoptr (GError) error = NULL;
  g_autofree gchar *token = NULL;
  g_autofree gchar *long_token = NULL;
  g_autofree gchar *markup = NULL;
  guint64 expires = 0;

  if (!fs_dbus_folder_call_generate_token_full_finish (FS_DBUS_FOLDER (source), &token, &long_token,
                                                       &expires, result, &error))
    {
      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        return;
      self = user_data;
      g_dbus_error_strip_remote_error (error);
      gtk_label_set_text (GTK_LABEL (self->token_label), "");
      gtk_label_set_text (GTK_LABEL (self->countdown_label), error->message);
      gtk_widget_set_sensitive (self->new_button, TRUE);
      return;
    }
  self = user_data;
  forget_token (self);
  self->token = g_steal_pointer (&token);
  if (*long_token != '\0')
    self->long_token = g_steal_pointer (&long_token);
  self->expires = expires;
  markup = g_markup_printf_escaped ("<span size='xx-large' weight='bold' font_family='monospace'>%s</span>",
                                    self->token);
  gtk_label_set_markup (GTK_LABEL (self->token_label), markup);
  gtk_widget_set_sensitive (self->token_label, TRUE);
  gtk_widget_set_sensitive (self->copy_button, TRUE);
  gtk_widget_set_sensitive (self->new_button, TRUE);
  gtk_widget_queue_draw (self->qr_area);
  countdown_cb (self);
  if (self->token != NULL && !expired (self))
    self->countdown = g_timeout_add_seconds (1, countdown_cb, self);
}

static void
generate (FsAppletPairWindow *self)
{
  forget_token (self);
  gtk_label_set_text (GTK_LABEL (self->token_label), "");
  gtk_label_set_text (GTK_LABEL (self->countdown_label), _("Asking for a token…"));
  gtk_widget_set_sensitive (self->copy_button, FALSE);
  gtk_widget_set_sensitive (self->new_button, FALSE);
  gtk_widget_queue_draw (self->qr_area);
  /* 0: the daemon's default lifetime (5 minutes). The callback's window
   * pointer is safe: destroying the window cancels the call first. */
  fs_dbus_folder_call_generate_token_full (self->proxy, 0, g_variant_new ("a{sv}", NULL),
                                           self->cancellable, generate_token_done, self);
}

static void
new_clicked_cb (GtkButton *button, FsAppletPairWindow *self)
{
  generate (self);
}

static void
copy_clicked_cb (GtkButton *button, FsAppletPairWindow *self)
{
  if (self->token != NULL)
    gtk_clipboard_set_text (gtk_widget_get_clipboard (GTK_WIDGET (self), GDK_SELECTION_CLIPBOARD),
                            self->token, -1);
}

static void
fs_applet_pair_window_init (FsAppletPairWindow *self)
{
  GtkWidget *box, *label, *buttons, *close;

  self->cancellable = g_cancellable_new ();
  gtk_window_set_title (GTK_WINDOW (self), _("Pair a device"));
  gtk_window_set_icon_name (GTK_WINDOW (self), "org.toolbox.FolderSync");
  gtk_window_set_resizable (GTK_WINDOW (self), FALSE);
  gtk_window_set_position (GTK_WINDOW (self), GTK_WIN_POS_CENTER);

  box = gtk_box_new (GTK_ORIENTATION_VERTICAL, 12);
  gtk_container_set_border_width (GTK_CONTAINER (box), 18);
  gtk_container_add (GTK_CONTAINER (self), box);

  label = gtk_label_new (_("On the other device, scan this code or type the token into "
                           "“foldersync pair --token”."));
  gtk_label_set_line_wrap (GTK_LABEL (label), TRUE);
  gtk_label_set_max_width_chars (GTK_LABEL (label), 36);
  gtk_widget_set_name (label, "hint");
  gtk_container_add (GTK_CONTAINER (box), label);

  self->qr_area = gtk_drawing_area_new ();
  gtk_widget_set_size_request (self->qr_area, QR_SIZE, QR_SIZE);
  gtk_widget_set_halign (self->qr_area, GTK_ALIGN_CENTER);
  g_signal_connect (self->qr_area, "draw", G_CALLBACK (qr_draw_cb), self);
  gtk_container_add (GTK_CONTAINER (box), self->qr_area);

  self->token_label = gtk_label_new ("");
  gtk_label_set_selectable (GTK_LABEL (self->token_label), TRUE);
  gtk_container_add (GTK_CONTAINER (box), self->token_label);

  self->countdown_label = gtk_label_new ("");
  gtk_container_add (GTK_CONTAINER (box), self->countdown_label);

  buttons = gtk_button_box_new (GTK_ORIENTATION_HORIZONTAL);
  gtk_button_box_set_layout (GTK_BUTTON_BOX (buttons), GTK_BUTTONBOX_END);
  gtk_box_set_spacing (GTK_BOX (buttons), 6);
  self->copy_button = gtk_button_new_with_mnemonic (_("_Copy"));
  g_signal_connect (self->copy_button, "clicked", G_CALLBACK (copy_clicked_cb), self);
  self->new_button = gtk_button_new_with_mnemonic (_("_New token"));
  g_signal_connect (self->new_button, "clicked", G_CALLBACK (new_clicked_cb), self);
  close = gtk_button_new_with_mnemonic (_("_Close"));
  g_signal_connect_swapped (close, "clicked", G_CALLBACK (gtk_widget_destroy), self);
  gtk_container_add (GTK_CONTAINER (buttons), self->copy_button);
  gtk_container_add (GTK_CONTAINER (buttons), self->new_button);
  gtk_container_add (GTK_CONTAINER (buttons), close);
  gtk_container_add (GTK_CONTAINER (box), buttons);
  gtk_widget_show_all (box);
}

GtkWidget *
fs_applet_pair_window_new (FsDBusFolder *folder, const gchar *folder_name)
{
  FsAppletPairWindow *self;
  g_autofree gchar *title = NULL;

  g_return_val_if_fail (FS_DBUS_IS_FOLDER (folder), NULL);

  self = g_object_new (FS_APPLET_TYPE_PAIR_WINDOW, NULL);
  self->proxy = g_object_ref (folder);
  self->folder_name = g_strdup (folder_name);
  title = g_strdup_printf (_("Pair a device with “%s”"), folder_name);
  gtk_window_set_title (GTK_WINDOW (self), title);
  generate (self);
  return GTK_WIDGET (self);
}
