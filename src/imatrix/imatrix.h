/* Importance matrices: the file format's reader and writer in one place
 * (src/imatrix/imatrix_file.c), and the collector that fills one from the
 * forward pass (imatrix_collect.c; its API, slm_imcollect_*, is public in
 * slm.h). The GGUF layout is llama.cpp's imatrix tool's, so either tool's
 * quantizer reads either's files:
 *
 *   general.type            string "imatrix" (optional here; anything else is refused)
 *   imatrix.datasets        array of strings: calibration file names (optional)
 *   imatrix.chunk_count     u32, imatrix.chunk_size u32 (optional)
 *   for every weight matrix W that saw activations, two F32 tensors:
 *     "<W name>.in_sum2"  ne = [n_cols, n_mat]: per input column, the sum over
 *                         all tokens of the squared activation that multiplied
 *                         that column (n_mat = 1, or the expert count of a
 *                         3-D expert tensor)
 *     "<W name>.counts"   ne = [1, n_mat]: the number of tokens summed
 *
 * The importance of column c of matrix m is in_sum2[m][c] / counts[m], the
 * mean squared activation. Entries whose count is zero are ignored. */
#ifndef SLM_IMATRIX_H
#define SLM_IMATRIX_H

#include <stdint.h>

#include "slm.h"

typedef struct slm_imatrix slm_imatrix;

/* Loads and validates the whole file (every pair present, F32, shapes
 * consistent, values finite and >= 0). Errors name the file and entry. */
slm_status slm_imatrix_load(const char *path, slm_imatrix **out);
/* The same from a parsed file (kept by the caller); label names it in errors. */
struct gguf_file;
slm_status slm_imatrix_from_gguf(const struct gguf_file *f, const char *label, slm_imatrix **out);
void slm_imatrix_free(slm_imatrix *im);
int slm_imatrix_n_entries(const slm_imatrix *im);
/* Name of the first dataset, or NULL. */
const char *slm_imatrix_dataset(const slm_imatrix *im);
uint32_t slm_imatrix_chunk_count(const slm_imatrix *im);

/* Importance of tensor `name`: n_mat rows of n_cols means (row m at
 * + m*n_cols), or NULL when the file has no usable entry for it. */
const float *slm_imatrix_find(const slm_imatrix *im, const char *name, int64_t *n_cols, int64_t *n_mat);

/* One matrix's statistics for the writer: sum2[0..n_in) of squared inputs
 * over `count` tokens. */
typedef struct slm_imatrix_sums {
    const char *name;       /* the weight tensor's name */
    int n_in;
    const double *sum2;
    uint64_t count;
} slm_imatrix_sums;

/* Writes the entries with count > 0 (in the order given) as an imatrix GGUF
 * file at path (temporary file + rename: see gguf_write.h). dataset may be
 * NULL (then imatrix.datasets is empty). */
slm_status slm_imatrix_write(const char *path, const slm_imatrix_sums *e, int n, const char *dataset,
                             uint32_t chunk_count, uint32_t chunk_size);

#endif
