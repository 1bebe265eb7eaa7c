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

#include "serve.h"
#include "serve_tools.h"

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
        const char **mj = calloc((size_t)r.n_messages, sizeof *mj);
        bool tool_turns = false;
        for (int i = 0; i < r.n_messages; i++) {
            msgs[i] = (slm_chat_message){ r.messages[i].role, r.messages[i].content };
            if (mj) mj[i] = r.messages[i].tool_json;
            tool_turns |= r.messages[i].tool_json != NULL || !strcmp(r.messages[i].role, "tool");
        }
        char why[160];
        bool native = false;
        if (!mj) {
            st = SLM_ERR_NOMEM;
            snprintf(why, sizeof why, "out of memory");
        } else if (r.tools || tool_turns)  /* serve_tools.c: the template's tools, or the generic convention */
            st = serve_tools_prompt(cfg->model, msgs, mj, (size_t)r.n_messages, r.tools, &toks, &n_toks, &native,
                                    why, sizeof why);
        else if ((st = slm_chat_tokenize(cfg->model, msgs, (size_t)r.n_messages, true, &toks, NULL, &n_toks)))
            snprintf(why, sizeof why, "%s", slm_last_error());
        free(msgs);
        free(mj);
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
    bool tools_on = r.tools && r.tools->choice != TOOL_CHOICE_NONE, lazy = false;
    if (tools_on) {
        /* tool calls: held to the calls' grammar from the start (required,
         * named) or from the moment the model opens a call (auto) */
        char *gbnf = serve_tools_grammar(r.tools);
        st = gbnf ? slm_grammar_new(cfg->model, gbnf, strlen(gbnf), &gram) : SLM_ERR_NOMEM;
        free(gbnf);
        lazy = r.tools->choice == TOOL_CHOICE_AUTO;
        if (!st && !lazy) st = slm_sampler_set_grammar(smp, gram);
        if (st) {
            snprintf(err, sizeof err, "tools: %s", st == SLM_ERR_NOMEM ? "out of memory" : slm_last_error());
            slm_grammar_free(gram);
            slm_sampler_free(smp);
            free(toks);
            serve_request_free(&r);
            return refuse(st == SLM_ERR_NOMEM ? 503 : 400, err_json, err, "tools", NULL);
        }
    } else if (r.response_schema) {
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
        j->grammar_lazy = lazy;
    } else {
        slm_grammar_free(gram);
    }
    g->kind = kind;
    g->stream = r.stream;
    g->include_usage = r.include_usage;
    g->tools = tools_on;
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

/* One entry of tool_calls: whole (id, type, name, arguments), or a stream's
 * first delta of a call (index, id, type, name, "" arguments). */
static cJSON *tool_call_json(const gen_ctx *g, int i, const tool_call_out *c, bool whole) {
    cJSON *x = cJSON_CreateObject();
    if (!whole) cJSON_AddNumberToObject(x, "index", i);
    char id[96];
    snprintf(id, sizeof id, "call_%s_%d", g->id + (strncmp(g->id, "chatcmpl-", 9) ? 0 : 9), i);
    cJSON_AddStringToObject(x, "id", id);
    cJSON_AddStringToObject(x, "type", "function");
    cJSON *f = cJSON_AddObjectToObject(x, "function");
    cJSON_AddStringToObject(f, "name", c->name);
    cJSON_AddStringToObject(f, "arguments", whole ? c->args : "");
    return x;
}

char *api_final_json(const gen_ctx *g, const serve_config *cfg) {
    const serve_job *j = g->job;
    cJSON *root = envelope(g, cfg, false);
    cJSON *choices = cJSON_AddArrayToObject(root, "choices");
    cJSON *c = cJSON_CreateObject();
    cJSON_AddItemToArray(choices, c);
    cJSON_AddNumberToObject(c, "index", 0);
    const char *finish = api_finish_name(j->finish);
    if (g->kind == SERVE_CHAT && g->tools) {
        tools_parsed tp;
        serve_tools_read(j->text, j->len, true, &tp);
        cJSON *m = cJSON_AddObjectToObject(c, "message");
        cJSON_AddStringToObject(m, "role", "assistant");
        if (tp.content_len || !tp.n_calls) add_text(m, "content", j->text, tp.content_len);
        else cJSON_AddNullToObject(m, "content");
        if (tp.n_calls) {
            cJSON *calls = cJSON_AddArrayToObject(m, "tool_calls");
            for (int i = 0; i < tp.n_calls; i++) cJSON_AddItemToArray(calls, tool_call_json(g, i, &tp.calls[i], true));
            if (j->finish == FINISH_STOP) finish = "tool_calls";
        }
        tools_parsed_free(&tp);
    } else if (g->kind == SERVE_CHAT) {
        cJSON *m = cJSON_AddObjectToObject(c, "message");
        cJSON_AddStringToObject(m, "role", "assistant");
        add_text(m, "content", j->text, j->len);
    } else {
        add_text(c, "text", j->text, j->len);
        cJSON_AddNullToObject(c, "logprobs");
    }
    cJSON_AddStringToObject(c, "finish_reason", finish);
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

/* ---- streaming with tools ------------------------------------------------------ */

typedef struct { char *p; size_t n; bool oom; } evbuf;

/* Appends one chunk event with this delta (taken over) and finish reason. */
static void add_event(evbuf *b, const gen_ctx *g, const serve_config *cfg, cJSON *delta, const char *finish,
                      bool usage) {
    cJSON *root = envelope(g, cfg, true);
    cJSON *choices = cJSON_AddArrayToObject(root, "choices");
    if (usage) {
        add_usage(root, g->job);
        cJSON_Delete(delta);
    } else {
        cJSON *c = cJSON_CreateObject();
        cJSON_AddItemToArray(choices, c);
        cJSON_AddNumberToObject(c, "index", 0);
        cJSON_AddItemToObject(c, "delta", delta ? delta : cJSON_CreateObject());
        if (finish) cJSON_AddStringToObject(c, "finish_reason", finish);
        else cJSON_AddNullToObject(c, "finish_reason");
    }
    char *js = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    size_t jl = js ? strlen(js) : 0;
    char *np = js ? realloc(b->p, b->n + jl + 9) : NULL;
    if (!np) { b->oom = true; free(js); return; }
    b->p = np;
    memcpy(b->p + b->n, "data: ", 6);
    memcpy(b->p + b->n + 6, js, jl);
    memcpy(b->p + b->n + 6 + jl, "\n\n", 3);
    b->n += jl + 8;
    free(js);
}

char *api_tool_events(gen_ctx *g, const serve_config *cfg, const char *text, size_t len, bool final) {
    evbuf b = { calloc(1, 1), 0, false };
    if (!b.p) return NULL;
    tools_parsed tp;
    serve_tools_read(text, len, final, &tp);
    if (tp.content_len > g->sent_content) {
        cJSON *d = cJSON_CreateObject();
        add_text(d, "content", text + g->sent_content, tp.content_len - g->sent_content);
        add_event(&b, g, cfg, d, NULL, false);
        g->sent_content = tp.content_len;
    }
    for (int i = 0; i < tp.n_calls && i < (int)(sizeof g->sent_args / sizeof g->sent_args[0]); i++) {
        const tool_call_out *c = &tp.calls[i];
        if (i >= g->n_announced) {  /* the call's first delta: index, id, type, name */
            cJSON *d = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(d, "tool_calls");
            cJSON_AddItemToArray(arr, tool_call_json(g, i, c, false));
            add_event(&b, g, cfg, d, NULL, false);
            g->n_announced = i + 1;
            g->sent_args[i] = 0;
        }
        size_t al = strlen(c->args);
        if (al > g->sent_args[i]) {  /* then its arguments, as they come */
            cJSON *d = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(d, "tool_calls"), *x = cJSON_CreateObject();
            cJSON_AddItemToArray(arr, x);
            cJSON_AddNumberToObject(x, "index", i);
            cJSON *f = cJSON_AddObjectToObject(x, "function");
            cJSON_AddStringToObject(f, "arguments", c->args + g->sent_args[i]);
            add_event(&b, g, cfg, d, NULL, false);
            g->sent_args[i] = al;
        }
    }
    if (final) {
        const char *finish = api_finish_name(g->job->finish);
        if (tp.n_calls && g->job->finish == FINISH_STOP) finish = "tool_calls";
        add_event(&b, g, cfg, NULL, finish, false);
        if (g->include_usage) add_event(&b, g, cfg, NULL, NULL, true);
        char *np = b.oom ? NULL : realloc(b.p, b.n + 15);
        if (np) {
            b.p = np;
            memcpy(b.p + b.n, "data: [DONE]\n\n", 15);
            b.n += 14;
        } else {
            b.oom = true;
        }
    }
    tools_parsed_free(&tp);
    if (b.oom) { free(b.p); return NULL; }
    return b.p;
}
