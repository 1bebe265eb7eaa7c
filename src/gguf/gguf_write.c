/* GGUF v3 writer: see gguf_write.h. Metadata values are kept encoded (the
 * exact bytes that follow the value type in the file), which makes copying an
 * entry from another file a byte copy whatever its type. */
#include "gguf/gguf_write.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/status.h"
#include "base/tensor_type.h"

#define GGUF_DEFAULT_ALIGNMENT 32u
#define GGUF_MAX_NEST 8

typedef struct wkv {
    char *key;
    uint32_t type;        /* enum gguf_vtype */
    uint8_t *val;         /* encoded value */
    size_t len;
} wkv;

typedef struct wtensor {
    char *name;
    uint32_t type;
    uint32_t n_dims;
    uint64_t ne[GGUF_MAX_DIMS];
    size_t nbytes;
    const void *data;     /* borrowed, or NULL when fill is set */
    gguf_tensor_fill_fn fill;
    void *ctx;
} wtensor;

struct gguf_writer {
    wkv *kv;
    size_t n_kv, cap_kv;
    wtensor *t;
    size_t n_t, cap_t;
};

/* ---- growable byte buffer for encoding values ---- */

typedef struct bytes {
    uint8_t *p;
    size_t len, cap;
    bool oom;
} bytes;

static void b_put(bytes *b, const void *src, size_t n) {
    if (b->oom) return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n) cap *= 2;
        uint8_t *np = realloc(b->p, cap);
        if (!np) { b->oom = true; return; }
        b->p = np, b->cap = cap;
    }
    if (n) memcpy(b->p + b->len, src, n);
    b->len += n;
}

static void b_le(bytes *b, uint64_t v, unsigned n) {
    uint8_t tmp[8];
    for (unsigned i = 0; i < n; i++) tmp[i] = (uint8_t)(v >> (8 * i));
    b_put(b, tmp, n);
}

static void b_str(bytes *b, const char *s, size_t n) {
    b_le(b, n, 8);
    b_put(b, s, n);
}

static uint32_t f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

/* ---- lifetime ---- */

slm_status gguf_writer_new(gguf_writer **out) {
    *out = calloc(1, sizeof **out);
    if (!*out) return slm_fail(SLM_ERR_NOMEM, "out of memory creating a GGUF writer");
    return SLM_OK;
}

void gguf_writer_free(gguf_writer *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n_kv; i++) free(w->kv[i].key), free(w->kv[i].val);
    for (size_t i = 0; i < w->n_t; i++) free(w->t[i].name);
    free(w->kv);
    free(w->t);
    free(w);
}

size_t gguf_writer_n_kv(const gguf_writer *w) { return w->n_kv; }
size_t gguf_writer_n_tensors(const gguf_writer *w) { return w->n_t; }

static wkv *find_kv(gguf_writer *w, const char *key, size_t klen) {
    for (size_t i = 0; i < w->n_kv; i++)
        if (strlen(w->kv[i].key) == klen && memcmp(w->kv[i].key, key, klen) == 0) return &w->kv[i];
    return NULL;
}

/* Takes ownership of b's buffer (also on failure). */
static slm_status put_kv(gguf_writer *w, const char *key, size_t klen, uint32_t type, bytes *b) {
    if (b->oom) { free(b->p); return slm_fail(SLM_ERR_NOMEM, "out of memory encoding GGUF key"); }
    if (klen == 0) { free(b->p); return slm_fail(SLM_ERR_INVALID_ARG, "GGUF keys must not be empty"); }
    wkv *e = find_kv(w, key, klen);
    if (e) {
        free(e->val);
        e->type = type, e->val = b->p, e->len = b->len;
        return SLM_OK;
    }
    if (w->n_kv == w->cap_kv) {
        size_t cap = w->cap_kv ? 2 * w->cap_kv : 32;
        wkv *nk = realloc(w->kv, cap * sizeof *nk);
        if (!nk) { free(b->p); return slm_fail(SLM_ERR_NOMEM, "out of memory adding GGUF key"); }
        w->kv = nk, w->cap_kv = cap;
    }
    char *k = malloc(klen + 1);
    if (!k) { free(b->p); return slm_fail(SLM_ERR_NOMEM, "out of memory adding GGUF key"); }
    memcpy(k, key, klen);
    k[klen] = '\0';
    w->kv[w->n_kv++] = (wkv){ k, type, b->p, b->len };
    return SLM_OK;
}

bool gguf_writer_remove_kv(gguf_writer *w, const char *key) {
    wkv *e = find_kv(w, key, strlen(key));
    if (!e) return false;
    free(e->key), free(e->val);
    size_t i = (size_t)(e - w->kv);
    memmove(&w->kv[i], &w->kv[i + 1], (w->n_kv - i - 1) * sizeof *w->kv);
    w->n_kv--;
    return true;
}

/* ---- typed setters ---- */

static slm_status set_scalar(gguf_writer *w, const char *key, uint32_t type, uint64_t v, unsigned n) {
    bytes b = {0};
    b_le(&b, v, n);
    return put_kv(w, key, strlen(key), type, &b);
}

slm_status gguf_writer_set_u32(gguf_writer *w, const char *key, uint32_t v) {
    return set_scalar(w, key, GGUF_T_U32, v, 4);
}
slm_status gguf_writer_set_i32(gguf_writer *w, const char *key, int32_t v) {
    return set_scalar(w, key, GGUF_T_I32, (uint32_t)v, 4);
}
slm_status gguf_writer_set_u64(gguf_writer *w, const char *key, uint64_t v) {
    return set_scalar(w, key, GGUF_T_U64, v, 8);
}
slm_status gguf_writer_set_f32(gguf_writer *w, const char *key, float v) {
    return set_scalar(w, key, GGUF_T_F32, f32_bits(v), 4);
}
slm_status gguf_writer_set_bool(gguf_writer *w, const char *key, bool v) {
    return set_scalar(w, key, GGUF_T_BOOL, v ? 1 : 0, 1);
}

slm_status gguf_writer_set_str(gguf_writer *w, const char *key, const char *val) {
    bytes b = {0};
    b_str(&b, val, strlen(val));
    return put_kv(w, key, strlen(key), GGUF_T_STRING, &b);
}

slm_status gguf_writer_set_arr_str(gguf_writer *w, const char *key, const char *const *vals, size_t n) {
    bytes b = {0};
    b_le(&b, GGUF_T_STRING, 4);
    b_le(&b, n, 8);
    for (size_t i = 0; i < n; i++) b_str(&b, vals[i], strlen(vals[i]));
    return put_kv(w, key, strlen(key), GGUF_T_ARRAY, &b);
}

slm_status gguf_writer_set_arr_i32(gguf_writer *w, const char *key, const int32_t *vals, size_t n) {
    bytes b = {0};
    b_le(&b, GGUF_T_I32, 4);
    b_le(&b, n, 8);
    for (size_t i = 0; i < n; i++) b_le(&b, (uint32_t)vals[i], 4);
    return put_kv(w, key, strlen(key), GGUF_T_ARRAY, &b);
}

slm_status gguf_writer_set_arr_f32(gguf_writer *w, const char *key, const float *vals, size_t n) {
    bytes b = {0};
    b_le(&b, GGUF_T_F32, 4);
    b_le(&b, n, 8);
    for (size_t i = 0; i < n; i++) b_le(&b, f32_bits(vals[i]), 4);
    return put_kv(w, key, strlen(key), GGUF_T_ARRAY, &b);
}

/* ---- copying from a parsed file ---- */

static size_t fixed_size(uint32_t t) {
    switch (t) {
    case GGUF_T_U8: case GGUF_T_I8: case GGUF_T_BOOL: return 1;
    case GGUF_T_U16: case GGUF_T_I16: return 2;
    case GGUF_T_U32: case GGUF_T_I32: case GGUF_T_F32: return 4;
    case GGUF_T_U64: case GGUF_T_I64: case GGUF_T_F64: return 8;
    default: return 0;
    }
}

static uint64_t rd_le(const uint8_t *p, unsigned n) {
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* Byte length of n array elements of type et starting at p, not reading
 * past end. The reader validated the file already; the bounds are kept so a
 * bug here cannot over-read. Returns false if they do not fit. */
static bool elems_len(const uint8_t *p, const uint8_t *end, uint32_t et, uint64_t n, int depth, size_t *len) {
    size_t fs = fixed_size(et);
    if (fs) {
        if (n > (uint64_t)(end - p) / fs) return false;
        *len = (size_t)n * fs;
        return true;
    }
    if (depth > GGUF_MAX_NEST) return false;
    const uint8_t *q = p;
    for (uint64_t i = 0; i < n; i++) {
        if (et == GGUF_T_STRING) {
            if (end - q < 8) return false;
            uint64_t sl = rd_le(q, 8);
            q += 8;
            if (sl > (uint64_t)(end - q)) return false;
            q += sl;
        } else if (et == GGUF_T_ARRAY) {
            if (end - q < 12) return false;
            uint32_t st = (uint32_t)rd_le(q, 4);
            uint64_t sn = rd_le(q + 4, 8);
            q += 12;
            size_t sub;
            if (!elems_len(q, end, st, sn, depth + 1, &sub)) return false;
            q += sub;
        } else {
            return false;
        }
    }
    *len = (size_t)(q - p);
    return true;
}

slm_status gguf_writer_copy_kv(gguf_writer *w, const gguf_file *src, uint64_t i) {
    if (i >= src->n_kv) return slm_fail(SLM_ERR_INVALID_ARG, "GGUF key index %llu out of range",
                                        (unsigned long long)i);
    const gguf_kv *kv = &src->kv[i];
    bytes b = {0};
    size_t fs = fixed_size(kv->type);
    if (fs) {
        /* scalars were widened by the reader; narrow them back */
        uint64_t v = kv->num.u;
        if (kv->type == GGUF_T_F32) v = f32_bits((float)kv->num.f);
        else if (kv->type == GGUF_T_F64) memcpy(&v, &kv->num.f, 8);
        b_le(&b, v, (unsigned)fs);
    } else if (kv->type == GGUF_T_STRING) {
        b_str(&b, kv->str.ptr, (size_t)kv->str.len);
    } else if (kv->type == GGUF_T_ARRAY) {
        size_t len = 0;
        const uint8_t *end = src->base + src->size;
        if (kv->arr_n && !elems_len(kv->arr_data, end, kv->arr_type, kv->arr_n, 2, &len))
            return slm_fail(SLM_ERR_FORMAT, "GGUF key '%.*s': array does not fit in the file",
                            (int)kv->key.len, kv->key.ptr);
        b_le(&b, kv->arr_type, 4);
        b_le(&b, kv->arr_n, 8);
        b_put(&b, kv->arr_data, len);
    } else {
        return slm_fail(SLM_ERR_FORMAT, "GGUF key '%.*s' has unknown type %u", (int)kv->key.len,
                        kv->key.ptr, kv->type);
    }
    return put_kv(w, kv->key.ptr, (size_t)kv->key.len, kv->type, &b);
}

slm_status gguf_writer_copy_all_kv(gguf_writer *w, const gguf_file *src) {
    for (uint64_t i = 0; i < src->n_kv; i++) {
        slm_status st = gguf_writer_copy_kv(w, src, i);
        if (st) return st;
    }
    return SLM_OK;
}

/* ---- tensors ---- */

static slm_status add_tensor(gguf_writer *w, const char *name, uint32_t type, int n_dims, const uint64_t ne[4],
                             size_t nbytes, const void *data, gguf_tensor_fill_fn fill, void *ctx) {
    const slm_type_info *ti = slm_type_get(type);
    if (!ti) return slm_fail(SLM_ERR_INVALID_ARG, "tensor '%s': unknown type %u", name, type);
    if (n_dims < 1 || n_dims > GGUF_MAX_DIMS)
        return slm_fail(SLM_ERR_INVALID_ARG, "tensor '%s': %d dimensions (1 to 4 allowed)", name, n_dims);
    if (!*name) return slm_fail(SLM_ERR_INVALID_ARG, "tensor names must not be empty");
    for (size_t i = 0; i < w->n_t; i++)
        if (strcmp(w->t[i].name, name) == 0)
            return slm_fail(SLM_ERR_INVALID_ARG, "duplicate tensor name '%s'", name);
    size_t want = slm_row_bytes(type, (int64_t)ne[0]);
    if (ne[0] == 0 || ne[0] > INT64_MAX || want == 0)
        return slm_fail(SLM_ERR_INVALID_ARG, "tensor '%s': row length %llu is not a multiple of %s's block of %d",
                        name, (unsigned long long)ne[0], ti->name, ti->block_size);
    for (int d = 1; d < n_dims; d++) {
        if (ne[d] == 0 || want > SIZE_MAX / ne[d])
            return slm_fail(SLM_ERR_INVALID_ARG, "tensor '%s': bad dimension %d (%llu)", name, d,
                            (unsigned long long)ne[d]);
        want *= (size_t)ne[d];
    }
    if (want != nbytes)
        return slm_fail(SLM_ERR_INVALID_ARG, "tensor '%s': %zu bytes given, its shape and type need %zu",
                        name, nbytes, want);
    if (w->n_t == w->cap_t) {
        size_t cap = w->cap_t ? 2 * w->cap_t : 64;
        wtensor *nt = realloc(w->t, cap * sizeof *nt);
        if (!nt) return slm_fail(SLM_ERR_NOMEM, "out of memory adding tensor '%s'", name);
        w->t = nt, w->cap_t = cap;
    }
    char *nm = strdup(name);
    if (!nm) return slm_fail(SLM_ERR_NOMEM, "out of memory adding tensor '%s'", name);
    wtensor *t = &w->t[w->n_t++];
    *t = (wtensor){ .name = nm, .type = type, .n_dims = (uint32_t)n_dims, .nbytes = nbytes,
                    .data = data, .fill = fill, .ctx = ctx };
    for (int d = 0; d < GGUF_MAX_DIMS; d++) t->ne[d] = d < n_dims ? ne[d] : 1;
    return SLM_OK;
}

slm_status gguf_writer_add_tensor(gguf_writer *w, const char *name, uint32_t type, int n_dims,
                                  const uint64_t ne[4], const void *data, size_t nbytes) {
    if (!data) return slm_fail(SLM_ERR_INVALID_ARG, "tensor '%s': no data", name);
    return add_tensor(w, name, type, n_dims, ne, nbytes, data, NULL, NULL);
}

slm_status gguf_writer_add_tensor_cb(gguf_writer *w, const char *name, uint32_t type, int n_dims,
                                     const uint64_t ne[4], size_t nbytes, gguf_tensor_fill_fn fill,
                                     void *ctx) {
    if (!fill) return slm_fail(SLM_ERR_INVALID_ARG, "tensor '%s': no fill callback", name);
    return add_tensor(w, name, type, n_dims, ne, nbytes, NULL, fill, ctx);
}

/* ---- layout and output ---- */

static slm_status get_alignment(const gguf_writer *w, uint32_t *align) {
    *align = GGUF_DEFAULT_ALIGNMENT;
    for (size_t i = 0; i < w->n_kv; i++) {
        if (strcmp(w->kv[i].key, "general.alignment") != 0) continue;
        uint64_t v = 0;
        if (w->kv[i].type == GGUF_T_U32) v = rd_le(w->kv[i].val, 4);
        if (v == 0 || v > (1u << 30) || (v & (v - 1)))
            return slm_fail(SLM_ERR_INVALID_ARG, "general.alignment must be a u32 power of two");
        *align = (uint32_t)v;
    }
    return SLM_OK;
}

static uint64_t pad_to(uint64_t x, uint32_t a) { return (x + a - 1) / a * a; }

static uint64_t header_size(const gguf_writer *w) {
    uint64_t n = 4 + 4 + 8 + 8;
    for (size_t i = 0; i < w->n_kv; i++) n += 8 + strlen(w->kv[i].key) + 4 + w->kv[i].len;
    for (size_t i = 0; i < w->n_t; i++) n += 8 + strlen(w->t[i].name) + 4 + 8 * (uint64_t)w->t[i].n_dims + 4 + 8;
    return n;
}

uint64_t gguf_writer_file_size(const gguf_writer *w) {
    uint32_t a;
    if (get_alignment(w, &a)) a = GGUF_DEFAULT_ALIGNMENT;
    uint64_t n = pad_to(header_size(w), a);
    for (size_t i = 0; i < w->n_t; i++) n += pad_to(w->t[i].nbytes, a);
    return n;
}

typedef struct out_file {
    FILE *f;
    bool err;
} out_file;

static void o_put(out_file *o, const void *p, size_t n) {
    if (!o->err && n && fwrite(p, 1, n, o->f) != n) o->err = true;
}

static void o_le(out_file *o, uint64_t v, unsigned n) {
    uint8_t tmp[8];
    for (unsigned i = 0; i < n; i++) tmp[i] = (uint8_t)(v >> (8 * i));
    o_put(o, tmp, n);
}

static void o_zeros(out_file *o, uint64_t n) {
    static const uint8_t z[64];
    while (n) {
        size_t k = n < sizeof z ? (size_t)n : sizeof z;
        o_put(o, z, k);
        n -= k;
    }
}

static slm_status write_body(gguf_writer *w, out_file *o, const char *path, uint32_t align) {
    o_put(o, "GGUF", 4);
    o_le(o, 3, 4);
    o_le(o, w->n_t, 8);
    o_le(o, w->n_kv, 8);
    for (size_t i = 0; i < w->n_kv; i++) {
        o_le(o, strlen(w->kv[i].key), 8);
        o_put(o, w->kv[i].key, strlen(w->kv[i].key));
        o_le(o, w->kv[i].type, 4);
        o_put(o, w->kv[i].val, w->kv[i].len);
    }
    uint64_t off = 0;
    for (size_t i = 0; i < w->n_t; i++) {
        const wtensor *t = &w->t[i];
        o_le(o, strlen(t->name), 8);
        o_put(o, t->name, strlen(t->name));
        o_le(o, t->n_dims, 4);
        for (uint32_t d = 0; d < t->n_dims; d++) o_le(o, t->ne[d], 8);
        o_le(o, t->type, 4);
        o_le(o, off, 8);
        off += pad_to(t->nbytes, align);
    }
    uint64_t hs = header_size(w);
    o_zeros(o, pad_to(hs, align) - hs);

    void *buf = NULL;
    size_t buf_cap = 0;
    slm_status st = SLM_OK;
    for (size_t i = 0; i < w->n_t && st == SLM_OK && !o->err; i++) {
        const wtensor *t = &w->t[i];
        const void *src = t->data;
        if (t->fill) {
            if (t->nbytes > buf_cap) {
                free(buf);
                buf = malloc(t->nbytes);
                buf_cap = buf ? t->nbytes : 0;
                if (!buf) { st = slm_fail(SLM_ERR_NOMEM, "out of memory for tensor '%s' (%zu bytes)", t->name, t->nbytes); break; }
            }
            st = t->fill(t->ctx, i, buf, t->nbytes);
            if (st) break;
            src = buf;
        }
        o_put(o, src, t->nbytes);
        o_zeros(o, pad_to(t->nbytes, align) - t->nbytes);
    }
    free(buf);
    if (st == SLM_OK && o->err) st = slm_fail(SLM_ERR_IO, "cannot write %s: %s", path, strerror(errno));
    return st;
}

slm_status gguf_writer_to_memory(gguf_writer *w, unsigned char **out, size_t *len) {
    *out = NULL;
    *len = 0;
    uint32_t align;
    slm_status st = get_alignment(w, &align);
    if (st) return st;
    char *buf = NULL;
    size_t n = 0;
    out_file o = { open_memstream(&buf, &n), false };
    if (!o.f) return slm_fail(SLM_ERR_NOMEM, "out of memory for a GGUF buffer");
    st = write_body(w, &o, "a GGUF buffer", align);
    if (fclose(o.f) != 0 && st == SLM_OK) st = slm_fail(SLM_ERR_NOMEM, "out of memory for a GGUF buffer");
    if (st) {
        free(buf);
        return st;
    }
    *out = (unsigned char *)buf;
    *len = n;
    return SLM_OK;
}

slm_status gguf_writer_write(gguf_writer *w, const char *path) {
    uint32_t align;
    slm_status st = get_alignment(w, &align);
    if (st) return st;
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 32);
    if (!tmp) return slm_fail(SLM_ERR_NOMEM, "out of memory");
    snprintf(tmp, plen + 32, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        st = slm_fail(SLM_ERR_IO, "cannot create %s: %s", tmp, strerror(errno));
        free(tmp);
        return st;
    }
    out_file o = { fdopen(fd, "wb"), false };
    if (!o.f) {
        st = slm_fail(SLM_ERR_IO, "cannot open %s: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        free(tmp);
        return st;
    }
    setvbuf(o.f, NULL, _IOFBF, 1 << 20);
    st = write_body(w, &o, tmp, align);
    if (st == SLM_OK && (fflush(o.f) != 0 || fsync(fileno(o.f)) != 0))
        st = slm_fail(SLM_ERR_IO, "cannot write %s: %s", tmp, strerror(errno));
    if (fclose(o.f) != 0 && st == SLM_OK) st = slm_fail(SLM_ERR_IO, "cannot close %s: %s", tmp, strerror(errno));
    if (st == SLM_OK && rename(tmp, path) != 0)
        st = slm_fail(SLM_ERR_IO, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
    if (st) unlink(tmp);
    free(tmp);
    return st;
}
