/* JSON text into interpreter values: the variables a template is rendered
 * with arrive as one JSON object. Numbers with a fraction or exponent are
 * floats, the others ints, as Python's json module reads them. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/utf8.h"
#include "template/jinja_int.h"

typedef struct { jarena *a; const char *s; size_t n, i; } jp;

static _Noreturn void bad(jp *p, const char *what) {
    jfail(p->a->err, SLM_ERR_INVALID_ARG, 0, "variables JSON: %s at byte %zu", what, p->i);
}

static void ws(jp *p) {
    while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' || p->s[p->i] == '\r')) p->i++;
}

static int hex4(jp *p) {
    if (p->n - p->i < 4) bad(p, "short \\u escape");
    int v = 0;
    for (int k = 0; k < 4; k++) {
        char c = p->s[p->i++];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= c - '0';
        else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
        else bad(p, "bad \\u escape");
    }
    return v;
}

static jv str(jp *p) {
    p->i++;  /* opening quote */
    jbuf b = { .err = p->a->err, .arena = p->a };
    for (;;) {
        if (p->i >= p->n) bad(p, "unterminated string");
        char c = p->s[p->i++];
        if (c == '"') break;
        if ((unsigned char)c < 0x20) bad(p, "control character in string");
        if (c != '\\') { jb_addc(&b, c); continue; }
        if (p->i >= p->n) bad(p, "unterminated escape");
        c = p->s[p->i++];
        switch (c) {
        case '"': case '\\': case '/': jb_addc(&b, c); break;
        case 'n': jb_addc(&b, '\n'); break;
        case 't': jb_addc(&b, '\t'); break;
        case 'r': jb_addc(&b, '\r'); break;
        case 'b': jb_addc(&b, '\b'); break;
        case 'f': jb_addc(&b, '\f'); break;
        case 'u': {
            uint32_t cp = (uint32_t)hex4(p);
            if (cp >= 0xd800 && cp < 0xdc00 && p->n - p->i >= 6 && p->s[p->i] == '\\' && p->s[p->i + 1] == 'u') {
                size_t save = p->i;
                p->i += 2;
                uint32_t lo = (uint32_t)hex4(p);
                if (lo >= 0xdc00 && lo < 0xe000) cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                else p->i = save;
            }
            if (cp >= 0xd800 && cp < 0xe000) cp = 0xfffd;   /* a lone surrogate */
            char u[4];
            jb_add(&b, u, (size_t)utf8_encode(cp, u));   /* no surrogate is left: 1..4 bytes */
            break;
        }
        default: bad(p, "bad escape");
        }
    }
    jv v = jb_take(&b, p->a);
    return v;
}

static bool lit(jp *p, const char *w) {
    size_t l = strlen(w);
    if (p->n - p->i >= l && !memcmp(p->s + p->i, w, l)) { p->i += l; return true; }
    return false;
}

static jv value(jp *p, int depth) {
    if (depth > JINJA_MAX_DEPTH) bad(p, "nested too deeply");
    ws(p);
    if (p->i >= p->n) bad(p, "unexpected end");
    char c = p->s[p->i];
    if (c == '"') return str(p);
    if (c == '{') {
        p->i++;
        jv d = jv_dict_new(p->a, 4);
        ws(p);
        if (p->i < p->n && p->s[p->i] == '}') { p->i++; return d; }
        for (;;) {
            ws(p);
            if (p->i >= p->n || p->s[p->i] != '"') bad(p, "expected a key");
            jv k = str(p);
            ws(p);
            if (p->i >= p->n || p->s[p->i] != ':') bad(p, "expected ':'");
            p->i++;
            jv_dict_set(p->a, d, k, value(p, depth + 1));
            ws(p);
            if (p->i < p->n && p->s[p->i] == ',') { p->i++; continue; }
            if (p->i < p->n && p->s[p->i] == '}') { p->i++; return d; }
            bad(p, "expected ',' or '}'");
        }
    }
    if (c == '[') {
        p->i++;
        jv l = jv_list_new(p->a, 4);
        ws(p);
        if (p->i < p->n && p->s[p->i] == ']') { p->i++; return l; }
        for (;;) {
            jv_list_push(p->a, l, value(p, depth + 1));
            ws(p);
            if (p->i < p->n && p->s[p->i] == ',') { p->i++; continue; }
            if (p->i < p->n && p->s[p->i] == ']') { p->i++; return l; }
            bad(p, "expected ',' or ']'");
        }
    }
    if (lit(p, "true")) return jv_bool(true);
    if (lit(p, "false")) return jv_bool(false);
    if (lit(p, "null")) return jv_none();
    if (c == '-' || (c >= '0' && c <= '9')) {
        size_t st = p->i;
        bool flt = false;
        if (p->s[p->i] == '-') p->i++;
        while (p->i < p->n && strchr("0123456789.eE+-", p->s[p->i])) {
            if (strchr(".eE", p->s[p->i])) flt = true;
            p->i++;
        }
        char tmp[64];
        size_t l = p->i - st;
        if (l >= sizeof tmp) bad(p, "number too long");
        memcpy(tmp, p->s + st, l);
        tmp[l] = '\0';
        char *end;
        errno = 0;
        if (!flt) {
            long long v = strtoll(tmp, &end, 10);
            if (*end == '\0' && errno == 0) return jv_int(v);
        }
        double f = strtod(tmp, &end);
        if (*end != '\0') bad(p, "bad number");
        return jv_float(f);
    }
    bad(p, "unexpected character");
}

jv json_parse(jarena *a, const char *text, size_t len) {
    jp p = { a, text, len, 0 };
    jv v = value(&p, 0);
    ws(&p);
    if (p.i != p.n) bad(&p, "trailing characters");
    return v;
}
