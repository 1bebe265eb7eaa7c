/* Pre-tokenizer of byte-level BPE vocabularies: cuts text into the pieces
 * ("words") that BPE merges never cross, with the regular expressions the
 * vocabulary's merges were learned with, chosen by tokenizer.ggml.pre.
 *
 * A pre-tokenizer is a sequence of stages; each stage splits every piece the
 * previous one left with one expression: every match is a piece, and so is
 * every stretch between matches (the "isolated" split of HF tokenizers and
 * llama.cpp). An expression only sees its piece, so a look-ahead at a piece's
 * end sees the end of the text. Unicode classes (\p{L}, \p{N}, \s) come from
 * PCRE2 in UTF + UCP mode. Only built with SLM_HAVE_PCRE2. */
#ifndef SLM_TOKENIZER_PRETOK_H
#define SLM_TOKENIZER_PRETOK_H

#include <stdbool.h>
#include <stddef.h>

#include "slm.h"

typedef struct tok_pretok tok_pretok;

/* What a pre-tokenizer name implies besides the split (llama.cpp's rules). */
typedef struct {
    bool ignore_merges;  /* a word that is a whole token is taken as is */
    bool add_bos;        /* default of tokenizer.ggml.add_bos_token */
} pretok_traits;

/* name[0..len) is tokenizer.ggml.pre; NULL for a file without the key
 * (treated as "default", which is GPT-2's split). An unknown name is
 * SLM_ERR_UNSUPPORTED, naming it and the names that are known. */
slm_status pretok_new(const char *name, size_t len, tok_pretok **out, pretok_traits *traits);
void pretok_free(tok_pretok *p);

/* Called for each piece, in order; a non-OK status stops the split. */
typedef slm_status (*pretok_piece_fn)(void *ctx, const char *s, size_t n);

/* Splits valid UTF-8 s[0..n). Thread-safe (the compiled expressions are
 * shared, match state is per call). */
slm_status pretok_split(const tok_pretok *p, const char *s, size_t n, pretok_piece_fn fn, void *ctx);

/* The known names, comma-separated (for messages and docs). */
const char *pretok_known_names(void);

#endif
