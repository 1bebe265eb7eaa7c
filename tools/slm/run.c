/* slm run: generate a continuation of a prompt, streaming it to stdout. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void run_help(FILE *out) {
    fputs("usage: slm run [options] -p PROMPT\n"
          "Generates a continuation of PROMPT (or of the text in -f FILE) and streams it to stdout;\n"
          "timings go to stderr. Special tokens such as <start_of_turn> in the prompt are honoured.\n\n"
          "  -p, --prompt TEXT       the prompt\n"
          "  -f, --file FILE         read the prompt from FILE\n", out);
    cli_print_gen_help(out);
}

static char *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    for (size_t r; buf && (r = fread(buf + n, 1, cap - n, f)) > 0;) {
        n += r;
        if (n == cap) { char *nb = realloc(buf, cap *= 2); if (!nb) { free(buf); buf = NULL; } else buf = nb; }
    }
    fclose(f);
    *len = n;
    return buf;
}

int cmd_run(int argc, char **argv) {
    cli_gen_opts o;
    cli_gen_defaults(&o);
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) { run_help(stdout); return 0; }
        int r = cli_parse_gen_opt(&o, argc, argv, &i);
        if (r < 0) return 2;
        if (r == 0) {
            fprintf(stderr, "slm run: unknown option '%s' (see slm run --help)\n", argv[i]);
            return 2;
        }
    }
    char *file_text = NULL;
    size_t len = 0;
    if (o.prompt_file) {
        file_text = read_all(o.prompt_file, &len);
        if (!file_text) { fprintf(stderr, "slm run: cannot read prompt file %s\n", o.prompt_file); return 1; }
    } else if (o.prompt) {
        len = strlen(o.prompt);
    } else {
        fprintf(stderr, "slm run: give a prompt with -p TEXT or -f FILE (see slm run --help)\n");
        return 2;
    }
    const char *text = file_text ? file_text : o.prompt;
    cli_engine e;
    if (cli_engine_open(&e, &o)) { free(file_text); return 1; }
    slm_token *toks = NULL;
    size_t n = 0;
    int rc = 1;
    if (slm_tokenize(e.model, text, len, true, true, &toks, &n)) {
        fprintf(stderr, "slm run: bad prompt: %s\n", slm_last_error());
    } else {
        cli_gen_stats st;
        fwrite(text, 1, len, stdout);
        rc = cli_generate(&e, toks, n, o.n_predict, stdout, &st);
        if (rc == 0) { fputc('\n', stdout); cli_print_stats(&st); }
    }
    free(toks);
    free(file_text);
    cli_engine_close(&e);
    return rc;
}
