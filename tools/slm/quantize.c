/* slm quantize: writes a copy of a GGUF model with its tensors requantized. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static void usage(FILE *out) {
    fputs("usage: slm quantize IN.gguf OUT.gguf --type TYPE [--imatrix FILE] [-t N]\n"
          "Requantizes every tensor of IN (any type: it is dequantized first) into OUT.\n"
          "  --type TYPE       a mix (which tensor gets which type: docs/QUANTIZATION.md):\n"
          "                   ", out);
    for (int i = 0; slm_quantize_mix_name(i); i++) fprintf(out, " %s", slm_quantize_mix_name(i));
    fputs("\n"
          "  --imatrix FILE    importance matrix (GGUF, as `llama-imatrix` or `slm imatrix` write it):\n"
          "                    weights each column's rounding error by its mean squared activation\n"
          "  -t, --threads N   threads (default: all CPUs)\n"
          "  -q, --quiet       no progress lines\n"
          "OUT is written under a temporary name and renamed when complete.\n", out);
}

typedef struct progress {
    bool tty, quiet;
} progress;

static void on_tensor(void *user, int i, int n, const char *name, const char *type_name, uint64_t n_elements) {
    const progress *pr = user;
    if (pr->quiet) return;
    if (pr->tty) {
        int width = 24, done = n ? (i + 1) * width / n : width;
        char bar[32];
        for (int k = 0; k < width; k++) bar[k] = k < done ? '#' : '.';
        bar[width] = '\0';
        fprintf(stderr, "\r[%s] %4d/%d %-40.40s %-5s", bar, i + 1, n, name, type_name);
        if (i + 1 == n) fputc('\n', stderr);
    } else {
        fprintf(stderr, "[%4d/%d] %-40s %-5s %12llu elements\n", i + 1, n, name, type_name,
                (unsigned long long)n_elements);
    }
    fflush(stderr);
}

int cmd_quantize(int argc, char **argv) {
    const char *pos[2] = { NULL, NULL };
    int n_pos = 0;
    slm_quantize_params p;
    slm_quantize_default_params(&p);
    p.type = NULL;
    progress pr = { isatty(2) != 0, false };
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(stdout); return 0; }
        bool has_val = i + 1 < argc;
        if (!strcmp(a, "--type") || !strcmp(a, "--imatrix") || !strcmp(a, "-t") || !strcmp(a, "--threads")) {
            if (!has_val) { fprintf(stderr, "slm quantize: %s needs a value\n", a); return 2; }
            const char *v = argv[++i];
            if (!strcmp(a, "--type")) p.type = v;
            else if (!strcmp(a, "--imatrix")) p.imatrix = v;
            else {
                char *end;
                errno = 0;
                long n = strtol(v, &end, 10);
                if (errno || *end || end == v || n < 1 || n > 1024) {
                    fprintf(stderr, "slm quantize: %s expects an integer from 1 to 1024, got '%s'\n", a, v);
                    return 2;
                }
                p.n_threads = (int)n;
            }
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            pr.quiet = true;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "slm quantize: unknown option '%s' (see slm quantize --help)\n", a);
            return 2;
        } else if (n_pos < 2) {
            pos[n_pos++] = a;
        } else {
            fprintf(stderr, "slm quantize: unexpected argument '%s' (see slm quantize --help)\n", a);
            return 2;
        }
    }
    if (n_pos < 2) { fputs("slm quantize: give an input and an output file\n\n", stderr); usage(stderr); return 2; }
    if (!p.type) { fputs("slm quantize: give --type (e.g. --type q4_k_m)\n", stderr); return 2; }
    p.progress = on_tensor;
    p.progress_user = &pr;
    slm_quantize_stats s;
    double t0 = cli_now_ms();
    slm_status st = slm_quantize(pos[0], pos[1], &p, &s);
    if (st) {
        if (pr.tty && !pr.quiet) fputc('\n', stderr);
        fprintf(stderr, "slm quantize: %s\n", slm_last_error());
        return 1;
    }
    double secs = (cli_now_ms() - t0) / 1000.0;
    printf("%s -> %s (%s)\n", pos[0], pos[1], p.type);
    printf("  file size      %8.2f MiB -> %8.2f MiB\n", s.in_file_bytes / 1048576.0, s.out_file_bytes / 1048576.0);
    printf("  tensor data    %8.2f MiB -> %8.2f MiB\n", s.in_tensor_bytes / 1048576.0,
           s.out_tensor_bytes / 1048576.0);
    printf("  bits per weight %7.3f     -> %7.3f      (%llu weights)\n", s.in_bpw, s.out_bpw,
           (unsigned long long)s.n_elements);
    printf("  tensors        %d, %d requantized, %d copied", s.n_tensors, s.n_requantized,
           s.n_tensors - s.n_requantized);
    if (p.imatrix) printf(", %d with importance weights", s.n_imatrix);
    printf("\n  time           %.1f s\n", secs);
    return 0;
}
