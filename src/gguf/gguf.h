/* GGUF v2/v3 reader. The file is memory-mapped (or a caller's buffer is used
 * as is); parsing validates every count, length and offset against the size
 * with overflow-checked arithmetic, so later accessors never read outside it. */
#ifndef SLM_GGUF_H
#define SLM_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "slm.h"

enum gguf_vtype {
    GGUF_T_U8 = 0, GGUF_T_I8 = 1, GGUF_T_U16 = 2, GGUF_T_I16 = 3,
    GGUF_T_U32 = 4, GGUF_T_I32 = 5, GGUF_T_F32 = 6, GGUF_T_BOOL = 7,
    GGUF_T_STRING = 8, GGUF_T_ARRAY = 9, GGUF_T_U64 = 10, GGUF_T_I64 = 11,
    GGUF_T_F64 = 12,
};

/* A string inside the file: not NUL-terminated. */
typedef struct gguf_str {
    const char *ptr;
    uint64_t len;
} gguf_str;

typedef struct gguf_kv {
    gguf_str key;
    uint32_t type;          /* enum gguf_vtype */
    /* scalars (type != ARRAY, != STRING): the value widened; u for unsigned
     * types and bool (any non-zero byte reads as 1), i for signed, f for floats */
    union { uint64_t u; int64_t i; double f; } num;
    gguf_str str;           /* type == STRING */
    /* arrays: element type, count, and the raw element bytes in the file.
     * For arrays of strings `strs` indexes every element; nested arrays are
     * validated but only reachable as raw bytes. */
    uint32_t arr_type;
    uint64_t arr_n;
    const uint8_t *arr_data;
    gguf_str *strs;
} gguf_kv;

#define GGUF_MAX_DIMS 4

typedef struct gguf_tensor {
    gguf_str name;
    uint32_t n_dims;
    uint64_t ne[GGUF_MAX_DIMS];  /* unused dims are 1; ne[0] is the row length */
    uint32_t type;               /* ggml type id, known to src/quant */
    uint64_t offset;             /* from the start of the data section */
    uint64_t nbytes;
    const void *data;
} gguf_tensor;

typedef struct gguf_file {
    const uint8_t *base;   /* the whole file */
    size_t size;
    void *map;             /* non-NULL when we own an mmap */
    uint32_t version;
    uint64_t n_kv, n_tensors;
    gguf_kv *kv;
    gguf_tensor *tensors;
    uint32_t alignment;    /* general.alignment, or 32 */
    uint64_t data_offset;  /* first multiple of alignment after the tensor
                              infos; may lie past the end of the file only
                              when there are no tensors */
} gguf_file;

/* Maps and parses a file. Errors name the problem (bad magic, unsupported
 * version, truncated at byte N, tensor NAME out of bounds, unknown type T). */
slm_status gguf_open(const char *path, gguf_file **out);
/* Parses a caller-owned buffer (kept referenced, not copied). */
slm_status gguf_parse(const void *buf, size_t size, gguf_file **out);
void gguf_close(gguf_file *f);

/* Lookups by NUL-terminated name; NULL when absent. */
const gguf_kv *gguf_find(const gguf_file *f, const char *key);
const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name);

bool gguf_str_eq(gguf_str s, const char *c);

/* Typed getters: false if absent or of a type that does not convert
 * losslessly (any integer type for ints, f32/f64 for floats). */
bool gguf_get_i64(const gguf_file *f, const char *key, int64_t *out);
bool gguf_get_f64(const gguf_file *f, const char *key, double *out);
bool gguf_get_bool(const gguf_file *f, const char *key, bool *out);
bool gguf_get_str(const gguf_file *f, const char *key, gguf_str *out);

/* Element i of a numeric array widened to double / int64. i >= arr_n, a kv
 * that is not an array, and element types that do not apply (strings and
 * nested arrays; floats for the int64 one) give 0. bool reads as 0/1; a u64
 * above INT64_MAX saturates in gguf_arr_i64. */
double gguf_arr_f64(const gguf_kv *kv, uint64_t i);
int64_t gguf_arr_i64(const gguf_kv *kv, uint64_t i);

const char *gguf_vtype_name(uint32_t t);

#endif
