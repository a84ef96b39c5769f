/* The long form of a share token: everything a device with no storage
 * configured needs to pair, on one line (and in a QR code). It carries the
 * short token and presigned GET and DELETE URLs of the envelope, so the
 * device that pairs needs no credentials to fetch and remove it. Format:
 * docs/format.md, "Long-form tokens". It is as secret as the short token. */
#pragma once
#include <glib.h>

G_BEGIN_DECLS

#define FS_LONG_TOKEN_PREFIX "FS1."

typedef struct
{
  gchar *token;      /* the short token, "XXXX-XXXX-XXXX" */
  gchar *object_key; /* the envelope's key on the storage */
  gchar *get_url;    /* presigned GET of object_key */
  gchar *delete_url; /* presigned DELETE of object_key */
  guint64 expires;   /* unix seconds */
  gboolean credentials; /* the envelope carries storage credentials */
} FsLongToken;

void fs_long_token_free (FsLongToken *token);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (FsLongToken, fs_long_token_free)

/* Whether @text looks like a long-form token (by its prefix). */
gboolean fs_long_token_is_long (const gchar *text);

gchar *fs_long_token_encode (const FsLongToken *token);

/* Parses @text (white space anywhere is ignored: a pasted line may wrap).
 * A damaged or truncated text is FS_PAIRING_ERROR_INVALID; the message
 * never repeats the text. */
FsLongToken *fs_long_token_decode (const gchar *text, GError **error);

G_END_DECLS
