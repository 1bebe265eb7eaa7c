// Small host helpers shared by the CUDA files: device buffers that free
// themselves, and error messages into the caller's buffer.
#ifndef SLM_CUDA_COMMON_H
#define SLM_CUDA_COMMON_H

#include <cuda_runtime.h>
#include <stdarg.h>
#include <stdio.h>

struct cuda_buf {
    void *p = nullptr;
    cuda_buf() = default;
    cuda_buf(const cuda_buf &) = delete;
    cuda_buf &operator=(const cuda_buf &) = delete;
    ~cuda_buf() { if (p) cudaFree(p); }
};

static inline cudaError_t cuda_alloc(cuda_buf *b, size_t n) { return cudaMalloc(&b->p, n ? n : 1); }

static inline cudaError_t cuda_upload(cuda_buf *b, const void *src, size_t n) {
    cudaError_t e = cuda_alloc(b, n);
    return e ? e : cudaMemcpy(b->p, src, n, cudaMemcpyHostToDevice);
}

static inline int cuda_fail(char *err, size_t cap, const char *fmt, ...) {
    if (err && cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, cap, fmt, ap);
        va_end(ap);
    }
    return -1;
}

#endif
