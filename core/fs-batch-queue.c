/* FsBatchQueue: turns a stream of change events into batches for the engine.
 * Two timers in the creator's thread-default main context: the quiet timer,
 * restarted on every add, and the max-delay timer, started by the first add
 * of a batch and never restarted, so a steady writer still gets a batch at
 * least every max_delay_ms. Emitting a batch stops both. */
#include <string.h>

#include "fs-batch-queue.h"

struct _FsBatchQueue
{
  GObject parent_instance;

  guint quiet_ms;
  guint max_delay_ms; /* 0: no cap */
  GMainContext *context;

  GHashTable *pending; /* set of relative paths */
  gboolean rescan;     /* a NULL path was added */
  GSource *quiet_source;
  GSource *max_source;
  guint n_batches;
};

G_DEFINE_TYPE (FsBatchQueue, fs_batch_queue, G_TYPE_OBJECT)

enum
{
  SIGNAL_READY,
  N_SIGNALS,
};

static guint signals[N_SIGNALS];

static void
clear_source (GSource **source)
{
  if (*source != NULL)
    {
      g_source_destroy (*source);
      g_clear_pointer (source, g_source_unref);
    }
}

static gboolean
has_pending (FsBatchQueue *self)
{
  return self->rescan || g_hash_table_size (self->pending) > 0;
}

static gint
compare_paths (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const gchar *const *)a, *(const gchar *const *)b);
}

static void
emit_batch (FsBatchQueue *self)
{
  g_autoptr (GPtrArray) paths
    = g_ptr_array_new_full (g_hash_table_size (self->pending) + 1, g_free);
  g_auto (GStrv) strv = NULL;
  GHashTableIter iter;
  gpointer key;
  gboolean rescan = self->rescan;

  clear_source (&self->quiet_source);
  clear_source (&self->max_source);

  /* Take the batch out before emitting, so a handler's adds start the next one. */
  g_hash_table_iter_init (&iter, self->pending);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    {
      g_ptr_array_add (paths, key);
      g_hash_table_iter_steal (&iter);
    }
  g_ptr_array_sort (paths, compare_paths);
  g_ptr_array_add (paths, NULL);
  strv = (GStrv)g_ptr_array_steal (paths, NULL);
  self->rescan = FALSE;
  self->n_batches++;

  g_debug ("batch %u: %u paths%s", self->n_batches, g_strv_length (strv), rescan ? ", rescan" : "");
  g_signal_emit (self, signals[SIGNAL_READY], 0, strv, rescan);
}

static gboolean
on_timeout (gpointer user_data)
{
  FsBatchQueue *self = user_data;
  g_autoptr (FsBatchQueue) keep = g_object_ref (self); /* a handler may drop the last ref */

  emit_batch (self);
  return G_SOURCE_REMOVE;
}

static GSource *
start_timer (FsBatchQueue *self, guint ms)
{
  GSource *source = g_timeout_source_new (ms);

  g_source_set_callback (source, on_timeout, self, NULL);
  g_source_set_static_name (source, "[foldersync] batch queue");
  g_source_attach (source, self->context);
  return source;
}

void
fs_batch_queue_add (FsBatchQueue *self, const gchar *path)
{
  g_return_if_fail (FS_IS_BATCH_QUEUE (self));

  if (path == NULL)
    self->rescan = TRUE;
  else
    g_hash_table_add (self->pending, g_strdup (path));

  clear_source (&self->quiet_source);
  self->quiet_source = start_timer (self, self->quiet_ms);
  if (self->max_source == NULL && self->max_delay_ms > 0)
    self->max_source = start_timer (self, self->max_delay_ms);
}

void
fs_batch_queue_flush (FsBatchQueue *self)
{
  g_return_if_fail (FS_IS_BATCH_QUEUE (self));

  if (has_pending (self))
    emit_batch (self);
}

/* A pending rescan counts as one entry. */
guint
fs_batch_queue_get_n_pending (FsBatchQueue *self)
{
  g_return_val_if_fail (FS_IS_BATCH_QUEUE (self), 0);
  return g_hash_table_size (self->pending) + (self->rescan ? 1 : 0);
}

guint
fs_batch_queue_get_n_batches (FsBatchQueue *self)
{
  g_return_val_if_fail (FS_IS_BATCH_QUEUE (self), 0);
  return self->n_batches;
}

static void
fs_batch_queue_dispose (GObject *object)
{
  FsBatchQueue *self = FS_BATCH_QUEUE (object);

  clear_source (&self->quiet_source);
  clear_source (&self->max_source);
  G_OBJECT_CLASS (fs_batch_queue_parent_class)->dispose (object);
}

static void
fs_batch_queue_finalize (GObject *object)
{
  FsBatchQueue *self = FS_BATCH_QUEUE (object);

  g_hash_table_unref (self->pending);
  g_main_context_unref (self->context);
  G_OBJECT_CLASS (fs_batch_queue_parent_class)->finalize (object);
}

static void
fs_batch_queue_class_init (FsBatchQueueClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = fs_batch_queue_dispose;
  object_class->finalize = fs_batch_queue_finalize;

  /* FsBatchQueue::ready (GStrv paths, gboolean rescan) */
  signals[SIGNAL_READY]
    = g_signal_new ("ready", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                    G_TYPE_NONE, 2, G_TYPE_STRV, G_TYPE_BOOLEAN);
}

static void
fs_batch_queue_init (FsBatchQueue *self)
{
  self->pending = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->context = g_main_context_ref_thread_default ();
}

/* @max_delay_ms 0: no cap (a steady writer postpones the batch until it stops). */
FsBatchQueue *
fs_batch_queue_new (guint quiet_ms, guint max_delay_ms)
{
  FsBatchQueue *self = g_object_new (FS_TYPE_BATCH_QUEUE, NULL);

  self->quiet_ms = quiet_ms;
  self->max_delay_ms = max_delay_ms;
  return self;
}
