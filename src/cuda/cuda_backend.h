/* The CUDA side of slm, as far as it is built today: device probing and the
 * kernels of the op table (quantized matrix-vector products reading GGUF
 * blocks as they are stored, RMSNorm, RoPE, gated activations), with host
 * entry points that copy in, run one kernel and copy out, so that tests can
 * hold every kernel to the CPU reference.
 *
 * Status: compiled for sm_90 (+ PTX) wherever nvcc exists, never yet run: no
 * GPU machine was lent to the sessions that wrote it. Nothing in the CLI
 * offers a CUDA device until the kernels have passed their tests on one.
 * Plain C interface so that the library and the tests stay C. */
#ifndef SLM_CUDA_BACKEND_H
#define SLM_CUDA_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Number of usable CUDA devices; 0 with the reason in why (driver missing,
 * no device, ...). */
int slm_cuda_device_count(char *why, size_t cap);

/* y[r] = sum_c W[r][c] x[c] for a weight of `rows` rows of `cols` elements
 * stored in ggml type `type` (row r at w + r*row_bytes), on device 0.
 * Returns 0, or -1 with a message in err. */
int slm_cuda_matvec_host(uint32_t type, const void *w, size_t row_bytes, int rows, int cols,
                         const float *x, float *y, char *err, size_t cap);

/* out = x / rms(x) * w over `rows` rows of n; 0 or -1. */
int slm_cuda_rmsnorm_host(const float *x, const float *w, int rows, int n, float eps, float *out,
                          char *err, size_t cap);

/* Rotates n_heads heads of head_dim at position pos (neox: pairs (i, i+n_rot/2),
 * else adjacent pairs) in place; 0 or -1. */
int slm_cuda_rope_host(float *x, int n_heads, int head_dim, int n_rot, int pos, float base, int neox,
                       char *err, size_t cap);

/* x = act(x) * up over n values, act = gelu_tanh (gelu != 0) or silu; 0 or -1. */
int slm_cuda_gated_act_host(float *x, const float *up, int n, int gelu, char *err, size_t cap);

#ifdef __cplusplus
}
#endif
#endif
