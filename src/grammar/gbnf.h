/* GBNF grammars (llama.cpp's syntax) compiled to a flat element array.
 *
 * A rule is a list of alternatives; an alternative is a run of elements
 * ended by GB_END. An element matches one code point (GB_CHAR: a character
 * class) or stands for a rule (GB_REF). Groups and repetitions are rewritten
 * into generated rules when the text is parsed, so the matcher only ever sees
 * characters, references and ends:
 *   S*      -> R ::= S R |          S+ -> S R
 *   S?      -> R ::= S |            S{m,n} -> S..S (m times) then n-m nested
 *   S{m,}   -> S..S R                             optional copies
 * A position is an index into elems; a parse stack is a chain of positions
 * (src/grammar/matcher.h). */
#ifndef SLM_GRAMMAR_GBNF_H
#define SLM_GRAMMAR_GBNF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "slm.h"

enum { GB_END = 0, GB_CHAR = 1, GB_REF = 2 };

typedef struct gb_elem {
    int32_t type;   /* GB_END, GB_CHAR, GB_REF */
    int32_t val;    /* GB_CHAR: class index; GB_REF: rule index */
} gb_elem;

/* A set of code points: inclusive ranges, possibly negated; `any` is ".". */
typedef struct gb_class {
    uint32_t ascii[4];      /* membership of 0..127, negation applied */
    bool neg, any;
    int n_ranges;
    uint32_t *ranges;       /* lo, hi pairs (into gb_grammar.range_pool) */
} gb_class;

typedef struct gb_grammar {
    gb_elem *elems;
    int n_elems;
    int32_t *alt_start;     /* first element of every alternative */
    int n_alts;
    int32_t *rule_alt0;     /* rule r: alternatives rule_alt0[r] .. rule_alt0[r] + rule_nalts[r] - 1 */
    int32_t *rule_nalts;
    char **rule_names;      /* generated rules: "name_N" after the rule they came from */
    int n_rules;
    gb_class *classes;
    int n_classes;
    uint32_t *range_pool;
    int root;
} gb_grammar;

/* Limits that keep a hostile grammar from exhausting memory at load. */
#define GB_MAX_ELEMS (1 << 22)
#define GB_MAX_REPEAT 10000

/* Parses GBNF text (need not be NUL-terminated). Errors name line and column:
 * syntax errors, undefined rules, a missing root rule, an empty grammar, and
 * left recursion (which would make the matcher's stacks grow forever). */
slm_status gb_parse(const char *text, size_t len, gb_grammar **out);
void gb_free(gb_grammar *g);

static inline bool gb_class_match(const gb_class *c, uint32_t cp) {
    if (cp < 128) return (c->ascii[cp >> 5] >> (cp & 31)) & 1u;
    if (c->any) return true;
    bool in = false;
    for (int i = 0; i < c->n_ranges && !in; i++) in = cp >= c->ranges[2 * i] && cp <= c->ranges[2 * i + 1];
    return in != c->neg;
}

/* True if some code point in lo..hi (inclusive) is in the class. */
bool gb_class_overlaps(const gb_class *c, uint32_t lo, uint32_t hi);

#endif
