/* Kept for callers not yet moved to the library's slm_chat_tokenize (which
 * now holds the plain-content chat tokenization): the same call, with the
 * reason for a failure copied into err. */
#ifndef SLM_CHAT_TOKENS_H
#define SLM_CHAT_TOKENS_H

#include <stdio.h>

#include "slm.h"

static inline slm_status chat_tokenize(const slm_model *m, const slm_chat_message *msgs, size_t n,
                                       bool add_generation_prompt, slm_token **out, size_t *n_out, char *err,
                                       size_t errcap) {
    slm_status st = slm_chat_tokenize(m, msgs, n, add_generation_prompt, out, NULL, n_out);
    if (st && errcap) snprintf(err, errcap, "%s", slm_last_error());
    return st;
}

#endif
