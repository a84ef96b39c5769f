/* FsPacker: puts many small sealed objects into a few pack objects, so that
 * a sync of thousands of small files costs a few PUTs instead of one each.
 * A pack is the plain concatenation of complete sealed objects (docs/format.md,
 * "Packs"); a record names its member by key, offset and length.
 *
 * Thread-safe: the transfer workers add members; the sync thread flushes
 * before it publishes any record that names a member. */
#pragma once

#include "fs-storage.h"

G_BEGIN_DECLS

typedef struct _FsPacker FsPacker;

/* Members go to "<prefix>p/<ff>/<id>"; a pack is written once it holds
 * @max_bytes or @max_members. */
FsPacker *fs_packer_new (FsStorage *storage, const gchar *prefix, gsize max_bytes,
                         guint max_members);

/* Adds @sealed as a member: @object gets the pack's key relative to the
 * prefix, @offset where the member starts. A pack it fills is written at once,
 * in this thread; its failure is returned here and by every later flush. */
gboolean fs_packer_add (FsPacker *self, GBytes *sealed, gchar **object, guint64 *offset,
                        GCancellable *cancellable, GError **error);

/* Writes the open pack and waits for packs being written by other threads:
 * afterwards every member added before the call is stored. */
gboolean fs_packer_flush (FsPacker *self, GCancellable *cancellable, GError **error);

/* How many packs were written so far. */
guint fs_packer_get_packs_written (FsPacker *self);

/* Drops a pack still open (its members were never published). No add or
 * flush may be running. */
void fs_packer_free (FsPacker *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (FsPacker, fs_packer_free)

G_END_DECLS
