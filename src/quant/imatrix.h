/* Importance matrices, in the GGUF layout llama.cpp's imatrix tool writes
 * (and `slm imatrix` writes too):
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
#ifndef SLM_QUANT_IMATRIX_H
#define SLM_QUANT_IMATRIX_H

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

#endif
