/* Unit tests of .foldersyncignore matching (FsIgnore): one table row per rule. */
#include <glib.h>

#include "fs-ignore.h"

typedef struct {
  const gchar *dir;      /* directory of the .foldersyncignore ("" = root) */
  const gchar *patterns; /* its contents */
  const gchar *path;
  gboolean is_dir;
  gboolean expected;
} IgnoreCase;

static const IgnoreCase cases[] = {
  /* blank lines and comments */
  { "", "\n\n   \n", "a", FALSE, FALSE },
  { "", "# a\n", "# a", FALSE, FALSE },
  { "", "# comment\n*.o\n", "x.o", FALSE, TRUE },
  { "", "\\#hash\n", "#hash", FALSE, TRUE },
  /* trailing spaces trimmed, escaped space kept, CRLF files */
  { "", "*.log   \n", "x.log", FALSE, TRUE },
  { "", "a\\ \n", "a ", FALSE, TRUE },
  { "", "*.tmp\r\n", "x.tmp", FALSE, TRUE },
  /* basename at any depth */
  { "", "*.o", "x.o", FALSE, TRUE },
  { "", "*.o", "src/deep/x.o", FALSE, TRUE },
  { "", "*.o", "x.c", FALSE, FALSE },
  { "", "foo", "a/foo", TRUE, TRUE },
  { "", "foo", "a/foo/bar", FALSE, TRUE }, /* below an ignored directory */
  { "", "foo", "foobar", FALSE, FALSE },
  /* negation, last match wins */
  { "", "*.log\n!keep.log", "keep.log", FALSE, FALSE },
  { "", "*.log\n!keep.log", "other.log", FALSE, TRUE },
  { "", "!keep.log\n*.log", "keep.log", FALSE, TRUE },
  { "", "\\!bang", "!bang", FALSE, TRUE },
  /* nothing below an ignored directory can be re-included */
  { "", "build/\n!build/keep", "build/keep", FALSE, TRUE },
  /* trailing '/' matches directories only */
  { "", "cache/", "cache", TRUE, TRUE },
  { "", "cache/", "cache", FALSE, FALSE },
  { "", "cache/", "a/cache", TRUE, TRUE },
  { "", "cache/", "cache/x", FALSE, TRUE },
  /* a '/' inside anchors the pattern to the ignore file's directory */
  { "", "doc/*.html", "doc/a.html", FALSE, TRUE },
  { "", "doc/*.html", "x/doc/a.html", FALSE, FALSE },
  { "", "/top", "top", FALSE, TRUE },
  { "", "/top", "a/top", FALSE, FALSE },
  { "", "/out/", "out", TRUE, TRUE },
  { "", "/out/", "out", FALSE, FALSE },
  /* '*' '?' '[...]' do not cross '/' */
  { "", "doc/*.html", "doc/sub/a.html", FALSE, FALSE },
  { "", "a*b", "a/b", FALSE, FALSE },
  { "", "file?.txt", "file1.txt", FALSE, TRUE },
  { "", "file?.txt", "file10.txt", FALSE, FALSE },
  { "", "a?b/c", "a/b/c", FALSE, FALSE },
  { "", "[abc].txt", "b.txt", FALSE, TRUE },
  { "", "[abc].txt", "d.txt", FALSE, FALSE },
  { "", "[!abc].txt", "d.txt", FALSE, TRUE },
  { "", "[a-c]x", "bx", FALSE, TRUE },
  { "", "x[/]y", "x/y", FALSE, FALSE },
  /* '**' crosses '/' */
  { "", "**/logs", "logs", TRUE, TRUE },
  { "", "**/logs", "a/b/logs", TRUE, TRUE },
  { "", "**/logs/debug.log", "x/logs/debug.log", FALSE, TRUE },
  { "", "**/logs/debug.log", "logs/debug.log", FALSE, TRUE },
  { "", "logs/**", "logs/a/b", FALSE, TRUE },
  { "", "logs/**", "logs", TRUE, FALSE },
  { "", "logs/**", "x/logs/a", FALSE, FALSE },
  { "", "a/**/b", "a/b", FALSE, TRUE },
  { "", "a/**/b", "a/x/y/b", FALSE, TRUE },
  { "", "a/**/b", "a/x/y/c", FALSE, FALSE },
  { "", "a/**/b", "z/a/x/b", FALSE, FALSE },
  { "", "**", "anything/at/all", FALSE, TRUE },
  /* patterns from a subdirectory's file apply below it only */
  { "sub", "*.tmp", "sub/x.tmp", FALSE, TRUE },
  { "sub", "*.tmp", "sub/deep/x.tmp", FALSE, TRUE },
  { "sub", "*.tmp", "x.tmp", FALSE, FALSE },
  { "sub", "*.tmp", "subx/x.tmp", FALSE, FALSE },
  { "sub", "*.tmp", "other/sub/x.tmp", FALSE, FALSE },
  { "sub", "/gen", "sub/gen", FALSE, TRUE },
  { "sub", "/gen", "sub/x/gen", FALSE, FALSE },
  { "sub", "a/b", "sub/a/b", FALSE, TRUE },
  { "sub", "a/b", "a/b", FALSE, FALSE },
  { "sub", "sub", "sub", TRUE, FALSE }, /* a file's patterns don't match its own dir */
  { "a/b", "**/x", "a/b/x", FALSE, TRUE },
  { "a/b", "**/x", "a/b/c/x", FALSE, TRUE },
  { "a/b", "**/x", "a/x", FALSE, FALSE },
  /* non-ASCII names */
  { "", "caf\xc3\xa9/", "caf\xc3\xa9", TRUE, TRUE },
  { "", "*.\xc3\xa9", "x.\xc3\xa9", FALSE, TRUE },
};

static void
test_ignore_table (void)
{
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      const IgnoreCase *c = &cases[i];
      g_autoptr (FsIgnore) ignore = fs_ignore_new ();
      gboolean got;

      fs_ignore_add_patterns (ignore, c->dir, c->patterns);
      got = fs_ignore_matches (ignore, c->path, c->is_dir);
      if (got != c->expected)
        {
          g_autofree gchar *shown = g_strescape (c->patterns, NULL);
          g_test_message ("row %" G_GSIZE_FORMAT ": dir ‘%s’ patterns ‘%s’ path ‘%s’%s: "
                          "expected %s, got %s",
                          i, c->dir, shown, c->path, c->is_dir ? " (dir)" : "",
                          c->expected ? "ignored" : "kept", got ? "ignored" : "kept");
          g_test_fail ();
        }
    }
}

/* A deeper file's patterns come later and override the root's. */
static void
test_ignore_nested_override (void)
{
  g_autoptr (FsIgnore) ignore = fs_ignore_new ();

  fs_ignore_add_patterns (ignore, "", "*.log\n");
  fs_ignore_add_patterns (ignore, "keep", "!*.log\n");
  g_assert_true (fs_ignore_matches (ignore, "a.log", FALSE));
  g_assert_true (fs_ignore_matches (ignore, "other/a.log", FALSE));
  g_assert_false (fs_ignore_matches (ignore, "keep/a.log", FALSE));
  g_assert_false (fs_ignore_matches (ignore, "keep/deep/a.log", FALSE));
}

static void
test_ignore_empty (void)
{
  g_autoptr (FsIgnore) ignore = fs_ignore_new ();

  g_assert_false (fs_ignore_matches (ignore, "anything", FALSE));
  fs_ignore_add_patterns (ignore, "", "# only a comment\n\n!\n/\n");
  g_assert_false (fs_ignore_matches (ignore, "anything", TRUE));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/ignore/table", test_ignore_table);
  g_test_add_func ("/ignore/nested-override", test_ignore_nested_override);
  g_test_add_func ("/ignore/empty", test_ignore_empty);
  return g_test_run ();
}
