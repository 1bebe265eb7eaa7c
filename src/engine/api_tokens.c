/* The public token functions: thin wrappers over the model's tokenizer. */
#include <string.h>

#include "base/status.h"
#include "model/model.h"

int slm_vocab_size(const slm_model *m) { return m->cfg.n_vocab; }
slm_token slm_token_bos(const slm_model *m) { return tok_bos(m->tok); }
slm_token slm_token_eos(const slm_model *m) { return tok_eos(m->tok); }
bool slm_token_is_eog(const slm_model *m, slm_token t) { return tok_is_eog(m->tok, t); }

slm_token slm_token_lookup(const slm_model *m, const char *piece) {
    return tok_lookup(m->tok, piece, strlen(piece));
}

slm_status slm_tokenize(const slm_model *m, const char *text, size_t len, bool add_bos, bool parse_special,
                        slm_token **out, size_t *n_out) {
    return tok_encode(m->tok, text, len, add_bos, parse_special, out, n_out);
}

size_t slm_token_to_bytes(const slm_model *m, slm_token tok, bool special, char *buf, size_t cap) {
    return tok_piece_bytes(m->tok, tok, special, buf, cap);
}
