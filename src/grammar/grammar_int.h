/* What the sampler (src/sample) may ask a grammar beyond the public API. */
#ifndef SLM_GRAMMAR_INT_H
#define SLM_GRAMMAR_INT_H

#include <stdbool.h>

#include "slm.h"

/* Tokens in the vocabulary the grammar was built for (0: built without a model). */
int grammar_n_vocab(const slm_grammar *g);
/* The current state's mask is already computed (applying it is cheap). */
bool grammar_mask_cached(const slm_grammar *g);

#endif
