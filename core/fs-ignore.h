/* .foldersyncignore: gitignore-style patterns. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _FsIgnore FsIgnore;

FsIgnore *fs_ignore_new (void);
void fs_ignore_free (FsIgnore *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (FsIgnore, fs_ignore_free)

/* Adds the patterns of a .foldersyncignore file found in directory @dir
 * (relative to the root, "" for the root); patterns apply below @dir. */
void fs_ignore_add_patterns (FsIgnore *self, const gchar *dir, const gchar *contents);

/* Whether relative @path (a directory if @is_dir) is ignored. */
gboolean fs_ignore_matches (FsIgnore *self, const gchar *path, gboolean is_dir);
/* The same, and also when a directory above @path is ignored (a walk never
 * enters one; a single path must be checked against each). */
gboolean fs_ignore_matches_path (FsIgnore *self, const gchar *path, gboolean is_dir);

G_END_DECLS
