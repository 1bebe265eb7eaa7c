/* Rules under construction, flattening, and the load-time checks. */
#include "grammar/gbnf_build.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/status.h"

typedef struct {
    char *name;
    int parent;           /* generated rules: the named rule they came from; else -1 */
    bool defined;
    size_t ref_at;        /* first reference (for "undefined rule") */
    gb_seq *alts;
    int n_alts, cap_alts;
    int n_generated;      /* counter for the names of rules generated under it */
} rule_b;

typedef struct {
    bool neg, any;
    int range_off, n_ranges;
} class_b;

struct gb_build {
    rule_b *rules;
    int n_rules, cap_rules;
    class_b *classes;
    int n_classes, cap_classes;
    uint32_t *ranges;
    int n_ranges, cap_ranges;
    int ascii_single[128];   /* class index of the single-character class, or -1 */
    size_t n_elems_total;
    int n_named_defined;
};

static bool grow(void **p, int *cap, int need, size_t elem) {
    if (need <= *cap) return true;
    int nc = *cap ? *cap : 16;
    while (nc < need) nc *= 2;
    void *np = realloc(*p, (size_t)nc * elem);
    if (!np) return false;
    *p = np;
    *cap = nc;
    return true;
}

gb_build *gbb_new(void) {
    gb_build *b = calloc(1, sizeof *b);
    if (b) for (int i = 0; i < 128; i++) b->ascii_single[i] = -1;
    return b;
}

void gbb_free(gb_build *b) {
    if (!b) return;
    for (int r = 0; r < b->n_rules; r++) {
        for (int a = 0; a < b->rules[r].n_alts; a++) free(b->rules[r].alts[a].e);
        free(b->rules[r].alts);
        free(b->rules[r].name);
    }
    free(b->rules);
    free(b->classes);
    free(b->ranges);
    free(b);
}

int gbb_class_begin(gb_build *b, bool neg, bool any) {
    if (!grow((void **)&b->classes, &b->cap_classes, b->n_classes + 1, sizeof *b->classes)) return -1;
    b->classes[b->n_classes] = (class_b){neg, any, b->n_ranges, 0};
    return b->n_classes++;
}

bool gbb_class_add(gb_build *b, int cl, uint32_t lo, uint32_t hi) {
    if (!grow((void **)&b->ranges, &b->cap_ranges, b->n_ranges + 2, sizeof *b->ranges)) return false;
    b->ranges[b->n_ranges++] = lo;
    b->ranges[b->n_ranges++] = hi;
    b->classes[cl].n_ranges++;
    return true;
}

void gbb_class_end(gb_build *b, int cl) { (void)b; (void)cl; }

int gbb_class_single(gb_build *b, uint32_t cp) {
    if (cp < 128 && b->ascii_single[cp] >= 0) return b->ascii_single[cp];
    int cl = gbb_class_begin(b, false, false);
    if (cl < 0 || !gbb_class_add(b, cl, cp, cp)) return -1;
    if (cp < 128) b->ascii_single[cp] = cl;
    return cl;
}

static int rule_new(gb_build *b, char *name, int parent) {
    if (!name || !grow((void **)&b->rules, &b->cap_rules, b->n_rules + 1, sizeof *b->rules)) { free(name); return -1; }
    b->rules[b->n_rules] = (rule_b){.name = name, .parent = parent};
    return b->n_rules++;
}

static int rule_find(const gb_build *b, const char *name, size_t len) {
    for (int r = 0; r < b->n_rules; r++)
        if (b->rules[r].parent < 0 && strlen(b->rules[r].name) == len && !memcmp(b->rules[r].name, name, len)) return r;
    return -1;
}

static char *dup_n(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (d) { memcpy(d, s, n); d[n] = 0; }
    return d;
}

int gbb_rule_ref(gb_build *b, const char *name, size_t len, size_t at) {
    int r = rule_find(b, name, len);
    if (r >= 0) return r;
    r = rule_new(b, dup_n(name, len), -1);
    if (r >= 0) b->rules[r].ref_at = at;
    return r;
}

int gbb_rule_define(gb_build *b, const char *name, size_t len, size_t at) {
    int r = gbb_rule_ref(b, name, len, at);
    if (r >= 0 && !b->rules[r].defined) { b->rules[r].defined = true; b->n_named_defined++; }
    return r;
}

int gbb_rule_new_generated(gb_build *b, int parent) {
    int top = parent;
    while (b->rules[top].parent >= 0) top = b->rules[top].parent;
    char buf[160];
    snprintf(buf, sizeof buf, "%.120s_%d", b->rules[top].name, ++b->rules[top].n_generated);
    int r = rule_new(b, dup_n(buf, strlen(buf)), top);
    if (r >= 0) b->rules[r].defined = true;
    return r;
}

void gbb_rule_clear(gb_build *b, int r) {
    rule_b *rb = &b->rules[r];
    for (int a = 0; a < rb->n_alts; a++) {
        b->n_elems_total -= rb->alts[a].n;
        free(rb->alts[a].e);
    }
    rb->n_alts = 0;
}

gb_seq *gbb_rule_new_alt(gb_build *b, int r) {
    rule_b *rb = &b->rules[r];
    if (!grow((void **)&rb->alts, &rb->cap_alts, rb->n_alts + 1, sizeof *rb->alts)) return NULL;
    rb->alts[rb->n_alts] = (gb_seq){0};
    return &rb->alts[rb->n_alts++];
}

bool gbb_seq_push(gb_build *b, gb_seq *s, int type, int val) {
    if (b->n_elems_total + 1 >= GB_MAX_ELEMS) {
        slm_fail(SLM_ERR_FORMAT, "grammar too large (more than %d elements after expanding repetitions)", GB_MAX_ELEMS);
        return false;
    }
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 8;
        gb_elem *ne = realloc(s->e, nc * sizeof *ne);
        if (!ne) return false;
        s->e = ne;
        s->cap = nc;
    }
    s->e[s->n++] = (gb_elem){type, val};
    b->n_elems_total++;
    return true;
}

static bool push_all(gb_build *b, gb_seq *dst, const gb_elem *src, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!gbb_seq_push(b, dst, src[i].type, src[i].val)) return false;
    return true;
}

bool gbb_repeat(gb_build *b, int rule, gb_seq *seq, size_t start, int mn, int mx) {
    size_t n = seq->n - start;
    uint64_t cost = (uint64_t)n * (uint64_t)(mn + (mx < 0 ? 1 : mx - mn) + 1);
    if (b->n_elems_total + cost >= GB_MAX_ELEMS)
        return slm_fail(SLM_ERR_FORMAT, "grammar too large (repetition expands past %d elements)", GB_MAX_ELEMS), false;
    gb_elem *item = malloc((n ? n : 1) * sizeof *item);
    if (!item) return slm_fail(SLM_ERR_NOMEM, "out of memory"), false;
    if (n) memcpy(item, seq->e + start, n * sizeof *item);
    b->n_elems_total -= n;
    seq->n = start;
    bool ok = true;
    /* seq may move when rules grow? No: alternatives are separate blocks, and
     * seq belongs to `rule`, which gains no alternatives here. */
    for (int i = 0; i < mn && ok; i++) ok = push_all(b, seq, item, n);
    if (ok && mx < 0) {
        int r = gbb_rule_new_generated(b, rule);
        gb_seq *a1 = r >= 0 ? gbb_rule_new_alt(b, r) : NULL;
        ok = a1 && push_all(b, a1, item, n) && gbb_seq_push(b, a1, GB_REF, r) && gbb_rule_new_alt(b, r) &&
             gbb_seq_push(b, seq, GB_REF, r);
    } else if (ok && mx > mn) {
        int last = -1;
        for (int i = 0; i < mx - mn && ok; i++) {
            int r = gbb_rule_new_generated(b, rule);
            gb_seq *a1 = r >= 0 ? gbb_rule_new_alt(b, r) : NULL;
            ok = a1 && push_all(b, a1, item, n) && (last < 0 || gbb_seq_push(b, a1, GB_REF, last)) &&
                 gbb_rule_new_alt(b, r);
            last = r;
        }
        ok = ok && gbb_seq_push(b, seq, GB_REF, last);
    }
    free(item);
    if (!ok && !*slm_last_error()) slm_fail(SLM_ERR_NOMEM, "out of memory");
    return ok;
}

const char *gbb_first_undefined(const gb_build *b, size_t *at) {
    const char *name = NULL;
    size_t best = (size_t)-1;
    for (int r = 0; r < b->n_rules; r++)
        if (!b->rules[r].defined && b->rules[r].ref_at < best) { best = b->rules[r].ref_at; name = b->rules[r].name; }
    *at = best;
    return name;
}

/* ---- checks on the flat form ------------------------------------------------ */

/* Left recursion: an edge r -> s when s can be expanded in r before any
 * character is read; the edge "grows" the stack when s is not the last
 * element of the alternative (a return position is pushed). A cycle of such
 * edges containing a growing one makes the stack grow without bound; cycles
 * of tail edges only are harmless (the matcher never expands a node twice).
 * Found with strongly connected components (Kosaraju, iterative). */
typedef struct { int from, to; bool grows; } edge;

static int cmp_edge(const void *a, const void *b) { return ((const edge *)a)->from - ((const edge *)b)->from; }

static slm_status check_left_recursion(const gb_grammar *g) {
    const int nr = g->n_rules;
    bool *nullable = calloc((size_t)nr, 1);
    int ne = 0, cap = 0;
    edge *es = NULL;
    int *start = NULL, *rstart = NULL, *order = NULL, *comp = NULL, *stack = NULL, *it = NULL;
    edge *rev = NULL;
    slm_status st = SLM_OK;
    if (!nullable) return slm_fail(SLM_ERR_NOMEM, "out of memory");
    for (bool changed = true; changed;) {
        changed = false;
        for (int r = 0; r < nr; r++) {
            if (nullable[r]) continue;
            for (int a = g->rule_alt0[r]; a < g->rule_alt0[r] + g->rule_nalts[r] && !nullable[r]; a++) {
                int i = g->alt_start[a];
                while (g->elems[i].type == GB_REF && nullable[g->elems[i].val]) i++;
                if (g->elems[i].type == GB_END) { nullable[r] = true; changed = true; }
            }
        }
    }
    for (int r = 0; r < nr; r++)
        for (int a = g->rule_alt0[r]; a < g->rule_alt0[r] + g->rule_nalts[r]; a++)
            for (int i = g->alt_start[a]; g->elems[i].type == GB_REF; i++) {
                if (!grow((void **)&es, &cap, ne + 1, sizeof *es)) { st = slm_fail(SLM_ERR_NOMEM, "out of memory"); goto done; }
                es[ne++] = (edge){r, g->elems[i].val, g->elems[i + 1].type != GB_END};
                if (!nullable[g->elems[i].val]) break;
            }
    start = calloc((size_t)nr + 1, sizeof *start);
    rstart = calloc((size_t)nr + 1, sizeof *rstart);
    order = malloc((size_t)nr * sizeof *order);
    comp = malloc((size_t)nr * sizeof *comp);
    stack = malloc(((size_t)nr + 1) * sizeof *stack);
    it = malloc(((size_t)nr + 1) * sizeof *it);
    rev = malloc(((size_t)ne + 1) * sizeof *rev);
    if (!start || !rstart || !order || !comp || !stack || !it || !rev) { st = slm_fail(SLM_ERR_NOMEM, "out of memory"); goto done; }
    if (ne) qsort(es, (size_t)ne, sizeof *es, cmp_edge);
    for (int i = 0; i < ne; i++) { start[es[i].from + 1]++; rev[i] = (edge){es[i].to, es[i].from, es[i].grows}; }
    for (int r = 0; r < nr; r++) start[r + 1] += start[r];
    if (ne) qsort(rev, (size_t)ne, sizeof *rev, cmp_edge);
    for (int i = 0; i < ne; i++) rstart[rev[i].from + 1]++;
    for (int r = 0; r < nr; r++) rstart[r + 1] += rstart[r];
    /* pass 1: post-order on the graph */
    int n_order = 0;
    for (int r = 0; r < nr; r++) comp[r] = -1;
    for (int s = 0; s < nr; s++) {
        if (comp[s] != -1) continue;
        int sp = 0;
        stack[sp] = s; it[sp] = start[s]; comp[s] = -2; sp++;
        while (sp) {
            int v = stack[sp - 1];
            if (it[sp - 1] < start[v + 1]) {
                int w = es[it[sp - 1]++].to;
                if (comp[w] == -1) { comp[w] = -2; stack[sp] = w; it[sp] = start[w]; sp++; }
            } else { order[n_order++] = v; sp--; }
        }
    }
    /* pass 2: reverse graph in reverse post-order */
    for (int r = 0; r < nr; r++) comp[r] = -1;
    int nc = 0;
    for (int k = n_order - 1; k >= 0; k--) {
        int s = order[k];
        if (comp[s] != -1) continue;
        int sp = 0;
        stack[sp++] = s;
        comp[s] = nc;
        while (sp) {
            int v = stack[--sp];
            for (int i = rstart[v]; i < rstart[v + 1]; i++) {
                int w = rev[i].to;
                if (comp[w] == -1) { comp[w] = nc; stack[sp++] = w; }
            }
        }
        nc++;
    }
    for (int i = 0; i < ne; i++)
        if (es[i].grows && comp[es[i].from] == comp[es[i].to]) {
            int r = es[i].from;
            const char *nm = g->rule_names[r];
            st = slm_fail(SLM_ERR_FORMAT,
                          "grammar: rule '%s' is left-recursive (it can reach itself before reading a character); "
                          "rewrite it with repetition, e.g. expr ::= term (\"+\" term)*", nm);
            break;
        }
done:
    free(nullable); free(es); free(start); free(rstart); free(order); free(comp); free(stack); free(it); free(rev);
    return st;
}

void gb_free(gb_grammar *g) {
    if (!g) return;
    for (int r = 0; r < g->n_rules; r++) free(g->rule_names[r]);
    free(g->rule_names);
    free(g->elems);
    free(g->alt_start);
    free(g->rule_alt0);
    free(g->rule_nalts);
    free(g->classes);
    free(g->range_pool);
    free(g);
}

slm_status gbb_finish(gb_build *b, gb_grammar **out) {
    *out = NULL;
    if (b->n_named_defined == 0) return slm_fail(SLM_ERR_FORMAT, "grammar: empty grammar (no rules)");
    int root = rule_find(b, "root", 4);
    if (root < 0 || !b->rules[root].defined) return slm_fail(SLM_ERR_FORMAT, "grammar: no rule named 'root'");
    gb_grammar *g = calloc(1, sizeof *g);
    if (!g) return slm_fail(SLM_ERR_NOMEM, "out of memory");
    int n_alts = 0;
    size_t n_el = 0;
    for (int r = 0; r < b->n_rules; r++) {
        n_alts += b->rules[r].n_alts;
        for (int a = 0; a < b->rules[r].n_alts; a++) n_el += b->rules[r].alts[a].n + 1;
    }
    g->n_rules = b->n_rules;
    g->elems = malloc((n_el + 1) * sizeof *g->elems);
    g->alt_start = malloc(((size_t)n_alts + 1) * sizeof *g->alt_start);
    g->rule_alt0 = malloc((size_t)b->n_rules * sizeof *g->rule_alt0);
    g->rule_nalts = malloc((size_t)b->n_rules * sizeof *g->rule_nalts);
    g->rule_names = calloc((size_t)b->n_rules, sizeof *g->rule_names);
    g->classes = calloc((size_t)b->n_classes + 1, sizeof *g->classes);
    g->range_pool = malloc(((size_t)b->n_ranges + 1) * sizeof *g->range_pool);
    if (!g->elems || !g->alt_start || !g->rule_alt0 || !g->rule_nalts || !g->rule_names || !g->classes || !g->range_pool) {
        gb_free(g);
        return slm_fail(SLM_ERR_NOMEM, "out of memory");
    }
    int ai = 0, ei = 0;
    for (int r = 0; r < b->n_rules; r++) {
        rule_b *rb = &b->rules[r];
        g->rule_names[r] = rb->name;
        rb->name = NULL;
        g->rule_alt0[r] = ai;
        g->rule_nalts[r] = rb->n_alts;
        for (int a = 0; a < rb->n_alts; a++) {
            g->alt_start[ai++] = ei;
            if (rb->alts[a].n) memcpy(g->elems + ei, rb->alts[a].e, rb->alts[a].n * sizeof *g->elems);
            ei += (int)rb->alts[a].n;
            g->elems[ei++] = (gb_elem){GB_END, 0};
        }
    }
    g->elems[ei] = (gb_elem){GB_END, 0};
    g->n_elems = ei;
    g->n_alts = ai;
    if (b->n_ranges) memcpy(g->range_pool, b->ranges, (size_t)b->n_ranges * sizeof *g->range_pool);
    g->n_classes = b->n_classes;
    for (int c = 0; c < b->n_classes; c++) {
        gb_class *gc = &g->classes[c];
        gc->neg = b->classes[c].neg;
        gc->any = b->classes[c].any;
        gc->n_ranges = b->classes[c].n_ranges;
        gc->ranges = g->range_pool + b->classes[c].range_off;
        for (uint32_t cp = 0; cp < 128; cp++) {
            bool in = gc->any;
            for (int i = 0; i < gc->n_ranges && !in; i++) in = cp >= gc->ranges[2 * i] && cp <= gc->ranges[2 * i + 1];
            if (!gc->any && gc->neg) in = !in;
            if (in) gc->ascii[cp >> 5] |= 1u << (cp & 31);
        }
    }
    g->root = root;
    slm_status st = check_left_recursion(g);
    if (st) { gb_free(g); return st; }
    *out = g;
    return SLM_OK;
}

bool gb_class_overlaps(const gb_class *c, uint32_t lo, uint32_t hi) {
    if (lo > hi) return false;
    if (c->any) return true;
    if (!c->neg) {
        for (int i = 0; i < c->n_ranges; i++)
            if (c->ranges[2 * i] <= hi && c->ranges[2 * i + 1] >= lo) return true;
        return false;
    }
    /* negated: some point of lo..hi lies outside every range. Walk up from lo,
     * jumping past any range that covers the current point. */
    uint32_t x = lo;
    for (;;) {
        bool moved = false;
        for (int i = 0; i < c->n_ranges; i++)
            if (c->ranges[2 * i] <= x && c->ranges[2 * i + 1] >= x) {
                if (c->ranges[2 * i + 1] >= hi) return false;
                x = c->ranges[2 * i + 1] + 1;
                moved = true;
            }
        if (!moved) return true;
    }
}
