/* slm imatrix: activation statistics over a calibration text, for
 * importance-weighted quantization (slm quantize --imatrix). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "measure.h"

static void imatrix_help(FILE *out) {
    fputs("usage: slm imatrix -m MODEL -f CALIBRATION.txt -o IMATRIX.gguf [options]\n"
          "Runs the model over the text in windows of --ctx tokens (each starting with BOS) and\n"
          "records, for every input column of every layer weight matrix, the sum of the squared\n"
          "activations and the token count. Writes them as GGUF in llama.cpp's imatrix layout.\n\n"
          "  -m, --model FILE        GGUF model (default: the fetched Gemma 3 270M)\n"
          "  -f, --file FILE         calibration text (UTF-8)\n"
          "  -o, --output FILE       where to write the importance matrix\n"
          "      --ctx N             window length in tokens (default 512)\n"
          "      --chunks N          use only the first N windows (default: all)\n"
          "  -t, --threads N         threads (default: all CPUs)\n", out);
}

int cmd_imatrix(int argc, char **argv) {
    const char *model = NULL, *file = NULL, *outp = NULL;
    int n_threads = 0, n_ctx = 512, n_chunks = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        int bad = 0;
        bool has_val = i + 1 < argc;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { imatrix_help(stdout); return 0; }
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) { if (has_val) model = argv[++i]; else bad = 1; }
        else if (!strcmp(a, "-f") || !strcmp(a, "--file")) { if (has_val) file = argv[++i]; else bad = 1; }
        else if (!strcmp(a, "-o") || !strcmp(a, "--output")) { if (has_val) outp = argv[++i]; else bad = 1; }
        else if (!strcmp(a, "--ctx")) bad = measure_int_arg("imatrix", argc, argv, &i, 2, 1 << 20, &n_ctx) ? 2 : 0;
        else if (!strcmp(a, "--chunks")) bad = measure_int_arg("imatrix", argc, argv, &i, 1, 1 << 30, &n_chunks) ? 2 : 0;
        else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) bad = measure_int_arg("imatrix", argc, argv, &i, 1, 1024, &n_threads) ? 2 : 0;
        else { fprintf(stderr, "slm imatrix: unknown option '%s' (see slm imatrix --help)\n", a); return 2; }
        if (bad == 1) fprintf(stderr, "slm imatrix: %s needs a value\n", a);
        if (bad) return 2;
    }
    if (!file || !outp) {
        fprintf(stderr, "slm imatrix: give the calibration text with -f FILE and the output with -o FILE\n");
        return 2;
    }
    size_t len;
    char *text = measure_read_file("imatrix", file, &len);
    if (!text) return 1;
    slm_model *m;
    slm_session *s;
    if (measure_open("imatrix", model, n_ctx, n_threads, &m, &s)) { free(text); return 1; }
    slm_token *toks = NULL, *win = NULL;
    size_t n_toks = 0;
    slm_imcollect *im = NULL;
    int rc = 1;
    if (slm_tokenize(m, text, len, true, false, &toks, &n_toks)) {
        fprintf(stderr, "slm imatrix: cannot tokenize %s: %s\n", file, slm_last_error());
        goto done;
    }
    size_t avail = n_toks / (size_t)n_ctx;
    if (avail == 0) {
        fprintf(stderr, "slm imatrix: %s has %zu tokens, fewer than one window of %d\n", file, n_toks, n_ctx);
        goto done;
    }
    if (n_chunks == 0 || (size_t)n_chunks > avail) {
        if (n_chunks) fprintf(stderr, "slm imatrix: the text holds only %zu windows; using them all\n", avail);
        n_chunks = (int)avail;
    }
    if (slm_imcollect_new(m, &im) || slm_imcollect_attach(im, s)) {
        fprintf(stderr, "slm imatrix: %s\n", slm_last_error());
        goto done;
    }
    if (!(win = malloc((size_t)n_ctx * sizeof *win))) { fprintf(stderr, "slm imatrix: out of memory\n"); goto done; }
    fprintf(stderr, "imatrix: %zu tokens, %d windows of %d, %d weight matrices\n", n_toks, n_chunks, n_ctx,
            slm_imcollect_n_entries(im));
    double t0 = cli_now_ms();
    for (int c = 0; c < n_chunks; c++) {
        memcpy(win, toks + (size_t)c * n_ctx, (size_t)n_ctx * sizeof *win);
        if (slm_token_bos(m) >= 0) win[0] = slm_token_bos(m);
        slm_session_truncate(s, 0);
        if (slm_session_eval(s, win, n_ctx, false)) {
            fprintf(stderr, "slm imatrix: %s\n", slm_last_error());
            goto done;
        }
        slm_imcollect_add_chunk(im);
        fprintf(stderr, "\r[%d/%d] %.1f s", c + 1, n_chunks, (cli_now_ms() - t0) / 1e3);
    }
    fputc('\n', stderr);
    slm_imcollect_attach(NULL, s);
    if (slm_imcollect_save(im, outp, file, n_ctx)) {
        fprintf(stderr, "slm imatrix: cannot write %s: %s\n", outp, slm_last_error());
        goto done;
    }
    printf("importance matrix of %d weight matrices over %d windows written to %s\n", slm_imcollect_n_entries(im),
           n_chunks, outp);
    rc = 0;
done:
    if (im) slm_imcollect_attach(NULL, s);
    slm_imcollect_free(im);
    free(win);
    free(toks);
    free(text);
    slm_session_free(s);
    slm_model_close(m);
    return rc;
}
