/* slm serve: request bodies into serve_request. Unknown fields are ignored
 * (clients send many we do not use); known ones must have the right type and
 * range, or the request is refused with a message that names the field. */
#include "serve_request.h"
#include "serve_tools.h"

#include <cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *err;
    size_t errcap;
    const char **param;
} perr;

static int fail(perr *e, const char *param, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->err, e->errcap, fmt, ap);
    va_end(ap);
    *e->param = param;
    return -1;
}

static char *dup_str(const char *s) {
    size_t n = strlen(s);
    char *d = malloc(n + 1);
    if (d) memcpy(d, s, n + 1);
    return d;
}

/* A number field: absent leaves *v as it is. */
static int get_float(perr *e, const cJSON *root, const char *name, double lo, double hi, float *v) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, name);
    if (!it || cJSON_IsNull(it)) return 0;
    if (!cJSON_IsNumber(it)) return fail(e, name, "'%s' must be a number", name);
    double d = it->valuedouble;
    if (!isfinite(d) || d < lo || d > hi) return fail(e, name, "'%s' must be between %g and %g", name, lo, hi);
    *v = (float)d;
    return 0;
}

static int get_int(perr *e, const cJSON *root, const char *name, double lo, double hi, double *v, bool *set) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, name);
    if (!it || cJSON_IsNull(it)) return 0;
    if (!cJSON_IsNumber(it)) return fail(e, name, "'%s' must be an integer", name);
    double d = it->valuedouble;
    if (!isfinite(d) || d != floor(d)) return fail(e, name, "'%s' must be an integer", name);
    if (d < lo || d > hi) return fail(e, name, "'%s' must be between %.0f and %.0f", name, lo, hi);
    *v = d;
    if (set) *set = true;
    return 0;
}

static int get_bool(perr *e, const cJSON *root, const char *name, bool *v) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, name);
    if (!it || cJSON_IsNull(it)) return 0;
    if (!cJSON_IsBool(it)) return fail(e, name, "'%s' must be true or false", name);
    *v = cJSON_IsTrue(it);
    return 0;
}

size_t serve_quote(char *dst, size_t cap, const char *src, size_t max_bytes) {
    size_t w = 0;
    if (!cap) return 0;
    const unsigned char *s = (const unsigned char *)src;
    size_t n = strlen(src), i = 0;
    while (i < n && i < max_bytes) {
        unsigned char c = s[i];
        size_t len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
        bool ok = len > 0 && i + len <= n;
        for (size_t k = 1; ok && k < len; k++) ok = (s[i + k] & 0xC0) == 0x80;
        if (ok && len == 2 && c < 0xC2) ok = false;                                   /* overlong */
        if (ok && len == 3) {
            unsigned cp = ((c & 0x0Fu) << 12) | ((s[i + 1] & 0x3Fu) << 6) | (s[i + 2] & 0x3Fu);
            ok = cp >= 0x800 && (cp < 0xD800 || cp > 0xDFFF);
        }
        if (ok && len == 4) {
            unsigned cp = ((c & 0x07u) << 18) | ((s[i + 1] & 0x3Fu) << 12) | ((s[i + 2] & 0x3Fu) << 6) | (s[i + 3] & 0x3Fu);
            ok = cp >= 0x10000 && cp <= 0x10FFFF;
        }
        if (ok && i + len > max_bytes) break;      /* a character cut by the limit: stop before it */
        const char *put = ok && c >= 0x20 && c != 0x7F ? src + i : "?";
        size_t pl = ok && c >= 0x20 && c != 0x7F ? len : 1;
        if (w + pl + 1 > cap) break;
        memcpy(dst + w, put, pl);
        w += pl;
        i += ok ? len : 1;
    }
    if (i < n && w + 4 <= cap) { memcpy(dst + w, "...", 3); w += 3; }
    dst[w] = '\0';
    return w;
}

/* message content: a string, or an array of {"type":"text","text":...} parts
 * (null, as an assistant turn that called tools has it: empty) */
static int get_content(perr *e, const cJSON *c, char **out) {
    if (cJSON_IsNull(c)) {
        *out = dup_str("");
        return *out ? 0 : fail(e, NULL, "out of memory");
    }
    if (cJSON_IsString(c)) {
        *out = dup_str(c->valuestring);
        return *out ? 0 : fail(e, NULL, "out of memory");
    }
    if (!cJSON_IsArray(c)) return fail(e, "messages", "a message's 'content' must be a string or an array of text parts");
    size_t total = 0;
    const cJSON *part;
    cJSON_ArrayForEach(part, c) {
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(part, "type");
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(part, "text");
        if (!cJSON_IsObject(part) || !cJSON_IsString(type) || strcmp(type->valuestring, "text") != 0 ||
            !cJSON_IsString(text))
            return fail(e, "messages", "only text content parts ({\"type\":\"text\",\"text\":...}) are supported");
        total += strlen(text->valuestring);
    }
    char *s = malloc(total + 1);
    if (!s) return fail(e, NULL, "out of memory");
    size_t w = 0;
    cJSON_ArrayForEach(part, c) {
        const char *t = cJSON_GetObjectItemCaseSensitive(part, "text")->valuestring;
        size_t n = strlen(t);
        memcpy(s + w, t, n);
        w += n;
    }
    s[w] = '\0';
    *out = s;
    return 0;
}

static int get_messages(perr *e, const cJSON *root, serve_request *r) {
    const cJSON *ms = cJSON_GetObjectItemCaseSensitive(root, "messages");
    if (!ms) return fail(e, "messages", "'messages' is required");
    if (!cJSON_IsArray(ms)) return fail(e, "messages", "'messages' must be an array");
    int n = cJSON_GetArraySize(ms);
    if (n == 0) return fail(e, "messages", "'messages' must not be empty");
    if (n > SERVE_MAX_MESSAGES) return fail(e, "messages", "at most %d messages", SERVE_MAX_MESSAGES);
    r->messages = calloc((size_t)n, sizeof *r->messages);
    if (!r->messages) return fail(e, NULL, "out of memory");
    const cJSON *m;
    cJSON_ArrayForEach(m, ms) {
        if (!cJSON_IsObject(m)) return fail(e, "messages", "each message must be an object");
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
        if (!cJSON_IsString(role)) return fail(e, "messages", "each message needs a 'role' string");
        const char *rs = role->valuestring;
        if (!strcmp(rs, "developer")) rs = "system";  /* OpenAI's newer name for it */
        if (strcmp(rs, "system") && strcmp(rs, "user") && strcmp(rs, "assistant") && strcmp(rs, "tool")) {
            char q[64];
            serve_quote(q, sizeof q, role->valuestring, 40);
            return fail(e, "messages", "unsupported role '%s' (system, user, assistant or tool)", q);
        }
        serve_message *dst = &r->messages[r->n_messages];
        bool optional = false;  /* an assistant turn that only calls tools may have no content */
        if (serve_tools_message(m, rs, &dst->tool_json, &optional, e->err, e->errcap)) {
            *e->param = "messages";
            return -1;
        }
        r->n_messages++;  /* counted now: free releases what this message holds whatever fails next */
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
        if (!content && !optional) return fail(e, "messages", "each message needs 'content'");
        if (!content) dst->content = dup_str("");
        else if (get_content(e, content, &dst->content)) return -1;
        if (!dst->content) return fail(e, NULL, "out of memory");
        dst->role = dup_str(rs);
        if (!dst->role) return fail(e, NULL, "out of memory");
    }
    return 0;
}

static int get_stop(perr *e, const cJSON *root, serve_request *r) {
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(root, "stop");
    if (!st || cJSON_IsNull(st)) return 0;
    const cJSON *one[1] = { st };
    int n = cJSON_IsString(st) ? 1 : cJSON_IsArray(st) ? cJSON_GetArraySize(st) : -1;
    if (n < 0) return fail(e, "stop", "'stop' must be a string or an array of strings");
    if (n > SERVE_MAX_STOP) return fail(e, "stop", "at most %d stop sequences", SERVE_MAX_STOP);
    for (int i = 0; i < n; i++) {
        const cJSON *s = cJSON_IsString(st) ? one[0] : cJSON_GetArrayItem(st, i);
        if (!cJSON_IsString(s)) return fail(e, "stop", "'stop' must be a string or an array of strings");
        size_t len = strlen(s->valuestring);
        if (len == 0 || len > SERVE_MAX_STOP_LEN)
            return fail(e, "stop", "each stop sequence must have 1 to %d bytes", SERVE_MAX_STOP_LEN);
        if (!(r->stop[r->n_stop] = dup_str(s->valuestring))) return fail(e, NULL, "out of memory");
        r->n_stop++;
    }
    return 0;
}

/* response_format: {"type":"text"} (free text), {"type":"json_object"} (one
 * JSON object), {"type":"json_schema","json_schema":{"name":...,"schema":
 * {...},"strict":...}} (JSON valid against the schema; no schema: any JSON
 * value). Whether the schema itself can be honoured is decided later, by the
 * converter (serve_api.c). */
static int get_response_format(perr *e, const cJSON *root, serve_request *r) {
    const char *P = "response_format";
    const cJSON *rf = cJSON_GetObjectItemCaseSensitive(root, P);
    if (!rf || cJSON_IsNull(rf)) return 0;
    if (!cJSON_IsObject(rf)) return fail(e, P, "'response_format' must be an object");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(rf, "type");
    if (!cJSON_IsString(type)) return fail(e, P, "'response_format' needs a 'type' string (text, json_object or json_schema)");
    const char *t = type->valuestring;
    if (!strcmp(t, "text")) return 0;
    if (!strcmp(t, "json_object")) {
        if (!(r->response_schema = dup_str("{\"type\":\"object\"}"))) return fail(e, NULL, "out of memory");
        return 0;
    }
    if (strcmp(t, "json_schema")) {
        char q[64];
        serve_quote(q, sizeof q, t, 40);
        return fail(e, P, "unsupported response_format type '%s' (text, json_object or json_schema)", q);
    }
    const cJSON *js = cJSON_GetObjectItemCaseSensitive(rf, "json_schema");
    if (!cJSON_IsObject(js)) return fail(e, P, "response_format 'json_schema' needs a 'json_schema' object");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(js, "name");
    if (name && !cJSON_IsNull(name) && !cJSON_IsString(name))
        return fail(e, P, "'response_format.json_schema.name' must be a string");
    const cJSON *strict = cJSON_GetObjectItemCaseSensitive(js, "strict");
    if (strict && !cJSON_IsNull(strict) && !cJSON_IsBool(strict))
        return fail(e, P, "'response_format.json_schema.strict' must be true or false");
    const cJSON *schema = cJSON_GetObjectItemCaseSensitive(js, "schema");
    if (!schema || cJSON_IsNull(schema)) {
        r->response_schema = dup_str("{}");
    } else if (cJSON_IsObject(schema) || cJSON_IsBool(schema)) {
        r->response_schema = cJSON_PrintUnformatted(schema);
    } else {
        return fail(e, P, "'response_format.json_schema.schema' must be a JSON Schema object");
    }
    return r->response_schema ? 0 : fail(e, NULL, "out of memory");
}

static int parse_fields(perr *e, const cJSON *root, serve_kind kind, const serve_request_limits *lim,
                        serve_request *r) {
    if (!cJSON_IsObject(root)) return fail(e, NULL, "the request body must be a JSON object");
    if (kind == SERVE_CHAT) {
        if (get_messages(e, root, r)) return -1;
    } else {
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(root, "prompt");
        if (!p) return fail(e, "prompt", "'prompt' is required");
        if (cJSON_IsArray(p) && cJSON_GetArraySize(p) == 1) p = cJSON_GetArrayItem(p, 0);
        if (!cJSON_IsString(p)) return fail(e, "prompt", "'prompt' must be a string");
        if (!(r->prompt = dup_str(p->valuestring))) return fail(e, NULL, "out of memory");
    }
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    if (model && !cJSON_IsString(model) && !cJSON_IsNull(model)) return fail(e, "model", "'model' must be a string");
    double v;
    bool set = false;
    int max_cap = lim && lim->max_tokens > 0 ? lim->max_tokens : 4096;
    /* a field that is null is a field not given (OpenAI's clients send nulls) */
    const cJSON *mct = cJSON_GetObjectItemCaseSensitive(root, "max_completion_tokens");
    const char *mt = mct && !cJSON_IsNull(mct) ? "max_completion_tokens" : "max_tokens";
    if (get_int(e, root, mt, 1, max_cap, &v, &set)) return -1;
    if (set) r->max_tokens = (int)v;
    set = false;
    if (get_int(e, root, "n", 1, 1, &v, &set)) return -1;
    if (get_float(e, root, "temperature", 0, 2, &r->temperature) || get_float(e, root, "top_p", 0, 1, &r->top_p) ||
        get_float(e, root, "min_p", 0, 1, &r->min_p) ||
        get_float(e, root, "presence_penalty", -2, 2, &r->presence_penalty) ||
        get_float(e, root, "frequency_penalty", -2, 2, &r->frequency_penalty))
        return -1;
    if (r->top_p <= 0) return fail(e, "top_p", "'top_p' must be greater than 0");
    set = false;
    if (get_int(e, root, "top_k", 0, 1 << 20, &v, &set)) return -1;
    if (set) r->top_k = (int)v;
    /* any integer JSON can carry exactly; negative seeds wrap, as 64-bit values do */
    if (get_int(e, root, "seed", -9007199254740992.0, 9007199254740992.0, &v, &r->seed_set)) return -1;
    if (r->seed_set) r->seed = v < 0 ? (uint64_t)(int64_t)v : (uint64_t)v;
    if (get_stop(e, root, r) || get_bool(e, root, "stream", &r->stream) ||
        get_bool(e, root, "ignore_eos", &r->ignore_eos) || get_response_format(e, root, r))
        return -1;
    if (kind == SERVE_CHAT && serve_tools_parse(root, &r->tools, e->err, e->errcap, e->param)) return -1;
    if (r->tools && r->response_schema && r->tools->choice != TOOL_CHOICE_NONE)
        return fail(e, "response_format", "give 'response_format' or 'tools' (with a tool_choice other than \"none\"), not both");
    const cJSON *so = cJSON_GetObjectItemCaseSensitive(root, "stream_options");
    if (so && !cJSON_IsNull(so)) {
        if (!cJSON_IsObject(so)) return fail(e, "stream_options", "'stream_options' must be an object");
        if (get_bool(e, so, "include_usage", &r->include_usage)) return -1;
    }
    return 0;
}

int serve_request_parse(const char *body, size_t len, serve_kind kind, const serve_request_limits *lim,
                        serve_request *out, char *err, size_t errcap, const char **param) {
    const char *dummy;
    perr e = { err, errcap, param ? param : &dummy };
    *e.param = NULL;
    if (errcap) err[0] = '\0';
    memset(out, 0, sizeof *out);
    out->kind = kind;
    /* OpenAI's defaults */
    out->temperature = 1.0f;
    out->top_p = 1.0f;
    if (!body || len == 0) return fail(&e, NULL, "the request body is empty (expected JSON)");
    /* the position of the error comes back through `end`, not cJSON's global
     * error pointer, which other server threads could overwrite */
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(body, len, &end, false);
    if (!root) {
        long off = end && end >= body && end <= body + len ? (long)(end - body) : 0;
        return fail(&e, NULL, "the request body is not valid JSON (near byte %ld)", off);
    }
    int rc = parse_fields(&e, root, kind, lim, out);
    cJSON_Delete(root);
    if (rc) {
        serve_request_free(out);
        out->kind = kind;
    }
    return rc;
}

void serve_request_free(serve_request *r) {
    for (int i = 0; i < r->n_messages; i++) {
        free(r->messages[i].role);
        free(r->messages[i].content);
        free(r->messages[i].tool_json);
    }
    serve_tools_free(r->tools);
    free(r->messages);
    free(r->prompt);
    for (int i = 0; i < r->n_stop; i++) free(r->stop[i]);
    free(r->response_schema);  /* cJSON_PrintUnformatted's, whose allocator is malloc here */
    memset(r, 0, sizeof *r);
}
