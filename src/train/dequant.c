/* Picks the dequantizer (see dequant.h). */
#include "train/dequant.h"

#include "quant/quant.h"

static bool g_simd, g_have;

__attribute__((constructor)) static void deq_pick(void) {
#if (defined(__x86_64__) || defined(_M_X64)) && defined(__GNUC__)
    __builtin_cpu_init();
    /* every AVX-512 CPU has F16C; clang's __builtin_cpu_supports does not know "f16c" */
    g_have = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl");
#endif
    g_simd = g_have;
}

#if !((defined(__x86_64__) || defined(_M_X64)) && defined(__GNUC__))
bool tr_dequant_row_avx512(uint32_t type, const void *src, float *dst, int64_t n) {
    (void)type; (void)src; (void)dst; (void)n;
    return false;
}
#endif

void tr_dequant_force_reference(bool on) { g_simd = g_have && !on; }

void tr_dequant_row(uint32_t type, const void *src, float *dst, int64_t n) {
    if (g_simd && tr_dequant_row_avx512(type, src, dst, n)) return;
    slm_dequantize_row(type, src, dst, n);
}
