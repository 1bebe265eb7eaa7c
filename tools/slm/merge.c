/* slm merge: fold a LoRA adapter into a copy of its base model. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void merge_help(FILE *out) {
    fputs("usage: slm merge BASE.gguf ADAPTER.gguf OUT.gguf [--scale S] [--f16]\n"
          "Writes a copy of BASE with the LoRA adapter folded in: W' = W + S * alpha/rank * B A for\n"
          "every adapted matrix, stored as F32 (F16 with --f16); every other tensor and all metadata\n"
          "are copied unchanged. `slm quantize OUT.gguf SMALL.gguf --type q4_k_m` then makes it small.\n\n"
          "  --scale S   multiply the adapter's update by S (default 1)\n"
          "  --f16       store the merged matrices as F16 instead of F32\n", out);
}

int cmd_merge(int argc, char **argv) {
    const char *pos[3] = { 0 };
    int n_pos = 0;
    float scale = 1.0f;
    bool f16 = false;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { merge_help(stdout); return 0; }
        if (!strcmp(a, "--f16")) { f16 = true; continue; }
        if (!strcmp(a, "--scale")) {
            if (i + 1 >= argc) { fprintf(stderr, "slm merge: --scale needs a value\n"); return 2; }
            char *end;
            errno = 0;
            double v = strtod(argv[++i], &end);
            if (errno || end == argv[i] || *end || !isfinite(v) || fabs(v) > 100) {
                fprintf(stderr, "slm merge: --scale expects a number in -100..100, got '%s'\n", argv[i]);
                return 2;
            }
            scale = (float)v;
            continue;
        }
        if (a[0] == '-' && a[1]) { fprintf(stderr, "slm merge: unknown option '%s' (see slm merge --help)\n", a); return 2; }
        if (n_pos == 3) { fprintf(stderr, "slm merge: too many arguments (see slm merge --help)\n"); return 2; }
        pos[n_pos++] = a;
    }
    if (n_pos != 3) { fprintf(stderr, "slm merge: give BASE.gguf ADAPTER.gguf OUT.gguf (see slm merge --help)\n"); return 2; }
    double t0 = cli_now_ms();
    if (slm_lora_merge(pos[0], pos[1], pos[2], scale, f16)) {
        fprintf(stderr, "slm merge: %s\n", slm_last_error());
        return 1;
    }
    fprintf(stderr, "slm merge: wrote %s (%s merged matrices) in %.1f s\n", pos[2], f16 ? "F16" : "F32",
            (cli_now_ms() - t0) / 1e3);
    return 0;
}
