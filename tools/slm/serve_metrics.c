/* slm serve: counters and histograms for GET /metrics, in the Prometheus
 * text exposition format (version 0.0.4). One mutex: every update is a few
 * additions, far cheaper than the token it accompanies. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve.h"

#define N_BUCKETS 15
static const double bucket_le[N_BUCKETS] = { 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600 };

typedef struct {
    unsigned long long counts[N_BUCKETS + 1];  /* last: +Inf */
    double sum;
    unsigned long long n;
} histogram;

#define MAX_SERIES 64
typedef struct {
    char endpoint[32];
    int status;
    unsigned long long n;
} req_series;

static struct {
    pthread_mutex_t mu;
    req_series req[MAX_SERIES];
    int n_req;
    unsigned long long tokens_in, tokens_out;
    histogram ttft, latency, queue_time;
    req_series dropped[8];    /* connections refused or closed by the guard, by reason (in endpoint) */
    int n_dropped;
    int queue_depth, active, n_slots;
} M = { .mu = PTHREAD_MUTEX_INITIALIZER };

void metrics_init(void) {
    pthread_mutex_lock(&M.mu);
    M.n_req = 0;
    M.tokens_in = M.tokens_out = 0;
    memset(&M.ttft, 0, sizeof M.ttft);
    memset(&M.latency, 0, sizeof M.latency);
    memset(&M.queue_time, 0, sizeof M.queue_time);
    M.n_dropped = 0;
    pthread_mutex_unlock(&M.mu);
}

void metrics_request(const char *endpoint, int status) {
    pthread_mutex_lock(&M.mu);
    int i = 0;
    while (i < M.n_req && (M.req[i].status != status || strcmp(M.req[i].endpoint, endpoint))) i++;
    if (i == M.n_req && M.n_req < MAX_SERIES) {
        snprintf(M.req[i].endpoint, sizeof M.req[i].endpoint, "%s", endpoint);
        M.req[i].status = status;
        M.req[i].n = 0;
        M.n_req++;
    }
    if (i < M.n_req) M.req[i].n++;
    pthread_mutex_unlock(&M.mu);
}

void metrics_tokens(int n_prompt, int n_gen) {
    pthread_mutex_lock(&M.mu);
    M.tokens_in += (unsigned long long)n_prompt;
    M.tokens_out += (unsigned long long)n_gen;
    pthread_mutex_unlock(&M.mu);
}

static void observe(histogram *h, double v) {
    int b = 0;
    while (b < N_BUCKETS && v > bucket_le[b]) b++;
    pthread_mutex_lock(&M.mu);
    h->counts[b]++;
    h->sum += v;
    h->n++;
    pthread_mutex_unlock(&M.mu);
}

void metrics_ttft(double seconds) { observe(&M.ttft, seconds); }
void metrics_queue_time(double seconds) { observe(&M.queue_time, seconds); }

void metrics_dropped(const char *reason) {
    pthread_mutex_lock(&M.mu);
    int i = 0;
    while (i < M.n_dropped && strcmp(M.dropped[i].endpoint, reason)) i++;
    if (i == M.n_dropped && M.n_dropped < (int)(sizeof M.dropped / sizeof M.dropped[0])) {
        snprintf(M.dropped[i].endpoint, sizeof M.dropped[i].endpoint, "%s", reason);
        M.dropped[i].n = 0;
        M.n_dropped++;
    }
    if (i < M.n_dropped) M.dropped[i].n++;
    pthread_mutex_unlock(&M.mu);
}
void metrics_latency(double seconds) { observe(&M.latency, seconds); }

void metrics_gauges(int queue_depth, int active_slots, int n_slots) {
    pthread_mutex_lock(&M.mu);
    M.queue_depth = queue_depth;
    M.active = active_slots;
    M.n_slots = n_slots;
    pthread_mutex_unlock(&M.mu);
}

typedef struct { char *p; size_t n, cap; bool oom; } sbuf;

static void put(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(sbuf *b, const char *fmt, ...) {
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(b->p + b->n, b->cap - b->n, fmt, ap);
        va_end(ap);
        if (k < 0) { b->oom = true; return; }
        if ((size_t)k < b->cap - b->n) { b->n += (size_t)k; return; }
        size_t nc = b->cap * 2 + (size_t)k;
        char *np = realloc(b->p, nc);
        if (!np) { b->oom = true; return; }
        b->p = np;
        b->cap = nc;
    }
}

static void put_hist(sbuf *b, const char *name, const char *help, const histogram *h) {
    put(b, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    unsigned long long cum = 0;
    for (int i = 0; i < N_BUCKETS; i++) {
        cum += h->counts[i];
        put(b, "%s_bucket{le=\"%g\"} %llu\n", name, bucket_le[i], cum);
    }
    put(b, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.6f\n%s_count %llu\n", name, h->n, name, h->sum, name, h->n);
}

char *metrics_render(void) {
    sbuf b = { malloc(4096), 0, 4096, false };
    if (!b.p) return NULL;
    b.p[0] = '\0';
    pthread_mutex_lock(&M.mu);
    put(&b, "# HELP slm_requests_total HTTP requests by endpoint and status code.\n"
            "# TYPE slm_requests_total counter\n");
    for (int i = 0; i < M.n_req; i++)
        put(&b, "slm_requests_total{endpoint=\"%s\",code=\"%d\"} %llu\n", M.req[i].endpoint, M.req[i].status,
            M.req[i].n);
    put(&b, "# HELP slm_prompt_tokens_total Prompt tokens read by finished requests.\n"
            "# TYPE slm_prompt_tokens_total counter\nslm_prompt_tokens_total %llu\n", M.tokens_in);
    put(&b, "# HELP slm_completion_tokens_total Tokens generated.\n"
            "# TYPE slm_completion_tokens_total counter\nslm_completion_tokens_total %llu\n", M.tokens_out);
    put_hist(&b, "slm_time_to_first_token_seconds", "From arrival to the first generated token.", &M.ttft);
    put_hist(&b, "slm_request_duration_seconds", "From arrival to the last byte of a generation request.",
             &M.latency);
    put_hist(&b, "slm_queue_time_seconds", "From arrival to a slot (time spent waiting in the queue).",
             &M.queue_time);
    put(&b, "# HELP slm_connections_dropped_total Connections refused at a limit (503) or closed by the server "
            "before their request arrived.\n# TYPE slm_connections_dropped_total counter\n");
    for (int i = 0; i < M.n_dropped; i++)
        put(&b, "slm_connections_dropped_total{reason=\"%s\"} %llu\n", M.dropped[i].endpoint, M.dropped[i].n);
    put(&b, "# HELP slm_queue_depth Requests waiting for a slot.\n# TYPE slm_queue_depth gauge\n"
            "slm_queue_depth %d\n", M.queue_depth);
    put(&b, "# HELP slm_active_slots Slots generating now.\n# TYPE slm_active_slots gauge\n"
            "slm_active_slots %d\n", M.active);
    put(&b, "# HELP slm_slots Slots configured.\n# TYPE slm_slots gauge\nslm_slots %d\n", M.n_slots);
    pthread_mutex_unlock(&M.mu);
    if (b.oom) { free(b.p); return NULL; }
    return b.p;
}
