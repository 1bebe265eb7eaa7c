/* SentencePiece-style tokenizer built from a GGUF vocabulary (and, later,
 * byte-level BPE). Internal: the public surface is slm_tokenize & co. */
#ifndef SLM_TOKENIZER_H
#define SLM_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gguf/gguf.h"
#include "slm.h"

typedef struct slm_tokenizer slm_tokenizer;

slm_status tok_load(const gguf_file *f, slm_tokenizer **out);
void tok_free(slm_tokenizer *t);

int tok_n_vocab(const slm_tokenizer *t);
int32_t tok_bos(const slm_tokenizer *t);
int32_t tok_eos(const slm_tokenizer *t);
int32_t tok_lookup(const slm_tokenizer *t, const char *piece, size_t len);
/* End-of-generation: eos, eot, <end_of_turn>. */
bool tok_is_eog(const slm_tokenizer *t, int32_t id);
bool tok_add_bos(const slm_tokenizer *t);

/* Encodes text (validated UTF-8). *out is malloc'd. */
slm_status tok_encode(const slm_tokenizer *t, const char *text, size_t len,
                      bool add_bos, bool parse_special, int32_t **out, size_t *n_out);

/* Bytes of one token; see slm_token_to_bytes. */
size_t tok_piece_bytes(const slm_tokenizer *t, int32_t id, bool special, char *buf, size_t cap);

#endif
