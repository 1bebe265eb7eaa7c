#include "measure.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

char *measure_read_file(const char *cmd, const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    const char *sp = cmd ? " " : "";  /* "slm CMD: ..." or, without a command, "slm: ..." */
    if (!cmd) cmd = "";
    if (!f) { fprintf(stderr, "slm%s%s: cannot open %s: %s\n", sp, cmd, path, strerror(errno)); return NULL; }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    for (size_t r; buf && (r = fread(buf + n, 1, cap - n - 1, f)) > 0;) {
        n += r;
        if (n + 1 == cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) { free(buf); buf = NULL; } else buf = nb;
        }
    }
    int err = ferror(f);
    fclose(f);
    if (!buf || err) {
        fprintf(stderr, "slm%s%s: cannot read %s\n", sp, cmd, path);
        free(buf);
        return NULL;
    }
    buf[n] = 0;
    *len = n;
    return buf;
}

int measure_int_arg(const char *cmd, int argc, char **argv, int *i, long lo, long hi, int *out) {
    const char *flag = argv[*i];
    if (*i + 1 >= argc) { fprintf(stderr, "slm %s: %s needs a value\n", cmd, flag); return -1; }
    const char *s = argv[++*i];
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "slm %s: %s expects an integer in %ld..%ld, got '%s'\n", cmd, flag, lo, hi, s);
        return -1;
    }
    *out = (int)v;
    return 0;
}

int measure_open(const char *cmd, const char *model_path, int n_ctx, int n_threads, slm_model **m,
                 slm_session **s) {
    char buf[4096];
    *m = NULL;
    *s = NULL;
    const char *path = cli_model_path(model_path, buf, sizeof buf);
    if (!path) return 1;
    if (slm_model_open(path, m)) {
        fprintf(stderr, "slm %s: cannot load %s: %s\n", cmd, path, slm_last_error());
        return 1;
    }
    slm_session_params sp = { .n_ctx = n_ctx, .n_threads = n_threads };
    if (slm_session_new(*m, &sp, s)) {
        fprintf(stderr, "slm %s: %s\n", cmd, slm_last_error());
        slm_model_close(*m);
        *m = NULL;
        return 1;
    }
    return 0;
}
