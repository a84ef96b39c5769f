/* A QR code of a text as lines for a terminal: two modules per character
 * cell (Unicode half blocks), black on white set by ANSI colours so it scans
 * on dark and light terminals alike. */
#pragma once
#include <glib.h>

G_BEGIN_DECLS

/* NULL if @text does not fit in a QR code. */
gchar *fs_cli_qr_render (const gchar *text);

G_END_DECLS
