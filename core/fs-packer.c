/* FsPacker: small sealed objects into pack objects (see fs-packer.h). */
#include "config.h"

#include <gcrypt.h>

#include "fs-gcrypt.h"
#include "fs-packer.h"
#include "fs-types.h"

typedef struct {
  gchar *object; /* relative to the prefix */
  GByteArray *data;
  guint members;
} Pack;

struct _FsPacker {
  FsStorage *storage;
  gchar *prefix;
  gsize max_bytes;
  guint max_members;

  GMutex lock;
  GCond cond;
  Pack *open;       /* under lock */
  guint writing;    /* packs being written, under lock */
  GError *failure;  /* the first failed write, under lock; sticky */
  guint written;    /* packs stored, under lock */
};

static void
pack_free (Pack *pack)
{
  g_free (pack->object);
  g_byte_array_unref (pack->data);
  g_free (pack);
}

static Pack *
pack_new (void)
{
  Pack *pack = g_new0 (Pack, 1);
  guint8 id[16];
  g_autofree gchar *name = NULL;

  /* Random names, like version ids: a pack's name says nothing of its members. */
  fs_gcrypt_init ();
  gcry_create_nonce (id, sizeof id);
  name = fs_base32_encode (id, sizeof id);
  pack->object = g_strdup_printf ("p/%.2s/%s", name, name);
  pack->data = g_byte_array_new ();
  return pack;
}

FsPacker *
fs_packer_new (FsStorage *storage, const gchar *prefix, gsize max_bytes, guint max_members)
{
  FsPacker *self;

  g_return_val_if_fail (FS_IS_STORAGE (storage), NULL);
  self = g_new0 (FsPacker, 1);
  self->storage = g_object_ref (storage);
  self->prefix = g_strdup (prefix != NULL ? prefix : "");
  self->max_bytes = MAX (max_bytes, 1);
  self->max_members = MAX (max_members, 1);
  g_mutex_init (&self->lock);
  g_cond_init (&self->cond);
  return self;
}

/* Writes @pack (taken) outside the lock; the caller counted it in `writing`. */
static gboolean
write_pack (FsPacker *self, Pack *pack, GCancellable *cancellable, GError **error)
{
  g_autofree gchar *key = g_strconcat (self->prefix, pack->object, NULL);
  g_autoptr(GBytes) bytes = g_byte_array_free_to_bytes (g_steal_pointer (&pack->data));
  g_autoptr(GInputStream) in = g_memory_input_stream_new_from_bytes (bytes);
  g_autoptr(GError) local_error = NULL;
  gboolean ok;

  g_debug ("writing pack %s: %u members, %" G_GSIZE_FORMAT " bytes", pack->object, pack->members,
           g_bytes_get_size (bytes));
  ok = fs_storage_put (self->storage, key, in, NULL, NULL, cancellable, &local_error);
  g_free (pack->object);
  g_free (pack);

  g_mutex_lock (&self->lock);
  self->writing--;
  self->written += ok;
  if (!ok && self->failure == NULL)
    self->failure = g_error_copy (local_error);
  g_cond_broadcast (&self->cond);
  g_mutex_unlock (&self->lock);
  if (!ok)
    g_propagate_error (error, g_steal_pointer (&local_error));
  return ok;
}

gboolean
fs_packer_add (FsPacker *self, GBytes *sealed, gchar **object, guint64 *offset,
               GCancellable *cancellable, GError **error)
{
  Pack *full = NULL;
  gsize len;
  const guint8 *data;

  g_return_val_if_fail (self != NULL && sealed != NULL, FALSE);
  data = g_bytes_get_data (sealed, &len);

  g_mutex_lock (&self->lock);
  if (self->open == NULL)
    self->open = pack_new ();
  *object = g_strdup (self->open->object);
  *offset = self->open->data->len;
  g_byte_array_append (self->open->data, data, (guint) len);
  self->open->members++;
  if (self->open->data->len >= self->max_bytes || self->open->members >= self->max_members)
    {
      full = g_steal_pointer (&self->open);
      self->writing++;
    }
  g_mutex_unlock (&self->lock);

  return full == NULL || write_pack (self, full, cancellable, error);
}

gboolean
fs_packer_flush (FsPacker *self, GCancellable *cancellable, GError **error)
{
  Pack *open;

  g_return_val_if_fail (self != NULL, FALSE);

  g_mutex_lock (&self->lock);
  open = g_steal_pointer (&self->open);
  if (open != NULL)
    self->writing++;
  g_mutex_unlock (&self->lock);
  if (open != NULL && !write_pack (self, open, cancellable, error))
    return FALSE;

  g_mutex_lock (&self->lock);
  while (self->writing > 0)
    g_cond_wait (&self->cond, &self->lock);
  if (self->failure != NULL)
    {
      g_propagate_error (error, g_error_copy (self->failure));
      g_mutex_unlock (&self->lock);
      return FALSE;
    }
  g_mutex_unlock (&self->lock);
  return TRUE;
}

guint
fs_packer_get_packs_written (FsPacker *self)
{
  guint n;

  g_return_val_if_fail (self != NULL, 0);
  g_mutex_lock (&self->lock);
  n = self->written;
  g_mutex_unlock (&self->lock);
  return n;
}

void
fs_packer_free (FsPacker *self)
{
  if (self == NULL)
    return;
  g_assert (self->writing == 0);
  g_clear_pointer (&self->open, pack_free);
  g_clear_error (&self->failure);
  g_object_unref (self->storage);
  g_free (self->prefix);
  g_mutex_clear (&self->lock);
  g_cond_clear (&self->cond);
  g_free (self);
}
