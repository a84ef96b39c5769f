/* FsCrypto: the interface of the crypto plugin (crypto-aes): subkeys, object
 * names, streaming seal/open of file contents, small sealed records.
 * The format is specified in docs/format.md. Thread-safe once a key is set. */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define FS_TYPE_CRYPTO (fs_crypto_get_type ())
G_DECLARE_INTERFACE (FsCrypto, fs_crypto, FS, CRYPTO, GObject)

#define FS_CRYPTO_KEY_SIZE 32
#define FS_CRYPTO_OBJECT_NONCE_SIZE 16

struct _FsCryptoInterface {
  GTypeInterface parent_iface;

  gboolean (*set_key) (FsCrypto *self, const guint8 *key, gsize key_len, GError **error);
  gchar *(*get_key_id) (FsCrypto *self);
  gchar *(*object_stem) (FsCrypto *self, const gchar *normalized_path);
  GInputStream *(*seal_stream) (FsCrypto *self, GBytes *header, GInputStream *plain,
                                const guint8 *object_nonce, GError **error);
  GInputStream *(*open_stream) (FsCrypto *self, GInputStream *sealed, GBytes **header,
                                GCancellable *cancellable, GError **error);
  GBytes *(*seal_record) (FsCrypto *self, GBytes *plain, const gchar *context, GError **error);
  GBytes *(*open_record) (FsCrypto *self, GBytes *sealed, const gchar *context, GError **error);
};

/* Set the 32-byte master key; derives the subkeys. */
gboolean fs_crypto_set_key (FsCrypto *self, const guint8 *key, gsize key_len, GError **error);

/* Public identifier of the key (lowercase hex), stored in the store's config
 * object so a device with another key is refused before touching a file. */
gchar *fs_crypto_get_key_id (FsCrypto *self);

/* Keyed hash of an NFC-normalized relative path, lowercase base32, no padding:
 * the stem of every object name for that path. */
gchar *fs_crypto_object_stem (FsCrypto *self, const gchar *normalized_path);

/* A stream of the sealed object: header (opaque bytes, encrypted), then the
 * content of @plain compressed and sealed chunk by chunk as it is read.
 * @object_nonce (FS_CRYPTO_OBJECT_NONCE_SIZE bytes) is random when NULL; tests
 * pass a fixed one for vectors. */
GInputStream *fs_crypto_seal_stream (FsCrypto *self, GBytes *header, GInputStream *plain,
                                     const guint8 *object_nonce, GError **error);

/* Reads and authenticates the header from @sealed (returned in @header), and
 * returns a stream of the plaintext. Reading it fails with
 * FS_CRYPTO_ERROR_CORRUPT on any tampering, truncation or reordering. */
GInputStream *fs_crypto_open_stream (FsCrypto *self, GInputStream *sealed, GBytes **header,
                                     GCancellable *cancellable, GError **error);

/* Small authenticated blobs (journal records, snapshots). @context is bound
 * in as associated data (e.g. the record's key) so a record cannot be moved. */
GBytes *fs_crypto_seal_record (FsCrypto *self, GBytes *plain, const gchar *context,
                               GError **error);
GBytes *fs_crypto_open_record (FsCrypto *self, GBytes *sealed, const gchar *context,
                               GError **error);

G_END_DECLS
