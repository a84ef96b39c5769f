/* FsPairingToken: the pairing-token plugin. Seals an opaque envelope (the
 * folder key and settings, JSON by the caller) with AES-256-GCM under a key
 * derived from a short token with Argon2id, stores it in the bucket-level
 * pairing area, and redeems, expires and cleans it up. The format is
 * docs/format.md, "Pairing envelopes". */
#include "config.h"

#include <string.h>

#include <gcrypt.h>
#include <gmodule.h>
#include <glib/gi18n-lib.h>

#include "fs-error.h"
#include "fs-gcrypt.h"
#include "fs-pairing-token.h"
#include "fs-token-code.h"
#include "fs-types.h"

#define PAIRING_AREA "foldersync-pairing/"
#define ENVELOPE_MAGIC "FSP1"
#define MAGIC_SIZE 4
#define NONCE_SIZE 12
#define TAG_SIZE 16
/* magic || u64be expires || nonce */
#define HEADER_SIZE (MAGIC_SIZE + 8 + NONCE_SIZE)
#define OVERHEAD (HEADER_SIZE + TAG_SIZE)
#define LOOKUP_ID_SIZE 16
#define KEY_SIZE 32
#define SEED_SIZE 32

/* Format version 1: fixed, because the reader must derive the object's
 * name before it can read anything from the object. */
#define ARGON2_SALT "foldersync pairing v1"
#define ARGON2_ITERATIONS 3
#define ARGON2_MEMORY_KIB (64 * 1024)
#define ARGON2_LANES 1
#define INFO_LOOKUP "foldersync pairing v1 lookup"
#define INFO_KEY "foldersync pairing v1 envelope"

/* A put that finds the name taken (a 2^-55 chance per live envelope) retries
 * with a new token. */
#define ISSUE_ATTEMPTS 3

struct _FsPairingToken {
  GObject parent_instance;

  /* Argon2id memory; only tests change it (property "argon2-memory-kib"). */
  guint argon2_memory_kib;
};

enum {
  PROP_0,
  PROP_ARGON2_MEMORY_KIB,
  N_PROPS,
};

static GParamSpec *props[N_PROPS];

typedef struct {
  guint8 lookup_id[LOOKUP_ID_SIZE];
  guint8 key[KEY_SIZE];
  gchar *object_key;
} EnvelopeKeys;

static void fs_pairing_token_iface_init (FsPairingInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (FsPairingToken, fs_pairing_token, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (FS_TYPE_PAIRING,
                                                      fs_pairing_token_iface_init))

static void
envelope_keys_clear (EnvelopeKeys *keys)
{
  explicit_bzero (keys->lookup_id, sizeof keys->lookup_id);
  explicit_bzero (keys->key, sizeof keys->key);
  g_clear_pointer (&keys->object_key, g_free);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (EnvelopeKeys, envelope_keys_clear)

static void
hmac_sha256 (const guint8 *key, gsize key_len, const guint8 *data, gsize len, guint8 out[32])
{
  gcry_md_hd_t md = NULL;

  if (gcry_md_open (&md, GCRY_MD_SHA256, GCRY_MD_FLAG_HMAC) != 0)
    g_error ("libgcrypt cannot open HMAC-SHA256");
  if (gcry_md_setkey (md, key, key_len) != 0)
    g_error ("libgcrypt refused an HMAC key");
  gcry_md_write (md, data, len);
  memcpy (out, gcry_md_read (md, GCRY_MD_SHA256), 32);
  gcry_md_close (md); /* wipes its state */
}

/* HKDF-SHA256 (RFC 5869) with an empty salt, for at most 32 bytes of output:
 * PRK = HMAC(32 zero bytes, IKM); OKM = HMAC(PRK, info || 0x01)[0..len]. */
static void
hkdf_sha256 (const guint8 *ikm, gsize ikm_len, const gchar *info, guint8 *out, gsize len)
{
  static const guint8 zero_salt[32] = { 0 };
  gsize info_len = strlen (info);
  guint8 prk[32];
  guint8 t[32];
  g_autofree guint8 *block = g_malloc (info_len + 1);

  g_assert (len <= 32);
  hmac_sha256 (zero_salt, sizeof zero_salt, ikm, ikm_len, prk);
  memcpy (block, info, info_len);
  block[info_len] = 1;
  hmac_sha256 (prk, sizeof prk, block, info_len + 1, t);
  memcpy (out, t, len);
  explicit_bzero (prk, sizeof prk);
  explicit_bzero (t, sizeof t);
}

/* Argon2id over the token's secret symbols, then HKDF into the lookup id
 * (which names the object) and the envelope key. Both come from the
 * Argon2id output, so the public name offers no shortcut around it. */
static gboolean
derive_keys (FsPairingToken *self, const guint8 symbols[FS_TOKEN_SYMBOLS], EnvelopeKeys *keys,
             GError **error)
{
  const unsigned long params[4]
    = { SEED_SIZE, ARGON2_ITERATIONS, self->argon2_memory_kib, ARGON2_LANES };
  gchar password[FS_TOKEN_SECRET_SYMBOLS];
  guint8 seed[SEED_SIZE];
  gcry_kdf_hd_t hd = NULL;
  gcry_error_t err;
  gint64 start = g_get_monotonic_time ();
  g_autofree gchar *id = NULL;

  fs_gcrypt_init ();
  for (guint i = 0; i < FS_TOKEN_SECRET_SYMBOLS; i++)
    password[i] = FS_TOKEN_ALPHABET[symbols[i] & 31];

  /* gcry_kdf_derive() does not know Argon2 in libgcrypt 1.10: the
   * open/compute/final API does. */
  err = gcry_kdf_open (&hd, GCRY_KDF_ARGON2, GCRY_KDF_ARGON2ID, params, G_N_ELEMENTS (params),
                       password, sizeof password, ARGON2_SALT, strlen (ARGON2_SALT), NULL, 0,
                       NULL, 0);
  if (err == 0)
    err = gcry_kdf_compute (hd, NULL);
  if (err == 0)
    err = gcry_kdf_final (hd, sizeof seed, seed);
  if (hd != NULL)
    gcry_kdf_close (hd);
  explicit_bzero (password, sizeof password);
  if (err != 0)
    {
      explicit_bzero (seed, sizeof seed);
      g_set_error (error, FS_PAIRING_ERROR, FS_PAIRING_ERROR_FAILED,
                   _("Cannot derive the pairing key (Argon2id, %u MiB): %s"),
                   self->argon2_memory_kib / 1024, gcry_strerror (err));
      return FALSE;
    }

  hkdf_sha256 (seed, sizeof seed, INFO_LOOKUP, keys->lookup_id, sizeof keys->lookup_id);
  hkdf_sha256 (seed, sizeof seed, INFO_KEY, keys->key, sizeof keys->key);
  explicit_bzero (seed, sizeof seed);

  id = fs_base32_encode (keys->lookup_id, sizeof keys->lookup_id);
  keys->object_key = g_strconcat (PAIRING_AREA, id, NULL);
  g_debug ("Argon2id (t=%u, m=%u KiB, p=%u) took %.3f s", ARGON2_ITERATIONS,
           self->argon2_memory_kib, ARGON2_LANES,
           (g_get_monotonic_time () - start) / (double) G_USEC_PER_SEC);
  return TRUE;
}

static void
put_u64_be (guint8 *p, guint64 v)
{
  for (guint i = 0; i < 8; i++)
    p[i] = (guint8) (v >> (56 - 8 * i));
}

static guint64
get_u64_be (const guint8 *p)
{
  guint64 v = 0;

  for (guint i = 0; i < 8; i++)
    v = (v << 8) | p[i];
  return v;
}

/* AD = magic || lookup id || u64be expires */
static void
envelope_ad (const EnvelopeKeys *keys, const guint8 *expires_be,
             guint8 ad[MAGIC_SIZE + LOOKUP_ID_SIZE + 8])
{
  memcpy (ad, ENVELOPE_MAGIC, MAGIC_SIZE);
  memcpy (ad + MAGIC_SIZE, keys->lookup_id, LOOKUP_ID_SIZE);
  memcpy (ad + MAGIC_SIZE + LOOKUP_ID_SIZE, expires_be, 8);
}

static gboolean
gcm_run (const EnvelopeKeys *keys, gboolean encrypt, const guint8 *nonce, const guint8 *ad,
         gsize ad_len, guint8 *data, gsize len, guint8 tag[TAG_SIZE])
{
  gcry_cipher_hd_t hd = NULL;
  gboolean ok = FALSE;

  if (gcry_cipher_open (&hd, GCRY_CIPHER_AES256, GCRY_CIPHER_MODE_GCM, 0) != 0)
    return FALSE;
  if (gcry_cipher_setkey (hd, keys->key, KEY_SIZE) == 0
      && gcry_cipher_setiv (hd, nonce, NONCE_SIZE) == 0
      && gcry_cipher_authenticate (hd, ad, ad_len) == 0 && gcry_cipher_final (hd) == 0)
    {
      if (encrypt)
        ok = gcry_cipher_encrypt (hd, data, len, NULL, 0) == 0
             && gcry_cipher_gettag (hd, tag, TAG_SIZE) == 0;
      else
        ok = gcry_cipher_decrypt (hd, data, len, NULL, 0) == 0
             && gcry_cipher_checktag (hd, tag, TAG_SIZE) == 0;
    }
  gcry_cipher_close (hd); /* wipes the key schedule */
  return ok;
}

static GBytes *
seal_envelope (const EnvelopeKeys *keys, GBytes *plaintext, guint64 expires, GError **error)
{
  gsize len = 0;
  const guint8 *data = g_bytes_get_data (plaintext, &len);
  gsize total = OVERHEAD + len;
  guint8 *out = g_malloc (total);
  guint8 ad[MAGIC_SIZE + LOOKUP_ID_SIZE + 8];

  memcpy (out, ENVELOPE_MAGIC, MAGIC_SIZE);
  put_u64_be (out + MAGIC_SIZE, expires);
  gcry_create_nonce (out + MAGIC_SIZE + 8, NONCE_SIZE);
  if (len > 0)
    memcpy (out + HEADER_SIZE, data, len);
  envelope_ad (keys, out + MAGIC_SIZE, ad);
  if (!gcm_run (keys, TRUE, out + MAGIC_SIZE + 8, ad, sizeof ad, out + HEADER_SIZE, len,
                out + HEADER_SIZE + len))
    {
      explicit_bzero (out, total);
      g_free (out);
      g_set_error_literal (error, FS_PAIRING_ERROR, FS_PAIRING_ERROR_FAILED,
                           _("Cannot seal the pairing envelope: libgcrypt AES-256-GCM failed"));
      return NULL;
    }
  return g_bytes_new_take (out, total);
}

static guint64
now_unix (void)
{
  return (guint64) (g_get_real_time () / G_USEC_PER_SEC);
}

static gchar *
format_time (guint64 unix_seconds)
{
  g_autoptr (GDateTime) dt = g_date_time_new_from_unix_utc ((gint64) MIN (unix_seconds,
                                                                          253402300799));
  return dt != NULL ? g_date_time_format_iso8601 (dt) : g_strdup (_("(out of range)"));
}

/* ---- FsPairing ---------------------------------------------------------------- */

static gchar *
fs_pairing_token_issue (FsPairing *pairing, FsStorage *storage, GBytes *envelope,
                        guint ttl_seconds, guint64 *expires_out, gchar **object_key,
                        GError **error)
{
  FsPairingToken *self = FS_PAIRING_TOKEN (pairing);
  const gchar *expected = fs_storage_supports_conditional_put (storage) ? FS_STORAGE_IF_ABSENT
                                                                         : NULL;

  if (ttl_seconds == 0 || ttl_seconds > FS_PAIRING_MAX_TTL)
    {
      g_set_error (error, FS_PAIRING_ERROR, FS_PAIRING_ERROR_INVALID,
                   _("A pairing token lives 1 to %u seconds, not %u"), FS_PAIRING_MAX_TTL,
                   ttl_seconds);
      return NULL;
    }
  if (g_bytes_get_size (envelope) > FS_PAIRING_MAX_ENVELOPE)
    {
      g_set_error (error, FS_PAIRING_ERROR, FS_PAIRING_ERROR_INVALID,
                   _("A pairing envelope holds at most %u bytes, not %zu"),
                   FS_PAIRING_MAX_ENVELOPE, g_bytes_get_size (envelope));
      return NULL;
    }

  for (guint attempt = 1;; attempt++)
    {
      guint8 symbols[FS_TOKEN_SYMBOLS];
      g_auto (EnvelopeKeys) keys = { 0 };
      g_autoptr (GBytes) sealed = NULL;
      g_autoptr (GError) local_error = NULL;
      guint64 expires;

      fs_token_generate (symbols);
      if (!derive_keys (self, symbols, &keys, error))
        {
          explicit_bzero (symbols, sizeof symbols);
          return NULL;
        }
      /* The clock is read after the slow derivation, so the token lives its
       * full ttl from the moment it is stored. */
      expires = now_unix () + ttl_seconds;
      sealed = seal_envelope (&keys, envelope, expires, error);
      if (sealed == NULL)
        {
          explicit_bzero (symbols, sizeof symbols);
          return NULL;
        }
      if (fs_storage_put_bytes (storage, keys.object_key, sealed, expected, NULL, &local_error))
        {
          gchar *token = fs_token_format (symbols);

          explicit_bzero (symbols, sizeof symbols);
          g_debug ("Stored pairing envelope %s, expires %" G_GUINT64_FORMAT, keys.object_key,
                   expires);
          if (expires_out != NULL)
            *expires_out = expires;
          if (object_key != NULL)
            *object_key = g_steal_pointer (&keys.object_key);
          return token;
        }
      explicit_bzero (symbols, sizeof symbols);
      if (!g_error_matches (local_error, FS_STORAGE_ERROR, FS_STORAGE_ERROR_PRECONDITION_FAILED)
          || attempt == ISSUE_ATTEMPTS)
        {
          g_propagate_prefixed_error (error, g_steal_pointer (&local_error),
                                      _("Cannot store the pairing envelope: "));
          return NULL;
        }
      g_debug ("Pairing envelope %s already exists; trying another token", keys.object_key);
    }
}

static gboolean
fs_pairing_token_check_token (FsPairing *pairing, const gchar *token, gchar **normalized,
                              GError **error)
{
  guint8 symbols[FS_TOKEN_SYMBOLS];
  gboolean ok = fs_token_parse (token, symbols, error);

  if (ok && normalized != NULL)
    *normalized = fs_token_format (symbols);
  explicit_bzero (symbols, sizeof symbols);
  return ok;
}

static GBytes *
fs_pairing_token_redeem (FsPairing *pairing, FsStorage *storage, const gchar *token,
                         GError **error)
{
  FsPairingToken *self = FS_PAIRING_TOKEN (pairing);
  guint8 symbols[FS_TOKEN_SYMBOLS];
  g_auto (EnvelopeKeys) keys = { 0 };
  g_autoptr (GBytes) sealed = NULL;
  g_autoptr (GError) local_error = NULL;
  g_autoptr (GError) delete_error = NULL;
  guint8 ad[MAGIC_SIZE + LOOKUP_ID_SIZE + 8];
  guint8 tag[TAG_SIZE];
  const guint8 *data;
  gsize len = 0;
  gsize plain_len;
  guint8 *plain;
  guint64 expires, now;
  gboolean ok;

  /* Everything about the token is checked before any request. */
  if (!fs_token_parse (token, symbols, error))
    {
      explicit_bzero (symbols, sizeof symbols);
      return NULL;
    }
  ok = derive_keys (self, symbols, &keys, error);
  explicit_bzero (symbols, sizeof symbols);
  if (!ok)
    return NULL;

  sealed = fs_storage_get_bytes (storage, keys.object_key, OVERHEAD + FS_PAIRING_MAX_ENVELOPE,
                                 &local_error);
  if (sealed == NULL)
    {
      if (g_error_matches (local_error, FS_STORAGE_ERROR, FS_STORAGE_ERROR_NOT_FOUND))
        g_set_error_literal (error, FS_PAIRING_ERROR, FS_PAIRING_ERROR_NOT_FOUND,
                             _("No pairing envelope for this token: it was already used, it "
                                "expired and was cleaned up, or the token is mistyped"));
      else if (g_error_matches (local_error, FS_STORAGE_ERROR, FS_STORAGE_ERROR_INVALID))
        g_set_error (error, FS_PAIRING_ERROR, FS_PAIRING_ERROR_FAILED,
                     _("The pairing envelope %s is not a valid envelope: %s"), keys.object_key,
                     local_error->message);
      else
        g_propagate_prefixed_error (error, g_steal_pointer (&local_error),
                                    _("Cannot fetch the pairing envelope: "));
      return NULL;
    }

  data = g_bytes_get_data (sealed, &len);
  if (len < OVERHEAD || memcmp (data, ENVELOPE_MAGIC, MAGIC_SIZE) != 0)
    {
      g_set_error (error, FS_PAIRING_ERROR, FS_PAIRING_ERROR_FAILED,
                   _("The pairing envelope %s is not a version 1 envelope (bad magic or "
                      "%zu bytes): it was modified or damaged on the storage"),
                   keys.object_key, len);
      return NULL;
    }

  /* Authenticate first: only an envelope A really sealed is deleted by B. */
  plain_len = len - OVERHEAD;
  plain = g_malloc (plain_len + 1);
  memcpy (plain, data + HEADER_SIZE, plain_len);
  memcpy (tag, data + HEADER_SIZE + plain_len, TAG_SIZE);
  envelope_ad (&keys, data + MAGIC_SIZE, ad);
  if (!gcm_run (&keys, FALSE, data + MAGIC_SIZE + 8, ad, sizeof ad, plain, plain_len, tag))
    {
      explicit_bzero (plain, plain_len);
      g_free (plain);
      g_set_error (error, FS_PAIRING_ERROR, FS_PAIRING_ERROR_FAILED,
                   _("The pairing envelope %s failed authentication: it was modified or "
                      "damaged on the storage"),
                   keys.object_key);
      return NULL;
    }

  expires = get_u64_be (data + MAGIC_SIZE);
  now = now_unix ();
  if (now >= expires)
    {
      g_autofree gchar *expired_at = format_time (expires);
      g_autofree gchar *now_text = format_time (now);

      explicit_bzero (plain, plain_len);
      g_free (plain);
      if (!fs_storage_delete (storage, keys.object_key, &delete_error))
        g_warning ("Cannot delete the expired pairing envelope %s: %s", keys.object_key,
                   delete_error->message);
      g_set_error (error, FS_PAIRING_ERROR, FS_PAIRING_ERROR_EXPIRED,
                   _("The pairing token expired at %s (this device's clock says %s); generate "
                      "a new one"),
                   expired_at, now_text);
      return NULL;
    }

  /* Single use. If the delete fails the pairing still worked: the envelope
   * stays until it expires and the issuing device cleans it up. */
  if (!fs_storage_delete (storage, keys.object_key, &delete_error))
    g_warning ("Cannot delete the used pairing envelope %s (it is removed after it expires): %s",
               keys.object_key, delete_error->message);
  else
    g_debug ("Redeemed and deleted pairing envelope %s", keys.object_key);
  return g_bytes_new_with_free_func (plain, plain_len, g_free, plain);
}

/* The expiry of an envelope from its clear header, without any key. */
static gboolean
read_expiry (FsStorage *storage, const gchar *key, guint64 *expires, GError **error)
{
  g_autoptr (GInputStream) in = fs_storage_get (storage, key, 0, MAGIC_SIZE + 8, error);
  guint8 head[MAGIC_SIZE + 8];
  gsize got = 0;

  if (in == NULL || !g_input_stream_read_all (in, head, sizeof head, &got, NULL, error))
    return FALSE;
  if (got < sizeof head || memcmp (head, ENVELOPE_MAGIC, MAGIC_SIZE) != 0)
    {
      g_set_error (error, FS_PAIRING_ERROR, FS_PAIRING_ERROR_INVALID,
                   _("%s is not a version 1 pairing envelope"), key);
      return FALSE;
    }
  *expires = get_u64_be (head + MAGIC_SIZE);
  return TRUE;
}

static gboolean
fs_pairing_token_cleanup (FsPairing *pairing, FsStorage *storage, guint *n_removed,
                          GError **error)
{
  g_autoptr (GPtrArray) objects = NULL;
  guint64 now = now_unix ();
  guint removed = 0;

  if (n_removed != NULL)
    *n_removed = 0;
  objects = fs_storage_list_all (storage, PAIRING_AREA, NULL, error);
  if (objects == NULL)
    {
      g_prefix_error (error, _("Cannot list the pairing area %s: "), PAIRING_AREA);
      return FALSE;
    }
  for (guint i = 0; i < objects->len; i++)
    {
      FsStorageObject *obj = g_ptr_array_index (objects, i);
      g_autoptr (GError) local_error = NULL;
      guint64 expires = 0;

      if (obj->size < OVERHEAD)
        {
          g_debug ("Leaving %s alone: too short for a pairing envelope", obj->key);
          continue;
        }
      if (!read_expiry (storage, obj->key, &expires, &local_error))
        {
          /* Redeemed meanwhile, or not ours (a newer format): leave it. */
          if (g_error_matches (local_error, FS_STORAGE_ERROR, FS_STORAGE_ERROR_NOT_FOUND)
              || local_error->domain == FS_PAIRING_ERROR)
            {
              g_debug ("Leaving %s alone: %s", obj->key, local_error->message);
              continue;
            }
          g_propagate_prefixed_error (error, g_steal_pointer (&local_error),
                                      _("Cannot read the pairing envelope %s: "), obj->key);
          return FALSE;
        }
      if (now < expires)
        continue;
      if (!fs_storage_delete (storage, obj->key, error))
        {
          g_prefix_error (error, _("Cannot delete the expired pairing envelope %s: "), obj->key);
          return FALSE;
        }
      removed++;
      if (n_removed != NULL)
        *n_removed = removed;
    }
  if (removed > 0)
    g_debug ("Removed %u expired pairing envelope(s)", removed);
  return TRUE;
}

/* ---- GObject ------------------------------------------------------------------ */

static void
fs_pairing_token_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  FsPairingToken *self = FS_PAIRING_TOKEN (object);

  switch (prop_id)
    {
    case PROP_ARGON2_MEMORY_KIB:
      g_value_set_uint (value, self->argon2_memory_kib);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
fs_pairing_token_set_property (GObject *object, guint prop_id, const GValue *value,
                               GParamSpec *pspec)
{
  FsPairingToken *self = FS_PAIRING_TOKEN (object);

  switch (prop_id)
    {
    case PROP_ARGON2_MEMORY_KIB:
      self->argon2_memory_kib = g_value_get_uint (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
fs_pairing_token_class_init (FsPairingTokenClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->get_property = fs_pairing_token_get_property;
  object_class->set_property = fs_pairing_token_set_property;

  /* For tests only (a faster derivation under sanitizers). The format fixes
   * 64 MiB: tokens issued with another value are not found by a device that
   * uses the default. Set it before the first call; it is not locked. */
  props[PROP_ARGON2_MEMORY_KIB]
    = g_param_spec_uint ("argon2-memory-kib", NULL, NULL, 8, 4 * 1024 * 1024,
                         ARGON2_MEMORY_KIB,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, props);
}

static void
fs_pairing_token_init (FsPairingToken *self)
{
  self->argon2_memory_kib = ARGON2_MEMORY_KIB;
}

static void
fs_pairing_token_iface_init (FsPairingInterface *iface)
{
  iface->issue = fs_pairing_token_issue;
  iface->redeem = fs_pairing_token_redeem;
  iface->check_token = fs_pairing_token_check_token;
  iface->cleanup = fs_pairing_token_cleanup;
}

G_MODULE_EXPORT GType fs_plugin_register (void);

GType
fs_plugin_register (void)
{
  return FS_TYPE_PAIRING_TOKEN;
}
