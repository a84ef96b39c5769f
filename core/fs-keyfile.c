/* Loading and creating key files; the key itself never reaches a message. */
#include "config.h"

#include <glib/gi18n-lib.h>
#include <errno.h>
#include <fcntl.h>
#include <gcrypt.h>
#include <glib/gstdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs-error.h"
#include "fs-gcrypt.h"
#include "fs-keyfile.h"
#include "fs-types.h"

#define KEY_BYTES 32
#define KEY_FILE_MAX 256

static void
wipe_key (gpointer key)
{
  explicit_bzero (key, KEY_BYTES);
  g_free (key);
}

GBytes *
fs_keyfile_load (const gchar *filename, GError **error)
{
  g_autofree gchar *contents = NULL;
  gsize len = 0;
  struct stat st;
  guint8 key[KEY_BYTES];
  gsize hex_len;

  if (g_stat (filename, &st) != 0)
    {
      g_set_error (error, FS_ENGINE_ERROR, FS_ENGINE_ERROR_KEY_FILE, _("Cannot read key file ‘%s’: %s"),
                   filename, g_strerror (errno));
      return NULL;
    }
  if (!S_ISREG (st.st_mode))
    {
      g_set_error (error, FS_ENGINE_ERROR, FS_ENGINE_ERROR_KEY_FILE,
                   _("Key file ‘%s’ is not a regular file"), filename);
      return NULL;
    }
  if ((st.st_mode & 077) != 0)
    {
      g_set_error (error, FS_ENGINE_ERROR, FS_ENGINE_ERROR_KEY_FILE,
                   _("Key file ‘%s’ is readable by others (mode %04o); run: chmod 600 '%s'"),
                   filename, (guint) (st.st_mode & 07777), filename);
      return NULL;
    }
  if (st.st_size > KEY_FILE_MAX)
    {
      g_set_error (error, FS_ENGINE_ERROR, FS_ENGINE_ERROR_KEY_FILE,
                   _("Key file ‘%s’ is too long to be a key (%lld bytes)"), filename,
                   (long long) st.st_size);
      return NULL;
    }
  if (!g_file_get_contents (filename, &contents, &len, error))
    {
      g_prefix_error (error, _("Cannot read key file: "));
      if (error != NULL && *error != NULL)
        {
          (*error)->domain = FS_ENGINE_ERROR;
          (*error)->code = FS_ENGINE_ERROR_KEY_FILE;
        }
      return NULL;
    }
  hex_len = len;
  while (hex_len > 0 && g_ascii_isspace (contents[hex_len - 1]))
    hex_len--;
  if (hex_len != KEY_BYTES * 2)
    {
      explicit_bzero (contents, len);
      g_set_error (error, FS_ENGINE_ERROR, FS_ENGINE_ERROR_KEY_FILE,
                   _("Key file ‘%s’ must hold 64 hex characters, it holds %zu"),
                   filename, (size_t) hex_len);
      return NULL;
    }
  for (gsize i = 0; i < KEY_BYTES; i++)
    {
      gint hi = g_ascii_xdigit_value (contents[2 * i]);
      gint lo = g_ascii_xdigit_value (contents[2 * i + 1]);
      if (hi < 0 || lo < 0)
        {
          explicit_bzero (contents, len);
          explicit_bzero (key, sizeof key);
          g_set_error (error, FS_ENGINE_ERROR, FS_ENGINE_ERROR_KEY_FILE,
                       _("Key file ‘%s’ holds a character that is not hex"), filename);
          return NULL;
        }
      key[i] = (guint8) (hi << 4 | lo);
    }
  explicit_bzero (contents, len);
  {
    guint8 *copy = g_memdup2 (key, sizeof key);
    explicit_bzero (key, sizeof key);
    return g_bytes_new_with_free_func (copy, KEY_BYTES, wipe_key, copy);
  }
}

gchar *
fs_keyfile_generate_hex (void)
{
  guint8 key[KEY_BYTES];
  gchar *hex;

  fs_gcrypt_init ();
  gcry_randomize (key, sizeof key, GCRY_VERY_STRONG_RANDOM);
  hex = fs_hex_encode (key, sizeof key);
  explicit_bzero (key, sizeof key);
  return hex;
}

gboolean
fs_keyfile_create (const gchar *filename, GError **error)
{
  g_autofree gchar *hex = fs_keyfile_generate_hex ();
  g_autofree gchar *line = g_strconcat (hex, "\n", NULL);
  gsize len = strlen (line);
  int fd;

  fd = open (filename, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0)
    {
      g_set_error (error, FS_ENGINE_ERROR, FS_ENGINE_ERROR_KEY_FILE,
                   _("Cannot create key file ‘%s’: %s"), filename, g_strerror (errno));
      return FALSE;
    }
  if (write (fd, line, len) != (gssize) len || fsync (fd) != 0)
    {
      int saved = errno;
      close (fd);
      g_unlink (filename);
      explicit_bzero (line, len);
      g_set_error (error, FS_ENGINE_ERROR, FS_ENGINE_ERROR_KEY_FILE,
                   _("Cannot write key file ‘%s’: %s"), filename, g_strerror (saved));
      return FALSE;
    }
  close (fd);
  explicit_bzero (line, len);
  explicit_bzero (hex, strlen (hex));
  return TRUE;
}
