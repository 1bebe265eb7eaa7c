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
          "      --lora FILE         apply a LoRA adapter; --lora-scale S scales it (default 1)\n"
          "  -v, --verbose           print every item's prediction\n"
          "      --dump FILE         write every generation item's output as JSONL: {\"index\", \"generated\",\n"
          "                          \"valid_utf8\", \"exact\", \"fields_right\"} (for rescoring elsewhere)\n", out);
}

/* Whether s[0..n) is well-formed UTF-8 (no overlongs, surrogates or values
 * past U+10FFFF). */
static bool utf8_ok(const unsigned char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        size_t k = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
        if (!k || i + k > n) return false;
        unsigned cp = k == 1 ? c : k == 2 ? c & 0x1F : k == 3 ? c & 0x0F : c & 0x07;
        for (size_t j = 1; j < k; j++) {
            if ((s[i + j] & 0xC0) != 0x80) return false;
            cp = cp << 6 | (s[i + j] & 0x3F);
        }
        if ((k == 2 && cp < 0x80) || (k == 3 && cp < 0x800) || (k == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += k;
    }
    return true;
}

/* s as a JSON string; bytes of ill-formed UTF-8 are written as U+FFFD (the
 * record says valid_utf8 false then). */
static void json_str(FILE *f, const char *s) {
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    fputc('"', f);
    for (size_t i = 0; i < n;) {
        unsigned c = p[i];
        if (c == '"' || c == '\\') { fputc('\\', f); fputc((int)c, f); i++; continue; }
        if (c < 0x20) { fprintf(f, "\\u%04x", c); i++; continue; }
        if (c < 0x80) { fputc((int)c, f); i++; continue; }
        size_t k = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 1;
        if (k > 1 && i + k <= n && utf8_ok(p + i, k)) { fwrite(p + i, 1, k, f); i += k; }
        else { fputs("\\ufffd", f); i++; }
    }
    fputc('"', f);
}

int cmd_eval(int argc, char **argv) {
    const char *model = NULL, *task_path = NULL, *dump_path = NULL;
    int n_threads = 0, n_ctx = 0, limit = 0;
    bool verbose = false;
    const char *lora_path = NULL;
    float lora_scale = 1.0f;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        int bad = 0;
        bool has_val = i + 1 < argc;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { eval_help(stdout); return 0; }
        int lr = cli_parse_lora_opt("eval", argc, argv, &i, &lora_path, &lora_scale);
        if (lr < 0) return 2;
        if (lr) continue;
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) { if (has_val) model = argv[++i]; else bad = 1; }
        else if (!strcmp(a, "--task")) { if (has_val) task_path = argv[++i]; else bad = 1; }
        else if (!strcmp(a, "--dump")) { if (has_val) dump_path = argv[++i]; else bad = 1; }
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
    FILE *dump = NULL;
    if (dump_path && !(dump = fopen(dump_path, "w"))) {
        fprintf(stderr, "slm eval: cannot write %s\n", dump_path);
        slm_task_free(task);
        return 1;
    }
    slm_model *m;
    slm_session *s;
    slm_lora *lora = NULL;
    if (measure_open("eval", model, n_ctx, n_threads, &m, &s) ||
        (lora_path && cli_lora_open("eval", m, s, lora_path, lora_scale, &lora))) {
        slm_session_free(s);
        slm_model_close(m);
        slm_task_free(task);
        if (dump) fclose(dump);
        return 1;
    }
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
            printf("item %zu: %s: \"%s\"", i, r.correct ? "match" : "no match", r.generated);
            if (r.n_fields) printf(" (%d of %d fields)", r.fields_right, r.n_fields);
            printf("\n");
        }
        if (dump && !r.is_mc) {
            fprintf(dump, "{\"index\": %zu, \"generated\": ", i);
            json_str(dump, r.generated);
            fprintf(dump, ", \"valid_utf8\": %s, \"exact\": %s, \"fields_right\": %d}\n",
                    utf8_ok((const unsigned char *)r.generated, strlen(r.generated)) ? "true" : "false",
                    r.correct ? "true" : "false", r.n_fields ? r.fields_right : -1);
            fflush(dump);   /* a long run stopped early keeps what it scored */
        }
        if (verbose) fflush(stdout);
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
        for (int k = 0; k < slm_task_n_fields(task); k++) {
            int fn;
            double acc, se;
            slm_task_field_acc(task, k, &fn, &acc, &se);
            if (fn) printf("field %-14s (%d): %.4f +/- %.4f\n", slm_task_field_name(task, k), fn, acc, se);
        }
    }
    if (dump && fclose(dump)) {
        fprintf(stderr, "slm eval: cannot write %s\n", dump_path);
        rc = 1;
    }
    slm_task_free(task);
    slm_session_free(s);
    slm_lora_free(lora);
    slm_model_close(m);
    return rc;
}
