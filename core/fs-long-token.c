/* Long-form share tokens: JSON, deflated (its zlib checksum catches a damaged
 * paste), base32 without padding, after the prefix "FS1.". */
#include "config.h"

#include <glib/gi18n-lib.h>
#include <string.h>

#include <json-glib/json-glib.h>
#include <zlib.h>

#include "fs-error.h"
#include "fs-json.h"
#include "fs-long-token.h"
#include "fs-types.h"

/* Far more than any real one (~600 bytes of JSON, ~600 characters); bounds
 * the input and the inflate. */
#define MAX_JSON (16 * 1024)
#define MAX_TEXT (8 * 1024)

void
fs_long_token_free (FsLongToken *token)
{
  if (token == NULL)
    return;
  /* Every field but the key and expiry is a bearer secret. */
  gchar *secrets[] = { token->token, token->get_url, token->delete_url };

  for (guint i = 0; i < G_N_ELEMENTS (secrets); i++)
    if (secrets[i] != NULL)
      explicit_bzero (secrets[i], strlen (secrets[i]));
  g_free (token->token);
  g_free (token->object_key);
  g_free (token->get_url);
  g_free (token->delete_url);
  g_free (token);
}

gboolean
fs_long_token_is_long (const gchar *text)
{
  while (text != NULL && g_ascii_isspace (*text))
    text++;
  return text != NULL && g_ascii_strncasecmp (text, FS_LONG_TOKEN_PREFIX,
                                              strlen (FS_LONG_TOKEN_PREFIX)) == 0;
}

/* RFC 4648 base32 (upper case, no padding): all of it in the QR code's
 * alphanumeric mode, which makes the code 10% narrower than base64 would. */
static guint8 *
base32_decode (const gchar *text, gsize *len)
{
  GByteArray *out = g_byte_array_new ();
  guint32 bits = 0;
  guint n_bits = 0;

  for (const gchar *p = text; *p; p++)
    {
      gchar c = g_ascii_toupper (*p);
      guint v;

      if (g_ascii_isspace (c))
        continue;
      if (c >= 'A' && c <= 'Z')
        v = (guint) (c - 'A');
      else if (c >= '2' && c <= '7')
        v = (guint) (c - '2') + 26;
      else
        {
          g_byte_array_free (out, TRUE);
          return NULL;
        }
      bits = (bits << 5) | v;
      n_bits += 5;
      if (n_bits >= 8)
        {
          guint8 byte = (guint8) (bits >> (n_bits - 8));
          g_byte_array_append (out, &byte, 1);
          n_bits -= 8;
        }
    }
  /* Canonical only: what is left over is padding, fewer than 5 zero bits. */
  if (n_bits >= 5 || (bits & ((1u << n_bits) - 1)) != 0)
    {
      g_byte_array_free (out, TRUE);
      return NULL;
    }
  *len = out->len;
  return g_byte_array_free (out, FALSE);
}

gchar *
fs_long_token_encode (const FsLongToken *token)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autoptr (GBytes) json = NULL;
  g_autofree guint8 *packed = NULL;
  g_autofree gchar *encoded = NULL;
  g_autofree gchar *text = NULL;
  uLongf packed_len;
  gsize json_len = 0;
  const guint8 *json_data;
  gchar *result;

  json_builder_begin_object (b);
  fs_json_add_int (b, "v", 1);
  fs_json_add_string (b, "t", token->token);
  fs_json_add_string (b, "k", token->object_key);
  fs_json_add_string (b, "g", token->get_url);
  fs_json_add_string (b, "d", token->delete_url);
  fs_json_add_int (b, "e", (gint64)token->expires);
  json_builder_set_member_name (b, "c");
  json_builder_add_boolean_value (b, token->credentials);
  json_builder_end_object (b);
  json = fs_json_builder_to_bytes (b);
  json_data = g_bytes_get_data (json, &json_len);

  packed_len = compressBound (json_len);
  packed = g_malloc (packed_len);
  if (compress2 (packed, &packed_len, json_data, json_len, Z_BEST_COMPRESSION) != Z_OK)
    g_error ("compress2 failed on %" G_GSIZE_FORMAT " bytes", json_len);
  explicit_bzero ((gpointer)json_data, json_len);
  encoded = fs_base32_encode (packed, packed_len);
  text = g_ascii_strup (encoded, -1);
  explicit_bzero (encoded, strlen (encoded));
  explicit_bzero (packed, packed_len);
  result = g_strconcat (FS_LONG_TOKEN_PREFIX, text, NULL);
  explicit_bzero (text, strlen (text));
  return result;
}

static FsLongToken *
invalid (GError **error)
{
  g_set_error_literal (error, FS_PAIRING_ERROR, FS_PAIRING_ERROR_INVALID,
                       _("The long-form token is damaged or incomplete (copy the whole line)"));
  return NULL;
}

FsLongToken *
fs_long_token_decode (const gchar *text, GError **error)
{
  g_autoptr (FsLongToken) token = g_new0 (FsLongToken, 1);
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autofree guint8 *packed = NULL;
  g_autofree gchar *json = g_malloc0 (MAX_JSON + 1);
  uLongf json_len = MAX_JSON;
  uLong packed_used;
  gsize packed_len = 0;
  JsonNode *root;
  JsonObject *o;
  gboolean inflated, parsed;

  while (g_ascii_isspace (*text))
    text++;
  if (!fs_long_token_is_long (text) || strlen (text) > MAX_TEXT)
    return invalid (error);
  packed = base32_decode (text + strlen (FS_LONG_TOKEN_PREFIX), &packed_len);
  if (packed == NULL || packed_len == 0)
    return invalid (error);
  packed_used = packed_len;
  /* The whole text must be one zlib stream, nothing after it. */
  inflated = uncompress2 ((Bytef *)json, &json_len, packed, &packed_used) == Z_OK
             && packed_used == packed_len;
  explicit_bzero (packed, packed_len);
  if (!inflated)
    {
      explicit_bzero (json, MAX_JSON);
      return invalid (error);
    }
  json[json_len] = '\0';
  parsed = json_parser_load_from_data (parser, json, (gssize)json_len, NULL)
           && (root = json_parser_get_root (parser)) != NULL && JSON_NODE_HOLDS_OBJECT (root);
  explicit_bzero (json, json_len);
  if (!parsed)
    return invalid (error);
  o = json_node_get_object (json_parser_get_root (parser));
  if (fs_json_get_int (o, "v", 0) != 1)
    {
      g_set_error_literal (error, FS_PAIRING_ERROR, FS_PAIRING_ERROR_INVALID,
                           _("The long-form token comes from a newer FolderSync"));
      return NULL;
    }
  token->token = fs_json_dup_string (o, "t");
  token->object_key = fs_json_dup_string (o, "k");
  token->get_url = fs_json_dup_string (o, "g");
  token->delete_url = fs_json_dup_string (o, "d");
  token->expires = (guint64)MAX (0, fs_json_get_int (o, "e", 0));
  token->credentials = fs_json_get_bool (o, "c", FALSE);
  if (token->token == NULL || token->object_key == NULL || token->get_url == NULL
      || token->delete_url == NULL || token->expires == 0)
    return invalid (error);
  return g_steal_pointer (&token);
}
