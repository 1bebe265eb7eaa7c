/* libFuzzer target: arbitrary bytes as the body of a chat and of a
 * completion request, through serve_request_parse (slm serve's parser; cJSON
 * underneath). Checked on every input: no crash or leak; failure gives a
 * message and leaves the struct empty; success gives only values inside the
 * documented ranges (messages with known roles and content, 1..4 non-empty
 * stop sequences of at most 256 bytes, max_tokens within the limit, finite
 * sampling parameters in their ranges), and every error message is valid
 * UTF-8 without control bytes (messages quote client text through
 * serve_quote, which is also fed the raw input). Tools: 1..128 with valid
 * names, a named tool_choice inside the list, and the composed tool-call
 * grammar always compiles; the raw input is also read as generated text by
 * the tool-call reader (serve_tools.c), streaming and final. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve_request.h"
#include "serve_tools.h"
#include "slm.h"

#define FAIL(...) do { fprintf(stderr, "fuzz_serve_request: " __VA_ARGS__); fputc('\n', stderr); abort(); } while (0)

/* valid UTF-8 (shortest forms, no surrogates) without control bytes */
static int clean_utf8(const char *s) {
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned c = *p, len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
        if (!len || (len == 1 && (c < 0x20 || c == 0x7F))) return 0;
        unsigned cp = len == 1 ? c : c & (0x7Fu >> len);
        for (unsigned k = 1; k < len; k++) {
            if ((p[k] & 0xC0) != 0x80) return 0;
            cp = cp << 6 | (p[k] & 0x3Fu);
        }
        if ((len == 2 && cp < 0x80) || (len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
            (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
            return 0;
        p += len;
    }
    return 1;
}

static void check_quote(const uint8_t *data, size_t size) {
    char *s = malloc(size + 1), q[64];
    if (!s) return;
    memcpy(s, data, size);
    s[size] = '\0';
    size_t n = serve_quote(q, sizeof q, s, 40);
    if (n != strlen(q) || n > 43 || !clean_utf8(q)) FAIL("serve_quote gave %zu bytes of unclean text", n);
    free(s);
}

static void check(const uint8_t *data, size_t size, serve_kind kind) {
    serve_request r;
    char err[256];
    const char *param = (const char *)1;
    serve_request_limits lim = { 512 };
    int rc = serve_request_parse((const char *)data, size, kind, &lim, &r, err, sizeof err, &param);
    if (rc != 0) {
        if (rc != -1 || !err[0]) FAIL("failure without a message");
        if (r.messages || r.prompt || r.n_stop || r.n_messages) FAIL("failure left fields behind");
        if (param == (const char *)1) FAIL("param not set");
        /* the role error quotes the client's role through serve_quote (other
         * messages, e.g. a schema's unknown type, may quote client text that
         * itself contains these words: match the message's own start) */
        if (!strncmp(err, "unsupported role '", 18) && !clean_utf8(err)) FAIL("a message quoting client text is not clean UTF-8");
        return;
    }
    if (kind == SERVE_CHAT) {
        if (r.n_messages < 1 || r.n_messages > SERVE_MAX_MESSAGES || !r.messages) FAIL("bad message count");
        for (int i = 0; i < r.n_messages; i++) {
            const char *role = r.messages[i].role;
            if (!role || !r.messages[i].content) FAIL("message without role or content");
            if (strcmp(role, "system") && strcmp(role, "user") && strcmp(role, "assistant") && strcmp(role, "tool"))
                FAIL("role %s", role);
        }
        const serve_tools *t = r.tools;
        if (t) {
            if (t->n < 1 || t->n > SERVE_MAX_TOOLS || !t->json) FAIL("tools: %d", t->n);
            for (int i = 0; i < t->n; i++)
                if (!t->v[i].name || !t->v[i].name[0] || strlen(t->v[i].name) > 64 || !t->v[i].gbnf) FAIL("tool %d", i);
            if (t->choice == TOOL_CHOICE_NAMED && (t->named < 0 || t->named >= t->n)) FAIL("named tool %d", t->named);
            char *g = serve_tools_grammar(t);
            slm_grammar *gr = NULL;
            if (g && slm_grammar_new(NULL, g, strlen(g), &gr)) FAIL("tool grammar does not compile: %s\n%s", slm_last_error(), g);
            slm_grammar_free(gr);
            free(g);
        }
    } else if (!r.prompt) {
        FAIL("completion without prompt");
    }
    if (r.max_tokens < 0 || r.max_tokens > 512) FAIL("max_tokens %d", r.max_tokens);
    if (!(r.temperature >= 0 && r.temperature <= 2) || !(r.top_p > 0 && r.top_p <= 1) || !(r.min_p >= 0 && r.min_p <= 1) ||
        !(fabsf(r.presence_penalty) <= 2) || !(fabsf(r.frequency_penalty) <= 2) || r.top_k < 0)
        FAIL("sampling value out of range");
    if (r.n_stop < 0 || r.n_stop > SERVE_MAX_STOP) FAIL("n_stop %d", r.n_stop);
    for (int i = 0; i < r.n_stop; i++) {
        size_t n = strlen(r.stop[i]);
        if (n == 0 || n > SERVE_MAX_STOP_LEN) FAIL("stop length %zu", n);
    }
    serve_request_free(&r);
    if (r.messages || r.prompt || r.n_stop) FAIL("free did not clear");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    check(data, size, SERVE_CHAT);
    check(data, size, SERVE_COMPLETION);
    check_quote(data, size);
    for (int final = 0; final < 2; final++) {
        tools_parsed p;
        serve_tools_read((const char *)data, size, final, &p);
        if (p.content_len > size || p.n_calls < 0 || p.n_calls > SERVE_MAX_CALLS) FAIL("tool reader: bad counts");
        for (int i = 0; i < p.n_calls; i++)
            if (!p.calls[i].name || !p.calls[i].args) FAIL("tool reader: call %d without name or arguments", i);
        tools_parsed_free(&p);
    }
    size_t at = serve_tools_trigger((const char *)data, size, 0);
    if (at != (size_t)-1 && at >= size) FAIL("tool trigger %zu past the end", at);
    return 0;
}
