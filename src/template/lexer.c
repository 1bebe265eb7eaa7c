/* Template text into tokens, with jinja2's whitespace control as HF
 * configures it: "{%-"/"-%}" strip all whitespace on that side, trim_blocks
 * drops the first newline after a block or comment tag, lstrip_blocks drops
 * the spaces and tabs before a block or comment tag that starts a line, "+"
 * turns either off for one tag. Like jinja2, a single trailing newline of the
 * template is dropped and \r\n / \r become \n. */
#include <stdlib.h>
#include <string.h>

#include "base/utf8.h"
#include "template/jinja_int.h"

typedef struct {
    jarena *a;
    const char *s;
    size_t n, i;
    int line;
    tokens *out;
} lexer;

static bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
static bool is_name0(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
static bool is_digit(char c) { return c >= '0' && c <= '9'; }

static _Noreturn void lfail(lexer *L, const char *what) {
    jfail(L->a->err, SLM_ERR_FORMAT, L->line, "%s", what);
}

static token *emit(lexer *L, tk_type t, const char *p, size_t n) {
    tokens *o = L->out;
    if (o->n == o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 256;
        token *v = ja_alloc(L->a, cap * sizeof *v);
        if (o->n) memcpy(v, o->v, o->n * sizeof *v);
        o->v = v;
        o->cap = cap;
    }
    token *t0 = &o->v[o->n++];
    memset(t0, 0, sizeof *t0);
    t0->t = t;
    t0->line = L->line;
    t0->p = p;
    t0->n = n;
    return t0;
}

/* Advances over [i, j), counting newlines. */
static void advance(lexer *L, size_t j) {
    for (; L->i < j; L->i++)
        if (L->s[L->i] == '\n') L->line++;
}

static void emit_text(lexer *L, size_t from, size_t to, int line) {
    if (to <= from) return;
    token *t = emit(L, TK_TEXT, L->s + from, to - from);
    t->line = line;
}

/* A string literal's value, with Python's escapes (unknown ones kept). */
static void lex_string(lexer *L) {
    char q = L->s[L->i];
    size_t j = L->i + 1;
    jbuf b = { .err = L->a->err, .arena = L->a };
    while (j < L->n && L->s[j] != q) {
        char c = L->s[j];
        if (c != '\\' || j + 1 >= L->n) { jb_addc(&b, c); j++; continue; }
        char e = L->s[j + 1];
        j += 2;
        switch (e) {
        case 'n': jb_addc(&b, '\n'); break;
        case 't': jb_addc(&b, '\t'); break;
        case 'r': jb_addc(&b, '\r'); break;
        case '\\': jb_addc(&b, '\\'); break;
        case '\'': jb_addc(&b, '\''); break;
        case '"': jb_addc(&b, '"'); break;
        case 'a': jb_addc(&b, '\a'); break;
        case 'b': jb_addc(&b, '\b'); break;
        case 'f': jb_addc(&b, '\f'); break;
        case 'v': jb_addc(&b, '\v'); break;
        case '\n': break;
        case 'x': case 'u': case 'U': {
            int digits = e == 'x' ? 2 : e == 'u' ? 4 : 8;
            uint32_t cp = 0;
            for (int k = 0; k < digits; k++, j++) {
                char h = j < L->n ? L->s[j] : 0;
                int v = is_digit(h) ? h - '0' : (h >= 'a' && h <= 'f') ? h - 'a' + 10 : (h >= 'A' && h <= 'F') ? h - 'A' + 10 : -1;
                if (v < 0) lfail(L, "bad escape in a string literal");
                cp = cp << 4 | (uint32_t)v;
            }
            if (cp > 0x10ffff || (cp >= 0xd800 && cp < 0xe000)) lfail(L, "bad code point in a string literal");
            char u[4];
            jb_add(&b, u, (size_t)utf8_encode(cp, u));   /* cp is valid: 1..4 bytes */
            break;
        }
        default:
            if (e >= '0' && e <= '7') {   /* up to three octal digits */
                unsigned v = (unsigned)(e - '0');
                for (int k = 0; k < 2 && j < L->n && L->s[j] >= '0' && L->s[j] <= '7'; k++, j++) v = v * 8 + (unsigned)(L->s[j] - '0');
                if (v >= 0x80) jfail(L->a->err, SLM_ERR_UNSUPPORTED, L->line, "octal escapes above \\177 are not supported");
                jb_addc(&b, (char)v);
            } else {
                jb_addc(&b, '\\');
                jb_addc(&b, e);
            }
        }
    }
    if (j >= L->n) lfail(L, "unterminated string literal");
    jv v = jb_take(&b, L->a);
    token *t = emit(L, TK_STRING, v.u.s.p, v.u.s.n);
    advance(L, j + 1);
    (void)t;
}

static const char *const OPS[] = { "==", "!=", "<=", ">=", "//", "**", "+", "-", "*", "/", "%", "~", "<", ">",
                                   "=", "(", ")", "[", "]", "{", "}", ".", ",", ":", "|", NULL };

/* Tokens of one {% %} or {{ }} tag; returns with L->i after its end marker.
 * *strip_after: the end had "-"; *block_end: it was "%}" (trim_blocks). */
static void lex_tag(lexer *L, bool block, bool *strip_after, bool *keep_nl) {
    char open[2 * JINJA_MAX_DEPTH];   /* brackets not yet closed */
    int depth = 0;
    *strip_after = *keep_nl = false;
    for (;;) {
        while (L->i < L->n && is_ws(L->s[L->i])) advance(L, L->i + 1);
        if (L->i >= L->n) lfail(L, block ? "unterminated '{%' tag" : "unterminated '{{' tag");
        const char *p = L->s + L->i;
        size_t left = L->n - L->i;
        char closer = block ? '%' : '}';
        if (depth == 0) {
            if (left >= 3 && (p[0] == '-' || p[0] == '+') && p[1] == closer && p[2] == '}') {
                *strip_after = p[0] == '-';
                *keep_nl = p[0] == '+';
                emit(L, block ? TK_BLOCK_END : TK_VAR_END, p, 3);
                advance(L, L->i + 3);
                return;
            }
            if (left >= 2 && p[0] == closer && p[1] == '}') {
                emit(L, block ? TK_BLOCK_END : TK_VAR_END, p, 2);
                advance(L, L->i + 2);
                return;
            }
        }
        if (is_name0(*p)) {
            size_t j = L->i;
            while (j < L->n && (is_name0(L->s[j]) || is_digit(L->s[j]))) j++;
            emit(L, TK_NAME, p, j - L->i);
            advance(L, j);
            continue;
        }
        if (is_digit(*p)) {
            size_t j = L->i;
            bool flt = false;
            char num[64];
            size_t k = 0;
            while (j < L->n && (is_digit(L->s[j]) || L->s[j] == '_')) { if (L->s[j] != '_' && k < 63) num[k++] = L->s[j]; j++; }
            if (j + 1 < L->n && L->s[j] == '.' && is_digit(L->s[j + 1])) {
                flt = true;
                if (k < 63) num[k++] = '.';
                j++;
                while (j < L->n && (is_digit(L->s[j]) || L->s[j] == '_')) { if (L->s[j] != '_' && k < 63) num[k++] = L->s[j]; j++; }
            }
            if (j < L->n && (L->s[j] == 'e' || L->s[j] == 'E')) {
                size_t m = j + 1;
                if (m < L->n && (L->s[m] == '+' || L->s[m] == '-')) m++;
                if (m < L->n && is_digit(L->s[m])) {
                    flt = true;
                    for (; j < m; j++) if (k < 63) num[k++] = L->s[j];
                    while (j < L->n && is_digit(L->s[j])) { if (k < 63) num[k++] = L->s[j]; j++; }
                }
            }
            if (k >= 63) lfail(L, "number literal too long");
            num[k] = '\0';
            token *t = emit(L, flt ? TK_FLOAT : TK_INT, p, j - L->i);
            if (flt) t->f = strtod(num, NULL);
            else {
                char *end;
                unsigned long long v = strtoull(num, &end, 10);
                if (k > 19 || v > (unsigned long long)INT64_MAX)
                    jfail(L->a->err, SLM_ERR_UNSUPPORTED, L->line, "integer literal %s does not fit in 64 bits", num);
                t->i = (int64_t)v;
            }
            advance(L, j);
            continue;
        }
        if (*p == '\'' || *p == '"') { lex_string(L); continue; }
        int k;
        for (k = 0; OPS[k]; k++) {
            size_t l = strlen(OPS[k]);
            if (left >= l && !memcmp(p, OPS[k], l)) break;
        }
        if (!OPS[k]) jfail(L->a->err, SLM_ERR_FORMAT, L->line, "unexpected character '%c' in a tag", *p);
        if (*p == '(' || *p == '[' || *p == '{') {
            if (depth == (int)sizeof open)
                jfail(L->a->err, SLM_ERR_UNSUPPORTED, L->line, "brackets nested more than %d deep", (int)sizeof open);
            open[depth++] = *p == '(' ? ')' : *p == '[' ? ']' : '}';
        } else if (*p == ')' || *p == ']' || *p == '}') {
            if (depth == 0 || open[depth - 1] != *p)
                jfail(L->a->err, SLM_ERR_FORMAT, L->line, "unexpected '%c'%s%c%s", *p, depth ? ", expected '" : "",
                      depth ? open[depth - 1] : ' ', depth ? "'" : "");
            depth--;
        }
        emit(L, TK_OP, p, strlen(OPS[k]));
        advance(L, L->i + strlen(OPS[k]));
    }
}

/* "{% raw %}" at L->i (after whitespace control)? Sets *end past the tag. */
static bool raw_tag(lexer *L, size_t at, const char *word, size_t *end, bool *minus_before, bool *minus_after) {
    size_t j = at + 2;
    *minus_before = j < L->n && L->s[j] == '-';
    if (j < L->n && (L->s[j] == '-' || L->s[j] == '+')) j++;
    while (j < L->n && is_ws(L->s[j])) j++;
    size_t wl = strlen(word);
    if (L->n - j < wl || memcmp(L->s + j, word, wl)) return false;
    j += wl;
    if (j < L->n && (is_name0(L->s[j]) || is_digit(L->s[j]))) return false;
    while (j < L->n && is_ws(L->s[j])) j++;
    *minus_after = j < L->n && L->s[j] == '-';
    if (j < L->n && (L->s[j] == '-' || L->s[j] == '+')) j++;
    if (L->n - j < 2 || L->s[j] != '%' || L->s[j + 1] != '}') return false;
    *end = j + 2;
    return true;
}

void jinja_lex(jarena *a, const char *src, size_t len, tokens *out) {
    /* newlines normalised; one trailing newline dropped */
    char *s = ja_alloc(a, len + 1);
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (src[i] == '\r') { s[n++] = '\n'; if (i + 1 < len && src[i + 1] == '\n') i++; }
        else s[n++] = src[i];
    }
    if (n && s[n - 1] == '\n') n--;
    lexer L = { a, s, n, 0, 1, out };
    bool strip_next = false, trim_nl = false;
    while (L.i < L.n) {
        if (strip_next) while (L.i < L.n && is_ws(L.s[L.i])) advance(&L, L.i + 1);
        else if (trim_nl && L.s[L.i] == '\n') advance(&L, L.i + 1);
        strip_next = trim_nl = false;
        bool line_starting = L.i == 0 || L.s[L.i - 1] == '\n';
        size_t q = L.i;
        while (q + 1 < L.n && !(L.s[q] == '{' && (L.s[q + 1] == '{' || L.s[q + 1] == '%' || L.s[q + 1] == '#'))) q++;
        if (q + 1 >= L.n) q = L.n;
        size_t text_end = q;
        if (q < L.n) {
            char kind = L.s[q + 1], mod = q + 2 < L.n ? L.s[q + 2] : 0;
            if (mod == '-') {
                while (text_end > L.i && is_ws(L.s[text_end - 1])) text_end--;
            } else if (mod != '+' && kind != '{') {
                size_t l_pos = text_end;
                while (l_pos > L.i && L.s[l_pos - 1] != '\n') l_pos--;
                bool blank = l_pos < text_end;
                for (size_t k = l_pos; k < text_end; k++) if (L.s[k] != ' ' && L.s[k] != '\t' && L.s[k] != '\f' && L.s[k] != '\v') blank = false;
                if (blank && (l_pos > L.i || (l_pos == L.i && line_starting))) text_end = l_pos;
            }
        }
        int text_line = L.line;
        emit_text(&L, L.i, text_end, text_line);
        advance(&L, q);
        if (q >= L.n) break;
        char kind = L.s[q + 1];
        if (kind == '#') {
            size_t j = q + 2;
            while (j + 1 < L.n && !(L.s[j] == '#' && L.s[j + 1] == '}')) j++;
            if (j + 1 >= L.n) lfail(&L, "unterminated comment");
            strip_next = j > q + 2 && L.s[j - 1] == '-';
            trim_nl = !(j > q + 2 && L.s[j - 1] == '+');
            advance(&L, j + 2);
            continue;
        }
        if (kind == '%') {
            size_t after;
            bool mb, ma;
            if (raw_tag(&L, q, "raw", &after, &mb, &ma)) {
                /* verbatim text up to {% endraw %} */
                size_t j = after, end_after = 0;
                bool emb = false, ema = false;
                if (ma) while (j < L.n && is_ws(L.s[j])) j++;
                size_t body = j;
                while (j + 1 < L.n && !(L.s[j] == '{' && L.s[j + 1] == '%' && raw_tag(&L, j, "endraw", &end_after, &emb, &ema))) j++;
                if (j + 1 >= L.n) lfail(&L, "unterminated raw block");
                size_t body_end = j;
                if (emb) while (body_end > body && is_ws(L.s[body_end - 1])) body_end--;
                int l0 = L.line;
                advance(&L, body);
                emit_text(&L, body, body_end, l0);
                advance(&L, end_after);
                strip_next = ema;
                trim_nl = !ema;
                continue;
            }
        }
        bool block = kind == '%';
        emit(&L, block ? TK_BLOCK_BEGIN : TK_VAR_BEGIN, L.s + q, 2);
        advance(&L, q + 2);
        if (L.i < L.n && (L.s[L.i] == '-' || L.s[L.i] == '+')) advance(&L, L.i + 1);
        bool keep;
        lex_tag(&L, block, &strip_next, &keep);
        trim_nl = block && !strip_next && !keep;
    }
    emit(&L, TK_EOF, L.s + L.n, 0);
}
