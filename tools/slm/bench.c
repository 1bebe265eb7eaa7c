/* slm bench: prompt-processing and generation speed, in the manner of
 * llama-bench, so the two tools' numbers can be put side by side.
 *
 *   pp<P>  evaluate P random tokens (fixed seed) in one call on an empty KV
 *          cache: P / time.
 *   tg<N>  from an empty cache, evaluate one token, take the argmax of its
 *          logits, feed it back; N times: N / time (the argmax is timed too).
 *
 * Each test runs once as a warm-up, then -r times; the table gives the mean
 * and the sample standard deviation of the per-run tokens/s. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#define BENCH_MAX_LIST 64
#define BENCH_TTFT_PROMPT "The capital of France is"

typedef struct int_list {
    int v[BENCH_MAX_LIST];
    int n;
} int_list;

typedef struct bench_opts {
    const char *model;
    int_list p, n, t;
    int reps;
    bool json, warmup, progress;
    int spec;          /* speculative kind of the extra "tgN spec" rows; SLM_SPEC_OFF: none */
    bool spec_set;     /* --speculative given (JSON output has the rows only then) */
} bench_opts;

static void bench_help(FILE *out) {
    fputs("usage: slm bench [options]\n"
          "Measures prompt processing (ppP: P random tokens evaluated at once on an empty\n"
          "context) and generation (tgN: N tokens one at a time, greedy, fed back) in tokens/s,\n"
          "like llama-bench. Each test runs once to warm up, then -r times: mean +- sd.\n"
          "Lists are comma-separated (-t 1,2); a flag given twice adds to its list.\n\n"
          "  -m, --model FILE        GGUF model (default: the fetched Gemma 3 270M)\n"
          "  -p, --n-prompt LIST     prompt lengths (default 512; 0: no pp test)\n"
          "  -n, --n-gen LIST        generation lengths (default 128; 0: no tg test)\n"
          "  -t, --threads LIST      thread counts (default: all CPUs)\n"
          "  -r, --repetitions N     timed runs per test (default 5)\n"
          "  -o, --output md|json    a markdown table (default) or a JSON array on stdout\n"
          "      --no-warmup         skip the warm-up run\n"
          "      --progress          print each test as it starts (stderr)\n"
          "      --speculative K     after each tgN, \"tgN spec\": the same greedy generation with\n"
          "                          speculative decoding K (auto, ngram, head, ngram+head; off:\n"
          "                          none). Default: auto in the table, off in JSON unless given\n\n"
          "The markdown output ends with the peak RSS and the time from opening the model\n"
          "to the first token of a short prompt. JSON objects carry model_filename,\n"
          "n_threads, n_prompt, n_gen, avg_ts, stddev_ts, samples_ts (as llama-bench -o json).\n"
          "SLM_KERNELS=avx2 (or scalar, ...) in the environment measures a lower kernel set.\n", out);
}

static int parse_list(const char *flag, const char *s, int lo, int hi, int_list *out) {
    const char *p = s;
    for (;;) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (errno || end == p || (*end && *end != ',') || v < lo || v > hi) {
            fprintf(stderr, "slm bench: %s expects integers in %d..%d separated by commas, got '%s'\n",
                    flag, lo, hi, s);
            return -1;
        }
        if (out->n >= BENCH_MAX_LIST) {
            fprintf(stderr, "slm bench: %s: at most %d values\n", flag, BENCH_MAX_LIST);
            return -1;
        }
        out->v[out->n++] = (int)v;
        if (!*end) return 0;
        p = end + 1;
    }
}

/* 0 ok, 1 help printed, 2 bad usage (message printed). */
static int bench_parse(bench_opts *o, int argc, char **argv) {
    memset(o, 0, sizeof *o);
    o->reps = 5;
    o->warmup = true;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { bench_help(stdout); return 1; }
        if (!strcmp(a, "--no-warmup")) { o->warmup = false; continue; }
        if (!strcmp(a, "--progress")) { o->progress = true; continue; }
        if (!strcmp(a, "--speculative")) {
            if (i + 1 >= argc || slm_spec_kind_parse(argv[i + 1]) < 0) {
                fprintf(stderr, "slm bench: --speculative expects auto, off, ngram, head or ngram+head\n");
                return 2;
            }
            o->spec = slm_spec_kind_parse(argv[++i]);
            o->spec_set = true;
            continue;
        }
        bool m = !strcmp(a, "-m") || !strcmp(a, "--model");
        bool p = !strcmp(a, "-p") || !strcmp(a, "--n-prompt");
        bool n = !strcmp(a, "-n") || !strcmp(a, "--n-gen");
        bool t = !strcmp(a, "-t") || !strcmp(a, "--threads");
        bool r = !strcmp(a, "-r") || !strcmp(a, "--repetitions");
        bool out = !strcmp(a, "-o") || !strcmp(a, "--output");
        if (!(m || p || n || t || r || out)) {
            fprintf(stderr, "slm bench: unknown option '%s' (see slm bench --help)\n", a);
            return 2;
        }
        if (i + 1 >= argc) { fprintf(stderr, "slm bench: %s needs a value\n", a); return 2; }
        const char *v = argv[++i];
        if (m) o->model = v;
        else if (p) { if (parse_list(a, v, 0, 1 << 20, &o->p)) return 2; }
        else if (n) { if (parse_list(a, v, 0, 1 << 20, &o->n)) return 2; }
        else if (t) { if (parse_list(a, v, 1, 1024, &o->t)) return 2; }
        else if (r) {
            int_list l = { .n = 0 };
            if (parse_list(a, v, 1, 100000, &l)) return 2;
            if (l.n != 1) { fprintf(stderr, "slm bench: %s takes one number, got '%s'\n", a, v); return 2; }
            o->reps = l.v[0];
        } else {
            if (!strcmp(v, "md")) o->json = false;
            else if (!strcmp(v, "json")) o->json = true;
            else { fprintf(stderr, "slm bench: %s expects md or json, got '%s'\n", a, v); return 2; }
        }
    }
    if (!o->spec_set) o->spec = o->json ? SLM_SPEC_OFF : slm_spec_kind_parse("auto");
    if (!o->p.n) o->p.v[o->p.n++] = 512;
    if (!o->n.n) o->n.v[o->n.n++] = 128;
    if (!o->t.n) {  /* all online CPUs, as a session with n_threads 0 would use */
        long nc = sysconf(_SC_NPROCESSORS_ONLN);
        o->t.v[o->t.n++] = nc < 1 ? 1 : nc > 1024 ? 1024 : (int)nc;
    }
    bool any = false;
    for (int k = 0; k < o->p.n; k++) any |= o->p.v[k] > 0;
    for (int k = 0; k < o->n.n; k++) any |= o->n.v[k] > 0;
    if (!any) { fprintf(stderr, "slm bench: every -p and -n value is 0: nothing to measure\n"); return 2; }
    return 0;
}

/* ---- helpers ------------------------------------------------------------- */

static uint64_t g_rng = 0x9E3779B97F4A7C15ull;
static uint64_t rng_next(void) {  /* splitmix64 */
    uint64_t z = (g_rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static uint64_t peak_rss_bytes(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru)) return 0;
    return (uint64_t)ru.ru_maxrss * 1024u;  /* Linux: KiB */
}

/* llama.cpp's names for general.file_type (the ones GGUF files carry today). */
static const char *ftype_name(long ft) {
    switch (ft) {
    case 0: return "all F32";
    case 1: return "F16";
    case 2: return "Q4_0";
    case 3: return "Q4_1";
    case 7: return "Q8_0";
    case 8: return "Q5_0";
    case 9: return "Q5_1";
    case 10: return "Q2_K - Medium";
    case 11: return "Q3_K - Small";
    case 12: return "Q3_K - Medium";
    case 13: return "Q3_K - Large";
    case 14: return "Q4_K - Small";
    case 15: return "Q4_K - Medium";
    case 16: return "Q5_K - Small";
    case 17: return "Q5_K - Medium";
    case 18: return "Q6_K";
    case 32: return "BF16";
    default: return NULL;
    }
}

/* "gemma3 270M Q4_K - Medium": arch, general.size_label, file type. Also the
 * bytes of all tensors, which llama-bench reports as the model's size. */
static void model_label(const char *path, const slm_model_info *info, char *buf, size_t cap,
                        uint64_t *tensor_bytes) {
    char size[64] = "", ftype[64] = "";
    slm_gguf *g;
    *tensor_bytes = info->file_size;
    if (!slm_gguf_open(path, &g)) {
        uint64_t total = 0;
        for (uint64_t i = 0; i < slm_gguf_n_tensors(g); i++) {
            slm_tensor_desc t;
            slm_gguf_tensor(g, i, &t);
            total += t.nbytes;
        }
        if (total) *tensor_bytes = total;
        for (uint64_t i = 0; i < slm_gguf_n_meta(g); i++) {
            size_t kl;
            const char *k = slm_gguf_meta_key(g, i, &kl);
            char val[256];
            if (kl == 18 && !memcmp(k, "general.size_label", kl)) {
                slm_gguf_meta_format(g, i, 0, val, sizeof val);
                /* strings come back quoted */
                const char *s = val[0] == '"' ? val + 1 : val;
                snprintf(size, sizeof size, "%.62s", s);
                size_t l = strlen(size);
                if (l && size[l - 1] == '"') size[l - 1] = 0;
            } else if (kl == 17 && !memcmp(k, "general.file_type", kl)) {
                slm_gguf_meta_format(g, i, 0, val, sizeof val);
                const char *d = val;
                while (*d && (*d < '0' || *d > '9')) d++;
                const char *nm = *d ? ftype_name(strtol(d, NULL, 10)) : NULL;
                if (nm) snprintf(ftype, sizeof ftype, "%s", nm);
            }
        }
        slm_gguf_close(g);
    }
    if (!size[0]) snprintf(size, sizeof size, "%.0fM", info->n_params / 1e6);
    snprintf(buf, cap, "%s %s%s%s", info->arch, size, ftype[0] ? " " : "", ftype);
}

static void json_str(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}

/* ---- the tests ----------------------------------------------------------- */

typedef struct bench_result {
    int n_threads, n_prompt, n_gen;
    int n;
    double *ns;          /* per run */
    double avg_ns, sd_ns, avg_ts, sd_ts;
    char time[32];       /* when the test started, UTC */
    uint64_t rss;
    bool spec;           /* a "tgN spec" row */
    long drafted, accepted, passes; /* its drafts, kept drafts and forward passes, over all runs */
} bench_result;

/* One timed run; returns nanoseconds or -1 (error printed). */
static double run_pp(slm_session *s, int n_vocab, int n_prompt, slm_token *buf) {
    for (int i = 0; i < n_prompt; i++) buf[i] = (slm_token)(rng_next() % (uint64_t)n_vocab);
    slm_session_truncate(s, 0);
    double t0 = now_ns();
    if (slm_session_eval(s, buf, n_prompt, false)) {
        fprintf(stderr, "slm bench: pp%d: %s\n", n_prompt, slm_last_error());
        return -1;
    }
    return now_ns() - t0;
}

static double run_tg(slm_session *s, int n_vocab, int n_gen, slm_token tok) {
    slm_session_truncate(s, 0);
    double t0 = now_ns();
    for (int i = 0; i < n_gen; i++) {
        if (slm_session_eval(s, &tok, 1, false)) {
            fprintf(stderr, "slm bench: tg%d: %s\n", n_gen, slm_last_error());
            return -1;
        }
        tok = slm_argmax(slm_session_logits(s), n_vocab);
    }
    return now_ns() - t0;
}

/* tgN with speculative decoding: the same N evaluations and greedy choices
 * from the same first token, the drafts checked in batched passes. */
static double run_tg_spec(slm_session *s, slm_spec *sp, slm_sampler *smp, int n_gen, slm_token tok, long *drafted,
                          long *accepted, long *passes) {
    slm_session_truncate(s, 0);
    slm_sampler_reset(smp);
    slm_token buf[64];
    double t0 = now_ns();
    if (slm_session_eval(s, &tok, 1, false) || slm_spec_begin(sp, &tok, 1)) goto fail;
    for (int used = 0; used < n_gen;) {
        int got = 0, max_out = n_gen - used < 64 ? n_gen - used : 64;
        if (slm_spec_step(sp, smp, NULL, max_out, buf, &got)) goto fail;
        used += got;
    }
    double t = now_ns() - t0;
    slm_spec_stats st;
    slm_spec_get_stats(sp, &st);
    *drafted += st.drafted;
    *accepted += st.accepted;
    *passes += st.steps + 1;
    return t;
fail:
    fprintf(stderr, "slm bench: tg%d spec: %s\n", n_gen, slm_last_error());
    return -1;
}

static void summarize(bench_result *r) {
    int tokens = r->n_prompt ? r->n_prompt : r->n_gen;
    double sn = 0, st = 0;
    for (int i = 0; i < r->n; i++) { sn += r->ns[i]; st += tokens * 1e9 / r->ns[i]; }
    r->avg_ns = sn / r->n;
    r->avg_ts = st / r->n;
    double vn = 0, vt = 0;
    for (int i = 0; i < r->n; i++) {
        double ts = tokens * 1e9 / r->ns[i];
        vn += (r->ns[i] - r->avg_ns) * (r->ns[i] - r->avg_ns);
        vt += (ts - r->avg_ts) * (ts - r->avg_ts);
    }
    r->sd_ns = r->n > 1 ? sqrt(vn / (r->n - 1)) : 0;
    r->sd_ts = r->n > 1 ? sqrt(vt / (r->n - 1)) : 0;
}

static void md_header(void) {
    printf("| %-30s | %10s | %10s | %-16s | %7s | %10s | %20s |\n", "model", "size", "params", "backend",
           "threads", "test", "t/s");
    printf("| %.30s | %.10s | %.10s | %.16s | %.7s | %.10s | %.20s |\n",
           "------------------------------", "---------:", "---------:", "----------------",
           "------:", "---------:", "-------------------:");
}

static void md_row(const bench_result *r, const char *label, const slm_model_info *info, uint64_t tensor_bytes,
                   const char *backend) {
    char test[32], ts[48], size[32], params[32];
    if (r->n_prompt) snprintf(test, sizeof test, "pp%d", r->n_prompt);
    else snprintf(test, sizeof test, r->spec ? "tg%d spec" : "tg%d", r->n_gen);
    snprintf(ts, sizeof ts, "%.2f ± %.2f", r->avg_ts, r->sd_ts);
    snprintf(size, sizeof size, "%.2f MiB", tensor_bytes / 1048576.0);
    snprintf(params, sizeof params, "%.2f M", info->n_params / 1e6);
    /* "±" is two bytes but one column: pad by hand */
    printf("| %-30s | %10s | %10s | %-16s | %7d | %10s | %21s |\n", label, size, params, backend, r->n_threads,
           test, ts);
    fflush(stdout);
}

static void json_obj(FILE *f, const bench_result *r, const char *path, const char *label,
                     const slm_model_info *info, uint64_t tensor_bytes, bool first) {
    fprintf(f, "%s  {\n", first ? "" : ",\n");
    fprintf(f, "    \"build\": \"slm %s\",\n", SLM_VERSION_STRING);
    fprintf(f, "    \"backends\": \"CPU\",\n    \"kernels\": ");
    json_str(f, slm_cpu_backend_name());
    fprintf(f, ",\n    \"model_filename\": ");
    json_str(f, path);
    fprintf(f, ",\n    \"model_type\": ");
    json_str(f, label);
    fprintf(f, ",\n    \"model_size\": %" PRIu64 ",\n    \"model_n_params\": %" PRIu64 ",\n", tensor_bytes,
            info->n_params);
    fprintf(f, "    \"n_threads\": %d,\n    \"n_prompt\": %d,\n    \"n_gen\": %d,\n", r->n_threads, r->n_prompt,
            r->n_gen);
    fprintf(f, "    \"test_time\": \"%s\",\n", r->time);
    if (r->spec)
        fprintf(f, "    \"speculative\": \"%s\",\n    \"spec_drafted\": %ld,\n    \"spec_accepted\": %ld,\n"
                   "    \"spec_passes\": %ld,\n", slm_spec_kind_name((slm_spec_kind)r->spec), r->drafted, r->accepted,
                r->passes);
    fprintf(f, "    \"avg_ns\": %.0f,\n    \"stddev_ns\": %.0f,\n", r->avg_ns, r->sd_ns);
    fprintf(f, "    \"avg_ts\": %.6f,\n    \"stddev_ts\": %.6f,\n", r->avg_ts, r->sd_ts);
    fprintf(f, "    \"samples_ns\": [");
    for (int i = 0; i < r->n; i++) fprintf(f, "%s%.0f", i ? ", " : " ", r->ns[i]);
    fprintf(f, " ],\n    \"samples_ts\": [");
    int tokens = r->n_prompt ? r->n_prompt : r->n_gen;
    for (int i = 0; i < r->n; i++) fprintf(f, "%s%.6f", i ? ", " : " ", tokens * 1e9 / r->ns[i]);
    fprintf(f, " ],\n    \"max_rss_bytes\": %" PRIu64 "\n  }", r->rss);
}

/* Model open → session → tokenize → eval → argmax for a short prompt. */
static int time_to_first_token(const char *path, int n_threads, int n_ctx, double *ms, int *n_prompt) {
    double t0 = now_ns();
    slm_model *m = NULL;
    slm_session *s = NULL;
    slm_token *toks = NULL;
    size_t n = 0;
    int rc = 1;
    slm_session_params sp = { .n_ctx = n_ctx, .n_threads = n_threads };
    if (slm_model_open(path, &m) || slm_session_new(m, &sp, &s) ||
        slm_tokenize(m, BENCH_TTFT_PROMPT, strlen(BENCH_TTFT_PROMPT), true, false, &toks, &n) ||
        slm_session_eval(s, toks, (int)n, false)) {
        fprintf(stderr, "slm bench: %s: %s\n", path, slm_last_error());
    } else {
        volatile slm_token first = slm_argmax(slm_session_logits(s), slm_vocab_size(m));
        (void)first;
        *ms = (now_ns() - t0) / 1e6;
        *n_prompt = (int)n;
        rc = 0;
    }
    free(toks);
    slm_session_free(s);
    slm_model_close(m);
    return rc;
}

int cmd_bench(int argc, char **argv) {
    bench_opts o;
    int pr = bench_parse(&o, argc, argv);
    if (pr == 1) return 0;
    if (pr) return 2;

    char pbuf[4096];
    const char *path = cli_model_path(o.model, pbuf, sizeof pbuf);
    if (!path) return 1;

    /* open → first token, measured before anything else touches the model */
    int t_max = 0;
    for (int k = 0; k < o.t.n; k++) t_max = o.t.v[k] > t_max ? o.t.v[k] : t_max;
    double ttft_ms = 0;
    int ttft_n = 0;
    if (time_to_first_token(path, t_max, 64, &ttft_ms, &ttft_n)) return 1;

    slm_model *model;
    if (slm_model_open(path, &model)) {
        fprintf(stderr, "slm bench: cannot load %s: %s\n", path, slm_last_error());
        return 1;
    }
    slm_model_info info;
    slm_model_get_info(model, &info);
    int n_ctx = 16;
    for (int k = 0; k < o.p.n; k++) n_ctx = o.p.v[k] > n_ctx ? o.p.v[k] : n_ctx;
    for (int k = 0; k < o.n.n; k++) n_ctx = o.n.v[k] > n_ctx ? o.n.v[k] : n_ctx;
    if (n_ctx > info.n_ctx_train) {
        fprintf(stderr, "slm bench: a test needs %d positions but the model's context is %d\n", n_ctx,
                info.n_ctx_train);
        slm_model_close(model);
        return 2;
    }
    char label[160], backend[48];
    uint64_t tensor_bytes;
    model_label(path, &info, label, sizeof label, &tensor_bytes);
    snprintf(backend, sizeof backend, "CPU (%s)", slm_cpu_backend_name());

    int n_tests = o.t.n * (o.p.n + 2 * o.n.n);
    bench_result *res = calloc((size_t)n_tests, sizeof *res);
    double *ns = calloc((size_t)n_tests * (size_t)o.reps, sizeof *ns);
    int max_p = 0;
    for (int k = 0; k < o.p.n; k++) max_p = o.p.v[k] > max_p ? o.p.v[k] : max_p;
    slm_token *ptoks = malloc(sizeof *ptoks * (size_t)(max_p > 0 ? max_p : 1));
    slm_token *start = malloc(sizeof *start * ((size_t)o.reps + 1)); /* each tg run's first token */
    if (!res || !ns || !ptoks || !start) {
        fprintf(stderr, "slm bench: out of memory\n");
        free(res); free(ns); free(ptoks); free(start);
        slm_model_close(model);
        return 1;
    }

    if (!o.json) md_header();
    int nr = 0, rc = 0;
    bool first_json = true;
    if (o.json) fputs("[\n", stdout);
    /* llama-bench's order: every pp test, then every tg test; threads inner */
    for (int kind = 0; kind < 2 && !rc; kind++) {
        const int_list *lens = kind ? &o.n : &o.p;
        for (int li = 0; li < lens->n && !rc; li++) {
            int len = lens->v[li];
            if (len <= 0) continue;
            for (int ti = 0; ti < o.t.n && !rc; ti++) {
                slm_session_params sp = { .n_ctx = n_ctx, .n_threads = o.t.v[ti] };
                slm_session *s;
                if (slm_session_new(model, &sp, &s)) {
                    fprintf(stderr, "slm bench: %s\n", slm_last_error());
                    rc = 1;
                    break;
                }
                for (int variant = 0; variant < (kind && o.spec != SLM_SPEC_OFF ? 2 : 1) && !rc; variant++) {
                bench_result *r = &res[nr++];
                r->n_threads = o.t.v[ti];
                r->n_prompt = kind ? 0 : len;
                r->n_gen = kind ? len : 0;
                r->spec = variant == 1;
                r->ns = ns + (size_t)(nr - 1) * (size_t)o.reps;
                time_t now = time(NULL);
                struct tm tmv;
                gmtime_r(&now, &tmv);
                strftime(r->time, sizeof r->time, "%Y-%m-%dT%H:%M:%SZ", &tmv);
                if (o.progress)
                    fprintf(stderr, "slm bench: %s%d%s, %d threads, %s%d runs\n", kind ? "tg" : "pp", len,
                            variant ? " spec" : "", r->n_threads, o.warmup ? "warm-up + " : "", o.reps);
                slm_spec *spec = NULL;
                slm_sampler *smp = NULL;
                if (variant) {
                    slm_spec_params spp = { .kind = (slm_spec_kind)o.spec };
                    slm_sampler_params smpp;
                    slm_sampler_default_params(&smpp);
                    smpp.temperature = 0;
                    if (slm_spec_new(model, s, &spp, &spec) || slm_sampler_new(&smpp, info.n_vocab, &smp)) {
                        fprintf(stderr, "slm bench: %s\n", slm_last_error());
                        rc = 1;
                    }
                }
                for (int rep = o.warmup ? -1 : 0; rep < o.reps && !rc; rep++) {
                    /* the spec row starts each run from the tg row's first token */
                    if (kind && !variant) start[rep + 1] = (slm_token)(rng_next() % (uint64_t)info.n_vocab);
                    long d = 0, a = 0, p = 0;
                    double t = !kind   ? run_pp(s, info.n_vocab, len, ptoks)
                               : variant ? run_tg_spec(s, spec, smp, len, start[rep + 1], &d, &a, &p)
                                         : run_tg(s, info.n_vocab, len, start[rep + 1]);
                    if (t < 0) { rc = 1; break; }
                    if (rep >= 0) {
                        r->ns[r->n++] = t;
                        r->drafted += d;
                        r->accepted += a;
                        r->passes += p;
                    }
                }
                slm_spec_free(spec);
                slm_sampler_free(smp);
                if (rc) break;
                summarize(r);
                r->rss = peak_rss_bytes();
                if (o.json) { json_obj(stdout, r, path, label, &info, tensor_bytes, first_json); first_json = false; }
                else md_row(r, label, &info, tensor_bytes, backend);
                }
            }
        }
    }
    if (o.json) {
        fputs(first_json ? "]\n" : "\n]\n", stdout);
    } else if (!rc) {
        printf("\nbuild: slm %s, CPU kernels %s; %d warm-up + %d timed runs per test\n", SLM_VERSION_STRING,
               slm_cpu_backend_name(), o.warmup ? 1 : 0, o.reps);
        printf("peak RSS: %.1f MiB; model open -> first token (%d-token prompt, %d threads): %.1f ms\n",
               peak_rss_bytes() / 1048576.0, ttft_n, t_max, ttft_ms);
        for (int i = 0; i < nr; i++)
            if (res[i].spec)
                printf("tg%d spec (%s, %d threads): %ld of %ld drafted tokens kept (%.0f%%), %.2f tokens per forward "
                       "pass\n", res[i].n_gen, slm_spec_kind_name((slm_spec_kind)o.spec), res[i].n_threads,
                       res[i].accepted, res[i].drafted, res[i].drafted ? 100.0 * res[i].accepted / res[i].drafted : 0,
                       res[i].passes ? (double)res[i].n_gen * res[i].n / res[i].passes : 0);
    }
    fflush(stdout);
    free(ptoks);
    free(start);
    free(ns);
    free(res);
    slm_model_close(model);
    return rc;
}
