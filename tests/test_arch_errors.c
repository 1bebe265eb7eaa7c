/* Damaged copies of the synthetic architecture fixtures
 * (the .gguf files in tests/fixtures/arch/) must be refused with a message that names the
 * problem: the checks model_load.c adds for the non-Gemma families (fused
 * matrices, optional biases, RoPE factor tensors, the optional window). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "slm.h"
#include "testlib.h"

static char *buf;
static size_t buf_len;

static int load(const char *name) {
    char path[256];
    snprintf(path, sizeof path, "tests/fixtures/arch/%s", name);
    free(buf);
    buf = test_read_file(path, &buf_len);
    CHECKF(buf != NULL, "cannot read %s", path);
    return buf ? 0 : -1;
}

static size_t find(const char *needle) {
    size_t n = strlen(needle);
    for (size_t i = 0; i + n <= buf_len; i++)
        if (!memcmp(buf + i, needle, n)) return i;
    return (size_t)-1;
}

/* The (patched) buffer must fail to open with `want` in the message. */
static void expect_fail(const char *what, const char *want) { test_expect_model_fail(what, buf, buf_len, want); }

/* Replaces the first occurrence of `from` by `to` (same length). */
static void rename_once(const char *from, const char *to) {
    size_t at = find(from);
    CHECKF(at != (size_t)-1, "'%s' not in the file", from);
    if (at != (size_t)-1) memcpy(buf + at, to, strlen(to));
}

/* Sets dimension `dim` of tensor `name` in the tensor table (name, then u32
 * n_dims, then u64 dims). */
static void set_dim(const char *name, int dim, uint64_t v) {
    size_t at = find(name);
    CHECKF(at != (size_t)-1, "tensor '%s' not in the file", name);
    if (at == (size_t)-1) return;
    memcpy(buf + at + strlen(name) + 4 + 8 * (size_t)dim, &v, 8);
}

int main(void) {
    /* the intact files open */
    const char *good[] = { "llama_f16.gguf", "qwen2_q8_0.gguf", "phi3_f16.gguf", "mistral_q8_0.gguf" };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        char path[256];
        snprintf(path, sizeof path, "tests/fixtures/arch/%s", good[i]);
        slm_model *m = NULL;
        CHECKF(slm_model_open(path, &m) == SLM_OK, "%s: %s", path, slm_last_error());
        slm_model_close(m);
    }

    if (!load("phi3_f16.gguf")) {
        rename_once("rope_factors_short.weight", "rope_factors_shorX.weight");
        expect_fail("one LongRoPE factor set", "only one of rope_factors_long / rope_factors_short");
    }
    if (!load("phi3_f16.gguf")) {
        rename_once("blk.1.attn_qkv.weight", "blk.1.attn_qkX.weight");
        expect_fail("no fused QKV", "model lacks tensor 'blk.1.attn_qkv.weight'");
    }
    if (!load("phi3_q8_0.gguf")) {
        set_dim("blk.0.ffn_up.weight", 1, 128);   /* gate-up must have 2 * n_ff rows */
        expect_fail("fused gate-up of n_ff rows", "tensor 'blk.0.ffn_up.weight' has shape [64, 128");
    }
    if (!load("phi3_f16.gguf")) {
        set_dim("rope_factors_long.weight", 0, 8);   /* n_rot / 2 = 6 */
        expect_fail("factor tensor of the wrong length", "tensor 'rope_factors_long.weight' has shape [8");
    }
    if (!load("qwen2_f16.gguf")) {
        set_dim("blk.0.attn_k.bias", 0, 16);       /* n_head_kv * head_dim = 32 */
        expect_fail("K bias of the wrong length", "tensor 'blk.0.attn_k.bias' has shape [16");
    }
    if (!load("mistral_f16.gguf")) {
        size_t at = find("mistral.attention.sliding_window");
        CHECK(at != (size_t)-1);
        if (at != (size_t)-1) {
            uint32_t huge = 0x7fffffffu;   /* the value follows the key and its u32 type */
            memcpy(buf + at + strlen("mistral.attention.sliding_window") + 4, &huge, 4);
            expect_fail("window out of range", "mistral.attention.sliding_window' = 2147483647 is out of range");
        }
    }
    if (!load("llama_f16.gguf")) {
        size_t at = find("llama.block_count");
        CHECK(at != (size_t)-1);
        if (at != (size_t)-1) {
            uint32_t many = 1000;   /* would size the layer table; the file has 2 blocks */
            memcpy(buf + at + strlen("llama.block_count") + 4, &many, 4);
            expect_fail("block count beyond the tensors", "block_count 1000 exceeds the");
        }
    }
    if (!load("llama_f16.gguf")) {
        set_dim("rope_freqs.weight", 0, 4);
        expect_fail("rope_freqs of the wrong length", "tensor 'rope_freqs.weight' has shape [4");
    }
    free(buf);
    return test_finish();
}
