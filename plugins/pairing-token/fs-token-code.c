/* The short pairing token: Crockford base32 symbols with a check symbol
 * over GF(32), which catches every single-symbol substitution and every
 * transposition of two symbols (adjacent or not) before any request. */
#include "config.h"

#include <string.h>

#include <gcrypt.h>
#include <glib/gi18n-lib.h>

#include "fs-error.h"
#include "fs-gcrypt.h"
#include "fs-token-code.h"

/* Multiplication by a = x in GF(2^5) with the primitive polynomial
 * x^5 + x^2 + 1 (0x25): a has order 31, so a^i != a^j for i != j < 31. */
static guint8
gf32_mul_x (guint8 v)
{
  v <<= 1;
  if (v & 0x20)
    v ^= 0x25;
  return v;
}

guint8
fs_token_syndrome (const guint8 *symbols, gsize n)
{
  guint8 s = 0;

  /* Horner: ((s0 a + s1) a + s2) ... */
  for (gsize i = 0; i < n; i++)
    s = gf32_mul_x (s) ^ (symbols[i] & 31);
  return s;
}

guint8
fs_token_check_symbol (const guint8 *symbols, gsize n)
{
  /* syndrome(symbols || c) = syndrome(symbols) * a + c = 0 (characteristic 2). */
  return gf32_mul_x (fs_token_syndrome (symbols, n));
}

void
fs_token_generate (guint8 symbols[FS_TOKEN_SYMBOLS])
{
  fs_gcrypt_init ();
  gcry_randomize (symbols, FS_TOKEN_SECRET_SYMBOLS, GCRY_STRONG_RANDOM);
  /* 256 is a multiple of 32: the low five bits are uniform. */
  for (guint i = 0; i < FS_TOKEN_SECRET_SYMBOLS; i++)
    symbols[i] &= 31;
  symbols[FS_TOKEN_SECRET_SYMBOLS] = fs_token_check_symbol (symbols, FS_TOKEN_SECRET_SYMBOLS);
}

/* The value of a Crockford symbol, -1 for anything else, -2 for U. */
static gint
symbol_value (gunichar c)
{
  const gchar *p;

  if (c >= 'a' && c <= 'z')
    c = c - 'a' + 'A';
  switch (c)
    {
    case 'I':
    case 'L':
      return 1;
    case 'O':
      return 0;
    case 'U':
      return -2;
    default:
      break;
    }
  if (c == 0 || c > 'Z')
    return -1;
  p = strchr (FS_TOKEN_ALPHABET, (int) c);
  return p != NULL ? (gint) (p - FS_TOKEN_ALPHABET) : -1;
}

gboolean
fs_token_parse (const gchar *text, guint8 symbols[FS_TOKEN_SYMBOLS], GError **error)
{
  guint n = 0;
  guint position = 0;

  if (!g_utf8_validate (text, -1, NULL))
    {
      g_set_error_literal (error, FS_PAIRING_ERROR, FS_PAIRING_ERROR_INVALID,
                           _("Invalid pairing token: it is not valid UTF-8 text"));
      return FALSE;
    }
  /* Messages name positions, never characters: the token is a secret, and
   * so is most of a mistyped one. */
  for (const gchar *p = text; *p != '\0'; p = g_utf8_next_char (p))
    {
      gunichar c = g_utf8_get_char (p);
      gint v;

      position++;
      if (c == '-' || c == ' ' || c == '\t' || c == '\n' || c == '\r')
        continue;
      v = symbol_value (c);
      if (v == -2)
        {
          g_set_error (error, FS_PAIRING_ERROR, FS_PAIRING_ERROR_INVALID,
                       _("Invalid pairing token: character %u is a U, which tokens never "
                          "contain"),
                       position);
          return FALSE;
        }
      if (v < 0)
        {
          g_set_error (error, FS_PAIRING_ERROR, FS_PAIRING_ERROR_INVALID,
                       _("Invalid pairing token: character %u is not a letter or digit of a "
                          "token"),
                       position);
          return FALSE;
        }
      if (n == FS_TOKEN_SYMBOLS)
        {
          g_set_error (error, FS_PAIRING_ERROR, FS_PAIRING_ERROR_INVALID,
                       _("Invalid pairing token: more than %u letters and digits"),
                       FS_TOKEN_SYMBOLS);
          return FALSE;
        }
      symbols[n++] = (guint8) v;
    }
  if (n < FS_TOKEN_SYMBOLS)
    {
      g_set_error (error, FS_PAIRING_ERROR, FS_PAIRING_ERROR_INVALID,
                   _("Invalid pairing token: %u of %u letters and digits"), n, FS_TOKEN_SYMBOLS);
      return FALSE;
    }
  if (fs_token_syndrome (symbols, FS_TOKEN_SYMBOLS) != 0)
    {
      explicit_bzero (symbols, FS_TOKEN_SYMBOLS);
      g_set_error_literal (error, FS_PAIRING_ERROR, FS_PAIRING_ERROR_INVALID,
                           _("Invalid pairing token: its check character does not match, a "
                              "character is mistyped or two are swapped"));
      return FALSE;
    }
  return TRUE;
}

gchar *
fs_token_format (const guint8 symbols[FS_TOKEN_SYMBOLS])
{
  gchar *out = g_malloc (FS_TOKEN_SYMBOLS + FS_TOKEN_SYMBOLS / 4);
  guint j = 0;

  for (guint i = 0; i < FS_TOKEN_SYMBOLS; i++)
    {
      if (i > 0 && i % 4 == 0)
        out[j++] = '-';
      out[j++] = FS_TOKEN_ALPHABET[symbols[i] & 31];
    }
  out[j] = '\0';
  return out;
}
