/* slm serve: OpenAI tool calling (see serve_tools.h for the call format).
 *
 * How each tool_choice is generated (serve_api.c, serve_sched.c):
 *   required  the whole answer is held to the grammar of one or more calls
 *             of the given tools, each call's arguments to its function's
 *             parameter schema (the JSON Schema converter's rules, renamed
 *             per function, under a wrapper naming the function);
 *   named     the same with only that function, and exactly one call;
 *   auto      free text at first; the grammar is armed lazily: once the
 *             text so far holds the opening tag, the grammar is given the
 *             bytes from the tag on and holds the rest of the answer to
 *             calls. A grammar of the form "text not starting with the tag
 *             | calls" would also do, but it would keep the matcher busy on
 *             every token of a plain answer and could not let a model write
 *             a sentence before its call; the lazy form costs nothing until
 *             the model opens a call;
 *   none      no tools in the prompt, no grammar, no parsing.
 *
 * Prompt: a template that renders `tools` (it renders differently with a
 * probe tool than without) gets the tools and the history's tool_calls and
 * tool messages as OpenAI sends them (arguments as objects). Other
 * templates get a system prompt describing the tools and the call format,
 * past calls written into the assistant turns in that format, and tool
 * results as user turns in <tool_response> blocks. */
#include "serve_tools.h"

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve_request.h"

/* ---- request ----------------------------------------------------------------- */

static int tfail(char *err, size_t errcap, const char **param, const char *p, const char *fmt, const char *a,
                 const char *b) {
    snprintf(err, errcap, fmt, a ? a : "", b ? b : "");
    if (param) *param = p;
    return -1;
}

static bool good_name(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n > 64) return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return false;
    }
    return true;
}

void serve_tools_free(serve_tools *t) {
    if (!t) return;
    for (int i = 0; i < t->n; i++) {
        free(t->v[i].name);
        free(t->v[i].gbnf);
    }
    free(t->v);
    free(t->json);
    free(t);
}

static int parse_tool(const cJSON *it, int i, serve_tools *t, cJSON *norm, char *err, size_t errcap,
                      const char **param) {
    char where[32];
    snprintf(where, sizeof where, "tools[%d]", i);
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(it, "type");
    const cJSON *fn = cJSON_GetObjectItemCaseSensitive(it, "function");
    if (!cJSON_IsObject(it) || !cJSON_IsString(type) || strcmp(type->valuestring, "function") || !cJSON_IsObject(fn))
        return tfail(err, errcap, param, "tools", "%s must be {\"type\": \"function\", \"function\": {...}}", where, NULL);
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(fn, "name");
    if (!cJSON_IsString(name))
        return tfail(err, errcap, param, "tools", "%s.function needs a 'name' string", where, NULL);
    if (!good_name(name->valuestring))
        return tfail(err, errcap, param, "tools", "%s.function.name must be 1 to 64 of a-z, A-Z, 0-9, _ and -", where, NULL);
    for (int k = 0; k < t->n; k++)
        if (!strcmp(t->v[k].name, name->valuestring))
            return tfail(err, errcap, param, "tools", "two tools are named '%s'", name->valuestring, NULL);
    const cJSON *desc = cJSON_GetObjectItemCaseSensitive(fn, "description");
    if (desc && !cJSON_IsNull(desc) && !cJSON_IsString(desc))
        return tfail(err, errcap, param, "tools", "%s.function.description must be a string", where, NULL);
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(fn, "parameters");
    if (params && !cJSON_IsNull(params) && !cJSON_IsObject(params))
        return tfail(err, errcap, param, "tools", "%s.function.parameters must be a JSON Schema object", where, NULL);
    const cJSON *strict = cJSON_GetObjectItemCaseSensitive(fn, "strict");
    if (strict && !cJSON_IsNull(strict) && !cJSON_IsBool(strict))
        return tfail(err, errcap, param, "tools", "%s.function.strict must be true or false", where, NULL);
    /* no parameters: the function takes any object (OpenAI: an empty list) */
    char *schema = params && !cJSON_IsNull(params) ? cJSON_PrintUnformatted(params) : strdup("{\"type\":\"object\"}");
    serve_tool *tool = &t->v[t->n];
    tool->name = strdup(name->valuestring);
    if (!schema || !tool->name) {
        free(schema);
        return tfail(err, errcap, param, NULL, "out of memory", NULL, NULL);
    }
    t->n++;  /* counted now: free releases what was taken */
    slm_status st = slm_json_schema_to_gbnf(schema, strlen(schema), &tool->gbnf);
    free(schema);
    if (st) {
        char msg[200];
        snprintf(msg, sizeof msg, "%s", slm_last_error());
        return tfail(err, errcap, param, "tools", "%s.function.parameters: %s", where, msg);
    }
    /* what the template sees: the tool without fields it does not know */
    cJSON *o = cJSON_CreateObject(), *f = cJSON_CreateObject();
    cJSON_AddItemToArray(norm, o);
    cJSON_AddStringToObject(o, "type", "function");
    cJSON_AddItemToObject(o, "function", f);
    cJSON_AddStringToObject(f, "name", name->valuestring);
    if (cJSON_IsString(desc)) cJSON_AddStringToObject(f, "description", desc->valuestring);
    cJSON_AddItemToObject(f, "parameters", params && !cJSON_IsNull(params) ? cJSON_Duplicate(params, true)
                                                                          : cJSON_Parse("{\"type\":\"object\"}"));
    return 0;
}

int serve_tools_parse(const void *rootv, serve_tools **out, char *err, size_t errcap, const char **param) {
    const cJSON *root = rootv;
    *out = NULL;
    const cJSON *tools = cJSON_GetObjectItemCaseSensitive(root, "tools");
    const cJSON *choice = cJSON_GetObjectItemCaseSensitive(root, "tool_choice");
    const cJSON *par = cJSON_GetObjectItemCaseSensitive(root, "parallel_tool_calls");
    if (par && !cJSON_IsNull(par) && !cJSON_IsBool(par))
        return tfail(err, errcap, param, "parallel_tool_calls", "'parallel_tool_calls' must be true or false", NULL, NULL);
    if (choice && cJSON_IsNull(choice)) choice = NULL;
    if (!tools || cJSON_IsNull(tools)) {
        /* "none" and "auto" mean the same as no tool_choice when there are no tools */
        if (choice && !(cJSON_IsString(choice) && (!strcmp(choice->valuestring, "none") ||
                                                   !strcmp(choice->valuestring, "auto"))))
            return tfail(err, errcap, param, "tool_choice", "'tool_choice' needs 'tools'", NULL, NULL);
        return 0;
    }
    if (!cJSON_IsArray(tools)) return tfail(err, errcap, param, "tools", "'tools' must be an array of tools", NULL, NULL);
    int n = cJSON_GetArraySize(tools);
    if (n == 0) return tfail(err, errcap, param, "tools", "'tools' must not be empty", NULL, NULL);
    if (n > SERVE_MAX_TOOLS) {
        char lim[16];
        snprintf(lim, sizeof lim, "%d", SERVE_MAX_TOOLS);
        return tfail(err, errcap, param, "tools", "at most %s tools", lim, NULL);
    }
    serve_tools *t = calloc(1, sizeof *t);
    cJSON *norm = cJSON_CreateArray();
    if (!t || !norm || !(t->v = calloc((size_t)n, sizeof *t->v))) {
        serve_tools_free(t);
        cJSON_Delete(norm);
        return tfail(err, errcap, param, NULL, "out of memory", NULL, NULL);
    }
    t->parallel = !cJSON_IsFalse(par);
    int i = 0, rc = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, tools) {
        if ((rc = parse_tool(it, i++, t, norm, err, errcap, param))) break;
    }
    if (!rc && choice) {
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(choice, "function");
        const cJSON *nm = cJSON_GetObjectItemCaseSensitive(fn, "name");
        const cJSON *ty = cJSON_GetObjectItemCaseSensitive(choice, "type");
        if (cJSON_IsString(choice) && !strcmp(choice->valuestring, "auto")) t->choice = TOOL_CHOICE_AUTO;
        else if (cJSON_IsString(choice) && !strcmp(choice->valuestring, "none")) t->choice = TOOL_CHOICE_NONE;
        else if (cJSON_IsString(choice) && !strcmp(choice->valuestring, "required")) t->choice = TOOL_CHOICE_REQUIRED;
        else if (cJSON_IsObject(choice) && cJSON_IsString(ty) && !strcmp(ty->valuestring, "function") &&
                 cJSON_IsString(nm)) {
            t->choice = TOOL_CHOICE_NAMED;
            t->named = -1;
            for (int k = 0; k < t->n; k++)
                if (!strcmp(t->v[k].name, nm->valuestring)) t->named = k;
            if (t->named < 0) {
                char q[80];
                serve_quote(q, sizeof q, nm->valuestring, 64);
                rc = tfail(err, errcap, param, "tool_choice", "tool_choice names '%s', which is not one of the tools", q, NULL);
            }
        } else {
            rc = tfail(err, errcap, param, "tool_choice", "'tool_choice' must be \"auto\", \"none\", \"required\" or "
                       "{\"type\": \"function\", \"function\": {\"name\": ...}}", NULL, NULL);
        }
    }
    if (!rc && !(t->json = cJSON_PrintUnformatted(norm))) rc = tfail(err, errcap, param, NULL, "out of memory", NULL, NULL);
    cJSON_Delete(norm);
    if (!rc) {  /* the grammar the calls will be held to must compile: refuse the request now, not mid-generation */
        char *g = serve_tools_grammar(t);
        slm_grammar *gr = NULL;
        if (!g) rc = tfail(err, errcap, param, NULL, "out of memory", NULL, NULL);
        else if (slm_grammar_new(NULL, g, strlen(g), &gr))
            rc = tfail(err, errcap, param, "tools", "the tools' parameter schemas do not combine into a grammar: %s",
                       slm_last_error(), NULL);
        slm_grammar_free(gr);
        free(g);
    }
    if (rc) { serve_tools_free(t); return -1; }
    *out = t;
    return 0;
}

int serve_tools_message(const void *msgv, const char *role, char **out, bool *content_optional, char *err,
                        size_t errcap) {
    const cJSON *m = msgv;
    *out = NULL;
    *content_optional = false;
    cJSON *o = NULL;
    if (!strcmp(role, "assistant")) {
        const cJSON *calls = cJSON_GetObjectItemCaseSensitive(m, "tool_calls");
        if (!calls || cJSON_IsNull(calls)) return 0;
        if (!cJSON_IsArray(calls)) return tfail(err, errcap, NULL, NULL, "an assistant message's 'tool_calls' must be an array", NULL, NULL);
        *content_optional = true;
        o = cJSON_CreateObject();
        cJSON *arr = cJSON_AddArrayToObject(o, "tool_calls");
        const cJSON *c;
        cJSON_ArrayForEach(c, calls) {
            const cJSON *id = cJSON_GetObjectItemCaseSensitive(c, "id");
            const cJSON *fn = cJSON_GetObjectItemCaseSensitive(c, "function");
            const cJSON *nm = cJSON_GetObjectItemCaseSensitive(fn, "name");
            const cJSON *args = cJSON_GetObjectItemCaseSensitive(fn, "arguments");
            if (!cJSON_IsObject(c) || !cJSON_IsString(nm) || (id && !cJSON_IsNull(id) && !cJSON_IsString(id)) ||
                (args && !cJSON_IsNull(args) && !cJSON_IsString(args) && !cJSON_IsObject(args))) {
                cJSON_Delete(o);
                return tfail(err, errcap, NULL, NULL, "each tool call in 'tool_calls' needs {\"id\": ..., \"type\": "
                             "\"function\", \"function\": {\"name\": ..., \"arguments\": \"<JSON>\"}}", NULL, NULL);
            }
            cJSON *x = cJSON_CreateObject(), *f = cJSON_CreateObject();
            cJSON_AddItemToArray(arr, x);
            if (cJSON_IsString(id)) cJSON_AddStringToObject(x, "id", id->valuestring);
            cJSON_AddStringToObject(x, "type", "function");
            cJSON_AddItemToObject(x, "function", f);
            cJSON_AddStringToObject(f, "name", nm->valuestring);
            /* templates print the arguments with tojson: give them the object */
            cJSON *a = NULL;
            if (cJSON_IsString(args)) {
                a = cJSON_Parse(args->valuestring);
                if (a && !cJSON_IsObject(a)) { cJSON_Delete(a); a = NULL; }
                if (!a) a = cJSON_CreateString(args->valuestring);
            } else {
                a = cJSON_IsObject(args) ? cJSON_Duplicate(args, true) : cJSON_CreateObject();
            }
            cJSON_AddItemToObject(f, "arguments", a);
        }
    } else if (!strcmp(role, "tool")) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(m, "tool_call_id");
        const cJSON *nm = cJSON_GetObjectItemCaseSensitive(m, "name");
        if (id && !cJSON_IsNull(id) && !cJSON_IsString(id))
            return tfail(err, errcap, NULL, NULL, "a tool message's 'tool_call_id' must be a string", NULL, NULL);
        if (nm && !cJSON_IsNull(nm) && !cJSON_IsString(nm))
            return tfail(err, errcap, NULL, NULL, "a tool message's 'name' must be a string", NULL, NULL);
        o = cJSON_CreateObject();
        if (cJSON_IsString(id)) cJSON_AddStringToObject(o, "tool_call_id", id->valuestring);
        if (cJSON_IsString(nm)) cJSON_AddStringToObject(o, "name", nm->valuestring);
    } else {
        return 0;
    }
    *out = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return *out ? 0 : tfail(err, errcap, NULL, NULL, "out of memory", NULL, NULL);
}

/* ---- grammar ------------------------------------------------------------------- */

typedef struct { char *p; size_t n, cap; bool oom; } tbuf;

static void tb_add(tbuf *b, const char *s, size_t l) {
    if (b->oom) return;
    if (b->n + l + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
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
static void tb_addz(tbuf *b, const char *s) { tb_add(b, s, strlen(s)); }

static bool word_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
}

/* Is [s, s+n) the name of a rule that g defines (at a line's start)? */
static bool defines(const char *g, const char *s, size_t n) {
    for (const char *l = g; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
        if (!strncmp(l, s, n) && !word_char(l[n])) {
            const char *q = l + n;
            while (*q == ' ' || *q == '\t') q++;
            if (!strncmp(q, "::=", 3)) return true;
        }
    }
    return false;
}

/* Copies g with every rule it defines renamed to prefix + name: names are
 * runs of [a-zA-Z0-9-] outside "literals", [classes], {counts} and comments. */
static void add_renamed(tbuf *b, const char *g, const char *prefix) {
    const char *s = g;
    while (*s) {
        char c = *s;
        if (c == '"' || c == '[') {
            char end = c == '"' ? '"' : ']';
            const char *q = s + 1;
            while (*q && *q != end) q += q[0] == '\\' && q[1] ? 2 : 1;
            if (*q) q++;
            tb_add(b, s, (size_t)(q - s));
            s = q;
        } else if (c == '{' || c == '#') {
            const char *q = s;
            while (*q && *q != (c == '{' ? '}' : '\n')) q++;
            if (*q && c == '{') q++;
            tb_add(b, s, (size_t)(q - s));
            s = q;
        } else if (word_char(c)) {
            const char *q = s;
            while (word_char(*q)) q++;
            if (defines(g, s, (size_t)(q - s))) tb_addz(b, prefix);
            tb_add(b, s, (size_t)(q - s));
            s = q;
        } else {
            tb_add(b, s, 1);
            s++;
        }
    }
    if (b->n && b->p[b->n - 1] != '\n') tb_addz(b, "\n");
}

char *serve_tools_grammar(const serve_tools *t) {
    tbuf b = { 0 };
    bool many = t->parallel && t->choice != TOOL_CHOICE_NAMED;
    char tmp[160];
    snprintf(tmp, sizeof tmp, "root ::= tc-calls%s\n", t->choice == TOOL_CHOICE_AUTO ? " | tc-start" : "");
    tb_addz(&b, tmp);
    snprintf(tmp, sizeof tmp, "tc-calls ::= tc-call%s\n", many ? " ( \"\\n\" tc-call ){0,15}" : "");
    tb_addz(&b, tmp);
    /* auto only: one call written as the whole answer, bare or in a ```json
     * fence (what small models often write instead of the tags) */
    tb_addz(&b, "tc-start ::= \"```json\\n\" tc-obj \"\\n```\" | tc-obj\n");
    tb_addz(&b, "tc-call ::= \"<tool_call>\\n\" tc-obj \"\\n</tool_call>\"\n");
    tb_addz(&b, "tc-obj ::= \"{\\\"name\\\": \" ( ");
    bool first = true;
    for (int i = 0; i < t->n; i++) {
        if (t->choice == TOOL_CHOICE_NAMED && i != t->named) continue;
        snprintf(tmp, sizeof tmp, "%stc-f%d", first ? "" : " | ", i);
        tb_addz(&b, tmp);
        first = false;
    }
    tb_addz(&b, " ) \"}\"\n");
    for (int i = 0; i < t->n; i++) {
        if (t->choice == TOOL_CHOICE_NAMED && i != t->named) continue;
        /* names are [A-Za-z0-9_-]: nothing to escape in the literal */
        snprintf(tmp, sizeof tmp, "tc-f%d ::= \"\\\"%s\\\", \\\"arguments\\\": \" t%d-root\n", i, t->v[i].name, i);
        tb_addz(&b, tmp);
        snprintf(tmp, sizeof tmp, "t%d-", i);
        add_renamed(&b, t->v[i].gbnf, tmp);
    }
    if (b.oom) { free(b.p); return NULL; }
    return b.p;
}

/* ---- prompt -------------------------------------------------------------------- */

static const char probe_tools[] =
    "[{\"type\":\"function\",\"function\":{\"name\":\"slm_probe_tool\",\"description\":\"probe\","
    "\"parameters\":{\"type\":\"object\"}}}]";

/* Does the template print `tools`? (It renders differently with a tool.) */
static bool template_knows_tools(const slm_model *m, const slm_chat_message *msgs, size_t n) {
    char *a = NULL, *b = NULL;
    bool yes = !slm_chat_format_tools(m, msgs, NULL, n, probe_tools, true, &a) &&
               !slm_chat_format_tools(m, msgs, NULL, n, NULL, true, &b) && strcmp(a, b) != 0;
    free(a);
    free(b);
    return yes;
}

/* Text that would tokenize into a control token (one that prints nothing
 * as text): client text must not carry any into a rendering that is
 * tokenized with special tokens parsed. */
static bool holds_control(const slm_model *m, const char *s) {
    if (!s || !*s) return false;
    slm_token *t = NULL;
    size_t k = 0;
    if (slm_tokenize(m, s, strlen(s), false, true, &t, &k)) return true;
    bool bad = false;
    char buf[8];
    for (size_t i = 0; i < k && !bad; i++)
        bad = slm_token_to_bytes(m, t[i], false, buf, sizeof buf) == 0 && slm_token_to_bytes(m, t[i], true, buf, sizeof buf) > 0;
    free(t);
    return bad;
}

static slm_status native_prompt(const slm_model *m, const slm_chat_message *msgs, const char *const *msg_json, size_t n,
                                const char *tools_json, slm_token **out, size_t *n_out, char *err, size_t errcap) {
    for (size_t i = 0; i < n; i++)
        if (holds_control(m, msgs[i].content) || holds_control(m, msg_json[i])) {
            snprintf(err, errcap, "message %zu holds the text of a control token", i);
            return SLM_ERR_INVALID_ARG;
        }
    if (holds_control(m, tools_json)) {
        snprintf(err, errcap, "the tools hold the text of a control token");
        return SLM_ERR_INVALID_ARG;
    }
    char *text = NULL;
    slm_status st = slm_chat_format_tools(m, msgs, msg_json, n, tools_json, true, &text);
    if (!st) st = slm_tokenize(m, text, strlen(text), false, true, out, n_out);
    if (st) snprintf(err, errcap, "%s", slm_last_error());
    free(text);
    return st;
}

/* The system prompt of the generic convention (templates without tools). */
static void describe_tools(tbuf *b, const serve_tools *t) {
    tb_addz(b, "You can call functions to help you answer. The functions, one JSON object each:\n");
    cJSON *arr = cJSON_Parse(t->json);
    const cJSON *it;
    cJSON_ArrayForEach(it, arr) {
        if (t->choice == TOOL_CHOICE_NAMED && strcmp(cJSON_GetObjectItem(cJSON_GetObjectItem(it, "function"), "name")->valuestring,
                                                     t->v[t->named].name))
            continue;
        char *s = cJSON_PrintUnformatted(cJSON_GetObjectItem(it, "function"));
        if (s) { tb_addz(b, s); tb_addz(b, "\n"); }
        free(s);
    }
    cJSON_Delete(arr);
    tb_addz(b, "\nTo call a function, write one block per call and nothing else:\n" TOOL_OPEN
               "\n{\"name\": \"FUNCTION NAME\", \"arguments\": {ARGUMENTS AS JSON}}\n" TOOL_CLOSE
               "\nThe results come back in <tool_response></tool_response> blocks.");
    if (t->choice == TOOL_CHOICE_REQUIRED) tb_addz(b, " You must call a function now.");
    else if (t->choice == TOOL_CHOICE_NAMED) {
        tb_addz(b, " You must call the function ");
        tb_addz(b, t->v[t->named].name);
        tb_addz(b, " now.");
    } else tb_addz(b, " If no function is needed, answer directly.");
}

/* An assistant turn's past calls, written in the call format. */
static void write_calls(tbuf *b, const char *json) {
    cJSON *o = cJSON_Parse(json);
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(o, "tool_calls")) {
        const cJSON *f = cJSON_GetObjectItem(c, "function");
        cJSON *x = cJSON_CreateObject();
        cJSON_AddItemToObject(x, "name", cJSON_Duplicate(cJSON_GetObjectItem(f, "name"), true));
        cJSON_AddItemToObject(x, "arguments", cJSON_Duplicate(cJSON_GetObjectItem(f, "arguments"), true));
        char *s = cJSON_PrintUnformatted(x);
        if (b->n) tb_addz(b, "\n");
        tb_addz(b, TOOL_OPEN "\n");
        if (s) tb_addz(b, s);
        tb_addz(b, "\n" TOOL_CLOSE);
        free(s);
        cJSON_Delete(x);
    }
    cJSON_Delete(o);
}

static slm_status generic_prompt(const slm_model *m, const slm_chat_message *msgs, const char *const *msg_json, size_t n,
                                 const serve_tools *t, slm_token **out, size_t *n_out, char *err, size_t errcap) {
    tbuf *txt = calloc(n + 1, sizeof *txt);
    slm_chat_message *cv = calloc(n + 1, sizeof *cv);
    slm_status st = txt && cv ? SLM_OK : SLM_ERR_NOMEM;
    size_t k = 0, i = 0;
    if (!st && t && t->choice != TOOL_CHOICE_NONE) {  /* the tools lead the system prompt */
        cv[0].role = "system";
        describe_tools(&txt[0], t);
        if (n && !strcmp(msgs[0].role, "system")) {
            tb_addz(&txt[0], "\n\n");
            tb_addz(&txt[0], msgs[0].content);
            i = 1;
        }
        k = 1;
    }
    for (; !st && i < n; i++) {
        bool tool = !strcmp(msgs[i].role, "tool");
        const char *role = tool ? "user" : msgs[i].role;
        /* consecutive tool results (and the user turn they join) make one user turn */
        bool join = k > 0 && !strcmp(cv[k - 1].role, "user") && (tool || !strcmp(msgs[i - (i > 0)].role, "tool"));
        if (!join) cv[k++].role = role;
        tbuf *b = &txt[k - 1];
        if (join && b->n) tb_addz(b, "\n");
        if (tool) tb_addz(b, "<tool_response>\n");
        tb_addz(b, msgs[i].content ? msgs[i].content : "");
        if (tool) tb_addz(b, "\n</tool_response>");
        if (!strcmp(msgs[i].role, "assistant") && msg_json[i]) write_calls(b, msg_json[i]);
    }
    for (size_t q = 0; !st && q < k; q++) {
        if (txt[q].oom) st = SLM_ERR_NOMEM;
        cv[q].content = txt[q].p ? txt[q].p : "";
    }
    if (st) snprintf(err, errcap, "out of memory");
    else if ((st = slm_chat_tokenize(m, cv, k, true, out, NULL, n_out))) snprintf(err, errcap, "%s", slm_last_error());
    for (size_t q = 0; txt && q <= n; q++) free(txt[q].p);
    free(txt);
    free(cv);
    return st;
}

slm_status serve_tools_prompt(const slm_model *m, const slm_chat_message *msgs, const char *const *msg_json, size_t n,
                              const serve_tools *tools, slm_token **out, size_t *n_out, bool *native, char *err,
                              size_t errcap) {
    *native = template_knows_tools(m, msgs, n);
    if (*native)
        return native_prompt(m, msgs, msg_json, n, tools && tools->choice != TOOL_CHOICE_NONE ? tools->json : NULL,
                             out, n_out, err, errcap);
    return generic_prompt(m, msgs, msg_json, n, tools, out, n_out, err, errcap);
}

/* ---- reading the answer ---------------------------------------------------------- */

static const char *find(const char *s, const char *end, const char *pat) {
    size_t pl = strlen(pat);
    for (const char *p = s; p + pl <= end; p++)
        if (*p == pat[0] && !memcmp(p, pat, pl)) return p;
    return NULL;
}

static bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

static const char *skip_ws(const char *p, const char *e) {
    while (p < e && is_ws(*p)) p++;
    return p;
}

/* Expects lit at p after whitespace: the position after it, or NULL. */
static const char *expect(const char *p, const char *e, const char *lit) {
    p = skip_ws(p, e);
    size_t l = strlen(lit);
    return (size_t)(e - p) >= l && !memcmp(p, lit, l) ? p + l : NULL;
}

static char *dup_n(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (d) { memcpy(d, s, n); d[n] = '\0'; }
    return d;
}

/* Is [p, e) whitespace and then a prefix of the closing text? */
static bool closing_prefix(const char *p, const char *e, const char *close) {
    p = skip_ws(p, e);
    size_t l = (size_t)(e - p), cl = strlen(close);
    return l <= cl && !memcmp(p, close, l);
}

/* One block's body [p, e). The arguments are the raw text (so that a stream
 * and a whole answer give the same bytes) when the body starts as the call
 * format does; otherwise a closed body is read as JSON in any key order. */
static void read_call(const char *p, const char *e, bool complete, const char *close, tool_call_out *c) {
    const char *q = expect(p, e, "{");
    q = q ? expect(q, e, "\"name\"") : NULL;
    q = q ? expect(q, e, ":") : NULL;
    q = q ? expect(q, e, "\"") : NULL;
    const char *ne = q;
    while (ne && ne < e && *ne != '"') ne += *ne == '\\' && ne + 1 < e ? 2 : 1;
    if (ne && ne < e) {
        const char *a = expect(ne + 1, e, ",");
        a = a ? expect(a, e, "\"arguments\"") : NULL;
        a = a ? expect(a, e, ":") : NULL;
        if (a) {
            a = skip_ws(a, e);
            const char *cut = e, *b = e;
            while (b > a && b[-1] != '}') b--;
            if (b > a && (complete || closing_prefix(b, e, close))) cut = b - 1;  /* the body's own closing brace */
            while (cut > a && is_ws(cut[-1])) cut--;
            c->name = dup_n(q, (size_t)(ne - q));
            c->args = dup_n(a, (size_t)(cut - a));
            c->complete = complete;
            return;
        }
        if (!complete) {  /* the name is known; its arguments have not started */
            c->name = dup_n(q, (size_t)(ne - q));
            c->args = dup_n("", 0);
            return;
        }
    }
    if (!complete) return;
    cJSON *o = cJSON_ParseWithLength(p, (size_t)(e - p));
    const cJSON *nm = cJSON_GetObjectItemCaseSensitive(o, "name");
    const cJSON *args = cJSON_GetObjectItemCaseSensitive(o, "arguments");
    if (!args) args = cJSON_GetObjectItemCaseSensitive(o, "parameters");
    if (cJSON_IsString(nm)) {
        c->name = strdup(nm->valuestring);
        c->args = cJSON_IsString(args) ? strdup(args->valuestring) : args ? cJSON_PrintUnformatted(args) : strdup("{}");
        c->complete = true;
    }
    cJSON_Delete(o);
}

#define FENCE "```json"

size_t serve_tools_trigger(const char *text, size_t len, size_t from) {
    const char *end = text + len, *s = skip_ws(text, end);
    size_t fl = strlen(FENCE);
    if (s < end && (*s == '{' || ((size_t)(end - s) >= fl && !memcmp(s, FENCE, fl)))) return (size_t)(s - text);
    size_t tl = strlen(TOOL_OPEN);
    const char *t = find(text + (from >= tl ? from - tl + 1 : 0), end, TOOL_OPEN);
    return t ? (size_t)(t - text) : (size_t)-1;
}

/* The answer as one call, bare or fenced: true when it is (or, streaming,
 * may still become) one; p then holds it. */
static bool read_start_form(const char *text, const char *end, bool final, tools_parsed *p) {
    const char *s = skip_ws(text, end);
    size_t fl = strlen(FENCE), l = (size_t)(end - s);
    if (s == end) return !final;
    bool fence = l >= fl && !memcmp(s, FENCE, fl);
    if (!fence && *s != '{') return !final && l < fl && !memcmp(s, FENCE, l);
    const char *body = fence ? s + fl : s, *close = fence ? find(body, end, "```") : NULL;
    tool_call_out c = { 0 };
    read_call(body, close ? close : end, close != NULL || final, fence ? "```" : "", &c);
    if (c.name && c.args) {
        p->calls[p->n_calls++] = c;
        return true;
    }
    free(c.name);
    free(c.args);
    return !final;  /* not (yet) a call: hold the text back until the end says */
}

void serve_tools_read(const char *text, size_t len, bool final, tools_parsed *p) {
    memset(p, 0, sizeof *p);
    const char *end = text + len, *open = find(text, end, TOOL_OPEN);
    if (!open && read_start_form(text, end, final, p)) return;
    if (!open) {
        size_t keep = len;
        if (!final) {  /* hold back what may start a tag, and trailing whitespace */
            size_t ol = strlen(TOOL_OPEN);
            for (size_t k = ol - 1; k > 0; k--)
                if (k <= len && !memcmp(end - k, TOOL_OPEN, k)) { keep = len - k; break; }
            while (keep > 0 && is_ws(text[keep - 1])) keep--;
        }
        p->content_len = keep;
        return;
    }
    size_t cl = (size_t)(open - text);
    while (cl > 0 && is_ws(text[cl - 1])) cl--;
    p->content_len = cl;
    const char *pos = open + strlen(TOOL_OPEN);
    while (p->n_calls < SERVE_MAX_CALLS) {
        const char *close = find(pos, end, TOOL_CLOSE);
        tool_call_out c = { 0 };
        read_call(pos, close ? close : end, close != NULL, TOOL_CLOSE, &c);
        if (c.name && c.args) p->calls[p->n_calls++] = c;
        else { free(c.name); free(c.args); }
        if (!close) break;
        pos = find(close, end, TOOL_OPEN);
        if (!pos) break;
        pos += strlen(TOOL_OPEN);
    }
}

void tools_parsed_free(tools_parsed *p) {
    for (int i = 0; i < p->n_calls; i++) {
        free(p->calls[i].name);
        free(p->calls[i].args);
    }
    p->n_calls = 0;
}
