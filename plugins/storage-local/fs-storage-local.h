/* FsStorageLocal: the FsStorage backend that keeps objects as files in a directory. */
#pragma once

#include "fs-storage.h"

G_DECLARE_FINAL_TYPE (FsStorageLocal, fs_storage_local, FS, STORAGE_LOCAL, GObject)
