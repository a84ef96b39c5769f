/* Unit tests of the batch queue (FsBatchQueue): debouncing with a quiet
 * period and a max delay, run on a private main context. Timings are checked
 * with wide margins only (a slow or loaded machine makes timers late, never
 * early), and each wait has a guard of several seconds. */
#include <glib.h>
#include <string.h>

#include "fs-batch-queue.h"

#define GUARD_MS 10000

typedef struct
{
  GMainContext *context;
  FsBatchQueue *queue;
  GPtrArray *batches; /* GStrv per batch */
  GArray *rescans;    /* gboolean per batch */
  GArray *times;      /* gint64 emission time (monotonic, µs) per batch */
  gint64 batch_start; /* time of the first add of the pending batch, 0 if none */
  GArray *ages;       /* gint64 batch_start -> emission (µs) per batch */
} Fixture;

static void
on_ready (FsBatchQueue *queue, GStrv paths, gboolean rescan, gpointer user_data)
{
  Fixture *fx = user_data;
  gint64 now = g_get_monotonic_time ();
  gint64 age = fx->batch_start > 0 ? now - fx->batch_start : 0;

  g_ptr_array_add (fx->batches, g_strdupv (paths));
  g_array_append_val (fx->rescans, rescan);
  g_array_append_val (fx->times, now);
  g_array_append_val (fx->ages, age);
  fx->batch_start = 0;
}

static void
fixture_setup (Fixture *fx, guint quiet_ms, guint max_delay_ms)
{
  fx->context = g_main_context_new ();
  g_main_context_push_thread_default (fx->context);
  fx->queue = fs_batch_queue_new (quiet_ms, max_delay_ms);
  fx->batches = g_ptr_array_new_with_free_func ((GDestroyNotify)g_strfreev);
  fx->rescans = g_array_new (FALSE, FALSE, sizeof (gboolean));
  fx->times = g_array_new (FALSE, FALSE, sizeof (gint64));
  fx->ages = g_array_new (FALSE, FALSE, sizeof (gint64));
  fx->batch_start = 0;
  g_signal_connect (fx->queue, "ready", G_CALLBACK (on_ready), fx);
}

static void
fixture_teardown (Fixture *fx)
{
  g_clear_object (&fx->queue);
  g_ptr_array_unref (fx->batches);
  g_array_unref (fx->rescans);
  g_array_unref (fx->times);
  g_array_unref (fx->ages);
  /* nothing of the queue may be left in the context */
  while (g_main_context_iteration (fx->context, FALSE))
    ;
  g_main_context_pop_thread_default (fx->context);
  g_main_context_unref (fx->context);
}

static void
add (Fixture *fx, const gchar *path)
{
  if (fx->batch_start == 0)
    fx->batch_start = g_get_monotonic_time ();
  fs_batch_queue_add (fx->queue, path);
}

static gboolean
on_guard (gpointer user_data)
{
  *(gboolean *)user_data = TRUE;
  return G_SOURCE_REMOVE;
}

/* Iterates the context until @n_batches batches came, or @ms passed. */
static void
run_until (Fixture *fx, guint n_batches, guint ms)
{
  gboolean expired = FALSE;
  GSource *guard = g_timeout_source_new (ms);

  g_source_set_callback (guard, on_guard, &expired, NULL);
  g_source_attach (guard, fx->context);
  while (!expired && fx->batches->len < n_batches)
    g_main_context_iteration (fx->context, TRUE);
  g_source_destroy (guard);
  g_source_unref (guard);
}

/* Iterates the context for @ms, whatever happens. */
static void
run_for (Fixture *fx, guint ms)
{
  run_until (fx, G_MAXUINT, ms);
}

static void
test_burst (void)
{
  Fixture fx;
  const guint quiet_ms = 200;
  gint64 start, elapsed_ms;
  GStrv paths;

  fixture_setup (&fx, quiet_ms, 5000);
  start = g_get_monotonic_time ();
  for (guint i = 0; i < 1000; i++)
    {
      g_autofree gchar *path = g_strdup_printf ("dir/file-%04u", 999 - i);
      add (&fx, path);
      add (&fx, path); /* duplicates collapse */
    }
  g_assert_cmpuint (fs_batch_queue_get_n_pending (fx.queue), ==, 1000);
  g_assert_cmpuint (fx.batches->len, ==, 0);

  run_until (&fx, 1, GUARD_MS);
  elapsed_ms = (g_get_monotonic_time () - start) / 1000;
  g_test_message ("burst of 1000 adds: batch after %" G_GINT64_FORMAT " ms (quiet %u ms)",
                  elapsed_ms, quiet_ms);
  g_assert_cmpuint (fx.batches->len, ==, 1);
  /* a timer is never early; "late" is bounded only by the guard */
  g_assert_cmpint (elapsed_ms, >=, quiet_ms - 5);

  paths = fx.batches->pdata[0];
  g_assert_cmpuint (g_strv_length (paths), ==, 1000);
  g_assert_cmpstr (paths[0], ==, "dir/file-0000");
  g_assert_cmpstr (paths[999], ==, "dir/file-0999");
  for (guint i = 1; i < 1000; i++)
    g_assert_cmpint (strcmp (paths[i - 1], paths[i]), <, 0);
  g_assert_false (g_array_index (fx.rescans, gboolean, 0));
  g_assert_cmpuint (fs_batch_queue_get_n_pending (fx.queue), ==, 0);
  g_assert_cmpuint (fs_batch_queue_get_n_batches (fx.queue), ==, 1);

  /* and nothing more: the max-delay timer went with the batch */
  run_for (&fx, 3 * quiet_ms);
  g_assert_cmpuint (fx.batches->len, ==, 1);
  fixture_teardown (&fx);
}

typedef struct
{
  Fixture *fx;
  guint n_left;
  guint next;
  GHashTable *added;
} Writer;

static gboolean
on_write (gpointer user_data)
{
  Writer *w = user_data;
  g_autofree gchar *path = g_strdup_printf ("log-%03u", w->next++);

  add (w->fx, path);
  g_hash_table_add (w->added, g_steal_pointer (&path));
  return --w->n_left > 0 ? G_SOURCE_CONTINUE : G_SOURCE_REMOVE;
}

static void
test_steady_writer (void)
{
  Fixture fx;
  const guint quiet_ms = 200, max_delay_ms = 600;
  Writer w = { &fx, 5 * max_delay_ms / (quiet_ms / 2), 0, NULL };
  g_autoptr (GHashTable) seen = g_hash_table_new (g_str_hash, g_str_equal);
  GSource *writer;
  guint n_during;
  gint64 max_age = 0;

  fixture_setup (&fx, quiet_ms, max_delay_ms);
  w.added = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);

  /* an add every quiet_ms/2 for 5 x max_delay: the quiet timer never fires */
  writer = g_timeout_source_new (quiet_ms / 2);
  g_source_set_callback (writer, on_write, &w, NULL);
  g_source_attach (writer, fx.context);
  while (w.n_left > 0)
    g_main_context_iteration (fx.context, TRUE);
  g_source_destroy (writer);
  g_source_unref (writer);
  n_during = fx.batches->len;

  /* the last batch after the writer stops */
  run_until (&fx, n_during + 1, GUARD_MS);
  for (guint i = 0; i < fx.ages->len; i++)
    max_age = MAX (max_age, g_array_index (fx.ages, gint64, i) / 1000);
  g_test_message ("steady writer, %u adds: %u batches while writing, %u in all; oldest batch "
                  "%" G_GINT64_FORMAT " ms (max delay %u ms)",
                  w.next, n_during, fx.batches->len, max_age, max_delay_ms);

  /* ≈5 expected; without the cap there would be none */
  g_assert_cmpuint (n_during, >=, 3);
  /* A batch waits max_delay at most; the margin only absorbs a slow machine. */
  g_assert_cmpint (max_age, <=, 2 * max_delay_ms);

  /* every path in exactly one batch */
  for (guint i = 0; i < fx.batches->len; i++)
    {
      GStrv paths = fx.batches->pdata[i];
      for (guint j = 0; paths[j] != NULL; j++)
        g_assert_true (g_hash_table_add (seen, paths[j]));
    }
  g_assert_cmpuint (g_hash_table_size (seen), ==, g_hash_table_size (w.added));

  g_hash_table_unref (w.added);
  fixture_teardown (&fx);
}

static void
test_rescan (void)
{
  Fixture fx;
  GStrv paths;

  fixture_setup (&fx, 50, 1000);
  add (&fx, "b");
  add (&fx, NULL);
  add (&fx, "a");
  add (&fx, NULL);
  g_assert_cmpuint (fs_batch_queue_get_n_pending (fx.queue), ==, 3);
  run_until (&fx, 1, GUARD_MS);
  g_assert_cmpuint (fx.batches->len, ==, 1);
  g_assert_true (g_array_index (fx.rescans, gboolean, 0));
  paths = fx.batches->pdata[0];
  g_assert_cmpuint (g_strv_length (paths), ==, 2);
  g_assert_cmpstr (paths[0], ==, "a");
  g_assert_cmpstr (paths[1], ==, "b");

  /* a rescan alone is a batch too, with no paths */
  add (&fx, NULL);
  run_until (&fx, 2, GUARD_MS);
  g_assert_cmpuint (fx.batches->len, ==, 2);
  g_assert_true (g_array_index (fx.rescans, gboolean, 1));
  g_assert_cmpuint (g_strv_length (fx.batches->pdata[1]), ==, 0);

  /* the flag does not stick */
  add (&fx, "c");
  run_until (&fx, 3, GUARD_MS);
  g_assert_cmpuint (fx.batches->len, ==, 3);
  g_assert_false (g_array_index (fx.rescans, gboolean, 2));
  fixture_teardown (&fx);
}

static void
test_flush (void)
{
  Fixture fx;

  fixture_setup (&fx, 200, 1000);

  /* nothing pending: no batch */
  fs_batch_queue_flush (fx.queue);
  g_assert_cmpuint (fx.batches->len, ==, 0);
  g_assert_cmpuint (fs_batch_queue_get_n_batches (fx.queue), ==, 0);

  add (&fx, "x");
  add (&fx, "y");
  fs_batch_queue_flush (fx.queue);
  /* at once, without running the loop */
  g_assert_cmpuint (fx.batches->len, ==, 1);
  g_assert_cmpuint (g_strv_length (fx.batches->pdata[0]), ==, 2);
  g_assert_cmpuint (fs_batch_queue_get_n_pending (fx.queue), ==, 0);

  /* its timers went with it */
  run_for (&fx, 600);
  g_assert_cmpuint (fx.batches->len, ==, 1);

  /* and the queue goes on normally */
  add (&fx, "z");
  run_until (&fx, 2, GUARD_MS);
  g_assert_cmpuint (fx.batches->len, ==, 2);
  g_assert_cmpstr (((GStrv)fx.batches->pdata[1])[0], ==, "z");
  fixture_teardown (&fx);
}

static void
test_counters (void)
{
  Fixture fx;

  fixture_setup (&fx, 50, 1000);
  g_assert_cmpuint (fs_batch_queue_get_n_pending (fx.queue), ==, 0);
  g_assert_cmpuint (fs_batch_queue_get_n_batches (fx.queue), ==, 0);
  add (&fx, "a");
  add (&fx, "a");
  add (&fx, "b");
  g_assert_cmpuint (fs_batch_queue_get_n_pending (fx.queue), ==, 2);
  add (&fx, NULL);
  g_assert_cmpuint (fs_batch_queue_get_n_pending (fx.queue), ==, 3);
  run_until (&fx, 1, GUARD_MS);
  g_assert_cmpuint (fs_batch_queue_get_n_pending (fx.queue), ==, 0);
  g_assert_cmpuint (fs_batch_queue_get_n_batches (fx.queue), ==, 1);
  add (&fx, "c");
  fs_batch_queue_flush (fx.queue);
  g_assert_cmpuint (fs_batch_queue_get_n_batches (fx.queue), ==, 2);
  g_assert_cmpuint (fx.batches->len, ==, 2);
  fixture_teardown (&fx);
}

static void
test_destroy (void)
{
  Fixture fx;

  fixture_setup (&fx, 50, 100);
  add (&fx, "a");
  /* the queue's timers go with it: nothing fires into freed memory */
  g_clear_object (&fx.queue);
  run_for (&fx, 300);
  g_assert_cmpuint (fx.batches->len, ==, 0);
  fixture_teardown (&fx);
}

static void
on_ready_unref (FsBatchQueue *queue, GStrv paths, gboolean rescan, gpointer user_data)
{
  Fixture *fx = user_data;

  on_ready (queue, paths, rescan, user_data);
  g_clear_object (&fx->queue);
}

static void
test_unref_in_handler (void)
{
  Fixture fx;

  fixture_setup (&fx, 50, 1000);
  g_signal_handlers_disconnect_by_func (fx.queue, on_ready, &fx);
  g_signal_connect (fx.queue, "ready", G_CALLBACK (on_ready_unref), &fx);
  add (&fx, "a");
  run_until (&fx, 1, GUARD_MS);
  g_assert_cmpuint (fx.batches->len, ==, 1);
  g_assert_null (fx.queue);
  fixture_teardown (&fx);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/batch-queue/burst", test_burst);
  g_test_add_func ("/batch-queue/steady-writer", test_steady_writer);
  g_test_add_func ("/batch-queue/rescan", test_rescan);
  g_test_add_func ("/batch-queue/flush", test_flush);
  g_test_add_func ("/batch-queue/counters", test_counters);
  g_test_add_func ("/batch-queue/destroy", test_destroy);
  g_test_add_func ("/batch-queue/unref-in-handler", test_unref_in_handler);

  return g_test_run ();
}
