/* A QR code (libqrencode) drawn with cairo: dark modules on white, with the
 * quiet zone of 4 modules the standard asks for, each module a whole number
 * of pixels so that cameras (and zbarimg) read it reliably. */
#include "config.h"

#include "fs-applet-qr.h"

#include <qrencode.h>

#define QUIET_ZONE 4

/* Draws @text's QR code in a @size × @size square at the origin. */
gboolean
fs_applet_qr_draw (cairo_t *cr, const gchar *text, gdouble size)
{
  QRcode *qr;
  gint modules;
  gdouble scale, offset;

  g_return_val_if_fail (cr != NULL && text != NULL, FALSE);

  qr = QRcode_encodeString (text, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
  if (qr == NULL)
    return FALSE;
  modules = qr->width + 2 * QUIET_ZONE;
  scale = MAX (1.0, (gdouble)(gint)(size / modules));
  offset = (size - scale * modules) / 2;

  cairo_save (cr);
  cairo_set_source_rgb (cr, 1, 1, 1);
  cairo_rectangle (cr, 0, 0, size, size);
  cairo_fill (cr);
  cairo_set_source_rgb (cr, 0, 0, 0);
  for (gint y = 0; y < qr->width; y++)
    for (gint x = 0; x < qr->width; x++)
      if (qr->data[y * qr->width + x] & 1)
        cairo_rectangle (cr, (gint)(offset + (x + QUIET_ZONE) * scale),
                         (gint)(offset + (y + QUIET_ZONE) * scale), scale, scale);
  cairo_fill (cr);
  cairo_restore (cr);
  QRcode_free (qr);
  return TRUE;
}
