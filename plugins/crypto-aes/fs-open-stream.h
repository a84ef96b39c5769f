/* FsOpenStream: the plaintext of a sealed object, authenticated chunk by
 * chunk as it is read (docs/format.md). */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define FS_TYPE_OPEN_STREAM (fs_open_stream_get_type ())
G_DECLARE_FINAL_TYPE (FsOpenStream, fs_open_stream, FS, OPEN_STREAM, GInputStream)

/* Reads and authenticates preamble and header from @sealed; @content_key is
 * the content subkey. */
GInputStream *fs_open_stream_new (GInputStream *sealed, const guint8 *content_key,
                                  GBytes **header, GCancellable *cancellable, GError **error);

G_END_DECLS
