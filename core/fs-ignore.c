/* .foldersyncignore: gitignore-style patterns, scoped to the directory of the
 * file they came from.
 *
 * A pattern is split at '/' into segments; each segment is matched against one
 * path component with fnmatch(3) (so '*', '?' and '[...]' never cross '/'),
 * and a "**" segment matches any number of components. A pattern without a
 * '/' (other than a trailing one) matches the basename at any depth, which is
 * the same as the anchored pattern with a leading "**" segment. */
#include <fnmatch.h>
#include <string.h>

#include "fs-ignore.h"

typedef struct {
  gchar *dir;       /* "" or "a/b": the rule applies to paths below it */
  gchar **segments; /* pattern split at '/', "**" meaning any depth */
  gboolean negate;
  gboolean dir_only;
} FsIgnoreRule;

struct _FsIgnore
{
  GPtrArray *rules; /* FsIgnoreRule*, in the order added; last match wins */
};

static void
rule_free (FsIgnoreRule *rule)
{
  g_free (rule->dir);
  g_strfreev (rule->segments);
  g_free (rule);
}

FsIgnore *
fs_ignore_new (void)
{
  FsIgnore *self = g_new0 (FsIgnore, 1);
  self->rules = g_ptr_array_new_with_free_func ((GDestroyNotify) rule_free);
  return self;
}

void
fs_ignore_free (FsIgnore *self)
{
  if (self == NULL)
    return;
  g_ptr_array_unref (self->rules);
  g_free (self);
}

/* Trailing spaces are dropped unless escaped with a backslash. */
static void
trim_trailing_spaces (gchar *line)
{
  gsize len = strlen (line);
  while (len > 0 && (line[len - 1] == ' ' || line[len - 1] == '\t' || line[len - 1] == '\r'))
    {
      if (len >= 2 && line[len - 2] == '\\' && line[len - 1] == ' ')
        break;
      line[--len] = '\0';
    }
}

static FsIgnoreRule *
parse_line (const gchar *dir, const gchar *raw)
{
  g_autofree gchar *line = g_strdup (raw);
  g_autoptr (GPtrArray) segments = NULL;
  FsIgnoreRule *rule;
  gchar *pattern;
  gboolean anchored;
  gsize len;

  trim_trailing_spaces (line);
  pattern = line;
  if (*pattern == '\0' || *pattern == '#')
    return NULL;

  rule = g_new0 (FsIgnoreRule, 1);
  if (*pattern == '!')
    {
      rule->negate = TRUE;
      pattern++;
    }
  len = strlen (pattern);
  if (len > 0 && pattern[len - 1] == '/')
    {
      rule->dir_only = TRUE;
      while (len > 0 && pattern[len - 1] == '/')
        pattern[--len] = '\0';
    }
  anchored = strchr (pattern, '/') != NULL;
  while (*pattern == '/')
    pattern++;
  if (*pattern == '\0')
    {
      rule_free (rule);
      return NULL;
    }

  segments = g_ptr_array_new ();
  if (!anchored)
    g_ptr_array_add (segments, g_strdup ("**"));
  {
    g_auto (GStrv) parts = g_strsplit (pattern, "/", -1);
    for (guint i = 0; parts[i] != NULL; i++)
      {
        /* "a//b" means "a/b"; consecutive "**" are one. */
        if (parts[i][0] == '\0')
          continue;
        if (g_str_equal (parts[i], "**") && segments->len > 0 &&
            g_str_equal (g_ptr_array_index (segments, segments->len - 1), "**"))
          continue;
        g_ptr_array_add (segments, g_strdup (parts[i]));
      }
  }
  g_ptr_array_add (segments, NULL);
  rule->segments = (gchar **) g_ptr_array_free (g_steal_pointer (&segments), FALSE);
  rule->dir = g_strdup (dir != NULL ? dir : "");
  return rule;
}

void
fs_ignore_add_patterns (FsIgnore *self, const gchar *dir, const gchar *contents)
{
  g_auto (GStrv) lines = NULL;
  g_autofree gchar *clean_dir = NULL;
  gsize len;

  g_return_if_fail (self != NULL);
  g_return_if_fail (contents != NULL);

  /* "a/b/" and "/a/b" name the same directory as "a/b". */
  clean_dir = g_strdup (dir != NULL ? dir : "");
  len = strlen (clean_dir);
  while (len > 0 && clean_dir[len - 1] == '/')
    clean_dir[--len] = '\0';

  lines = g_strsplit (contents, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      FsIgnoreRule *rule = parse_line (clean_dir[0] == '/' ? clean_dir + 1 : clean_dir, lines[i]);
      if (rule != NULL)
        g_ptr_array_add (self->rules, rule);
    }
}

/* Whether segments[pi..] match components[ci..n). */
static gboolean
match_segments (gchar **segments, guint pi, gchar **components, guint ci, guint n)
{
  while (segments[pi] != NULL)
    {
      if (g_str_equal (segments[pi], "**"))
        {
          /* A trailing "**" matches everything inside, but not the directory
           * itself: at least one component must remain. */
          if (segments[pi + 1] == NULL)
            return ci < n;
          for (guint k = ci; k <= n; k++)
            if (match_segments (segments, pi + 1, components, k, n))
              return TRUE;
          return FALSE;
        }
      if (ci >= n || fnmatch (segments[pi], components[ci], FNM_PATHNAME) != 0)
        return FALSE;
      pi++;
      ci++;
    }
  return ci == n;
}

/* Whether @rule matches @path itself (ancestors not considered). */
static gboolean
rule_matches (FsIgnoreRule *rule, const gchar *path, gchar **components, guint n,
              gboolean is_dir)
{
  guint skip = 0;

  if (rule->dir_only && !is_dir)
    return FALSE;
  if (rule->dir[0] != '\0')
    {
      gsize dlen = strlen (rule->dir);
      if (strncmp (path, rule->dir, dlen) != 0 || path[dlen] != '/')
        return FALSE;
      /* Components of the rule's directory are not part of the match. */
      for (const gchar *p = rule->dir; *p != '\0'; p++)
        if (*p == '/')
          skip++;
      skip++;
    }
  if (skip >= n)
    return FALSE;
  return match_segments (rule->segments, 0, components, skip, n);
}

/* The last matching rule decides for @path alone. */
static gboolean
matches_self (FsIgnore *self, const gchar *path, gchar **components, guint n, gboolean is_dir)
{
  for (guint i = self->rules->len; i > 0; i--)
    {
      FsIgnoreRule *rule = g_ptr_array_index (self->rules, i - 1);
      if (rule_matches (rule, path, components, n, is_dir))
        return !rule->negate;
    }
  return FALSE;
}

gboolean
fs_ignore_matches (FsIgnore *self, const gchar *path, gboolean is_dir)
{
  g_auto (GStrv) components = NULL;
  g_autofree gchar *prefix = NULL;
  guint n;

  g_return_val_if_fail (self != NULL, FALSE);
  g_return_val_if_fail (path != NULL, FALSE);

  if (self->rules->len == 0 || path[0] == '\0')
    return FALSE;

  components = g_strsplit (path, "/", -1);
  n = g_strv_length (components);

  /* As in git, nothing below an ignored directory can be re-included: test
   * each ancestor as a directory first. */
  for (guint depth = 1; depth < n; depth++)
    {
      gsize len = 0;
      for (guint i = 0; i < depth; i++)
        len += strlen (components[i]) + (i > 0 ? 1 : 0);
      g_free (prefix);
      prefix = g_strndup (path, len);
      if (matches_self (self, prefix, components, depth, TRUE))
        return TRUE;
    }
  return matches_self (self, path, components, n, is_dir);
}

gboolean
fs_ignore_matches_path (FsIgnore *self, const gchar *path, gboolean is_dir)
{
  g_autofree gchar *dir = g_strdup (path);

  for (gchar *slash = strchr (dir, '/'); slash != NULL; slash = strchr (slash + 1, '/'))
    {
      gboolean ignored;
      *slash = '\0';
      ignored = fs_ignore_matches (self, dir, TRUE);
      *slash = '/';
      if (ignored)
        return TRUE;
    }
  return fs_ignore_matches (self, path, is_dir);
}
