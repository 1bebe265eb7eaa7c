/* AVX-512 (F, BW, VL, DQ, VNNI) kernels. */
#include "quant/quant_internal.h"

void slm_kernels_fill_avx512(slm_kernels *k) {
    k->name = "avx512";
}
