/* Error domain quarks of libfoldersync. */
#include "fs-error.h"

G_DEFINE_QUARK (fs-storage-error-quark, fs_storage_error)
G_DEFINE_QUARK (fs-crypto-error-quark, fs_crypto_error)
G_DEFINE_QUARK (fs-engine-error-quark, fs_engine_error)
G_DEFINE_QUARK (fs-index-error-quark, fs_index_error)
G_DEFINE_QUARK (fs-plugin-error-quark, fs_plugin_error)
G_DEFINE_QUARK (fs-pairing-error-quark, fs_pairing_error)
