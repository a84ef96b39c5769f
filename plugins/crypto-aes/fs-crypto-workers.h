/* Internal to the crypto-aes plugin: the plugin-wide thread pool that seals
 * and opens the chunks of big objects, and the caches of what a chunk needs
 * (1 MiB buffers, igzip level buffers, libdeflate decompressors), shared by every
 * stream of the process. */
#pragma once

#include <glib.h>

#include "fs-crypto-format.h"

G_BEGIN_DECLS

struct libdeflate_decompressor;

/* A unit of work for the pool; embed it first in the job's struct. */
typedef struct _FsCryptoJob FsCryptoJob;
struct _FsCryptoJob {
  void (*run) (FsCryptoJob *job);
};

/* The pool's threads (a stream keeps one more chunk than that in flight),
 * or 0 when there is no pool (then streams do everything in the reader's
 * thread). Starts the pool on first use. */
guint fs_crypto_workers_width (void);
/* Queues @job on the pool; fs_crypto_workers_width() must be > 0. */
void fs_crypto_workers_push (FsCryptoJob *job);

/* Size of a chunk buffer: the largest chunk frame (u32 frame + sealed chunk). */
#define FS_CHUNK_BUFFER_SIZE (4 + FS_OBJECT_MAX_SEALED_CHUNK)

/* A buffer of FS_CHUNK_BUFFER_SIZE bytes; _put wipes its first @used bytes
 * (what held plaintext or keys' output) and keeps it for the next _get. */
guint8 *fs_chunk_buffer_get (void);
void fs_chunk_buffer_put (guint8 *buffer, gsize used);

/* Compresses the @n bytes at @in into @out as one zlib-format (RFC 1950)
 * stream, with ISA-L's igzip; returns its length, or 0 when it does not fit
 * in @out_size bytes (or, after a g_critical(), when igzip fails otherwise:
 * the caller stores the data raw either way). Thread-safe. */
gsize fs_chunk_deflate (const guint8 *in, gsize n, guint8 *out, gsize out_size);

/* libdeflate decompressors; one user at a time. */
struct libdeflate_decompressor *fs_deflate_decompressor_get (void);
void fs_deflate_decompressor_put (struct libdeflate_decompressor *decompressor);

G_END_DECLS
