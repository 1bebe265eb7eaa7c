/* slm eval: accuracy on a JSONL task (multiple choice by log-likelihood,
 * exact-match generation). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "measure.h"

static void eval_help(FILE *out) {
    fputs("usage: slm eval -m MODEL --task FILE.jsonl [options]\n"
          "Scores a task (format in docs/EVAL.md): multiple-choice items by the log-likelihood of\n"
          "each choice given the context (acc, and acc_norm: divided by the choice's bytes), generation\n"
          "items by greedy decoding and exact match. Prints accuracy with its standard error.\n\n"
          "  -m, --model FILE        GGUF model (default: the fetched Gemma 3 270M)\n"
          "      --task FILE         the task, one JSON object per line\n"
          "      --limit N           score only the first N items\n"
          "  -c, --ctx-size N        context size in tokens (default: the model's, at most 4096)\n"
          "  -t, --threads N         threads (default: all CPUs)\n"
          "  -v, --verbose           print every item's prediction\n", out);
}

int cmd_eval(int argc, char **argv) {
    const char *model = NULL, *task_path = NULL;
    int n_threads = 0, n_ctx = 0, limit = 0;
    bool verbose = false;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        int bad = 0;
        bool has_val = i + 1 < argc;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { eval_help(stdout); return 0; }
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) { if (has_val) model = argv[++i]; else bad = 1; }
        else if (!strcmp(a, "--task")) { if (has_val) task_path = argv[++i]; else bad = 1; }
        else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) verbose = true;
        else if (!strcmp(a, "--limit")) bad = measure_int_arg("eval", argc, argv, &i, 1, 1 << 30, &limit) ? 2 : 0;
        else if (!strcmp(a, "-c") || !strcmp(a, "--ctx-size")) bad = measure_int_arg("eval", argc, argv, &i, 8, 1 << 20, &n_ctx) ? 2 : 0;
        else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) bad = measure_int_arg("eval", argc, argv, &i, 1, 1024, &n_threads) ? 2 : 0;
        else { fprintf(stderr, "slm eval: unknown option '%s' (see slm eval --help)\n", a); return 2; }
        if (bad == 1) fprintf(stderr, "slm eval: %s needs a value\n", a);
        if (bad) return 2;
    }
    if (!task_path) { fprintf(stderr, "slm eval: give the task with --task FILE.jsonl (see slm eval --help)\n"); return 2; }
    size_t len;
    char *text = measure_read_file("eval", task_path, &len);
    if (!text) return 1;
    slm_task *task = NULL;
    if (slm_task_parse(text, len, &task)) {
        fprintf(stderr, "slm eval: %s: %s\n", task_path, slm_last_error());
        free(text);
        return 1;
    }
    free(text);
    slm_model *m;
    slm_session *s;
    if (measure_open("eval", model, n_ctx, n_threads, &m, &s)) { slm_task_free(task); return 1; }
    size_t n = slm_task_n_items(task);
    if (limit && (size_t)limit < n) n = (size_t)limit;
    int rc = 0;
    double t0 = cli_now_ms();
    double ll[64];
    for (size_t i = 0; i < n; i++) {
        slm_task_item_result r;
        if (slm_task_score(task, i, m, s, ll, &r)) {
            fprintf(stderr, "slm eval: %s: %s\n", task_path, slm_last_error());
            rc = 1;
            break;
        }
        if (verbose && r.is_mc) {
            printf("item %zu: answer %d, pred %d, pred_norm %d, ll", i, r.answer, r.pred, r.pred_norm);
            for (int c = 0; c < slm_task_n_choices(task, i); c++) printf(" %.4f", ll[c]);
            printf("\n");
        } else if (verbose) {
            printf("item %zu: %s: \"%s\"\n", i, r.correct ? "match" : "no match", r.generated);
        }
        if (!verbose && ((i + 1) % 25 == 0 || i + 1 == n)) {
            fprintf(stderr, "\r[%zu/%zu] %.1f s", i + 1, n, (cli_now_ms() - t0) / 1e3);
            if (i + 1 == n) fputc('\n', stderr);
        }
    }
    if (rc == 0) {
        slm_task_summary sum;
        slm_task_summary_get(task, &sum);
        printf("task %s: %zu items\n", task_path, n);
        if (sum.n_mc)
            printf("multiple choice (%d): acc %.4f +/- %.4f   acc_norm %.4f +/- %.4f\n", sum.n_mc, sum.acc,
                   sum.acc_se, sum.acc_norm, sum.acc_norm_se);
        if (sum.n_gen) printf("generation (%d): exact match %.4f +/- %.4f\n", sum.n_gen, sum.em, sum.em_se);
    }
    slm_task_free(task);
    slm_session_free(s);
    slm_model_close(m);
    return rc;
}
