/* A minimal XML tree built with GMarkup, for S3's small response documents
 * (ListObjectsV2, errors, multipart results). Namespaces are ignored: element
 * names are compared without their prefix. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _FsS3XmlNode FsS3XmlNode;
struct _FsS3XmlNode
{
  gchar *name;
  GString *text;
  GPtrArray *children; /* FsS3XmlNode */
};

/* The document's root element, or NULL with @error set. */
FsS3XmlNode *fs_s3_xml_parse (const gchar *data, gsize len, GError **error);
void fs_s3_xml_node_free (FsS3XmlNode *node);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (FsS3XmlNode, fs_s3_xml_node_free)

/* The first child element called @name, or NULL. */
FsS3XmlNode *fs_s3_xml_child (FsS3XmlNode *node, const gchar *name);
/* The text of the first child called @name, or NULL. */
const gchar *fs_s3_xml_child_text (FsS3XmlNode *node, const gchar *name);

G_END_DECLS
