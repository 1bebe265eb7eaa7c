/* The base-distribution file of `slm perplexity --kl-base-save`: a 64-byte
 * header, then one fixed-size record per scored position (little-endian):
 *
 *   header: "SLMKLD01", u32 n_vocab, u32 n_ctx, u32 top_k, u32 n_chunks,
 *           u64 hash of the scored windows' token ids (FNV-1a),
 *           u64 n_records, 24 zero bytes
 *   record: f32 NLL of the token that followed, then top_k pairs sorted by
 *           log-probability, highest first: i32 token id, f32 log-probability
 *
 * 4 + 8 * top_k bytes a position (516 for k = 64) instead of 4 * n_vocab
 * (1 MiB for Gemma's 262144 tokens). */
#ifndef SLM_EVAL_KL_FILE_H
#define SLM_EVAL_KL_FILE_H

#include <stdint.h>
#include <stdio.h>

#include "slm.h"

typedef struct kl_header {
    uint32_t n_vocab, n_ctx, top_k, n_chunks;
    uint64_t tokens_hash, n_records;
} kl_header;

typedef struct kl_record {
    float nll;
    int32_t *ids;
    float *logp;
} kl_record;

typedef struct kl_file {
    FILE *f;
    kl_header h;
    char *path, *tmp_path;     /* writing: the final name and the temporary one */
    uint64_t n_done;
    unsigned char *buf;        /* one record's bytes */
} kl_file;

slm_status kl_record_alloc(kl_record *r, int top_k);
void kl_record_free(kl_record *r);

/* Writing: records go to "<path>.tmp.<pid>"; kl_file_commit checks the
 * record count, flushes and renames (and frees). */
slm_status kl_file_create(const char *path, const kl_header *h, kl_file **out);
slm_status kl_file_write(kl_file *k, const kl_record *r);
slm_status kl_file_commit(kl_file *k);

/* Reading: the header is validated against the file size. */
slm_status kl_file_open(const char *path, kl_file **out);
/* Fails with a message when the file was made from other tokens or settings. */
slm_status kl_file_check(const kl_file *k, const kl_header *want);
slm_status kl_file_read(kl_file *k, kl_record *r);

/* Closes either kind; an uncommitted written file is removed. NULL is fine. */
void kl_file_close(kl_file *k);

#endif
