/* A QR code (libqrencode) drawn with cairo. */
#pragma once

#include <cairo.h>
#include <glib.h>

G_BEGIN_DECLS

gboolean fs_applet_qr_draw (cairo_t *cr, const gchar *text, gdouble size);

G_END_DECLS
