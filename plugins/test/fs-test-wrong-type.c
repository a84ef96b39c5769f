/* A module whose type implements no FolderSync interface: the loader must refuse it. */
#include <gmodule.h>
#include <glib-object.h>

#define FS_TYPE_TEST_WRONG_TYPE (fs_test_wrong_type_get_type ())
G_DECLARE_FINAL_TYPE (FsTestWrongType, fs_test_wrong_type, FS, TEST_WRONG_TYPE, GObject)

struct _FsTestWrongType {
  GObject parent_instance;
};

G_DEFINE_FINAL_TYPE (FsTestWrongType, fs_test_wrong_type, G_TYPE_OBJECT)

static void
fs_test_wrong_type_class_init (FsTestWrongTypeClass *klass)
{
}

static void
fs_test_wrong_type_init (FsTestWrongType *self)
{
}

G_MODULE_EXPORT GType fs_plugin_register (void);

GType
fs_plugin_register (void)
{
  return FS_TYPE_TEST_WRONG_TYPE;
}
