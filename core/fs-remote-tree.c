/* The remote tree: resolves all journal records into the head record of
 * every effective path, deterministically (see fs-remote-tree.h). Pure; no I/O.
 *
 * The records form a forest by `replaces`. Each record's effective path only
 * depends on its ancestors, so the forest is walked top-down from its roots,
 * breadth-first with an explicit queue (no recursion: a history may be deep).
 * Siblings that land on the same path are concurrent writes: they are sorted,
 * the first keeps the path and the others move to conflict names. */
#include "fs-remote-tree.h"

#include <string.h>

typedef struct _Node Node;
struct _Node {
  const FsRecord *rec;
  gchar *norm_path;  /* NFC of rec->path */
  Node *parent;      /* NULL for a root (no/missing `replaces`, or in a cycle) */
  Node *first_child;
  Node *next_sibling;
  gchar *base_path;  /* the path the record is at before conflict renaming */
  gchar *eff_path;
  gboolean loser;
  gboolean merged; /* a directory another device created too: one with the winner */
};

/* The winner order among concurrent records (and among heads of one path): a
 * live record before a deletion, then the smaller version id. */
static gint
node_order (const Node *a, const Node *b)
{
  if (a->rec->deleted != b->rec->deleted)
    return a->rec->deleted ? 1 : -1;
  return strcmp (a->rec->version, b->rec->version);
}

/* Children of one parent all replace the parent's version; roots group by
 * the (missing, or cycle-broken) version they claim to replace, "" for none. */
static const gchar *
root_key (const Node *x)
{
  if (x->parent != NULL || x->rec->replaces == NULL)
    return "";
  return x->rec->replaces;
}

/* Sorts the siblings of one parent (or all roots) so that each group of
 * concurrent records is contiguous, winner first. */
static gint
group_cmp (gconstpointer pa, gconstpointer pb)
{
  const Node *a = *(Node *const *) pa;
  const Node *b = *(Node *const *) pb;
  gint c;

  c = strcmp (root_key (a), root_key (b));
  if (c != 0)
    return c;
  c = strcmp (a->base_path, b->base_path);
  if (c != 0)
    return c;
  return node_order (a, b);
}

static gboolean
same_group (const Node *a, const Node *b)
{
  if (strcmp (a->base_path, b->base_path) != 0)
    return FALSE;
  return strcmp (root_key (a), root_key (b)) == 0;
}

/* A total order on records, used only to pick one of several records that
 * (wrongly) carry the same version id, so the result never depends on the
 * input order. */
static gint
record_total_cmp (const FsRecord *a, const FsRecord *b)
{
  gint c;

  if ((c = g_strcmp0 (a->replaces, b->replaces)) != 0)
    return c;
  if ((c = strcmp (a->path, b->path)) != 0)
    return c;
  if (a->deleted != b->deleted)
    return a->deleted ? 1 : -1;
  if ((c = g_strcmp0 (a->hash, b->hash)) != 0)
    return c;
  if ((c = g_strcmp0 (a->target, b->target)) != 0)
    return c;
  if ((c = g_strcmp0 (a->device_id, b->device_id)) != 0)
    return c;
  if ((c = g_strcmp0 (a->device_name, b->device_name)) != 0)
    return c;
  if ((c = g_strcmp0 (a->object, b->object)) != 0)
    return c;
  if (a->kind != b->kind)
    return a->kind < b->kind ? -1 : 1;
  if (a->mode != b->mode)
    return a->mode < b->mode ? -1 : 1;
  if (a->size != b->size)
    return a->size < b->size ? -1 : 1;
  if (a->mtime_ns != b->mtime_ns)
    return a->mtime_ns < b->mtime_ns ? -1 : 1;
  if (a->seq != b->seq)
    return a->seq < b->seq ? -1 : 1;
  if (a->time_us != b->time_us)
    return a->time_us < b->time_us ? -1 : 1;
  return 0;
}

/* Drops every parent link that is part of a cycle in `replaces`, so that each
 * record in a cycle becomes a root. The parent graph has at most one edge
 * out of each node, so one walk per node, each node visited once: O(n). */
static void
break_cycles (Node *nodes, guint n)
{
  g_autofree guint8 *state = g_new0 (guint8, n); /* 0 new, 1 on the walk, 2 done */
  g_autoptr(GPtrArray) walk = g_ptr_array_new ();

  for (guint i = 0; i < n; i++)
    {
      Node *x = &nodes[i];

      g_ptr_array_set_size (walk, 0);
      while (x != NULL && state[x - nodes] == 0)
        {
          state[x - nodes] = 1;
          g_ptr_array_add (walk, x);
          x = x->parent;
        }
      if (x != NULL && state[x - nodes] == 1)
        {
          /* x is on the current walk: x … walk[end] is a cycle. */
          guint start = 0;
          while (walk->pdata[start] != x)
            start++;
          for (guint j = start; j < walk->len; j++)
            ((Node *) walk->pdata[j])->parent = NULL;
        }
      for (guint j = 0; j < walk->len; j++)
        state[(Node *) walk->pdata[j] - nodes] = 2;
    }
}

/* Assigns base and effective paths to one set of siblings (all children of one
 * node, or all roots); their parent's effective path is already known. */
static void
resolve_siblings (GPtrArray *siblings)
{
  Node *winner = NULL;

  for (guint i = 0; i < siblings->len; i++)
    {
      Node *c = siblings->pdata[i];
      if (c->parent != NULL && strcmp (c->parent->norm_path, c->norm_path) == 0)
        c->base_path = g_strdup (c->parent->eff_path);
      else
        c->base_path = g_strdup (c->norm_path);
    }

  g_ptr_array_sort (siblings, group_cmp);

  for (guint i = 0; i < siblings->len; i++)
    {
      Node *c = siblings->pdata[i];
      if (i > 0 && same_group (siblings->pdata[i - 1], c) && winner != NULL &&
          c->rec->kind == FS_KIND_DIR && !c->rec->deleted && winner->rec->kind == FS_KIND_DIR &&
          !winner->rec->deleted)
        {
          /* Two devices created the same directory: a directory has no
           * content to lose, so both are the one directory (no conflict
           * copy). The winner stands for it: what replaces the winner
           * (a deletion, say) replaces this one too. */
          c->merged = TRUE;
          c->eff_path = g_strdup (c->base_path);
        }
      else if (i > 0 && same_group (siblings->pdata[i - 1], c))
        {
          const gchar *device = c->rec->device_name != NULL ? c->rec->device_name
                                : c->rec->device_id != NULL ? c->rec->device_id
                                                            : "unknown";
          c->loser = TRUE;
          c->eff_path = fs_conflict_name (c->base_path, device, c->rec->time_us);
        }
      else
        {
          winner = c;
          c->eff_path = g_strdup (c->base_path);
        }
    }
}

static gboolean
record_usable (const FsRecord *r)
{
  return r != NULL && r->version != NULL && r->path != NULL && r->path[0] != '\0';
}

GHashTable *
fs_remote_tree_resolve (GPtrArray *records)
{
  return fs_remote_tree_resolve_contested (records, NULL);
}

GHashTable *
fs_remote_tree_resolve_contested (GPtrArray *records, GHashTable **contested)
{
  g_autoptr(GHashTable) by_version = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr(GHashTable) heads = g_hash_table_new (g_str_hash, g_str_equal); /* eff → Node */
  g_autoptr(GPtrArray) siblings = g_ptr_array_new ();
  g_autoptr(GQueue) queue = g_queue_new ();
  GHashTable *result = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                              (GDestroyNotify) fs_record_free);
  g_autofree Node *nodes = NULL;
  guint n = 0;
  GHashTableIter iter;
  gpointer value;

  if (contested != NULL)
    *contested = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  if (records == NULL || records->len == 0)
    return result;

  /* One record per version id; a duplicate id (a buggy or hostile writer)
   * is settled by a total order on the records, not by input order. */
  for (guint i = 0; i < records->len; i++)
    {
      const FsRecord *r = records->pdata[i];
      const FsRecord *old;

      if (!record_usable (r))
        continue;
      old = g_hash_table_lookup (by_version, r->version);
      if (old == NULL || record_total_cmp (r, old) < 0)
        g_hash_table_insert (by_version, r->version, (gpointer) r);
    }

  nodes = g_new0 (Node, g_hash_table_size (by_version));
  for (guint i = 0; i < records->len; i++)
    {
      const FsRecord *r = records->pdata[i];
      gchar *norm;

      if (!record_usable (r) || g_hash_table_lookup (by_version, r->version) != r)
        continue;
      norm = fs_path_normalize (r->path);
      if (norm == NULL)
        {
          g_debug ("remote tree: skipping record %s: path is not UTF-8", r->version);
          continue;
        }
      nodes[n].rec = r;
      nodes[n].norm_path = norm;
      n++;
    }

  /* Re-key by_version to the nodes (records with a bad path are gone: their
   * children become roots). */
  g_hash_table_remove_all (by_version);
  for (guint i = 0; i < n; i++)
    g_hash_table_insert (by_version, nodes[i].rec->version, &nodes[i]);
  for (guint i = 0; i < n; i++)
    {
      const gchar *replaces = nodes[i].rec->replaces;
      if (replaces != NULL)
        nodes[i].parent = g_hash_table_lookup (by_version, replaces);
    }
  break_cycles (nodes, n);
  for (guint i = n; i-- > 0;)
    {
      Node *p = nodes[i].parent;
      if (p != NULL)
        {
          nodes[i].next_sibling = p->first_child;
          p->first_child = &nodes[i];
        }
    }

  /* Top-down: roots first, then the children of every resolved node. */
  for (guint i = 0; i < n; i++)
    if (nodes[i].parent == NULL)
      g_ptr_array_add (siblings, &nodes[i]);
  resolve_siblings (siblings);
  for (guint i = 0; i < siblings->len; i++)
    g_queue_push_tail (queue, siblings->pdata[i]);

  while (!g_queue_is_empty (queue))
    {
      Node *p = g_queue_pop_head (queue);

      if (p->first_child == NULL)
        continue;
      g_ptr_array_set_size (siblings, 0);
      for (Node *c = p->first_child; c != NULL; c = c->next_sibling)
        g_ptr_array_add (siblings, c);
      resolve_siblings (siblings);
      for (guint i = 0; i < siblings->len; i++)
        g_queue_push_tail (queue, siblings->pdata[i]);
    }

  /* A head of a path is a record none of whose children stayed on that path.
   * A deletion that lost to a concurrent write only disappears: there is
   * nothing to keep a conflict copy of. A merged directory is never a head
   * of its own: else it would outlive the winner's deletion (a live record
   * beats a deletion), and a directory two devices made could never go. */
  for (guint i = 0; i < n; i++)
    {
      Node *x = &nodes[i];
      gboolean superseded = FALSE;
      Node *old;

      if (x->eff_path == NULL)
        continue; /* unreachable: every node is a root or below one */
      if ((x->loser && x->rec->deleted) || x->merged)
        continue;
      for (Node *c = x->first_child; c != NULL && !superseded; c = c->next_sibling)
        superseded = strcmp (c->eff_path, x->eff_path) == 0;
      if (superseded)
        continue;
      old = g_hash_table_lookup (heads, x->eff_path);
      if (old != NULL && contested != NULL)
        g_hash_table_add (*contested, g_strdup (x->eff_path));
      if (old == NULL || node_order (x, old) < 0)
        g_hash_table_insert (heads, x->eff_path, x);
    }

  g_hash_table_iter_init (&iter, heads);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      Node *x = value;
      FsRecord *copy = fs_record_copy (x->rec);

      g_free (copy->path);
      copy->path = g_strdup (x->eff_path);
      g_hash_table_insert (result, g_strdup (x->eff_path), copy);
    }

  for (guint i = 0; i < n; i++)
    {
      g_free (nodes[i].norm_path);
      g_free (nodes[i].base_path);
      g_free (nodes[i].eff_path);
    }
  return result;
}

gchar *
fs_conflict_name (const gchar *path, const gchar *device_name, gint64 time_us)
{
  g_autoptr(GDateTime) dt = NULL;
  g_autofree gchar *stamp = NULL;
  g_autofree gchar *device = NULL;
  const gchar *slash;
  const gchar *base;
  const gchar *dot;
  gint64 secs;

  g_return_val_if_fail (path != NULL, NULL);

  /* Floor division, so a (bogus) pre-1970 time still rounds down. */
  secs = time_us / G_USEC_PER_SEC;
  if (time_us % G_USEC_PER_SEC < 0)
    secs--;
  dt = g_date_time_new_from_unix_utc (secs);
  if (dt == NULL) /* out of GDateTime's range: still a stable, valid name */
    dt = g_date_time_new_from_unix_utc (0);
  stamp = g_date_time_format (dt, "%Y-%m-%d %H%M%S");

  device = g_strdup (device_name != NULL && device_name[0] != '\0' ? device_name : "unknown");
  g_strdelimit (device, "/", '-');

  slash = strrchr (path, '/');
  base = slash != NULL ? slash + 1 : path;
  dot = strrchr (base, '.');
  /* A leading dot (".bashrc") is part of the name; a trailing one has no
   * extension after it. */
  if (dot == NULL || dot == base || dot[1] == '\0')
    return g_strdup_printf ("%s (conflict %s %s)", path, device, stamp);
  return g_strdup_printf ("%.*s (conflict %s %s)%s", (int) (dot - path), path, device, stamp,
                          dot);
}
