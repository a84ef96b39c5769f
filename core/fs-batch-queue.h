/* FsBatchQueue: debounces change events into batches. A batch is ready once
 * no event came for quiet_ms, or max_delay_ms after its first event, so a
 * steady writer cannot postpone a batch forever. */
#pragma once

#include <glib-object.h>

G_BEGIN_DECLS

#define FS_TYPE_BATCH_QUEUE (fs_batch_queue_get_type ())
G_DECLARE_FINAL_TYPE (FsBatchQueue, fs_batch_queue, FS, BATCH_QUEUE, GObject)

/* Signal "ready" (GStrv paths, gboolean rescan): the distinct paths added
 * since the last batch (sorted), and whether a NULL path ("anything") was
 * added. Emitted from the thread-default main context of the creator. */
FsBatchQueue *fs_batch_queue_new (guint quiet_ms, guint max_delay_ms);

/* @path NULL: a full rescan is wanted. */
void fs_batch_queue_add (FsBatchQueue *self, const gchar *path);

/* Emits what is pending now (e.g. on ForceSync), if anything. */
void fs_batch_queue_flush (FsBatchQueue *self);

guint fs_batch_queue_get_n_pending (FsBatchQueue *self);
/* Number of batches emitted so far. */
guint fs_batch_queue_get_n_batches (FsBatchQueue *self);

G_END_DECLS
