/* Reading and writing the base-distribution file (layout in kl_file.h). */
#include "eval/kl_file.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/status.h"

#define KL_MAGIC "SLMKLD01"
#define KL_HEADER_BYTES 64

static size_t record_bytes(uint32_t top_k) { return 4 + 8 * (size_t)top_k; }

static void put32(unsigned char *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> 8 * i); }
static void put64(unsigned char *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> 8 * i); }
static uint32_t get32(const unsigned char *p) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) v |= (uint32_t)p[i] << 8 * i;
    return v;
}
static uint64_t get64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << 8 * i;
    return v;
}
static uint32_t f2u(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static float u2f(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

slm_status kl_record_alloc(kl_record *r, int top_k) {
    r->nll = 0;
    r->ids = malloc((size_t)top_k * sizeof *r->ids);
    r->logp = malloc((size_t)top_k * sizeof *r->logp);
    if (!r->ids || !r->logp) { kl_record_free(r); return slm_fail(SLM_ERR_NOMEM, "out of memory"); }
    return SLM_OK;
}

void kl_record_free(kl_record *r) {
    free(r->ids);
    free(r->logp);
    r->ids = NULL;
    r->logp = NULL;
}

static kl_file *kl_alloc(uint32_t top_k) {
    kl_file *k = calloc(1, sizeof *k);
    if (k && !(k->buf = malloc(record_bytes(top_k) > KL_HEADER_BYTES ? record_bytes(top_k) : KL_HEADER_BYTES))) {
        free(k);
        k = NULL;
    }
    return k;
}

slm_status kl_file_create(const char *path, const kl_header *h, kl_file **out) {
    *out = NULL;
    kl_file *k = kl_alloc(h->top_k);
    if (!k) return slm_fail(SLM_ERR_NOMEM, "out of memory");
    k->h = *h;
    size_t n = strlen(path) + 32;
    k->path = strdup(path);
    k->tmp_path = malloc(n);
    if (!k->path || !k->tmp_path) { kl_file_close(k); return slm_fail(SLM_ERR_NOMEM, "out of memory"); }
    snprintf(k->tmp_path, n, "%s.tmp.%ld", path, (long)getpid());
    k->f = fopen(k->tmp_path, "wb");
    if (!k->f) {
        slm_status st = slm_fail(SLM_ERR_IO, "cannot create %s", k->tmp_path);
        free(k->tmp_path);
        k->tmp_path = NULL;
        kl_file_close(k);
        return st;
    }
    unsigned char *b = k->buf;
    memset(b, 0, KL_HEADER_BYTES);
    memcpy(b, KL_MAGIC, 8);
    put32(b + 8, h->n_vocab);
    put32(b + 12, h->n_ctx);
    put32(b + 16, h->top_k);
    put32(b + 20, h->n_chunks);
    put64(b + 24, h->tokens_hash);
    put64(b + 32, h->n_records);
    if (fwrite(b, 1, KL_HEADER_BYTES, k->f) != KL_HEADER_BYTES) {
        kl_file_close(k);
        return slm_fail(SLM_ERR_IO, "cannot write %s", path);
    }
    *out = k;
    return SLM_OK;
}

slm_status kl_file_write(kl_file *k, const kl_record *r) {
    if (k->n_done >= k->h.n_records)
        return slm_fail(SLM_ERR_INVALID_ARG, "more records than the header announces");
    unsigned char *b = k->buf;
    put32(b, f2u(r->nll));
    for (uint32_t i = 0; i < k->h.top_k; i++) {
        put32(b + 4 + 8 * (size_t)i, (uint32_t)r->ids[i]);
        put32(b + 8 + 8 * (size_t)i, f2u(r->logp[i]));
    }
    size_t n = record_bytes(k->h.top_k);
    if (fwrite(b, 1, n, k->f) != n) return slm_fail(SLM_ERR_IO, "cannot write %s (disk full?)", k->tmp_path);
    k->n_done++;
    return SLM_OK;
}

slm_status kl_file_commit(kl_file *k) {
    slm_status st = SLM_OK;
    if (k->n_done != k->h.n_records)
        st = slm_fail(SLM_ERR_INVALID_ARG, "%llu of %llu records written", (unsigned long long)k->n_done,
                      (unsigned long long)k->h.n_records);
    else if (fflush(k->f) || fsync(fileno(k->f)))
        st = slm_fail(SLM_ERR_IO, "cannot write %s", k->tmp_path);
    if (!st) {
        int bad = fclose(k->f);
        k->f = NULL;
        if (bad) st = slm_fail(SLM_ERR_IO, "cannot write %s", k->tmp_path);
        else if (rename(k->tmp_path, k->path)) st = slm_fail(SLM_ERR_IO, "cannot rename %s to %s", k->tmp_path, k->path);
        else { free(k->tmp_path); k->tmp_path = NULL; }
    }
    kl_file_close(k);
    return st;
}

slm_status kl_file_open(const char *path, kl_file **out) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return slm_fail(SLM_ERR_IO, "cannot open base logits file %s", path);
    unsigned char b[KL_HEADER_BYTES];
    struct stat sb;
    if (fread(b, 1, sizeof b, f) != sizeof b || memcmp(b, KL_MAGIC, 8) || fstat(fileno(f), &sb)) {
        fclose(f);
        return slm_fail(SLM_ERR_FORMAT, "%s is not a base logits file made by slm perplexity --kl-base-save", path);
    }
    kl_header h = { get32(b + 8), get32(b + 12), get32(b + 16), get32(b + 20), get64(b + 24), get64(b + 32) };
    if (h.top_k == 0 || h.top_k > 4096 || h.top_k > h.n_vocab || h.n_records > ((uint64_t)1 << 40) ||
        (uint64_t)sb.st_size != KL_HEADER_BYTES + h.n_records * record_bytes(h.top_k)) {
        fclose(f);
        return slm_fail(SLM_ERR_FORMAT, "%s: damaged base logits file (header does not match its size)", path);
    }
    kl_file *k = kl_alloc(h.top_k);
    if (!k) { fclose(f); return slm_fail(SLM_ERR_NOMEM, "out of memory"); }
    k->f = f;
    k->h = h;
    *out = k;
    return SLM_OK;
}

slm_status kl_file_check(const kl_file *k, const kl_header *w) {
    const kl_header *h = &k->h;
    if (h->n_vocab != w->n_vocab)
        return slm_fail(SLM_ERR_INVALID_ARG, "base logits: vocabulary of %u tokens, this model has %u", h->n_vocab,
                        w->n_vocab);
    if (h->n_ctx != w->n_ctx)
        return slm_fail(SLM_ERR_INVALID_ARG, "base logits were saved with --ctx %u, not %u", h->n_ctx, w->n_ctx);
    if (h->n_chunks != w->n_chunks)
        return slm_fail(SLM_ERR_INVALID_ARG, "base logits hold %u windows, %u asked for (use --chunks %u)",
                        h->n_chunks, w->n_chunks, h->n_chunks);
    if (h->tokens_hash != w->tokens_hash)
        return slm_fail(SLM_ERR_INVALID_ARG, "base logits were saved from other tokens (another text or tokenizer)");
    return SLM_OK;
}

slm_status kl_file_read(kl_file *k, kl_record *r) {
    size_t n = record_bytes(k->h.top_k);
    if (k->n_done >= k->h.n_records || fread(k->buf, 1, n, k->f) != n)
        return slm_fail(SLM_ERR_FORMAT, "base logits file ends early");
    const unsigned char *b = k->buf;
    r->nll = u2f(get32(b));
    for (uint32_t i = 0; i < k->h.top_k; i++) {
        int32_t id = (int32_t)get32(b + 4 + 8 * (size_t)i);
        float lp = u2f(get32(b + 8 + 8 * (size_t)i));
        if (id < 0 || (uint32_t)id >= k->h.n_vocab || !(lp <= 0.0f) || !(r->nll >= 0.0f))
            return slm_fail(SLM_ERR_FORMAT, "base logits file: damaged record %llu", (unsigned long long)k->n_done);
        r->ids[i] = id;
        r->logp[i] = lp;
    }
    k->n_done++;
    return SLM_OK;
}

void kl_file_close(kl_file *k) {
    if (!k) return;
    if (k->f) fclose(k->f);
    if (k->tmp_path) unlink(k->tmp_path);
    free(k->tmp_path);
    free(k->path);
    free(k->buf);
    free(k);
}
