/* Small json-glib helpers. */
#include "fs-json.h"

void
fs_json_add_string (JsonBuilder *builder, const gchar *name, const gchar *value)
{
  if (value == NULL)
    return;
  json_builder_set_member_name (builder, name);
  json_builder_add_string_value (builder, value);
}

void
fs_json_add_int (JsonBuilder *builder, const gchar *name, gint64 value)
{
  json_builder_set_member_name (builder, name);
  json_builder_add_int_value (builder, value);
}

GBytes *
fs_json_builder_to_bytes (JsonBuilder *builder)
{
  g_autoptr(JsonGenerator) gen = json_generator_new ();
  g_autoptr(JsonNode) root = json_builder_get_root (builder);
  gsize len = 0;
  gchar *data;

  json_generator_set_root (gen, root);
  data = json_generator_to_data (gen, &len);
  return g_bytes_new_take (data, len);
}

/* The member @name of @object if it is a plain value of @type, else NULL. */
static JsonNode *
value_of_type (JsonObject *object, const gchar *name, GType type)
{
  JsonNode *node = json_object_get_member (object, name);
  if (node == NULL || JSON_NODE_TYPE (node) != JSON_NODE_VALUE ||
      json_node_get_value_type (node) != type)
    return NULL;
  return node;
}

gchar *
fs_json_dup_string (JsonObject *object, const gchar *name)
{
  JsonNode *node = value_of_type (object, name, G_TYPE_STRING);
  return node != NULL ? g_strdup (json_node_get_string (node)) : NULL;
}

gint64
fs_json_get_int (JsonObject *object, const gchar *name, gint64 fallback)
{
  JsonNode *node = value_of_type (object, name, G_TYPE_INT64);
  return node != NULL ? json_node_get_int (node) : fallback;
}

gboolean
fs_json_get_bool (JsonObject *object, const gchar *name, gboolean fallback)
{
  JsonNode *node = value_of_type (object, name, G_TYPE_BOOLEAN);
  return node != NULL ? json_node_get_boolean (node) : fallback;
}
