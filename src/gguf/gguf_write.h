/* GGUF v3 writer.
 *
 * Build a file in memory-light steps: metadata (typed setters, or copied
 * verbatim from a file opened with gguf_open), then the tensor table, then
 * gguf_writer_write(), which lays out the header, the metadata, the tensor
 * infos and the data section with every tensor at a multiple of
 * general.alignment (32 unless that key is set to another power of two).
 *
 * Tensor data is either borrowed (a pointer that must stay valid until the
 * write) or produced on demand by a callback, one tensor at a time, in table
 * order: a quantizer need not hold the whole output in memory.
 *
 * The file is written to "<path>.tmp.<pid>", flushed with fsync and renamed
 * over <path>; on any failure the temporary file is removed and <path> is
 * left untouched.
 *
 * Setting a key that already exists replaces its value in place (the key
 * keeps its position), so "copy everything, then override a few" works. */
#ifndef SLM_GGUF_WRITE_H
#define SLM_GGUF_WRITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gguf/gguf.h"
#include "slm.h"

typedef struct gguf_writer gguf_writer;

/* Fills dst (exactly nbytes, the tensor's size) with tensor `index` (its
 * position in the table, from 0). A non-OK status aborts the write; the
 * callback should record a message with slm_fail. */
typedef slm_status (*gguf_tensor_fill_fn)(void *ctx, size_t index, void *dst, size_t nbytes);

slm_status gguf_writer_new(gguf_writer **out);
void gguf_writer_free(gguf_writer *w);

/* Typed metadata setters. Keys and strings are copied; the key must be
 * non-empty. */
slm_status gguf_writer_set_str(gguf_writer *w, const char *key, const char *val);
slm_status gguf_writer_set_u32(gguf_writer *w, const char *key, uint32_t val);
slm_status gguf_writer_set_i32(gguf_writer *w, const char *key, int32_t val);
slm_status gguf_writer_set_u64(gguf_writer *w, const char *key, uint64_t val);
slm_status gguf_writer_set_f32(gguf_writer *w, const char *key, float val);
slm_status gguf_writer_set_bool(gguf_writer *w, const char *key, bool val);
slm_status gguf_writer_set_arr_str(gguf_writer *w, const char *key, const char *const *vals, size_t n);
slm_status gguf_writer_set_arr_i32(gguf_writer *w, const char *key, const int32_t *vals, size_t n);
slm_status gguf_writer_set_arr_f32(gguf_writer *w, const char *key, const float *vals, size_t n);

/* Copies one metadata entry of an open file exactly as encoded (any value
 * type, nested arrays included). */
slm_status gguf_writer_copy_kv(gguf_writer *w, const gguf_file *src, uint64_t kv_index);
/* Copies every entry of src (general.alignment too). */
slm_status gguf_writer_copy_all_kv(gguf_writer *w, const gguf_file *src);
/* Removes a key if present; true if it was there. */
bool gguf_writer_remove_kv(gguf_writer *w, const char *key);
size_t gguf_writer_n_kv(const gguf_writer *w);

/* Adds a tensor whose bytes are at `data` (borrowed until the write).
 * ne[0] is the row length; unused dims (>= n_dims) are ignored. nbytes must
 * equal the size the type and shape imply. Duplicate names are refused. */
slm_status gguf_writer_add_tensor(gguf_writer *w, const char *name, uint32_t ggml_type, int n_dims,
                                  const uint64_t ne[4], const void *data, size_t nbytes);
/* Adds a tensor whose bytes `fill` produces during the write. */
slm_status gguf_writer_add_tensor_cb(gguf_writer *w, const char *name, uint32_t ggml_type, int n_dims,
                                     const uint64_t ne[4], size_t nbytes, gguf_tensor_fill_fn fill,
                                     void *ctx);
size_t gguf_writer_n_tensors(const gguf_writer *w);
/* Size of the file gguf_writer_write would produce now. */
uint64_t gguf_writer_file_size(const gguf_writer *w);

/* Writes the file (see above). The writer can be written again or freed. */
slm_status gguf_writer_write(gguf_writer *w, const char *path);
/* The same bytes in a malloc'd buffer (*out, free() it; *len bytes) instead
 * of a file: the in-memory GGUF builder of the tests and fuzz targets, which
 * read it back with gguf_parse. */
slm_status gguf_writer_to_memory(gguf_writer *w, unsigned char **out, size_t *len);

#endif
