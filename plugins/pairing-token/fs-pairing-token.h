/* FsPairingToken: the FsPairing implementation (short token, Argon2id, AES-256-GCM). */
#pragma once

#include "fs-pairing.h"

G_BEGIN_DECLS

#define FS_TYPE_PAIRING_TOKEN (fs_pairing_token_get_type ())
G_DECLARE_FINAL_TYPE (FsPairingToken, fs_pairing_token, FS, PAIRING_TOKEN, GObject)

G_END_DECLS
