/* slm serve: an OpenAI-compatible HTTP server over libslm. This file reads
 * the options, loads the model, starts the scheduler and the HTTP daemon,
 * and shuts both down cleanly on SIGINT/SIGTERM. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "serve.h"

double serve_now_ms(void) { return cli_now_ms(); }

static void serve_help(FILE *out) {
    fputs("usage: slm serve [options]\n"
          "An OpenAI-compatible HTTP server: POST /v1/chat/completions and /v1/completions\n"
          "(streaming with \"stream\": true), GET /v1/models, /health, /metrics (Prometheus)\n"
          "and a chat page at /. Requests share the model through continuous batching: the\n"
          "next token of every active request is computed in one forward pass.\n\n"
          "  -m, --model FILE        GGUF model (default: the default model)\n"
          "  --host ADDR             address to bind (default 127.0.0.1; 0.0.0.0 exposes it)\n"
          "  --port N                TCP port (default 8080; 0: any free port)\n"
          "  --slots N               requests generated at once (default 4)\n"
          "  --queue N               requests that may wait for a slot; more get 503 (default 64)\n"
          "  -c, --ctx-size N        context per slot, prompt plus answer (default 4096)\n"
          "  -t, --threads N         compute threads (default: all CPUs)\n"
          "  --api-key-file FILE     require \"Authorization: Bearer KEY\", KEY being the file's\n"
          "                          first line\n"
          "  --max-tokens N          largest max_tokens a request may ask for (default 4096)\n"
          "  --default-max-tokens N  when a request gives none (default 512)\n"
          "  --max-body BYTES        largest request body (default 1048576)\n"
          "  --timeout SECONDS       time limit per request, queueing included (default 600)\n"
          "  --max-connections N     open connections at most (default 256)\n"
          "  --idle-timeout SECONDS  drop connections silent this long (default 30)\n"
          "  --grace SECONDS         at SIGINT/SIGTERM, time running requests get to finish\n"
          "                          (default 10); streams cut then end with an error event\n"
          "  --read-timeout SECONDS  a request's head and body must arrive within this,\n"
          "                          however slowly bytes trickle in (default 10)\n"
          "  --max-per-address N     open connections from one client address (default:\n"
          "                          half of --max-connections); over a limit: 503 at once\n"
          "  --allow-origin LIST     browser origins allowed cross-origin, comma-separated\n"
          "                          (\"*\": any); by default cross-origin requests get 403\n"
          "  --model-name NAME       the model's id in responses (default: the file name)\n"
          "  --lora FILE             apply a LoRA adapter to every request\n"
          "  --lora-scale S          multiply the adapter's update by S (default 1)\n", out);
}

static int int_opt(const char *flag, const char *v, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi) {
        fprintf(stderr, "slm serve: %s expects an integer in %ld..%ld, got '%s'\n", flag, lo, hi, v);
        return -1;
    }
    *out = x;
    return 0;
}

/* The key is the file's first line, without surrounding whitespace. */
static char *read_key(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) { fprintf(stderr, "slm serve: cannot open --api-key-file %s: %s\n", path, strerror(errno)); return NULL; }
    char buf[1024];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *s = buf, *e;
    while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n') s++;
    for (e = s; *e && *e != '\r' && *e != '\n'; e++) {}
    while (e > s && (e[-1] == ' ' || e[-1] == '\t')) e--;
    *e = '\0';
    if (!*s) { fprintf(stderr, "slm serve: --api-key-file %s holds no key\n", path); return NULL; }
    return strdup(s);
}

int cmd_serve(int argc, char **argv) {
    const char *model_arg = NULL, *key_file = NULL, *name = NULL;
    int grace_s = 10;
    serve_config cfg = { .host = "127.0.0.1", .port = 8080, .max_body = 1 << 20, .max_tokens_cap = 4096,
                         .default_max_tokens = 512, .max_connections = 256, .conn_timeout_s = 30,
                         .request_timeout_s = 600, .read_timeout_s = 10, .max_per_address = 0 };
    serve_sched_params sp = { .n_slots = 4, .n_ctx = 4096, .n_threads = 0, .queue_cap = 64, .prefill_chunk = 64,
                              .lora_scale = 1.0f };
    const char *lora_path = NULL;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { serve_help(stdout); return 0; }
        if (i + 1 >= argc) { fprintf(stderr, "slm serve: unknown option or missing value: '%s' (see --help)\n", a); return 2; }
        const char *v = argv[++i];
        long x = 0;
        int rc = 0;
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) model_arg = v;
        else if (!strcmp(a, "--host")) cfg.host = v;
        else if (!strcmp(a, "--port")) { rc = int_opt(a, v, 0, 65535, &x); cfg.port = (int)x; }
        else if (!strcmp(a, "--slots")) { rc = int_opt(a, v, 1, 256, &x); sp.n_slots = (int)x; }
        else if (!strcmp(a, "--queue")) { rc = int_opt(a, v, 0, 100000, &x); sp.queue_cap = (int)x; }
        else if (!strcmp(a, "-c") || !strcmp(a, "--ctx-size")) { rc = int_opt(a, v, 16, 1 << 20, &x); sp.n_ctx = (int)x; }
        else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) { rc = int_opt(a, v, 1, 1024, &x); sp.n_threads = (int)x; }
        else if (!strcmp(a, "--api-key-file")) key_file = v;
        else if (!strcmp(a, "--max-tokens")) { rc = int_opt(a, v, 1, 1 << 20, &x); cfg.max_tokens_cap = (int)x; }
        else if (!strcmp(a, "--default-max-tokens")) { rc = int_opt(a, v, 1, 1 << 20, &x); cfg.default_max_tokens = (int)x; }
        else if (!strcmp(a, "--max-body")) { rc = int_opt(a, v, 1024, 1L << 30, &x); cfg.max_body = (size_t)x; }
        else if (!strcmp(a, "--timeout")) { rc = int_opt(a, v, 1, 86400, &x); cfg.request_timeout_s = (double)x; }
        else if (!strcmp(a, "--max-connections")) { rc = int_opt(a, v, 1, 100000, &x); cfg.max_connections = (int)x; }
        else if (!strcmp(a, "--idle-timeout")) { rc = int_opt(a, v, 1, 86400, &x); cfg.conn_timeout_s = (int)x; }
        else if (!strcmp(a, "--grace")) { rc = int_opt(a, v, 0, 3600, &x); grace_s = (int)x; }
        else if (!strcmp(a, "--read-timeout")) { rc = int_opt(a, v, 1, 3600, &x); cfg.read_timeout_s = (double)x; }
        else if (!strcmp(a, "--max-per-address")) { rc = int_opt(a, v, 1, 100000, &x); cfg.max_per_address = (int)x; }
        else if (!strcmp(a, "--allow-origin")) cfg.allow_origin = v;
        else if (!strcmp(a, "--model-name")) name = v;
        else if (!strcmp(a, "--lora")) lora_path = v;
        else if (!strcmp(a, "--lora-scale")) {
            char *end;
            double d = strtod(v, &end);
            if (end == v || *end || !(d >= -100 && d <= 100)) {
                fprintf(stderr, "slm serve: --lora-scale expects a number in -100..100, got '%s'\n", v);
                return 2;
            }
            sp.lora_scale = (float)d;
        }
        else { fprintf(stderr, "slm serve: unknown option '%s' (see slm serve --help)\n", a); return 2; }
        if (rc) return 2;
    }
    if (cfg.default_max_tokens > cfg.max_tokens_cap) cfg.default_max_tokens = cfg.max_tokens_cap;
    if (!cfg.max_per_address) cfg.max_per_address = cfg.max_connections > 1 ? cfg.max_connections / 2 : 1;
    if (cfg.max_per_address > cfg.max_connections) cfg.max_per_address = cfg.max_connections;
    char *key = NULL;
    if (key_file && !(key = read_key(key_file))) return 1;
    cfg.api_key = key;

    char pathbuf[4096];
    const char *path = cli_model_path(model_arg, pathbuf, sizeof pathbuf);
    if (!path) { free(key); return 1; }
    slm_model *model;
    if (slm_model_open(path, &model)) {
        fprintf(stderr, "slm serve: cannot load %s: %s\n", path, slm_last_error());
        free(key);
        return 1;
    }
    slm_model_info info;
    slm_model_get_info(model, &info);
    if (sp.n_ctx > info.n_ctx_train) sp.n_ctx = info.n_ctx_train;
    const char *base = strrchr(path, '/');
    cfg.model_name = name ? name : base ? base + 1 : path;
    cfg.model = model;
    slm_lora *lora = NULL;
    if (lora_path && cli_lora_open("serve", model, NULL, lora_path, sp.lora_scale, &lora)) {
        slm_model_close(model);
        free(key);
        return 1;
    }
    sp.lora = lora;

    /* the signals are taken by sigwait below; every thread started from here on inherits the mask */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    metrics_init();
    serve_sched *sched = NULL;
    serve_http *http = NULL;
    int rc = 1;
    if (sched_start(&sched, model, &sp)) goto out;
    cfg.sched = sched;
    if (http_start(&http, &cfg)) goto out;
    fprintf(stderr, "slm serve: %s, %d slots of %d tokens, listening on http://%s:%d/\n", cfg.model_name,
            sp.n_slots, sched_n_ctx(sched), cfg.host, http_port(http));
    int sig = 0;
    sigwait(&set, &sig);
    fprintf(stderr, "slm serve: %s: finishing running requests (up to %d s), then exiting\n",
            sig == SIGINT ? "SIGINT" : "SIGTERM", grace_s);
    http_quiesce(http);
    sched_stop(sched, grace_s * 1000.0);
    http_drain(http, 2000);
    rc = 0;
out:
    http_stop(http);
    sched_free(sched);
    slm_lora_free(lora);
    slm_model_close(model);
    free(key);
    return rc;
}
