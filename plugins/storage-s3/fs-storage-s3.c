/* FsStorageS3: FsStorage on an S3 bucket (MinIO, AWS S3, s3rver, …).
 *
 * Every request goes through s3_execute(): signed with SigV4 (fs-sigv4.c),
 * sent on the one SoupSession of the instance (libsoup >= 3.2 lets several
 * threads call soup_session_send() on one session; the session is configured
 * in configure() before any request), mapped to an FsStorageError, and
 * retried with exponential backoff and full jitter when the failure is
 * transient. Every attempt reads its request body afresh from the first byte:
 * bodies are held in memory (a small object, one multipart part) or, for a
 * whole large object sent as one PUT, in an anonymous spool file that stays
 * open until the put is over; so every retried request can be replayed
 * exactly, with the payload hash it was signed with. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <gcrypt.h>
#include <gmodule.h>
#include <libsoup/soup.h>
#include <glib/gi18n-lib.h>

#include "fs-error.h"
#include "fs-gcrypt.h"
#include "fs-s3-file-stream.h"
#include "fs-s3-get-stream.h"
#include "fs-s3-body-stream.h"
#include "fs-s3-xml.h"
#include "fs-sigv4.h"
#include "fs-storage-s3.h"
#include "fs-stream-length.h"
#include "fs-types.h"

#define MiB (G_GUINT64_CONSTANT (1024) * 1024)
#define DEFAULT_MULTIPART_THRESHOLD (16 * MiB)
#define DEFAULT_PART_SIZE (8 * MiB)
#define MIN_PART_SIZE (5 * MiB)
#define MAX_PART_SIZE (5120 * MiB)
#define MAX_PARTS 10000
#define DEFAULT_SINGLE_PUT_MAX (1024 * MiB)
/* What put() reads before it looks for an announced length: a sealed
 * object's preamble, header and first chunk frame. */
#define FIRST_READ (1 * MiB + 64 * 1024)
#define MAX_SINGLE_PUT (5120 * MiB) /* S3's limit for one PUT */
#define SPOOL_CHUNK (1 * MiB)
#define SPOOL_CHUNKS 3
#define DEFAULT_MAX_WORKERS 4
#define DEFAULT_MAX_RETRIES 5
#define BACKOFF_BASE_MS 100
#define BACKOFF_CAP_MS 5000
#define HTTP_TIMEOUT_SECONDS 60
#define MAX_RESPONSE_BODY (64 * MiB)
#define STALE_UPLOAD_SECONDS (24 * 60 * 60)
#define MAX_LIST_KEYS 1000

struct _FsStorageS3
{
  GObject parent_instance;

  /* Set by configure(), read-only afterwards. */
  gboolean configured;
  gchar *scheme;
  gchar *endpoint_host; /* "host[:port]" as the Host header carries it */
  gchar *bucket;
  gchar *region;
  gchar *access_key;
  gchar *secret_key;
  gboolean virtual_host;
  guint64 multipart_threshold;
  guint64 single_put_max;
  gchar *spool_dir;
  guint64 part_size;
  guint max_workers;
  guint max_retries;
  gboolean conditional_put;
  gchar *state_file;
  SoupSession *session;
  /* Presigned mode (a device pairing with a long-form token): no
   * credentials, only these URLs for the one key they were signed for. */
  gchar *presigned_key;
  gchar *presigned_get;
  gchar *presigned_delete;

  GMutex lock;         /* protects the fields below */
  GHashTable *uploads; /* upload id → key: multipart uploads in flight */
  guint64 retries;
  guint64 requests;
};

enum
{
  PROP_0,
  PROP_RETRIES,
  PROP_REQUESTS,
  N_PROPS
};
static GParamSpec *props[N_PROPS];

static void fs_storage_s3_iface_init (FsStorageInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (FsStorageS3, fs_storage_s3, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (FS_TYPE_STORAGE, fs_storage_s3_iface_init))

/* ---- requests ----------------------------------------------------------- */

/* Opens a request body again, from its first byte. */
typedef GInputStream *(*S3BodyFunc) (gpointer user_data, GError **error);

typedef struct
{
  const gchar *method;
  const gchar *key;            /* NULL: the bucket itself */
  const gchar *const *query;   /* name, value, …, NULL */
  const gchar *const *headers; /* extra headers to send and sign: name, value, …, NULL */
  GBytes *body;                /* NULL: empty (or body_func) */
  /* A body not held in memory: body_func gives a fresh stream of its
   * body_length bytes, whose SHA-256 is body_sha256 (hex), to each attempt. */
  S3BodyFunc body_func;
  gpointer body_data;
  /* Optional: whether body_func can give the body again after an attempt
   * failed with @cause; asked before the backoff of a retry. */
  gboolean (*body_check) (gpointer body_data, const GError *cause, GError **error);
  guint64 body_length;
  const gchar *body_sha256;
  gboolean want_stream; /* hand back the body stream of a 200/206 */
  guint ok_status;      /* a non-2xx status the caller handles itself, or 0 */
} S3Request;

typedef struct
{
  guint status;
  SoupMessageHeaders *headers;
  GBytes *body;         /* when !want_stream (or for ok_status) */
  GInputStream *stream; /* when want_stream and 200/206 */
} S3Response;

static void
s3_response_clear (S3Response *resp)
{
  g_clear_pointer (&resp->headers, soup_message_headers_unref);
  g_clear_pointer (&resp->body, g_bytes_unref);
  g_clear_object (&resp->stream);
  resp->status = 0;
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (S3Response, s3_response_clear)

typedef enum
{
  ATTEMPT_OK,
  ATTEMPT_RETRY,
  ATTEMPT_FAIL,
} AttemptResult;

static gchar *
what_failed (FsStorageS3 *self, const S3Request *req)
{
  if (self->presigned_key != NULL)
    /* TRANSLATORS: the first %s is an HTTP method (GET, PUT, DELETE, …), the
     * second an object key; the phrase starts error messages. */
    return g_strdup_printf (_("%s of ‘%s’ through a presigned URL"), req->method, req->key);
  if (req->key != NULL)
    return g_strdup_printf (_("%s of ‘%s’ in bucket ‘%s’"), req->method, req->key, self->bucket);
  return g_strdup_printf (_("%s on bucket ‘%s’"), req->method, self->bucket);
}

static gboolean
code_is_auth (const gchar *code)
{
  static const gchar *const codes[]
    = { "SignatureDoesNotMatch", "InvalidAccessKeyId", "AccessDenied", "InvalidToken",
        "ExpiredToken", "AuthorizationHeaderMalformed", "InvalidSecurity", NULL };

  return code != NULL && g_strv_contains (codes, code);
}

static gboolean
code_is_transient (const gchar *code)
{
  /* A body that arrived damaged (BadDigest, XAmzContentSHA256Mismatch) is
   * also worth another try: libsoup itself re-sends a request on a
   * keep-alive connection the server dropped, and such a replay can arrive
   * without its body. Every body here is held in memory, so a retry is exact. */
  static const gchar *const codes[]
    = { "SlowDown", "InternalError", "ServiceUnavailable", "RequestTimeout",
        "OperationAborted", "Throttling", "ThrottlingException", "BadDigest",
        "XAmzContentSHA256Mismatch", "IncompleteBody", NULL };

  return code != NULL && g_strv_contains (codes, code);
}

/* Reads all of @stream (at most MAX_RESPONSE_BODY); NULL on a read error or a
 * body shorter than @expected (-1: unknown). */
static GBytes *
read_body (GInputStream *stream, goffset expected, GCancellable *cancellable, GError **error)
{
  g_autoptr (GByteArray) buf = g_byte_array_new ();
  guint8 chunk[16384];

  for (;;)
    {
      gssize n = g_input_stream_read (stream, chunk, sizeof chunk, cancellable, error);
      if (n < 0)
        return NULL;
      if (n == 0)
        break;
      if (buf->len + (gsize)n > MAX_RESPONSE_BODY)
        {
          g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_MESSAGE_TOO_LARGE,
                               _("response body too large"));
          return NULL;
        }
      g_byte_array_append (buf, chunk, (guint)n);
    }
  if (expected >= 0 && (goffset)buf->len < expected)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_PARTIAL_INPUT,
                   _("response body truncated (%u of %lld bytes)"), buf->len, (long long)expected);
      return NULL;
    }
  return g_byte_array_free_to_bytes (g_steal_pointer (&buf));
}

/* Maps an S3 error response to a GError; TRUE if it is worth retrying. */
static gboolean
set_http_error (FsStorageS3 *self, const S3Request *req, guint status, GBytes *body,
                GError **error)
{
  g_autofree gchar *what = what_failed (self, req);
  g_autoptr (FsS3XmlNode) root = NULL;
  const gchar *code = NULL;
  const gchar *message = NULL;
  gsize len = 0;
  const gchar *data = body != NULL ? g_bytes_get_data (body, &len) : NULL;
  g_autofree gchar *detail = NULL;

  if (data != NULL && len > 0 && (root = fs_s3_xml_parse (data, len, NULL)) != NULL
      && strcmp (root->name, "Error") == 0)
    {
      code = fs_s3_xml_child_text (root, "Code");
      message = fs_s3_xml_child_text (root, "Message");
    }
  detail = g_strdup_printf ("HTTP %u%s%s%s%s", status, code != NULL ? " " : "",
                            code != NULL ? code : "", message != NULL ? ": " : "",
                            message != NULL ? message : "");

  if (g_strcmp0 (code, "RequestTimeTooSkewed") == 0)
    {
      g_set_error (error, FS_STORAGE_ERROR, FS_STORAGE_ERROR_AUTH,
                   _("%s refused: this computer's clock differs too much from the server's; "
                      "set the clock right (%s)"),
                   what, detail);
      return FALSE;
    }
  if (g_strcmp0 (code, "NoSuchBucket") == 0 || (status == 404 && req->key == NULL))
    {
      g_set_error (error, FS_STORAGE_ERROR, FS_STORAGE_ERROR_NO_BUCKET,
                   _("Bucket ‘%s’ does not exist on %s://%s (%s)"), self->bucket, self->scheme,
                   self->endpoint_host, detail);
      return FALSE;
    }
  if (status == 401 || status == 403 || code_is_auth (code))
    {
      g_set_error (error, FS_STORAGE_ERROR, FS_STORAGE_ERROR_AUTH,
                   _("%s refused: check the access key and secret (%s)"), what, detail);
      return FALSE;
    }
  if (status == 501 || g_strcmp0 (code, "NotImplemented") == 0)
    {
      g_set_error (error, FS_STORAGE_ERROR, FS_STORAGE_ERROR_NOT_SUPPORTED,
                   _("%s: not supported by this server (%s)"), what, detail);
      return FALSE;
    }
  if (status >= 500 || status == 429 || code_is_transient (code))
    {
      g_set_error (error, FS_STORAGE_ERROR, FS_STORAGE_ERROR_TRANSIENT, _("%s failed (%s)"), what,
                   detail);
      return TRUE;
    }
  if (status == 404)
    g_set_error (error, FS_STORAGE_ERROR, FS_STORAGE_ERROR_NOT_FOUND, _("%s: no such object (%s)"),
                 what, detail);
  else if (status == 412 || status == 409)
    g_set_error (error, FS_STORAGE_ERROR, FS_STORAGE_ERROR_PRECONDITION_FAILED,
                 _("%s: precondition failed (%s)"), what, detail);
  else if (status == 400 || status == 411 || status == 413 || status == 414)
    g_set_error (error, FS_STORAGE_ERROR, FS_STORAGE_ERROR_INVALID, _("%s failed (%s)"), what,
                 detail);
  else
    g_set_error (error, FS_STORAGE_ERROR, FS_STORAGE_ERROR_FAILED, _("%s failed (%s)"), what,
                 detail);
  return FALSE;
}

static gchar *
request_path (FsStorageS3 *self, const gchar *key)
{
  if (self->virtual_host)
    return g_strconcat ("/", key != NULL ? key : "", NULL);
  if (key == NULL)
    return g_strconcat ("/", self->bucket, NULL);
  return g_strconcat ("/", self->bucket, "/", key, NULL);
}

static gchar *
request_host (FsStorageS3 *self)
{
  if (self->virtual_host)
    return g_strconcat (self->bucket, ".", self->endpoint_host, NULL);
  return g_strdup (self->endpoint_host);
}

static AttemptResult send_message (FsStorageS3 *self, const S3Request *req, SoupMessage *msg,
                                   const gchar *url, S3Response *resp, GCancellable *cancellable,
                                   GError **error);

/* Gives @msg a fresh stream of @req's body, from its first byte. */
static gboolean
set_body (const S3Request *req, SoupMessage *msg, GError **error)
{
  g_autoptr (GInputStream) stream = NULL;

  if (req->body_func == NULL)
    {
      if (req->body != NULL)
        soup_message_set_request_body_from_bytes (msg, NULL, req->body);
      return TRUE;
    }
  stream = req->body_func (req->body_data, error);
  if (stream == NULL)
    return FALSE;
  soup_message_set_request_body (msg, NULL, stream, (gssize)req->body_length);
  return TRUE;
}

/* A "cancelled" handler of a parent cancellable: cancels @child too. */
static void
cancel_child (GCancellable *parent, gpointer child)
{
  g_cancellable_cancel (G_CANCELLABLE (child));
}

/* libsoup drops the body of a message it restarts (it sends a request again
 * by itself when a kept-alive connection turns out to be closed, or when
 * reading the body failed on one): give it the body again, so that replay is
 * exact too. Not after a redirect that turned the request into a GET. A body
 * that cannot be given again must not leave the request to go out without
 * one (an UNSIGNED-PAYLOAD PUT would store an empty object): the attempt is
 * cancelled and fails with the reason. */
typedef struct
{
  const S3Request *req;
  GCancellable *cancellable; /* the attempt's own, a child of the caller's */
  gulong parent_handler;
  GCancellable *parent;
  GError *error; /* why the body could not be given again */
} Restart;

static void
message_restarted (SoupMessage *msg, gpointer user_data)
{
  Restart *restart = user_data;

  if (g_strcmp0 (soup_message_get_method (msg), restart->req->method) != 0
      || restart->error != NULL)
    return;
  if (!set_body (restart->req, msg, &restart->error))
    {
      g_debug ("could not reopen the body of a restarted %s: %s", restart->req->method,
               restart->error->message);
      g_cancellable_cancel (restart->cancellable);
    }
}

static void
restart_init (Restart *restart, const S3Request *req, GCancellable *parent)
{
  restart->req = req;
  restart->cancellable = g_cancellable_new ();
  if (parent != NULL)
    {
      restart->parent = g_object_ref (parent);
      restart->parent_handler
        = g_cancellable_connect (parent, G_CALLBACK (cancel_child),
                                 g_object_ref (restart->cancellable), g_object_unref);
    }
}

static void
restart_clear (Restart *restart)
{
  if (restart->parent != NULL)
    g_cancellable_disconnect (restart->parent, restart->parent_handler);
  g_clear_object (&restart->parent);
  g_clear_object (&restart->cancellable);
  g_clear_error (&restart->error);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Restart, restart_clear)

/* In presigned mode the URL carries the authorization; only GET and DELETE
 * of the key it was signed for can be sent. */
static AttemptResult
attempt_presigned (FsStorageS3 *self, const S3Request *req, S3Response *resp,
                   GCancellable *cancellable, GError **error)
{
  const gchar *url = NULL;
  g_autoptr (SoupMessage) msg = NULL;
  SoupMessageHeaders *request_headers;

  if (g_strcmp0 (req->key, self->presigned_key) == 0)
    {
      if (strcmp (req->method, "GET") == 0)
        url = self->presigned_get;
      else if (strcmp (req->method, "DELETE") == 0)
        url = self->presigned_delete;
    }
  if (url == NULL || (msg = soup_message_new (req->method, url)) == NULL)
    {
      g_set_error (error, FS_STORAGE_ERROR, FS_STORAGE_ERROR_NOT_SUPPORTED,
                   _("%s of ‘%s’ is not possible with presigned URLs"), req->method,
                   req->key != NULL ? req->key : "");
      return ATTEMPT_FAIL;
    }
  request_headers = soup_message_get_request_headers (msg);
  for (guint i = 0; req->headers != NULL && req->headers[i] != NULL; i += 2)
    soup_message_headers_replace (request_headers, req->headers[i], req->headers[i + 1]);
  return send_message (self, req, msg, "(presigned URL)", resp, cancellable, error);
}

/* send_message() of a request with a body, given again to libsoup if it
 * restarts the message (see Restart). */
static AttemptResult
send_with_body (FsStorageS3 *self, const S3Request *req, SoupMessage *msg, const gchar *url,
                S3Response *resp, GCancellable *cancellable, GError **error)
{
  g_auto (Restart) restart = { 0 };
  g_autoptr (GError) local_error = NULL;
  AttemptResult result;

  restart_init (&restart, req, cancellable);
  g_signal_connect (msg, "restarted", G_CALLBACK (message_restarted), &restart);
  result = send_message (self, req, msg, url, resp, restart.cancellable, &local_error);
  g_signal_handlers_disconnect_by_func (msg, message_restarted, &restart);
  if (result != ATTEMPT_OK && restart.error != NULL && !g_cancellable_is_cancelled (cancellable))
    {
      g_propagate_error (error, g_steal_pointer (&restart.error));
      return ATTEMPT_FAIL;
    }
  if (result != ATTEMPT_OK)
    g_propagate_error (error, g_steal_pointer (&local_error));
  return result;
}

static AttemptResult
attempt (FsStorageS3 *self, const S3Request *req, S3Response *resp, GCancellable *cancellable,
         GError **error)
{
  g_autoptr (GDateTime) now = g_date_time_new_now_utc ();
  g_autofree gchar *amz_date = fs_sigv4_amz_date (now);
  g_autofree gchar *path = request_path (self, req->key);
  g_autofree gchar *host = request_host (self);
  g_autofree gchar *payload_hash = NULL;
  g_autofree gchar *encoded_path = fs_sigv4_uri_encode (path, TRUE);
  g_autofree gchar *query = fs_sigv4_canonical_query (req->query);
  g_autofree gchar *url = NULL;
  g_autofree gchar *authorization = NULL;
  g_autoptr (GPtrArray) headers = g_ptr_array_new ();
  g_autoptr (SoupMessage) msg = NULL;
  SoupMessageHeaders *request_headers;

  if (req->body_func != NULL)
    payload_hash = g_strdup (req->body_sha256);
  else if (req->body != NULL)
    {
      gsize len;
      gconstpointer data = g_bytes_get_data (req->body, &len);
      payload_hash = fs_sigv4_sha256_hex (data != NULL ? data : "", len);
    }
  else
    payload_hash = g_strdup (FS_SIGV4_EMPTY_SHA256);

  g_ptr_array_add (headers, "host");
  g_ptr_array_add (headers, host);
  g_ptr_array_add (headers, "x-amz-content-sha256");
  g_ptr_array_add (headers, payload_hash);
  g_ptr_array_add (headers, "x-amz-date");
  g_ptr_array_add (headers, amz_date);
  for (guint i = 0; req->headers != NULL && req->headers[i] != NULL; i += 2)
    {
      g_ptr_array_add (headers, (gpointer)req->headers[i]);
      g_ptr_array_add (headers, (gpointer)req->headers[i + 1]);
    }
  g_ptr_array_add (headers, NULL);

  {
    const FsSigV4Credentials creds
      = { self->access_key, self->secret_key, self->region, "s3" };
    authorization
      = fs_sigv4_authorization (&creds, amz_date, req->method, path, req->query,
                                (const gchar *const *)headers->pdata, payload_hash);
  }

  url = g_strdup_printf ("%s://%s%s%s%s", self->scheme, host, encoded_path,
                         *query != '\0' ? "?" : "", query);
  msg = soup_message_new (req->method, url);
  if (msg == NULL)
    {
      g_set_error (error, FS_STORAGE_ERROR, FS_STORAGE_ERROR_INVALID,
                   _("Cannot build a request URL for ‘%s’"), req->key != NULL ? req->key : "");
      return ATTEMPT_FAIL;
    }
  request_headers = soup_message_get_request_headers (msg);
  /* libsoup writes Host itself, from the URL, exactly as signed above. */
  for (guint i = 2; i + 1 < headers->len; i += 2)
    soup_message_headers_replace (request_headers, g_ptr_array_index (headers, i),
                                  g_ptr_array_index (headers, i + 1));
  soup_message_headers_replace (request_headers, "Authorization", authorization);
  if (!set_body (req, msg, error))
    return ATTEMPT_FAIL;
  if (req->body == NULL && req->body_func == NULL)
    return send_message (self, req, msg, url, resp, cancellable, error);
  return send_with_body (self, req, msg, url, resp, cancellable, error);
}

/* Sends @msg and maps the outcome; @url is only logged (never a presigned one). */
static AttemptResult
send_message (FsStorageS3 *self, const S3Request *req, SoupMessage *msg, const gchar *url,
              S3Response *resp, GCancellable *cancellable, GError **error)
{
  g_autoptr (GInputStream) stream = NULL;
  g_autoptr (GError) local_error = NULL;
  g_autoptr (GBytes) body = NULL;
  SoupMessageHeaders *response_headers;
  gint64 start = g_get_monotonic_time ();
  guint status;

  g_mutex_lock (&self->lock);
  self->requests++;
  g_mutex_unlock (&self->lock);

  stream = soup_session_send (self->session, msg, cancellable, &local_error);
  status = soup_message_get_status (msg);
  g_debug ("%s %s → %u (%.1f ms)%s%s", req->method, url, stream != NULL ? status : 0,
           (g_get_monotonic_time () - start) / 1000.0, local_error != NULL ? ": " : "",
           local_error != NULL ? local_error->message : "");
  if (stream == NULL)
    {
      g_autofree gchar *what = what_failed (self, req);

      /* Cancelled, or a streamed body that was not what it announced
       * (fs-s3-body-stream.h): sending it again would not help. */
      if (g_error_matches (local_error, G_IO_ERROR, G_IO_ERROR_CANCELLED)
          || g_error_matches (local_error, G_IO_ERROR, G_IO_ERROR_PARTIAL_INPUT))
        {
          g_propagate_error (error, g_steal_pointer (&local_error));
          return ATTEMPT_FAIL;
        }
      if (local_error->domain == G_TLS_ERROR)
        {
          g_set_error (error, FS_STORAGE_ERROR, FS_STORAGE_ERROR_FAILED, _("%s: TLS failed: %s"),
                       what, local_error->message);
          return ATTEMPT_FAIL;
        }
      /* Connection refused or reset, timeouts, name resolution: transient. */
      g_set_error (error, FS_STORAGE_ERROR, FS_STORAGE_ERROR_TRANSIENT, _("%s failed: %s"), what,
                   local_error->message);
      return ATTEMPT_RETRY;
    }

  response_headers = soup_message_get_response_headers (msg);
  resp->status = status;
  if ((SOUP_STATUS_IS_SUCCESSFUL (status) || status == req->ok_status) && req->want_stream
      && (status == 200 || status == 206))
    {
      resp->headers = soup_message_headers_ref (response_headers);
      resp->stream = g_steal_pointer (&stream);
      return ATTEMPT_OK;
    }

  {
    goffset expected = soup_message_headers_get_encoding (response_headers)
                           == SOUP_ENCODING_CONTENT_LENGTH
                         ? soup_message_headers_get_content_length (response_headers)
                         : -1;
    if (strcmp (req->method, "HEAD") == 0)
      expected = -1;
    body = read_body (stream, expected, cancellable, &local_error);
  }
  g_input_stream_close (stream, NULL, NULL);
  if (body == NULL)
    {
      g_autofree gchar *what = what_failed (self, req);

      if (g_error_matches (local_error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        {
          g_propagate_error (error, g_steal_pointer (&local_error));
          return ATTEMPT_FAIL;
        }
      g_set_error (error, FS_STORAGE_ERROR, FS_STORAGE_ERROR_TRANSIENT,
                   _("%s: reading the response failed: %s"), what, local_error->message);
      return ATTEMPT_RETRY;
    }

  if (SOUP_STATUS_IS_SUCCESSFUL (status) || status == req->ok_status)
    {
      resp->headers = soup_message_headers_ref (response_headers);
      resp->body = g_steal_pointer (&body);
      return ATTEMPT_OK;
    }
  return set_http_error (self, req, status, body, error) ? ATTEMPT_RETRY : ATTEMPT_FAIL;
}

/* Sleeps the full-jitter backoff before retry @n (1, 2, …); FALSE if cancelled. */
static gboolean
backoff (guint n, GCancellable *cancellable)
{
  guint64 cap = BACKOFF_BASE_MS << MIN (n, 16u);
  gint64 until;

  if (cap > BACKOFF_CAP_MS)
    cap = BACKOFF_CAP_MS;
  until = g_get_monotonic_time () + (gint64)g_random_int_range (0, (gint32)cap + 1) * 1000;
  while (g_get_monotonic_time () < until)
    {
      if (g_cancellable_is_cancelled (cancellable))
        return FALSE;
      g_usleep (MIN (20000, until - g_get_monotonic_time ()));
    }
  return !g_cancellable_is_cancelled (cancellable);
}

static void
count_retry (FsStorageS3 *self)
{
  g_mutex_lock (&self->lock);
  self->retries++;
  g_mutex_unlock (&self->lock);
}

/* Sends @req, retrying transient failures up to max-retries times. */
static gboolean
s3_execute (FsStorageS3 *self, const S3Request *req, S3Response *resp, GCancellable *cancellable,
            GError **error)
{
  for (guint n = 0;; n++)
    {
      g_autoptr (GError) local_error = NULL;
      AttemptResult result;

      s3_response_clear (resp);
      result = self->presigned_key != NULL
                 ? attempt_presigned (self, req, resp, cancellable, &local_error)
                 : attempt (self, req, resp, cancellable, &local_error);
      if (result == ATTEMPT_OK)
        return TRUE;
      if (result == ATTEMPT_FAIL)
        {
          g_propagate_error (error, g_steal_pointer (&local_error));
          return FALSE;
        }
      if (n >= self->max_retries)
        {
          g_propagate_prefixed_error (error, g_steal_pointer (&local_error),
                                      _("Gave up after %u retries: "), n);
          return FALSE;
        }
      if (req->body_check != NULL && !req->body_check (req->body_data, local_error, error))
        return FALSE;
      g_debug ("retry %u of %s: %s", n + 1, req->method, local_error->message);
      count_retry (self);
      if (!backoff (n + 1, cancellable))
        return !g_cancellable_set_error_if_cancelled (cancellable, error);
    }
}

static gchar *
strip_etag (const gchar *etag)
{
  gsize len;

  if (etag == NULL)
    return NULL;
  if (g_str_has_prefix (etag, "W/"))
    etag += 2;
  len = strlen (etag);
  if (len >= 2 && etag[0] == '"' && etag[len - 1] == '"')
    return g_strndup (etag + 1, len - 2);
  return g_strdup (etag);
}

static FsS3XmlNode *
parse_body (FsStorageS3 *self, const S3Request *req, GBytes *body, const gchar *root_name,
            GError **error)
{
  g_autoptr (GError) local_error = NULL;
  gsize len = 0;
  const gchar *data = body != NULL ? g_bytes_get_data (body, &len) : NULL;
  FsS3XmlNode *root = data != NULL ? fs_s3_xml_parse (data, len, &local_error) : NULL;
  g_autofree gchar *what = what_failed (self, req);

  if (root == NULL)
    {
      g_set_error (error, FS_STORAGE_ERROR, FS_STORAGE_ERROR_FAILED,
                   _("%s: the server's answer is not valid XML: %s"), what,
                   local_error != NULL ? local_error->message : _("empty body"));
      return NULL;
    }
  if (strcmp (root->name, root_name) != 0)
    {
      g_set_error (error, FS_STORAGE_ERROR, FS_STORAGE_ERROR_FAILED,
                   _("%s: expected <%s> in the server's answer, got <%s>"), what, root_name,
                   root->name);
      fs_s3_xml_node_free (root);
      return NULL;
    }
  return root;
}

static gboolean
check_configured (FsStorageS3 *self, GError **error)
{
  if (self->configured)
    return TRUE;
  g_set_error_literal (error, FS_STORAGE_ERROR, FS_STORAGE_ERROR_INVALID,
                       _("The S3 storage is not configured"));
  return FALSE;
}

static gboolean
check_key (const gchar *key, GError **error)
{
  return fs_storage_check_key (key, error);
}

/* ---- multipart upload bookkeeping (the state file) ------------------------ */

static void
save_state_locked (FsStorageS3 *self)
{
  g_autoptr (GKeyFile) kf = g_key_file_new ();
  g_autoptr (GError) local_error = NULL;
  g_autofree gchar *data = NULL;
  GHashTableIter iter;
  gpointer id, key;
  guint n = 0;
  gsize len;

  if (self->state_file == NULL)
    return;
  g_hash_table_iter_init (&iter, self->uploads);
  while (g_hash_table_iter_next (&iter, &id, &key))
    {
      g_autofree gchar *group = g_strdup_printf ("upload %u", n++);
      g_key_file_set_string (kf, group, "upload-id", id);
      g_key_file_set_string (kf, group, "key", key);
    }
  data = g_key_file_to_data (kf, &len, NULL);
  if (!g_file_set_contents_full (self->state_file, data, (gssize)len,
                                 G_FILE_SET_CONTENTS_CONSISTENT | G_FILE_SET_CONTENTS_DURABLE,
                                 0600, &local_error))
    g_warning ("Could not record multipart uploads in %s: %s", self->state_file,
               local_error->message);
}

static void
record_upload (FsStorageS3 *self, const gchar *upload_id, const gchar *key)
{
  g_mutex_lock (&self->lock);
  g_hash_table_insert (self->uploads, g_strdup (upload_id), g_strdup (key));
  save_state_locked (self);
  g_mutex_unlock (&self->lock);
}

static void
forget_upload (FsStorageS3 *self, const gchar *upload_id)
{
  g_mutex_lock (&self->lock);
  g_hash_table_remove (self->uploads, upload_id);
  save_state_locked (self);
  g_mutex_unlock (&self->lock);
}

static gboolean
abort_upload (FsStorageS3 *self, const gchar *key, const gchar *upload_id, GError **error)
{
  const gchar *query[] = { "uploadId", upload_id, NULL };
  S3Request req = { .method = "DELETE", .key = key, .query = query, .ok_status = 404 };
  g_auto (S3Response) resp = { 0 };

  /* Never cancelled: an abort runs because something else was. */
  if (!s3_execute (self, &req, &resp, NULL, error))
    return FALSE;
  g_debug ("aborted multipart upload %s of %s", upload_id, key);
  return TRUE;
}

/* Aborts the uploads a previous process recorded and did not finish. */
static void
abort_recorded_uploads (FsStorageS3 *self)
{
  g_autoptr (GKeyFile) kf = g_key_file_new ();
  g_auto (GStrv) groups = NULL;

  if (self->state_file == NULL
      || !g_key_file_load_from_file (kf, self->state_file, G_KEY_FILE_NONE, NULL))
    return;
  groups = g_key_file_get_groups (kf, NULL);
  for (guint i = 0; groups[i] != NULL; i++)
    {
      g_autofree gchar *id = g_key_file_get_string (kf, groups[i], "upload-id", NULL);
      g_autofree gchar *key = g_key_file_get_string (kf, groups[i], "key", NULL);
      g_autoptr (GError) local_error = NULL;

      if (id == NULL || key == NULL)
        continue;
      if (abort_upload (self, key, id, &local_error))
        g_message ("Aborted the unfinished multipart upload of ‘%s’ left by an earlier run", key);
      else
        {
          g_warning ("Could not abort the unfinished multipart upload of ‘%s’: %s", key,
                     local_error->message);
          /* Keep it listed, to try again next time. */
          g_hash_table_insert (self->uploads, g_strdup (id), g_strdup (key));
        }
    }
  g_mutex_lock (&self->lock);
  save_state_locked (self);
  g_mutex_unlock (&self->lock);
}

/* ListMultipartUploads is optional on S3-compatible servers (s3rver: 501). */
static void
abort_stale_listed_uploads (FsStorageS3 *self, const gchar *prefix)
{
  const gchar *query[] = { "uploads", "", "prefix", prefix != NULL ? prefix : "", NULL };
  S3Request req = { .method = "GET", .query = query };
  g_auto (S3Response) resp = { 0 };
  g_autoptr (GError) local_error = NULL;
  g_autoptr (FsS3XmlNode) root = NULL;
  g_autoptr (GDateTime) now = g_date_time_new_now_utc ();

  if (!s3_execute (self, &req, &resp, NULL, &local_error)
      || (root = parse_body (self, &req, resp.body, "ListMultipartUploadsResult", &local_error))
           == NULL)
    {
      g_debug ("not cleaning up stale multipart uploads: %s", local_error->message);
      return;
    }
  for (guint i = 0; i < root->children->len; i++)
    {
      FsS3XmlNode *upload = g_ptr_array_index (root->children, i);
      const gchar *key = fs_s3_xml_child_text (upload, "Key");
      const gchar *id = fs_s3_xml_child_text (upload, "UploadId");
      const gchar *initiated = fs_s3_xml_child_text (upload, "Initiated");
      g_autoptr (GDateTime) when = NULL;
      g_autoptr (GError) abort_error = NULL;

      if (strcmp (upload->name, "Upload") != 0 || key == NULL || id == NULL || initiated == NULL)
        continue;
      when = g_date_time_new_from_iso8601 (initiated, NULL);
      if (when == NULL
          || g_date_time_difference (now, when) < (GTimeSpan)STALE_UPLOAD_SECONDS * G_TIME_SPAN_SECOND)
        continue;
      if (abort_upload (self, key, id, &abort_error))
        g_message ("Aborted a stale multipart upload of ‘%s’ started %s", key, initiated);
      else
        g_debug ("could not abort stale upload of %s: %s", key, abort_error->message);
    }
}

/* ---- configure ------------------------------------------------------------ */

static gboolean
parse_uint_setting (GHashTable *settings, const gchar *name, guint64 def, guint64 min,
                    guint64 max, guint64 *out, GError **error)
{
  const gchar *value = g_hash_table_lookup (settings, name);
  guint64 v;

  if (value == NULL || *value == '\0')
    {
      *out = def;
      return TRUE;
    }
  if (!g_ascii_string_to_unsigned (value, 10, min, max, &v, NULL))
    {
      g_set_error (error, FS_STORAGE_ERROR, FS_STORAGE_ERROR_INVALID,
                   _("Setting ‘%s’ must be a whole number from %llu to %llu, not ‘%s’"), name,
                   (unsigned long long)min, (unsigned long long)max, value);
      return FALSE;
    }
  *out = v;
  return TRUE;
}

static const gchar *
required_setting (GHashTable *settings, const gchar *name, GError **error)
{
  const gchar *value = g_hash_table_lookup (settings, name);

  if (value == NULL || *value == '\0')
    {
      g_set_error (error, FS_STORAGE_ERROR, FS_STORAGE_ERROR_INVALID,
                   _("Setting ‘%s’ of the S3 storage is missing"), name);
      return NULL;
    }
  return value;
}

static SoupSession *
new_session (guint max_workers, const gchar *ca_file, GError **error)
{
  g_autoptr (SoupSession) session = soup_session_new_with_options (
    "timeout", HTTP_TIMEOUT_SECONDS, "idle-timeout", HTTP_TIMEOUT_SECONDS, "max-conns",
    (gint)MAX (64, max_workers * 4), "max-conns-per-host", (gint)MAX (8, max_workers * 2),
    "user-agent", "FolderSync/" PACKAGE_VERSION, NULL);

  if (ca_file != NULL && *ca_file != '\0')
    {
      g_autoptr (GError) local_error = NULL;
      g_autoptr (GTlsDatabase) db = g_tls_file_database_new (ca_file, &local_error);
      if (db == NULL)
        {
          g_set_error (error, FS_STORAGE_ERROR, FS_STORAGE_ERROR_INVALID,
                       _("Could not load CA certificates from ‘%s’: %s"), ca_file,
                       local_error->message);
          return NULL;
        }
      soup_session_set_tls_database (session, db);
    }
  return g_steal_pointer (&session);
}

/* Settings "presigned-key", "presigned-get" (and optionally
 * "presigned-delete"): GET and DELETE of that one key through the URLs. */
static gboolean
configure_presigned (FsStorageS3 *self, GHashTable *settings, GError **error)
{
  const gchar *key = g_hash_table_lookup (settings, "presigned-key");
  const gchar *get_url = g_hash_table_lookup (settings, "presigned-get");
  const gchar *delete_url = g_hash_table_lookup (settings, "presigned-delete");
  const gchar *urls[] = { get_url, delete_url };

  if (!check_key (key, error))
    return FALSE;
  for (guint i = 0; i < G_N_ELEMENTS (urls); i++)
    {
      g_autoptr (GUri) uri = urls[i] != NULL ? g_uri_parse (urls[i], G_URI_FLAGS_ENCODED, NULL)
                                             : NULL;
      if ((urls[i] != NULL || i == 0)
          && (uri == NULL
              || (g_strcmp0 (g_uri_get_scheme (uri), "http") != 0
                  && g_strcmp0 (g_uri_get_scheme (uri), "https") != 0)))
        {
          /* The URL is a bearer credential: not in the message. */
          g_set_error_literal (error, FS_STORAGE_ERROR, FS_STORAGE_ERROR_INVALID,
                               _("A presigned URL is not a valid http(s) URL"));
          return FALSE;
        }
    }
  self->session = new_session (1, g_hash_table_lookup (settings, "ca-file"), error);
  if (self->session == NULL)
    return FALSE;
  self->presigned_key = g_strdup (key);
  self->presigned_get = g_strdup (get_url);
  self->presigned_delete = g_strdup (delete_url);
  self->max_retries = DEFAULT_MAX_RETRIES;
  self->max_workers = 1;
  self->configured = TRUE;
  return TRUE;
}

static gboolean
fs_storage_s3_configure (FsStorage *storage, GHashTable *settings, GError **error)
{
  FsStorageS3 *self = FS_STORAGE_S3 (storage);
  const gchar *endpoint, *bucket, *access_key, *secret_key;
  const gchar *region = g_hash_table_lookup (settings, "region");
  const gchar *addressing = g_hash_table_lookup (settings, "addressing");
  const gchar *ca_file = g_hash_table_lookup (settings, "ca-file");
  const gchar *conditional = g_hash_table_lookup (settings, "conditional-put");
  const gchar *state_file = g_hash_table_lookup (settings, "state-file");
  const gchar *spool_dir = g_hash_table_lookup (settings, "spool-dir");
  g_autoptr (GUri) uri = NULL;
  g_autoptr (GError) local_error = NULL;
  guint64 threshold, single_put_max, part_size, workers, retries;
  const gchar *scheme, *host;
  gint port;

  if (self->configured)
    {
      g_set_error_literal (error, FS_STORAGE_ERROR, FS_STORAGE_ERROR_INVALID,
                           _("The S3 storage is already configured"));
      return FALSE;
    }
  if (g_hash_table_contains (settings, "presigned-key"))
    return configure_presigned (self, settings, error);
  if ((endpoint = required_setting (settings, "endpoint", error)) == NULL
      || (bucket = required_setting (settings, "bucket", error)) == NULL
      || (access_key = required_setting (settings, "access-key", error)) == NULL
      || (secret_key = required_setting (settings, "secret-key", error)) == NULL)
    return FALSE;
  if (!parse_uint_setting (settings, "multipart-threshold", DEFAULT_MULTIPART_THRESHOLD, 0,
                           G_MAXUINT32, &threshold, error)
      || !parse_uint_setting (settings, "single-put-max", DEFAULT_SINGLE_PUT_MAX, 0,
                              MAX_SINGLE_PUT, &single_put_max, error)
      || !parse_uint_setting (settings, "part-size", DEFAULT_PART_SIZE, MIN_PART_SIZE,
                              MIN (MAX_PART_SIZE, G_MAXUINT32), &part_size, error)
      || !parse_uint_setting (settings, "max-workers", DEFAULT_MAX_WORKERS, 1, 64, &workers,
                              error)
      || !parse_uint_setting (settings, "max-retries", DEFAULT_MAX_RETRIES, 0, 100, &retries,
                              error))
    return FALSE;

  uri = g_uri_parse (endpoint, G_URI_FLAGS_NONE, &local_error);
  scheme = uri != NULL ? g_uri_get_scheme (uri) : NULL;
  host = uri != NULL ? g_uri_get_host (uri) : NULL;
  if (uri == NULL || (g_strcmp0 (scheme, "http") != 0 && g_strcmp0 (scheme, "https") != 0)
      || host == NULL || *host == '\0'
      || (*g_uri_get_path (uri) != '\0' && strcmp (g_uri_get_path (uri), "/") != 0)
      || g_uri_get_query (uri) != NULL || g_uri_get_userinfo (uri) != NULL)
    {
      g_set_error (error, FS_STORAGE_ERROR, FS_STORAGE_ERROR_INVALID,
                   _("Setting ‘endpoint’ must be http(s)://host[:port], not ‘%s’"), endpoint);
      return FALSE;
    }
  if (addressing != NULL && strcmp (addressing, "path") != 0 && strcmp (addressing, "virtual") != 0)
    {
      g_set_error (error, FS_STORAGE_ERROR, FS_STORAGE_ERROR_INVALID,
                   _("Setting ‘addressing’ must be ‘path’ or ‘virtual’, not ‘%s’"), addressing);
      return FALSE;
    }
  if (strchr (bucket, '/') != NULL || strlen (bucket) > 255)
    {
      g_set_error (error, FS_STORAGE_ERROR, FS_STORAGE_ERROR_INVALID,
                   _("‘%s’ is not a valid bucket name"), bucket);
      return FALSE;
    }

  port = g_uri_get_port (uri);
  self->scheme = g_strdup (scheme);
  {
    gboolean ipv6 = strchr (host, ':') != NULL;
    gboolean default_port = port < 0 || (port == 80 && strcmp (scheme, "http") == 0)
                            || (port == 443 && strcmp (scheme, "https") == 0);
    g_autofree gchar *h = ipv6 ? g_strdup_printf ("[%s]", host) : g_ascii_strdown (host, -1);
    self->endpoint_host = default_port ? g_steal_pointer (&h) : g_strdup_printf ("%s:%d", h, port);
  }
  self->bucket = g_strdup (bucket);
  self->region = g_strdup (region != NULL && *region != '\0' ? region : "us-east-1");
  self->access_key = g_strdup (access_key);
  self->secret_key = g_strdup (secret_key);
  self->virtual_host = g_strcmp0 (addressing, "virtual") == 0;
  self->multipart_threshold = threshold;
  self->single_put_max = single_put_max;
  /* Created (0700) by the first put that needs it, not here: a store
   * that only ever holds small objects never touches the disk. */
  self->spool_dir = spool_dir != NULL && *spool_dir != '\0'
                      ? g_strdup (spool_dir)
                      : g_build_filename (g_get_user_cache_dir (), "foldersync", "spool", NULL);
  self->part_size = part_size;
  self->max_workers = (guint)workers;
  self->max_retries = (guint)retries;
  self->conditional_put = g_strcmp0 (conditional, "true") == 0;
  self->state_file = state_file != NULL && *state_file != '\0' ? g_strdup (state_file) : NULL;

  self->session = new_session (self->max_workers, ca_file, error);
  if (self->session == NULL)
    return FALSE;
  self->configured = TRUE;

  /* The bucket must exist and the credentials must work: one request. */
  {
    const gchar *query[] = { "list-type", "2", "max-keys", "1", NULL };
    S3Request req = { .method = "GET", .query = query };
    g_auto (S3Response) resp = { 0 };

    if (!s3_execute (self, &req, &resp, NULL, error))
      {
        self->configured = FALSE;
        return FALSE;
      }
  }
  g_debug ("configured bucket %s at %s://%s (%s addressing, region %s)", self->bucket,
           self->scheme, self->endpoint_host, self->virtual_host ? "virtual" : "path",
           self->region);

  abort_recorded_uploads (self);
  abort_stale_listed_uploads (self, g_hash_table_lookup (settings, "prefix"));
  return TRUE;
}

/* ---- list ----------------------------------------------------------------- */

static gboolean
fs_storage_s3_list (FsStorage *storage, const gchar *prefix, const gchar *delimiter,
                    const gchar *start_after, guint max_keys, GPtrArray **objects,
                    GPtrArray **common_prefixes, gboolean *truncated, GError **error)
{
  FsStorageS3 *self = FS_STORAGE_S3 (storage);
  g_autoptr (GPtrArray) objs
    = g_ptr_array_new_with_free_func ((GDestroyNotify)fs_storage_object_free);
  g_autoptr (GPtrArray) prefixes = g_ptr_array_new_with_free_func (g_free);
  g_autofree gchar *token = NULL;
  g_autofree gchar *max_str = g_strdup_printf ("%u", MIN (max_keys, MAX_LIST_KEYS));
  gboolean is_truncated = FALSE;

  if (!check_configured (self, error))
    return FALSE;
  if (delimiter != NULL && *delimiter == '\0')
    delimiter = NULL;
  if (start_after != NULL && *start_after == '\0')
    start_after = NULL;

  /* Usually one round: another only when every entry of a page was a common
   * prefix at or before start_after (S3 returns those; our contract does not). */
  do
    {
      g_autoptr (GPtrArray) query = g_ptr_array_new ();
      g_auto (S3Response) resp = { 0 };
      g_autoptr (FsS3XmlNode) root = NULL;
      S3Request req = { .method = "GET" };
      const gchar *next;

      g_ptr_array_add (query, "list-type");
      g_ptr_array_add (query, "2");
      g_ptr_array_add (query, "max-keys");
      g_ptr_array_add (query, max_str);
      g_ptr_array_add (query, "prefix");
      g_ptr_array_add (query, (gpointer)prefix);
      if (delimiter != NULL)
        {
          g_ptr_array_add (query, "delimiter");
          g_ptr_array_add (query, (gpointer)delimiter);
        }
      if (token != NULL)
        {
          g_ptr_array_add (query, "continuation-token");
          g_ptr_array_add (query, token);
        }
      else if (start_after != NULL)
        {
          g_ptr_array_add (query, "start-after");
          g_ptr_array_add (query, (gpointer)start_after);
        }
      g_ptr_array_add (query, NULL);
      req.query = (const gchar *const *)query->pdata;

      if (!s3_execute (self, &req, &resp, NULL, error)
          || (root = parse_body (self, &req, resp.body, "ListBucketResult", error)) == NULL)
        return FALSE;

      for (guint i = 0; i < root->children->len; i++)
        {
          FsS3XmlNode *child = g_ptr_array_index (root->children, i);

          if (strcmp (child->name, "Contents") == 0)
            {
              const gchar *key = fs_s3_xml_child_text (child, "Key");
              const gchar *size = fs_s3_xml_child_text (child, "Size");
              g_autofree gchar *etag = strip_etag (fs_s3_xml_child_text (child, "ETag"));
              guint64 n = 0;

              if (key == NULL || (start_after != NULL && strcmp (key, start_after) <= 0))
                continue;
              if (size != NULL)
                g_ascii_string_to_unsigned (size, 10, 0, G_MAXUINT64, &n, NULL);
              g_ptr_array_add (objs, fs_storage_object_new (key, n, etag));
            }
          else if (strcmp (child->name, "CommonPrefixes") == 0)
            {
              const gchar *p = fs_s3_xml_child_text (child, "Prefix");

              if (p == NULL || (start_after != NULL && strcmp (p, start_after) <= 0))
                continue;
              g_ptr_array_add (prefixes, g_strdup (p));
            }
        }
      is_truncated = g_strcmp0 (fs_s3_xml_child_text (root, "IsTruncated"), "true") == 0;
      next = fs_s3_xml_child_text (root, "NextContinuationToken");
      g_free (token);
      token = g_strdup (next);
      if (is_truncated && token == NULL)
        {
          g_set_error (error, FS_STORAGE_ERROR, FS_STORAGE_ERROR_FAILED,
                       _("Listing bucket ‘%s’: a truncated page without a continuation token"),
                       self->bucket);
          return FALSE;
        }
    }
  while (is_truncated && objs->len == 0 && prefixes->len == 0);

  /* Some servers (s3rver) do not count common prefixes toward max-keys: cut
   * the page to max_keys entries in key order. Callers page with the last
   * entry as start_after, so nothing is lost. */
  if (objs->len + prefixes->len > max_keys)
    {
      guint o = 0, p = 0;

      while (o + p < max_keys)
        {
          if (p == prefixes->len
              || (o < objs->len
                  && strcmp (((FsStorageObject *)g_ptr_array_index (objs, o))->key,
                             g_ptr_array_index (prefixes, p))
                       < 0))
            o++;
          else
            p++;
        }
      g_ptr_array_set_size (objs, o);
      g_ptr_array_set_size (prefixes, p);
      is_truncated = TRUE;
    }
  *objects = g_steal_pointer (&objs);
  if (common_prefixes != NULL)
    *common_prefixes = g_steal_pointer (&prefixes);
  if (truncated != NULL)
    *truncated = is_truncated;
  return TRUE;
}

/* ---- stat / get ------------------------------------------------------------ */

static FsStorageObject *
fs_storage_s3_stat (FsStorage *storage, const gchar *key, GError **error)
{
  FsStorageS3 *self = FS_STORAGE_S3 (storage);
  S3Request req = { .method = "HEAD", .key = key };
  g_auto (S3Response) resp = { 0 };
  g_autofree gchar *etag = NULL;

  if (!check_configured (self, error) || !check_key (key, error)
      || !s3_execute (self, &req, &resp, NULL, error))
    return NULL;
  etag = strip_etag (soup_message_headers_get_one (resp.headers, "ETag"));
  return fs_storage_object_new (key, (guint64)soup_message_headers_get_content_length (resp.headers),
                                etag);
}

typedef struct
{
  FsStorageS3 *self;
  gchar *key;
  gchar *etag;
} Reopen;

static void
reopen_free (gpointer data)
{
  Reopen *r = data;

  g_object_unref (r->self);
  g_free (r->key);
  g_free (r->etag);
  g_free (r);
}

/* Opens a GET of bytes [@pos, @end) of @key (end G_MAXUINT64: to the end), if
 * it still has version @etag (NULL: any). On success *@start is the object
 * offset of the stream's first byte and *@stop the offset after its last;
 * *@empty is set for a range past the end (HTTP 416). */
static GInputStream *
open_range (FsStorageS3 *self, const gchar *key, const gchar *etag, guint64 pos, guint64 end,
            guint64 *start, guint64 *stop, gchar **etag_out, GCancellable *cancellable,
            GError **error)
{
  g_autofree gchar *range = NULL;
  g_autofree gchar *if_match = etag != NULL ? g_strdup_printf ("\"%s\"", etag) : NULL;
  const gchar *headers[5] = { NULL };
  guint h = 0;
  S3Request req = { .method = "GET", .key = key, .want_stream = TRUE, .ok_status = 416 };
  g_auto (S3Response) resp = { 0 };
  goffset first, last, total;

  if (pos > 0 || end != G_MAXUINT64)
    {
      range = end != G_MAXUINT64 ? g_strdup_printf ("bytes=%" G_GUINT64_FORMAT "-%" G_GUINT64_FORMAT,
                                                    pos, end - 1)
                                 : g_strdup_printf ("bytes=%" G_GUINT64_FORMAT "-", pos);
      headers[h++] = "range";
      headers[h++] = range;
    }
  if (if_match != NULL)
    {
      headers[h++] = "if-match";
      headers[h++] = if_match;
    }
  req.headers = headers;
  if (!s3_execute (self, &req, &resp, cancellable, error))
    return NULL;
  if (resp.status == 416)
    {
      *start = *stop = pos;
      return g_memory_input_stream_new ();
    }
  if (etag_out != NULL)
    *etag_out = strip_etag (soup_message_headers_get_one (resp.headers, "ETag"));
  if (resp.status == 206 && soup_message_headers_get_content_range (resp.headers, &first, &last, &total))
    {
      *start = (guint64)first;
      *stop = (guint64)last + 1;
      /* s3rver answers a range of an empty object with "bytes 0-0/0". */
      if (total >= 0 && *stop > (guint64)total)
        *stop = (guint64)total;
    }
  else
    {
      /* 200: the whole object (a server that ignores Range, or no Range). */
      *start = 0;
      *stop = (guint64)soup_message_headers_get_content_length (resp.headers);
    }
  return g_steal_pointer (&resp.stream);
}

static GInputStream *
reopen_cb (gpointer user_data, guint64 pos, guint64 end, guint n, GCancellable *cancellable,
           GError **error)
{
  Reopen *r = user_data;
  guint64 start = 0, stop = 0;
  g_autoptr (GInputStream) stream = NULL;

  count_retry (r->self);
  if (!backoff (n, cancellable))
    {
      g_cancellable_set_error_if_cancelled (cancellable, error);
      return NULL;
    }
  stream = open_range (r->self, r->key, r->etag, pos, end, &start, &stop, NULL, cancellable, error);
  if (stream == NULL)
    {
      if (g_error_matches (*error, FS_STORAGE_ERROR, FS_STORAGE_ERROR_PRECONDITION_FAILED))
        {
          g_clear_error (error);
          g_set_error (error, FS_STORAGE_ERROR, FS_STORAGE_ERROR_FAILED,
                       _("Object ‘%s’ changed while it was being read"), r->key);
        }
      return NULL;
    }
  if (start < pos && g_input_stream_skip (stream, pos - start, cancellable, error) < 0)
    return NULL;
  return g_steal_pointer (&stream);
}

static GInputStream *
fs_storage_s3_get (FsStorage *storage, const gchar *key, guint64 offset, gint64 length,
                   GError **error)
{
  FsStorageS3 *self = FS_STORAGE_S3 (storage);
  guint64 end = length < 0 ? G_MAXUINT64 : offset + (guint64)length;
  guint64 start = 0, stop = 0;
  g_autofree gchar *etag = NULL;
  g_autoptr (GInputStream) stream = NULL;
  Reopen *r;

  if (!check_configured (self, error) || !check_key (key, error))
    return NULL;
  if (length == 0)
    {
      /* An empty range still has to say whether the object exists. */
      g_autoptr (FsStorageObject) obj = fs_storage_s3_stat (storage, key, error);
      return obj != NULL ? g_memory_input_stream_new () : NULL;
    }
  stream = open_range (self, key, NULL, offset, end, &start, &stop, &etag, NULL, error);
  if (stream == NULL)
    return NULL;
  if (start >= stop)
    return g_memory_input_stream_new (); /* past the end */
  if (start < offset)
    {
      if (g_input_stream_skip (stream, offset - start, NULL, error) < 0)
        return NULL;
    }
  end = MIN (end, stop);
  r = g_new0 (Reopen, 1);
  r->self = g_object_ref (self);
  r->key = g_strdup (key);
  r->etag = g_steal_pointer (&etag);
  return fs_s3_get_stream_new (stream, MAX (offset, start), end, self->max_retries, reopen_cb, r,
                               reopen_free);
}

/* ---- put -------------------------------------------------------------------- */

/* Reads up to @len bytes (less only at the end of @source). */
static gssize
read_full (GInputStream *source, guint8 *buf, gsize len, GCancellable *cancellable,
           GError **error)
{
  gsize got = 0;

  while (got < len)
    {
      gssize n;

      if (g_cancellable_set_error_if_cancelled (cancellable, error))
        return -1;
      n = g_input_stream_read (source, buf + got, MIN (len - got, 1024 * 1024), cancellable,
                               error);
      if (n < 0)
        return -1;
      if (n == 0)
        break;
      got += (gsize)n;
    }
  return (gssize)got;
}

static void
conditional_headers (const gchar *expected_version, gchar **if_match, const gchar **headers,
                     guint *h)
{
  if (expected_version == NULL)
    return;
  if (*expected_version == '\0')
    {
      headers[(*h)++] = "if-none-match";
      headers[(*h)++] = "*";
    }
  else
    {
      *if_match = g_strdup_printf ("\"%s\"", expected_version);
      headers[(*h)++] = "if-match";
      headers[(*h)++] = *if_match;
    }
}

/* One PUT of a whole object: @req has the key and the body; the conditional
 * headers of @expected_version are added here, the same for every body. */
static gboolean
put_object (FsStorageS3 *self, S3Request *req, const gchar *expected_version,
            gchar **new_version, GCancellable *cancellable, GError **error)
{
  g_autofree gchar *if_match = NULL;
  const gchar *headers[5] = { NULL };
  guint h = 0;
  g_auto (S3Response) resp = { 0 };

  conditional_headers (expected_version, &if_match, headers, &h);
  req->headers = headers;
  if (!s3_execute (self, req, &resp, cancellable, error))
    return FALSE;
  if (new_version != NULL)
    *new_version = strip_etag (soup_message_headers_get_one (resp.headers, "ETag"));
  return TRUE;
}

static gboolean
put_single (FsStorageS3 *self, const gchar *key, GBytes *body, const gchar *expected_version,
            gchar **new_version, GCancellable *cancellable, GError **error)
{
  S3Request req = { .method = "PUT", .key = key, .body = body };

  return put_object (self, &req, expected_version, new_version, cancellable, error);
}

/* ---- put: the spool file -------------------------------------------------- */

typedef struct
{
  guint8 *data;
  gsize len;
} SpoolChunk;

typedef struct
{
  const gchar *dir;
  int fd;
  guint64 size; /* bytes handed to the file so far */
  /* libgcrypt rather than GChecksum: with SHA-NI it hashes 5× faster here
   * (about 1 GB/s against 0.2), and this hash is on the upload's path. */
  gcry_md_hd_t sha256;
  /* The writer thread hashes and writes the chunks put() reads, so that
   * producing the next chunk (sealing, in the engine's source stream) and
   * hashing this one use two cores. SPOOL_CHUNKS buffers go round between
   * the two queues: memory stays bounded however slow the disk is. */
  GThread *writer;
  GAsyncQueue *free_chunks;
  GAsyncQueue *full_chunks;
  SpoolChunk chunks[SPOOL_CHUNKS];
  SpoolChunk end; /* pushed to stop the writer */
  gint write_errno; /* the writer's first failure (atomic) */
} Spool;

static void spool_stop_writer (Spool *spool);

static void
spool_clear (Spool *spool)
{
  spool_stop_writer (spool);
  /* The file has no name: closing it frees its blocks. */
  if (spool->fd >= 0)
    close (spool->fd);
  spool->fd = -1;
  if (spool->sha256 != NULL)
    gcry_md_close (spool->sha256);
  spool->sha256 = NULL;
  g_clear_pointer (&spool->free_chunks, g_async_queue_unref);
  g_clear_pointer (&spool->full_chunks, g_async_queue_unref);
  for (guint i = 0; i < SPOOL_CHUNKS; i++)
    g_clear_pointer (&spool->chunks[i].data, g_free);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Spool, spool_clear)

static void
set_spool_error (GError **error, int errsv, const gchar *dir, gboolean writing)
{
  /* Names the directory (a setting the user can change), never the object. */
  if (writing)
    /* TRANSLATORS: the first %s is a directory, the second a system error
     * message such as “No space left on device”. */
    g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errsv),
                 _("Cannot write to the upload spool file in ‘%s’: %s"), dir, g_strerror (errsv));
  else
    g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errsv),
                 _("Cannot create an upload spool file in ‘%s’: %s"), dir, g_strerror (errsv));
}

/* Opens an anonymous file in @dir (created 0700 if missing): O_TMPFILE where
 * the file system has it, else a file unlinked as soon as it is created.
 * Either way a crash leaves nothing behind. */
static gboolean
spool_open (Spool *spool, const gchar *dir, GError **error)
{
  int errsv;

  spool->dir = dir;
  spool->size = 0;
  if (g_mkdir_with_parents (dir, 0700) != 0)
    {
      set_spool_error (error, errno, dir, FALSE);
      return FALSE;
    }
  spool->fd = open (dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (spool->fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL))
    {
      g_autofree gchar *name = g_build_filename (dir, ".foldersync-spool-XXXXXX", NULL);

      spool->fd = g_mkstemp_full (name, O_RDWR | O_CLOEXEC, 0600);
      if (spool->fd >= 0 && unlink (name) != 0)
        {
          errsv = errno;
          close (spool->fd);
          spool->fd = -1;
          errno = errsv;
        }
    }
  if (spool->fd < 0)
    {
      set_spool_error (error, errno, dir, FALSE);
      return FALSE;
    }
  fs_gcrypt_init ();
  if (gcry_md_open (&spool->sha256, GCRY_MD_SHA256, 0) != 0)
    g_error ("libgcrypt: SHA-256 unavailable");
  return TRUE;
}

/* Hashes and appends @len bytes; 0 or the errno of the failed write. */
static int
spool_append (Spool *spool, const guint8 *data, gsize len)
{
  gcry_md_write (spool->sha256, data, len);
  while (len > 0)
    {
      gssize n = write (spool->fd, data, len);

      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return errno;
      data += n;
      len -= (gsize)n;
    }
  return 0;
}

/* Writes @len bytes from the calling thread (before the writer runs). */
static gboolean
spool_write (Spool *spool, const guint8 *data, gsize len, GCancellable *cancellable,
             GError **error)
{
  int errsv;

  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    return FALSE;
  spool->size += len;
  errsv = spool_append (spool, data, len);
  if (errsv != 0)
    {
      set_spool_error (error, errsv, spool->dir, TRUE);
      return FALSE;
    }
  return TRUE;
}

static gpointer
spool_writer (gpointer user_data)
{
  Spool *spool = user_data;

  for (;;)
    {
      SpoolChunk *chunk = g_async_queue_pop (spool->full_chunks);
      int errsv;

      if (chunk == &spool->end)
        return NULL;
      /* After a failure, only hand the buffers back. */
      if (g_atomic_int_get (&spool->write_errno) == 0
          && (errsv = spool_append (spool, chunk->data, chunk->len)) != 0)
        g_atomic_int_set (&spool->write_errno, errsv);
      g_async_queue_push (spool->free_chunks, chunk);
    }
}

static void
spool_start_writer (Spool *spool)
{
  spool->free_chunks = g_async_queue_new ();
  spool->full_chunks = g_async_queue_new ();
  for (guint i = 0; i < SPOOL_CHUNKS; i++)
    {
      spool->chunks[i].data = g_malloc (SPOOL_CHUNK);
      g_async_queue_push (spool->free_chunks, &spool->chunks[i]);
    }
  spool->writer = g_thread_new ("fs-s3-spool", spool_writer, spool);
}

/* Waits until the writer has written every chunk handed to it. */
static void
spool_stop_writer (Spool *spool)
{
  if (spool->writer == NULL)
    return;
  g_async_queue_push (spool->full_chunks, &spool->end);
  g_thread_join (g_steal_pointer (&spool->writer));
}

/* Reads @source (the rest of @key's data) to its end, or to more than @max
 * bytes in all, into the spool after what is there already. */
static gboolean
spool_source (Spool *spool, const gchar *key, GInputStream *source, guint64 max,
              GCancellable *cancellable, GError **error)
{
  int errsv;

  spool_start_writer (spool);
  while (spool->size <= max && g_atomic_int_get (&spool->write_errno) == 0)
    {
      SpoolChunk *chunk = g_async_queue_pop (spool->free_chunks);
      gsize want = (gsize)MIN (SPOOL_CHUNK, max + 1 - spool->size);
      gssize n = read_full (source, chunk->data, want, cancellable, error);

      if (n <= 0)
        g_async_queue_push (spool->free_chunks, chunk);
      if (n < 0)
        {
          spool_stop_writer (spool);
          g_prefix_error (error, _("Reading the data for ‘%s’: "), key);
          return FALSE;
        }
      if (n > 0)
        {
          chunk->len = (gsize)n;
          spool->size += (guint64)n;
          g_async_queue_push (spool->full_chunks, chunk);
        }
      if ((gsize)n < want)
        break; /* the end of @source */
    }
  spool_stop_writer (spool);
  errsv = g_atomic_int_get (&spool->write_errno);
  if (errsv != 0)
    {
      set_spool_error (error, errsv, spool->dir, TRUE);
      return FALSE;
    }
  return TRUE;
}

/* S3BodyFunc: the spooled bytes from the first one, on a stream of its own. */
static GInputStream *
spool_body (gpointer user_data, GError **error)
{
  Spool *spool = user_data;
  g_autoptr (GError) local_error = NULL;
  GInputStream *stream = fs_s3_file_stream_new (spool->fd, spool->size, &local_error);

  if (stream == NULL)
    g_set_error (error, G_IO_ERROR, local_error->code,
                 _("Cannot read the upload spool file in ‘%s’: %s"), spool->dir,
                 local_error->message);
  return stream;
}

typedef struct
{
  FsStorageS3 *self;
  const gchar *key;
  const gchar *upload_id;
  GCancellable *cancellable; /* cancelled on the first failure too */
  GMutex lock;
  GCond cond;
  guint in_flight;
  GError *error;
  GPtrArray *etags; /* part number - 1 → gchar* */
} Multipart;

typedef struct
{
  guint number;
  GBytes *data;
} PartJob;

/* read_full() of @sources (NULL-terminated) one after the other; *@current
 * is the index of the one being read. */
static gssize
read_full_sources (GInputStream *const *sources, guint *current, guint8 *buf, gsize len,
                   GCancellable *cancellable, GError **error)
{
  gsize got = 0;

  while (got < len && sources[*current] != NULL)
    {
      gssize n = read_full (sources[*current], buf + got, len - got, cancellable, error);

      if (n < 0)
        return -1;
      got += (gsize)n;
      if (got < len)
        (*current)++; /* that one has ended */
    }
  return (gssize)got;
}

static void
upload_part (gpointer data, gpointer user_data)
{
  PartJob *job = data;
  Multipart *mp = user_data;
  g_autofree gchar *number = g_strdup_printf ("%u", job->number);
  const gchar *query[] = { "partNumber", number, "uploadId", mp->upload_id, NULL };
  S3Request req = { .method = "PUT", .key = mp->key, .query = query, .body = job->data };
  g_auto (S3Response) resp = { 0 };
  g_autoptr (GError) local_error = NULL;
  gboolean ok = FALSE;

  if (!g_cancellable_set_error_if_cancelled (mp->cancellable, &local_error))
    ok = s3_execute (mp->self, &req, &resp, mp->cancellable, &local_error);
  if (ok && soup_message_headers_get_one (resp.headers, "ETag") == NULL)
    {
      ok = FALSE;
      g_set_error (&local_error, FS_STORAGE_ERROR, FS_STORAGE_ERROR_FAILED,
                   _("Part %u of ‘%s’: the server sent no ETag"), job->number, mp->key);
    }
  g_mutex_lock (&mp->lock);
  if (ok)
    {
      if (mp->etags->len < job->number)
        g_ptr_array_set_size (mp->etags, job->number);
      g_free (g_ptr_array_index (mp->etags, job->number - 1));
      g_ptr_array_index (mp->etags, job->number - 1)
        = g_strdup (soup_message_headers_get_one (resp.headers, "ETag"));
    }
  else if (mp->error == NULL)
    {
      mp->error = g_steal_pointer (&local_error);
      g_cancellable_cancel (mp->cancellable); /* stop the other parts early */
    }
  mp->in_flight--;
  g_cond_broadcast (&mp->cond);
  g_mutex_unlock (&mp->lock);
  g_bytes_unref (job->data);
  g_free (job);
}

/* Waits for a free worker slot; FALSE once a part failed. */
static gboolean
take_slot (Multipart *mp, guint max)
{
  gboolean ok;

  g_mutex_lock (&mp->lock);
  while (mp->in_flight >= max && mp->error == NULL)
    g_cond_wait (&mp->cond, &mp->lock);
  ok = mp->error == NULL;
  if (ok)
    mp->in_flight++;
  g_mutex_unlock (&mp->lock);
  return ok;
}

static gchar *
complete_body (Multipart *mp)
{
  GString *xml = g_string_new ("<CompleteMultipartUpload>");

  for (guint i = 0; i < mp->etags->len; i++)
    {
      g_autofree gchar *etag = g_markup_escape_text (g_ptr_array_index (mp->etags, i), -1);
      g_string_append_printf (xml, "<Part><PartNumber>%u</PartNumber><ETag>%s</ETag></Part>",
                              i + 1, etag);
    }
  g_string_append (xml, "</CompleteMultipartUpload>");
  return g_string_free (xml, FALSE);
}

/* Uploads @head (the bytes read so far) and the rest, read from @sources
 * (NULL-terminated) one after the other, as a multipart upload. */
static gboolean
put_multipart (FsStorageS3 *self, const gchar *key, GBytes *head, GInputStream *const *sources,
               const gchar *expected_version, gchar **new_version, GCancellable *cancellable,
               GError **error)
{
  const gchar *init_query[] = { "uploads", "", NULL };
  S3Request init = { .method = "POST", .key = key, .query = init_query };
  g_auto (S3Response) init_resp = { 0 };
  g_autoptr (FsS3XmlNode) init_root = NULL;
  g_autofree gchar *upload_id = NULL;
  g_autoptr (GCancellable) parts_cancellable = g_cancellable_new ();
  g_autoptr (GError) local_error = NULL;
  Multipart mp = { 0 };
  GThreadPool *pool;
  gsize head_len = g_bytes_get_size (head);
  gsize head_pos = 0;
  guint number = 0;
  guint current = 0;
  gulong cancel_id = 0;
  gboolean source_done = FALSE;
  gboolean ok;

  if (!s3_execute (self, &init, &init_resp, cancellable, error)
      || (init_root = parse_body (self, &init, init_resp.body, "InitiateMultipartUploadResult",
                                  error))
           == NULL)
    return FALSE;
  upload_id = g_strdup (fs_s3_xml_child_text (init_root, "UploadId"));
  if (upload_id == NULL || *upload_id == '\0')
    {
      g_set_error (error, FS_STORAGE_ERROR, FS_STORAGE_ERROR_FAILED,
                   _("Starting the multipart upload of ‘%s’: the server sent no UploadId"), key);
      return FALSE;
    }
  record_upload (self, upload_id, key);
  g_debug ("multipart upload %s of %s started", upload_id, key);

  mp.self = self;
  mp.key = key;
  mp.upload_id = upload_id;
  mp.cancellable = parts_cancellable;
  mp.etags = g_ptr_array_new_with_free_func (g_free);
  g_mutex_init (&mp.lock);
  g_cond_init (&mp.cond);
  if (cancellable != NULL)
    cancel_id = g_cancellable_connect (cancellable, G_CALLBACK (cancel_child),
                                       g_object_ref (parts_cancellable), g_object_unref);
  pool = g_thread_pool_new (upload_part, &mp, (gint)self->max_workers, FALSE, NULL);

  /* The parts: slices of @head first (no copy), then fresh buffers read from
   * @sources. A buffer is only allocated once a worker slot is free, so at most
   * max-workers + 1 part buffers exist besides @head. */
  while (!source_done)
    {
      PartJob *job;
      GBytes *part;

      if (!take_slot (&mp, self->max_workers))
        break;
      if (head_len - head_pos >= self->part_size)
        {
          part = g_bytes_new_from_bytes (head, head_pos, self->part_size);
          head_pos += self->part_size;
        }
      else
        {
          gsize rest = head_len - head_pos;
          guint8 *buf = g_malloc (self->part_size);
          gssize n;

          memcpy (buf, (const guint8 *)g_bytes_get_data (head, NULL) + head_pos, rest);
          head_pos = head_len;
          n = read_full_sources (sources, &current, buf + rest, self->part_size - rest,
                                 cancellable, &local_error);
          if (n < 0)
            {
              g_free (buf);
              g_prefix_error (&local_error, _("Reading the data for ‘%s’: "), key);
              g_mutex_lock (&mp.lock);
              mp.in_flight--;
              if (mp.error == NULL)
                mp.error = g_steal_pointer (&local_error);
              g_mutex_unlock (&mp.lock);
              break;
            }
          if (rest + (gsize)n < self->part_size)
            source_done = TRUE;
          if (rest + (gsize)n == 0 && number > 0)
            {
              /* The source ended exactly at a part boundary. */
              g_free (buf);
              g_mutex_lock (&mp.lock);
              mp.in_flight--;
              g_mutex_unlock (&mp.lock);
              break;
            }
          part = g_bytes_new_take (buf, rest + (gsize)n);
        }
      if (++number > MAX_PARTS)
        {
          g_bytes_unref (part);
          g_mutex_lock (&mp.lock);
          mp.in_flight--;
          if (mp.error == NULL)
            g_set_error (
              &mp.error, FS_STORAGE_ERROR, FS_STORAGE_ERROR_INVALID,
              _("Object ‘%s’ needs more than %u parts of %llu bytes; raise ‘part-size’"), key,
              MAX_PARTS, (unsigned long long)self->part_size);
          g_mutex_unlock (&mp.lock);
          break;
        }
      job = g_new0 (PartJob, 1);
      job->number = number;
      job->data = part;
      g_thread_pool_push (pool, job, NULL);
    }
  g_thread_pool_free (pool, FALSE, TRUE);
  if (cancel_id != 0)
    g_cancellable_disconnect (cancellable, cancel_id);

  if (mp.error == NULL && g_cancellable_set_error_if_cancelled (cancellable, &local_error))
    mp.error = g_steal_pointer (&local_error);
  if (mp.error == NULL)
    {
      g_autofree gchar *xml = complete_body (&mp);
      g_autofree gchar *if_match = NULL;
      const gchar *query[] = { "uploadId", upload_id, NULL };
      const gchar *headers[7] = { "content-type", "application/xml", NULL };
      guint h = 2;
      g_autoptr (GBytes) body = g_bytes_new_take (g_steal_pointer (&xml), strlen (xml));
      S3Request req = { .method = "POST", .key = key, .query = query, .body = body };
      g_auto (S3Response) resp = { 0 };
      g_autoptr (FsS3XmlNode) root = NULL;
      gsize len;
      const gchar *data;

      conditional_headers (expected_version, &if_match, headers, &h);
      req.headers = headers;
      if (s3_execute (self, &req, &resp, cancellable, &local_error))
        {
          /* S3 may answer 200 and still report an error in the body. */
          data = g_bytes_get_data (resp.body, &len);
          root = data != NULL ? fs_s3_xml_parse (data, len, NULL) : NULL;
          if (root != NULL && strcmp (root->name, "CompleteMultipartUploadResult") == 0)
            {
              if (new_version != NULL)
                *new_version = strip_etag (fs_s3_xml_child_text (root, "ETag"));
            }
          else
            set_http_error (self, &req, root != NULL && strcmp (root->name, "Error") == 0 ? 500 : 502,
                            resp.body, &local_error);
        }
      if (local_error != NULL)
        mp.error = g_steal_pointer (&local_error);
    }

  ok = mp.error == NULL;
  if (!ok)
    {
      g_autoptr (GError) abort_error = NULL;

      if (!abort_upload (self, key, upload_id, &abort_error))
        g_warning ("Could not abort the multipart upload of ‘%s’ (left for the next start): %s",
                   key, abort_error->message);
      else
        forget_upload (self, upload_id);
      g_propagate_error (error, mp.error);
    }
  else
    {
      forget_upload (self, upload_id);
      g_debug ("multipart upload of %s done: %u parts", key, number);
    }
  g_ptr_array_unref (mp.etags);
  g_mutex_clear (&mp.lock);
  g_cond_clear (&mp.cond);
  return ok;
}

/* An object larger than multipart-threshold: @head_in (its first bytes,
 * already read; taken) and the rest of @source go to an anonymous spool file
 * while their SHA-256 is computed. If it ends within single-put-max, it goes
 * up as ONE PUT whose body streams from that file (a multipart upload costs
 * the server a second pass over all the parts to complete it). Else the
 * spooled bytes, then the rest of @source, go up as a multipart upload. The
 * remote object is not touched before the spooling has succeeded. */
static gboolean
put_spooled (FsStorageS3 *self, const gchar *key, GBytes *head_in, GInputStream *source,
             const gchar *expected_version, gchar **new_version, GCancellable *cancellable,
             GError **error)
{
  g_autoptr (GBytes) head = head_in;
  g_auto (Spool) spool = { .fd = -1 };
  gint64 start = g_get_monotonic_time ();
  gsize head_len;
  gconstpointer head_data = g_bytes_get_data (head, &head_len);

  if (!spool_open (&spool, self->spool_dir, error)
      || !spool_write (&spool, head_data, head_len, cancellable, error))
    return FALSE;
  g_clear_pointer (&head, g_bytes_unref); /* memory stays at a few chunks from here on */

  if (!spool_source (&spool, key, source, self->single_put_max, cancellable, error))
    return FALSE;
  g_debug ("spooled %s: %" G_GUINT64_FORMAT " bytes in %.1f ms", key, spool.size,
           (g_get_monotonic_time () - start) / 1000.0);

  if (spool.size <= self->single_put_max)
    {
      g_autofree gchar *sha256 = fs_hex_encode (gcry_md_read (spool.sha256, GCRY_MD_SHA256), 32);
      S3Request req = { .method = "PUT",
                        .key = key,
                        .body_func = spool_body,
                        .body_data = &spool,
                        .body_length = spool.size,
                        .body_sha256 = sha256 };

      return put_object (self, &req, expected_version, new_version, cancellable, error);
    }
  {
    g_autoptr (GInputStream) spooled = spool_body (&spool, error);
    g_autoptr (GBytes) empty = g_bytes_new_static ("", 0);
    GInputStream *sources[] = { spooled, source, NULL };

    if (spooled == NULL)
      return FALSE;
    g_debug ("%s is larger than single-put-max: multipart upload", key);
    return put_multipart (self, key, empty, sources, expected_version, new_version, cancellable,
                          error);
  }
}

/* ---- put: sent while it is produced --------------------------------------- */

typedef struct
{
  GBytes *head;
  GInputStream *source;
  guint64 length;
  FsS3BodyStream *body; /* the last one handed out */
} StreamedPut;

/* S3Request.body_check of a streamed put: the body can be given again only
 * while nothing was read from the source; after that the caller must put
 * again from a fresh source (FS_STORAGE_ERROR_STREAM_CONSUMED), unless the
 * source itself failed, which is the error then. */
static gboolean
streamed_body_check (gpointer user_data, const GError *cause, GError **error)
{
  StreamedPut *put = user_data;
  const GError *source_error;

  if (put->body == NULL)
    return TRUE;
  source_error = fs_s3_body_stream_get_source_error (put->body);
  if (source_error != NULL)
    {
      g_propagate_error (error, g_error_copy (source_error));
      return FALSE;
    }
  if (fs_s3_body_stream_source_touched (put->body))
    {
      g_set_error (error, FS_STORAGE_ERROR, FS_STORAGE_ERROR_STREAM_CONSUMED,
                   _("%s; the data was being read as it was sent, and has to be read and sent "
                     "again"),
                   cause != NULL ? cause->message : _("Sending failed"));
      return FALSE;
    }
  return TRUE;
}

/* S3BodyFunc: a body that streams @source, each time from its first byte
 * (streamed_body_check() tells when that is no longer possible). */
static GInputStream *
streamed_body (gpointer user_data, GError **error)
{
  StreamedPut *put = user_data;

  if (!streamed_body_check (put, NULL, error))
    return NULL;
  g_clear_object (&put->body);
  put->body = fs_s3_body_stream_new (put->head, put->source, put->length);
  return g_object_ref (G_INPUT_STREAM (put->body));
}

/* An object larger than multipart-threshold whose @length was announced
 * (fs-stream-length.h: a file sealed raw): ONE PUT whose body is @head, then
 * @source as it is read, so that producing and sending overlap, with nothing
 * spooled. Its payload is UNSIGNED-PAYLOAD: its SHA-256 would only be known
 * at the end (AES-GCM authenticates every chunk of the object end to end
 * instead). */
static gboolean
put_streamed (FsStorageS3 *self, const gchar *key, GBytes *head, GInputStream *source,
              guint64 length, const gchar *expected_version, gchar **new_version,
              GCancellable *cancellable, GError **error)
{
  StreamedPut put = { .head = head, .source = source, .length = length };
  S3Request req = { .method = "PUT",
                    .key = key,
                    .body_func = streamed_body,
                    .body_check = streamed_body_check,
                    .body_data = &put,
                    .body_length = length,
                    .body_sha256 = FS_SIGV4_UNSIGNED_PAYLOAD };
  gboolean ok = put_object (self, &req, expected_version, new_version, cancellable, error);

  g_clear_object (&put.body);
  return ok;
}

static gboolean
fs_storage_s3_put (FsStorage *storage, const gchar *key, GInputStream *source,
                   const gchar *expected_version, gchar **new_version, GCancellable *cancellable,
                   GError **error)
{
  FsStorageS3 *self = FS_STORAGE_S3 (storage);
  gsize cap, first;
  guint8 *buf;
  gssize n;

  if (!check_configured (self, error) || !check_key (key, error))
    return FALSE;

  /* A first small read: a source whose length it announced then
   * (fs-stream-length.h) and that is too large for memory is streamed up from
   * here, without holding more of it. */
  cap = (gsize)self->multipart_threshold + 1;
  first = MIN (cap, FIRST_READ);
  buf = g_malloc (first);
  n = read_full (source, buf, first, cancellable, error);
  if (n == (gssize)first)
    {
      guint64 length;

      if (fs_stream_get_length (source, &length) && length > self->multipart_threshold
          && length <= self->single_put_max)
        {
          g_autoptr (GBytes) head = g_bytes_new_take (buf, (gsize)n);
          return put_streamed (self, key, head, source, length, expected_version, new_version,
                               cancellable, error);
        }
    }
  /* Otherwise read one byte more than the threshold: if the source ends
   * first, it is a single PUT from memory whose payload hash is known;
   * otherwise it is spooled (see put_spooled()) or, with spooling off, a
   * multipart upload. */
  if (n == (gssize)first && first < cap)
    {
      gssize more;

      buf = g_realloc (buf, cap);
      more = read_full (source, buf + n, cap - first, cancellable, error);
      n = more < 0 ? more : n + more;
    }
  if (n < 0)
    {
      g_free (buf);
      g_prefix_error (error, _("Reading the data for ‘%s’: "), key);
      return FALSE;
    }
  if ((gsize)n <= self->multipart_threshold)
    {
      g_autoptr (GBytes) body = g_bytes_new_take (g_realloc (buf, MAX (n, 1)), (gsize)n);
      return put_single (self, key, body, expected_version, new_version, cancellable, error);
    }
  {
    g_autoptr (GBytes) head = g_bytes_new_take (buf, (gsize)n);
    GInputStream *sources[] = { source, NULL };

    if (self->single_put_max > self->multipart_threshold)
      return put_spooled (self, key, g_steal_pointer (&head), source, expected_version,
                          new_version, cancellable, error);
    return put_multipart (self, key, head, sources, expected_version, new_version, cancellable,
                          error);
  }
}

/* ---- delete ------------------------------------------------------------------ */

static gboolean
fs_storage_s3_delete (FsStorage *storage, const gchar *key, GError **error)
{
  FsStorageS3 *self = FS_STORAGE_S3 (storage);
  S3Request req = { .method = "DELETE", .key = key, .ok_status = 404 };
  g_auto (S3Response) resp = { 0 };

  return check_configured (self, error) && check_key (key, error)
         && s3_execute (self, &req, &resp, NULL, error);
}

static gchar *
fs_storage_s3_presign (FsStorage *storage, const gchar *method, const gchar *key,
                       guint expires_seconds, GError **error)
{
  FsStorageS3 *self = FS_STORAGE_S3 (storage);
  g_autoptr (GDateTime) now = g_date_time_new_now_utc ();
  g_autofree gchar *amz_date = NULL;
  g_autofree gchar *path = NULL;
  g_autofree gchar *host = NULL;
  g_autofree gchar *base = NULL;
  const FsSigV4Credentials creds = { self->access_key, self->secret_key, self->region, "s3" };

  if (!check_configured (self, error))
    return NULL;
  if (self->presigned_key != NULL || (strcmp (method, "GET") != 0 && strcmp (method, "DELETE") != 0)
      || expires_seconds == 0 || expires_seconds > 7 * 24 * 3600)
    {
      g_set_error (error, FS_STORAGE_ERROR, FS_STORAGE_ERROR_NOT_SUPPORTED,
                   _("Cannot presign %s for %u s"), method, expires_seconds);
      return NULL;
    }
  amz_date = fs_sigv4_amz_date (now);
  path = request_path (self, key);
  host = request_host (self);
  base = g_strdup_printf ("%s://%s", self->scheme, host);
  return fs_sigv4_presign_url (&creds, amz_date, expires_seconds, method, base, host, path, NULL);
}

static gboolean
fs_storage_s3_supports_conditional_put (FsStorage *storage)
{
  return FS_STORAGE_S3 (storage)->conditional_put;
}

/* ---- GObject ------------------------------------------------------------------ */

guint64
fs_storage_s3_get_retries (FsStorageS3 *self)
{
  guint64 n;

  g_return_val_if_fail (FS_IS_STORAGE_S3 (self), 0);
  g_mutex_lock (&self->lock);
  n = self->retries;
  g_mutex_unlock (&self->lock);
  return n;
}

static void
fs_storage_s3_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  FsStorageS3 *self = FS_STORAGE_S3 (object);

  g_mutex_lock (&self->lock);
  switch (prop_id)
    {
    case PROP_RETRIES:
      g_value_set_uint64 (value, self->retries);
      break;
    case PROP_REQUESTS:
      g_value_set_uint64 (value, self->requests);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
  g_mutex_unlock (&self->lock);
}

static void
fs_storage_s3_finalize (GObject *object)
{
  FsStorageS3 *self = FS_STORAGE_S3 (object);

  g_clear_object (&self->session);
  g_free (self->scheme);
  g_free (self->endpoint_host);
  g_free (self->bucket);
  g_free (self->region);
  g_free (self->access_key);
  if (self->secret_key != NULL)
    memset (self->secret_key, 0, strlen (self->secret_key));
  g_free (self->secret_key);
  g_free (self->state_file);
  g_free (self->spool_dir);
  g_free (self->presigned_key);
  if (self->presigned_get != NULL)
    memset (self->presigned_get, 0, strlen (self->presigned_get));
  g_free (self->presigned_get);
  if (self->presigned_delete != NULL)
    memset (self->presigned_delete, 0, strlen (self->presigned_delete));
  g_free (self->presigned_delete);
  g_hash_table_unref (self->uploads);
  g_mutex_clear (&self->lock);
  G_OBJECT_CLASS (fs_storage_s3_parent_class)->finalize (object);
}

static void
fs_storage_s3_class_init (FsStorageS3Class *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = fs_storage_s3_finalize;
  object_class->get_property = fs_storage_s3_get_property;
  props[PROP_RETRIES] = g_param_spec_uint64 ("retries", NULL, NULL, 0, G_MAXUINT64, 0,
                                             G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  props[PROP_REQUESTS] = g_param_spec_uint64 ("requests", NULL, NULL, 0, G_MAXUINT64, 0,
                                              G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, props);
}

static void
fs_storage_s3_init (FsStorageS3 *self)
{
  g_mutex_init (&self->lock);
  self->uploads = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
}

static void
fs_storage_s3_iface_init (FsStorageInterface *iface)
{
  iface->configure = fs_storage_s3_configure;
  iface->list = fs_storage_s3_list;
  iface->stat = fs_storage_s3_stat;
  iface->get = fs_storage_s3_get;
  iface->put = fs_storage_s3_put;
  iface->delete = fs_storage_s3_delete;
  iface->supports_conditional_put = fs_storage_s3_supports_conditional_put;
  iface->presign = fs_storage_s3_presign;
}

G_MODULE_EXPORT GType fs_plugin_register (void);

GType
fs_plugin_register (void)
{
  return FS_TYPE_STORAGE_S3;
}
