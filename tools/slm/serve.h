/* slm serve: what the server's files share. serve.c starts everything,
 * serve_http.c speaks HTTP (libmicrohttpd), serve_request.c parses bodies,
 * serve_sched.c runs the slots (continuous batching over slm_batch),
 * serve_metrics.c counts, serve_page.c holds the chat page, serve_tools.c
 * does tool calling. */
#ifndef SLM_SERVE_H
#define SLM_SERVE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "serve_request.h"
#include "slm.h"

/* ---- one generation request, shared by an HTTP thread and the scheduler ---- */

typedef enum { JOB_QUEUED, JOB_RUNNING, JOB_DONE } job_state;
typedef enum { FINISH_NONE, FINISH_STOP, FINISH_LENGTH, FINISH_ERROR } job_finish;

typedef struct serve_job {
    /* set by the HTTP side before submitting, then read-only */
    slm_token *prompt;
    int n_prompt, max_tokens;
    slm_sampler *sampler;
    slm_grammar *grammar;     /* response_format or tools: attached to sampler, owned; NULL: free text */
    bool grammar_lazy;        /* tool_choice auto: the grammar waits for the tool-call tag (serve_tools.c) */
    char *stop[SERVE_MAX_STOP];
    int n_stop;
    bool ignore_eos;
    double t_submit_ms, deadline_ms;

    /* guarded by mu */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    job_state state;
    job_finish finish;
    char error[160];          /* FINISH_ERROR: why */
    char *text;               /* generated text (stop sequences held back until ruled out) */
    size_t len, cap;
    size_t released;          /* bytes of text that may go to the client */
    int n_gen;
    double t_first_ms;        /* when the first token was sampled (0: not yet) */
    int refs;                 /* 2 while both sides hold it */

    atomic_bool cancel;       /* set by the HTTP side: client gone */
    struct serve_job *next;   /* queue link (scheduler's lock) */
} serve_job;

/* Allocates a job owning prompt and sampler (taken over even on failure). */
serve_job *job_new(slm_token *prompt, int n_prompt, int max_tokens, slm_sampler *sampler,
                   char *const *stop, int n_stop, double deadline_ms);
/* Drops one reference; the last frees the job. */
void job_release(serve_job *j);

/* ---- scheduler ---------------------------------------------------------- */

typedef struct serve_sched serve_sched;

typedef struct serve_sched_params {
    int n_slots, n_ctx, n_threads, queue_cap;
    int prefill_chunk;        /* prompt tokens per slot per step */
    const slm_lora *lora;     /* --lora: applied to every request, or NULL */
    float lora_scale;
} serve_sched_params;

int sched_start(serve_sched **out, slm_model *model, const serve_sched_params *p);
/* 0: queued (the scheduler holds a reference); -1: the queue is full;
 * -2: shutting down. */
int sched_submit(serve_sched *s, serve_job *j);
/* Stops admitting; waits up to grace_ms for running and queued jobs, then
 * cancels what is left and joins the thread. */
void sched_stop(serve_sched *s, double grace_ms);
void sched_free(serve_sched *s);
int sched_n_ctx(const serve_sched *s);
bool sched_stopping(const serve_sched *s);

/* ---- metrics -------------------------------------------------------------- */

void metrics_init(void);
void metrics_request(const char *endpoint, int status);
void metrics_tokens(int n_prompt, int n_gen);
void metrics_ttft(double seconds);
void metrics_latency(double seconds);
void metrics_queue_time(double seconds);
/* A connection refused or closed by the guard (serve_conn.c), by reason. */
void metrics_dropped(const char *reason);
void metrics_gauges(int queue_depth, int active_slots, int n_slots);
/* Prometheus text exposition; malloc'd. */
char *metrics_render(void);

/* ---- HTTP ------------------------------------------------------------------- */

typedef struct serve_config {
    const char *host;
    int port;
    const char *api_key;      /* NULL: no authentication */
    const char *model_name;
    size_t max_body;
    int max_tokens_cap, default_max_tokens;
    int max_connections, conn_timeout_s;
    int max_per_address;      /* open connections from one client address */
    double request_timeout_s;
    double read_timeout_s;    /* a request's head and body must arrive within this */
    const char *allow_origin; /* comma-separated origins allowed cross-origin ("*": any), or NULL */
    bool loopback;            /* bound to a loopback address: only loopback Host names */
    slm_model *model;
    serve_sched *sched;
} serve_config;

typedef struct serve_http serve_http;
int http_start(serve_http **out, serve_config *cfg);
/* Stops accepting connections (open ones continue). */
void http_quiesce(serve_http *h);
/* Waits up to ms for the generation requests still being answered (so that
 * the events ending cut streams reach their clients). */
void http_drain(serve_http *h, double ms);
void http_stop(serve_http *h);
int http_port(const serve_http *h);

/* ---- the generation endpoints' JSON (serve_api.c) ------------------------------- */

typedef struct gen_ctx {
    serve_kind kind;
    serve_job *job;           /* one reference held */
    char id[48];
    long long created;
    bool stream, include_usage;
    bool tools;               /* the answer is read for tool calls (serve_tools.h) */
    /* streaming with tools: what has gone to the client */
    size_t sent_content;
    int n_announced;          /* tool calls whose id and name were sent */
    size_t sent_args[16];     /* SERVE_MAX_CALLS */
} gen_ctx;

/* Parses and checks a body, renders and tokenizes the prompt and queues the
 * job. Returns 0, or the HTTP status of the refusal with *err_json (malloc'd
 * OpenAI-style error object). */
int api_start(serve_config *cfg, serve_kind kind, const char *body, size_t len, gen_ctx *g, char **err_json);
char *api_error_json(const char *message, const char *type, const char *param, const char *code);
/* The whole response of a finished job (non-streaming). */
char *api_final_json(const gen_ctx *g, const serve_config *cfg);
/* One server-sent event "data: {...}\n\n": text delta (role_chunk: the
 * opening chat chunk), or the closing chunk with finish_reason, or the usage
 * chunk. */
char *api_chunk_event(const gen_ctx *g, const serve_config *cfg, const char *delta, size_t n, const char *finish,
                      bool role_chunk, bool usage_chunk);
const char *api_finish_name(job_finish f);
/* Streaming with tools: the events for the text so far (final: the job is
 * done; then the closing chunk, usage and [DONE] are added too). May be ""
 * when nothing new can be said yet. */
char *api_tool_events(gen_ctx *g, const serve_config *cfg, const char *text, size_t len, bool final);

/* ---- helpers ---------------------------------------------------------------- */

extern const char serve_page_html[];
double serve_now_ms(void);
/* Constant-time comparison (time depends on the lengths only). */
bool serve_key_equal(const char *a, size_t alen, const char *b, size_t blen);

#endif
