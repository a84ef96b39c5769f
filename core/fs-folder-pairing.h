/* Pairing of a folder (issue #5): the envelope a share token carries is the
 * folder's key and storage settings as JSON; these functions build it from a
 * folder's configuration, issue a token for it on the folder's storage, and
 * redeem a token into a new folder's configuration. Blocking: call them from
 * a worker thread. The token and the key never reach a log or a message. */
#pragma once

#include "fs-folder-config.h"

G_BEGIN_DECLS

/* A token for @config's folder, valid @ttl_seconds (0: 5 minutes). With
 * @include_credentials the S3 access key and secret travel in the envelope;
 * otherwise the device that pairs brings its own. @long_token (may be NULL)
 * gets the long form when the storage can presign URLs (S3), else NULL. */
gchar *fs_folder_pairing_issue (const FsFolderConfig *config, guint ttl_seconds,
                                gboolean include_credentials, guint64 *expires,
                                gchar **long_token, GError **error);

/* Redeems @token on the storage @config names (endpoint and bucket, or a
 * local store) and fills @config from the envelope: key, prefix, region,
 * intervals, and credentials if they travelled. A long-form token brings
 * its own way to the envelope, and the envelope the endpoint and bucket
 * (unless @config names an endpoint). A malformed or mistyped token is
 * FS_PAIRING_ERROR_INVALID, an expired long form FS_PAIRING_ERROR_EXPIRED,
 * before any request. */
gboolean fs_folder_pairing_redeem (FsFolderConfig *config, const gchar *token, GError **error);

/* Deletes the expired envelopes of the pairing area on @config's storage. */
gboolean fs_folder_pairing_cleanup (const FsFolderConfig *config, guint *n_removed, GError **error);

G_END_DECLS
