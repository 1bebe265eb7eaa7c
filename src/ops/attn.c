/* Attention of one token's query heads that share a KV head, against a
 * run of cached keys and values (op_attn_group in ops.h). The portable
 * version: scores, a softmax, then P x V row by row; attn_avx512.c has the
 * tiled online-softmax kernel, used where the CPU and the shape allow. */
#include "ops/ops.h"

#include <string.h>

#include "ops/ops_isa.h"

typedef bool (*attn_fn)(const float *, int, int, int, const float *, size_t, const float *, size_t, int, float,
                        float *);
static attn_fn attn_fast;

__attribute__((constructor)) static void attn_pick_isa(void) {
#if (defined(__x86_64__) || defined(_M_X64)) && defined(__GNUC__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq")) attn_fast = op_attn_group_avx512;
#endif
}

void op_attn_group_portable(const float *q, int group, int hd, int hdv, const float *k, size_t k_stride,
                            const float *v, size_t v_stride, int cnt, float scale, float *out, float *scores) {
    for (int p = 0; p < cnt; p++) {
        const float *kr = k + (size_t)p * k_stride;
        for (int g = 0; g < group; g++) scores[(size_t)g * cnt + p] = op_dot_f32(kr, q + (size_t)g * hd, hd) * scale;
    }
    for (int g = 0; g < group; g++) {
        op_softmax(scores + (size_t)g * cnt, cnt);
        memset(out + (size_t)g * hdv, 0, (size_t)hdv * sizeof(float));
    }
    for (int p = 0; p < cnt; p++) {
        const float *vr = v + (size_t)p * v_stride;
        for (int g = 0; g < group; g++) op_axpy_f32(out + (size_t)g * hdv, scores[(size_t)g * cnt + p], vr, hdv);
    }
}

void op_attn_group(const float *q, int group, int hd, int hdv, const float *k, size_t k_stride, const float *v,
                   size_t v_stride, int cnt, float scale, float *out, float *scores) {
    if (attn_fast && attn_fast(q, group, hd, hdv, k, k_stride, v, v_stride, cnt, scale, out)) return;
    op_attn_group_portable(q, group, hd, hdv, k, k_stride, v, v_stride, cnt, scale, out, scores);
}
