/* slm_chat_format: a conversation rendered in the model's chat format.
 * Built-in formats cover families whose files often carry no template. */
#include <stdlib.h>
#include <string.h>

#include "base/status.h"
#include "model/model.h"

typedef struct { char *p; size_t n, cap; } sbuf;

static bool sb_add(sbuf *b, const char *s) {
    size_t l = strlen(s);
    if (b->n + l + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (b->n + l + 1 > cap) cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np) return false;
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, l + 1);
    b->n += l;
    return true;
}

/* Gemma's turns, as its published template writes them: "<bos>" first, a
 * system message folded into the first user turn, "assistant" named "model". */
static slm_status gemma_format(const slm_chat_message *msgs, size_t n, bool gen, char **out) {
    sbuf b = { 0 };
    bool ok = sb_add(&b, "<bos>");
    const char *system = NULL;
    size_t i = 0;
    if (n > 0 && msgs[0].role && !strcmp(msgs[0].role, "system")) { system = msgs[0].content; i = 1; }
    for (bool first = true; ok && i < n; i++, first = false) {
        const char *role = msgs[i].role ? msgs[i].role : "";
        if (!strcmp(role, "assistant")) role = "model";
        else if (strcmp(role, "user") && strcmp(role, "model")) {
            free(b.p);
            return slm_fail(SLM_ERR_INVALID_ARG, "message %zu: role '%s' is not user or assistant here", i, role);
        }
        ok = sb_add(&b, "<start_of_turn>") && sb_add(&b, role) && sb_add(&b, "\n");
        if (ok && first && system) ok = sb_add(&b, system) && sb_add(&b, "\n\n");
        ok = ok && sb_add(&b, msgs[i].content ? msgs[i].content : "") && sb_add(&b, "<end_of_turn>\n");
    }
    if (ok && gen) ok = sb_add(&b, "<start_of_turn>model\n");
    if (!ok) { free(b.p); return slm_fail(SLM_ERR_NOMEM, "out of memory rendering the chat"); }
    *out = b.p;
    return SLM_OK;
}

slm_status slm_chat_format(const slm_model *m, const slm_chat_message *msgs, size_t n, bool gen, char **out) {
    *out = NULL;
    if (!strcmp(m->arch->name, "gemma3") || tok_lookup(m->tok, "<start_of_turn>", 15) >= 0)
        return gemma_format(msgs, n, gen, out);
    return slm_fail(SLM_ERR_UNSUPPORTED, "model '%s' has no chat template and no built-in chat format", m->arch->name);
}
