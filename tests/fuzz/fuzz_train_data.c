/* libFuzzer target: arbitrary bytes into the training data reader
 * (train_data_parse) and the packer, with the real Gemma 3 model's
 * tokenizer and chat template when $SLM_TEST_MODEL (or the default
 * ~/.cache/slm/models/gemma-3-270m-q4_k_m.gguf) opens, else the tiny
 * fixture tests/fixtures/eval/tiny_gemma3.gguf.
 *
 * The first byte picks the options: bit 0 JSONL (else plain text), bit 1
 * --chat, bit 2 --truncate, bits 3..5 the sequence length (4 << k).
 *
 * Checked on every input:
 *   - no crash, leak or out-of-bounds access (ASan/UBSan);
 *   - failure: a non-empty message naming the file, and an empty result;
 *   - success: at least one example, each 1..seq tokens, every id in the
 *     vocabulary, the token and scored counts add up, skipped + kept lines
 *     are increasing; packing keeps the totals and the length limit. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slm.h"
#include "train/data.h"

static slm_model *model;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    char buf[4096];
    const char *p = getenv("SLM_TEST_MODEL");
    if (!p || !*p) {
        const char *home = getenv("HOME");
        snprintf(buf, sizeof buf, "%s/.cache/slm/models/gemma-3-270m-q4_k_m.gguf", home ? home : ".");
        p = buf;
    }
    if (slm_model_open(p, &model) && slm_model_open("tests/fixtures/eval/tiny_gemma3.gguf", &model)) {
        fprintf(stderr, "fuzz_train_data: no model: %s\n", slm_last_error());
        abort();
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1 || size > 4096) return 0;
    uint8_t opt = data[0];
    train_data_params p = { .jsonl = opt & 1, .chat = (opt >> 1) & 1, .truncate = (opt >> 2) & 1,
                            .seq = 4 << ((opt >> 3) & 7) };
    train_data d;
    memset(&d, 0xAB, sizeof d);
    slm_status st = train_data_parse(model, "f.jsonl", (const char *)data + 1, size - 1, &p, &d);
    if (st) {
        if (strncmp(slm_last_error(), "f.jsonl", 7) != 0 && st != SLM_ERR_NOMEM) abort();
        if (d.n != 0 || d.ex != NULL) abort();
        return 0;
    }
    int V = slm_vocab_size(model);
    int64_t tok = 0, sc = 0;
    if (d.n < 1) abort();
    for (int i = 0; i < d.n; i++) {
        const train_example *e = &d.ex[i];
        if (e->n < 1 || e->n > p.seq) abort();
        if (i && e->line <= d.ex[i - 1].line) abort();
        for (int k = 0; k < e->n; k++) {
            if (e->tokens[k] < 0 || e->tokens[k] >= V) abort();
            if (k) sc += e->mask[k] != 0;
        }
        tok += e->n;
    }
    if (tok != d.n_tokens || sc != d.n_scored) abort();
    if (p.truncate && d.n_skipped) abort();
    int *order = malloc(sizeof(int) * d.n);
    for (int i = 0; i < d.n; i++) order[i] = i;
    train_data pk;
    if (train_data_pack(&d, order, d.n, p.seq, &pk) == SLM_OK) {
        if (pk.n_tokens != d.n_tokens || pk.n_scored != d.n_scored) abort();
        for (int i = 0; i < pk.n; i++)
            if (pk.ex[i].n > p.seq) abort();
        train_data_free(&pk);
    }
    free(order);
    train_data_free(&d);
    return 0;
}
