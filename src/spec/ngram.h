/* Prompt-lookup drafting: the tokens that followed the latest earlier
 * occurrence of the text's last n tokens are proposed as its continuation. */
#ifndef SLM_SPEC_NGRAM_H
#define SLM_SPEC_NGRAM_H

#include <stdint.h>

/* Looks in hist[0..n) for the latest earlier occurrence of its last m
 * tokens, m from n_max down to n_min (the longest match wins), and copies up
 * to k of the tokens that followed it into draft. Returns how many (0: no
 * match). */
int ngram_draft(const int32_t *hist, int n, int n_min, int n_max, int k, int32_t *draft);

#endif
