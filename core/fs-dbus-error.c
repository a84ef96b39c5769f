/* D-Bus error names for the error domains of libfoldersync and foldersyncd. */
#include "fs-dbus-error.h"

#include "fs-error.h"

#define FS_DBUS_ERROR_PREFIX "org.toolbox.FolderSync.Error."

/* Not G_DEFINE_QUARK: clang-format would put spaces into its quark name. */
GQuark
fs_daemon_error_quark (void)
{
  return g_quark_from_static_string ("fs-daemon-error-quark");
}

/* A D-Bus name can belong to one (domain, code) only, so codes that would
 * share a name get a domain word in theirs (StorageFailed, IndexCorrupt). */
static const GDBusErrorEntry storage_entries[] = {
  { FS_STORAGE_ERROR_FAILED, FS_DBUS_ERROR_PREFIX "StorageFailed" },
  { FS_STORAGE_ERROR_NOT_FOUND, FS_DBUS_ERROR_PREFIX "ObjectNotFound" },
  { FS_STORAGE_ERROR_PRECONDITION_FAILED, FS_DBUS_ERROR_PREFIX "PreconditionFailed" },
  { FS_STORAGE_ERROR_AUTH, FS_DBUS_ERROR_PREFIX "Auth" },
  { FS_STORAGE_ERROR_TRANSIENT, FS_DBUS_ERROR_PREFIX "Transient" },
  { FS_STORAGE_ERROR_NO_SPACE, FS_DBUS_ERROR_PREFIX "NoSpace" },
  { FS_STORAGE_ERROR_INVALID, FS_DBUS_ERROR_PREFIX "StorageInvalid" },
  { FS_STORAGE_ERROR_NOT_SUPPORTED, FS_DBUS_ERROR_PREFIX "StorageNotSupported" },
  { FS_STORAGE_ERROR_NO_BUCKET, FS_DBUS_ERROR_PREFIX "NoBucket" },
  { FS_STORAGE_ERROR_STREAM_CONSUMED, FS_DBUS_ERROR_PREFIX "StreamConsumed" },
};

static const GDBusErrorEntry crypto_entries[] = {
  { FS_CRYPTO_ERROR_FAILED, FS_DBUS_ERROR_PREFIX "CryptoFailed" },
  { FS_CRYPTO_ERROR_INVALID_KEY, FS_DBUS_ERROR_PREFIX "InvalidKey" },
  { FS_CRYPTO_ERROR_WRONG_KEY, FS_DBUS_ERROR_PREFIX "CryptoWrongKey" },
  { FS_CRYPTO_ERROR_CORRUPT, FS_DBUS_ERROR_PREFIX "Corrupt" },
};

static const GDBusErrorEntry engine_entries[] = {
  /* Never sent by foldersyncd: fs_dbus_error_normalize() makes them daemon
   * errors, which own the plain names. */
  { FS_ENGINE_ERROR_FAILED, FS_DBUS_ERROR_PREFIX "EngineFailed" },
  { FS_ENGINE_ERROR_INVALID_ARGUMENT, FS_DBUS_ERROR_PREFIX "EngineInvalidArgument" },
  { FS_ENGINE_ERROR_KEY_FILE, FS_DBUS_ERROR_PREFIX "KeyFile" },
  { FS_ENGINE_ERROR_WRONG_KEY, FS_DBUS_ERROR_PREFIX "WrongKey" },
  { FS_ENGINE_ERROR_NOT_A_STORE, FS_DBUS_ERROR_PREFIX "NotAStore" },
  { FS_ENGINE_ERROR_FOLDER, FS_DBUS_ERROR_PREFIX "Folder" },
  { FS_ENGINE_ERROR_ROLLBACK, FS_DBUS_ERROR_PREFIX "Rollback" },
  { FS_ENGINE_ERROR_PARTIAL, FS_DBUS_ERROR_PREFIX "Partial" },
  { FS_ENGINE_ERROR_BUSY, FS_DBUS_ERROR_PREFIX "Busy" },
};

static const GDBusErrorEntry index_entries[] = {
  { FS_INDEX_ERROR_FAILED, FS_DBUS_ERROR_PREFIX "IndexFailed" },
  { FS_INDEX_ERROR_SCHEMA_TOO_NEW, FS_DBUS_ERROR_PREFIX "IndexSchemaTooNew" },
  { FS_INDEX_ERROR_CORRUPT, FS_DBUS_ERROR_PREFIX "IndexCorrupt" },
};

static const GDBusErrorEntry daemon_entries[] = {
  { FS_DAEMON_ERROR_FAILED, FS_DBUS_ERROR_PREFIX "Failed" },
  { FS_DAEMON_ERROR_NOT_FOUND, FS_DBUS_ERROR_PREFIX "NotFound" },
  { FS_DAEMON_ERROR_ALREADY_EXISTS, FS_DBUS_ERROR_PREFIX "AlreadyExists" },
  { FS_DAEMON_ERROR_NOT_SUPPORTED, FS_DBUS_ERROR_PREFIX "NotSupported" },
  { FS_DAEMON_ERROR_INVALID_ARGUMENT, FS_DBUS_ERROR_PREFIX "InvalidArgument" },
};

static const GDBusErrorEntry plugin_entries[] = {
  { FS_PLUGIN_ERROR_NOT_FOUND, FS_DBUS_ERROR_PREFIX "PluginNotFound" },
  { FS_PLUGIN_ERROR_INVALID, FS_DBUS_ERROR_PREFIX "PluginInvalid" },
};

static const GDBusErrorEntry pairing_entries[] = {
  { FS_PAIRING_ERROR_INVALID, FS_DBUS_ERROR_PREFIX "PairingInvalid" },
  { FS_PAIRING_ERROR_NOT_FOUND, FS_DBUS_ERROR_PREFIX "PairingNotFound" },
  { FS_PAIRING_ERROR_EXPIRED, FS_DBUS_ERROR_PREFIX "Expired" },
  { FS_PAIRING_ERROR_FAILED, FS_DBUS_ERROR_PREFIX "PairingFailed" },
};

void
fs_dbus_error_register (void)
{
  static gsize storage_quark, crypto_quark, engine_quark, index_quark, daemon_quark, plugin_quark;
  static gsize pairing_quark;

  g_dbus_error_register_error_domain ("fs-storage-error-quark", &storage_quark, storage_entries,
                                      G_N_ELEMENTS (storage_entries));
  g_dbus_error_register_error_domain ("fs-crypto-error-quark", &crypto_quark, crypto_entries,
                                      G_N_ELEMENTS (crypto_entries));
  g_dbus_error_register_error_domain ("fs-engine-error-quark", &engine_quark, engine_entries,
                                      G_N_ELEMENTS (engine_entries));
  g_dbus_error_register_error_domain ("fs-index-error-quark", &index_quark, index_entries,
                                      G_N_ELEMENTS (index_entries));
  g_dbus_error_register_error_domain ("fs-daemon-error-quark", &daemon_quark, daemon_entries,
                                      G_N_ELEMENTS (daemon_entries));
  g_dbus_error_register_error_domain ("fs-plugin-error-quark", &plugin_quark, plugin_entries,
                                      G_N_ELEMENTS (plugin_entries));
  g_dbus_error_register_error_domain ("fs-pairing-error-quark", &pairing_quark, pairing_entries,
                                      G_N_ELEMENTS (pairing_entries));
}

GError *
fs_dbus_error_normalize (const GError *error)
{
  g_return_val_if_fail (error != NULL, NULL);

  fs_dbus_error_register ();
  if (error->domain == FS_ENGINE_ERROR && error->code == FS_ENGINE_ERROR_INVALID_ARGUMENT)
    return g_error_new_literal (FS_DAEMON_ERROR, FS_DAEMON_ERROR_INVALID_ARGUMENT, error->message);
  if (error->domain == FS_ENGINE_ERROR && error->code == FS_ENGINE_ERROR_FAILED)
    return g_error_new_literal (FS_DAEMON_ERROR, FS_DAEMON_ERROR_FAILED, error->message);
  if (error->domain == FS_STORAGE_ERROR || error->domain == FS_CRYPTO_ERROR
      || error->domain == FS_ENGINE_ERROR || error->domain == FS_INDEX_ERROR
      || error->domain == FS_DAEMON_ERROR || error->domain == FS_PLUGIN_ERROR
      || error->domain == FS_PAIRING_ERROR)
    return g_error_copy (error);
  return g_error_new_literal (FS_DAEMON_ERROR, FS_DAEMON_ERROR_FAILED, error->message);
}
