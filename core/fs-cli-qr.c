#include <qrencode.h>

#include "fs-cli-qr.h"

/* The standard asks for 4; 2 scans fine on a screen and saves width. */
#define QUIET_ZONE 2

static gboolean
dark (const QRcode *qr, gint x, gint y)
{
  if (x < 0 || y < 0 || x >= qr->width || y >= qr->width)
    return FALSE;
  return (qr->data[y * qr->width + x] & 1) != 0;
}

gchar *
fs_cli_qr_render (const gchar *text)
{
  QRcode *qr = QRcode_encodeString (text, 0, QR_ECLEVEL_L, QR_MODE_8, 1);
  GString *out;
  gint size;

  if (qr == NULL)
    return NULL;
  out = g_string_new (NULL);
  size = qr->width + 2 * QUIET_ZONE;
  /* Each cell shows the module above in the foreground colour (black) with
   * "▀" and the module below in the background colour (white), or the
   * reverse combinations. */
  for (gint y = -QUIET_ZONE; y < qr->width + QUIET_ZONE; y += 2)
    {
      g_string_append (out, "\033[30;47m");
      for (gint x = -QUIET_ZONE; x < size - QUIET_ZONE; x++)
        {
          gboolean top = dark (qr, x, y), bottom = dark (qr, x, y + 1);
          g_string_append (out, top && bottom ? "█" : top ? "▀" : bottom ? "▄" : " ");
        }
      g_string_append (out, "\033[0m\n");
    }
  QRcode_free (qr);
  return g_string_free (out, FALSE);
}
