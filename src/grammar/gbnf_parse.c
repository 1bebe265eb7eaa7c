/* GBNF parser: llama.cpp's grammar syntax (see gbnf.h), our own code.
 *
 *   rule      ::= name ws "::=" alternates (newline | end)
 *   alternates::= sequence ("|" sequence)*        newlines allowed after "|"
 *   sequence  ::= (item repetition*)*            newlines allowed only inside ( )
 *   item      ::= "literal" | [class] | [^class] | . | name | ( alternates )
 *   repetition::= * | + | ? | {m} | {m,} | {m,n}
 * Names are [a-zA-Z0-9-]+; "#" starts a comment that runs to the end of the
 * line; escapes are \n \r \t \\ \" \[ \] \- \xHH \uHHHH \UHHHHHHHH. A rule
 * defined twice keeps its last definition (as llama.cpp does). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/status.h"
#include "grammar/gbnf.h"
#include "grammar/gbnf_build.h"

typedef struct {
    const char *s;
    size_t len, pos;
    gb_build *b;
    bool failed;
} gp;

static int peek(const gp *p, size_t k) { return p->pos + k < p->len ? (unsigned char)p->s[p->pos + k] : -1; }

static bool gp_fail(gp *p, size_t at, const char *fmt, const char *arg) {
    if (p->failed) return false;
    p->failed = true;
    int line = 1, col = 1;
    for (size_t i = 0; i < at && i < p->len; i++) {
        if (p->s[i] == '\n') { line++; col = 1; }
        else if (((unsigned char)p->s[i] & 0xC0) != 0x80) col++;
    }
    char msg[200];
    snprintf(msg, sizeof msg, fmt, arg ? arg : "");
    slm_fail(SLM_ERR_FORMAT, "grammar: line %d, column %d: %s", line, col, msg);
    return false;
}

static bool is_word(int c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
}

static void skip_space(gp *p, bool newline_ok) {
    for (;;) {
        int c = peek(p, 0);
        if (c == ' ' || c == '\t' || (newline_ok && (c == '\r' || c == '\n'))) p->pos++;
        else if (c == '#') { while (p->pos < p->len && p->s[p->pos] != '\r' && p->s[p->pos] != '\n') p->pos++; }
        else return;
    }
}

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* One (possibly escaped) character of a literal or class. */
static bool parse_char(gp *p, uint32_t *cp) {
    size_t at = p->pos;
    int c = peek(p, 0);
    if (c < 0) return gp_fail(p, at, "unexpected end of grammar%s", NULL);
    if (c == '\\') {
        int e = peek(p, 1), n = 0;
        switch (e) {
        case 'x': n = 2; break;
        case 'u': n = 4; break;
        case 'U': n = 8; break;
        case 'n': *cp = '\n'; p->pos += 2; return true;
        case 'r': *cp = '\r'; p->pos += 2; return true;
        case 't': *cp = '\t'; p->pos += 2; return true;
        case '\\': case '"': case '[': case ']': case '-': *cp = (uint32_t)e; p->pos += 2; return true;
        default: return gp_fail(p, at, "unknown escape%s", NULL);
        }
        uint32_t v = 0;
        for (int i = 0; i < n; i++) {
            int h = hexval(peek(p, 2 + (size_t)i));
            if (h < 0) return gp_fail(p, at, n == 2 ? "expecting 2 hex digits after \\x%s" :
                                          n == 4 ? "expecting 4 hex digits after \\u%s" :
                                                   "expecting 8 hex digits after \\U%s", NULL);
            v = v << 4 | (uint32_t)h;
        }
        p->pos += 2 + (size_t)n;
        *cp = v;
        return true;
    }
    /* a UTF-8 character */
    int n = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    if (n == 0 || p->pos + (size_t)n > p->len) return gp_fail(p, at, "invalid UTF-8%s", NULL);
    uint32_t v = n == 1 ? (uint32_t)c : (uint32_t)c & (0x3Fu >> (n - 1));
    for (int i = 1; i < n; i++) {
        int d = peek(p, (size_t)i);
        if ((d & 0xC0) != 0x80) return gp_fail(p, at, "invalid UTF-8%s", NULL);
        v = v << 6 | ((uint32_t)d & 0x3F);
    }
    static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (v < min_cp[n] || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return gp_fail(p, at, "invalid UTF-8%s", NULL);
    p->pos += (size_t)n;
    *cp = v;
    return true;
}

static bool parse_alternates(gp *p, int rule, bool nested);

static bool parse_uint(gp *p, uint64_t *v) {
    size_t at = p->pos;
    if (peek(p, 0) < '0' || peek(p, 0) > '9') return gp_fail(p, at, "expecting an integer%s", NULL);
    uint64_t x = 0;
    while (peek(p, 0) >= '0' && peek(p, 0) <= '9') {
        x = x * 10 + (uint64_t)(peek(p, 0) - '0');
        if (x > 1000000000ull) x = 1000000000ull; /* saturate; checked against GB_MAX_REPEAT below */
        p->pos++;
    }
    *v = x;
    return true;
}

/* Items of one alternative appended to seq. */
static bool parse_sequence(gp *p, int rule, gb_seq *seq, bool nested) {
    size_t last_start = seq->n;  /* where the item a repetition applies to begins */
    bool have_item = false;
    while (p->pos < p->len && !p->failed) {
        size_t at = p->pos;
        int c = peek(p, 0);
        if (c == '"') {
            p->pos++;
            last_start = seq->n;
            have_item = true;
            while (peek(p, 0) != '"') {
                if (peek(p, 0) < 0) return gp_fail(p, at, "unterminated string literal%s", NULL);
                uint32_t cp;
                if (!parse_char(p, &cp)) return false;
                int cl = gbb_class_single(p->b, cp);
                if (cl < 0 || !gbb_seq_push(p->b, seq, GB_CHAR, cl)) return gp_fail(p, at, "out of memory%s", NULL);
            }
            p->pos++;
        } else if (c == '[') {
            p->pos++;
            bool neg = false;
            if (peek(p, 0) == '^') { neg = true; p->pos++; }
            int cl = gbb_class_begin(p->b, neg, false);
            if (cl < 0) return gp_fail(p, at, "out of memory%s", NULL);
            while (peek(p, 0) != ']') {
                if (peek(p, 0) < 0) return gp_fail(p, at, "unterminated character class%s", NULL);
                uint32_t lo, hi;
                if (!parse_char(p, &lo)) return false;
                hi = lo;
                if (peek(p, 0) == '-' && peek(p, 1) != ']' && peek(p, 1) >= 0) {
                    p->pos++;
                    if (!parse_char(p, &hi)) return false;
                }
                if (!gbb_class_add(p->b, cl, lo, hi)) return gp_fail(p, at, "out of memory%s", NULL);
            }
            p->pos++;
            gbb_class_end(p->b, cl);
            last_start = seq->n;
            have_item = true;
            if (!gbb_seq_push(p->b, seq, GB_CHAR, cl)) return gp_fail(p, at, "out of memory%s", NULL);
        } else if (c == '<' || c == '!') {
            return gp_fail(p, at, "token references (<...>, !<...>) are not supported; write the text as a \"literal\"%s", NULL);
        } else if (is_word(c)) {
            size_t b = p->pos;
            while (is_word(peek(p, 0))) p->pos++;
            int r = gbb_rule_ref(p->b, p->s + b, p->pos - b, b);
            if (r < 0) return gp_fail(p, at, "out of memory%s", NULL);
            last_start = seq->n;
            have_item = true;
            if (!gbb_seq_push(p->b, seq, GB_REF, r)) return gp_fail(p, at, "out of memory%s", NULL);
        } else if (c == '(') {
            p->pos++;
            skip_space(p, true);
            int sub = gbb_rule_new_generated(p->b, rule);
            if (sub < 0) return gp_fail(p, at, "out of memory%s", NULL);
            if (!parse_alternates(p, sub, true)) return false;
            if (peek(p, 0) != ')') return gp_fail(p, p->pos, "expecting ')' to close the group opened at this line's '('%s", NULL);
            p->pos++;
            last_start = seq->n;
            have_item = true;
            if (!gbb_seq_push(p->b, seq, GB_REF, sub)) return gp_fail(p, at, "out of memory%s", NULL);
        } else if (c == '.') {
            p->pos++;
            int cl = gbb_class_begin(p->b, false, true);
            if (cl < 0) return gp_fail(p, at, "out of memory%s", NULL);
            gbb_class_end(p->b, cl);
            last_start = seq->n;
            have_item = true;
            if (!gbb_seq_push(p->b, seq, GB_CHAR, cl)) return gp_fail(p, at, "out of memory%s", NULL);
        } else if (c == '*' || c == '+' || c == '?' || c == '{') {
            if (!have_item) return gp_fail(p, at, "'%s' needs an item before it", c == '*' ? "*" : c == '+' ? "+" : c == '?' ? "?" : "{");
            uint64_t mn = 0, mx = UINT64_MAX;
            p->pos++;
            if (c == '+') mn = 1;
            else if (c == '?') mx = 1;
            else if (c == '{') {
                skip_space(p, nested);
                if (!parse_uint(p, &mn)) return false;
                skip_space(p, nested);
                if (peek(p, 0) == '}') { mx = mn; p->pos++; }
                else if (peek(p, 0) == ',') {
                    p->pos++;
                    skip_space(p, nested);
                    if (peek(p, 0) >= '0' && peek(p, 0) <= '9') {
                        if (!parse_uint(p, &mx)) return false;
                        skip_space(p, nested);
                    }
                    if (peek(p, 0) != '}') return gp_fail(p, p->pos, "expecting '}'%s", NULL);
                    p->pos++;
                } else return gp_fail(p, p->pos, "expecting ',' or '}'%s", NULL);
                if (mn > GB_MAX_REPEAT || (mx != UINT64_MAX && mx > GB_MAX_REPEAT))
                    return gp_fail(p, at, "repetition count above the limit of 10000%s", NULL);
                if (mx < mn) return gp_fail(p, at, "repetition {m,n} with n < m%s", NULL);
            }
            if (!gbb_repeat(p->b, rule, seq, last_start, (int)mn, mx == UINT64_MAX ? -1 : (int)mx))
                return gp_fail(p, at, "%s", slm_last_error());
        } else {
            break;
        }
        skip_space(p, nested);
    }
    return !p->failed;
}

static bool parse_alternates(gp *p, int rule, bool nested) {
    gbb_rule_clear(p->b, rule);
    for (;;) {
        gb_seq *seq = gbb_rule_new_alt(p->b, rule);
        if (!seq) return gp_fail(p, p->pos, "out of memory%s", NULL);
        if (!parse_sequence(p, rule, seq, nested)) return false;
        if (peek(p, 0) != '|') return true;
        p->pos++;
        skip_space(p, true);
    }
}

static bool parse_rule(gp *p) {
    size_t at = p->pos;
    if (!is_word(peek(p, 0))) return gp_fail(p, at, "expecting a rule name%s", NULL);
    while (is_word(peek(p, 0))) p->pos++;
    int r = gbb_rule_define(p->b, p->s + at, p->pos - at, at);
    if (r < 0) return gp_fail(p, at, "out of memory%s", NULL);
    skip_space(p, false);
    if (!(peek(p, 0) == ':' && peek(p, 1) == ':' && peek(p, 2) == '=')) return gp_fail(p, p->pos, "expecting ::=%s", NULL);
    p->pos += 3;
    skip_space(p, true);
    if (!parse_alternates(p, r, false)) return false;
    if (peek(p, 0) == '\r') p->pos += peek(p, 1) == '\n' ? 2 : 1;
    else if (peek(p, 0) == '\n') p->pos++;
    else if (p->pos < p->len) {
        int c = peek(p, 0);
        if (c == ')') return gp_fail(p, p->pos, "unmatched ')'%s", NULL);
        return gp_fail(p, p->pos, "expecting the end of the line (an alternative continues only after '|' or inside ( ))%s", NULL);
    }
    skip_space(p, true);
    return true;
}

slm_status gb_parse(const char *text, size_t len, gb_grammar **out) {
    *out = NULL;
    if (!text && len) return slm_fail(SLM_ERR_INVALID_ARG, "grammar: no text");
    gb_build *b = gbb_new();
    if (!b) return slm_fail(SLM_ERR_NOMEM, "grammar: out of memory");
    gp p = {text, len, 0, b, false};
    skip_space(&p, true);
    while (p.pos < p.len && !p.failed) parse_rule(&p);
    if (p.failed) { gbb_free(b); return SLM_ERR_FORMAT; }
    size_t undef_at;
    const char *undef = gbb_first_undefined(b, &undef_at);
    if (undef) {
        gp_fail(&p, undef_at, "undefined rule '%s'", undef);
        gbb_free(b);
        return SLM_ERR_FORMAT;
    }
    slm_status st = gbb_finish(b, out);
    gbb_free(b);
    return st;
}
