/* libFuzzer target for the chat-template interpreter: arbitrary bytes as a
 * template (and, after a NUL byte, as the variables' JSON), rendered with a
 * fixed conversation when no JSON is given. Checked on every input: no crash,
 * no leak, a known status; on success a NUL-terminated output of the stated
 * length, on failure no output and a message. Limits bound every render.
 * Seeds: tests/fuzz/corpus/jinja/ (real chat templates and small ones). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "template/jinja.h"

#define REQUIRE(c) do { if (!(c)) __builtin_trap(); } while (0)

static const char *CONTEXT =
    "{\"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"},"
    " {\"role\": \"user\", \"content\": \" Hi \\u00e9 \"},"
    " {\"role\": \"assistant\", \"content\": \"\", \"tool_calls\": [{\"id\": \"abcdefghi\", \"type\": \"function\","
    " \"function\": {\"name\": \"f\", \"arguments\": {\"x\": 1.5, \"y\": [true, null]}}}]},"
    " {\"role\": \"tool\", \"tool_call_id\": \"abcdefghi\", \"content\": \"42\"},"
    " {\"role\": \"user\", \"content\": \"again\"}],"
    " \"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"f\", \"parameters\": {\"type\": \"object\"}}}],"
    " \"add_generation_prompt\": true, \"bos_token\": \"<s>\", \"eos_token\": \"</s>\"}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *tmpl = (const char *)data;
    size_t tlen = size;
    char *ctx = NULL;
    const uint8_t *nul = memchr(data, 0, size);
    if (nul) {
        tlen = (size_t)(nul - data);
        size_t cl = size - tlen - 1;
        ctx = malloc(cl + 1);
        if (!ctx) return 0;
        memcpy(ctx, nul + 1, cl);
        ctx[cl] = '\0';   /* a NUL inside stops the JSON early: that is fine */
    }
    struct tm now = { .tm_year = 124, .tm_mon = 6, .tm_mday = 26, .tm_wday = 5, .tm_yday = 207 };
    jinja_options opt = { &now };
    char *out = (char *)1;
    size_t n = 12345;
    slm_status st = jinja_render(tmpl, tlen, ctx ? ctx : CONTEXT, &opt, &out, &n);
    REQUIRE(st == SLM_OK || st == SLM_ERR_FORMAT || st == SLM_ERR_UNSUPPORTED || st == SLM_ERR_INVALID_ARG ||
            st == SLM_ERR_NOMEM);
    if (st == SLM_OK) {
        REQUIRE(out != NULL && out[n] == '\0');
    } else {
        REQUIRE(out == NULL && n == 0);
        REQUIRE(slm_last_error()[0] != '\0');
    }
    free(out);
    free(ctx);
    return 0;
}
