/* object-cat: lets bench/run check what FolderSync stored, independently of
 * the engine's own download path.
 *
 *   object-cat KEYFILE stem PATH      prints the object stem of PATH (relative, NFC)
 *   object-cat KEYFILE open OBJFILE [OFFSET LENGTH]
 *                                     writes the plaintext of a stored object
 *                                     (a file, e.g. s3rver's ._S3rver_object;
 *                                     with OFFSET and LENGTH, the pack member
 *                                     there) to stdout, its header to stderr
 *
 * It uses the crypto-aes plugin (FOLDERSYNC_PLUGIN_DIR, as meson devenv sets). */
#include <stdio.h>
#include <string.h>

#include <gio/gio.h>
#include <gio/gunixoutputstream.h>

#include "fs-crypto.h"
#include "fs-keyfile.h"
#include "fs-plugin-loader.h"

int
main (int argc, char **argv)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) key = NULL;
  g_autoptr (FsCrypto) crypto = NULL;

  if (!(argc == 4 && strcmp (argv[2], "stem") == 0)
      && !((argc == 4 || argc == 6) && strcmp (argv[2], "open") == 0))
    {
      fprintf (stderr, "usage: object-cat KEYFILE stem PATH | "
                       "object-cat KEYFILE open OBJFILE [OFFSET LENGTH]\n");
      return 2;
    }
  key = fs_keyfile_load (argv[1], &error);
  if (key != NULL)
    crypto = FS_CRYPTO (fs_plugin_new_instance ("crypto-aes", FS_TYPE_CRYPTO, &error));
  if (crypto == NULL
      || !fs_crypto_set_key (crypto, g_bytes_get_data (key, NULL), g_bytes_get_size (key), &error))
    goto fail;

  if (strcmp (argv[2], "stem") == 0)
    {
      g_autofree gchar *stem = fs_crypto_object_stem (crypto, argv[3]);
      printf ("%s\n", stem);
      return 0;
    }
  else
    {
      g_autoptr (GFile) file = g_file_new_for_path (argv[3]);
      g_autoptr (GFileInputStream) in = g_file_read (file, NULL, &error);
      g_autoptr (GInputStream) plain = NULL;
      g_autoptr (GBytes) header = NULL;
      g_autoptr (GOutputStream) out = g_unix_output_stream_new (1, FALSE);

      g_autoptr (GInputStream) member = NULL;

      if (in == NULL)
        goto fail;
      if (argc == 6)
        {
          /* A pack member: the range read into memory (members are small). */
          guint64 offset = g_ascii_strtoull (argv[4], NULL, 10);
          gsize length = (gsize)g_ascii_strtoull (argv[5], NULL, 10);
          g_autoptr (GBytes) bytes = NULL;

          if (!g_seekable_seek (G_SEEKABLE (in), (goffset)offset, G_SEEK_SET, NULL, &error)
              || (bytes = g_input_stream_read_bytes (G_INPUT_STREAM (in), length, NULL, &error))
                   == NULL)
            goto fail;
          member = g_memory_input_stream_new_from_bytes (bytes);
        }
      plain = fs_crypto_open_stream (crypto, member != NULL ? member : G_INPUT_STREAM (in),
                                     &header, NULL, &error);
      if (plain == NULL
          || g_output_stream_splice (out, plain, G_OUTPUT_STREAM_SPLICE_CLOSE_SOURCE, NULL, &error)
               < 0)
        goto fail;
      fwrite (g_bytes_get_data (header, NULL), 1, g_bytes_get_size (header), stderr);
      fputc ('\n', stderr);
      return 0;
    }

fail:
  fprintf (stderr, "object-cat: %s\n", error != NULL ? error->message : "failed");
  return 1;
}
