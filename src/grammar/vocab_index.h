/* The vocabulary as grammars need it: every token's bytes, and the tokens
 * sorted by their bytes with the prefix structure that lets a mask be
 * computed as a trie walk. It depends only on the model, so one index is
 * built per model, on first use, and shared read-only by all its grammars
 * (slm serve builds a grammar per request). */
#ifndef SLM_GRAMMAR_VOCAB_INDEX_H
#define SLM_GRAMMAR_VOCAB_INDEX_H

#include <stdint.h>

#include "slm.h"

typedef struct {
    const char *p;
    uint32_t len;
    int32_t id;
} vtok;

typedef struct grammar_vocab {
    int n_vocab, n_words;    /* n_words: 64-bit words in a token bitset */
    char *bytes;             /* every token's bytes */
    uint32_t *off;           /* n_vocab + 1 offsets into bytes; empty: never allowed */
    uint64_t *eog;           /* bitset of end-of-generation tokens */
    vtok *sorted;            /* the tokens with bytes, in byte order */
    uint16_t *lcp;           /* common prefix with the previous sorted token (capped at 65535) */
    int n_sorted;
    int32_t grp_end[256];    /* sorted index one past the tokens starting with byte b */
    int32_t *grp2_end;       /* per sorted index: one past the tokens sharing its first 2 bytes */
    uint32_t max_len;        /* longest token, bytes */
} grammar_vocab;

/* The model's index, built on the first call (callers on several threads
 * wait for the one building it). It lives as long as the model. NULL when
 * it could not be built (the error is recorded). */
const grammar_vocab *grammar_vocab_get(const slm_model *model);

/* For slm_model_close. */
void grammar_vocab_free(grammar_vocab *v);

#endif
