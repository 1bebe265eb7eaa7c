#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

double cli_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

void cli_gen_defaults(cli_gen_opts *o) {
    memset(o, 0, sizeof *o);
    o->n_predict = 128;
    o->n_ctx = 4096;
    o->lora_scale = 1.0f;
    o->spec_kind = slm_spec_kind_parse("auto");
    slm_sampler_default_params(&o->sp);
}

static int parse_int(const char *flag, const char *s, long lo, long hi, int *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "slm: %s expects an integer in %ld..%ld, got '%s'\n", flag, lo, hi, s);
        return -1;
    }
    *out = (int)v;
    return 1;
}

static int parse_float(const char *flag, const char *s, double lo, double hi, float *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < lo || v > hi) {
        fprintf(stderr, "slm: %s expects a number in %g..%g, got '%s'\n", flag, lo, hi, s);
        return -1;
    }
    *out = (float)v;
    return 1;
}

int cli_parse_lora_opt(const char *cmd, int argc, char **argv, int *i, const char **path, float *scale) {
    const char *a = argv[*i];
    if (strcmp(a, "--lora") != 0 && strcmp(a, "--lora-scale") != 0) return 0;
    if (*i + 1 >= argc) { fprintf(stderr, "slm%s%s: %s needs a value\n", *cmd ? " " : "", cmd, a); return -1; }
    const char *v = argv[++*i];
    if (!strcmp(a, "--lora")) { *path = v; return 1; }
    return parse_float(a, v, -100, 100, scale);
}

int cli_lora_open(const char *cmd, slm_model *m, slm_session *s, const char *path, float scale, slm_lora **out) {
    *out = NULL;
    if (slm_lora_load(m, path, out)) {
        fprintf(stderr, "slm%s%s: cannot load adapter: %s\n", *cmd ? " " : "", cmd, slm_last_error());
        return 1;
    }
    if (s && slm_session_set_lora(s, *out, scale)) {
        fprintf(stderr, "slm%s%s: %s\n", *cmd ? " " : "", cmd, slm_last_error());
        slm_lora_free(*out);
        *out = NULL;
        return 1;
    }
    return 0;
}

int cli_parse_gen_opt(cli_gen_opts *o, int argc, char **argv, int *i) {
    const char *a = argv[*i];
    int lr = cli_parse_lora_opt("", argc, argv, i, &o->lora, &o->lora_scale);
    if (lr) return lr;
    int gr = cli_grammar_parse_opt(o, argc, argv, i);
    if (gr) return gr;
    int sr = cli_parse_spec_opt(o, argc, argv, i);
    if (sr) return sr;
    if (!strcmp(a, "--precise")) { o->precise = true; return 1; }
    static const char *const with_value[] = { "-m", "--model", "-p", "--prompt", "-f", "--file", "-n",
        "--n-predict", "-c", "--ctx-size", "-t", "--threads", "--temp", "--top-k", "--top-p", "--min-p",
        "--repeat-penalty", "--repeat-last-n", "--seed", NULL };
    bool known = false;
    for (int k = 0; with_value[k]; k++) known |= strcmp(a, with_value[k]) == 0;
    if (!known) {
        if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) { o->verbose = true; return 1; }
        return 0;
    }
    if (*i + 1 >= argc) { fprintf(stderr, "slm: %s needs a value\n", a); return -1; }
    const char *v = argv[++*i];
    if (!strcmp(a, "-m") || !strcmp(a, "--model")) { o->model = v; return 1; }
    if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) { o->prompt = v; return 1; }
    if (!strcmp(a, "-f") || !strcmp(a, "--file")) { o->prompt_file = v; return 1; }
    if (!strcmp(a, "-n") || !strcmp(a, "--n-predict")) return parse_int(a, v, -1, INT_MAX, &o->n_predict);
    if (!strcmp(a, "-c") || !strcmp(a, "--ctx-size")) return parse_int(a, v, 1, 1 << 20, &o->n_ctx);
    if (!strcmp(a, "-t") || !strcmp(a, "--threads")) return parse_int(a, v, 1, 1024, &o->n_threads);
    if (!strcmp(a, "--temp")) return parse_float(a, v, 0, 100, &o->sp.temperature);
    if (!strcmp(a, "--top-k")) return parse_int(a, v, 0, INT_MAX, &o->sp.top_k);
    if (!strcmp(a, "--top-p")) return parse_float(a, v, 0, 1, &o->sp.top_p);
    if (!strcmp(a, "--min-p")) return parse_float(a, v, 0, 1, &o->sp.min_p);
    if (!strcmp(a, "--repeat-penalty")) return parse_float(a, v, 0.01, 100, &o->sp.repeat_penalty);
    if (!strcmp(a, "--repeat-last-n")) return parse_int(a, v, 0, 1 << 20, &o->sp.repeat_last_n);
    /* --seed */
    char *end;
    errno = 0;
    unsigned long long s = strtoull(v, &end, 10);
    if (errno || end == v || *end || v[0] == '-') {
        fprintf(stderr, "slm: --seed expects a non-negative integer, got '%s'\n", v);
        return -1;
    }
    o->sp.seed = s;
    o->seed_set = true;
    return 1;
}

void cli_print_gen_help(FILE *out) {
    fputs("  -m, --model FILE        GGUF model (default: the fetched Gemma 3 270M, see README)\n"
          "  -c, --ctx-size N        context size in tokens (default 4096)\n"
          "  -t, --threads N         threads (default: all CPUs)\n"
          "  -n, --n-predict N       tokens to generate (default 128; -1: until end of text or context)\n"
          "      --temp T            temperature (default 0.8; 0: greedy)\n"
          "      --top-k N           keep the N most likely tokens (default 40; 0: off)\n"
          "      --top-p P           nucleus sampling (default 0.95; 1: off)\n"
          "      --min-p P           drop tokens below P times the best one's probability (default 0.05)\n"
          "      --repeat-penalty F  penalise recent tokens (default 1.0: off)\n"
          "      --repeat-last-n N   how many recent tokens the penalty sees (default 64)\n"
          "      --seed N            random seed (default: from the clock, printed with -v)\n"
          "      --lora FILE         apply a LoRA adapter (GGUF, as `slm finetune` or llama.cpp write it)\n"
          "      --lora-scale S      multiply the adapter's update by S (default 1)\n"
          "      --precise           f32 activations in every matrix product (slower, closest to float)\n"
          "  -v, --verbose           print model and timing details\n", out);
    cli_print_grammar_help(out);
    cli_print_spec_help(out);
}

const char *cli_model_path(const char *explicit_path, char *buf, size_t cap) {
    if (explicit_path) return explicit_path;
    const char *dir = getenv("SLM_MODELS");
    if (dir && *dir) snprintf(buf, cap, "%s/%s", dir, SLM_DEFAULT_MODEL_FILE);
    else {
        const char *home = getenv("HOME");
        snprintf(buf, cap, "%s/.cache/slm/models/%s", home ? home : ".", SLM_DEFAULT_MODEL_FILE);
    }
    FILE *f = fopen(buf, "rb");
    if (!f) {
        fprintf(stderr, "slm: the default model is not at %s\n"
                        "     fetch it with `make model` (scripts/fetch_model.sh) or pass -m FILE\n", buf);
        return NULL;
    }
    fclose(f);
    return buf;
}

int cli_engine_open(cli_engine *e, const cli_gen_opts *o) {
    memset(e, 0, sizeof *e);
    char buf[4096];
    const char *path = cli_model_path(o->model, buf, sizeof buf);
    if (!path) return 1;
    double t0 = cli_now_ms();
    if (slm_model_open(path, &e->model)) {
        fprintf(stderr, "slm: cannot load %s: %s\n", path, slm_last_error());
        return 1;
    }
    slm_model_info info;
    slm_model_get_info(e->model, &info);
    slm_session_params sp = { .n_ctx = o->n_ctx < info.n_ctx_train ? o->n_ctx : info.n_ctx_train,
                              .n_threads = o->n_threads, .precise = o->precise };
    slm_sampler_params smp = o->sp;
    if (!o->seed_set) smp.seed = (uint64_t)time(NULL) ^ ((uint64_t)clock() << 20);
    if (slm_session_new(e->model, &sp, &e->session) || slm_sampler_new(&smp, info.n_vocab, &e->sampler)) {
        fprintf(stderr, "slm: %s\n", slm_last_error());
        cli_engine_close(e);
        return 1;
    }
    if (o->lora && cli_lora_open("", e->model, e->session, o->lora, o->lora_scale, &e->lora)) {
        cli_engine_close(e);
        return 1;
    }
    if (cli_grammar_open(e, o) || cli_spec_open(e, o)) {
        cli_engine_close(e);
        return 1;
    }
    if (o->verbose)
        fprintf(stderr, "slm: %s (%s, %d layers, %.0f M params) loaded in %.0f ms; context %d; kernels %s; seed %llu\n",
                info.name, info.arch, info.n_layer, info.n_params / 1e6, cli_now_ms() - t0,
                slm_session_n_ctx(e->session), slm_cpu_backend_name(), (unsigned long long)smp.seed);
    return 0;
}

void cli_engine_close(cli_engine *e) {
    slm_sampler_free(e->sampler);
    slm_session_free(e->session);
    slm_lora_free(e->lora);
    slm_grammar_free(e->grammar);
    slm_spec_free(e->spec);
    slm_model_close(e->model);
    memset(e, 0, sizeof *e);
}

int cli_generate(cli_engine *e, const slm_token *prompt, size_t n_prompt, int n_predict,
                 FILE *out, cli_gen_stats *st) {
    memset(st, 0, sizeof *st);
    st->last = -1;
    int n_ctx = slm_session_n_ctx(e->session), n_past = slm_session_n_past(e->session);
    if ((long)n_prompt > n_ctx - n_past) {
        fprintf(stderr, "slm: the prompt has %zu tokens but only %d of the context's %d positions are free\n",
                n_prompt, n_ctx - n_past, n_ctx);
        return 1;
    }
    for (size_t i = 0; i < n_prompt; i++) slm_sampler_accept(e->sampler, prompt[i]);
    double t0 = cli_now_ms();
    if (n_prompt && slm_session_eval(e->session, prompt, (int)n_prompt, false)) {
        fprintf(stderr, "slm: %s\n", slm_last_error());
        return 1;
    }
    st->n_prompt = (int)n_prompt;
    double t1 = cli_now_ms();
    st->t_prompt_ms = t1 - t0;
    if (e->grammar) slm_grammar_reset(e->grammar);
    slm_detok dt;
    slm_detok_init(&dt);
    char piece[256], text[512];
    cli_tokens it;
    if (cli_tokens_begin(&it, e, prompt, n_prompt, n_predict)) return 1;
    for (int i = 0; n_predict < 0 || i < n_predict; i++) {
        slm_token tok;
        if (cli_tokens_next(&it, &tok)) { cli_tokens_end(&it, NULL); return 1; }
        if (i == 0) st->t_first_ms = cli_now_ms() - t0;
        st->last = tok;
        if (slm_token_is_eog(e->model, tok)) { st->hit_eog = true; break; }
        st->n_gen++;
        size_t n = slm_token_to_bytes(e->model, tok, false, piece, sizeof piece);
        if (n > sizeof piece) n = sizeof piece;
        size_t w = slm_detok_push(&dt, piece, n, text, sizeof text);
        fwrite(text, 1, w, out);
        fflush(out);
        /* the plain loop has evaluated n_past + i positions here */
        if (n_past + (int)n_prompt + i >= n_ctx) { st->ctx_full = true; break; }
    }
    cli_tokens_end(&it, st);
    size_t w = slm_detok_flush(&dt, text, sizeof text);
    fwrite(text, 1, w, out);
    fflush(out);
    st->t_gen_ms = cli_now_ms() - t1;
    if (e->grammar && !slm_grammar_can_end(e->grammar)) {
        st->truncated = true;
        fprintf(stderr, "\nslm: output truncated: generation stopped (%s) before the grammar was complete\n",
                st->ctx_full ? "context full" : "token limit");
        return 3;
    }
    return 0;
}

void cli_print_stats(const cli_gen_stats *st) {
    fprintf(stderr, "\nslm: prompt %d tokens in %.1f ms (%.1f tok/s); time to first token %.1f ms\n",
            st->n_prompt, st->t_prompt_ms, st->t_prompt_ms > 0 ? st->n_prompt * 1e3 / st->t_prompt_ms : 0,
            st->t_first_ms);
    /* decode rate: tokens after the first, over the time after the first */
    double dec_ms = st->t_gen_ms - (st->t_first_ms - st->t_prompt_ms);
    fprintf(stderr, "slm: generated %d tokens in %.1f ms (%.1f tok/s decode)%s\n", st->n_gen, st->t_gen_ms,
            st->n_gen > 1 && dec_ms > 0 ? (st->n_gen - 1) * 1e3 / dec_ms : 0.0,
            st->ctx_full ? "; stopped: context full" : "");
    if (st->spec_steps)
        fprintf(stderr, "slm: speculative: %ld forward passes, %ld tokens drafted, %ld kept (%.0f%%)\n",
                st->spec_steps, st->spec_drafted, st->spec_accepted,
                st->spec_drafted ? 100.0 * st->spec_accepted / st->spec_drafted : 0.0);
}
