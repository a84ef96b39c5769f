/* AWS Signature Version 4: pure functions (no I/O, no libsoup) that build the
 * canonical request, the string to sign, the signing key, the Authorization
 * header and presigned URLs. Used by the storage-s3 plugin and unit-tested
 * against the published AWS vectors in tests/unit/test-sigv4.c. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define FS_SIGV4_UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"
#define FS_SIGV4_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

typedef struct
{
  const gchar *access_key;
  const gchar *secret_key;
  const gchar *region;
  const gchar *service; /* "s3" */
} FsSigV4Credentials;

/* Hex SHA-256 of @len bytes at @data (libgcrypt). */
gchar *fs_sigv4_sha256_hex (gconstpointer data, gsize len);

/* "YYYYMMDDTHHMMSSZ" of @when (any time zone; converted to UTC). */
gchar *fs_sigv4_amz_date (GDateTime *when);

/* URI-encodes @s byte by byte as SigV4 wants: A-Z a-z 0-9 - _ . ~ stay, every
 * other byte becomes %XX (upper-case hex); '/' stays only if @keep_slash. */
gchar *fs_sigv4_uri_encode (const gchar *s, gboolean keep_slash);

/* The canonical query string of @query, a NULL-terminated list of unencoded
 * name, value, name, value, … (a NULL value counts as ""): each encoded, sorted
 * by encoded name then value, joined with '&'. It is also the query string to
 * send, so the request and the signature can never disagree. */
gchar *fs_sigv4_canonical_query (const gchar *const *query);

/* The canonical request. @path is the unencoded absolute path ("/bucket/key");
 * each segment is encoded once (S3 rules: no normalization, no double
 * encoding). @headers is a NULL-terminated list of name, value, … (names in
 * any case; values trimmed and inner runs of spaces collapsed; repeated names
 * joined with ','). The names signed, ';'-joined, go to @signed_headers. */
gchar *fs_sigv4_canonical_request (const gchar *method, const gchar *path,
                                   const gchar *const *query, const gchar *const *headers,
                                   const gchar *payload_hash, gchar **signed_headers);

/* "AWS4-HMAC-SHA256\n<amz_date>\n<scope>\n<hex sha256 of canonical request>". */
gchar *fs_sigv4_string_to_sign (const gchar *amz_date, const gchar *scope,
                                const gchar *canonical_request);

/* kSigning = HMAC(HMAC(HMAC(HMAC("AWS4"+secret, date), region), service), "aws4_request"). */
void fs_sigv4_signing_key (const gchar *secret_key, const gchar *date8, const gchar *region,
                           const gchar *service, guint8 key[32]);

/* The value of the Authorization header for a request (header auth). The
 * headers must include host and x-amz-date (and, for S3, x-amz-content-sha256)
 * exactly as they will be sent. */
gchar *fs_sigv4_authorization (const FsSigV4Credentials *creds, const gchar *amz_date,
                               const gchar *method, const gchar *path,
                               const gchar *const *query, const gchar *const *headers,
                               const gchar *payload_hash);

/* A presigned URL (query auth): @base is "scheme://host[:port]", @host the Host
 * header value the request will carry; only host is signed and the payload is
 * UNSIGNED-PAYLOAD. @query holds the request's own parameters (may be NULL). */
gchar *fs_sigv4_presign_url (const FsSigV4Credentials *creds, const gchar *amz_date,
                             guint expires_seconds, const gchar *method, const gchar *base,
                             const gchar *host, const gchar *path, const gchar *const *query);

G_END_DECLS
