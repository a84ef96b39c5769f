/* FsSealStream: a GInputStream of a sealed object, pulling plaintext from a
 * source stream chunk by chunk as it is read (docs/format.md). */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define FS_TYPE_SEAL_STREAM (fs_seal_stream_get_type ())
G_DECLARE_FINAL_TYPE (FsSealStream, fs_seal_stream, FS, SEAL_STREAM, GInputStream)

/* @content_key: the content subkey; @nonce: the 16-byte object nonce. */
GInputStream *fs_seal_stream_new (GInputStream *plain, GBytes *header, const guint8 *content_key,
                                  const guint8 *nonce, GError **error);

G_END_DECLS
