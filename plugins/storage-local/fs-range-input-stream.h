/* FsRangeInputStream: reads at most N bytes of its base stream (a ranged GET). */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define FS_TYPE_RANGE_INPUT_STREAM (fs_range_input_stream_get_type ())
G_DECLARE_FINAL_TYPE (FsRangeInputStream, fs_range_input_stream, FS, RANGE_INPUT_STREAM,
                      GFilterInputStream)

/* Takes a reference on @base and closes it when the range stream is closed. */
GInputStream *fs_range_input_stream_new (GInputStream *base, guint64 length);

G_END_DECLS
