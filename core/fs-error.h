/* Error domains of libfoldersync: one per concern, codes a caller can act on. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define FS_STORAGE_ERROR (fs_storage_error_quark ())
#define FS_CRYPTO_ERROR (fs_crypto_error_quark ())
#define FS_ENGINE_ERROR (fs_engine_error_quark ())
#define FS_INDEX_ERROR (fs_index_error_quark ())
#define FS_PLUGIN_ERROR (fs_plugin_error_quark ())
#define FS_PAIRING_ERROR (fs_pairing_error_quark ())

typedef enum {
  FS_STORAGE_ERROR_FAILED,
  FS_STORAGE_ERROR_NOT_FOUND,           /* no such object */
  FS_STORAGE_ERROR_PRECONDITION_FAILED, /* conditional put lost */
  FS_STORAGE_ERROR_AUTH,
  FS_STORAGE_ERROR_TRANSIENT,           /* worth retrying later */
  FS_STORAGE_ERROR_NO_SPACE,
  FS_STORAGE_ERROR_INVALID,             /* bad key, bad argument */
  FS_STORAGE_ERROR_NOT_SUPPORTED,
  FS_STORAGE_ERROR_NO_BUCKET,           /* the store/bucket does not exist */
  /* A transient failure of a put that had read part of its source stream:
   * put again with a fresh stream. */
  FS_STORAGE_ERROR_STREAM_CONSUMED,
} FsStorageError;

typedef enum {
  FS_CRYPTO_ERROR_FAILED,
  FS_CRYPTO_ERROR_INVALID_KEY, /* malformed key material */
  FS_CRYPTO_ERROR_WRONG_KEY,   /* a well-formed key that is not this store's */
  FS_CRYPTO_ERROR_CORRUPT,     /* authentication failed, truncated, reordered, bad format */
} FsCryptoError;

typedef enum {
  FS_ENGINE_ERROR_FAILED,
  FS_ENGINE_ERROR_INVALID_ARGUMENT,
  FS_ENGINE_ERROR_KEY_FILE,   /* missing, short, non-hex or world-readable key file */
  FS_ENGINE_ERROR_WRONG_KEY,  /* the store was created with another key */
  FS_ENGINE_ERROR_NOT_A_STORE,
  FS_ENGINE_ERROR_FOLDER,     /* missing or unwritable folder */
  FS_ENGINE_ERROR_ROLLBACK,   /* the server served an older journal than we saw */
  FS_ENGINE_ERROR_PARTIAL,    /* the sync finished but some files failed */
  FS_ENGINE_ERROR_BUSY,       /* another process syncs this folder */
} FsEngineError;

typedef enum {
  FS_INDEX_ERROR_FAILED,
  FS_INDEX_ERROR_SCHEMA_TOO_NEW,
  FS_INDEX_ERROR_CORRUPT,
} FsIndexError;

typedef enum {
  FS_PLUGIN_ERROR_NOT_FOUND,
  FS_PLUGIN_ERROR_INVALID,
} FsPluginError;

typedef enum {
  FS_PAIRING_ERROR_INVALID,   /* malformed or mistyped token (caught locally), bad argument */
  FS_PAIRING_ERROR_NOT_FOUND, /* no envelope for this token: used, cleaned up, or never issued */
  FS_PAIRING_ERROR_EXPIRED,   /* the envelope's expiry has passed (by the reader's clock) */
  FS_PAIRING_ERROR_FAILED,    /* damaged or modified envelope, key derivation failure */
} FsPairingError;

GQuark fs_storage_error_quark (void);
GQuark fs_crypto_error_quark (void);
GQuark fs_engine_error_quark (void);
GQuark fs_index_error_quark (void);
GQuark fs_plugin_error_quark (void);
GQuark fs_pairing_error_quark (void);

G_END_DECLS
