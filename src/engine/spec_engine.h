/* The session steps that self-drafting speculative decoding (src/spec) is
 * built from: the layers of one token without the output head, and the head
 * over several saved hidden states, row-exact. Internal: slm.h offers
 * slm_spec_* on top of them. */
#ifndef SLM_SPEC_ENGINE_H
#define SLM_SPEC_ENGINE_H

#include "model/transformer.h"
#include "slm.h"

/* Evaluates tok at the next position through the layers only, exactly as
 * slm_session_eval(s, &tok, 1, ...) does, and copies the normed hidden state
 * (n_embd floats) to hidden. */
slm_status session_eval_hidden(slm_session *s, slm_token tok, float *hidden);
/* The output head over n hidden states (n_embd floats each, one after the
 * other): afterwards slm_session_logits_all(s) holds n rows, each
 * bit-identical to the logits a one-token evaluation gives. */
slm_status session_head_exact(slm_session *s, const float *hidden, int n);

#endif
