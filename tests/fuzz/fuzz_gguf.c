/* libFuzzer target for the GGUF reader: parse arbitrary bytes and, when they
 * are accepted, walk everything the accessors expose, checking the promises
 * of gguf.h (all strings, arrays and tensor data lie inside the input).
 * Seeds: tests/fuzz/corpus/gguf/. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/gguf.h"

#define REQUIRE(c) do { if (!(c)) __builtin_trap(); } while (0)

static const uint8_t *g_base, *g_end;
static volatile uint64_t g_sink;

static void in_input(const void *p, uint64_t n) {
    const uint8_t *q = p;
    REQUIRE(q >= g_base && q <= g_end && n <= (uint64_t)(g_end - q));
}

static void touch_str(gguf_str s) {
    in_input(s.ptr, s.len);
    if (s.len) g_sink += (uint8_t)s.ptr[0] + (uint8_t)s.ptr[s.len - 1];
}

static uint64_t rd(const uint8_t *p, unsigned n) {
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* Walks an array's raw elements as a consumer would: the parser promised
 * that the whole structure lies inside the input. */
static const uint8_t *walk_raw(const uint8_t *p, uint32_t t, uint64_t n, int depth) {
    static const unsigned sz[] = { 1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8 };
    REQUIRE(t <= GGUF_T_F64 && depth <= 8);
    for (uint64_t i = 0; i < n; i++) {
        if (t == GGUF_T_STRING) {
            in_input(p, 8);
            gguf_str s = { (const char *)p + 8, rd(p, 8) };
            touch_str(s);
            p += 8 + s.len;
        } else if (t == GGUF_T_ARRAY) {
            in_input(p, 12);
            p = walk_raw(p + 12, (uint32_t)rd(p, 4), rd(p + 4, 8), depth + 1);
        } else {
            in_input(p, sz[t]);
            g_sink += p[0];
            p += sz[t];
        }
    }
    return p;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    gguf_file *f;
    if (gguf_parse(data, size, &f) != SLM_OK) return 0;
    g_base = data;
    g_end = data + size;
    REQUIRE(f->base == data && f->size == size);
    REQUIRE(f->alignment && (f->alignment & (f->alignment - 1)) == 0);

    char name[256];
    for (uint64_t i = 0; i < f->n_kv; i++) {
        const gguf_kv *kv = &f->kv[i];
        touch_str(kv->key);
        g_sink += strlen(gguf_vtype_name(kv->type));
        size_t n = kv->key.len < sizeof name - 1 ? (size_t)kv->key.len : sizeof name - 1;
        memcpy(name, kv->key.ptr, n);
        name[n] = '\0';
        /* keys are unique, so a key without NUL bytes finds itself */
        const gguf_kv *found = gguf_find(f, name);
        if (n == kv->key.len && !memchr(name, 0, n)) REQUIRE(found == kv);
        int64_t i64;
        double f64;
        bool b;
        gguf_str s;
        g_sink += gguf_get_i64(f, name, &i64) + gguf_get_f64(f, name, &f64) + gguf_get_bool(f, name, &b);
        if (gguf_get_str(f, name, &s)) touch_str(s);
        if (kv->type == GGUF_T_STRING) touch_str(kv->str);
        if (kv->type != GGUF_T_ARRAY) continue;
        g_sink += strlen(gguf_vtype_name(kv->arr_type));
        if (kv->arr_type == GGUF_T_STRING) {
            for (uint64_t k = 0; k < kv->arr_n; k++) touch_str(kv->strs[k]);
        } else if (kv->arr_type == GGUF_T_ARRAY) {
            walk_raw(kv->arr_data, GGUF_T_ARRAY, kv->arr_n, 1);
        } else {
            for (uint64_t k = 0; k < kv->arr_n; k++) {
                double d = gguf_arr_f64(kv, k);
                g_sink += (uint64_t)gguf_arr_i64(kv, k) + (d == d);
            }
            walk_raw(kv->arr_data, kv->arr_type, kv->arr_n, 1);
        }
        REQUIRE(gguf_arr_i64(kv, kv->arr_n) == 0 && gguf_arr_f64(kv, kv->arr_n) == 0);
    }

    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const gguf_tensor *t = &f->tensors[i];
        touch_str(t->name);
        REQUIRE(t->n_dims >= 1 && t->n_dims <= GGUF_MAX_DIMS);
        REQUIRE(t->offset % f->alignment == 0);
        in_input(t->data, t->nbytes);
        REQUIRE((const uint8_t *)t->data == data + f->data_offset + t->offset);
        if (t->nbytes) g_sink += ((const uint8_t *)t->data)[0] + ((const uint8_t *)t->data)[t->nbytes - 1];
        size_t n = t->name.len < sizeof name - 1 ? (size_t)t->name.len : sizeof name - 1;
        memcpy(name, t->name.ptr, n);
        name[n] = '\0';
        const gguf_tensor *found = gguf_find_tensor(f, name);
        if (n == t->name.len && !memchr(name, 0, n)) REQUIRE(found == t);
    }
    gguf_close(f);
    return 0;
}
