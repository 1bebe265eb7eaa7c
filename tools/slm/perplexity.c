/* slm perplexity: PPL of a text by non-overlapping windows, and the KL
 * divergence against a base model's saved distributions. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "measure.h"

static void ppl_help(FILE *out) {
    fputs("usage: slm perplexity -m MODEL -f TEXT [options]\n"
          "Perplexity of TEXT by the standard method: non-overlapping windows of --ctx tokens, each\n"
          "starting with BOS, only the second half of each scored. Prints the running PPL per window\n"
          "and the final PPL with its standard error.\n\n"
          "  -m, --model FILE        GGUF model (default: the fetched Gemma 3 270M)\n"
          "  -f, --file FILE         the text (UTF-8)\n"
          "      --ctx N             window length in tokens (default 512)\n"
          "      --chunks N          score only the first N windows (default: all)\n"
          "  -t, --threads N         threads (default: all CPUs)\n"
          "      --kl-base-save FILE save this model's distributions at the scored positions (top-k\n"
          "                          log-probabilities) as the base for a later --kl-base run\n"
          "      --kl-base FILE      compare with a saved base: mean KL divergence with percentiles,\n"
          "                          top-1 token agreement, and the PPL of both\n"
          "      --kl-top-k N        log-probabilities saved per position (default 64)\n"
          "      --lora FILE         apply a LoRA adapter; --lora-scale S scales it (default 1)\n", out);
}

int cmd_perplexity(int argc, char **argv) {
    const char *model = NULL, *file = NULL;
    slm_ppl_params pp = { 0 };
    int n_threads = 0;
    const char *lora_path = NULL;
    float lora_scale = 1.0f;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        int bad = 0;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { ppl_help(stdout); return 0; }
        int lr = cli_parse_lora_opt("perplexity", argc, argv, &i, &lora_path, &lora_scale);
        if (lr < 0) return 2;
        if (lr) continue;
        bool has_val = i + 1 < argc;
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) { if (has_val) model = argv[++i]; else bad = 1; }
        else if (!strcmp(a, "-f") || !strcmp(a, "--file")) { if (has_val) file = argv[++i]; else bad = 1; }
        else if (!strcmp(a, "--kl-base-save")) { if (has_val) pp.kl_save = argv[++i]; else bad = 1; }
        else if (!strcmp(a, "--kl-base")) { if (has_val) pp.kl_base = argv[++i]; else bad = 1; }
        else if (!strcmp(a, "--ctx")) bad = measure_int_arg("perplexity", argc, argv, &i, 4, 1 << 20, &pp.n_ctx) ? 2 : 0;
        else if (!strcmp(a, "--chunks")) bad = measure_int_arg("perplexity", argc, argv, &i, 1, 1 << 30, &pp.n_chunks) ? 2 : 0;
        else if (!strcmp(a, "--kl-top-k")) bad = measure_int_arg("perplexity", argc, argv, &i, 1, 4096, &pp.kl_top_k) ? 2 : 0;
        else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) bad = measure_int_arg("perplexity", argc, argv, &i, 1, 1024, &n_threads) ? 2 : 0;
        else { fprintf(stderr, "slm perplexity: unknown option '%s' (see slm perplexity --help)\n", a); return 2; }
        if (bad == 1) fprintf(stderr, "slm perplexity: %s needs a value\n", a);
        if (bad) return 2;
    }
    if (!file) { fprintf(stderr, "slm perplexity: give the text with -f FILE (see slm perplexity --help)\n"); return 2; }
    if (pp.kl_save && pp.kl_base) {
        fprintf(stderr, "slm perplexity: --kl-base-save and --kl-base cannot be combined\n");
        return 2;
    }
    if (!pp.n_ctx) pp.n_ctx = 512;
    size_t len;
    char *text = measure_read_file("perplexity", file, &len);
    if (!text) return 1;
    slm_model *m;
    slm_session *s;
    if (measure_open("perplexity", model, pp.n_ctx, n_threads, &m, &s)) { free(text); return 1; }
    slm_lora *lora = NULL;
    if (lora_path && cli_lora_open("perplexity", m, s, lora_path, lora_scale, &lora)) {
        slm_session_free(s);
        slm_model_close(m);
        free(text);
        return 1;
    }
    slm_token *toks = NULL;
    size_t n_toks = 0;
    slm_ppl *p = NULL;
    int rc = 1;
    double t0 = cli_now_ms();
    if (slm_tokenize(m, text, len, true, false, &toks, &n_toks)) {
        fprintf(stderr, "slm perplexity: cannot tokenize %s: %s\n", file, slm_last_error());
        goto done;
    }
    if (slm_ppl_new(m, s, toks, n_toks, &pp, &p)) {
        fprintf(stderr, "slm perplexity: %s\n", slm_last_error());
        goto done;
    }
    slm_ppl_result r;
    slm_ppl_result_get(p, &r);
    fprintf(stderr, "perplexity: %zu tokens, %d windows of %d (tokenized in %.1f s)\n", n_toks, r.n_chunks,
            pp.n_ctx, (cli_now_ms() - t0) / 1e3);
    t0 = cli_now_ms();
    while (slm_ppl_more(p)) {
        if (slm_ppl_step(p)) { fprintf(stderr, "slm perplexity: %s\n", slm_last_error()); goto done; }
        slm_ppl_result_get(p, &r);
        printf("[%d/%d] PPL %.4f", r.n_chunks_done, r.n_chunks, r.ppl);
        if (r.has_kl) printf("  KL %.6f  top-1 %.2f%%", r.kl_mean, 100 * r.top1);
        printf("  (%.1f s)\n", (cli_now_ms() - t0) / 1e3);
        fflush(stdout);
    }
    if (slm_ppl_finish(p)) { fprintf(stderr, "slm perplexity: %s\n", slm_last_error()); goto done; }
    slm_ppl_result_get(p, &r);
    printf("\nFinal PPL = %.4f +/- %.4f over %llu tokens (%d windows of %d)\n", r.ppl, r.ppl_se,
           (unsigned long long)r.n_scored, r.n_chunks, pp.n_ctx);
    if (r.has_kl) {
        printf("Base PPL  = %.4f +/- %.4f\n", r.base_ppl, r.base_ppl_se);
        printf("PPL - base = %+.4f +/- %.4f  (ln(PPL/base) %+.6f +/- %.6f, paired)\n", r.dppl, r.dppl_se, r.ln_ratio,
               r.ln_ratio_se);
        printf("Mean KL   = %.6f +/- %.6f  (p50 %.6f, p90 %.6f, p99 %.6f, max %.6f)\n", r.kl_mean, r.kl_se,
               r.kl_p50, r.kl_p90, r.kl_p99, r.kl_max);
        printf("Top-1 agreement = %.3f%% +/- %.3f%%\n", 100 * r.top1, 100 * r.top1_se);
    }
    if (pp.kl_save) printf("base distributions saved to %s\n", pp.kl_save);
    rc = 0;
done:
    slm_ppl_free(p);
    free(toks);
    free(text);
    slm_session_free(s);
    slm_lora_free(lora);
    slm_model_close(m);
    return rc;
}
