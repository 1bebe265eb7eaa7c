/* The restricted-head drafter: the model itself, with its output head cut
 * to the K tokens most likely a priori. A draft step runs the layers (the
 * target's own one-token step, whose KV entries and hidden state are kept)
 * and a K-row head: for Gemma 3 270M, whose head is 72 % of the bytes a
 * token reads, a 16384-token head makes the step ~a third of a full one. */
#ifndef SLM_SPEC_HEAD_H
#define SLM_SPEC_HEAD_H

#include "model/model.h"
#include "slm.h"

typedef struct head_draft head_draft;

/* The K tokens: any but unused and unknown ones; first those of one ASCII
 * character (with or without the word-boundary mark), then the highest
 * tokenizer score first (SentencePiece vocabularies: the unigram
 * log-probability learnt on the tokenizer's corpus), lowest id on ties (BPE
 * vocabularies have no scores; their ids follow the merge order, most
 * frequent first). */
slm_status head_draft_new(const struct slm_model *m, slm_pool *pool, int k, head_draft **out);
void head_draft_free(head_draft *h);
/* The most likely of the K tokens after the normed hidden state h. */
slm_token head_draft_next(head_draft *h, const float *hidden);

#endif
