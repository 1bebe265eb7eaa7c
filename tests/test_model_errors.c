/* Damaged copies of the real model must be refused with a message that names
 * the problem, never a crash: truncation, a foreign architecture, a missing
 * tensor, a wrong shape, a token-count mismatch (an embedding with one row
 * fewer than the vocabulary has tokens). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "slm.h"
#include "testlib.h"

static char *model;
static size_t model_len;

/* buf[0..len) must fail to open with `want` in the message. */
static void expect_fail(const char *what, const char *buf, size_t len, const char *want) {
    test_expect_model_fail(what, buf, len, want);
}

/* Offset of the first occurrence of needle in the header part of the model. */
static size_t find(const char *needle) {
    size_t n = strlen(needle), lim = model_len < (64u << 20) ? model_len : (64u << 20);
    for (size_t i = 0; i + n <= lim; i++)
        if (!memcmp(model + i, needle, n)) return i;
    return (size_t)-1;
}

int main(void) {
    const char *path = test_model_path();
    if (!path) { test_skip("no model (set SLM_TEST_MODEL)"); return test_finish(); }
    model = test_read_file(path, &model_len);
    CHECK(model != NULL);
    if (!model) return test_finish();

    /* truncations: inside the header, inside the tensor infos, inside the data */
    expect_fail("truncated header", model, 3, "truncated");
    expect_fail("truncated metadata", model, 4096, "truncated");
    expect_fail("truncated data", model, model_len - 1000, "out of bounds");

    char *copy = malloc(model_len);
    CHECK(copy != NULL);
    if (!copy) return test_finish();

    /* bad magic */
    memcpy(copy, model, model_len);
    copy[0] = 'X';
    expect_fail("bad magic", copy, model_len, "magic");

    /* an architecture we do not support (same length, so the file stays valid) */
    memcpy(copy, model, model_len);
    size_t key = find("general.architecture");
    CHECK(key != (size_t)-1);
    if (key == (size_t)-1) return test_finish();
    size_t at = key + strlen("general.architecture") + 4 + 8;  /* type u32, string length u64 */
    CHECK(!memcmp(copy + at, "gemma3", 6));
    memcpy(copy + at, "gemmaX", 6);
    expect_fail("unsupported architecture", copy, model_len, "unsupported architecture 'gemmaX'");

    /* a missing tensor: rename blk.3.attn_q.weight */
    memcpy(copy, model, model_len);
    at = find("blk.3.attn_q.weight");
    CHECK(at != (size_t)-1);
    if (at == (size_t)-1) return test_finish();
    copy[at + 9] = 'X';
    expect_fail("missing tensor", copy, model_len, "blk.3.attn_q.weight");

    /* a wrong shape: blk.0.ffn_norm.weight claims 320 elements instead of 640 */
    memcpy(copy, model, model_len);
    at = find("blk.0.ffn_norm.weight");
    CHECK(at != (size_t)-1);
    if (at == (size_t)-1) return test_finish();
    size_t ne0 = at + strlen("blk.0.ffn_norm.weight") + 4;  /* after n_dims */
    uint64_t v = 320;
    memcpy(copy + ne0, &v, 8);
    expect_fail("wrong shape", copy, model_len, "blk.0.ffn_norm.weight");

    /* a token-count mismatch: token_embd.weight has 262143 rows while the
     * vocabulary (tokenizer.ggml.tokens) has 262144 tokens */
    memcpy(copy, model, model_len);
    at = find("token_embd.weight");
    CHECK(at != (size_t)-1);
    if (at == (size_t)-1) return test_finish();
    size_t ne1 = at + strlen("token_embd.weight") + 4 + 8;  /* after n_dims and ne[0] */
    memcpy(&v, copy + ne1, 8);
    CHECKF(v == 262144, "token_embd.weight has %llu rows, expected the vocabulary's 262144", (unsigned long long)v);
    v = 262143;
    memcpy(copy + ne1, &v, 8);
    expect_fail("token count", copy, model_len, "'token_embd.weight' has shape [640, 262143");
    CHECKF(strstr(slm_last_error(), "expected [640, 262144]") != NULL, "token count: message '%s'", slm_last_error());

    free(copy);
    free(model);
    return test_finish();
}
