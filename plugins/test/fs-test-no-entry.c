/* A module without the fs_plugin_register entry point: the loader must refuse it. */
#include <gmodule.h>

G_MODULE_EXPORT int fs_test_no_entry_marker (void);

int
fs_test_no_entry_marker (void)
{
  return 42;
}
