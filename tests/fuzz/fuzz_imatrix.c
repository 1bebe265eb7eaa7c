/* libFuzzer target for the importance-matrix reader and the GGUF writer's
 * metadata copy: arbitrary bytes are parsed as GGUF; when accepted, they are
 * read as an imatrix (which must either fail with a message or give entries
 * whose importances are finite and >= 0), and every metadata entry is copied
 * into a writer (re-encoding nested arrays from the raw bytes).
 * Seeds: tests/fuzz/corpus/imatrix/. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/gguf.h"
#include "gguf/gguf_write.h"
#include "imatrix/imatrix.h"

#define REQUIRE(c) do { if (!(c)) __builtin_trap(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    gguf_file *f = NULL;
    if (gguf_parse(data, size, &f) != SLM_OK) return 0;
    slm_imatrix *im = NULL;
    if (slm_imatrix_from_gguf(f, "fuzz", &im) == SLM_OK) {
        REQUIRE(slm_imatrix_n_entries(im) > 0);
        for (uint64_t i = 0; i < f->n_tensors; i++) {
            char name[300];
            const gguf_tensor *t = &f->tensors[i];
            if (t->name.len >= sizeof name) continue;
            memcpy(name, t->name.ptr, (size_t)t->name.len);
            name[t->name.len] = '\0';
            char *dot = strstr(name, ".in_sum2");
            if (!dot) continue;
            *dot = '\0';
            int64_t nc = 0, nm = 0;
            const float *imp = slm_imatrix_find(im, name, &nc, &nm);
            if (!imp) continue;
            for (int64_t k = 0; k < nc * nm; k++) REQUIRE(isfinite(imp[k]) && imp[k] >= 0);
        }
        slm_imatrix_free(im);
    }
    gguf_writer *w = NULL;
    if (gguf_writer_new(&w) == SLM_OK) {
        if (gguf_writer_copy_all_kv(w, f) == SLM_OK) REQUIRE(gguf_writer_n_kv(w) <= f->n_kv);
        (void)gguf_writer_file_size(w);
        gguf_writer_free(w);
    }
    gguf_close(f);
    return 0;
}
