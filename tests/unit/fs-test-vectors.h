/* The test vectors of docs/format.md ("vector NAME: HEX" lines; a name
 * given on several lines is the concatenation), for the unit tests that
 * check the code against the format's own numbers. */
#pragma once
#include <glib.h>

G_BEGIN_DECLS

/* Every vector of $FOLDERSYNC_DOCS_DIR/format.md: name → value. */
GHashTable *fs_test_load_vectors (void);

/* The vector @name; a missing one ends the test. */
const gchar *fs_test_vector (GHashTable *vectors, const gchar *name);

G_END_DECLS
