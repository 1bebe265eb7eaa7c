/* libFuzzer target: arbitrary bytes as a JSON Schema (slm_json_schema_to_gbnf).
 *
 * Checked on every input:
 *   - no crash, hang, leak or out-of-bounds access (ASan/UBSan);
 *   - a refused schema has an error message and no output;
 *   - an accepted schema's grammar always loads (the converter never writes
 *     GBNF that its own parser refuses), and its start state is not dead. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *gbnf = (char *)1;
    slm_status st = slm_json_schema_to_gbnf((const char *)data, size, &gbnf);
    if (st) {
        if (gbnf || !slm_last_error()[0]) abort();
        return 0;
    }
    slm_grammar *g = NULL;
    if (slm_grammar_new(NULL, gbnf, strlen(gbnf), &g)) {
        fprintf(stderr, "converter output does not load: %s\n%s\n", slm_last_error(), gbnf);
        abort();
    }
    slm_grammar_free(g);
    free(gbnf);
    return 0;
}
