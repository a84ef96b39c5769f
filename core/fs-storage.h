/* FsStorage: the interface every storage backend plugin implements.
 *
 * Keys are '/'-separated strings relative to the backend's root (the store
 * directory, or the bucket). Calls are synchronous and thread-safe: engine
 * worker threads call them concurrently. */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define FS_TYPE_STORAGE (fs_storage_get_type ())
G_DECLARE_INTERFACE (FsStorage, fs_storage, FS, STORAGE, GObject)

typedef struct {
  gchar *key;
  guint64 size;
  /* Opaque. Changes whenever the object's bytes change; on a backend with
   * conditional puts, on every put (so a compare-and-swap has no ABA). */
  gchar *version;
} FsStorageObject;

FsStorageObject *fs_storage_object_new (const gchar *key, guint64 size, const gchar *version);
void fs_storage_object_free (FsStorageObject *obj);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (FsStorageObject, fs_storage_object_free)

/* Passed as expected_version to fs_storage_put(): only create, never replace. */
#define FS_STORAGE_IF_ABSENT ""

struct _FsStorageInterface {
  GTypeInterface parent_iface;

  /* Settings come as a{sv}-like string table: "root" for storage-local, etc. */
  gboolean (*configure) (FsStorage *self, GHashTable *settings, GError **error);
  gboolean (*list) (FsStorage *self, const gchar *prefix, const gchar *delimiter,
                    const gchar *start_after, guint max_keys, GPtrArray **objects,
                    GPtrArray **common_prefixes, gboolean *truncated, GError **error);
  FsStorageObject *(*stat) (FsStorage *self, const gchar *key, GError **error);
  GInputStream *(*get) (FsStorage *self, const gchar *key, guint64 offset, gint64 length,
                        GError **error);
  gboolean (*put) (FsStorage *self, const gchar *key, GInputStream *source,
                   const gchar *expected_version, gchar **new_version,
                   GCancellable *cancellable, GError **error);
  gboolean (*delete) (FsStorage *self, const gchar *key, GError **error);
  gboolean (*supports_conditional_put) (FsStorage *self);
  /* Optional: a URL that lets anyone holding it do @method ("GET" or
   * "DELETE") on @key, without credentials, for @expires_seconds. */
  gchar *(*presign) (FsStorage *self, const gchar *method, const gchar *key,
                     guint expires_seconds, GError **error);
};

gboolean fs_storage_configure (FsStorage *self, GHashTable *settings, GError **error);

/* The keys every backend accepts: 1 to 1024 bytes of UTF-8, relative, '/'-
 * separated, without empty, "." or ".." segments. Anything else is
 * FS_STORAGE_ERROR_INVALID in every backend, so no backend can be asked for a
 * key another one could not store. */
gboolean fs_storage_check_key (const gchar *key, GError **error);

/* One page of keys under @prefix, in byte order, strictly after @start_after
 * (may be NULL). With a @delimiter, keys that contain it after the prefix are
 * rolled up into @common_prefixes (each ending in the delimiter). @objects
 * holds FsStorageObject; @common_prefixes holds gchar*. */
gboolean fs_storage_list (FsStorage *self, const gchar *prefix, const gchar *delimiter,
                          const gchar *start_after, guint max_keys, GPtrArray **objects,
                          GPtrArray **common_prefixes, gboolean *truncated, GError **error);

/* Every key under @prefix (all pages), as FsStorageObject. */
GPtrArray *fs_storage_list_all (FsStorage *self, const gchar *prefix, const gchar *start_after,
                                GError **error);

FsStorageObject *fs_storage_stat (FsStorage *self, const gchar *key, GError **error);

/* @length -1 reads to the end. A missing key is FS_STORAGE_ERROR_NOT_FOUND. */
GInputStream *fs_storage_get (FsStorage *self, const gchar *key, guint64 offset, gint64 length,
                              GError **error);
GBytes *fs_storage_get_bytes (FsStorage *self, const gchar *key, gsize max_size, GError **error);

/* Store all of @source under @key. @expected_version NULL: unconditional;
 * FS_STORAGE_IF_ABSENT: fail with PRECONDITION_FAILED if the key exists;
 * otherwise fail unless the current version equals it. Readers never see a
 * partially written object. A backend may send @source while it reads it
 * when its length was announced (fs-stream-length.h); it then fails with
 * G_IO_ERROR_PARTIAL_INPUT if the length turns out otherwise, and with
 * FS_STORAGE_ERROR_STREAM_CONSUMED after a transient failure it cannot
 * replay: put again from a fresh stream. */
gboolean fs_storage_put (FsStorage *self, const gchar *key, GInputStream *source,
                         const gchar *expected_version, gchar **new_version,
                         GCancellable *cancellable, GError **error);
gboolean fs_storage_put_bytes (FsStorage *self, const gchar *key, GBytes *bytes,
                               const gchar *expected_version, gchar **new_version,
                               GError **error);

/* Deleting a missing key succeeds. */
gboolean fs_storage_delete (FsStorage *self, const gchar *key, GError **error);

/* Whether expected_version in put() is enforced by this backend. */
gboolean fs_storage_supports_conditional_put (FsStorage *self);
/* A presigned URL for @method ("GET" or "DELETE") on @key, valid
 * @expires_seconds. FS_STORAGE_ERROR_NOT_SUPPORTED on backends that have no
 * such thing (storage-local). The URL is a bearer credential: never log it. */
gchar *fs_storage_presign (FsStorage *self, const gchar *method, const gchar *key,
                           guint expires_seconds, GError **error);

G_END_DECLS
