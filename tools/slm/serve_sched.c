/* slm serve: the slots. One thread owns an slm_batch of n_slots sequences.
 * Each step it admits queued requests into free slots, then runs ONE forward
 * pass holding the next token of every decoding slot plus a bounded chunk of
 * prompt tokens of the slots still reading their prompt (so a long prompt
 * delays the others by one chunk per step, never by its whole length), then
 * samples every slot whose logits are ready. Requests leave a slot when they
 * finish, hit a limit, run out of time or lose their client; the slot is
 * emptied and taken by the next queued request at the next step. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "serve.h"
#include "serve_tools.h"

typedef struct slot {
    serve_job *job;           /* NULL: free */
    int n_fed;                /* prompt tokens already in the cache */
    slm_token last;           /* the sampled token to feed next */
    bool text_final;          /* a stop sequence has cut the text */
    slm_detok detok;
} slot;

struct serve_sched {
    slm_model *model;
    slm_batch *batch;
    int n_slots, n_ctx, queue_cap, prefill_chunk;
    pthread_t thread;
    bool started;
    pthread_mutex_t mu;       /* queue, flags, n_active */
    pthread_cond_t cv;
    serve_job *qhead, *qtail;
    int qlen, n_active;
    bool stopping, quit;
    slot *slots;
    slm_batch_item *items;
    int *item_slot;
};

/* ---- jobs --------------------------------------------------------------------- */

serve_job *job_new(slm_token *prompt, int n_prompt, int max_tokens, slm_sampler *sampler,
                   char *const *stop, int n_stop, double deadline_ms) {
    serve_job *j = calloc(1, sizeof *j);
    if (!j) { free(prompt); slm_sampler_free(sampler); return NULL; }
    j->prompt = prompt;
    j->n_prompt = n_prompt;
    j->max_tokens = max_tokens;
    j->sampler = sampler;
    for (int i = 0; i < n_stop; i++) {
        j->stop[i] = strdup(stop[i]);
        if (!j->stop[i]) { job_release(j); return NULL; }
        j->n_stop++;
    }
    j->t_submit_ms = serve_now_ms();
    j->deadline_ms = deadline_ms;
    j->refs = 1;
    j->cap = 256;
    j->text = malloc(j->cap);
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cv, NULL);
    atomic_init(&j->cancel, false);
    if (!j->text) { job_release(j); return NULL; }
    return j;
}

void job_release(serve_job *j) {
    if (!j) return;
    pthread_mutex_lock(&j->mu);
    int left = --j->refs;
    pthread_mutex_unlock(&j->mu);
    if (left > 0) return;
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->cv);
    free(j->prompt);
    slm_sampler_free(j->sampler);
    slm_grammar_free(j->grammar);
    for (int i = 0; i < j->n_stop; i++) free(j->stop[i]);
    free(j->text);
    free(j);
}

/* ---- text and stop sequences ---------------------------------------------------- */

static bool append(serve_job *j, const char *s, size_t n) {
    if (j->len + n + 1 > j->cap) {
        size_t nc = j->cap;
        while (j->len + n + 1 > nc) nc *= 2;
        char *nt = realloc(j->text, nc);
        if (!nt) return false;
        j->text = nt;
        j->cap = nc;
    }
    memcpy(j->text + j->len, s, n);
    j->len += n;
    j->text[j->len] = '\0';
    return true;
}

/* Caller holds j->mu. Returns true when a stop sequence ended the text (cut
 * before it); otherwise releases everything that cannot be the start of one. */
static bool check_stops(serve_job *j) {
    size_t best = (size_t)-1;
    for (int i = 0; i < j->n_stop; i++) {
        size_t sl = strlen(j->stop[i]);
        /* a match cannot start inside text already released */
        for (size_t p = j->released; p + sl <= j->len; p++)
            if (memcmp(j->text + p, j->stop[i], sl) == 0) { if (p < best) best = p; break; }
    }
    if (best != (size_t)-1) {
        j->len = best;
        j->text[best] = '\0';
        j->released = best;
        return true;
    }
    size_t hold = 0;
    for (int i = 0; i < j->n_stop; i++) {
        size_t sl = strlen(j->stop[i]);
        for (size_t k = sl - 1; k > hold; k--)
            if (k <= j->len && memcmp(j->text + j->len - k, j->stop[i], k) == 0) { hold = k; break; }
    }
    if (j->len - hold > j->released) j->released = j->len - hold;
    return false;
}

/* ---- the loop ------------------------------------------------------------------- */

static void finish(serve_sched *s, int si, job_finish why, const char *msg) {
    slot *sl = &s->slots[si];
    serve_job *j = sl->job;
    pthread_mutex_lock(&j->mu);
    if (why != FINISH_ERROR) {
        if (!sl->text_final) {  /* an incomplete UTF-8 tail becomes U+FFFD */
            char tail[16];
            size_t n = slm_detok_flush(&sl->detok, tail, sizeof tail);
            if (append(j, tail, n) && j->n_stop) check_stops(j);
        }
        j->released = j->len;
    } else {
        snprintf(j->error, sizeof j->error, "%s", msg ? msg : "failed");
    }
    j->finish = why;
    j->state = JOB_DONE;
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
    metrics_tokens(j->n_prompt, j->n_gen);
    job_release(j);
    slm_batch_truncate(s->batch, si, 0);
    sl->job = NULL;
    pthread_mutex_lock(&s->mu);
    s->n_active--;
    int qlen = s->qlen, active = s->n_active;
    pthread_mutex_unlock(&s->mu);
    metrics_gauges(qlen, active, s->n_slots);
}

/* tool_choice auto: once the text opens a tool call (serve_tools_trigger),
 * the grammar takes the text from there on and holds the rest of the answer
 * to tool calls. Only this thread writes j->text. If the grammar refuses
 * what the tokens carried past the opening, the answer goes on
 * unconstrained (and is read for calls as it is). */
static void arm_lazy(serve_job *j, size_t before) {
    size_t p = serve_tools_trigger(j->text, j->len, before);
    if (p == (size_t)-1) return;
    j->grammar_lazy = false;
    if (slm_grammar_accept_bytes(j->grammar, j->text + p, j->len - p) ||
        slm_sampler_set_grammar(j->sampler, j->grammar)) {
        slm_sampler_set_grammar(j->sampler, NULL);
        slm_grammar_free(j->grammar);
        j->grammar = NULL;
    }
}

/* A sampled token: record it, turn it into text, decide whether to go on. */
static void take_token(serve_sched *s, int si, slm_token tok) {
    slot *sl = &s->slots[si];
    serve_job *j = sl->job;
    bool constrained = j->grammar && !j->grammar_lazy;
    if (constrained) {  /* response_format, tools: the slot's own grammar state follows the tokens */
        if (tok < 0) { finish(s, si, FINISH_ERROR, "no token of the vocabulary continues the response_format or tool call here"); return; }
        if (slm_grammar_accept(j->grammar, tok)) {
            char msg[160];
            snprintf(msg, sizeof msg, "response_format: %s", slm_last_error());
            finish(s, si, FINISH_ERROR, msg);
            return;
        }
    }
    slm_sampler_accept(j->sampler, tok);
    if (j->t_first_ms == 0) {
        j->t_first_ms = serve_now_ms();
        metrics_ttft((j->t_first_ms - j->t_submit_ms) / 1e3);
    }
    /* with a grammar the end token is sampled only where the document is
     * complete, and nothing can follow it: it ends even with ignore_eos */
    if ((!j->ignore_eos || constrained) && slm_token_is_eog(s->model, tok)) { finish(s, si, FINISH_STOP, NULL); return; }
    char piece[256], out[256 + 8];
    size_t n = slm_token_to_bytes(s->model, tok, false, piece, sizeof piece);
    if (n > sizeof piece) n = 0;  /* no real token is this long */
    size_t w = slm_detok_push(&sl->detok, piece, n, out, sizeof out);
    size_t before = j->len;
    pthread_mutex_lock(&j->mu);
    bool ok = append(j, out, w);
    j->n_gen++;
    bool stopped = ok && j->n_stop && check_stops(j);
    if (ok && !j->n_stop) j->released = j->len;
    if (!stopped) pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
    if (!ok) { finish(s, si, FINISH_ERROR, "out of memory"); return; }
    if (stopped) {
        sl->text_final = true;
        finish(s, si, FINISH_STOP, NULL);
        return;
    }
    if (j->grammar_lazy) arm_lazy(j, before);
    /* the document is complete and only the end token may follow: done (no
     * step spent sampling it; a document finished on the last allowed token
     * is not "length") */
    if (j->grammar && !j->grammar_lazy && slm_grammar_must_end(j->grammar)) { finish(s, si, FINISH_STOP, NULL); return; }
    if (j->n_gen >= j->max_tokens || slm_batch_n_past(s->batch, si) >= s->n_ctx) {
        finish(s, si, FINISH_LENGTH, NULL);
        return;
    }
    sl->last = tok;
}

/* Moves queued jobs into free slots; with quit, ends them all instead.
 * Called with s->mu held. */
static void admit(serve_sched *s) {
    for (int i = 0; i < s->n_slots && s->qhead && !s->quit; i++) {
        if (s->slots[i].job) continue;
        serve_job *j = s->qhead;
        s->qhead = j->next;
        if (!s->qhead) s->qtail = NULL;
        s->qlen--;
        s->slots[i] = (slot){ .job = j };
        slm_detok_init(&s->slots[i].detok);
        metrics_queue_time((serve_now_ms() - j->t_submit_ms) / 1e3);
        pthread_mutex_lock(&j->mu);
        j->state = JOB_RUNNING;
        pthread_mutex_unlock(&j->mu);
        s->n_active++;
    }
}

static void fail_queued(serve_sched *s, const char *why) {
    while (s->qhead) {
        serve_job *j = s->qhead;
        s->qhead = j->next;
        s->qlen--;
        pthread_mutex_lock(&j->mu);
        j->state = JOB_DONE;
        j->finish = FINISH_ERROR;
        snprintf(j->error, sizeof j->error, "%s", why);
        pthread_cond_broadcast(&j->cv);
        pthread_mutex_unlock(&j->mu);
        job_release(j);
    }
    s->qtail = NULL;
}

static void *sched_main(void *arg) {
    serve_sched *s = arg;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        while (!s->quit && s->qlen == 0 && s->n_active == 0) pthread_cond_wait(&s->cv, &s->mu);
        bool quit = s->quit;
        if (quit) fail_queued(s, "the server is shutting down");
        else admit(s);
        int qlen = s->qlen, active = s->n_active;
        pthread_mutex_unlock(&s->mu);
        metrics_gauges(qlen, active, s->n_slots);
        if (quit && active == 0) break;

        /* leave: cancelled, out of time, shutting down */
        double now = serve_now_ms();
        for (int i = 0; i < s->n_slots; i++) {
            serve_job *j = s->slots[i].job;
            if (!j) continue;
            if (atomic_load(&j->cancel)) finish(s, i, FINISH_ERROR, "cancelled: the client went away");
            /* cut at shutdown: an error, so that a client can tell it from max_tokens */
            else if (quit) finish(s, i, FINISH_ERROR, "the server is shutting down");
            else if (now > j->deadline_ms)
                finish(s, i, s->slots[i].n_fed < j->n_prompt ? FINISH_ERROR : FINISH_LENGTH,
                       "the request ran out of time");
        }

        /* one forward pass: every decoding slot's next token, plus prompt chunks */
        int n = 0, budget = s->prefill_chunk;
        for (int i = 0; i < s->n_slots; i++) {
            slot *sl = &s->slots[i];
            if (!sl->job) continue;
            if (sl->n_fed == sl->job->n_prompt) {
                s->items[n] = (slm_batch_item){ i, &sl->last, 1 };
                s->item_slot[n++] = i;
            } else if (budget > 0) {
                int take = sl->job->n_prompt - sl->n_fed;
                if (take > budget) take = budget;
                budget -= take;
                s->items[n] = (slm_batch_item){ i, sl->job->prompt + sl->n_fed, take };
                s->item_slot[n++] = i;
            }
        }
        if (n == 0) continue;
        if (slm_batch_eval(s->batch, s->items, n) != SLM_OK) {
            char msg[160];
            snprintf(msg, sizeof msg, "evaluation failed: %s", slm_last_error());
            for (int k = 0; k < n; k++) finish(s, s->item_slot[k], FINISH_ERROR, msg);
            continue;
        }
        for (int k = 0; k < n; k++) {
            int i = s->item_slot[k];
            slot *sl = &s->slots[i];
            bool prompt_item = sl->n_fed < sl->job->n_prompt;
            if (prompt_item) {
                sl->n_fed += s->items[k].n;
                if (sl->n_fed < sl->job->n_prompt) continue;  /* more prompt to read */
            }
            slm_token tok = slm_sampler_sample(sl->job->sampler, slm_batch_logits(s->batch, i));
            take_token(s, i, tok);
        }
    }
    return NULL;
}

/* ---- public ------------------------------------------------------------------------ */

int sched_start(serve_sched **out, slm_model *model, const serve_sched_params *p) {
    *out = NULL;
    serve_sched *s = calloc(1, sizeof *s);
    if (!s) return -1;
    s->model = model;
    s->n_slots = p->n_slots;
    s->queue_cap = p->queue_cap;
    s->prefill_chunk = p->prefill_chunk > 0 ? p->prefill_chunk : 64;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    slm_batch_params bp = { .n_seq = p->n_slots, .n_ctx = p->n_ctx, .n_threads = p->n_threads };
    if (slm_batch_new(model, &bp, &s->batch) || (p->lora && slm_batch_set_lora(s->batch, p->lora, p->lora_scale))) {
        fprintf(stderr, "slm serve: %s\n", slm_last_error());
        sched_free(s);
        return -1;
    }
    s->n_ctx = slm_batch_n_ctx(s->batch);
    s->slots = calloc((size_t)s->n_slots, sizeof *s->slots);
    s->items = calloc((size_t)s->n_slots, sizeof *s->items);
    s->item_slot = calloc((size_t)s->n_slots, sizeof *s->item_slot);
    if (!s->slots || !s->items || !s->item_slot || pthread_create(&s->thread, NULL, sched_main, s)) {
        fprintf(stderr, "slm serve: cannot start the scheduler\n");
        sched_free(s);
        return -1;
    }
    s->started = true;
    *out = s;
    return 0;
}

int sched_submit(serve_sched *s, serve_job *j) {
    pthread_mutex_lock(&s->mu);
    int rc = 0;
    if (s->stopping) rc = -2;
    else if (s->qlen >= s->queue_cap) rc = -1;
    else {
        pthread_mutex_lock(&j->mu);
        j->refs++;
        j->state = JOB_QUEUED;
        pthread_mutex_unlock(&j->mu);
        j->next = NULL;
        if (s->qtail) s->qtail->next = j;
        else s->qhead = j;
        s->qtail = j;
        s->qlen++;
        pthread_cond_signal(&s->cv);
    }
    int qlen = s->qlen, active = s->n_active;
    pthread_mutex_unlock(&s->mu);
    metrics_gauges(qlen, active, s->n_slots);
    return rc;
}

void sched_stop(serve_sched *s, double grace_ms) {
    if (!s || !s->started) return;
    pthread_mutex_lock(&s->mu);
    s->stopping = true;
    pthread_mutex_unlock(&s->mu);
    double until = serve_now_ms() + grace_ms;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        bool idle = s->qlen == 0 && s->n_active == 0;
        pthread_mutex_unlock(&s->mu);
        if (idle || serve_now_ms() >= until) break;
        usleep(20000);
    }
    pthread_mutex_lock(&s->mu);
    s->quit = true;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    s->started = false;
}

void sched_free(serve_sched *s) {
    if (!s) return;
    if (s->started) sched_stop(s, 0);
    slm_batch_free(s->batch);
    free(s->slots);
    free(s->items);
    free(s->item_slot);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
}

int sched_n_ctx(const serve_sched *s) { return s->n_ctx; }

bool sched_stopping(const serve_sched *s) {
    pthread_mutex_lock((pthread_mutex_t *)&s->mu);
    bool st = s->stopping;
    pthread_mutex_unlock((pthread_mutex_t *)&s->mu);
    return st;
}
