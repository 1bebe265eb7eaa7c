/* libFuzzer target: arbitrary bytes as a GBNF grammar (slm_grammar_new
 * without a model), then the same bytes' tail as text for the matcher.
 *
 * Checked on every input:
 *   - no crash, hang, leak or out-of-bounds access (ASan/UBSan);
 *   - a refused grammar has an error message and no object;
 *   - a loaded grammar: feeding text never fails other than with a clear
 *     refusal, and a refused byte leaves the state as it was (the same
 *     bytes can be offered again). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "slm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* the first NUL (if any) splits the grammar from the text to match */
    const uint8_t *nul = memchr(data, 0, size);
    size_t glen = nul ? (size_t)(nul - data) : size;
    slm_grammar *g = (slm_grammar *)1;
    slm_status st = slm_grammar_new(NULL, (const char *)data, glen, &g);
    if (st) {
        if (g || !slm_last_error()[0]) abort();
        return 0;
    }
    if (!nul) { slm_grammar_free(g); return 0; }
    const char *text = (const char *)nul + 1;
    size_t tlen = size - glen - 1;
    for (size_t i = 0; i < tlen; i++) {
        bool before = slm_grammar_can_end(g);
        st = slm_grammar_accept_bytes(g, text + i, 1);
        if (st == SLM_ERR_INVALID_ARG) {
            if (slm_grammar_can_end(g) != before) abort();   /* a refusal changes nothing */
            continue;
        }
        if (st != SLM_OK && st != SLM_ERR_NOMEM) abort();
    }
    slm_grammar_reset(g);
    slm_grammar_free(g);
    return 0;
}
