/* GGUF v2/v3 reader.
 *
 * Layout (little-endian): header (magic, version, n_tensors, n_kv), n_kv
 * metadata entries, n_tensors tensor infos, padding up to the alignment, then
 * the data section. The parser walks this with a bounds-checked cursor: every
 * count, length and offset is compared with the bytes that remain before it
 * is used, and arithmetic on untrusted values is overflow-checked. Nothing is
 * allocated from an untrusted count until that count has been shown to fit
 * in the remaining bytes, so allocations stay proportional to the input. */
#include "gguf/gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/status.h"
#include "base/tensor_type.h"

#define GGUF_MAGIC 0x46554747u        /* "GGUF" read as a little-endian u32 */
#define GGUF_DEFAULT_ALIGNMENT 32u
#define GGUF_MAX_ARRAY_DEPTH 8        /* an array of arrays is depth 2 */
#define GGUF_N_VTYPES 13

/* Smallest encodings, used to bound counts before allocating:
 * kv = key length (8) + type (4) + a 1-byte value;
 * tensor info = name length (8) + n_dims (4) + one dim (8) + type (4) + offset (8);
 * nested array element = element type (4) + count (8). */
#define MIN_KV_BYTES 13u
#define MIN_TENSOR_INFO_BYTES 32u
#define MIN_ARRAY_BYTES 12u

/* Encoded size of a fixed-size value type; 0 for string/array/unknown. */
static const uint8_t vtype_size[GGUF_N_VTYPES] = {
    [GGUF_T_U8] = 1, [GGUF_T_I8] = 1, [GGUF_T_U16] = 2, [GGUF_T_I16] = 2,
    [GGUF_T_U32] = 4, [GGUF_T_I32] = 4, [GGUF_T_F32] = 4, [GGUF_T_BOOL] = 1,
    [GGUF_T_U64] = 8, [GGUF_T_I64] = 8, [GGUF_T_F64] = 8,
};

const char *gguf_vtype_name(uint32_t t) {
    static const char *const names[GGUF_N_VTYPES] = {
        "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool",
        "string", "array", "u64", "i64", "f64",
    };
    return t < GGUF_N_VTYPES ? names[t] : "unknown";
}

/* ---- little-endian loads (the host may be either) ---- */

static uint64_t ld_le(const uint8_t *p, unsigned n) {
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static double ld_f32(const uint8_t *p) {
    uint32_t u = (uint32_t)ld_le(p, 4);
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static double ld_f64(const uint8_t *p) {
    uint64_t u = ld_le(p, 8);
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

/* Sign-extends the low `bytes` bytes of v. */
static int64_t sext(uint64_t v, unsigned bytes) {
    if (bytes >= 8) return (int64_t)v;
    uint64_t sign = (uint64_t)1 << (8 * bytes - 1);
    /* (v ^ sign) - sign sign-extends without implementation-defined shifts */
    uint64_t ext = (v ^ sign) - sign;
    int64_t r;
    memcpy(&r, &ext, sizeof r);
    return r;
}

static bool vtype_is_signed(uint32_t t) {
    return t == GGUF_T_I8 || t == GGUF_T_I16 || t == GGUF_T_I32 || t == GGUF_T_I64;
}

static bool vtype_is_unsigned(uint32_t t) {
    return t == GGUF_T_U8 || t == GGUF_T_U16 || t == GGUF_T_U32 || t == GGUF_T_U64;
}

/* Decodes one fixed-size scalar at p into the kv's number union. */
static void decode_scalar(uint32_t t, const uint8_t *p, gguf_kv *kv) {
    unsigned n = vtype_size[t];
    if (t == GGUF_T_F32) kv->num.f = ld_f32(p);
    else if (t == GGUF_T_F64) kv->num.f = ld_f64(p);
    else if (t == GGUF_T_BOOL) kv->num.u = p[0] != 0;
    else if (vtype_is_signed(t)) kv->num.i = sext(ld_le(p, n), n);
    else kv->num.u = ld_le(p, n);
}

/* ---- names in messages ---- */

/* A printable, length-limited copy of a file string for error messages. */
typedef struct shown { char s[72]; } shown;

static shown show(gguf_str str) {
    shown o;
    size_t n = str.len < 60 ? (size_t)str.len : 60, j = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)str.ptr[i];
        o.s[j++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    if (str.len > n) { memcpy(o.s + j, "...", 3); j += 3; }
    o.s[j] = '\0';
    return o;
}

/* ---- the cursor ---- */

enum ctx { CTX_HEADER, CTX_KEY, CTX_VALUE, CTX_TENSOR };

typedef struct parser {
    const uint8_t *b;
    size_t size, pos;
    /* what is being read, for error messages */
    enum ctx ctx;
    uint64_t idx, count;    /* current kv / tensor (0-based) and how many */
    gguf_str name;          /* its key or tensor name once known */
    bool have_name;
    uint64_t el_i, el_n;    /* innermost array element being read */
    bool in_array;
} parser;

static size_t remaining(const parser *p) { return p->size - p->pos; }

/* Describes what the cursor is reading, for error messages. */
static void describe(const parser *p, char *what, size_t cap) {
    switch (p->ctx) {
    case CTX_HEADER:
        snprintf(what, cap, "reading the header");
        break;
    case CTX_KEY:
        snprintf(what, cap, "reading key %llu of %llu",
                 (unsigned long long)p->idx + 1, (unsigned long long)p->count);
        break;
    case CTX_VALUE:
        if (p->in_array)
            snprintf(what, cap, "reading element %llu of %llu of key '%s'",
                     (unsigned long long)p->el_i + 1, (unsigned long long)p->el_n, show(p->name).s);
        else
            snprintf(what, cap, "reading the value of key '%s'", show(p->name).s);
        break;
    case CTX_TENSOR:
        if (p->have_name)
            snprintf(what, cap, "reading tensor info %llu of %llu, '%s'",
                     (unsigned long long)p->idx + 1, (unsigned long long)p->count, show(p->name).s);
        else
            snprintf(what, cap, "reading tensor info %llu of %llu",
                     (unsigned long long)p->idx + 1, (unsigned long long)p->count);
        break;
    }
}

/* The input ends before `need` bytes (of `item`, read at byte `at`) could be
 * read. need == UINT64_MAX stands for "more than fits in 64 bits". */
static slm_status short_read(const parser *p, size_t at, const char *item, uint64_t need) {
    char what[200], amount[32];
    describe(p, what, sizeof what);
    if (need == UINT64_MAX) snprintf(amount, sizeof amount, "more than 2^64");
    else snprintf(amount, sizeof amount, "%llu", (unsigned long long)need);
    return slm_fail(SLM_ERR_FORMAT,
                    "GGUF truncated at byte %zu (%s): %s needs %s bytes, %zu left (file size %zu)",
                    at, what, item, amount, p->size - at, p->size);
}

static slm_status take(parser *p, uint64_t n, const uint8_t **out) {
    if (n > remaining(p)) return short_read(p, p->pos, n == 4 ? "a u32" : n == 8 ? "a u64" : "a value", n);
    *out = p->b + p->pos;
    p->pos += (size_t)n;
    return SLM_OK;
}

static slm_status rd_u32(parser *p, uint32_t *v) {
    const uint8_t *q = NULL;
    slm_status st = take(p, 4, &q);
    if (st == SLM_OK) *v = (uint32_t)ld_le(q, 4);
    return st;
}

static slm_status rd_u64(parser *p, uint64_t *v) {
    const uint8_t *q = NULL;
    slm_status st = take(p, 8, &q);
    if (st == SLM_OK) *v = ld_le(q, 8);
    return st;
}

static slm_status rd_str(parser *p, gguf_str *s) {
    uint64_t len;
    slm_status st = rd_u64(p, &len);
    if (st) return st;
    if (len > remaining(p)) {
        char item[64];
        snprintf(item, sizeof item, "a string of length %llu", (unsigned long long)len);
        return short_read(p, p->pos, item, len);
    }
    s->ptr = (const char *)(p->b + p->pos);
    s->len = len;
    p->pos += (size_t)len;
    return SLM_OK;
}

#define TRY(x) do { slm_status st_ = (x); if (st_ != SLM_OK) return st_; } while (0)

/* ---- metadata values ---- */

/* Checks that count elements of at least elem_min bytes each can fit. */
static slm_status check_count(parser *p, uint64_t count, uint64_t elem_min, uint32_t elem_type) {
    uint64_t bytes;
    if (__builtin_mul_overflow(count, elem_min, &bytes)) bytes = UINT64_MAX;
    if (bytes <= remaining(p)) return SLM_OK;
    char item[80];
    snprintf(item, sizeof item, "an array of %llu %s elements", (unsigned long long)count,
             gguf_vtype_name(elem_type));
    return short_read(p, p->pos, item, bytes);
}

/* Validates (and skips) the elements of an array nested `depth` deep:
 * kv is non-NULL only at the top level, where element pointers are kept. */
static slm_status parse_array_body(parser *p, uint32_t et, uint64_t n, int depth, gguf_kv *kv) {
    if (et >= GGUF_N_VTYPES)
        return slm_fail(SLM_ERR_FORMAT, "GGUF key '%s' has an array of unknown value type %u",
                        show(p->name).s, et);
    if (depth > GGUF_MAX_ARRAY_DEPTH)
        return slm_fail(SLM_ERR_FORMAT, "GGUF key '%s' has arrays nested deeper than %d levels",
                        show(p->name).s, GGUF_MAX_ARRAY_DEPTH);
    if (kv) kv->arr_data = p->b + p->pos;

    if (vtype_size[et]) {
        TRY(check_count(p, n, vtype_size[et], et));
        p->pos += (size_t)(n * vtype_size[et]);
        return SLM_OK;
    }
    if (et == GGUF_T_STRING) {
        TRY(check_count(p, n, 8, et));
        if (kv && n > 0) {
            /* n <= remaining / 8, so this is at most twice the input size */
            kv->strs = malloc((size_t)n * sizeof *kv->strs);
            if (!kv->strs)
                return slm_fail(SLM_ERR_NOMEM, "GGUF key '%s': out of memory for %llu strings",
                                show(p->name).s, (unsigned long long)n);
        }
        for (uint64_t i = 0; i < n; i++) {
            gguf_str s;
            p->in_array = true, p->el_i = i, p->el_n = n;
            TRY(rd_str(p, &s));
            if (kv) kv->strs[i] = s;
        }
        return SLM_OK;
    }
    /* arrays of arrays: each element carries its own type and count */
    TRY(check_count(p, n, MIN_ARRAY_BYTES, et));
    for (uint64_t i = 0; i < n; i++) {
        uint32_t sub_t;
        uint64_t sub_n;
        p->in_array = true, p->el_i = i, p->el_n = n;
        TRY(rd_u32(p, &sub_t));
        TRY(rd_u64(p, &sub_n));
        TRY(parse_array_body(p, sub_t, sub_n, depth + 1, NULL));
    }
    return SLM_OK;
}

static slm_status parse_value(parser *p, gguf_kv *kv) {
    uint32_t t = kv->type;
    p->ctx = CTX_VALUE;
    p->in_array = false;
    if (t >= GGUF_N_VTYPES)
        return slm_fail(SLM_ERR_FORMAT, "GGUF key '%s' has unknown value type %u",
                        show(kv->key).s, t);
    if (vtype_size[t]) {
        const uint8_t *q = NULL;
        TRY(take(p, vtype_size[t], &q));
        decode_scalar(t, q, kv);
        return SLM_OK;
    }
    if (t == GGUF_T_STRING) return rd_str(p, &kv->str);
    TRY(rd_u32(p, &kv->arr_type));
    TRY(rd_u64(p, &kv->arr_n));
    return parse_array_body(p, kv->arr_type, kv->arr_n, 1, kv);
}

/* ---- duplicate detection: a throwaway open-addressing hash set ---- */

static uint64_t hash_bytes(const char *s, uint64_t n) {
    uint64_t h = 1469598103934665603ull;  /* FNV-1a */
    for (uint64_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

bool gguf_str_eq(gguf_str s, const char *c) {
    size_t n = strlen(c);
    return s.len == n && (n == 0 || memcmp(s.ptr, c, n) == 0);
}

static bool str_eq2(gguf_str a, gguf_str b) {
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, (size_t)a.len) == 0);
}

typedef struct name_set {
    size_t *slot;   /* index + 1; 0 = empty */
    size_t mask;
} name_set;

static slm_status set_init(name_set *s, uint64_t n) {
    size_t cap = 16;
    while (cap < 2 * n) cap *= 2;  /* n is bounded by the file size */
    s->slot = calloc(cap, sizeof *s->slot);
    s->mask = cap - 1;
    return s->slot ? SLM_OK : slm_fail(SLM_ERR_NOMEM, "GGUF: out of memory for a name index");
}

/* Inserts names[i]; returns the index of an earlier equal name, or SIZE_MAX. */
static size_t set_insert(name_set *s, const gguf_str *name, size_t i,
                         gguf_str (*get)(const void *, size_t), const void *arr) {
    size_t h = (size_t)hash_bytes(name->ptr, name->len) & s->mask;
    while (s->slot[h]) {
        size_t j = s->slot[h] - 1;
        if (str_eq2(get(arr, j), *name)) return j;
        h = (h + 1) & s->mask;
    }
    s->slot[h] = i + 1;
    return SIZE_MAX;
}

static gguf_str kv_name(const void *arr, size_t i) { return ((const gguf_kv *)arr)[i].key; }
static gguf_str tensor_name(const void *arr, size_t i) { return ((const gguf_tensor *)arr)[i].name; }

/* ---- the file ---- */

static slm_status parse_header(parser *p, gguf_file *f) {
    uint32_t magic;
    p->ctx = CTX_HEADER;
    if (p->size < 4) return short_read(p, 0, "the magic", 4);
    TRY(rd_u32(p, &magic));
    if (magic != GGUF_MAGIC)
        return slm_fail(SLM_ERR_FORMAT, "bad magic (not a GGUF file): first bytes %02x %02x %02x %02x",
                        p->b[0], p->b[1], p->b[2], p->b[3]);
    TRY(rd_u32(p, &f->version));
    if (f->version == 1)
        return slm_fail(SLM_ERR_FORMAT, "unsupported GGUF version 1 (only versions 2 and 3 are read)");
    if (f->version != 2 && f->version != 3) {
        /* a byte-swapped small number means a big-endian file */
        uint32_t v = f->version, sw = (v >> 24) | ((v >> 8) & 0xff00) | ((v << 8) & 0xff0000) | (v << 24);
        return slm_fail(SLM_ERR_FORMAT, "unsupported GGUF version %u%s", v,
                        sw >= 1 && sw <= 3 ? " (a big-endian file; only little-endian is read)" : "");
    }
    TRY(rd_u64(p, &f->n_tensors));
    TRY(rd_u64(p, &f->n_kv));

    /* Plausibility before allocating: every entry takes some minimum space. */
    uint64_t kv_bytes, ti_bytes, total;
    if (__builtin_mul_overflow(f->n_kv, (uint64_t)MIN_KV_BYTES, &kv_bytes) ||
        __builtin_mul_overflow(f->n_tensors, (uint64_t)MIN_TENSOR_INFO_BYTES, &ti_bytes) ||
        __builtin_add_overflow(kv_bytes, ti_bytes, &total))
        total = UINT64_MAX;
    if (total > remaining(p)) {
        char item[96];
        snprintf(item, sizeof item, "the header's count of %llu keys and %llu tensors",
                 (unsigned long long)f->n_kv, (unsigned long long)f->n_tensors);
        return short_read(p, p->pos, item, total);
    }
    return SLM_OK;
}

static slm_status parse_kvs(parser *p, gguf_file *f) {
    if (f->n_kv == 0) return SLM_OK;
    f->kv = calloc((size_t)f->n_kv, sizeof *f->kv);
    if (!f->kv) return slm_fail(SLM_ERR_NOMEM, "GGUF: out of memory for %llu keys",
                                (unsigned long long)f->n_kv);
    name_set seen;
    TRY(set_init(&seen, f->n_kv));
    slm_status st = SLM_OK;
    for (uint64_t i = 0; i < f->n_kv && st == SLM_OK; i++) {
        gguf_kv *kv = &f->kv[i];
        p->ctx = CTX_KEY, p->idx = i, p->count = f->n_kv;
        if ((st = rd_str(p, &kv->key)) != SLM_OK) break;
        p->name = kv->key, p->have_name = true;
        size_t dup = set_insert(&seen, &kv->key, (size_t)i, kv_name, f->kv);
        if (dup != SIZE_MAX) {
            st = slm_fail(SLM_ERR_FORMAT, "GGUF key '%s' appears twice (entries %zu and %llu)",
                          show(kv->key).s, dup, (unsigned long long)i);
            break;
        }
        if ((st = rd_u32(p, &kv->type)) != SLM_OK) break;
        st = parse_value(p, kv);
    }
    free(seen.slot);
    return st;
}

static slm_status read_alignment(gguf_file *f) {
    f->alignment = GGUF_DEFAULT_ALIGNMENT;
    const gguf_kv *kv = gguf_find(f, "general.alignment");
    if (!kv) return SLM_OK;
    if (kv->type != GGUF_T_U32)
        return slm_fail(SLM_ERR_FORMAT, "GGUF general.alignment has type %s, expected u32",
                        gguf_vtype_name(kv->type));
    uint64_t a = kv->num.u;
    if (a == 0 || (a & (a - 1)) != 0)
        return slm_fail(SLM_ERR_FORMAT, "GGUF general.alignment %llu is not a non-zero power of two",
                        (unsigned long long)a);
    f->alignment = (uint32_t)a;
    return SLM_OK;
}

/* Reads one tensor info; sizes are checked, placement comes later. */
static slm_status parse_tensor_info(parser *p, gguf_tensor *t) {
    TRY(rd_str(p, &t->name));
    p->name = t->name, p->have_name = true;
    TRY(rd_u32(p, &t->n_dims));
    if (t->n_dims < 1 || t->n_dims > GGUF_MAX_DIMS)
        return slm_fail(SLM_ERR_FORMAT, "GGUF tensor '%s' has n_dims %u (must be 1 to %d)",
                        show(t->name).s, t->n_dims, GGUF_MAX_DIMS);
    for (int d = 0; d < GGUF_MAX_DIMS; d++) t->ne[d] = 1;
    for (uint32_t d = 0; d < t->n_dims; d++) {
        TRY(rd_u64(p, &t->ne[d]));
        if (t->ne[d] > (uint64_t)INT64_MAX)
            return slm_fail(SLM_ERR_FORMAT, "GGUF tensor '%s' has dimension ne[%u] = %llu "
                            "(negative as int64)", show(t->name).s, d, (unsigned long long)t->ne[d]);
    }
    TRY(rd_u32(p, &t->type));
    TRY(rd_u64(p, &t->offset));

    const slm_type_info *ti = slm_type_get(t->type);
    if (!ti)
        return slm_fail(SLM_ERR_FORMAT, "GGUF tensor '%s' has unknown type %u", show(t->name).s, t->type);

    /* element count must fit in int64 (ggml's limit), whatever the shape */
    uint64_t nel = 1;
    for (int d = 0; d < GGUF_MAX_DIMS; d++)
        if (__builtin_mul_overflow(nel, t->ne[d], &nel) || nel > (uint64_t)INT64_MAX)
            return slm_fail(SLM_ERR_FORMAT,
                            "GGUF tensor '%s' shape [%llu, %llu, %llu, %llu] overflows the element count",
                            show(t->name).s, (unsigned long long)t->ne[0], (unsigned long long)t->ne[1],
                            (unsigned long long)t->ne[2], (unsigned long long)t->ne[3]);
    if (t->ne[0] % (uint64_t)ti->block_size != 0)
        return slm_fail(SLM_ERR_FORMAT,
                        "GGUF tensor '%s' has ne[0] = %llu, not a multiple of the block size %d of type %s",
                        show(t->name).s, (unsigned long long)t->ne[0], ti->block_size, ti->name);

    /* bytes = ne0 / block * block_bytes * ne1 * ne2 * ne3 */
    uint64_t bytes = 0;
    if (nel > 0) {
        if (__builtin_mul_overflow(t->ne[0] / (uint64_t)ti->block_size, (uint64_t)ti->block_bytes, &bytes))
            goto too_big;
        /* slm_row_bytes agrees with the table here; use it to stay in step with src/quant */
        if ((uint64_t)slm_row_bytes(t->type, (int64_t)t->ne[0]) != bytes) goto too_big;
        for (int d = 1; d < GGUF_MAX_DIMS; d++)
            if (__builtin_mul_overflow(bytes, t->ne[d], &bytes)) goto too_big;
    }
    if (bytes > SIZE_MAX) goto too_big;
    t->nbytes = bytes;
    return SLM_OK;
too_big:
    return slm_fail(SLM_ERR_FORMAT, "GGUF tensor '%s' of type %s and shape [%llu, %llu, %llu, %llu] "
                    "overflows the byte size", show(t->name).s, ti->name,
                    (unsigned long long)t->ne[0], (unsigned long long)t->ne[1],
                    (unsigned long long)t->ne[2], (unsigned long long)t->ne[3]);
}

static slm_status parse_tensors(parser *p, gguf_file *f) {
    if (f->n_tensors == 0) return SLM_OK;
    f->tensors = calloc((size_t)f->n_tensors, sizeof *f->tensors);
    if (!f->tensors) return slm_fail(SLM_ERR_NOMEM, "GGUF: out of memory for %llu tensors",
                                     (unsigned long long)f->n_tensors);
    name_set seen;
    TRY(set_init(&seen, f->n_tensors));
    slm_status st = SLM_OK;
    for (uint64_t i = 0; i < f->n_tensors && st == SLM_OK; i++) {
        gguf_tensor *t = &f->tensors[i];
        p->ctx = CTX_TENSOR, p->idx = i, p->count = f->n_tensors, p->have_name = false;
        if ((st = parse_tensor_info(p, t)) != SLM_OK) break;
        size_t dup = set_insert(&seen, &t->name, (size_t)i, tensor_name, f->tensors);
        if (dup != SIZE_MAX)
            st = slm_fail(SLM_ERR_FORMAT, "GGUF tensor '%s' appears twice (tensors %zu and %llu)",
                          show(t->name).s, dup, (unsigned long long)i);
    }
    free(seen.slot);
    return st;
}

/* Places the data section and every tensor in it. */
static slm_status place_tensors(parser *p, gguf_file *f) {
    uint64_t a = f->alignment, start;
    if (__builtin_add_overflow((uint64_t)p->pos, a - 1, &start))
        return slm_fail(SLM_ERR_FORMAT, "GGUF data offset overflows");
    f->data_offset = start / a * a;
    if (f->n_tensors == 0) return SLM_OK;  /* no data section needed */
    if (f->data_offset > f->size)
        return slm_fail(SLM_ERR_FORMAT,
                        "GGUF data section start %llu is out of bounds (file size %zu; truncated)",
                        (unsigned long long)f->data_offset, f->size);
    uint64_t data_size = f->size - f->data_offset;
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        gguf_tensor *t = &f->tensors[i];
        if (t->offset % a != 0)
            return slm_fail(SLM_ERR_FORMAT,
                            "GGUF tensor '%s' offset %llu is not a multiple of the alignment %llu",
                            show(t->name).s, (unsigned long long)t->offset, (unsigned long long)a);
        uint64_t end;
        if (__builtin_add_overflow(t->offset, t->nbytes, &end) || end > data_size) {
            unsigned long long abs_off = 0, abs_end = 0;
            bool wrap = __builtin_add_overflow(t->offset, f->data_offset, &abs_off) ||
                        __builtin_add_overflow(abs_off, t->nbytes, &abs_end);
            if (wrap)
                return slm_fail(SLM_ERR_FORMAT,
                                "GGUF tensor '%s' data at offset %llu + %llu bytes is out of bounds "
                                "(overflows; file size %zu)", show(t->name).s,
                                (unsigned long long)t->offset, (unsigned long long)t->nbytes, f->size);
            return slm_fail(SLM_ERR_FORMAT,
                            "GGUF tensor '%s' data [%llu, %llu) is out of bounds (file size %zu)",
                            show(t->name).s, abs_off, abs_end, f->size);
        }
        t->data = f->base + f->data_offset + t->offset;
    }
    return SLM_OK;
}

static slm_status parse_all(gguf_file *f) {
    parser p = { .b = f->base, .size = f->size };
    TRY(parse_header(&p, f));
    TRY(parse_kvs(&p, f));
    TRY(read_alignment(f));
    TRY(parse_tensors(&p, f));
    return place_tensors(&p, f);
}

slm_status gguf_parse(const void *buf, size_t size, gguf_file **out) {
    *out = NULL;
    if (!buf && size > 0) return slm_fail(SLM_ERR_INVALID_ARG, "gguf_parse: NULL buffer");
    gguf_file *f = calloc(1, sizeof *f);
    if (!f) return slm_fail(SLM_ERR_NOMEM, "GGUF: out of memory");
    static const uint8_t empty[1];
    f->base = buf ? buf : empty;
    f->size = size;
    slm_status st = parse_all(f);
    if (st != SLM_OK) {
        gguf_close(f);
        return st;
    }
    *out = f;
    return SLM_OK;
}

slm_status gguf_open(const char *path, gguf_file **out) {
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return slm_fail(SLM_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return slm_fail(SLM_ERR_IO, "cannot stat '%s': %s", path, strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return slm_fail(SLM_ERR_IO, "'%s' is not a regular file", path);
    }
    if ((uint64_t)sb.st_size > SIZE_MAX) {
        close(fd);
        return slm_fail(SLM_ERR_IO, "'%s' is too large to map", path);
    }
    size_t size = (size_t)sb.st_size;
    void *map = NULL;
    if (size > 0) {  /* mmap of 0 bytes fails; parse an empty buffer instead */
        map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            int e = errno;
            close(fd);
            return slm_fail(SLM_ERR_IO, "cannot map '%s': %s", path, strerror(e));
        }
    }
    close(fd);  /* the mapping stays valid */
    gguf_file *f;
    slm_status st = gguf_parse(map, size, &f);
    if (st != SLM_OK) {
        if (map) munmap(map, size);
        return st;
    }
    f->map = map;
    *out = f;
    return SLM_OK;
}

void gguf_close(gguf_file *f) {
    if (!f) return;
    if (f->kv)
        for (uint64_t i = 0; i < f->n_kv; i++) free(f->kv[i].strs);
    free(f->kv);
    free(f->tensors);
    if (f->map) munmap(f->map, f->size);
    free(f);
}

/* ---- lookups ---- */

const gguf_kv *gguf_find(const gguf_file *f, const char *key) {
    for (uint64_t i = 0; i < f->n_kv; i++)
        if (gguf_str_eq(f->kv[i].key, key)) return &f->kv[i];
    return NULL;
}

const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name) {
    for (uint64_t i = 0; i < f->n_tensors; i++)
        if (gguf_str_eq(f->tensors[i].name, name)) return &f->tensors[i];
    return NULL;
}

bool gguf_get_i64(const gguf_file *f, const char *key, int64_t *out) {
    const gguf_kv *kv = gguf_find(f, key);
    if (!kv) return false;
    if (vtype_is_signed(kv->type)) { *out = kv->num.i; return true; }
    if (vtype_is_unsigned(kv->type) && kv->num.u <= (uint64_t)INT64_MAX) {
        *out = (int64_t)kv->num.u;
        return true;
    }
    return false;
}

bool gguf_get_f64(const gguf_file *f, const char *key, double *out) {
    const gguf_kv *kv = gguf_find(f, key);
    if (!kv || (kv->type != GGUF_T_F32 && kv->type != GGUF_T_F64)) return false;
    *out = kv->num.f;
    return true;
}

bool gguf_get_bool(const gguf_file *f, const char *key, bool *out) {
    const gguf_kv *kv = gguf_find(f, key);
    if (!kv || kv->type != GGUF_T_BOOL) return false;
    *out = kv->num.u != 0;
    return true;
}

bool gguf_get_str(const gguf_file *f, const char *key, gguf_str *out) {
    const gguf_kv *kv = gguf_find(f, key);
    if (!kv || kv->type != GGUF_T_STRING) return false;
    *out = kv->str;
    return true;
}

/* Non-numeric arrays, out-of-range i and non-arrays give 0. */
double gguf_arr_f64(const gguf_kv *kv, uint64_t i) {
    if (kv->type != GGUF_T_ARRAY || i >= kv->arr_n) return 0;
    uint32_t t = kv->arr_type;
    if (t >= GGUF_N_VTYPES || !vtype_size[t]) return 0;
    const uint8_t *p = kv->arr_data + i * vtype_size[t];
    if (t == GGUF_T_F32) return ld_f32(p);
    if (t == GGUF_T_F64) return ld_f64(p);
    if (t == GGUF_T_BOOL) return p[0] != 0;
    if (vtype_is_signed(t)) return (double)sext(ld_le(p, vtype_size[t]), vtype_size[t]);
    return (double)ld_le(p, vtype_size[t]);
}

/* Integer and bool arrays only (others give 0); u64 above INT64_MAX saturates. */
int64_t gguf_arr_i64(const gguf_kv *kv, uint64_t i) {
    if (kv->type != GGUF_T_ARRAY || i >= kv->arr_n) return 0;
    uint32_t t = kv->arr_type;
    if (t >= GGUF_N_VTYPES || !vtype_size[t] || t == GGUF_T_F32 || t == GGUF_T_F64) return 0;
    const uint8_t *p = kv->arr_data + i * vtype_size[t];
    if (t == GGUF_T_BOOL) return p[0] != 0;
    if (vtype_is_signed(t)) return sext(ld_le(p, vtype_size[t]), vtype_size[t]);
    uint64_t u = ld_le(p, vtype_size[t]);
    return u > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)u;
}
