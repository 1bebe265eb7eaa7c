// Element-wise and row-wise ops on CUDA: RMSNorm, RoPE, gated activations,
// and device probing. Formulas follow src/ops/ops_cpu.c.
#include <cuda_runtime.h>
#include <math.h>

#include "cuda/cuda_backend.h"
#include "cuda/cuda_common.h"

namespace {

// One block per row; the block reduces the sum of squares in shared memory.
__global__ void rmsnorm_kernel(const float *__restrict__ x, const float *__restrict__ w, int n, float eps,
                               float *__restrict__ out) {
    __shared__ float part[32];
    const float *xr = x + (size_t)blockIdx.x * n;
    float *orow = out + (size_t)blockIdx.x * n;
    float ss = 0.f;
    for (int i = threadIdx.x; i < n; i += blockDim.x) ss += xr[i] * xr[i];
    for (int off = 16; off > 0; off >>= 1) ss += __shfl_down_sync(0xffffffffu, ss, off);
    if ((threadIdx.x & 31) == 0) part[threadIdx.x >> 5] = ss;
    __syncthreads();
    if (threadIdx.x < 32) {
        float v = threadIdx.x < (blockDim.x + 31) / 32 ? part[threadIdx.x] : 0.f;
        for (int off = 16; off > 0; off >>= 1) v += __shfl_down_sync(0xffffffffu, v, off);
        if (threadIdx.x == 0) part[0] = v;
    }
    __syncthreads();
    float scale = rsqrtf(part[0] / (float)n + eps);
    for (int i = threadIdx.x; i < n; i += blockDim.x) orow[i] = xr[i] * scale * (w ? w[i] : 1.f);
}

// One thread per rotated pair: theta_i = pos * base^(-2i/n_rot), in double
// as on the CPU (pos * freq reaches ~1e4 rad at long contexts).
__global__ void rope_kernel(float *x, int n_heads, int head_dim, int n_rot, int pos, float base, int neox) {
    int half = n_rot / 2;
    int idx = blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= n_heads * half) return;
    int h = idx / half, i = idx % half;
    double theta = pos * pow((double)base, -2.0 * i / n_rot);
    float c = (float)cos(theta), s = (float)sin(theta);
    float *v = x + (size_t)h * head_dim;
    int a = neox ? i : 2 * i, b = neox ? i + half : 2 * i + 1;
    float x0 = v[a], x1 = v[b];
    v[a] = x0 * c - x1 * s;
    v[b] = x0 * s + x1 * c;
}

__global__ void gated_act_kernel(float *x, const float *__restrict__ up, int n, int gelu) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float g = x[i];
    float a = gelu ? 0.5f * g * (1.f + tanhf(0.7978845608f * (g + 0.044715f * g * g * g)))
                   : g / (1.f + expf(-g));
    x[i] = a * up[i];
}

}  // namespace

extern "C" int slm_cuda_device_count(char *why, size_t cap) {
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        cuda_fail(why, cap, "no CUDA device: %s", cudaGetErrorString(e));
        return 0;
    }
    if (n == 0) cuda_fail(why, cap, "no CUDA device found");
    return n;
}

extern "C" int slm_cuda_rmsnorm_host(const float *x, const float *w, int rows, int n, float eps, float *out,
                                     char *err, size_t cap) {
    if (rows <= 0 || n <= 0) return cuda_fail(err, cap, "rmsnorm: bad shape %d x %d", rows, n);
    size_t bytes = (size_t)rows * n * sizeof(float);
    cuda_buf dx, dw, dout;
    cudaError_t e = cuda_upload(&dx, x, bytes);
    if (!e && w) e = cuda_upload(&dw, w, (size_t)n * sizeof(float));
    if (!e) e = cuda_alloc(&dout, bytes);
    if (!e) {
        rmsnorm_kernel<<<rows, 256>>>((const float *)dx.p, (const float *)dw.p, n, eps, (float *)dout.p);
        e = cudaGetLastError();
    }
    if (!e) e = cudaMemcpy(out, dout.p, bytes, cudaMemcpyDeviceToHost);
    return e ? cuda_fail(err, cap, "rmsnorm: %s", cudaGetErrorString(e)) : 0;
}

extern "C" int slm_cuda_rope_host(float *x, int n_heads, int head_dim, int n_rot, int pos, float base, int neox,
                                  char *err, size_t cap) {
    if (n_heads <= 0 || n_rot <= 0 || n_rot % 2 || n_rot > head_dim)
        return cuda_fail(err, cap, "rope: bad shape");
    size_t bytes = (size_t)n_heads * head_dim * sizeof(float);
    cuda_buf dx;
    cudaError_t e = cuda_upload(&dx, x, bytes);
    if (!e) {
        int pairs = n_heads * n_rot / 2;
        rope_kernel<<<(pairs + 127) / 128, 128>>>((float *)dx.p, n_heads, head_dim, n_rot, pos, base, neox);
        e = cudaGetLastError();
    }
    if (!e) e = cudaMemcpy(x, dx.p, bytes, cudaMemcpyDeviceToHost);
    return e ? cuda_fail(err, cap, "rope: %s", cudaGetErrorString(e)) : 0;
}

extern "C" int slm_cuda_gated_act_host(float *x, const float *up, int n, int gelu, char *err, size_t cap) {
    if (n <= 0) return cuda_fail(err, cap, "gated activation: bad length %d", n);
    size_t bytes = (size_t)n * sizeof(float);
    cuda_buf dx, du;
    cudaError_t e = cuda_upload(&dx, x, bytes);
    if (!e) e = cuda_upload(&du, up, bytes);
    if (!e) {
        gated_act_kernel<<<(n + 255) / 256, 256>>>((float *)dx.p, (const float *)du.p, n, gelu);
        e = cudaGetLastError();
    }
    if (!e) e = cudaMemcpy(x, dx.p, bytes, cudaMemcpyDeviceToHost);
    return e ? cuda_fail(err, cap, "gated activation: %s", cudaGetErrorString(e)) : 0;
}
