/* Grammar matcher: hash-consed parse stacks, interned stack sets, and a
 * lazily filled byte-transition table per state (see matcher.h). */
#include "grammar/matcher.h"

#include <stdlib.h>
#include <string.h>

#include "base/status.h"

/* Parse stacks one character may produce. Real grammars (JSON, schemas,
 * tool calls) stay under a few hundred; nested ambiguous repetitions such as
 * ("a"+)+ grow them exponentially with the text, so past this the step fails
 * with a clear message instead of running for minutes. */
#define CLOSURE_LIMIT (1 << 15)

typedef struct {
    int32_t *slot;   /* id + 1; 0 = empty */
    uint32_t cap, n;
} htab;

typedef struct {
    int32_t set;      /* interned stack set */
    int8_t need;      /* continuation bytes still expected */
    int8_t len;       /* length of the pending UTF-8 sequence */
    uint32_t cp;      /* its bits so far */
} mstate;

struct gm {
    const gb_grammar *g;
    /* nodes: (pos, parent); node 0 is the empty stack */
    int32_t *npos, *npar;
    uint32_t *nhash, *nstamp;
    int n_nodes, cap_nodes;
    htab nht;
    uint32_t epoch;
    /* stack sets: sorted node ids in a pool; set 0 is the empty (dead) set */
    int32_t *pool;
    size_t n_pool, cap_pool;
    size_t *soff;
    int32_t *slen;
    uint32_t *shash;
    int n_sets, cap_sets;
    htab sht;
    /* states; state 0 is dead */
    mstate *st;
    int32_t **trans;
    uint32_t *sthash;
    int n_states, cap_states;
    htab stht;
    size_t n_trans;
    /* scratch */
    int32_t *work, *out;
    int cap_work, cap_out;
};

static uint32_t mix(uint32_t h, uint32_t v) {
    h ^= v + 0x9e3779b9u + (h << 6) + (h >> 2);
    return h;
}

static bool grow_arr(void **p, int *cap, int need, size_t elem) {
    if (need <= *cap) return true;
    int nc = *cap ? *cap : 64;
    while (nc < need) nc *= 2;
    void *np = realloc(*p, (size_t)nc * elem);
    if (!np) return false;
    *p = np;
    *cap = nc;
    return true;
}

/* ---- open-addressing tables of ids, keyed by a stored hash ------------------ */

static bool ht_init(htab *t, uint32_t cap) {
    t->slot = calloc(cap, sizeof *t->slot);
    t->cap = cap;
    t->n = 0;
    return t->slot != NULL;
}

static bool ht_rehash(htab *t, const uint32_t *hashes) {
    uint32_t nc = t->cap * 2;
    int32_t *ns = calloc(nc, sizeof *ns);
    if (!ns) return false;
    for (uint32_t i = 0; i < t->cap; i++) {
        int32_t id = t->slot[i];
        if (!id) continue;
        uint32_t j = hashes[id - 1] & (nc - 1);
        while (ns[j]) j = (j + 1) & (nc - 1);
        ns[j] = id;
    }
    free(t->slot);
    t->slot = ns;
    t->cap = nc;
    return true;
}

static void ht_insert(htab *t, uint32_t h, int id) {
    uint32_t j = h & (t->cap - 1);
    while (t->slot[j]) j = (j + 1) & (t->cap - 1);
    t->slot[j] = id + 1;
    t->n++;
}

/* ---- nodes ---------------------------------------------------------------------- */

static int node_intern(gm *m, int pos, int parent) {
    uint32_t h = mix(mix(0x12345u, (uint32_t)pos), (uint32_t)parent);
    for (uint32_t j = h & (m->nht.cap - 1);; j = (j + 1) & (m->nht.cap - 1)) {
        int32_t id = m->nht.slot[j];
        if (!id) break;
        if (m->npos[id - 1] == pos && m->npar[id - 1] == parent) return id - 1;
    }
    if (m->n_nodes == m->cap_nodes) {
        int nc = m->cap_nodes * 2;
        void *a = realloc(m->npos, (size_t)nc * sizeof *m->npos);
        if (!a) return -1;
        m->npos = a;
        a = realloc(m->npar, (size_t)nc * sizeof *m->npar);
        if (!a) return -1;
        m->npar = a;
        a = realloc(m->nhash, (size_t)nc * sizeof *m->nhash);
        if (!a) return -1;
        m->nhash = a;
        a = realloc(m->nstamp, (size_t)nc * sizeof *m->nstamp);
        if (!a) return -1;
        m->nstamp = a;
        m->cap_nodes = nc;
    }
    int id = m->n_nodes++;
    m->npos[id] = pos;
    m->npar[id] = parent;
    m->nhash[id] = h;
    m->nstamp[id] = 0;
    if ((m->nht.n + 1) * 2 > m->nht.cap && !ht_rehash(&m->nht, m->nhash)) return -1;
    ht_insert(&m->nht, h, id);
    return id;
}

/* ---- sets ----------------------------------------------------------------------- */

static int cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* Interns the n ids in m->out (sorted and deduplicated here). */
static int set_intern(gm *m, int n) {
    if (n <= 0) return 0;
    int32_t *v = m->out;
    qsort(v, (size_t)n, sizeof *v, cmp_i32);
    int k = 0;
    for (int i = 0; i < n; i++)
        if (k == 0 || v[k - 1] != v[i]) v[k++] = v[i];
    n = k;
    if (n == 0) return 0;
    uint32_t h = 0x777u;
    for (int i = 0; i < n; i++) h = mix(h, (uint32_t)v[i]);
    for (uint32_t j = h & (m->sht.cap - 1);; j = (j + 1) & (m->sht.cap - 1)) {
        int32_t id = m->sht.slot[j];
        if (!id) break;
        id--;
        if (m->shash[id] == h && m->slen[id] == n && !memcmp(m->pool + m->soff[id], v, (size_t)n * sizeof *v)) return id;
    }
    if (m->n_pool + (size_t)n > m->cap_pool) {
        size_t nc = m->cap_pool ? m->cap_pool : 1024;
        while (nc < m->n_pool + (size_t)n) nc *= 2;
        int32_t *np = realloc(m->pool, nc * sizeof *np);
        if (!np) return -1;
        m->pool = np;
        m->cap_pool = nc;
    }
    int cap = m->cap_sets;
    if (!grow_arr((void **)&m->slen, &cap, m->n_sets + 1, sizeof *m->slen)) return -1;
    if (cap != m->cap_sets) {
        void *a = realloc(m->soff, (size_t)cap * sizeof *m->soff);
        if (!a) return -1;
        m->soff = a;
        void *b = realloc(m->shash, (size_t)cap * sizeof *m->shash);
        if (!b) return -1;
        m->shash = b;
        m->cap_sets = cap;
    }
    int id = m->n_sets++;
    m->soff[id] = m->n_pool;
    m->slen[id] = n;
    m->shash[id] = h;
    memcpy(m->pool + m->n_pool, v, (size_t)n * sizeof *v);
    m->n_pool += (size_t)n;
    if ((m->sht.n + 1) * 2 > m->sht.cap && !ht_rehash(&m->sht, m->shash)) return -1;
    ht_insert(&m->sht, h, id);
    return id;
}

/* ---- states --------------------------------------------------------------------- */

static int state_intern(gm *m, int set, int need, int len, uint32_t cp) {
    if (set == 0) return 0;
    uint32_t h = mix(mix(mix(0x4242u, (uint32_t)set), (uint32_t)(need << 4 | len)), cp);
    for (uint32_t j = h & (m->stht.cap - 1);; j = (j + 1) & (m->stht.cap - 1)) {
        int32_t id = m->stht.slot[j];
        if (!id) break;
        const mstate *s = &m->st[id - 1];
        if (s->set == set && s->need == need && s->len == len && s->cp == cp) return id - 1;
    }
    int cap = m->cap_states;
    if (!grow_arr((void **)&m->st, &cap, m->n_states + 1, sizeof *m->st)) return -1;
    if (cap != m->cap_states) {
        void *a = realloc(m->trans, (size_t)cap * sizeof *m->trans);
        if (!a) return -1;
        m->trans = a;
        void *b = realloc(m->sthash, (size_t)cap * sizeof *m->sthash);
        if (!b) return -1;
        m->sthash = b;
        m->cap_states = cap;
    }
    int id = m->n_states++;
    m->st[id] = (mstate){set, (int8_t)need, (int8_t)len, cp};
    m->trans[id] = NULL;
    m->sthash[id] = h;
    if ((m->stht.n + 1) * 2 > m->stht.cap && !ht_rehash(&m->stht, m->sthash)) return -1;
    ht_insert(&m->stht, h, id);
    return id;
}

/* ---- expansion ------------------------------------------------------------------ */

static bool too_ambiguous(void) {
    slm_fail(SLM_ERR_NOMEM, "grammar too ambiguous: more than %d parse stacks after one character", CLOSURE_LIMIT);
    return false;
}

static bool work_push(gm *m, int *nw, int node) {
    if (m->nstamp[node] == m->epoch) return true;
    m->nstamp[node] = m->epoch;
    if (*nw >= CLOSURE_LIMIT) return too_ambiguous();
    if (!grow_arr((void **)&m->work, &m->cap_work, *nw + 1, sizeof *m->work)) return false;
    m->work[(*nw)++] = node;
    return true;
}

/* Expands the nodes on the work list until every stack's top is a character
 * element (or the stack is empty); the stacks go to m->out. Returns the
 * count, -1 on memory exhaustion. */
static int closure(gm *m, int nw) {
    const gb_grammar *g = m->g;
    int n_out = 0;
    while (nw > 0) {
        int n = m->work[--nw];
        int type = n == 0 ? -1 : g->elems[m->npos[n]].type;
        if (n == 0 || type == GB_CHAR) {
            if (n_out >= CLOSURE_LIMIT) return too_ambiguous(), -1;
            if (!grow_arr((void **)&m->out, &m->cap_out, n_out + 1, sizeof *m->out)) return -1;
            m->out[n_out++] = n;
        } else if (type == GB_END) {
            if (!work_push(m, &nw, m->npar[n])) return -1;
        } else { /* GB_REF */
            int pos = m->npos[n], r = g->elems[pos].val;
            int ret = g->elems[pos + 1].type == GB_END ? m->npar[n] : node_intern(m, pos + 1, m->npar[n]);
            if (ret < 0) return -1;
            for (int a = g->rule_alt0[r]; a < g->rule_alt0[r] + g->rule_nalts[r]; a++) {
                int c = node_intern(m, g->alt_start[a], ret);
                if (c < 0 || !work_push(m, &nw, c)) return -1;
            }
        }
    }
    return n_out;
}

static void new_epoch(gm *m) {
    if (++m->epoch == 0) {
        memset(m->nstamp, 0, (size_t)m->n_nodes * sizeof *m->nstamp);
        m->epoch = 1;
    }
}

/* The set after code point cp; -1 on memory exhaustion. */
static int advance(gm *m, int set, uint32_t cp) {
    new_epoch(m);
    int nw = 0;
    for (int i = 0; i < m->slen[set]; i++) {
        int n = m->pool[m->soff[set] + (size_t)i];
        if (n == 0) continue;
        int pos = m->npos[n];
        if (!gb_class_match(&m->g->classes[m->g->elems[pos].val], cp)) continue;
        int nn = node_intern(m, pos + 1, m->npar[n]);
        /* node_intern may move the pool? No: the pool only grows in set_intern */
        if (nn < 0 || !work_push(m, &nw, nn)) return -1;
    }
    int n_out = closure(m, nw);
    return n_out < 0 ? -1 : set_intern(m, n_out);
}

/* Can some code point in lo..hi (after clipping to valid scalar values) be
 * read by one of the set's stacks? */
static bool viable(const gm *m, int set, uint32_t lo, uint32_t hi) {
    if (hi > 0x10FFFF) hi = 0x10FFFF;
    for (int i = 0; i < m->slen[set]; i++) {
        int n = m->pool[m->soff[set] + (size_t)i];
        if (n == 0) continue;
        const gb_class *c = &m->g->classes[m->g->elems[m->npos[n]].val];
        if (gb_class_overlaps(c, lo, hi < 0xD7FF ? hi : 0xD7FF) || gb_class_overlaps(c, lo > 0xE000 ? lo : 0xE000, hi))
            return true;
    }
    return false;
}

static const uint32_t utf8_min[5] = {0, 0, 0x80, 0x800, 0x10000};

static int compute_step(gm *m, int s, uint8_t b) {
    mstate st = m->st[s];
    if (st.need == 0) {
        if (b < 0x80) {
            int set = advance(m, st.set, b);
            return set < 0 ? -1 : state_intern(m, set, 0, 0, 0);
        }
        int len = b >= 0xC2 && b <= 0xDF ? 2 : b >= 0xE0 && b <= 0xEF ? 3 : b >= 0xF0 && b <= 0xF4 ? 4 : 0;
        if (!len) return 0;
        uint32_t cp = b & (len == 2 ? 0x1Fu : len == 3 ? 0x0Fu : 0x07u);
        int need = len - 1;
        uint32_t lo = cp << (6 * need), hi = lo | ((1u << (6 * need)) - 1);
        if (lo < utf8_min[len]) lo = utf8_min[len];
        if (!viable(m, st.set, lo, hi)) return 0;
        return state_intern(m, st.set, need, len, cp);
    }
    if ((b & 0xC0) != 0x80) return 0;
    uint32_t cp = st.cp << 6 | (b & 0x3Fu);
    int need = st.need - 1;
    if (need == 0) {
        if (cp < utf8_min[st.len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
        int set = advance(m, st.set, cp);
        return set < 0 ? -1 : state_intern(m, set, 0, 0, 0);
    }
    uint32_t lo = cp << (6 * need), hi = lo | ((1u << (6 * need)) - 1);
    if (lo < utf8_min[st.len]) lo = utf8_min[st.len];
    if (!viable(m, st.set, lo, hi)) return 0;
    return state_intern(m, st.set, need, st.len, cp);
}

int gm_step(gm *m, int s, uint8_t b) {
    if (s <= 0) return s;
    int32_t *t = m->trans[s];
    if (t && t[b] >= 0) return t[b];
    int r = compute_step(m, s, b);
    if (r < 0) return -1;
    if (!m->trans[s]) {
        m->trans[s] = malloc(256 * sizeof **m->trans);
        if (!m->trans[s]) return r;
        for (int i = 0; i < 256; i++) m->trans[s][i] = -1;
        m->n_trans++;
    }
    m->trans[s][b] = r;
    return r;
}

bool gm_can_end(const gm *m, int s) {
    if (s <= 0 || m->st[s].need) return false;
    int set = m->st[s].set;
    return m->slen[set] > 0 && m->pool[m->soff[set]] == 0;
}

bool gm_must_end(const gm *m, int s) {
    return gm_can_end(m, s) && m->slen[m->st[s].set] == 1;
}

int gm_n_states(const gm *m) { return m->n_states; }

size_t gm_bytes(const gm *m) {
    return (size_t)m->cap_nodes * 16 + m->cap_pool * 4 + (size_t)m->cap_sets * 20 + (size_t)m->cap_states * 24 +
           m->n_trans * 1024 + (size_t)(m->nht.cap + m->sht.cap + m->stht.cap) * 4;
}

/* ---- life cycle ----------------------------------------------------------------- */

static void clear_all(gm *m) {
    for (int i = 0; i < m->n_states; i++) free(m->trans[i]);
    m->n_trans = 0;
    memset(m->nht.slot, 0, m->nht.cap * sizeof *m->nht.slot);
    memset(m->sht.slot, 0, m->sht.cap * sizeof *m->sht.slot);
    memset(m->stht.slot, 0, m->stht.cap * sizeof *m->stht.slot);
    m->nht.n = m->sht.n = m->stht.n = 0;
    /* node 0: the empty stack; set 0: no stacks; state 0: dead */
    m->n_nodes = 1;
    m->npos[0] = -1;
    m->npar[0] = -1;
    m->nstamp[0] = 0;
    m->n_sets = 1;
    m->soff[0] = 0;
    m->slen[0] = 0;
    m->n_pool = 0;
    m->n_states = 1;
    m->st[0] = (mstate){0, 0, 0, 0};
    m->trans[0] = NULL;
}

slm_status gm_new(const gb_grammar *g, gm **out) {
    *out = NULL;
    gm *m = calloc(1, sizeof *m);
    if (!m) return slm_fail(SLM_ERR_NOMEM, "out of memory");
    m->g = g;
    bool ok = ht_init(&m->nht, 1024) && ht_init(&m->sht, 256) && ht_init(&m->stht, 256) &&
              (m->npos = malloc(64 * sizeof *m->npos)) &&
              (m->npar = malloc(64 * sizeof *m->npar)) && (m->nhash = malloc(64 * sizeof *m->nhash)) &&
              (m->nstamp = calloc(64, sizeof *m->nstamp)) &&
              (m->slen = malloc(64 * sizeof *m->slen)) && (m->soff = malloc(64 * sizeof *m->soff)) &&
              (m->shash = malloc(64 * sizeof *m->shash)) && (m->st = malloc(64 * sizeof *m->st)) &&
              (m->trans = malloc(64 * sizeof *m->trans)) && (m->sthash = malloc(64 * sizeof *m->sthash));
    if (!ok) { gm_free(m); return slm_fail(SLM_ERR_NOMEM, "out of memory"); }
    m->cap_nodes = 64;
    m->cap_sets = 64;
    m->cap_states = 64;
    m->n_states = 0;
    clear_all(m);
    *out = m;
    return SLM_OK;
}

void gm_free(gm *m) {
    if (!m) return;
    if (m->trans) for (int i = 0; i < m->n_states; i++) free(m->trans[i]);
    free(m->trans); free(m->st); free(m->sthash);
    free(m->npos); free(m->npar); free(m->nhash); free(m->nstamp);
    free(m->pool); free(m->soff); free(m->slen); free(m->shash);
    free(m->nht.slot); free(m->sht.slot); free(m->stht.slot);
    free(m->work); free(m->out);
    free(m);
}

int gm_initial(gm *m) {
    const gb_grammar *g = m->g;
    new_epoch(m);
    int nw = 0;
    for (int a = g->rule_alt0[g->root]; a < g->rule_alt0[g->root] + g->rule_nalts[g->root]; a++) {
        int c = node_intern(m, g->alt_start[a], 0);
        if (c < 0 || !work_push(m, &nw, c)) return -1;
    }
    int n = closure(m, nw);
    if (n < 0) return -1;
    int set = set_intern(m, n);
    return set < 0 ? -1 : state_intern(m, set, 0, 0, 0);
}

int gm_flush(gm *m, int keep) {
    if (keep <= 0) { clear_all(m); return keep; }
    mstate ks = m->st[keep];
    /* save the kept stacks as position chains, top first, each ended by -1 */
    size_t n = 0, cap = 256;
    int32_t *chains = malloc(cap * sizeof *chains);
    if (!chains) return -1;
    for (int i = 0; i < m->slen[ks.set]; i++) {
        for (int nd = m->pool[m->soff[ks.set] + (size_t)i];; nd = m->npar[nd]) {
            if (n + 1 >= cap) {
                int32_t *nc = realloc(chains, (cap *= 2) * sizeof *chains);
                if (!nc) { free(chains); return -1; }
                chains = nc;
            }
            if (nd == 0) { chains[n++] = -1; break; }
            chains[n++] = m->npos[nd];
        }
    }
    clear_all(m);
    int n_out = 0;
    for (size_t i = 0; i < n;) {
        size_t e = i;
        while (chains[e] != -1) e++;
        int node = 0;
        for (size_t k = e; k > i; k--) {
            node = node_intern(m, chains[k - 1], node);
            if (node < 0) { free(chains); return -1; }
        }
        if (!grow_arr((void **)&m->out, &m->cap_out, n_out + 1, sizeof *m->out)) { free(chains); return -1; }
        m->out[n_out++] = node;
        i = e + 1;
    }
    free(chains);
    int set = set_intern(m, n_out);
    return set < 0 ? -1 : state_intern(m, set, ks.need, ks.len, ks.cp);
}
