/* Tokens/s of training steps (trainer_accumulate + trainer_step) on a real
 * model: LoRA (default rank 16, all targets) or full fine-tuning, with and
 * without activation checkpointing. Each step is one sequence of -n tokens
 * (a fixed English text, repeated), the loss on its last third. Wall time,
 * best of the measured steps after one warm-up step. Built by CMake
 * (target train_bench, not part of `all`):
 *
 *   cmake --build build --target train_bench
 *   build/train_bench ~/.cache/slm/models/gemma-3-270m-q4_k_m.gguf [-t 2] [-n 256] [-r 16] [-s 3] [--full]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "slm.h"
#include "train/gemm.h"
#include "train/trainer.h"

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

/* CPU time of the whole process (all threads): on a busy shared machine the
 * wall time says more about the neighbours than about us */
static double cpu_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static const char *TEXT =
    "The old lighthouse keeper climbed the spiral stairs every evening, counting the steps as his father had "
    "taught him. At the top he trimmed the wick, polished the great lens and watched the ships pass along the "
    "dark line of the coast. In winter the storms came in from the west and the rain drummed on the glass for "
    "days, but the light never failed. Years later, when the lamp was replaced by an automatic beacon, he still "
    "walked up the stairs at dusk, out of habit, to see the beam sweep across the water. ";

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: train_bench MODEL.gguf [-t threads] [-n tokens] [-r rank] [-s steps] [--full] [--ckpt|--no-ckpt]\n");
        return 2;
    }
    int nth = 2, n = 256, rank = 16, steps = 3, ck_only = -1;
    bool full = false;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "-t") && i + 1 < argc) nth = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-n") && i + 1 < argc) n = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-r") && i + 1 < argc) rank = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-s") && i + 1 < argc) steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--full")) full = true;
        else if (!strcmp(argv[i], "--ckpt")) ck_only = 1;
        else if (!strcmp(argv[i], "--no-ckpt")) ck_only = 0;
        else { fprintf(stderr, "unknown argument %s\n", argv[i]); return 2; }
    }
    slm_model *m;
    if (slm_model_open(argv[1], &m)) { fprintf(stderr, "%s\n", slm_last_error()); return 1; }
    slm_token *toks;
    size_t nt;
    if (slm_tokenize(m, TEXT, strlen(TEXT), true, false, &toks, &nt)) { fprintf(stderr, "%s\n", slm_last_error()); return 1; }
    int32_t *seq = malloc(n * sizeof(int32_t));
    uint8_t *mask = calloc(n, 1);
    for (int i = 0; i < n; i++) seq[i] = toks[i % nt];
    for (int i = n - n / 3; i < n; i++) mask[i] = 1;
    printf("model %s, %d tokens/step (loss on the last %d), %d threads, GEMM kernel %s, %s\n", argv[1], n, n / 3, nth,
           tg_kernel_name(), full ? "full fine-tuning" : "LoRA");
    for (int ck = 0; ck < 2; ck++) {
        if (ck_only >= 0 && ck != ck_only) continue;
        train_params p;
        train_default_params(&p);
        p.full = full;
        p.rank = rank;
        p.max_seq = n;
        p.checkpoint = ck;
        p.n_threads = nth;
        slm_trainer *t;
        if (trainer_new(m, &p, &t)) { fprintf(stderr, "%s\n", slm_last_error()); return 1; }
        char plan[1024];
        trainer_memory_plan(t, plan, sizeof plan);
        printf("--- checkpointing %s\n%s", ck ? "on" : "off", plan);
        double best = 1e30, tot = 0;
        for (int s = 0; s <= steps; s++) {
            double loss, gn, t0 = now_s(), c0 = cpu_s();
            int ns;
            if (trainer_accumulate(t, seq, mask, n, &loss, &ns) || trainer_step(t, ns, 1e-4f, 1.0f, &gn)) {
                fprintf(stderr, "%s\n", slm_last_error());
                return 1;
            }
            double dt = now_s() - t0, dc = cpu_s() - c0;
            printf("step %d: loss %.4f (%d scored), grad norm %.4f, %.3f s wall (%.1f tokens/s), %.3f s CPU\n", s,
                   loss / ns, ns, gn, dt, n / dt, dc);
            if (s > 0) { tot += dt; if (dt < best) best = dt; }
        }
        double tm[4];
        trainer_times(t, tm);
        printf("time in: layers forward %.2f s, loss head %.2f s, layers backward %.2f s, optimizer %.2f s (all steps)\n",
               tm[0], tm[1], tm[2], tm[3]);
        if (steps > 0)
            printf("checkpointing %s: best %.1f tokens/s, mean %.1f tokens/s\n", ck ? "on" : "off", n / best,
                   n * steps / tot);
        trainer_free(t);
    }
    free(seq); free(mask); free(toks);
    slm_model_close(m);
    return 0;
}
