/* FsCryptoAes: the FsCrypto implementation (AES-256-GCM, HKDF-SHA256, zlib-format
 * compression by ISA-L's igzip, inflated by libdeflate). */
#pragma once

#include "fs-crypto.h"

G_BEGIN_DECLS

#define FS_TYPE_CRYPTO_AES (fs_crypto_aes_get_type ())
G_DECLARE_FINAL_TYPE (FsCryptoAes, fs_crypto_aes, FS, CRYPTO_AES, GObject)

G_END_DECLS
