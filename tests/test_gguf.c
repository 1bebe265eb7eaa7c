/* GGUF reader: the fixtures written by the `gguf` Python package
 * (scripts/gen_gguf_fixtures.py) must read back exactly as their sidecars
 * say; corrupt inputs (mutated fixtures and hand-built files) must fail with
 * a message naming the problem, never crash or over-read (run under ASan:
 * every parse gets a buffer of exactly the input's size). */
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/status.h"
#include "gguf/gguf.h"
#include "testlib.h"

#define FIX_DIR "tests/fixtures/gguf/"

static bool verbose;

/* ---- little helpers ---- */

static uint64_t rd_le(const uint8_t *p, unsigned n) {
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static void wr_le(uint8_t *p, uint64_t v, unsigned n) {
    for (unsigned i = 0; i < n; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t fnv1a64(const uint8_t *p, uint64_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (uint64_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

/* "-" is the empty string; otherwise hex pairs. Returns the byte count. */
static size_t unhex(const char *tok, char *out, size_t cap) {
    if (strcmp(tok, "-") == 0) return 0;
    size_t n = strlen(tok) / 2;
    if (n > cap) n = cap;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        sscanf(tok + 2 * i, "%2x", &v);
        out[i] = (char)v;
    }
    return n;
}

static bool str_is_hex(gguf_str s, const char *tok) {
    char buf[256];
    size_t n = unhex(tok, buf, sizeof buf);
    return s.len == n && (n == 0 || memcmp(s.ptr, buf, n) == 0);
}

static uint32_t vtype_from_name(const char *name) {
    for (uint32_t t = 0; t <= GGUF_T_F64; t++)
        if (strcmp(gguf_vtype_name(t), name) == 0) return t;
    return UINT32_MAX;
}

/* Parses a copy of exactly n bytes (so ASan sees any over-read). On success
 * *copy must be freed after gguf_close. */
static slm_status parse_copy(const void *data, size_t n, gguf_file **f, uint8_t **copy) {
    *copy = malloc(n ? n : 1);
    memcpy(*copy, data, n);
    slm_clear_error();
    slm_status st = gguf_parse(*copy, n, f);
    if (st != SLM_OK) { free(*copy); *copy = NULL; }
    return st;
}

/* Expects the input to be rejected as a format error whose message holds kw. */
static void expect_fail_at(int line, const void *data, size_t n, const char *kw) {
    gguf_file *f = NULL;
    uint8_t *copy;
    slm_status st = parse_copy(data, n, &f, &copy);
    const char *msg = slm_last_error();
    if (verbose) fprintf(stderr, "  [line %d] %s\n", line, msg);
    CHECKF(st == SLM_ERR_FORMAT && f == NULL, "line %d: status %d, message '%s'", line, st, msg);
    CHECKF(strstr(msg, kw) != NULL, "line %d: message '%s' lacks '%s'", line, msg, kw);
    if (st == SLM_OK) { gguf_close(f); free(copy); }
}
#define EXPECT_FAIL(d, n, kw) expect_fail_at(__LINE__, d, n, kw)

/* ---- the sidecar ---- */

typedef struct expected {
    char *text;         /* owns the tokens */
    char **tok;         /* every token, lines separated by NULL entries */
    size_t n_tok;
} expected;

static bool load_expected(const char *path, expected *e) {
    size_t len;
    e->text = test_read_file(path, &len);
    if (!e->text) return false;
    e->tok = malloc((len + 2) * sizeof *e->tok);
    e->n_tok = 0;
    for (char *line = strtok(e->text, "\n"); line; line = strtok(NULL, "\n")) {
        char *hash = strchr(line, '#');
        if (hash) *hash = '\0';
        /* tokens of this line: split in place */
        size_t first = e->n_tok;
        for (char *p = line; *p;) {
            while (*p == ' ') *p++ = '\0';
            if (!*p) break;
            e->tok[e->n_tok++] = p;
            while (*p && *p != ' ') p++;
        }
        if (e->n_tok > first) e->tok[e->n_tok++] = NULL;
    }
    return true;
}

/* The value of a "name N" line. */
static uint64_t expected_num(const expected *e, const char *name) {
    for (size_t i = 0; i + 1 < e->n_tok; i++)
        if (e->tok[i] && (i == 0 || !e->tok[i - 1]) && strcmp(e->tok[i], name) == 0)
            return strtoull(e->tok[i + 1], NULL, 10);
    fprintf(stderr, "sidecar lacks '%s'\n", name);
    test_failures++;
    return 0;
}

/* Compares one decoded scalar with its sidecar token. */
static bool scalar_ok(uint32_t t, const uint8_t *raw, const char *tok) {
    switch (t) {
    case GGUF_T_U8: case GGUF_T_U16: case GGUF_T_U32: case GGUF_T_U64: {
        static const unsigned sz[] = { [GGUF_T_U8] = 1, [GGUF_T_U16] = 2, [GGUF_T_U32] = 4, [GGUF_T_U64] = 8 };
        return rd_le(raw, sz[t]) == strtoull(tok, NULL, 10);
    }
    case GGUF_T_I8: return (int8_t)raw[0] == strtoll(tok, NULL, 10);
    case GGUF_T_I16: return (int16_t)rd_le(raw, 2) == strtoll(tok, NULL, 10);
    case GGUF_T_I32: return (int32_t)rd_le(raw, 4) == strtoll(tok, NULL, 10);
    case GGUF_T_I64: return (int64_t)rd_le(raw, 8) == strtoll(tok, NULL, 10);
    case GGUF_T_BOOL: return raw[0] == (uint8_t)atoi(tok);
    case GGUF_T_F32: { uint32_t u = (uint32_t)rd_le(raw, 4); float v; memcpy(&v, &u, 4); return (double)v == strtod(tok, NULL); }
    case GGUF_T_F64: { uint64_t u = rd_le(raw, 8); double v; memcpy(&v, &u, 8); return v == strtod(tok, NULL); }
    }
    return false;
}

static unsigned elem_size(uint32_t t) {
    static const unsigned sz[] = { 1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8 };
    return t <= GGUF_T_F64 ? sz[t] : 0;
}

/* Walks a nested array's raw bytes against "[ TYPE COUNT ELEM... ]" tokens;
 * returns the position after it, or NULL on a mismatch. */
static const uint8_t *check_raw_array(const uint8_t *p, char ***tokp, uint32_t et, uint64_t n) {
    char **tok = *tokp;
    for (uint64_t i = 0; i < n; i++) {
        if (et == GGUF_T_ARRAY) {
            if (strcmp(*tok++, "[") != 0) return NULL;
            uint32_t sub_t = (uint32_t)rd_le(p, 4);
            uint64_t sub_n = rd_le(p + 4, 8);
            p += 12;
            if (sub_t != vtype_from_name(*tok++) || sub_n != strtoull(*tok++, NULL, 10)) return NULL;
            p = check_raw_array(p, &tok, sub_t, sub_n);
            if (!p || strcmp(*tok++, "]") != 0) return NULL;
        } else if (et == GGUF_T_STRING) {
            gguf_str s = { (const char *)p + 8, rd_le(p, 8) };
            if (!str_is_hex(s, *tok++)) return NULL;
            p += 8 + s.len;
        } else {
            if (!scalar_ok(et, p, *tok++)) return NULL;
            p += elem_size(et);
        }
    }
    *tokp = tok;
    return p;
}

/* Checks the array kv against "TYPE COUNT ELEM..." through the accessors. */
static void check_array(const gguf_kv *kv, char **tok, const char *key) {
    uint32_t et = vtype_from_name(tok[0]);
    uint64_t n = strtoull(tok[1], NULL, 10);
    CHECKF(kv->arr_type == et && kv->arr_n == n, "%s: array of %s x %" PRIu64, key,
           gguf_vtype_name(kv->arr_type), kv->arr_n);
    if (kv->arr_type != et || kv->arr_n != n) return;
    tok += 2;
    if (et == GGUF_T_ARRAY) {
        CHECKF(kv->strs == NULL, "%s", key);
        CHECKF(check_raw_array(kv->arr_data, &tok, et, n) != NULL, "%s: nested array mismatch", key);
        return;
    }
    for (uint64_t i = 0; i < n; i++, tok++) {
        if (et == GGUF_T_STRING) {
            CHECKF(str_is_hex(kv->strs[i], *tok), "%s[%" PRIu64 "]", key, i);
            CHECK(gguf_arr_f64(kv, i) == 0 && gguf_arr_i64(kv, i) == 0);
            continue;
        }
        CHECKF(scalar_ok(et, kv->arr_data + i * elem_size(et), *tok), "%s[%" PRIu64 "] raw", key, i);
        if (et == GGUF_T_F32 || et == GGUF_T_F64) {
            CHECKF(gguf_arr_f64(kv, i) == strtod(*tok, NULL), "%s[%" PRIu64 "] f64", key, i);
            CHECK(gguf_arr_i64(kv, i) == 0);
        } else if (et == GGUF_T_U64) {
            uint64_t v = strtoull(*tok, NULL, 10);
            CHECKF(gguf_arr_i64(kv, i) == (v > INT64_MAX ? INT64_MAX : (int64_t)v), "%s[%" PRIu64 "]", key, i);
            CHECKF(gguf_arr_f64(kv, i) == (double)v, "%s[%" PRIu64 "]", key, i);
        } else {
            int64_t v = strtoll(*tok, NULL, 10);
            CHECKF(gguf_arr_i64(kv, i) == v, "%s[%" PRIu64 "] = %" PRId64, key, i, gguf_arr_i64(kv, i));
            CHECKF(gguf_arr_f64(kv, i) == (double)v, "%s[%" PRIu64 "]", key, i);
        }
    }
    /* out of range reads give 0 rather than reading past the array */
    CHECK(gguf_arr_i64(kv, n) == 0 && gguf_arr_f64(kv, n) == 0);
}

static void check_kv(const gguf_file *f, char **tok) {
    const char *key = tok[0];
    uint32_t t = vtype_from_name(tok[1]);
    const gguf_kv *kv = gguf_find(f, key);
    CHECKF(kv != NULL, "key %s missing", key);
    if (!kv) return;
    CHECKF(kv->type == t, "%s: type %s, expected %s", key, gguf_vtype_name(kv->type), tok[1]);
    if (kv->type != t) return;
    const char *v = tok[2];
    int64_t i64;
    double f64;
    bool b;
    gguf_str s;
    switch (t) {
    case GGUF_T_U8: case GGUF_T_U16: case GGUF_T_U32: case GGUF_T_U64: {
        uint64_t u = strtoull(v, NULL, 10);
        CHECKF(kv->num.u == u, "%s", key);
        bool fits = u <= INT64_MAX;
        CHECKF(gguf_get_i64(f, key, &i64) == fits && (!fits || i64 == (int64_t)u), "%s get_i64", key);
        CHECK(!gguf_get_f64(f, key, &f64) && !gguf_get_bool(f, key, &b) && !gguf_get_str(f, key, &s));
        break;
    }
    case GGUF_T_I8: case GGUF_T_I16: case GGUF_T_I32: case GGUF_T_I64:
        CHECKF(kv->num.i == strtoll(v, NULL, 10), "%s", key);
        CHECKF(gguf_get_i64(f, key, &i64) && i64 == strtoll(v, NULL, 10), "%s get_i64", key);
        CHECK(!gguf_get_f64(f, key, &f64) && !gguf_get_bool(f, key, &b));
        break;
    case GGUF_T_F32: case GGUF_T_F64:
        CHECKF(gguf_get_f64(f, key, &f64) && f64 == strtod(v, NULL), "%s get_f64", key);
        CHECK(!gguf_get_i64(f, key, &i64) && !gguf_get_str(f, key, &s));
        break;
    case GGUF_T_BOOL:
        CHECKF(gguf_get_bool(f, key, &b) && b == (atoi(v) != 0), "%s get_bool", key);
        CHECK(!gguf_get_i64(f, key, &i64) && !gguf_get_f64(f, key, &f64));
        break;
    case GGUF_T_STRING:
        CHECKF(gguf_get_str(f, key, &s) && str_is_hex(s, v), "%s get_str", key);
        CHECK(str_is_hex(kv->str, v));
        CHECK(!gguf_get_i64(f, key, &i64));
        break;
    case GGUF_T_ARRAY:
        CHECK(!gguf_get_i64(f, key, &i64) && !gguf_get_str(f, key, &s) && !gguf_get_f64(f, key, &f64));
        check_array(kv, tok + 2, key);
        break;
    }
}

static void check_tensor(const gguf_file *f, char **tok) {
    const char *name = tok[0];
    const gguf_tensor *t = gguf_find_tensor(f, name);
    CHECKF(t != NULL, "tensor %s missing", name);
    if (!t) return;
    CHECKF(t->type == strtoul(tok[1], NULL, 10), "%s type %u", name, t->type);
    uint32_t nd = (uint32_t)strtoul(tok[2], NULL, 10);
    CHECKF(t->n_dims == nd, "%s n_dims %u", name, t->n_dims);
    for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++) {
        uint64_t want = d < nd ? strtoull(tok[3 + d], NULL, 10) : 1;
        CHECKF(t->ne[d] == want, "%s ne[%u] = %" PRIu64, name, d, t->ne[d]);
    }
    tok += 3 + nd;
    CHECKF(t->offset == strtoull(tok[0], NULL, 10), "%s offset %" PRIu64, name, t->offset);
    CHECKF(t->nbytes == strtoull(tok[1], NULL, 10), "%s nbytes %" PRIu64, name, t->nbytes);
    CHECK((const uint8_t *)t->data == f->base + f->data_offset + t->offset);
    CHECK(t->offset % f->alignment == 0);
    CHECKF(fnv1a64(t->data, t->nbytes) == strtoull(tok[2], NULL, 16), "%s data checksum", name);
}

/* Checks a parsed file against its whole sidecar. */
static void check_against(const gguf_file *f, const expected *e) {
    CHECK(f->size == expected_num(e, "size"));
    CHECK(f->version == expected_num(e, "version"));
    CHECK(f->alignment == expected_num(e, "alignment"));
    CHECK(f->data_offset == expected_num(e, "data_offset"));
    CHECK(f->n_kv == expected_num(e, "n_kv"));
    CHECK(f->n_tensors == expected_num(e, "n_tensors"));
    uint64_t kv_i = 0, t_i = 0;
    for (size_t i = 0; i < e->n_tok; i++) {
        if (!e->tok[i] || (i > 0 && e->tok[i - 1])) continue;  /* line starts only */
        if (strcmp(e->tok[i], "kv") == 0) {
            /* same order as written */
            CHECKF(kv_i < f->n_kv && gguf_str_eq(f->kv[kv_i].key, e->tok[i + 1]), "kv %" PRIu64 " order", kv_i);
            check_kv(f, e->tok + i + 1);
            kv_i++;
        } else if (strcmp(e->tok[i], "tensor") == 0) {
            CHECKF(t_i < f->n_tensors && gguf_str_eq(f->tensors[t_i].name, e->tok[i + 1]), "tensor %" PRIu64 " order", t_i);
            check_tensor(f, e->tok + i + 1);
            t_i++;
        }
    }
    CHECK(kv_i == f->n_kv && t_i == f->n_tensors);
}

/* End of the furthest tensor's data: shorter inputs must be rejected. */
static uint64_t data_end(const gguf_file *f) {
    uint64_t end = f->data_offset;
    for (uint64_t i = 0; i < f->n_tensors; i++)
        if (f->data_offset + f->tensors[i].offset + f->tensors[i].nbytes > end)
            end = f->data_offset + f->tensors[i].offset + f->tensors[i].nbytes;
    return end;
}

/* ---- a byte builder for hand-made files ---- */

typedef struct bytes { uint8_t *p; size_t n, cap; } bytes;

static void put(bytes *b, const void *d, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
    }
    if (n) memcpy(b->p + b->n, d, n);
    b->n += n;
}
static void put_u32(bytes *b, uint32_t v) { uint8_t t[4]; wr_le(t, v, 4); put(b, t, 4); }
static void put_u64(bytes *b, uint64_t v) { uint8_t t[8]; wr_le(t, v, 8); put(b, t, 8); }
static void put_str(bytes *b, const char *s) { put_u64(b, strlen(s)); put(b, s, strlen(s)); }
static void put_header(bytes *b, uint64_t n_tensors, uint64_t n_kv) {
    put(b, "GGUF", 4);
    put_u32(b, 3);
    put_u64(b, n_tensors);
    put_u64(b, n_kv);
}
static void pad_to(bytes *b, size_t align) { while (b->n % align) put(b, "", 1); }
static void put_tensor_info(bytes *b, const char *name, uint32_t n_dims, const uint64_t *ne,
                            uint32_t type, uint64_t offset) {
    put_str(b, name);
    put_u32(b, n_dims);
    for (uint32_t d = 0; d < n_dims; d++) put_u64(b, ne[d]);
    put_u32(b, type);
    put_u64(b, offset);
}

/* `depth` arrays nested in one another around one u8. */
static void put_nested(bytes *b, int depth) {
    for (int d = 1; d < depth; d++) { put_u32(b, GGUF_T_ARRAY); put_u64(b, 1); }
    put_u32(b, GGUF_T_U8);
    put_u64(b, 1);
    put(b, "\x07", 1);
}

/* ---- tests ---- */

/* Offset of the first occurrence of a length-prefixed string in the file. */
static size_t find_str(const uint8_t *d, size_t n, const char *s) {
    size_t len = strlen(s);
    for (size_t i = 8; i + len <= n; i++)
        if (memcmp(d + i, s, len) == 0 && rd_le(d + i - 8, 8) == len) return i;
    fprintf(stderr, "fixture lacks '%s'\n", s);
    test_failures++;
    return 0;
}

static void test_fixture(const char *name) {
    char gg[256], ex[256];
    snprintf(gg, sizeof gg, FIX_DIR "%s.gguf", name);
    snprintf(ex, sizeof ex, FIX_DIR "%s.expected", name);
    expected e;
    size_t n;
    uint8_t *data = (uint8_t *)test_read_file(gg, &n);
    CHECKF(data != NULL && load_expected(ex, &e), "cannot read %s (run from the repo root)", gg);
    if (!data) return;

    /* from a buffer */
    gguf_file *f;
    uint8_t *copy;
    slm_status st = parse_copy(data, n, &f, &copy);
    CHECKF(st == SLM_OK, "%s: %s", gg, slm_last_error());
    if (st == SLM_OK) {
        CHECK(f->map == NULL && f->base == copy);
        check_against(f, &e);
        CHECK(gguf_find(f, "no.such.key") == NULL && gguf_find_tensor(f, "no.such.tensor") == NULL);
        int64_t i64;
        CHECK(!gguf_get_i64(f, "no.such.key", &i64));
        uint64_t end = data_end(f);
        gguf_close(f);
        free(copy);

        /* every truncation short of the last tensor's end fails cleanly;
         * from there on the data is whole and only trailing padding is missing */
        int bad = 0;
        for (size_t len = 0; len < n; len++) {
            gguf_file *g = NULL;
            st = parse_copy(data, len, &g, &copy);
            const char *msg = slm_last_error();
            if (len < end) {
                bool ok = st == SLM_ERR_FORMAT && (strstr(msg, "truncated") || strstr(msg, "out of bounds"));
                if (!ok && bad++ < 5) fprintf(stderr, "%s truncated to %zu: %d '%s'\n", name, len, st, msg);
                CHECK(ok);
                if (verbose && len % 97 == 0) fprintf(stderr, "  [%zu] %s\n", len, msg);
            } else {
                CHECKF(st == SLM_OK, "%s truncated to %zu (data ends at %" PRIu64 "): %s", name, len, end, msg);
            }
            if (st == SLM_OK) { gguf_close(g); free(copy); }
        }
    }

    /* through the mmap path */
    st = gguf_open(gg, &f);
    CHECKF(st == SLM_OK, "gguf_open %s: %s", gg, slm_last_error());
    if (st == SLM_OK) {
        CHECK(f->map != NULL && f->base == f->map);
        check_against(f, &e);
        gguf_close(f);
    }

    /* version 2 has the same layout */
    wr_le(data + 4, 2, 4);
    st = parse_copy(data, n, &f, &copy);
    CHECKF(st == SLM_OK, "v2: %s", slm_last_error());
    if (st == SLM_OK) { CHECK(f->version == 2); gguf_close(f); free(copy); }

    free(data);
    free(e.text);
    free(e.tok);
}

/* Mutations of the all_types fixture, one fault each. */
static void test_mutations(void) {
    size_t n;
    uint8_t *good = (uint8_t *)test_read_file(FIX_DIR "all_types.gguf", &n);
    CHECK(good != NULL);
    if (!good) return;
    uint8_t *d = malloc(n);
#define RESET() memcpy(d, good, n)
    /* header */
    RESET(); d[0] = 'X'; EXPECT_FAIL(d, n, "bad magic");
    RESET(); memcpy(d, "GGML", 4); EXPECT_FAIL(d, n, "not a GGUF file");
    RESET(); wr_le(d + 4, 1, 4); EXPECT_FAIL(d, n, "unsupported GGUF version 1");
    RESET(); wr_le(d + 4, 4, 4); EXPECT_FAIL(d, n, "unsupported GGUF version 4");
    RESET(); wr_le(d + 4, 0x03000000u, 4); EXPECT_FAIL(d, n, "big-endian");
    RESET(); wr_le(d + 8, 1ull << 63, 8); EXPECT_FAIL(d, n, "tensors");
    RESET(); wr_le(d + 8, UINT64_MAX, 8); EXPECT_FAIL(d, n, "more than 2^64");
    RESET(); wr_le(d + 16, 1ull << 63, 8); EXPECT_FAIL(d, n, "keys");
    RESET(); wr_le(d + 16, UINT64_MAX / 13 + 1, 8); EXPECT_FAIL(d, n, "more than 2^64");
    RESET(); wr_le(d + 16, 1000, 8); EXPECT_FAIL(d, n, "truncated");
    /* n_kv one too many: the first tensor info is read as a key */
    RESET(); wr_le(d + 16, rd_le(d + 16, 8) + 1, 8);
    {
        gguf_file *f; uint8_t *c;
        slm_status st = parse_copy(d, n, &f, &c);
        CHECK(st == SLM_ERR_FORMAT);
        if (st == SLM_OK) { gguf_close(f); free(c); }
    }

    /* strings and arrays */
    RESET(); wr_le(d + 24, 1ull << 63, 8); EXPECT_FAIL(d, n, "string of length 9223372036854775808");
    RESET(); wr_le(d + 24, UINT64_MAX, 8); EXPECT_FAIL(d, n, "reading key 1 of 36");
    size_t k = find_str(good, n, "test.string");
    RESET(); wr_le(d + k + 11 + 4, 1ull << 62, 8); EXPECT_FAIL(d, n, "value of key 'test.string'");
    k = find_str(good, n, "arr.str");   /* key, type u32, elem type u32, count u64 */
    RESET(); wr_le(d + k + 7 + 8, 1ull << 63, 8); EXPECT_FAIL(d, n, "array of 9223372036854775808 string");
    RESET(); wr_le(d + k + 7 + 8, 1000, 8); EXPECT_FAIL(d, n, "truncated");
    /* the third string's length (after "a" and "") made huge */
    RESET(); wr_le(d + k + 7 + 16 + 9 + 8, UINT64_MAX, 8); EXPECT_FAIL(d, n, "element 3 of 5 of key 'arr.str'");
    k = find_str(good, n, "arr.u32");
    RESET(); wr_le(d + k + 7 + 8, 1ull << 62, 8); EXPECT_FAIL(d, n, "more than 2^64");
    RESET(); wr_le(d + k + 7 + 8, 1ull << 40, 8); EXPECT_FAIL(d, n, "array of 1099511627776 u32");
    RESET(); wr_le(d + k + 7 + 4, 99, 4); EXPECT_FAIL(d, n, "unknown value type 99");
    k = find_str(good, n, "arr.nested");
    RESET(); wr_le(d + k + 10 + 8, 1ull << 61, 8); EXPECT_FAIL(d, n, "array");
    /* the first inner array's element type, then its count */
    RESET(); wr_le(d + k + 10 + 16, 77, 4); EXPECT_FAIL(d, n, "unknown value type 77");
    RESET(); wr_le(d + k + 10 + 20, 1ull << 62, 8); EXPECT_FAIL(d, n, "arr.nested");
    k = find_str(good, n, "test.u8");
    RESET(); wr_le(d + k + 7, 13, 4); EXPECT_FAIL(d, n, "unknown value type 13");
    RESET(); wr_le(d + k + 7, 0xffffffffu, 4); EXPECT_FAIL(d, n, "'test.u8' has unknown value type 4294967295");
    /* duplicates */
    k = find_str(good, n, "test.i8");
    RESET(); d[k + 5] = 'u'; EXPECT_FAIL(d, n, "key 'test.u8' appears twice");
    k = find_str(good, n, "f16.mat");
    RESET(); memcpy(d + k, "f32.vec", 7); EXPECT_FAIL(d, n, "tensor 'f32.vec' appears twice");

    /* alignment */
    k = find_str(good, n, "general.alignment");
    RESET(); wr_le(d + k + 17 + 4, 0, 4); EXPECT_FAIL(d, n, "power of two");
    RESET(); wr_le(d + k + 17 + 4, 3, 4); EXPECT_FAIL(d, n, "alignment 3 is not");
    RESET(); wr_le(d + k + 17, GGUF_T_I32, 4); EXPECT_FAIL(d, n, "expected u32");
    /* a smaller alignment still divides every offset, but moves the data */
    RESET(); wr_le(d + k + 17 + 4, 32, 4);
    {
        gguf_file *f; uint8_t *c;
        slm_status st = parse_copy(d, n, &f, &c);
        /* the tensor infos end at 1869: the data section now starts at 1888 */
        CHECKF(st == SLM_OK, "%s", slm_last_error());
        if (st == SLM_OK) {
            CHECK(f->alignment == 32 && f->data_offset == 1888);
            CHECK((const uint8_t *)f->tensors[1].data == f->base + 1888 + 64);
            gguf_close(f); free(c);
        }
    }
    RESET(); wr_le(d + k + 17 + 4, 1u << 31, 4); EXPECT_FAIL(d, n, "out of bounds");

    /* tensor infos: name, n_dims, ne[n_dims], type, offset */
    k = find_str(good, n, "f32.vec") + 7;   /* 1-D, F32, offset 0 */
    RESET(); wr_le(d + k, 0, 4); EXPECT_FAIL(d, n, "'f32.vec' has n_dims 0");
    RESET(); wr_le(d + k, 5, 4); EXPECT_FAIL(d, n, "n_dims 5");
    RESET(); wr_le(d + k + 4, 1ull << 63, 8); EXPECT_FAIL(d, n, "negative");
    RESET(); wr_le(d + k + 4, 1000, 8); EXPECT_FAIL(d, n, "'f32.vec' data [1920, 5920) is out of bounds");
    RESET(); wr_le(d + k + 4, 1ull << 62, 8); EXPECT_FAIL(d, n, "overflows the byte size");
    RESET(); wr_le(d + k + 12, 99, 4); EXPECT_FAIL(d, n, "tensor 'f32.vec' has unknown type 99");
    RESET(); wr_le(d + k + 12, 4, 4); EXPECT_FAIL(d, n, "unknown type 4");   /* Q4_2, removed from ggml */
    RESET(); wr_le(d + k + 16, 4, 8); EXPECT_FAIL(d, n, "offset 4 is not a multiple of the alignment 64");
    RESET(); wr_le(d + k + 16, 64 * 1000, 8); EXPECT_FAIL(d, n, "'f32.vec' data [65920, 65948) is out of bounds (file size 3008)");
    RESET(); wr_le(d + k + 16, UINT64_MAX - 63, 8); EXPECT_FAIL(d, n, "out of bounds");
    k = find_str(good, n, "f32.4d") + 6;    /* ne = 5 2 3 2 */
    RESET(); for (int i = 0; i < 2; i++) wr_le(d + k + 4 + 8 * i, 1ull << 31, 8);
    wr_le(d + k + 20, 1, 8); wr_le(d + k + 28, 1, 8); EXPECT_FAIL(d, n, "overflows the byte size");
    RESET(); for (int i = 0; i < 4; i++) wr_le(d + k + 4 + 8 * i, 1ull << 32, 8);
    EXPECT_FAIL(d, n, "overflows the element count");
    RESET(); wr_le(d + k + 4, 1ull << 62, 8); EXPECT_FAIL(d, n, "overflows the element count");
    RESET(); wr_le(d + k + 4 + 8, 0, 8); /* zero-size is allowed */
    {
        gguf_file *f; uint8_t *c;
        slm_status st = parse_copy(d, n, &f, &c);
        CHECKF(st == SLM_OK, "%s", slm_last_error());
        if (st == SLM_OK) {
            const gguf_tensor *t = gguf_find_tensor(f, "f32.4d");
            CHECK(t && t->nbytes == 0 && t->ne[1] == 0);
            gguf_close(f); free(c);
        }
    }
    k = find_str(good, n, "q8_0.mat") + 8;  /* ne = 64 2 */
    RESET(); wr_le(d + k + 4, 48, 8); EXPECT_FAIL(d, n, "not a multiple of the block size 32 of type q8_0");
    RESET(); wr_le(d + k + 12, 1000, 8); EXPECT_FAIL(d, n, "'q8_0.mat' data [2368, 70368) is out of bounds");
    RESET(); wr_le(d + k + 4, 1ull << 62, 8); wr_le(d + k + 12, 1, 8); EXPECT_FAIL(d, n, "out of bounds");
    k = find_str(good, n, "q4_K.blk") + 8;
    RESET(); wr_le(d + k + 4, 128, 8); EXPECT_FAIL(d, n, "block size 256 of type q4_K");
#undef RESET
    free(d);
    free(good);
}

/* Files built by hand: shapes gguf-py will not write. */
static void test_hand_built(void) {
    gguf_file *f;
    uint8_t *c;
    slm_status st;

    /* tiny inputs */
    EXPECT_FAIL("", 0, "truncated at byte 0");
    EXPECT_FAIL("GGU", 3, "truncated");
    EXPECT_FAIL("GGUF\x03\0\0\0", 8, "truncated at byte 8");
    st = gguf_parse(NULL, 0, &f);
    CHECK(st == SLM_ERR_FORMAT && f == NULL);

    /* empty file body: no kvs, no tensors, no padding needed */
    bytes b = {0};
    put_header(&b, 0, 0);
    st = parse_copy(b.p, b.n, &f, &c);
    CHECKF(st == SLM_OK, "%s", slm_last_error());
    if (st == SLM_OK) {
        CHECK(f->n_kv == 0 && f->n_tensors == 0 && f->alignment == 32 && f->data_offset == 32);
        CHECK(gguf_find(f, "x") == NULL && gguf_find_tensor(f, "x") == NULL);
        gguf_close(f); free(c);
    }

    /* empty arrays, an empty key, nested arrays exactly at the depth limit,
     * a non-0/1 bool */
    b.n = 0;
    put_header(&b, 0, 6);
    put_str(&b, "e.u32"); put_u32(&b, GGUF_T_ARRAY); put_u32(&b, GGUF_T_U32); put_u64(&b, 0);
    put_str(&b, "e.str"); put_u32(&b, GGUF_T_ARRAY); put_u32(&b, GGUF_T_STRING); put_u64(&b, 0);
    put_str(&b, "e.nest"); put_u32(&b, GGUF_T_ARRAY); put_u32(&b, GGUF_T_ARRAY); put_u64(&b, 2);
    put_u32(&b, GGUF_T_STRING); put_u64(&b, 0); put_u32(&b, GGUF_T_ARRAY); put_u64(&b, 0);
    put_str(&b, ""); put_u32(&b, GGUF_T_U8); put(&b, "\x05", 1);
    put_str(&b, "deep"); put_u32(&b, GGUF_T_ARRAY); put_nested(&b, 8);
    put_str(&b, "b"); put_u32(&b, GGUF_T_BOOL); put(&b, "\x02", 1);
    st = parse_copy(b.p, b.n, &f, &c);
    CHECKF(st == SLM_OK, "%s", slm_last_error());
    if (st == SLM_OK) {
        const gguf_kv *kv = gguf_find(f, "e.str");
        CHECK(kv && kv->arr_n == 0 && kv->arr_type == GGUF_T_STRING);
        kv = gguf_find(f, "e.nest");
        CHECK(kv && kv->arr_n == 2 && kv->arr_type == GGUF_T_ARRAY);
        int64_t v;
        CHECK(gguf_get_i64(f, "", &v) && v == 5);
        bool bv;
        CHECK(gguf_get_bool(f, "b", &bv) && bv);
        gguf_close(f); free(c);
    }

    /* one level deeper than allowed */
    b.n = 0;
    put_header(&b, 0, 1);
    put_str(&b, "deep"); put_u32(&b, GGUF_T_ARRAY); put_nested(&b, 9);
    EXPECT_FAIL(b.p, b.n, "nested deeper than 8");
    /* and very deep: must not recurse without bound */
    b.n = 0;
    put_header(&b, 0, 1);
    put_str(&b, "deep"); put_u32(&b, GGUF_T_ARRAY); put_nested(&b, 100000);
    EXPECT_FAIL(b.p, b.n, "nested deeper");

    /* many nested empty arrays: validated without allocating */
    b.n = 0;
    put_header(&b, 0, 1);
    put_str(&b, "many"); put_u32(&b, GGUF_T_ARRAY); put_u32(&b, GGUF_T_ARRAY); put_u64(&b, 10000);
    for (int i = 0; i < 10000; i++) { put_u32(&b, GGUF_T_U64); put_u64(&b, 0); }
    st = parse_copy(b.p, b.n, &f, &c);
    CHECKF(st == SLM_OK, "%s", slm_last_error());
    if (st == SLM_OK) { gguf_close(f); free(c); }

    /* tensors: zero-size ones, each type's block size, 4 dims */
    b.n = 0;
    put_header(&b, 4, 0);
    put_tensor_info(&b, "z", 1, (uint64_t[]){0}, 0, 0);
    put_tensor_info(&b, "q", 2, (uint64_t[]){32, 0}, 8, 0);
    put_tensor_info(&b, "k", 4, (uint64_t[]){256, 1, 1, 1}, 14, 0);
    put_tensor_info(&b, "b", 1, (uint64_t[]){3}, 30, 224);
    pad_to(&b, 32);
    size_t data_at = b.n;
    for (int i = 0; i < 256; i++) put(&b, "\xab", 1);
    st = parse_copy(b.p, b.n, &f, &c);
    CHECKF(st == SLM_OK, "%s", slm_last_error());
    if (st == SLM_OK) {
        CHECK(f->data_offset == data_at);
        const gguf_tensor *t = gguf_find_tensor(f, "z");
        CHECK(t && t->nbytes == 0 && t->n_dims == 1 && t->ne[1] == 1);
        t = gguf_find_tensor(f, "q");
        CHECK(t && t->nbytes == 0);
        t = gguf_find_tensor(f, "k");
        CHECK(t && t->nbytes == 210 && t->n_dims == 4);
        t = gguf_find_tensor(f, "b");
        CHECK(t && t->nbytes == 6 && (const uint8_t *)t->data == f->base + data_at + 224);
        gguf_close(f); free(c);
    }
    /* the same data one byte short: the bf16 tensor [224, 230) no longer fits */
    EXPECT_FAIL(b.p, data_at + 229, "tensor 'b' data");
    /* a zero-size tensor at the very end of the data is inside */
    b.n = 0;
    put_header(&b, 1, 0);
    put_tensor_info(&b, "z", 1, (uint64_t[]){0}, 0, 64);
    pad_to(&b, 32);
    for (int i = 0; i < 64; i++) put(&b, "", 1);
    st = parse_copy(b.p, b.n, &f, &c);
    CHECKF(st == SLM_OK, "%s", slm_last_error());
    if (st == SLM_OK) { gguf_close(f); free(c); }
    /* ... but not past it */
    b.n -= 32;
    EXPECT_FAIL(b.p, b.n, "out of bounds");

    /* a tensor-only file whose padding is missing */
    b.n = 0;
    put_header(&b, 1, 0);
    put_tensor_info(&b, "z", 1, (uint64_t[]){0}, 0, 0);
    EXPECT_FAIL(b.p, b.n, "data section start");

    /* type Q8_K (activation-only) is still a known type with a block size */
    b.n = 0;
    put_header(&b, 1, 0);
    put_tensor_info(&b, "a", 1, (uint64_t[]){255}, 15, 0);
    pad_to(&b, 32);
    EXPECT_FAIL(b.p, b.n, "block size 256 of type q8_K");

    /* a name with control bytes and a very long one are shown safely */
    b.n = 0;
    put_header(&b, 1, 0);
    char longname[300];
    memset(longname, 'n', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    longname[3] = '\n';
    put_tensor_info(&b, longname, 1, (uint64_t[]){1}, 77, 0);
    EXPECT_FAIL(b.p, b.n, "tensor 'nnn?nnnn");
    CHECK(strchr(slm_last_error(), '\n') == NULL && strstr(slm_last_error(), "...' has unknown type 77"));
    free(b.p);
}

/* The hand-made fuzz seeds are valid files. */
static void test_seeds(void) {
    static const char *const seeds[] = { "kv_only.gguf", "tensors.gguf" };
    for (size_t i = 0; i < sizeof seeds / sizeof *seeds; i++) {
        char path[256];
        snprintf(path, sizeof path, "tests/fuzz/corpus/gguf/%s", seeds[i]);
        gguf_file *f;
        slm_status st = gguf_open(path, &f);
        CHECKF(st == SLM_OK, "%s: %s", path, slm_last_error());
        if (st != SLM_OK) continue;
        if (i == 0) {
            const gguf_kv *kv = gguf_find(f, "n");
            CHECK(f->n_kv == 3 && kv && kv->arr_type == GGUF_T_ARRAY && kv->arr_n == 2);
            double d;
            CHECK(gguf_get_f64(f, "f", &d) && d == 1.5);
        } else {
            const gguf_tensor *t = gguf_find_tensor(f, "k");
            CHECK(f->alignment == 16 && t && t->type == 14 && t->nbytes == 210);
            CHECK(t && ((const uint8_t *)t->data)[209] == 209);
        }
        gguf_close(f);
    }
}

static void test_io(void) {
    gguf_file *f = (gguf_file *)1;
    slm_status st = gguf_open("/nonexistent/dir/model.gguf", &f);
    CHECK(st == SLM_ERR_IO && f == NULL);
    CHECKF(strstr(slm_last_error(), "No such file") && strstr(slm_last_error(), "/nonexistent/dir/model.gguf"),
           "%s", slm_last_error());
    st = gguf_open("tests", &f);
    CHECKF(st == SLM_ERR_IO && strstr(slm_last_error(), "not a regular file"), "%s", slm_last_error());
    /* an empty file is a format error, not an I/O one */
    char path[] = "/tmp/slm_gguf_empty_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd >= 0) {
        close(fd);
        st = gguf_open(path, &f);
        CHECKF(st == SLM_ERR_FORMAT && strstr(slm_last_error(), "truncated"), "%s", slm_last_error());
        unlink(path);
    }
    CHECK(strcmp(gguf_vtype_name(GGUF_T_F64), "f64") == 0 && strcmp(gguf_vtype_name(13), "unknown") == 0);
    gguf_str s = { "abc", 3 }, z = { NULL, 0 };
    CHECK(gguf_str_eq(s, "abc") && !gguf_str_eq(s, "ab") && !gguf_str_eq(s, "abcd") && gguf_str_eq(z, ""));
}

/* Facts about gemma-3-270m-q4_k_m.gguf (read with gguf-py). */
static void test_model(const char *path) {
    gguf_file *f;
    slm_status st = gguf_open(path, &f);
    CHECKF(st == SLM_OK, "%s: %s", path, slm_last_error());
    if (st != SLM_OK) return;
    CHECK(f->version == 3 && f->n_kv == 33 && f->n_tensors == 236);
    CHECK(f->alignment == 32 && f->data_offset == 6525120 && f->size == 253113024);
    gguf_str s;
    CHECK(gguf_get_str(f, "general.architecture", &s) && gguf_str_eq(s, "gemma3"));
    int64_t v;
    CHECK(gguf_get_i64(f, "gemma3.block_count", &v) && v == 18);
    CHECK(gguf_get_i64(f, "gemma3.context_length", &v) && v == 32768);
    CHECK(gguf_get_i64(f, "tokenizer.ggml.bos_token_id", &v) && v == 2);
    double d;
    CHECK(gguf_get_f64(f, "gemma3.attention.layer_norm_rms_epsilon", &d) && d == (double)1e-6f);
    CHECK(gguf_get_f64(f, "gemma3.rope.freq_base", &d) && d == 1e6);
    bool b;
    CHECK(gguf_get_bool(f, "tokenizer.ggml.add_bos_token", &b) && b);
    const gguf_kv *kv = gguf_find(f, "tokenizer.ggml.tokens");
    CHECK(kv && kv->type == GGUF_T_ARRAY && kv->arr_type == GGUF_T_STRING && kv->arr_n == 262144);
    if (kv && kv->strs && kv->arr_n == 262144) {
        CHECK(gguf_str_eq(kv->strs[0], "<pad>") && gguf_str_eq(kv->strs[2], "<bos>"));
        CHECK(gguf_str_eq(kv->strs[106], "<end_of_turn>") && gguf_str_eq(kv->strs[262143], "<unused6241>"));
    }
    kv = gguf_find(f, "tokenizer.ggml.scores");
    CHECK(kv && kv->arr_type == GGUF_T_F32 && kv->arr_n == 262144 && gguf_arr_f64(kv, 1000) == -506.0);
    kv = gguf_find(f, "tokenizer.ggml.token_type");
    CHECK(kv && kv->arr_type == GGUF_T_I32 && kv->arr_n == 262144);
    const gguf_tensor *t = gguf_find_tensor(f, "token_embd.weight");
    CHECK(t && t->type == 8 && t->n_dims == 2 && t->ne[0] == 640 && t->ne[1] == 262144);
    CHECK(t && t->nbytes == 640 / 32 * 34 * 262144ull);
    t = &f->tensors[0];
    CHECK(gguf_str_eq(t->name, "output_norm.weight") && t->type == 0 && t->offset == 0 && t->nbytes == 2560);
    t = gguf_find_tensor(f, "blk.17.post_ffw_norm.weight");
    CHECK(t && t->offset == 246585344 && t->nbytes == 2560);
    uint64_t total = 0;
    for (uint64_t i = 0; i < f->n_tensors; i++) total += f->tensors[i].nbytes;
    CHECK(total <= f->size - f->data_offset);
    gguf_close(f);
}

int main(void) {
    verbose = getenv("GGUF_TEST_VERBOSE") != NULL;
    test_fixture("all_types");
    test_fixture("minimal");
    test_mutations();
    test_hand_built();
    test_seeds();
    test_io();
    const char *model = test_model_path();
    if (model) test_model(model);
    else test_skip("no model (set SLM_TEST_MODEL): the real-model checks did not run");
    return test_finish();
}
