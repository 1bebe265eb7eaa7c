/* slm info: a GGUF file's metadata and tensor table. */
#include <string.h>

#include "cli.h"

int cmd_info(int argc, char **argv) {
    const char *path = NULL;
    int max_items = 8;
    bool no_tensors = false;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            puts("usage: slm info [FILE.gguf] [--no-tensors]\n"
                 "Prints a GGUF file's metadata and tensor table (default: the default model).\n"
                 "  -m, --model FILE   the file (or give it as the first argument)\n"
                 "      --no-tensors   metadata only");
            return 0;
        }
        if ((!strcmp(argv[i], "-m") || !strcmp(argv[i], "--model")) && i + 1 < argc) path = argv[++i];
        else if (!strcmp(argv[i], "--no-tensors")) no_tensors = true;
        else if (argv[i][0] != '-' && !path) path = argv[i];
        else { fprintf(stderr, "slm info: unknown option '%s' (see slm info --help)\n", argv[i]); return 2; }
    }
    char buf[4096];
    if (!(path = cli_model_path(path, buf, sizeof buf))) return 1;
    slm_gguf *g;
    if (slm_gguf_open(path, &g)) {
        fprintf(stderr, "slm info: %s: %s\n", path, slm_last_error());
        return 1;
    }
    printf("file: %s\nGGUF version %u, %llu metadata keys, %llu tensors\n\n", path, slm_gguf_version(g),
           (unsigned long long)slm_gguf_n_meta(g), (unsigned long long)slm_gguf_n_tensors(g));
    char val[1024];
    for (uint64_t i = 0; i < slm_gguf_n_meta(g); i++) {
        size_t kl;
        const char *k = slm_gguf_meta_key(g, i, &kl);
        slm_gguf_meta_format(g, i, max_items, val, sizeof val);
        printf("%-44.*s %s\n", (int)kl, k, val);
    }
    if (!no_tensors) {
        printf("\n%-5s %-36s %-6s %-24s %12s %12s\n", "#", "tensor", "type", "shape", "offset", "bytes");
        uint64_t total = 0;
        for (uint64_t i = 0; i < slm_gguf_n_tensors(g); i++) {
            slm_tensor_desc t;
            slm_gguf_tensor(g, i, &t);
            char shape[64];
            int p = 0;
            for (int d = 0; d < t.n_dims; d++)
                p += snprintf(shape + p, sizeof shape - p, d ? " x %llu" : "%llu", (unsigned long long)t.ne[d]);
            printf("%-5llu %-36.*s %-6s %-24s %12llu %12llu\n", (unsigned long long)i, (int)t.name_len, t.name,
                   t.type_name, shape, (unsigned long long)t.offset, (unsigned long long)t.nbytes);
            total += t.nbytes;
        }
        printf("\ntensor data: %.1f MiB\n", total / 1048576.0);
    }
    slm_gguf_close(g);
    return 0;
}
