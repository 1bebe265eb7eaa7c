/* The prompt of a conversation as tokens, with message contents kept as
 * plain text (chat_tokens.c). Used by slm chat and slm serve. */
#ifndef SLM_CHAT_TOKENS_H
#define SLM_CHAT_TOKENS_H

#include "slm.h"

/* Renders msgs with slm_chat_format and tokenizes the result so that only the
 * template's own markup becomes control tokens (the text carries its BOS
 * where the format does). On failure writes the reason into err. *out is
 * malloc'd. */
slm_status chat_tokenize(const slm_model *m, const slm_chat_message *msgs, size_t n, bool add_generation_prompt,
                         slm_token **out, size_t *n_out, char *err, size_t errcap);

#endif
