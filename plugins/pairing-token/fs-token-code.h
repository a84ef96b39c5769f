/* Internal to the pairing-token plugin: the short token as the user sees it.
 * 11 random Crockford base32 symbols (55 bits) and one check symbol, shown
 * as XXXX-XXXX-XXXX (docs/format.md, "Pairing envelopes"). */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define FS_TOKEN_SYMBOLS 12
#define FS_TOKEN_SECRET_SYMBOLS 11

/* Crockford's alphabet: symbol value v is FS_TOKEN_ALPHABET[v]. */
#define FS_TOKEN_ALPHABET "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

/* 11 strong random symbols plus their check symbol. */
void fs_token_generate (guint8 symbols[FS_TOKEN_SYMBOLS]);

/* The check symbol of the first @n symbols: the value c that makes
 * fs_token_syndrome() of the n + 1 symbols zero. */
guint8 fs_token_check_symbol (const guint8 *symbols, gsize n);

/* sum(symbol[i] * a^(n-1-i)) in GF(32) = GF(2)[x] / (x^5 + x^2 + 1), a = x. */
guint8 fs_token_syndrome (const guint8 *symbols, gsize n);

/* Parses what a user typed: case-insensitive, '-' and spaces ignored, I and
 * L read as 1, O as 0. Fails with FS_PAIRING_ERROR_INVALID, with a message
 * that never repeats the token. */
gboolean fs_token_parse (const gchar *text, guint8 symbols[FS_TOKEN_SYMBOLS], GError **error);

/* "XXXX-XXXX-XXXX". */
gchar *fs_token_format (const guint8 symbols[FS_TOKEN_SYMBOLS]);

G_END_DECLS
