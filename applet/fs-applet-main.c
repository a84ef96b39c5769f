/* foldersync-applet: FolderSync's tray icon and desktop notifications. */
#include "config.h"

#include <glib/gi18n.h>
#include <locale.h>

#include "fs-applet.h"

int
main (int argc, char **argv)
{
  g_autoptr (FsApplet) applet = NULL;
  const gchar *localedir = g_getenv ("FOLDERSYNC_LOCALEDIR"); /* set by `meson devenv` */

  setlocale (LC_ALL, "");
#ifdef LOCALEDIR
  if (localedir == NULL || *localedir == '\0')
    localedir = LOCALEDIR;
#endif
  if (localedir != NULL && *localedir != '\0')
    bindtextdomain (GETTEXT_PACKAGE, localedir);
  bind_textdomain_codeset (GETTEXT_PACKAGE, "UTF-8");
  textdomain (GETTEXT_PACKAGE);
  g_set_application_name (_("FolderSync"));

  applet = fs_applet_new ();
  return g_application_run (G_APPLICATION (applet), argc, argv);
}
