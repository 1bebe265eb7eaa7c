/* slm_grammar: a compiled grammar, its matcher state, and the vocabulary
 * index used to decide which tokens may come next.
 *
 * Checking one token walks its bytes through the matcher's transition table.
 * The full mask (needed only when the sampled token is refused) walks the
 * vocabulary in byte order: tokens sorted lexicographically share their
 * prefixes with their neighbours, so the state after a shared prefix is
 * reused (a trie walk without the trie), and once a prefix is dead every
 * following token that starts with it is skipped. Masks are cached per
 * matcher state: in JSON most states recur (inside a string every ordinary
 * character leads back to the same state). */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/status.h"
#include "grammar/gbnf.h"
#include "grammar/grammar_int.h"
#include "grammar/matcher.h"
#include "slm.h"

#define MAX_CACHED_MASKS 512
#define MATCHER_BUDGET ((size_t)256 << 20)

typedef struct {
    const char *p;
    uint32_t len;
    int32_t id;
} vtok;

struct slm_grammar {
    gb_grammar *g;
    gm *m;
    int state;
    bool ended;              /* an end-of-generation token was accepted */
    /* vocabulary (absent without a model) */
    int n_vocab;
    char *bytes;             /* every token's bytes */
    uint32_t *off;           /* n_vocab + 1 offsets into bytes; empty: never allowed */
    uint64_t *eog;           /* bitset of end-of-generation tokens */
    vtok *sorted;
    uint16_t *lcp;           /* common prefix with the previous sorted token (capped at 65535) */
    int n_sorted;
    int32_t grp_end[256];    /* sorted index one past the tokens starting with byte b */
    int32_t *grp2_end;       /* per sorted index: one past the tokens sharing its first 2 bytes */
    int32_t *walk;           /* states along a token, max token length + 1 */
    uint32_t max_len;
    /* mask cache: per matcher state */
    uint64_t **masks;
    int cap_masks, n_masks;
    int n_words;
};

static int cmp_vtok(const void *a, const void *b) {
    const vtok *x = a, *y = b;
    uint32_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->p, y->p, n);
    if (c) return c;
    return (x->len > y->len) - (x->len < y->len);
}

static slm_status build_vocab(slm_grammar *gr, const slm_model *model) {
    int nv = slm_vocab_size(model);
    gr->n_vocab = nv;
    gr->n_words = (nv + 63) / 64;
    gr->off = malloc(((size_t)nv + 1) * sizeof *gr->off);
    gr->eog = calloc((size_t)gr->n_words, sizeof *gr->eog);
    size_t cap = (size_t)nv * 8 + 1024, n = 0;
    gr->bytes = malloc(cap);
    if (!gr->off || !gr->eog || !gr->bytes) return slm_fail(SLM_ERR_NOMEM, "out of memory");
    char buf[1024];
    int n_text = 0;
    for (int t = 0; t < nv; t++) {
        gr->off[t] = (uint32_t)n;
        if (slm_token_is_eog(model, t)) { gr->eog[t >> 6] |= 1ull << (t & 63); continue; }
        size_t k = slm_token_to_bytes(model, t, false, buf, sizeof buf);
        if (k > sizeof buf) k = 0; /* absurdly long: never offered */
        if (k > 65535) k = 0;
        if (n + k > cap) {
            while (n + k > cap) cap *= 2;
            char *nb = realloc(gr->bytes, cap);
            if (!nb) return slm_fail(SLM_ERR_NOMEM, "out of memory");
            gr->bytes = nb;
        }
        memcpy(gr->bytes + n, buf, k);
        n += k;
        if (k) n_text++;
        if (k > gr->max_len) gr->max_len = (uint32_t)k;
    }
    gr->off[nv] = (uint32_t)n;
    gr->sorted = malloc(((size_t)n_text + 1) * sizeof *gr->sorted);
    gr->lcp = malloc(((size_t)n_text + 1) * sizeof *gr->lcp);
    gr->walk = malloc(((size_t)gr->max_len + 2) * sizeof *gr->walk);
    gr->grp2_end = malloc(((size_t)n_text + 1) * sizeof *gr->grp2_end);
    if (!gr->sorted || !gr->lcp || !gr->walk || !gr->grp2_end) return slm_fail(SLM_ERR_NOMEM, "out of memory");
    int k = 0;
    for (int t = 0; t < nv; t++)
        if (gr->off[t + 1] > gr->off[t]) gr->sorted[k++] = (vtok){gr->bytes + gr->off[t], gr->off[t + 1] - gr->off[t], t};
    qsort(gr->sorted, (size_t)k, sizeof *gr->sorted, cmp_vtok);
    gr->n_sorted = k;
    for (int i = 0; i < 256; i++) gr->grp_end[i] = 0;
    for (int i = 0; i < k; i++) {
        uint32_t l = 0;
        if (i > 0) {
            const vtok *a = &gr->sorted[i - 1], *b = &gr->sorted[i];
            uint32_t mx = a->len < b->len ? a->len : b->len;
            while (l < mx && a->p[l] == b->p[l]) l++;
        }
        gr->lcp[i] = (uint16_t)(l > 65535 ? 65535 : l);
        gr->grp_end[(uint8_t)gr->sorted[i].p[0]] = i + 1;
    }
    for (int i = k - 1; i >= 0; i--)
        gr->grp2_end[i] = i + 1 < k && gr->lcp[i + 1] >= 2 ? gr->grp2_end[i + 1] : i + 1;
    return SLM_OK;
}

static void drop_masks(slm_grammar *gr) {
    for (int i = 0; i < gr->cap_masks; i++) { free(gr->masks[i]); gr->masks[i] = NULL; }
    gr->n_masks = 0;
}

slm_status slm_grammar_new(const slm_model *model, const char *gbnf, size_t len, slm_grammar **out) {
    if (!out) return slm_fail(SLM_ERR_INVALID_ARG, "slm_grammar_new: out is NULL");
    *out = NULL;
    if (!gbnf) return slm_fail(SLM_ERR_INVALID_ARG, "slm_grammar_new: no grammar text");
    slm_grammar *gr = calloc(1, sizeof *gr);
    if (!gr) return slm_fail(SLM_ERR_NOMEM, "out of memory");
    slm_status st = gb_parse(gbnf, len, &gr->g);
    if (!st) st = gm_new(gr->g, &gr->m);
    if (!st) {
        gr->state = gm_initial(gr->m);
        if (gr->state < 0) st = slm_fail(SLM_ERR_NOMEM, "grammar: out of memory");
        else if (gr->state == 0) st = slm_fail(SLM_ERR_FORMAT, "grammar: the root rule matches nothing");
    }
    if (!st && model) st = build_vocab(gr, model);
    if (st) { slm_grammar_free(gr); return st; }
    *out = gr;
    return SLM_OK;
}

void slm_grammar_free(slm_grammar *gr) {
    if (!gr) return;
    if (gr->masks) drop_masks(gr);
    free(gr->masks);
    gm_free(gr->m);
    gb_free(gr->g);
    free(gr->bytes); free(gr->off); free(gr->eog); free(gr->sorted); free(gr->lcp); free(gr->walk);
    free(gr->grp2_end);
    free(gr);
}

/* Keeps the matcher's tables within budget (they only grow otherwise). */
/* The matcher failed: keep its message (too ambiguous) when it left one. */
static slm_status matcher_failed(void) {
    const char *e = slm_last_error();
    if (strncmp(e, "grammar too ambiguous", 21) == 0) return SLM_ERR_NOMEM;
    return slm_fail(SLM_ERR_NOMEM, "grammar: out of memory");
}

static void maybe_flush(slm_grammar *gr) {
    if (gm_bytes(gr->m) < MATCHER_BUDGET) return;
    drop_masks(gr);
    int s = gm_flush(gr->m, gr->state);
    gr->state = s < 0 ? 0 : s;
}

void slm_grammar_reset(slm_grammar *gr) {
    if (!gr) return;
    gr->ended = false;
    gr->state = gm_initial(gr->m);
    if (gr->state < 0) gr->state = 0;
}

static inline bool is_eog(const slm_grammar *gr, slm_token t) { return (gr->eog[t >> 6] >> (t & 63)) & 1; }

/* The state after the token's bytes (0: refused; -1: out of memory). */
static int walk_token(slm_grammar *gr, int s, slm_token t) {
    for (uint32_t i = gr->off[t]; i < gr->off[t + 1] && s > 0; i++) s = gm_step(gr->m, s, (uint8_t)gr->bytes[i]);
    return s;
}

bool slm_grammar_allows(slm_grammar *gr, slm_token t) {
    if (!gr || !gr->off || t < 0 || t >= gr->n_vocab || gr->ended || gr->state <= 0) return false;
    if (is_eog(gr, t)) return gm_can_end(gr->m, gr->state);
    if (gr->off[t + 1] == gr->off[t]) return false;
    return walk_token(gr, gr->state, t) > 0;
}

bool slm_grammar_can_end(const slm_grammar *gr) { return gr && (gr->ended || gm_can_end(gr->m, gr->state)); }
bool slm_grammar_must_end(const slm_grammar *gr) { return gr && (gr->ended || gm_must_end(gr->m, gr->state)); }
bool slm_grammar_ended(const slm_grammar *gr) { return gr && gr->ended; }

slm_status slm_grammar_accept(slm_grammar *gr, slm_token t) {
    if (!gr || !gr->off) return slm_fail(SLM_ERR_INVALID_ARG, "slm_grammar_accept: no grammar or no vocabulary");
    if (t < 0 || t >= gr->n_vocab) return slm_fail(SLM_ERR_INVALID_ARG, "slm_grammar_accept: token %d out of range", (int)t);
    if (gr->ended) return slm_fail(SLM_ERR_INVALID_ARG, "grammar: the output has already ended");
    if (is_eog(gr, t)) {
        if (!gm_can_end(gr->m, gr->state)) return slm_fail(SLM_ERR_INVALID_ARG, "grammar: the output cannot end here");
        gr->ended = true;
        return SLM_OK;
    }
    int s = gr->off[t + 1] > gr->off[t] ? walk_token(gr, gr->state, t) : 0;
    if (s < 0) return matcher_failed();
    if (s == 0) return slm_fail(SLM_ERR_INVALID_ARG, "grammar: token %d does not fit the grammar here", (int)t);
    gr->state = s;
    maybe_flush(gr);
    return SLM_OK;
}

slm_status slm_grammar_accept_bytes(slm_grammar *gr, const char *text, size_t len) {
    if (!gr) return slm_fail(SLM_ERR_INVALID_ARG, "slm_grammar_accept_bytes: no grammar");
    if (gr->ended) return slm_fail(SLM_ERR_INVALID_ARG, "grammar: the output has already ended");
    int s = gr->state;
    for (size_t i = 0; i < len; i++) {
        s = gm_step(gr->m, s, (uint8_t)text[i]);
        if (s < 0) return matcher_failed();
        if (s == 0) return slm_fail(SLM_ERR_INVALID_ARG, "grammar: the text does not fit the grammar at byte %zu", i + 1);
    }
    gr->state = s;
    maybe_flush(gr);
    return SLM_OK;
}

/* The allowed tokens of the current state as a bitset (cached). */
static const uint64_t *current_mask(slm_grammar *gr) {
    int s = gr->state;
    if (s <= 0) return NULL;
    if (s >= gr->cap_masks) {
        int nc = gr->cap_masks ? gr->cap_masks : 256;
        while (nc <= s) nc *= 2;
        uint64_t **nm = realloc(gr->masks, (size_t)nc * sizeof *nm);
        if (!nm) return NULL;
        memset(nm + gr->cap_masks, 0, (size_t)(nc - gr->cap_masks) * sizeof *nm);
        gr->masks = nm;
        gr->cap_masks = nc;
    }
    if (gr->masks[s]) return gr->masks[s];
    if (gr->n_masks >= MAX_CACHED_MASKS) drop_masks(gr);
    uint64_t *mask = calloc((size_t)gr->n_words, sizeof *mask);
    if (!mask) return NULL;
    int32_t *w = gr->walk;
    w[0] = s;
    uint32_t computed = 0, dead_at = UINT32_MAX;
    for (int k = 0; k < gr->n_sorted; k++) {
        const vtok *v = &gr->sorted[k];
        uint32_t l = gr->lcp[k];
        if (l >= dead_at) {
            /* skip the whole group that shares the dead prefix */
            if (dead_at == 1) k = gr->grp_end[(uint8_t)v->p[0]] - 1;
            else if (dead_at == 2) k = gr->grp2_end[k] - 1;
            continue;
        }
        dead_at = UINT32_MAX;
        uint32_t j = l < computed ? l : computed;
        bool live = true;
        for (; j < v->len; j++) {
            int ns = gm_step(gr->m, w[j], (uint8_t)v->p[j]);
            if (ns < 0) { free(mask); return NULL; }
            w[j + 1] = ns;
            if (ns == 0) { dead_at = j + 1; computed = j; live = false; break; }
        }
        if (live) {
            mask[v->id >> 6] |= 1ull << (v->id & 63);
            computed = v->len;
        }
    }
    if (gm_can_end(gr->m, s))
        for (int i = 0; i < gr->n_words; i++) mask[i] |= gr->eog[i];
    gr->masks[s] = mask;
    gr->n_masks++;
    return mask;
}

int slm_grammar_apply(slm_grammar *gr, float *logits) {
    if (!gr || !gr->off || !logits) return 0;
    const uint64_t *mask = gr->ended ? NULL : current_mask(gr);
    int n_allowed = 0;
    if (!mask) {
        for (int i = 0; i < gr->n_vocab; i++) logits[i] = -INFINITY;
        return 0;
    }
    for (int wi = 0; wi < gr->n_words; wi++) {
        uint64_t m = mask[wi];
        int base = wi * 64, end = base + 64 < gr->n_vocab ? base + 64 : gr->n_vocab;
        if (m == ~0ull) { n_allowed += end - base; continue; }
        n_allowed += __builtin_popcountll(m);
        if (m == 0) {
            for (int i = base; i < end; i++) logits[i] = -INFINITY;
            continue;
        }
        for (int i = base; i < end; i++)
            if (!((m >> (i - base)) & 1)) logits[i] = -INFINITY;
    }
    return n_allowed;
}

int grammar_n_vocab(const slm_grammar *gr) { return gr && gr->off ? gr->n_vocab : 0; }

bool grammar_mask_cached(const slm_grammar *gr) {
    return gr && !gr->ended && gr->state > 0 && gr->state < gr->cap_masks && gr->masks[gr->state];
}
