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
 * character leads back to the same state). The vocabulary index belongs to
 * the model and is shared by all its grammars (vocab_index.c). */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/status.h"
#include "grammar/gbnf.h"
#include "grammar/grammar_int.h"
#include "grammar/matcher.h"
#include "grammar/vocab_index.h"
#include "slm.h"

#define MAX_CACHED_MASKS 512
#define MATCHER_BUDGET ((size_t)256 << 20)

struct slm_grammar {
    gb_grammar *g;
    gm *m;
    int state;
    bool ended;              /* an end-of-generation token was accepted */
    const grammar_vocab *v;  /* the model's (NULL without a model) */
    int32_t *walk;           /* states along a token, longest token + 1 */
    /* mask cache: per matcher state */
    uint64_t **masks;
    int cap_masks, n_masks;
};

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
    if (!st && model) {
        gr->v = grammar_vocab_get(model);
        if (!gr->v) st = SLM_ERR_NOMEM;
        else if (!(gr->walk = malloc(((size_t)gr->v->max_len + 2) * sizeof *gr->walk)))
            st = slm_fail(SLM_ERR_NOMEM, "out of memory");
    }
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
    free(gr->walk);
    free(gr);
}

/* The matcher failed: keep its message (too ambiguous) when it left one. */
static slm_status matcher_failed(void) {
    const char *e = slm_last_error();
    if (strncmp(e, "grammar too ambiguous", 21) == 0) return SLM_ERR_NOMEM;
    return slm_fail(SLM_ERR_NOMEM, "grammar: out of memory");
}

/* Keeps the matcher's tables within budget (they only grow otherwise). */
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

static inline bool is_eog(const slm_grammar *gr, slm_token t) { return (gr->v->eog[t >> 6] >> (t & 63)) & 1; }

/* The state after the token's bytes (0: refused; -1: out of memory). */
static int walk_token(slm_grammar *gr, int s, slm_token t) {
    const grammar_vocab *v = gr->v;
    for (uint32_t i = v->off[t]; i < v->off[t + 1] && s > 0; i++) s = gm_step(gr->m, s, (uint8_t)v->bytes[i]);
    return s;
}

bool slm_grammar_allows(slm_grammar *gr, slm_token t) {
    if (!gr || !gr->v || t < 0 || t >= gr->v->n_vocab || gr->ended || gr->state <= 0) return false;
    if (is_eog(gr, t)) return gm_can_end(gr->m, gr->state);
    if (gr->v->off[t + 1] == gr->v->off[t]) return false;
    return walk_token(gr, gr->state, t) > 0;
}

bool slm_grammar_can_end(const slm_grammar *gr) { return gr && (gr->ended || gm_can_end(gr->m, gr->state)); }
bool slm_grammar_must_end(const slm_grammar *gr) { return gr && (gr->ended || gm_must_end(gr->m, gr->state)); }
bool slm_grammar_ended(const slm_grammar *gr) { return gr && gr->ended; }

slm_status slm_grammar_accept(slm_grammar *gr, slm_token t) {
    if (!gr || !gr->v) return slm_fail(SLM_ERR_INVALID_ARG, "slm_grammar_accept: no grammar or no vocabulary");
    if (t < 0 || t >= gr->v->n_vocab) return slm_fail(SLM_ERR_INVALID_ARG, "slm_grammar_accept: token %d out of range", (int)t);
    if (gr->ended) return slm_fail(SLM_ERR_INVALID_ARG, "grammar: the output has already ended");
    if (is_eog(gr, t)) {
        if (!gm_can_end(gr->m, gr->state)) return slm_fail(SLM_ERR_INVALID_ARG, "grammar: the output cannot end here");
        gr->ended = true;
        return SLM_OK;
    }
    int s = gr->v->off[t + 1] > gr->v->off[t] ? walk_token(gr, gr->state, t) : 0;
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
    const grammar_vocab *voc = gr->v;
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
    uint64_t *mask = calloc((size_t)voc->n_words, sizeof *mask);
    if (!mask) return NULL;
    int32_t *w = gr->walk;
    w[0] = s;
    uint32_t computed = 0, dead_at = UINT32_MAX;
    for (int k = 0; k < voc->n_sorted; k++) {
        const vtok *v = &voc->sorted[k];
        uint32_t l = voc->lcp[k];
        if (l >= dead_at) {
            /* skip the whole group that shares the dead prefix */
            if (dead_at == 1) k = voc->grp_end[(uint8_t)v->p[0]] - 1;
            else if (dead_at == 2) k = voc->grp2_end[k] - 1;
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
        for (int i = 0; i < voc->n_words; i++) mask[i] |= voc->eog[i];
    gr->masks[s] = mask;
    gr->n_masks++;
    return mask;
}

int slm_grammar_apply(slm_grammar *gr, float *logits) {
    if (!gr || !gr->v || !logits) return 0;
    int n_vocab = gr->v->n_vocab, n_words = gr->v->n_words;
    const uint64_t *mask = gr->ended ? NULL : current_mask(gr);
    int n_allowed = 0;
    if (!mask) {
        for (int i = 0; i < n_vocab; i++) logits[i] = -INFINITY;
        return 0;
    }
    for (int wi = 0; wi < n_words; wi++) {
        uint64_t m = mask[wi];
        int base = wi * 64, end = base + 64 < n_vocab ? base + 64 : n_vocab;
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

int grammar_n_vocab(const slm_grammar *gr) { return gr && gr->v ? gr->v->n_vocab : 0; }

bool grammar_mask_cached(const slm_grammar *gr) {
    return gr && !gr->ended && gr->state > 0 && gr->state < gr->cap_masks && gr->masks[gr->state];
}
