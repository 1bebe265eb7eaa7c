/* slm serve: the generation endpoints between HTTP and the scheduler: a
 * request body becomes a queued job (prompt rendered with the model's chat
 * format and tokenized, sampler configured), and a job's text becomes
 * OpenAI-shaped JSON (whole responses and streamed chunks). */
#include <cJSON.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chat_tokens.h"
#include "serve.h"

char *api_error_json(const char *message, const char *type, const char *param, const char *code) {
    cJSON *root = cJSON_CreateObject(), *e = cJSON_CreateObject();
    cJSON_AddItemToObject(root, "error", e);
    /* messages may quote a client's text or a template's: valid UTF-8 in any case */
    char safe[512];
    serve_quote(safe, sizeof safe, message, sizeof safe - 4);
    cJSON_AddStringToObject(e, "message", safe);
    cJSON_AddStringToObject(e, "type", type);
    if (param) cJSON_AddStringToObject(e, "param", param);
    else cJSON_AddNullToObject(e, "param");
    if (code) cJSON_AddStringToObject(e, "code", code);
    else cJSON_AddNullToObject(e, "code");
    char *s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return s;
}

const char *api_finish_name(job_finish f) { return f == FINISH_STOP ? "stop" : "length"; }

static int refuse(int status, char **err_json, const char *msg, const char *param, const char *code) {
    *err_json = api_error_json(msg, status == 503 ? "server_error" : "invalid_request_error", param, code);
    return status;
}

static atomic_ullong request_counter;

int api_start(serve_config *cfg, serve_kind kind, const char *body, size_t len, gen_ctx *g, char **err_json) {
    memset(g, 0, sizeof *g);
    *err_json = NULL;
    char err[256];
    const char *param = NULL;
    serve_request r;
    serve_request_limits lim = { cfg->max_tokens_cap };
    if (serve_request_parse(body, len, kind, &lim, &r, err, sizeof err, &param))
        return refuse(400, err_json, err, param, NULL);

    /* chat: the rendered turns carry their own BOS and control tokens, and
     * the messages' contents are plain text (chat_tokens.c: no forged turns);
     * completions: the user's text is plain text after a BOS */
    bool chat = kind == SERVE_CHAT;
    slm_token *toks = NULL;
    size_t n_toks = 0;
    slm_status st;
    if (chat) {
        slm_chat_message *msgs = calloc((size_t)r.n_messages, sizeof *msgs);
        if (!msgs) { serve_request_free(&r); return refuse(503, err_json, "out of memory", NULL, NULL); }
        for (int i = 0; i < r.n_messages; i++) msgs[i] = (slm_chat_message){ r.messages[i].role, r.messages[i].content };
        char why[160];
        st = chat_tokenize(cfg->model, msgs, (size_t)r.n_messages, true, &toks, &n_toks, why, sizeof why);
        free(msgs);
        if (st) {
            snprintf(err, sizeof err, "cannot render the conversation: %s", why);
            serve_request_free(&r);
            return refuse(st == SLM_ERR_NOMEM ? 503 : 400, err_json, err, "messages", NULL);
        }
    } else {
        st = slm_tokenize(cfg->model, r.prompt, strlen(r.prompt), true, false, &toks, &n_toks);
    }
    if (st) {
        snprintf(err, sizeof err, "cannot tokenize the prompt: %s", slm_last_error());
        serve_request_free(&r);
        return refuse(400, err_json, err, chat ? "messages" : "prompt", NULL);
    }
    int n_ctx = sched_n_ctx(cfg->sched);
    if (n_toks == 0 || (long)n_toks + 1 > n_ctx) {
        snprintf(err, sizeof err, "the prompt has %zu tokens; this server's context holds %d (prompt and answer)",
                 n_toks, n_ctx);
        free(toks);
        serve_request_free(&r);
        return refuse(400, err_json, err, chat ? "messages" : "prompt", "context_length_exceeded");
    }
    int max_tokens = r.max_tokens > 0 ? r.max_tokens : cfg->default_max_tokens;
    if (max_tokens > n_ctx - (int)n_toks) max_tokens = n_ctx - (int)n_toks;

    slm_sampler_params sp;
    slm_sampler_default_params(&sp);
    sp.temperature = r.temperature;
    sp.top_k = r.top_k;
    sp.top_p = r.top_p;
    sp.min_p = r.min_p;
    sp.presence_penalty = r.presence_penalty;
    sp.frequency_penalty = r.frequency_penalty;
    unsigned long long nr = atomic_fetch_add(&request_counter, 1) + 1;
    sp.seed = r.seed_set ? r.seed : (uint64_t)time(NULL) * 6364136223846793005ull + nr;
    slm_sampler *smp;
    if (slm_sampler_new(&sp, slm_vocab_size(cfg->model), &smp)) {
        snprintf(err, sizeof err, "%s", slm_last_error());
        free(toks);
        serve_request_free(&r);
        return refuse(400, err_json, err, NULL, NULL);
    }
    /* response_format: this request's own grammar (its parser state is the
     * slot's), attached to its sampler; the job frees it */
    slm_grammar *gram = NULL;
    if (r.response_schema) {
        st = slm_grammar_new_json_schema(cfg->model, r.response_schema, strlen(r.response_schema), &gram);
        if (!st) st = slm_sampler_set_grammar(smp, gram);
        if (st) {
            snprintf(err, sizeof err, "response_format: %s", slm_last_error());
            slm_grammar_free(gram);
            slm_sampler_free(smp);
            free(toks);
            serve_request_free(&r);
            return refuse(st == SLM_ERR_NOMEM ? 503 : 400, err_json, err, "response_format", NULL);
        }
    }
    serve_job *j = job_new(toks, (int)n_toks, max_tokens, smp, r.stop, r.n_stop,
                           serve_now_ms() + cfg->request_timeout_s * 1e3);
    if (j) {
        j->ignore_eos = r.ignore_eos;
        j->grammar = gram;
    } else {
        slm_grammar_free(gram);
    }
    g->kind = kind;
    g->stream = r.stream;
    g->include_usage = r.include_usage;
    serve_request_free(&r);
    if (!j) return refuse(503, err_json, "out of memory", NULL, NULL);
    int rc = sched_submit(cfg->sched, j);
    if (rc) {
        job_release(j);
        return refuse(503, err_json,
                      rc == -1 ? "the server is busy: every slot is taken and the queue is full; retry later"
                               : "the server is shutting down",
                      NULL, rc == -1 ? "queue_full" : "shutting_down");
    }
    g->job = j;
    g->created = (long long)time(NULL);
    snprintf(g->id, sizeof g->id, "%s-%llx%06llx", chat ? "chatcmpl" : "cmpl", (unsigned long long)g->created, nr);
    return 0;
}

static void add_usage(cJSON *root, const serve_job *j) {
    cJSON *u = cJSON_AddObjectToObject(root, "usage");
    cJSON_AddNumberToObject(u, "prompt_tokens", j->n_prompt);
    cJSON_AddNumberToObject(u, "completion_tokens", j->n_gen);
    cJSON_AddNumberToObject(u, "total_tokens", j->n_prompt + j->n_gen);
}

static cJSON *envelope(const gen_ctx *g, const serve_config *cfg, bool chunk) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "id", g->id);
    cJSON_AddStringToObject(root, "object", g->kind == SERVE_CHAT ? (chunk ? "chat.completion.chunk" : "chat.completion")
                                                                  : "text_completion");
    cJSON_AddNumberToObject(root, "created", (double)g->created);
    cJSON_AddStringToObject(root, "model", cfg->model_name);
    return root;
}

/* A string that may hold any bytes up to n (cJSON wants NUL-terminated). */
static cJSON *add_text(cJSON *obj, const char *name, const char *s, size_t n) {
    char *t = malloc(n + 1);
    if (!t) return NULL;
    memcpy(t, s, n);
    t[n] = '\0';
    cJSON *it = cJSON_AddStringToObject(obj, name, t);
    free(t);
    return it;
}

char *api_final_json(const gen_ctx *g, const serve_config *cfg) {
    const serve_job *j = g->job;
    cJSON *root = envelope(g, cfg, false);
    cJSON *choices = cJSON_AddArrayToObject(root, "choices");
    cJSON *c = cJSON_CreateObject();
    cJSON_AddItemToArray(choices, c);
    cJSON_AddNumberToObject(c, "index", 0);
    if (g->kind == SERVE_CHAT) {
        cJSON *m = cJSON_AddObjectToObject(c, "message");
        cJSON_AddStringToObject(m, "role", "assistant");
        add_text(m, "content", j->text, j->len);
    } else {
        add_text(c, "text", j->text, j->len);
        cJSON_AddNullToObject(c, "logprobs");
    }
    cJSON_AddStringToObject(c, "finish_reason", api_finish_name(j->finish));
    add_usage(root, j);
    char *s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return s;
}

char *api_chunk_event(const gen_ctx *g, const serve_config *cfg, const char *delta, size_t n, const char *finish,
                      bool role_chunk, bool usage_chunk) {
    cJSON *root = envelope(g, cfg, true);
    cJSON *choices = cJSON_AddArrayToObject(root, "choices");
    if (usage_chunk) {
        add_usage(root, g->job);
    } else {
        cJSON *c = cJSON_CreateObject();
        cJSON_AddItemToArray(choices, c);
        cJSON_AddNumberToObject(c, "index", 0);
        if (g->kind == SERVE_CHAT) {
            cJSON *d = cJSON_AddObjectToObject(c, "delta");
            if (role_chunk) {
                cJSON_AddStringToObject(d, "role", "assistant");
                cJSON_AddStringToObject(d, "content", "");
            } else if (!finish) {
                add_text(d, "content", delta, n);
            }
        } else {
            add_text(c, "text", finish ? "" : delta, finish ? 0 : n);
            cJSON_AddNullToObject(c, "logprobs");
        }
        if (finish) cJSON_AddStringToObject(c, "finish_reason", finish);
        else cJSON_AddNullToObject(c, "finish_reason");
    }
    char *js = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!js) return NULL;
    size_t jl = strlen(js);
    char *ev = malloc(jl + 9);
    if (ev) {
        memcpy(ev, "data: ", 6);
        memcpy(ev + 6, js, jl);
        memcpy(ev + 6 + jl, "\n\n", 3);
    }
    free(js);
    return ev;
}
