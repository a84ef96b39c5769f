/* Small json-glib helpers shared by the files that read and write JSON
 * (journal records, folder configs, pairing envelopes). */
#pragma once

#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* Adds "name": value; a NULL string is left out. */
void fs_json_add_string (JsonBuilder *builder, const gchar *name, const gchar *value);
void fs_json_add_int (JsonBuilder *builder, const gchar *name, gint64 value);

/* The builder's object as compact JSON bytes. */
GBytes *fs_json_builder_to_bytes (JsonBuilder *builder);

/* A copy of member @name if it is a string, else NULL. */
gchar *fs_json_dup_string (JsonObject *object, const gchar *name);
/* The member as an integer or a boolean; @fallback when it is absent or of
 * another type (never a critical on untrusted input). */
gint64 fs_json_get_int (JsonObject *object, const gchar *name, gint64 fallback);
gboolean fs_json_get_bool (JsonObject *object, const gchar *name, gboolean fallback);

G_END_DECLS
