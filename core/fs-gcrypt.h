/* One-time libgcrypt initialization shared by the core and the plugins. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Initializes libgcrypt (version check, no secure memory pool) once; safe
 * from any thread and when the application already initialized it. */
void fs_gcrypt_init (void);

G_END_DECLS
