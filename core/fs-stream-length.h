/* The total length of a stream, announced in advance by whoever made it.
 *
 * GInputStream has no notion of "how many bytes will this give". The engine
 * knows a file's size, the crypto plugin then knows the size of the object
 * it seals from it (when it stores the chunks raw), and a storage backend can
 * then send the object as it is produced, with that Content-Length. The
 * announcement is a promise the reader must check: a file that changes while
 * it is read makes the stream longer or shorter than announced. */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

void fs_stream_set_length (GInputStream *stream, guint64 length);
/* FALSE if nobody announced the length of @stream. */
gboolean fs_stream_get_length (GInputStream *stream, guint64 *length);

G_END_DECLS
