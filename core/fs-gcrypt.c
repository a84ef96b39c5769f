/* One-time libgcrypt initialization. */
#include <gcrypt.h>

#include "fs-gcrypt.h"

void
fs_gcrypt_init (void)
{
  static gsize done = 0;

  if (g_once_init_enter (&done))
    {
      if (!gcry_control (GCRYCTL_INITIALIZATION_FINISHED_P))
        {
          if (gcry_check_version ("1.10.0") == NULL)
            g_error ("libgcrypt is older than 1.10.0");
          /* Keys live in ordinary memory that we wipe; no locked pool needed. */
          gcry_control (GCRYCTL_DISABLE_SECMEM, 0);
          gcry_control (GCRYCTL_INITIALIZATION_FINISHED, 0);
        }
      g_once_init_leave (&done, 1);
    }
}
