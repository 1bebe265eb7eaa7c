/* Python methods of strings and dicts that templates call (s.strip(),
 * d.items() ...) and the global functions: raise_exception, strftime_now,
 * namespace, range, dict. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "template/jinja_int.h"

static jv S(jbuf *b) { return jv_str(b->p ? b->p : "", b->n); }

static size_t ch_len(const char *p, size_t left) {
    unsigned char c = (unsigned char)*p;
    size_t l = c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
    return l > left ? left : l;
}

/* Is the character at p (len l) one to strip? */
static bool strip_this(const char *p, size_t l, size_t left, jv chars) {
    if (chars.t != JV_STR) {
        size_t sl;
        return u8_is_space_at(p, left, &sl);
    }
    for (size_t i = 0; i < chars.u.s.n;) {
        size_t cl = ch_len(chars.u.s.p + i, chars.u.s.n - i);
        if (cl == l && !memcmp(chars.u.s.p + i, p, l)) return true;
        i += cl;
    }
    return false;
}

jv jstr_strip(jrender *r, jv s, jv chars, int mode, int line) {
    if (chars.t != JV_STR && chars.t != JV_NONE && chars.t != JV_UNDEF)
        jfail(r->e, SLM_ERR_INVALID_ARG, line, "strip arg must be None or str");
    s = jv_as_str(r->a, s);
    const char *p = s.u.s.p;
    size_t a = 0, b = s.u.s.n;
    if (mode != 2)
        while (a < b) {
            size_t l = ch_len(p + a, b - a);
            if (!strip_this(p + a, l, b - a, chars)) break;
            a += l;
        }
    if (mode != 1)
        while (b > a) {
            size_t st = b - 1;
            while (st > a && ((unsigned char)p[st] & 0xc0) == 0x80) st--;
            if (!strip_this(p + st, b - st, b - st, chars)) break;
            b = st;
        }
    return jv_str(p + a, b - a);
}

/* Simple case mapping of one code point: ASCII, Latin-1, Latin Extended-A,
 * Greek and Cyrillic (other scripts pass unchanged). */
static uint32_t to_upper(uint32_t c) {
    if (c >= 'a' && c <= 'z') return c - 32;
    if ((c >= 0xe0 && c <= 0xfe && c != 0xf7)) return c - 32;
    if (c >= 0x100 && c <= 0x17f) {
        if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17e)) return (c & 1) ? c : c - 1;
        if (c == 0x131 || c == 0x138 || c == 0x149 || c == 0x17f) return c;
        return (c & 1) ? c - 1 : c;
    }
    if (c >= 0x3b1 && c <= 0x3c9 && c != 0x3c2) return c - 32;
    if (c >= 0x430 && c <= 0x44f) return c - 32;
    if (c >= 0x450 && c <= 0x45f) return c - 80;
    return c;
}
static uint32_t to_lower(uint32_t c) {
    if (c >= 'A' && c <= 'Z') return c + 32;
    if ((c >= 0xc0 && c <= 0xde && c != 0xd7)) return c + 32;
    if (c >= 0x100 && c <= 0x17f) {
        if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17e)) return (c & 1) ? c + 1 : c;
        if (c == 0x130 || c == 0x131 || c == 0x138 || c == 0x149 || c == 0x17f) return c;
        return (c & 1) ? c : c + 1;
    }
    if (c >= 0x391 && c <= 0x3a9 && c != 0x3a2) return c + 32;
    if (c >= 0x410 && c <= 0x42f) return c + 32;
    if (c >= 0x400 && c <= 0x40f) return c + 80;
    return c;
}
static bool is_cased(uint32_t c) { return to_upper(c) != c || to_lower(c) != c; }

jv jstr_case(jrender *r, jv s, case_mode m) {
    s = jv_as_str(r->a, s);
    jbuf b = { .err = r->e, .arena = r->a };
    bool word_start = true, first = true;
    for (size_t i = 0; i < s.u.s.n;) {
        size_t l = ch_len(s.u.s.p + i, s.u.s.n - i);
        const unsigned char *p = (const unsigned char *)s.u.s.p + i;
        uint32_t c = l == 1 ? p[0] : l == 2 ? (uint32_t)(p[0] & 0x1f) << 6 | (p[1] & 0x3f)
                   : l == 3 ? (uint32_t)(p[0] & 0x0f) << 12 | (uint32_t)(p[1] & 0x3f) << 6 | (p[2] & 0x3f) : 0x110000;
        uint32_t o = c;
        switch (m) {
        case CASE_UPPER: o = to_upper(c); break;
        case CASE_LOWER: o = to_lower(c); break;
        case CASE_CAPITALIZE: o = first ? to_upper(c) : to_lower(c); break;
        case CASE_TITLE_PY:   /* str.title: a cased letter after an uncased one starts a word */
            o = word_start ? to_upper(c) : to_lower(c);
            word_start = !is_cased(c);
            break;
        case CASE_TITLE_JINJA: /* jinja's title: words start after - ( { [ < or whitespace */
            o = word_start ? to_upper(c) : to_lower(c);
            word_start = c == '-' || c == '(' || c == '{' || c == '[' || c == '<' || c == ' ' || (c >= 9 && c <= 13);
            break;
        }
        first = false;
        if (o == c || c >= 0x110000) jb_add(&b, s.u.s.p + i, l);
        else {
            char u[3];
            if (o < 0x80) { u[0] = (char)o; jb_add(&b, u, 1); }
            else { u[0] = (char)(0xc0 | o >> 6); u[1] = (char)(0x80 | (o & 0x3f)); jb_add(&b, u, 2); }
        }
        i += l;
    }
    return jv_str(b.p ? b.p : "", b.n);
}

jv jstr_replace(jrender *r, jv s, jv old, jv new_, int64_t count, int line) {
    if (old.t != JV_STR || new_.t != JV_STR) jfail(r->e, SLM_ERR_INVALID_ARG, line, "replace() arguments must be strings");
    s = jv_as_str(r->a, s);
    jbuf b = { .err = r->e, .arena = r->a, .limit = JINJA_MAX_OUTPUT };
    size_t i = 0;
    int64_t done = 0;
    if (old.u.s.n == 0) {   /* Python inserts `new` between every character */
        while (i <= s.u.s.n) {
            if (count >= 0 && done >= count) { jb_add(&b, s.u.s.p + i, s.u.s.n - i); break; }
            jb_add(&b, new_.u.s.p, new_.u.s.n);
            done++;
            if (i == s.u.s.n) break;
            size_t l = ch_len(s.u.s.p + i, s.u.s.n - i);
            jb_add(&b, s.u.s.p + i, l);
            i += l;
        }
        return S(&b);
    }
    while (i < s.u.s.n) {
        if ((count < 0 || done < count) && s.u.s.n - i >= old.u.s.n && !memcmp(s.u.s.p + i, old.u.s.p, old.u.s.n)) {
            jb_add(&b, new_.u.s.p, new_.u.s.n);
            i += old.u.s.n;
            done++;
        } else {
            jb_addc(&b, s.u.s.p[i++]);
        }
    }
    return S(&b);
}

static jv str_split(jrender *r, jv s, jv sep, int64_t maxsplit, int line) {
    jv out = jv_list_new(r->a, 8);
    const char *p = s.u.s.p;
    size_t n = s.u.s.n, i = 0;
    if (sep.t == JV_NONE || sep.t == JV_UNDEF) {   /* runs of whitespace; no empty pieces */
        size_t sl;
        for (;;) {
            while (i < n && u8_is_space_at(p + i, n - i, &sl)) i += sl;
            if (i >= n) break;
            if (maxsplit >= 0 && (int64_t)out.u.l->n >= maxsplit) {
                size_t e = n;
                while (e > i && u8_is_space_at(p + e - 1, 1, &sl)) e--;
                jv_list_push(r->a, out, jv_str(p + i, e - i));
                break;
            }
            size_t st = i;
            while (i < n && !u8_is_space_at(p + i, n - i, &sl)) i += ch_len(p + i, n - i);
            jv_list_push(r->a, out, jv_str(p + st, i - st));
        }
        return out;
    }
    if (sep.t != JV_STR) jfail(r->e, SLM_ERR_INVALID_ARG, line, "split() separator must be a string");
    if (!sep.u.s.n) jfail(r->e, SLM_ERR_INVALID_ARG, line, "empty separator");
    size_t st = 0;
    while (i + sep.u.s.n <= n) {
        if ((maxsplit < 0 || (int64_t)out.u.l->n < maxsplit) && !memcmp(p + i, sep.u.s.p, sep.u.s.n)) {
            jv_list_push(r->a, out, jv_str(p + st, i - st));
            i += sep.u.s.n;
            st = i;
            jr_step(r, line);
        } else {
            i++;
        }
    }
    jv_list_push(r->a, out, jv_str(p + st, n - st));
    return out;
}

static bool affix(jrender *r, jv s, jv what, bool prefix, int line) {
    if (what.t == JV_LIST) {
        for (size_t i = 0; i < what.u.l->n; i++) if (affix(r, s, what.u.l->v[i], prefix, line)) return true;
        return false;
    }
    if (what.t != JV_STR) jfail(r->e, SLM_ERR_INVALID_ARG, line, "%s arg must be str or a tuple of str", prefix ? "startswith" : "endswith");
    if (what.u.s.n > s.u.s.n) return false;
    return !memcmp(s.u.s.p + (prefix ? 0 : s.u.s.n - what.u.s.n), what.u.s.p, what.u.s.n);
}

static const char *const STR_METHODS[] = { "strip", "lstrip", "rstrip", "startswith", "endswith", "split", "upper",
                                           "lower", "title", "capitalize", "replace", NULL };
static const char *const DICT_METHODS[] = { "items", "keys", "values", "get", NULL };

jv jinja_method(jrender *r, jv obj, const char *name, size_t n) {
    const char *const *names = obj.t == JV_STR ? STR_METHODS : obj.t == JV_DICT && !obj.u.d->ns ? DICT_METHODS : NULL;
    for (int k = 0; names && names[k]; k++)
        if (strlen(names[k]) == n && !memcmp(names[k], name, n)) {
            jv f = { .t = JV_FUNC };
            f.u.fn = ja_alloc(r->a, sizeof *f.u.fn);
            f.u.fn->kind = JF_METHOD;
            f.u.fn->name = names[k];
            f.u.fn->self = obj;
            return f;
        }
    return jv_undef(NULL);
}

/* Positional argument i, or the keyword `kw`, or `def`. */
static jv arg(int argc, const jv *argv, const char **kw, int i, const char *name, jv def) {
    int pos = 0;
    for (int k = 0; k < argc; k++) {
        if (kw[k]) { if (name && !strcmp(kw[k], name)) return argv[k]; continue; }
        if (pos++ == i) return argv[k];
    }
    return def;
}

static int64_t int_arg(jrender *r, jv v, int64_t def, int line) {
    if (v.t == JV_UNDEF || v.t == JV_NONE) return def;
    if (v.t == JV_INT) return v.u.i;
    if (v.t == JV_BOOL) return v.u.b;
    jfail(r->e, SLM_ERR_INVALID_ARG, line, "an integer argument is required, not %s", jv_type_name(v));
}

static jv K(const char *s) { return jv_strz(s); }

static jv call_method(jrender *r, const jfunc *f, int line, int argc, const jv *argv, const char **kw) {
    jv s = f->self, none = jv_none();
    const char *m = f->name;
    jr_work(r, s.t == JV_STR ? s.u.s.n : s.u.d->n * 16, line);
    if (s.t == JV_STR) {
        if (!strcmp(m, "strip")) return jstr_strip(r, s, arg(argc, argv, kw, 0, "chars", none), 0, line);
        if (!strcmp(m, "lstrip")) return jstr_strip(r, s, arg(argc, argv, kw, 0, "chars", none), 1, line);
        if (!strcmp(m, "rstrip")) return jstr_strip(r, s, arg(argc, argv, kw, 0, "chars", none), 2, line);
        if (!strcmp(m, "startswith") || !strcmp(m, "endswith")) {
            if (argc < 1) jfail(r->e, SLM_ERR_INVALID_ARG, line, "%s() takes an argument", m);
            if (argc > 1) jfail(r->e, SLM_ERR_UNSUPPORTED, line, "%s() with start/end positions is not supported", m);
            return jv_bool(affix(r, s, argv[0], m[0] == 's', line));
        }
        if (!strcmp(m, "split"))
            return str_split(r, s, arg(argc, argv, kw, 0, "sep", none), int_arg(r, arg(argc, argv, kw, 1, "maxsplit", none), -1, line), line);
        if (!strcmp(m, "upper")) return jstr_case(r, s, CASE_UPPER);
        if (!strcmp(m, "lower")) return jstr_case(r, s, CASE_LOWER);
        if (!strcmp(m, "title")) return jstr_case(r, s, CASE_TITLE_PY);
        if (!strcmp(m, "capitalize")) return jstr_case(r, s, CASE_CAPITALIZE);
        if (!strcmp(m, "replace")) {
            if (argc < 2) jfail(r->e, SLM_ERR_INVALID_ARG, line, "replace() takes two arguments");
            return jstr_replace(r, s, argv[0], argv[1], int_arg(r, arg(argc, argv, kw, 2, "count", none), -1, line), line);
        }
    } else if (s.t == JV_DICT) {
        if (!strcmp(m, "get")) {
            jv k = arg(argc, argv, kw, 0, NULL, none);
            jv *v = k.t == JV_STR ? jv_dict_get(s, k.u.s.p, k.u.s.n) : NULL;
            return v ? *v : arg(argc, argv, kw, 1, NULL, none);
        }
        jv out = jv_list_new(r->a, s.u.d->n + 1);
        for (size_t i = 0; i < s.u.d->n; i++) {
            jr_step(r, line);
            if (!strcmp(m, "keys")) jv_list_push(r->a, out, s.u.d->k[i]);
            else if (!strcmp(m, "values")) jv_list_push(r->a, out, s.u.d->v[i]);
            else {
                jv pair = jv_list_new(r->a, 2);
                jv_list_push(r->a, pair, s.u.d->k[i]);
                jv_list_push(r->a, pair, s.u.d->v[i]);
                jv_list_push(r->a, out, pair);
            }
        }
        return out;
    }
    jfail(r->e, SLM_ERR_UNSUPPORTED, line, "method '%s' is not supported", m);
}

static jv make_dict(jrender *r, int argc, const jv *argv, const char **kw, bool ns, int line) {
    jv d = jv_dict_new(r->a, 8);
    d.u.d->ns = ns;
    for (int i = 0; i < argc; i++) {
        if (kw[i]) { jv_dict_set(r->a, d, jv_strz(kw[i]), argv[i]); continue; }
        if (argv[i].t != JV_DICT || i != 0) jfail(r->e, SLM_ERR_UNSUPPORTED, line, "positional arguments other than one dict are not supported");
        for (size_t k = 0; k < argv[i].u.d->n; k++) jv_dict_set(r->a, d, argv[i].u.d->k[k], argv[i].u.d->v[k]);
    }
    return d;
}

jv jinja_call_builtin(jrender *r, const jfunc *f, int line, int argc, const jv *argv, const char **kw) {
    if (f->kind == JF_METHOD) return call_method(r, f, line, argc, argv, kw);
    const char *n = f->name;
    if (!strcmp(n, "raise_exception")) {
        jv msg = jv_as_str(r->a, arg(argc, argv, kw, 0, NULL, jv_strz("")));
        jfail(r->e, SLM_ERR_INVALID_ARG, line, "raise_exception: %.*s", (int)(msg.u.s.n > 250 ? 250 : msg.u.s.n), msg.u.s.p);
    }
    if (!strcmp(n, "strftime_now")) {
        jv fmt = arg(argc, argv, kw, 0, NULL, jv_none());
        if (fmt.t != JV_STR) jfail(r->e, SLM_ERR_INVALID_ARG, line, "strftime_now() needs a format string");
        struct tm now;
        if (r->opt->now) now = *r->opt->now;
        else { time_t t = time(NULL); localtime_r(&t, &now); }
        char f0[128], out[256];
        if (fmt.u.s.n >= sizeof f0) jfail(r->e, SLM_ERR_UNSUPPORTED, line, "strftime_now() format too long");
        memcpy(f0, fmt.u.s.p, fmt.u.s.n);
        f0[fmt.u.s.n] = '\0';
        size_t l = strftime(out, sizeof out, f0, &now);
        return jv_str(ja_strndup(r->a, out, l), l);
    }
    if (!strcmp(n, "namespace")) return make_dict(r, argc, argv, kw, true, line);
    if (!strcmp(n, "dict")) return make_dict(r, argc, argv, kw, false, line);
    if (!strcmp(n, "range")) {
        int64_t a = 0, b, st = 1;
        if (argc == 1) b = int_arg(r, argv[0], 0, line);
        else if (argc >= 2) { a = int_arg(r, argv[0], 0, line); b = int_arg(r, argv[1], 0, line); if (argc > 2) st = int_arg(r, argv[2], 1, line); }
        else jfail(r->e, SLM_ERR_INVALID_ARG, line, "range() needs an argument");
        if (st == 0) jfail(r->e, SLM_ERR_INVALID_ARG, line, "range() step must not be zero");
        jv l = jv_list_new(r->a, 8);
        for (int64_t i = a; st > 0 ? i < b : i > b; i += st) {
            jr_step(r, line);
            jv_list_push(r->a, l, jv_int(i));
            if ((st > 0 && i > INT64_MAX - st) || (st < 0 && i < INT64_MIN - st)) break;
        }
        return l;
    }
    jfail(r->e, SLM_ERR_UNSUPPORTED, line, "function '%s' is not supported", n);
}

void jinja_add_globals(jrender *r, jv dict) {
    static const char *const names[] = { "raise_exception", "strftime_now", "namespace", "dict", "range", NULL };
    for (int k = 0; names[k]; k++) {
        jv f = { .t = JV_FUNC };
        f.u.fn = ja_alloc(r->a, sizeof *f.u.fn);
        f.u.fn->kind = JF_BUILTIN;
        f.u.fn->name = names[k];
        jv_dict_set(r->a, dict, K(names[k]), f);
    }
}
