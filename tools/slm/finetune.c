/* slm finetune: LoRA (or full) fine-tuning on a JSONL or text file. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static volatile sig_atomic_t interrupted;
static void on_sigint(int sig) { (void)sig; interrupted = 1; }

static void ft_help(FILE *out) {
    fputs("usage: slm finetune -m BASE.gguf --data TRAIN.jsonl -o ADAPTER.gguf [options]\n"
          "Trains a LoRA adapter (llama.cpp's GGUF layout; use it with --lora or `slm merge`).\n"
          "Data: JSONL with one {\"messages\": [...]}, {\"prompt\", \"completion\"} or {\"text\"} per line,\n"
          "or plain text (cut into --seq windows); see docs/TRAINING.md.\n\n"
          "  -m, --model FILE        base model (default: the fetched Gemma 3 270M)\n"
          "      --data FILE         training data (.jsonl, or any other file as plain text)\n"
          "      --val FILE          validation data\n"
          "      --val-split F       hold out this fraction of the training examples instead (0..0.5)\n"
          "  -o, --output FILE       the adapter to write (with --full: the model)\n"
          "      --rank N            LoRA rank (default 16)\n"
          "      --alpha A           LoRA alpha; the update is scaled by alpha/rank (default 32)\n"
          "      --dropout P         dropout on the LoRA input (default 0)\n"
          "      --targets LIST      adapted matrices, of q,k,v,o,gate,up,down (default all)\n"
          "      --full              train every weight instead of an adapter; -o gets a model GGUF\n"
          "      --epochs N          passes over the data (default 1)\n"
          "      --steps N           optimizer steps (overrides --epochs)\n"
          "      --lr F              peak learning rate (default 2e-4)\n"
          "      --warmup N          linear warm-up steps (default 0)\n"
          "      --schedule S        cosine (default) or constant after the warm-up\n"
          "      --batch N           sequences per optimizer step, by gradient accumulation (default 8)\n"
          "      --clip F            clip the gradient's global norm (default 1.0; 0: off)\n"
          "      --weight-decay F    AdamW weight decay (default 0)\n"
          "      --seq N             longest sequence in tokens (default 512); longer examples are\n"
          "                          skipped and reported\n"
          "      --truncate          cut longer examples to --seq instead of skipping them\n"
          "      --pack              put several short examples into one sequence (attention then\n"
          "                          crosses example boundaries; each keeps its own loss mask)\n"
          "      --chat              prompt/completion examples as a user and an assistant turn\n"
          "      --eval-every N      validation loss every N steps (default: at the end)\n"
          "      --patience N        stop after N validations without improvement (default: never);\n"
          "                          the adapter written is the one with the best validation loss\n"
          "      --save-every N      checkpoint every N steps (default: only on Ctrl-C)\n"
          "      --checkpoint-dir D  where checkpoints go (default: OUTPUT.ckpt)\n"
          "      --resume            continue from the checkpoint (same data and options)\n"
          "      --seed N            data order and LoRA initialisation (default 0)\n"
          "  -t, --threads N         threads (default: all CPUs)\n"
          "Ctrl-C writes a checkpoint and exits; --resume continues from it.\n", out);
}

static int opt_int(const char *flag, const char *v, long lo, long hi, int *out) {
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi) {
        fprintf(stderr, "slm finetune: %s expects an integer in %ld..%ld, got '%s'\n", flag, lo, hi, v);
        return -1;
    }
    *out = (int)x;
    return 0;
}

static int opt_float(const char *flag, const char *v, double lo, double hi, float *out) {
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || end == v || *end || !isfinite(x) || x < lo || x > hi) {
        fprintf(stderr, "slm finetune: %s expects a number in %g..%g, got '%s'\n", flag, lo, hi, v);
        return -1;
    }
    *out = (float)x;
    return 0;
}

static int parse_targets(const char *v, unsigned *out) {
    static const char *const names[] = { "q", "k", "v", "o", "gate", "up", "down" };
    unsigned t = 0;
    const char *s = v;
    while (*s) {
        size_t n = strcspn(s, ",");
        bool found = false;
        for (unsigned i = 0; i < 7; i++)
            if (strlen(names[i]) == n && !strncmp(s, names[i], n)) { t |= 1u << i; found = true; }
        if (!found) {
            fprintf(stderr, "slm finetune: --targets: unknown matrix '%.*s' (q,k,v,o,gate,up,down)\n", (int)n, s);
            return -1;
        }
        s += n;
        if (*s == ',') s++;
    }
    if (!t) { fprintf(stderr, "slm finetune: --targets names no matrix\n"); return -1; }
    *out = t;
    return 0;
}

static void fmt_time(double s, char *buf, size_t cap) {
    if (!(s >= 0) || s > 1e7) { snprintf(buf, cap, "?"); return; }
    int t = (int)(s + 0.5);
    if (t >= 3600) snprintf(buf, cap, "%dh%02dm", t / 3600, t / 60 % 60);
    else snprintf(buf, cap, "%dm%02ds", t / 60, t % 60);
}

static void print_lines(const char *what, int n, const int *lines) {
    fprintf(stderr, "  %d %s (line%s", n, what, n > 1 ? "s" : "");
    for (int i = 0; i < n && i < 8; i++) fprintf(stderr, "%s%d", i ? ", " : " ", lines[i]);
    fprintf(stderr, "%s)\n", n > 8 ? ", ..." : "");
}

int cmd_finetune(int argc, char **argv) {
    slm_finetune_params p;
    slm_finetune_default_params(&p);
    const char *model_arg = NULL;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { ft_help(stdout); return 0; }
        int rc = 0;
        if (!strcmp(a, "--full")) { p.full = true; continue; }
        if (!strcmp(a, "--truncate")) { p.truncate = true; continue; }
        if (!strcmp(a, "--pack")) { p.pack = true; continue; }
        if (!strcmp(a, "--chat")) { p.chat = true; continue; }
        if (!strcmp(a, "--resume")) { p.resume = true; continue; }
        if (i + 1 >= argc) {
            fprintf(stderr, "slm finetune: unknown option or missing value: '%s' (see slm finetune --help)\n", a);
            return 2;
        }
        const char *v = argv[++i];
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) model_arg = v;
        else if (!strcmp(a, "--data")) p.data = v;
        else if (!strcmp(a, "--val")) p.val = v;
        else if (!strcmp(a, "--val-split")) rc = opt_float(a, v, 0, 0.5, &p.val_split);
        else if (!strcmp(a, "-o") || !strcmp(a, "--output")) p.out = v;
        else if (!strcmp(a, "--rank")) rc = opt_int(a, v, 1, 4096, &p.rank);
        else if (!strcmp(a, "--alpha")) rc = opt_float(a, v, 1e-6, 1e6, &p.alpha);
        else if (!strcmp(a, "--dropout")) rc = opt_float(a, v, 0, 0.99, &p.dropout);
        else if (!strcmp(a, "--targets")) rc = parse_targets(v, &p.targets);
        else if (!strcmp(a, "--epochs")) rc = opt_int(a, v, 1, 1000000, &p.epochs);
        else if (!strcmp(a, "--steps")) rc = opt_int(a, v, 1, INT_MAX, &p.steps);
        else if (!strcmp(a, "--lr")) rc = opt_float(a, v, 1e-12, 10, &p.lr);
        else if (!strcmp(a, "--warmup")) rc = opt_int(a, v, 0, INT_MAX, &p.warmup);
        else if (!strcmp(a, "--schedule")) {
            if (!strcmp(v, "cosine")) p.cosine = true;
            else if (!strcmp(v, "constant")) p.cosine = false;
            else { fprintf(stderr, "slm finetune: --schedule is cosine or constant, not '%s'\n", v); rc = -1; }
        }
        else if (!strcmp(a, "--batch")) rc = opt_int(a, v, 1, 1 << 20, &p.batch);
        else if (!strcmp(a, "--clip")) rc = opt_float(a, v, 0, 1e6, &p.clip);
        else if (!strcmp(a, "--weight-decay")) rc = opt_float(a, v, 0, 10, &p.weight_decay);
        else if (!strcmp(a, "--seq")) rc = opt_int(a, v, 8, 1 << 20, &p.seq);
        else if (!strcmp(a, "--eval-every")) rc = opt_int(a, v, 0, INT_MAX, &p.eval_every);
        else if (!strcmp(a, "--patience")) rc = opt_int(a, v, 0, INT_MAX, &p.patience);
        else if (!strcmp(a, "--save-every")) rc = opt_int(a, v, 0, INT_MAX, &p.save_every);
        else if (!strcmp(a, "--checkpoint-dir")) p.checkpoint_dir = v;
        else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) rc = opt_int(a, v, 1, 1024, &p.n_threads);
        else if (!strcmp(a, "--seed")) {
            char *end;
            errno = 0;
            unsigned long long s = strtoull(v, &end, 10);
            if (errno || end == v || *end || v[0] == '-') {
                fprintf(stderr, "slm finetune: --seed expects a non-negative integer, got '%s'\n", v);
                rc = -1;
            }
            p.seed = s;
        }
        else { fprintf(stderr, "slm finetune: unknown option '%s' (see slm finetune --help)\n", a); return 2; }
        if (rc) return 2;
    }
    if (!p.data) { fprintf(stderr, "slm finetune: give the training data with --data FILE (see --help)\n"); return 2; }
    if (!p.out) { fprintf(stderr, "slm finetune: give the output file with -o FILE (see --help)\n"); return 2; }
    if (p.val && p.val_split > 0) { fprintf(stderr, "slm finetune: --val and --val-split cannot be combined\n"); return 2; }

    char buf[4096];
    const char *path = cli_model_path(model_arg, buf, sizeof buf);
    if (!path) return 1;
    slm_model *m = NULL;
    if (slm_model_open(path, &m)) {
        fprintf(stderr, "slm finetune: cannot load %s: %s\n", path, slm_last_error());
        return 1;
    }
    slm_finetune *f = NULL;
    double t0 = cli_now_ms();
    if (slm_finetune_new(m, &p, &f)) {
        fprintf(stderr, "slm finetune: %s\n", slm_last_error());
        slm_model_close(m);
        return 1;
    }
    slm_finetune_summary s;
    slm_finetune_get_summary(f, &s);
    fprintf(stderr, "data: %d training sequences, %lld tokens, %lld scored", s.n_train, (long long)s.train_tokens,
            (long long)s.train_scored);
    if (s.n_val) fprintf(stderr, "; validation: %d sequences, %lld scored tokens", s.n_val, (long long)s.val_scored);
    fprintf(stderr, " (read in %.1f s)\n", (cli_now_ms() - t0) / 1e3);
    if (s.n_skipped) {
        print_lines("examples longer than --seq skipped", s.n_skipped, s.skipped_lines);
        fprintf(stderr, "  (raise --seq, or pass --truncate to cut them)\n");
    }
    if (s.n_truncated) print_lines("examples truncated to --seq", s.n_truncated, s.truncated_lines);
    fprintf(stderr, "training: %s, %lld trainable parameters, %d steps of %d sequences\n",
            p.full ? "full" : "LoRA", (long long)s.n_trainable, s.total_steps, p.batch);
    if (s.start_step) fprintf(stderr, "resuming at step %d\n", s.start_step);
    fprintf(stderr, "memory:\n%s", s.memory_plan);
    if (s.memory_plan[0] && s.memory_plan[strlen(s.memory_plan) - 1] != '\n') fputc('\n', stderr);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    bool tty = isatty(fileno(stderr));
    int rc = 0;
    slm_finetune_progress pr;
    memset(&pr, 0, sizeof pr);
    while (slm_finetune_more(f)) {
        if (interrupted) break;
        if (slm_finetune_step(f, &pr)) {
            fprintf(stderr, "%sslm finetune: %s\n", tty ? "\n" : "", slm_last_error());
            rc = 1;
            break;
        }
        char eta[32], vl[48] = "";
        fmt_time(pr.eta_s, eta, sizeof eta);
        if (isfinite(pr.val_loss)) snprintf(vl, sizeof vl, "  val %.4f", pr.val_loss);
        fprintf(stderr, "%sstep %d/%d  loss %.4f%s  lr %.2e  |g| %.3f  %.0f tok/s  ETA %s%s%s", tty ? "\r" : "",
                pr.step, pr.total_steps, pr.loss, vl, pr.lr, pr.grad_norm, pr.tokens_per_s, eta,
                pr.saved ? "  (checkpoint)" : "", tty ? "\033[K" : "\n");
        if (tty && (pr.evaluated || pr.saved)) fputc('\n', stderr);
        if (pr.stopped_early) fprintf(stderr, "%sstopping early: no validation improvement in %d evaluations\n",
                                      tty ? "\n" : "", p.patience);
    }
    if (tty) fputc('\n', stderr);
    if (!rc && interrupted) {
        if (slm_finetune_checkpoint(f)) {
            fprintf(stderr, "slm finetune: interrupted; the checkpoint failed: %s\n", slm_last_error());
            rc = 1;
        } else {
            if (p.checkpoint_dir) fprintf(stderr, "slm finetune: interrupted at step %d; checkpoint in %s\n", pr.step, p.checkpoint_dir);
            else fprintf(stderr, "slm finetune: interrupted at step %d; checkpoint in %s.ckpt\n", pr.step, p.out);
            fprintf(stderr, "slm finetune: continue with the same command and --resume\n");
            rc = 130;
        }
    } else if (!rc) {
        if (slm_finetune_finish(f)) {
            fprintf(stderr, "slm finetune: %s\n", slm_last_error());
            rc = 1;
        } else {
            fprintf(stderr, "wrote %s (loss curve: %s.loss.svg) in %.1f s\n", p.out, p.out, (cli_now_ms() - t0) / 1e3);
            if (pr.best_val_loss < INFINITY && s.n_val) fprintf(stderr, "best validation loss %.4f\n", pr.best_val_loss);
        }
    }
    slm_finetune_free(f);
    slm_model_close(m);
    return rc;
}
