/* The grammar matcher: a pushdown recognizer over UTF-8, run as a lazily
 * built automaton over bytes.
 *
 * A parse stack is a chain of nodes (position, parent), hash-consed so that
 * equal stacks have equal ids (node 0 is the empty stack: the root rule has
 * completed). A stack's top is always a character element; when a rule
 * reference is expanded its return position is pushed unless the reference
 * ends its alternative (tail call: right recursion runs in constant depth).
 * The parser state after some input is the set of stacks still alive (plus
 * the bytes of a UTF-8 character not yet complete); sets are interned too,
 * and each (state, byte) transition is computed once and remembered, so
 * checking a token or walking the vocabulary mostly reads a table.
 *
 * State 0 is dead (no stack survives). */
#ifndef SLM_GRAMMAR_MATCHER_H
#define SLM_GRAMMAR_MATCHER_H

#include <stdbool.h>
#include <stdint.h>

#include "grammar/gbnf.h"

typedef struct gm gm;

slm_status gm_new(const gb_grammar *g, gm **out);
void gm_free(gm *m);
/* The state before any input. */
int gm_initial(gm *m);
/* The state after one more byte (0: dead). -1 when memory ran out. */
int gm_step(gm *m, int state, uint8_t byte);
/* The root rule can be complete here (no UTF-8 character pending). */
bool gm_can_end(const gm *m, int state);
/* Nothing but the end is possible here. */
bool gm_must_end(const gm *m, int state);
/* How many states exist; the caller may gm_flush to bound memory: every state
 * is forgotten except `keep`, whose new id is returned (-1: out of memory). */
int gm_n_states(const gm *m);
size_t gm_bytes(const gm *m);
int gm_flush(gm *m, int keep);

#endif
