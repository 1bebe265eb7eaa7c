/* AVX2 + FMA + F16C kernels. */
#include "quant/quant_internal.h"

void slm_kernels_fill_avx2(slm_kernels *k) {
    k->name = "avx2";
}
