/* Damaged copies of the real model must be refused with a message that names
 * the problem, never a crash: truncation, a foreign architecture, a missing
 * tensor, a wrong shape, a token-count mismatch. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "slm.h"
#include "testlib.h"

static char *model;
static size_t model_len;

/* Writes buf[0..len) to a temp file, opens it as a model, and checks that it
 * fails with `want` in the message. */
static void expect_fail(const char *what, const char *buf, size_t len, const char *want) {
    char path[] = "/tmp/slm_bad_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd < 0) return;
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, buf + off, len - off);
        if (w <= 0) break;
        off += (size_t)w;
    }
    close(fd);
    slm_model *m = NULL;
    slm_status st = slm_model_open(path, &m);
    CHECKF(st != SLM_OK && m == NULL, "%s: opened a damaged model", what);
    CHECKF(strstr(slm_last_error(), want) != NULL, "%s: message '%s' lacks '%s'", what, slm_last_error(), want);
    if (m) slm_model_close(m);
    unlink(path);
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
    if (!path) { puts("skip: no model (set SLM_TEST_MODEL)"); return TEST_SKIP; }
    model = test_read_file(path, &model_len);
    CHECK(model != NULL);
    if (!model) return test_finish();

    /* truncations: inside the header, inside the tensor infos, inside the data */
    expect_fail("truncated header", model, 3, "");
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

    free(copy);
    free(model);
    return test_finish();
}
