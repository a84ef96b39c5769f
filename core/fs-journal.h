/* The remote journal (DESIGN §4): each device appends sealed records under
 * <prefix>journal/<device-id>/<seq as 16 hex digits>; others read only what
 * is new after their per-device cursor. */
#pragma once

#include "fs-crypto.h"
#include "fs-index.h"
#include "fs-storage.h"
#include "fs-types.h"

G_BEGIN_DECLS

typedef struct {
  guint records_read;   /* records fetched and opened */
  guint devices;        /* devices with a journal */
  guint list_requests;
} FsJournalStats;

/* The storage key of @device_id's record @seq under @prefix ("" or ending in '/'). */
gchar *fs_journal_record_key (const gchar *prefix, const gchar *device_id, gint64 seq);

/* Whether a record's path stays inside the folder: relative, no empty, "."
 * or ".." segment, nothing named like FolderSync's own ".foldersync.*". */
gboolean fs_journal_path_valid (const gchar *path);

/* The most records one journal object (a segment) holds. */
#define FS_JOURNAL_SEGMENT_MAX_RECORDS 512

GBytes *fs_record_to_json (const FsRecord *record);
FsRecord *fs_record_from_json (GBytes *json, GError **error);
/* The records of a journal object's plaintext: one record (a JSON object)
 * or a segment (a JSON array of them). */
GPtrArray *fs_records_from_json (GBytes *json, GError **error);

/* Seals @record and writes it at its key (device_id, seq), never over an
 * existing record where the backend supports create-if-absent (then a taken
 * key is FS_STORAGE_ERROR_PRECONDITION_FAILED). */
gboolean fs_journal_append (FsStorage *storage, FsCrypto *crypto, const gchar *prefix,
                            const FsRecord *record, GError **error);

/* Writes @n_records records of one device, numbered consecutively, as one
 * object (a segment) at the key of the last one's seq. One record is written
 * exactly as fs_journal_append() writes it. */
gboolean fs_journal_append_segment (FsStorage *storage, FsCrypto *crypto, const gchar *prefix,
                                    const FsRecord *const *records, guint n_records,
                                    GError **error);

/* The highest record number of @device_id's journal objects after @after
 * (@after itself when there are none): a writer starts past it, since
 * create-if-absent only protects a segment's last key. */
gboolean fs_journal_newest_seq (FsStorage *storage, const gchar *prefix, const gchar *device_id,
                                gint64 after, gint64 *newest, GError **error);

/* Reads every device's records after its cursor in @index, adds them to the
 * index and advances the cursors (one transaction per device). A record that
 * fails to open stops that device's journal at it (reported in @warnings, as
 * are gaps and rollbacks); other devices go on. With @audit, cursors are
 * ignored and every record is read again. */
gboolean fs_journal_fetch (FsStorage *storage, FsCrypto *crypto, const gchar *prefix,
                           FsIndex *index, gboolean audit, FsJournalStats *stats,
                           GPtrArray *warnings, GError **error);

G_END_DECLS
