#include "testlib.h"

#include <ftw.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "slm.h"

int test_failures;
int test_checks;
int test_skips;

void test_skip(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("SKIP: ", stdout);
    vprintf(fmt, ap);
    fputc('\n', stdout);
    va_end(ap);
    fflush(stdout);
    test_skips++;
}

int test_finish(void) {
    printf("%d checks, %d failed", test_checks, test_failures);
    if (test_skips) printf(", %d part%s skipped (see SKIP above)", test_skips, test_skips == 1 ? "" : "s");
    putchar('\n');
    if (test_failures) return 1;
    return test_skips ? TEST_SKIP : 0;
}

const char *test_model_path(void) {
    const char *p = getenv("SLM_TEST_MODEL");
    if (!p || !*p) return NULL;
    FILE *f = fopen(p, "rb");
    if (!f) return NULL;
    fclose(f);
    return p;
}

char *test_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) != 0) { fclose(f); return NULL; }
    long n = ftell(f);
    if (n < 0 || fseek(f, 0, SEEK_SET) != 0) { fclose(f); return NULL; }
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) { free(buf); buf = NULL; }
    fclose(f);
    if (buf) { buf[n] = '\0'; if (len) *len = (size_t)n; }
    return buf;
}

void test_expect_model_fail(const char *what, const void *buf, size_t len, const char *want) {
    char path[] = "/tmp/slm_bad_model_XXXXXX";
    int fd = mkstemp(path);
    CHECKF(fd >= 0, "%s: cannot create a temporary file", what);
    if (fd < 0) return;
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, (const char *)buf + off, len - off);
        if (w <= 0) break;
        off += (size_t)w;
    }
    close(fd);
    CHECKF(off == len, "%s: wrote %zu of %zu bytes", what, off, len);
    slm_model *m = NULL;
    slm_status st = slm_model_open(path, &m);
    CHECKF(st != SLM_OK && m == NULL, "%s: opened a damaged model", what);
    CHECKF(strstr(slm_last_error(), want) != NULL, "%s: message '%s' lacks '%s'", what, slm_last_error(), want);
    if (m) slm_model_close(m);
    unlink(path);
}

static char tmp_dir[64];

const char *test_tmp_dir(void) {
    if (!tmp_dir[0]) {
        snprintf(tmp_dir, sizeof tmp_dir, "/tmp/slm_test_XXXXXX");
        if (!mkdtemp(tmp_dir)) {
            perror("mkdtemp");
            tmp_dir[0] = '\0';
            return NULL;
        }
    }
    return tmp_dir;
}

void test_tmp_path(char *buf, size_t cap, const char *name) {
    const char *d = test_tmp_dir();
    snprintf(buf, cap, "%s/%s", d ? d : "/nonexistent", name);
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    return remove(path) == 0 ? 0 : -1;
}

void test_tmp_cleanup(void) {
    if (!tmp_dir[0]) return;
    if (nftw(tmp_dir, remove_one, 16, FTW_DEPTH | FTW_PHYS) != 0) fprintf(stderr, "could not remove %s\n", tmp_dir);
    tmp_dir[0] = '\0';
}

double test_norm(const float *v, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)v[i] * v[i];
    return sqrt(s);
}
