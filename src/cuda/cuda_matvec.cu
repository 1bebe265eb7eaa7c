// Quantized matrix-vector products on CUDA, reading GGUF blocks as stored.
//
// Work unit: 32 consecutive elements of a row. Every type splits into such
// units (a 32-element block is one unit, a 256-element K-quant super-block
// eight, float types any 32 values), so one warp per row hands units to its
// lanes round-robin and every lane stays busy even on short K-quant rows.
// Each lane dequantizes its unit into registers and dots it with x (f32, read
// through the cache); the warp then sums with shuffles. Blocks sit at any byte
// address (18-, 22-, 34-byte blocks), so multi-byte fields are read bytewise.
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>
#include <stdio.h>

#include "cuda/cuda_backend.h"
#include "cuda/cuda_common.h"

namespace {

// ggml type ids (see src/quant/quant.h)
enum : uint32_t {
    T_F32 = 0, T_F16 = 1, T_Q4_0 = 2, T_Q4_1 = 3, T_Q5_0 = 6, T_Q5_1 = 7, T_Q8_0 = 8,
    T_Q2_K = 10, T_Q3_K = 11, T_Q4_K = 12, T_Q5_K = 13, T_Q6_K = 14, T_BF16 = 30,
};

__device__ __forceinline__ float ld_f16(const uint8_t *p) {
    uint16_t h = (uint16_t)(p[0] | (p[1] << 8));
    return __half2float(__ushort_as_half(h));
}
__device__ __forceinline__ uint32_t ld_u32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

// 6-bit scale and min of sub-block j of a Q4_K / Q5_K super-block.
__device__ __forceinline__ void k4_scale_min(const uint8_t *s, int j, int *sc, int *m) {
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 15) | ((s[j - 4] >> 6) << 4);
        *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

// Signed 6-bit scale i (0..15) of a Q3_K super-block.
__device__ __forceinline__ int k3_scale(const uint8_t *s, int i) {
    int lo = i < 8 ? (s[i] & 15) : (s[i - 8] >> 4);
    int hi = (s[8 + (i & 3)] >> (2 * (i >> 2))) & 3;
    return (lo | (hi << 4)) - 32;
}

struct type_shape {
    int block_elems;   // elements per stored block (1 for float types)
    int block_bytes;
};

__host__ __device__ constexpr type_shape shape_of(uint32_t t) {
    switch (t) {
    case T_F32: return {1, 4};
    case T_F16: case T_BF16: return {1, 2};
    case T_Q4_0: return {32, 18};
    case T_Q4_1: return {32, 20};
    case T_Q5_0: return {32, 22};
    case T_Q5_1: return {32, 24};
    case T_Q8_0: return {32, 34};
    case T_Q2_K: return {256, 84};
    case T_Q3_K: return {256, 110};
    case T_Q4_K: return {256, 144};
    case T_Q5_K: return {256, 176};
    case T_Q6_K: return {256, 210};
    default: return {0, 0};
    }
}

// Dot product of unit u (elements 32u .. 32u+31) of a row with x.
template <uint32_t T>
__device__ __forceinline__ float unit_dot(const uint8_t *row, int u, const float *__restrict__ x) {
    const float *xs = x + 32 * u;
    float acc = 0.f;
    if constexpr (T == T_F32) {
        const float *w = reinterpret_cast<const float *>(row) + 32 * u;
        for (int l = 0; l < 32; l++) acc += w[l] * xs[l];
    } else if constexpr (T == T_F16 || T == T_BF16) {
        const uint8_t *w = row + 64 * u;
        for (int l = 0; l < 32; l++) {
            float v = T == T_F16 ? ld_f16(w + 2 * l)
                                 : __uint_as_float((uint32_t)(w[2 * l] | (w[2 * l + 1] << 8)) << 16);
            acc += v * xs[l];
        }
    } else if constexpr (T == T_Q4_0 || T == T_Q4_1 || T == T_Q5_0 || T == T_Q5_1 || T == T_Q8_0) {
        constexpr type_shape s = shape_of(T);
        const uint8_t *b = row + (size_t)u * s.block_bytes;
        float d = ld_f16(b);
        if constexpr (T == T_Q8_0) {
            const int8_t *q = reinterpret_cast<const int8_t *>(b + 2);
            for (int l = 0; l < 32; l++) acc += (float)q[l] * xs[l];
            return acc * d;
        } else {
            constexpr bool has_min = T == T_Q4_1 || T == T_Q5_1;
            constexpr bool five = T == T_Q5_0 || T == T_Q5_1;
            float m = has_min ? ld_f16(b + 2) : 0.f;
            uint32_t qh = five ? ld_u32(b + (has_min ? 4 : 2)) : 0u;
            const uint8_t *qs = b + 2 + (has_min ? 2 : 0) + (five ? 4 : 0);
            constexpr int off = five ? (has_min ? 0 : 16) : (has_min ? 0 : 8);
            float qsum = 0.f, xsum = 0.f;
            for (int j = 0; j < 16; j++) {
                int lo = qs[j] & 15, hi = qs[j] >> 4;
                if (five) {
                    lo |= (int)((qh >> j) & 1) << 4;
                    hi |= (int)((qh >> (j + 16)) & 1) << 4;
                }
                qsum += (float)(lo - off) * xs[j] + (float)(hi - off) * xs[j + 16];
                if (has_min) xsum += xs[j] + xs[j + 16];
            }
            return d * qsum + m * xsum;
        }
    } else {
        constexpr type_shape s = shape_of(T);
        const uint8_t *b = row + (size_t)(u >> 3) * s.block_bytes;
        int j = u & 7;  // 32-element sub-block of the super-block
        if constexpr (T == T_Q2_K) {
            const uint8_t *sc = b, *qs = b + 16;
            float d = ld_f16(b + 80), dmin = ld_f16(b + 82);
            int h = j >> 2, sh = 2 * (j & 3);
            for (int half = 0; half < 2; half++) {
                int si = j * 2 + half;
                float dl = d * (float)(sc[si] & 15), ml = dmin * (float)(sc[si] >> 4);
                float qsum = 0.f, xsum = 0.f;
                for (int l = 16 * half; l < 16 * half + 16; l++) {
                    qsum += (float)((qs[h * 32 + l] >> sh) & 3) * xs[l];
                    xsum += xs[l];
                }
                acc += dl * qsum - ml * xsum;
            }
        } else if constexpr (T == T_Q3_K) {
            const uint8_t *hm = b, *qs = b + 32;
            float d = ld_f16(b + 108);
            int h = j >> 2, sh = 2 * (j & 3);
            for (int half = 0; half < 2; half++) {
                float dl = d * (float)k3_scale(b + 96, j * 2 + half);
                float qsum = 0.f;
                for (int l = 16 * half; l < 16 * half + 16; l++) {
                    int lo = (qs[h * 32 + l] >> sh) & 3;
                    int hb = (hm[l] >> j) & 1;
                    qsum += (float)(lo - (hb ? 0 : 4)) * xs[l];
                }
                acc += dl * qsum;
            }
        } else if constexpr (T == T_Q4_K || T == T_Q5_K) {
            constexpr bool five = T == T_Q5_K;
            const uint8_t *qh = b + 16, *qs = b + (five ? 48 : 16);
            float d = ld_f16(b), dmin = ld_f16(b + 2);
            int sc, m;
            k4_scale_min(b + 4, j, &sc, &m);
            const uint8_t *q = qs + 32 * (j >> 1);
            int sh = (j & 1) * 4;
            float qsum = 0.f, xsum = 0.f;
            for (int l = 0; l < 32; l++) {
                int v = (q[l] >> sh) & 15;
                if (five) v |= ((qh[l] >> j) & 1) << 4;
                qsum += (float)v * xs[l];
                xsum += xs[l];
            }
            acc = d * (float)sc * qsum - dmin * (float)m * xsum;
        } else if constexpr (T == T_Q6_K) {
            const uint8_t *ql = b, *qh = b + 128;
            const int8_t *sc = reinterpret_cast<const int8_t *>(b + 192);
            float d = ld_f16(b + 208);
            int h = j >> 2, k = (j >> 1) & 1, s2 = 2 * (j & 3), mo = (j & 1) * 32;
            for (int half = 0; half < 2; half++) {
                float qsum = 0.f;
                for (int l = 16 * half; l < 16 * half + 16; l++) {
                    int lo = (ql[h * 64 + mo + l] >> (4 * k)) & 15;
                    int hi = (qh[h * 32 + l] >> s2) & 3;
                    qsum += (float)((lo | (hi << 4)) - 32) * xs[l];
                }
                acc += d * (float)sc[j * 2 + half] * qsum;
            }
        }
    }
    return acc;
}

constexpr int WARPS_PER_BLOCK = 4;

template <uint32_t T>
__global__ void matvec_kernel(const uint8_t *__restrict__ w, size_t row_bytes, int rows, int cols,
                              const float *__restrict__ x, float *__restrict__ y) {
    int row = blockIdx.x * WARPS_PER_BLOCK + threadIdx.y;
    if (row >= rows) return;
    const uint8_t *r = w + (size_t)row * row_bytes;
    int units = cols / 32;
    float acc = 0.f;
    for (int u = threadIdx.x; u < units; u += 32) acc += unit_dot<T>(r, u, x);
    for (int off = 16; off > 0; off >>= 1) acc += __shfl_down_sync(0xffffffffu, acc, off);
    if (threadIdx.x == 0) y[row] = acc;
}

template <uint32_t T>
cudaError_t launch(const uint8_t *w, size_t row_bytes, int rows, int cols, const float *x, float *y,
                   cudaStream_t st) {
    dim3 block(32, WARPS_PER_BLOCK), grid((rows + WARPS_PER_BLOCK - 1) / WARPS_PER_BLOCK);
    matvec_kernel<T><<<grid, block, 0, st>>>(w, row_bytes, rows, cols, x, y);
    return cudaGetLastError();
}

}  // namespace

// Device-side entry: all pointers on the device. 0 or a CUDA error.
extern "C" int slm_cuda_matvec(uint32_t type, const void *w, size_t row_bytes, int rows, int cols,
                               const float *x, float *y, void *stream) {
    const uint8_t *wb = static_cast<const uint8_t *>(w);
    cudaStream_t st = static_cast<cudaStream_t>(stream);
    switch (type) {
    case T_F32: return launch<T_F32>(wb, row_bytes, rows, cols, x, y, st);
    case T_F16: return launch<T_F16>(wb, row_bytes, rows, cols, x, y, st);
    case T_BF16: return launch<T_BF16>(wb, row_bytes, rows, cols, x, y, st);
    case T_Q4_0: return launch<T_Q4_0>(wb, row_bytes, rows, cols, x, y, st);
    case T_Q4_1: return launch<T_Q4_1>(wb, row_bytes, rows, cols, x, y, st);
    case T_Q5_0: return launch<T_Q5_0>(wb, row_bytes, rows, cols, x, y, st);
    case T_Q5_1: return launch<T_Q5_1>(wb, row_bytes, rows, cols, x, y, st);
    case T_Q8_0: return launch<T_Q8_0>(wb, row_bytes, rows, cols, x, y, st);
    case T_Q2_K: return launch<T_Q2_K>(wb, row_bytes, rows, cols, x, y, st);
    case T_Q3_K: return launch<T_Q3_K>(wb, row_bytes, rows, cols, x, y, st);
    case T_Q4_K: return launch<T_Q4_K>(wb, row_bytes, rows, cols, x, y, st);
    case T_Q5_K: return launch<T_Q5_K>(wb, row_bytes, rows, cols, x, y, st);
    case T_Q6_K: return launch<T_Q6_K>(wb, row_bytes, rows, cols, x, y, st);
    default: return (int)cudaErrorInvalidValue;
    }
}

extern "C" int slm_cuda_matvec_host(uint32_t type, const void *w, size_t row_bytes, int rows, int cols,
                                    const float *x, float *y, char *err, size_t cap) {
    type_shape s = shape_of(type);
    if (s.block_elems == 0 || cols <= 0 || cols % 32 || rows <= 0 || cols % s.block_elems)
        return cuda_fail(err, cap, "matvec: unsupported type %u or shape %d x %d", type, rows, cols);
    cuda_buf dw, dx, dy;
    cudaError_t e = cuda_upload(&dw, w, (size_t)rows * row_bytes);
    if (!e) e = cuda_upload(&dx, x, (size_t)cols * sizeof(float));
    if (!e) e = cuda_alloc(&dy, (size_t)rows * sizeof(float));
    if (!e) e = (cudaError_t)slm_cuda_matvec(type, dw.p, row_bytes, rows, cols, (const float *)dx.p,
                                             (float *)dy.p, nullptr);
    if (!e) e = cudaMemcpy(y, dy.p, (size_t)rows * sizeof(float), cudaMemcpyDeviceToHost);
    return e ? cuda_fail(err, cap, "matvec: %s", cudaGetErrorString(e)) : 0;
}
