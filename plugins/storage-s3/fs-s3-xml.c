/* A minimal XML tree over GMarkup (see fs-s3-xml.h). */
#include "config.h"

#include <string.h>
#include <glib/gi18n-lib.h>

#include "fs-s3-xml.h"

typedef struct
{
  FsS3XmlNode *root;
  GPtrArray *stack; /* FsS3XmlNode, not owned */
} ParseState;

static FsS3XmlNode *
node_new (const gchar *name)
{
  FsS3XmlNode *node = g_new0 (FsS3XmlNode, 1);
  const gchar *colon = strchr (name, ':');

  node->name = g_strdup (colon != NULL ? colon + 1 : name);
  node->text = g_string_new (NULL);
  node->children = g_ptr_array_new_with_free_func ((GDestroyNotify)fs_s3_xml_node_free);
  return node;
}

void
fs_s3_xml_node_free (FsS3XmlNode *node)
{
  if (node == NULL)
    return;
  g_free (node->name);
  g_string_free (node->text, TRUE);
  g_ptr_array_unref (node->children);
  g_free (node);
}

static void
on_start (GMarkupParseContext *context, const gchar *element_name, const gchar **attribute_names,
          const gchar **attribute_values, gpointer user_data, GError **error)
{
  ParseState *state = user_data;
  FsS3XmlNode *node = node_new (element_name);

  if (state->stack->len == 0)
    {
      if (state->root != NULL)
        {
          fs_s3_xml_node_free (node);
          g_set_error_literal (error, G_MARKUP_ERROR, G_MARKUP_ERROR_INVALID_CONTENT,
                               _("more than one root element"));
          return;
        }
      state->root = node;
    }
  else
    g_ptr_array_add (((FsS3XmlNode *)g_ptr_array_index (state->stack, state->stack->len - 1))
                       ->children,
                     node);
  g_ptr_array_add (state->stack, node);
}

static void
on_end (GMarkupParseContext *context, const gchar *element_name, gpointer user_data,
        GError **error)
{
  ParseState *state = user_data;

  g_ptr_array_set_size (state->stack, state->stack->len - 1);
}

static void
on_text (GMarkupParseContext *context, const gchar *text, gsize text_len, gpointer user_data,
         GError **error)
{
  ParseState *state = user_data;

  if (state->stack->len > 0)
    g_string_append_len (
      ((FsS3XmlNode *)g_ptr_array_index (state->stack, state->stack->len - 1))->text, text,
      (gssize)text_len);
}

FsS3XmlNode *
fs_s3_xml_parse (const gchar *data, gsize len, GError **error)
{
  static const GMarkupParser parser = { on_start, on_end, on_text, NULL, NULL };
  ParseState state = { NULL, g_ptr_array_new () };
  GMarkupParseContext *context
    = g_markup_parse_context_new (&parser, 0, &state, NULL);
  gboolean ok;

  ok = g_markup_parse_context_parse (context, data, (gssize)len, error)
       && g_markup_parse_context_end_parse (context, error);
  g_markup_parse_context_free (context);
  g_ptr_array_unref (state.stack);
  if (ok && state.root == NULL)
    {
      g_set_error_literal (error, G_MARKUP_ERROR, G_MARKUP_ERROR_EMPTY, _("empty XML document"));
      ok = FALSE;
    }
  if (!ok)
    {
      fs_s3_xml_node_free (state.root);
      return NULL;
    }
  return state.root;
}

FsS3XmlNode *
fs_s3_xml_child (FsS3XmlNode *node, const gchar *name)
{
  for (guint i = 0; node != NULL && i < node->children->len; i++)
    {
      FsS3XmlNode *child = g_ptr_array_index (node->children, i);
      if (strcmp (child->name, name) == 0)
        return child;
    }
  return NULL;
}

const gchar *
fs_s3_xml_child_text (FsS3XmlNode *node, const gchar *name)
{
  FsS3XmlNode *child = fs_s3_xml_child (node, name);

  return child != NULL ? child->text->str : NULL;
}
