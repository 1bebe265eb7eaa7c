/* libFuzzer target for opening a model: the GGUF reader, the tokenizer's
 * vocabulary loader and the architecture binder (hyper-parameters, tensor
 * checks, fused-matrix views, biases, RoPE factor tensors), then one forward
 * step of two tokens when binding succeeds. The binder promises that the
 * forward pass never reads outside the file; ASan holds it to that.
 * Seeds: tests/fuzz/corpus/model/ (tiny models of each family, written by
 * scripts/gen_arch_fixtures.py). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/threadpool.h"
#include "model/model.h"
#include "model/transformer.h"
#include "slm.h"

static slm_pool *pool;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!pool && slm_pool_new(1, &pool) != SLM_OK) return 0;
    struct slm_model *m = calloc(1, sizeof *m);
    if (!m) return 0;
    gguf_str arch;
    if (gguf_parse(data, size, &m->gguf) != SLM_OK || !gguf_get_str(m->gguf, "general.architecture", &arch) ||
        !(m->arch = slm_arch_find(arch)) || tok_load(m->gguf, &m->tok) != SLM_OK || slm_model_bind(m) != SLM_OK) {
        slm_model_close(m);
        return 0;
    }
    /* keep the step small: skip models whose scratch would be huge */
    const slm_config *c = &m->cfg;
    if ((int64_t)c->n_embd * c->n_layer <= (1 << 16) && c->n_ff <= (1 << 14) && c->n_vocab <= (1 << 16)) {
        slm_fwd f;
        if (fwd_init(&f, m, pool, 4, true) == SLM_OK) {
            float *logits = malloc((size_t)c->n_vocab * sizeof(float));
            int32_t toks[2] = { 0, c->n_vocab - 1 };
            if (logits) fwd_eval(&f, toks, 2, 0, NULL, logits);
            free(logits);
            fwd_free(&f);
        }
    }
    slm_model_close(m);
    return 0;
}
