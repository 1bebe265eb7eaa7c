/* GGUF writer: (1) copying every key and tensor of a fixture written by the
 * `gguf` Python package reproduces that file byte for byte (same layout,
 * padding and alignment as an independent writer); (2) a file built with the
 * typed setters reads back through our reader with every value intact;
 * (3) the `gguf` package reads the same file back and finds the same values
 * (tests/py/check_gguf_written.py; that part is skipped when the test venv's
 * python is absent); (4) failures leave neither the target nor a temporary. */
#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gguf/gguf.h"
#include "gguf/gguf_write.h"
#include "quant/quant.h"
#include "testlib.h"

static char tmpdir[256];

static void path_in_tmp(char *buf, size_t cap, const char *name) { snprintf(buf, cap, "%s/%s", tmpdir, name); }

/* Number of entries in tmpdir (temporary files must not linger). */
static int count_entries(void) {
    DIR *d = opendir(tmpdir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

static void test_copy_is_identical(void) {
    const char *src_path = "tests/fixtures/gguf/all_types.gguf";
    gguf_file *src = NULL;
    CHECK(gguf_open(src_path, &src) == SLM_OK);
    if (!src) return;
    gguf_writer *w = NULL;
    CHECK(gguf_writer_new(&w) == SLM_OK);
    CHECK(gguf_writer_copy_all_kv(w, src) == SLM_OK);
    for (uint64_t i = 0; i < src->n_tensors; i++) {
        const gguf_tensor *t = &src->tensors[i];
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.ptr);
        CHECK(gguf_writer_add_tensor(w, name, t->type, (int)t->n_dims, t->ne, t->data, t->nbytes) == SLM_OK);
    }
    char out[300];
    path_in_tmp(out, sizeof out, "copy.gguf");
    CHECK(gguf_writer_file_size(w) == src->size);
    CHECK(gguf_writer_write(w, out) == SLM_OK);
    size_t n = 0;
    char *got = test_read_file(out, &n);
    CHECKF(got && n == src->size && memcmp(got, src->base, n) == 0,
           "copy of %s differs (size %zu vs %zu)", src_path, n, src->size);
    free(got);
    unlink(out);
    gguf_writer_free(w);
    gguf_close(src);
}

/* The file the Python check also reads: deterministic contents that
 * tests/py/check_gguf_written.py re-derives. */
#define N_F32 37
static float f32_data[N_F32 * 3];
static uint16_t f16_data[64 * 2];
static uint8_t q8_data[2 * 34 * 2];
static uint8_t q4k_data[144 * 3];

static slm_status fill_q4k(void *ctx, size_t index, void *dst, size_t nbytes) {
    (void)ctx;
    CHECK(index == 4);
    memcpy(dst, q4k_data, nbytes);
    return SLM_OK;
}

static slm_status build_sample(gguf_writer *w) {
    for (int i = 0; i < N_F32 * 3; i++) f32_data[i] = (float)i * 0.5f - 7.0f;
    for (int i = 0; i < 128; i++) f16_data[i] = slm_f32_to_f16((float)(i - 64) / 8.0f);
    for (size_t i = 0; i < sizeof q8_data; i++) q8_data[i] = (uint8_t)(i * 7 + 3);
    for (size_t b = 0; b < 4; b++) { q8_data[b * 34] = 0x00; q8_data[b * 34 + 1] = 0x3c; } /* d = 1 */
    for (size_t i = 0; i < sizeof q4k_data; i++) q4k_data[i] = (uint8_t)(i * 13 + 1);
    for (size_t b = 0; b < 3; b++) { /* d = 0.5, dmin = 0.25 (f16) */
        q4k_data[b * 144 + 0] = 0x00; q4k_data[b * 144 + 1] = 0x38;
        q4k_data[b * 144 + 2] = 0x00; q4k_data[b * 144 + 3] = 0x34;
    }
    static const char *const strs[] = { "alpha", "", "g\xc3\xa9", "<0x0A>" };
    static const int32_t ints[] = { 1, -2, 2147483647, -2147483647 - 1 };
    static const float floats[] = { 0.5f, -1e-20f, 3.0e30f };
    slm_status st = SLM_OK;
    st |= gguf_writer_set_str(w, "general.architecture", "testarch");
    st |= gguf_writer_set_u32(w, "general.alignment", 64);
    st |= gguf_writer_set_u32(w, "t.u32", 4000000000u);
    st |= gguf_writer_set_i32(w, "t.i32", -123456);
    st |= gguf_writer_set_u64(w, "t.u64", 0x123456789abcdefull);
    st |= gguf_writer_set_f32(w, "t.f32", 0.1f);
    st |= gguf_writer_set_bool(w, "t.bool", true);
    st |= gguf_writer_set_str(w, "t.str", "hello \xe2\x96\x81 world");
    st |= gguf_writer_set_str(w, "t.replaced", "first");
    st |= gguf_writer_set_arr_str(w, "t.arr_str", strs, 4);
    st |= gguf_writer_set_arr_i32(w, "t.arr_i32", ints, 4);
    st |= gguf_writer_set_arr_f32(w, "t.arr_f32", floats, 3);
    st |= gguf_writer_set_arr_i32(w, "t.arr_empty", NULL, 0);
    st |= gguf_writer_set_str(w, "t.replaced", "second"); /* replaces, keeps position */
    st |= gguf_writer_set_str(w, "t.removed", "x");
    CHECK(gguf_writer_remove_kv(w, "t.removed"));
    CHECK(!gguf_writer_remove_kv(w, "t.removed"));
    const uint64_t ne_f32[4] = { N_F32, 3, 1, 1 }, ne_f16[4] = { 64, 2, 1, 1 };
    const uint64_t ne_q8[4] = { 64, 2, 1, 1 }, ne_q4k[4] = { 256, 1, 3, 1 };
    const uint64_t ne_vec[4] = { 5, 1, 1, 1 };
    st |= gguf_writer_add_tensor(w, "a.f32", SLM_T_F32, 2, ne_f32, f32_data, sizeof f32_data);
    st |= gguf_writer_add_tensor(w, "b.f16", SLM_T_F16, 2, ne_f16, f16_data, sizeof f16_data);
    st |= gguf_writer_add_tensor(w, "c.q8_0", SLM_T_Q8_0, 2, ne_q8, q8_data, sizeof q8_data);
    st |= gguf_writer_add_tensor(w, "d.vec", SLM_T_F32, 1, ne_vec, f32_data, 5 * sizeof(float));
    st |= gguf_writer_add_tensor_cb(w, "e.q4_k", SLM_T_Q4_K, 3, ne_q4k, sizeof q4k_data, fill_q4k, NULL);
    return st;
}

static void test_setters_round_trip(char *out, size_t cap) {
    gguf_writer *w = NULL;
    CHECK(gguf_writer_new(&w) == SLM_OK);
    CHECK(build_sample(w) == SLM_OK);
    CHECK(gguf_writer_n_kv(w) == 13);
    CHECK(gguf_writer_n_tensors(w) == 5);
    /* bad tensors are refused with a message */
    const uint64_t bad_ne[4] = { 33, 1, 1, 1 };
    CHECK(gguf_writer_add_tensor(w, "bad", SLM_T_Q8_0, 2, bad_ne, q8_data, 34) != SLM_OK);
    CHECK(strstr(slm_last_error(), "multiple") != NULL);
    const uint64_t ne2[4] = { 64, 2, 1, 1 };
    CHECK(gguf_writer_add_tensor(w, "a.f32", SLM_T_F16, 2, ne2, f16_data, sizeof f16_data) != SLM_OK);
    CHECK(strstr(slm_last_error(), "duplicate") != NULL);
    CHECK(gguf_writer_add_tensor(w, "short", SLM_T_F16, 2, ne2, f16_data, 10) != SLM_OK);
    CHECK(gguf_writer_add_tensor(w, "t", 99, 1, ne2, f16_data, 10) != SLM_OK);
    CHECK(gguf_writer_set_u32(w, "", 1) != SLM_OK);

    path_in_tmp(out, cap, "sample.gguf");
    CHECK(gguf_writer_write(w, out) == SLM_OK);
    /* the in-memory builder gives the file's bytes, and gguf_parse reads them */
    unsigned char *mem = NULL;
    size_t mlen = 0, flen = 0;
    CHECK(gguf_writer_to_memory(w, &mem, &mlen) == SLM_OK);
    char *file = test_read_file(out, &flen);
    CHECKF(mem && file && mlen == flen && memcmp(mem, file, flen) == 0, "to_memory: %zu bytes, the file %zu", mlen, flen);
    gguf_file *pm = NULL;
    CHECK(mem && gguf_parse(mem, mlen, &pm) == SLM_OK && pm->n_tensors == 5 && pm->n_kv == 13);
    gguf_close(pm);
    free(file);
    free(mem);
    gguf_writer_free(w);

    gguf_file *f = NULL;
    CHECK(gguf_open(out, &f) == SLM_OK);
    if (!f) return;
    CHECK(f->version == 3);
    CHECK(f->alignment == 64);
    CHECK(f->data_offset % 64 == 0);
    CHECK(f->n_kv == 13 && f->n_tensors == 5);
    int64_t iv;
    double dv;
    bool bv;
    gguf_str sv;
    CHECK(gguf_get_i64(f, "t.u32", &iv) && iv == 4000000000ll);
    CHECK(gguf_get_i64(f, "t.i32", &iv) && iv == -123456);
    CHECK(gguf_get_i64(f, "t.u64", &iv) && iv == 0x123456789abcdefll);
    CHECK(gguf_get_f64(f, "t.f32", &dv) && (float)dv == 0.1f);
    CHECK(gguf_get_bool(f, "t.bool", &bv) && bv);
    CHECK(gguf_get_str(f, "t.str", &sv) && gguf_str_eq(sv, "hello \xe2\x96\x81 world"));
    CHECK(gguf_get_str(f, "t.replaced", &sv) && gguf_str_eq(sv, "second"));
    CHECK(gguf_str_eq(f->kv[8].key, "t.replaced"));
    CHECK(gguf_find(f, "t.removed") == NULL);
    const gguf_kv *a = gguf_find(f, "t.arr_str");
    CHECK(a && a->arr_type == GGUF_T_STRING && a->arr_n == 4 && gguf_str_eq(a->strs[0], "alpha") &&
          a->strs[1].len == 0 && gguf_str_eq(a->strs[2], "g\xc3\xa9") && gguf_str_eq(a->strs[3], "<0x0A>"));
    a = gguf_find(f, "t.arr_i32");
    CHECK(a && a->arr_n == 4 && gguf_arr_i64(a, 2) == 2147483647 && gguf_arr_i64(a, 3) == -2147483648ll);
    a = gguf_find(f, "t.arr_f32");
    CHECK(a && a->arr_n == 3 && (float)gguf_arr_f64(a, 1) == -1e-20f && (float)gguf_arr_f64(a, 2) == 3.0e30f);
    a = gguf_find(f, "t.arr_empty");
    CHECK(a && a->arr_type == GGUF_T_I32 && a->arr_n == 0);
    const gguf_tensor *t = gguf_find_tensor(f, "a.f32");
    CHECK(t && t->type == SLM_T_F32 && t->ne[0] == N_F32 && t->ne[1] == 3 && t->offset % 64 == 0 &&
          memcmp(t->data, f32_data, sizeof f32_data) == 0);
    t = gguf_find_tensor(f, "b.f16");
    CHECK(t && t->offset % 64 == 0 && memcmp(t->data, f16_data, sizeof f16_data) == 0);
    t = gguf_find_tensor(f, "c.q8_0");
    CHECK(t && t->type == SLM_T_Q8_0 && t->offset % 64 == 0 && memcmp(t->data, q8_data, sizeof q8_data) == 0);
    t = gguf_find_tensor(f, "d.vec");
    CHECK(t && t->n_dims == 1 && t->ne[0] == 5 && memcmp(t->data, f32_data, 20) == 0);
    t = gguf_find_tensor(f, "e.q4_k");
    CHECK(t && t->n_dims == 3 && t->ne[2] == 3 && t->offset % 64 == 0 &&
          memcmp(t->data, q4k_data, sizeof q4k_data) == 0);
    gguf_close(f);
}

static void test_python_reads_it(const char *path) {
    const char *py = getenv("SLM_TEST_PYTHON");
    const char *dflt = ".cache/test-venv/bin/python";
    if (!py || !*py) py = access(dflt, X_OK) == 0 ? dflt : NULL;
    if (!py) {
        test_skip("no test venv python (scripts/test_venv.sh): the gguf-package read-back did not run");
        return;
    }
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s' tests/py/check_gguf_written.py '%s'", py, path);
    int rc = system(cmd);
    CHECKF(rc == 0, "the gguf package did not read the file back as written (rc %d)", rc);
}

static slm_status fill_fails(void *ctx, size_t index, void *dst, size_t nbytes) {
    (void)ctx, (void)index, (void)dst, (void)nbytes;
    return SLM_ERR_IO;
}

static void test_failures_leave_nothing(void) {
    int before = count_entries();
    char out[300];
    path_in_tmp(out, sizeof out, "fail.gguf");
    gguf_writer *w = NULL;
    CHECK(gguf_writer_new(&w) == SLM_OK);
    const uint64_t ne[4] = { 4, 1, 1, 1 };
    static const float x[4] = { 1, 2, 3, 4 };
    CHECK(gguf_writer_add_tensor(w, "ok", SLM_T_F32, 1, ne, x, sizeof x) == SLM_OK);
    CHECK(gguf_writer_add_tensor_cb(w, "broken", SLM_T_F32, 1, ne, sizeof x, fill_fails, NULL) == SLM_OK);
    CHECK(gguf_writer_write(w, out) != SLM_OK);
    CHECK(access(out, F_OK) != 0);
    CHECK(count_entries() == before);
    gguf_writer_free(w);

    /* bad alignment value */
    CHECK(gguf_writer_new(&w) == SLM_OK);
    CHECK(gguf_writer_set_u32(w, "general.alignment", 48) == SLM_OK);
    CHECK(gguf_writer_write(w, out) != SLM_OK);
    CHECK(strstr(slm_last_error(), "alignment") != NULL);
    CHECK(access(out, F_OK) != 0);
    /* a directory that does not exist */
    char bad[300];
    path_in_tmp(bad, sizeof bad, "no/such/dir/x.gguf");
    CHECK(gguf_writer_set_u32(w, "general.alignment", 32) == SLM_OK);
    CHECK(gguf_writer_write(w, bad) == SLM_ERR_IO);
    CHECK(strstr(slm_last_error(), "no/such/dir") != NULL);
    CHECK(count_entries() == before);
    gguf_writer_free(w);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/slm_test_gguf_write.XXXXXX");
    if (!mkdtemp(tmpdir)) { perror("mkdtemp"); return 1; }
    test_copy_is_identical();
    char sample[300];
    test_setters_round_trip(sample, sizeof sample);
    test_python_reads_it(sample);
    unlink(sample);
    test_failures_leave_nothing();
    rmdir(tmpdir);
    return test_finish();
}
