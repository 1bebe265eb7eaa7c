/* slm_chat_format: a conversation rendered in the model's chat format: the
 * file's tokenizer.chat_template through the Jinja interpreter, else a
 * built-in template for families whose files often carry none. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/status.h"
#include "model/model.h"
#include "template/jinja.h"

/* Gemma 3's own chat template (google/gemma-3-*-it tokenizer_config.json),
 * the same text as tests/fixtures/templates/gemma3.jinja: used for Gemma
 * files without a template. */
const char slm_gemma3_template[] =
    "{{ bos_token }}\n"
    "{%- if messages[0]['role'] == 'system' -%}\n"
    "    {%- if messages[0]['content'] is string -%}\n"
    "        {%- set first_user_prefix = messages[0]['content'] + '\n"
    "\n"
    "' -%}\n"
    "    {%- else -%}\n"
    "        {%- set first_user_prefix = messages[0]['content'][0]['text'] + '\n"
    "\n"
    "' -%}\n"
    "    {%- endif -%}\n"
    "    {%- set loop_messages = messages[1:] -%}\n"
    "{%- else -%}\n"
    "    {%- set first_user_prefix = \"\" -%}\n"
    "    {%- set loop_messages = messages -%}\n"
    "{%- endif -%}\n"
    "{%- for message in loop_messages -%}\n"
    "    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}\n"
    "        {{ raise_exception(\"Conversation roles must alternate user/assistant/user/assistant/...\") }}\n"
    "    {%- endif -%}\n"
    "    {%- if (message['role'] == 'assistant') -%}\n"
    "        {%- set role = \"model\" -%}\n"
    "    {%- else -%}\n"
    "        {%- set role = message['role'] -%}\n"
    "    {%- endif -%}\n"
    "    {{ '<start_of_turn>' + role + '\n"
    "' + (first_user_prefix if loop.first else \"\") }}\n"
    "    {%- if message['content'] is string -%}\n"
    "        {{ message['content'] | trim }}\n"
    "    {%- elif message['content'] is iterable -%}\n"
    "        {%- for item in message['content'] -%}\n"
    "            {%- if item['type'] == 'image' -%}\n"
    "                {{ '<start_of_image>' }}\n"
    "            {%- elif item['type'] == 'text' -%}\n"
    "                {{ item['text'] | trim }}\n"
    "            {%- endif -%}\n"
    "        {%- endfor -%}\n"
    "    {%- else -%}\n"
    "        {{ raise_exception(\"Invalid content type\") }}\n"
    "    {%- endif -%}\n"
    "    {{ '<end_of_turn>\n"
    "' }}\n"
    "{%- endfor -%}\n"
    "{%- if add_generation_prompt -%}\n"
    "    {{'<start_of_turn>model\n"
    "'}}\n"
    "{%- endif -%}\n";

typedef struct { char *p; size_t n, cap; bool oom; } sbuf;

static void sb_add(sbuf *b, const char *s, size_t l) {
    if (b->oom) return;
    if (b->n + l + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (b->n + l + 1 > cap) cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np) { b->oom = true; return; }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, l);
    b->n += l;
    b->p[b->n] = '\0';
}
static void sb_addz(sbuf *b, const char *s) { sb_add(b, s, strlen(s)); }

/* A JSON string literal of s (bytes passed through, control characters escaped). */
static void sb_json_str(sbuf *b, const char *s, size_t l) {
    sb_add(b, "\"", 1);
    for (size_t i = 0; i < l; i++) {
        unsigned char c = (unsigned char)s[i];
        char e[8];
        if (c == '"' || c == '\\') { e[0] = '\\'; e[1] = (char)c; sb_add(b, e, 2); }
        else if (c < 0x20) { snprintf(e, sizeof e, "\\u%04x", c); sb_add(b, e, 6); }
        else sb_add(b, (const char *)&c, 1);
    }
    sb_add(b, "\"", 1);
}

static void sb_token_text(sbuf *b, const slm_model *m, int32_t id) {
    char piece[256];
    size_t l = id >= 0 ? tok_piece_bytes(m->tok, id, true, piece, sizeof piece) : 0;
    sb_json_str(b, piece, l < sizeof piece ? l : sizeof piece);
}

/* The members of a JSON object text, without its braces (for splicing). */
static void sb_members(sbuf *b, const char *obj) {
    const char *s = strchr(obj, '{'), *e = strrchr(obj, '}');
    if (!s || !e || e <= s) return;
    s++;
    while (s < e && (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')) s++;
    if (s == e) return;
    sb_addz(b, ", ");
    sb_add(b, s, (size_t)(e - s));
}

/* The variables transformers passes to a chat template. */
static char *context_json(const slm_model *m, const slm_chat_message *msgs, const char *const *msg_json, size_t n,
                          const char *tools_json, bool gen) {
    sbuf b = { 0 };
    sb_addz(&b, "{\"messages\": [");
    for (size_t i = 0; i < n; i++) {
        sb_addz(&b, i ? ", {\"role\": " : "{\"role\": ");
        const char *role = msgs[i].role ? msgs[i].role : "", *content = msgs[i].content ? msgs[i].content : "";
        sb_json_str(&b, role, strlen(role));
        sb_addz(&b, ", \"content\": ");
        sb_json_str(&b, content, strlen(content));
        if (msg_json && msg_json[i]) sb_members(&b, msg_json[i]);
        sb_addz(&b, "}");
    }
    sb_addz(&b, "], \"tools\": ");
    sb_addz(&b, tools_json ? tools_json : "null");
    sb_addz(&b, ", \"documents\": null, \"add_generation_prompt\": ");
    sb_addz(&b, gen ? "true" : "false");
    sb_addz(&b, ", \"bos_token\": ");
    sb_token_text(&b, m, tok_bos(m->tok));
    sb_addz(&b, ", \"eos_token\": ");
    sb_token_text(&b, m, tok_eos(m->tok));
    sb_addz(&b, "}");
    if (b.oom) { free(b.p); return NULL; }
    return b.p;
}

slm_status slm_chat_format(const slm_model *m, const slm_chat_message *msgs, size_t n, bool gen, char **out) {
    return slm_chat_format_tools(m, msgs, NULL, n, NULL, gen, out);
}

slm_status slm_chat_format_tools(const slm_model *m, const slm_chat_message *msgs, const char *const *msg_json,
                                 size_t n, const char *tools_json, bool gen, char **out) {
    *out = NULL;
    gguf_str tmpl;
    const char *src;
    size_t len;
    if (gguf_get_str(m->gguf, "tokenizer.chat_template", &tmpl) && tmpl.len > 0) {
        src = tmpl.ptr;
        len = (size_t)tmpl.len;
    } else if (!strcmp(m->arch->name, "gemma3") || tok_lookup(m->tok, "<start_of_turn>", 15) >= 0) {
        src = slm_gemma3_template;
        len = sizeof slm_gemma3_template - 1;
    } else {
        return slm_fail(SLM_ERR_UNSUPPORTED, "model '%s' has no chat template and no built-in chat format", m->arch->name);
    }
    char *ctx = context_json(m, msgs, msg_json, n, tools_json, gen);
    if (!ctx) return slm_fail(SLM_ERR_NOMEM, "out of memory rendering the chat");
    slm_status st = jinja_render(src, len, ctx, NULL, out, NULL);
    free(ctx);
    return st;
}
