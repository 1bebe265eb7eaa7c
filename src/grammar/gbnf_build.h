/* Building a gb_grammar: rules as lists of alternatives while the text is
 * parsed, then flattened and checked (gbnf_build.c). Used by gbnf_parse.c. */
#ifndef SLM_GRAMMAR_GBNF_BUILD_H
#define SLM_GRAMMAR_GBNF_BUILD_H

#include "grammar/gbnf.h"

typedef struct gb_seq {
    gb_elem *e;
    size_t n, cap;
} gb_seq;

typedef struct gb_build gb_build;

gb_build *gbb_new(void);
void gbb_free(gb_build *b);

/* Character classes: a single code point, or begin / add ranges / end. */
int gbb_class_single(gb_build *b, uint32_t cp);
int gbb_class_begin(gb_build *b, bool neg, bool any);
bool gbb_class_add(gb_build *b, int cl, uint32_t lo, uint32_t hi);
void gbb_class_end(gb_build *b, int cl);

/* Rules by name (`at`: the byte offset, for error messages). */
int gbb_rule_ref(gb_build *b, const char *name, size_t len, size_t at);
int gbb_rule_define(gb_build *b, const char *name, size_t len, size_t at);
int gbb_rule_new_generated(gb_build *b, int parent);
void gbb_rule_clear(gb_build *b, int r);
gb_seq *gbb_rule_new_alt(gb_build *b, int r);
bool gbb_seq_push(gb_build *b, gb_seq *s, int type, int val);

/* Rewrites seq[start..] (one item) into a repetition {mn, mx} (mx -1: no
 * upper bound) with generated rules; false (error set) when too large. */
bool gbb_repeat(gb_build *b, int rule, gb_seq *seq, size_t start, int mn, int mx);

/* Name of a rule referenced but never defined (and where), or NULL. */
const char *gbb_first_undefined(const gb_build *b, size_t *at);
/* Flattens and checks (empty grammar, missing root, left recursion). */
slm_status gbb_finish(gb_build *b, gb_grammar **out);

#endif
