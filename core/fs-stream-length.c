/* Announced stream lengths (see fs-stream-length.h), as qdata on the stream. */
#include "config.h"

#include "fs-stream-length.h"

static GQuark
length_quark (void)
{
  return g_quark_from_static_string ("fs-stream-length");
}

void
fs_stream_set_length (GInputStream *stream, guint64 length)
{
  guint64 *value;

  g_return_if_fail (G_IS_INPUT_STREAM (stream));
  value = g_new (guint64, 1);
  *value = length;
  g_object_set_qdata_full (G_OBJECT (stream), length_quark (), value, g_free);
}

gboolean
fs_stream_get_length (GInputStream *stream, guint64 *length)
{
  const guint64 *value;

  g_return_val_if_fail (G_IS_INPUT_STREAM (stream), FALSE);
  value = g_object_get_qdata (G_OBJECT (stream), length_quark ());
  if (value == NULL)
    return FALSE;
  *length = *value;
  return TRUE;
}
