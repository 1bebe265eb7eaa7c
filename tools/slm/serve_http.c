/* slm serve: HTTP/1.1 with libmicrohttpd, one thread per connection (a
 * connection waiting for its tokens blocks only itself). Connections are
 * accepted and guarded by serve_conn.c (limits, read deadlines); each head is
 * vetted by serve_vet.c before its body is read. Bodies are bounded (413 from
 * Content-Length, before reading), headers by the connection's memory pool
 * (MHD answers 431), silent connections time out until a request is accepted;
 * from then on a request is never timed out for being quiet (a streamed one
 * gets SSE comments while it waits). A client that goes away (a reset, or a
 * failed write) is noticed within ~100 ms and its request is cancelled so its
 * slot goes to the next one; a client that only shut its sending side
 * (half-close) is still answered. */
#include <arpa/inet.h>
#include <cJSON.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "serve.h"
#include "serve_conn.h"
#include "serve_vet.h"

/* an SSE comment at least this often while a stream waits (5 s, or half the idle timeout) */
#define KEEPALIVE_MS(cfg) ((cfg)->conn_timeout_s < 10 ? (cfg)->conn_timeout_s * 500.0 : 5000.0)

struct serve_http {
    struct MHD_Daemon *d;
    serve_config *cfg;
    conn_guard *guard;
    int port;
    atomic_int n_gen;         /* generation requests being answered */
};

typedef enum { R_NONE, R_PAGE, R_HEALTH, R_METRICS, R_MODELS, R_CHAT, R_COMPLETIONS } route;

typedef struct conn {
    serve_config *cfg;
    serve_http *h;
    struct MHD_Connection *c;
    char *body;
    size_t len, cap;
    bool too_large;
    const char *endpoint;
    int status;
    double t_start;
    /* streaming */
    gen_ctx g;
    bool streaming, gen_ok;
    size_t sent;              /* bytes of job text already sent */
    int phase;                /* 0: role chunk next, 1: text, 2: after the final events */
    char *pending;            /* an event not yet fully handed to MHD */
    size_t pend_len, pend_off;
    bool probed;              /* a half-closed client was written to once, to tell whether it is gone */
    bool http11, counted;
    const char *cors_origin;  /* an allowed cross-origin request's Origin */
} conn;

/* ---- small pieces -------------------------------------------------------------- */

typedef enum { PEER_OK, PEER_HALF, PEER_GONE } peer_state;

/* A reset (or a failed write) means gone. An end of input alone may be a
 * client that shut only its sending side and still reads (half-close): the
 * caller writes something harmless once, which a closed peer answers with a
 * reset that the next look sees. */
static peer_state peer(struct MHD_Connection *c) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci) return PEER_GONE;
    struct pollfd p = { ci->connect_fd, POLLRDHUP, 0 };
    if (poll(&p, 1, 0) <= 0) return PEER_OK;
    if (p.revents & (POLLHUP | POLLERR | POLLNVAL)) return PEER_GONE;
    return p.revents & POLLRDHUP ? PEER_HALF : PEER_OK;
}

static int conn_fd(struct MHD_Connection *c) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    return ci ? ci->connect_fd : -1;
}

/* No idle timeout while a request is queued or generating (the client is
 * waiting for us, not the other way round); the usual one once it is done. */
static void hold_connection(conn *k, bool hold) {
    MHD_set_connection_option(k->c, MHD_CONNECTION_OPTION_TIMEOUT, hold ? 0u : (unsigned)k->cfg->conn_timeout_s);
}

static enum MHD_Result reply(conn *k, int status, const char *type, char *body_malloced) {
    if (!body_malloced) {
        status = 500;
        type = "application/json";
        body_malloced = strdup("{\"error\":{\"message\":\"out of memory\",\"type\":\"server_error\",\"param\":null,\"code\":null}}");
        if (!body_malloced) return MHD_NO;
    }
    k->status = status;
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body_malloced), body_malloced, MHD_RESPMEM_MUST_FREE);
    if (!r) { free(body_malloced); return MHD_NO; }
    MHD_add_response_header(r, "Content-Type", type);
    MHD_add_response_header(r, "Cache-Control", "no-store");
    if (status == 401) MHD_add_response_header(r, "WWW-Authenticate", "Bearer");
    if (status == 503) MHD_add_response_header(r, "Retry-After", "1");
    if (k->cors_origin) {
        MHD_add_response_header(r, "Access-Control-Allow-Origin", k->cors_origin);
        MHD_add_response_header(r, "Vary", "Origin");
    }
    enum MHD_Result rc = MHD_queue_response(k->c, (unsigned)status, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result reply_error(conn *k, int status, const char *msg, const char *code) {
    const char *type = status == 401   ? "authentication_error"
                       : status == 403 ? "permission_error"
                       : status >= 500 ? "server_error"
                                       : "invalid_request_error";
    return reply(k, status, "application/json", api_error_json(msg, type, NULL, code));
}

bool serve_key_equal(const char *a, size_t alen, const char *b, size_t blen) {
    /* walks b (the secret) whatever a is: the time tells nothing about a */
    volatile unsigned char diff = (unsigned char)(alen != blen);
    for (size_t i = 0; i < blen; i++) diff |= (unsigned char)(b[i] ^ (i < alen ? a[i] : 0));
    return diff == 0;
}

static bool authorized(conn *k) {
    const char *key = k->cfg->api_key;
    if (!key) return true;
    const char *h = MHD_lookup_connection_value(k->c, MHD_HEADER_KIND, "Authorization");
    /* the scheme is case-insensitive (RFC 7235), then one or more spaces */
    if (!h || strncasecmp(h, "Bearer", 6) != 0 || (h[6] != ' ' && h[6] != '\t')) return false;
    h += 6;
    while (*h == ' ' || *h == '\t') h++;
    size_t n = strlen(h);
    while (n && (h[n - 1] == ' ' || h[n - 1] == '\t')) n--;
    return serve_key_equal(h, n, key, strlen(key));
}

/* ---- streaming ------------------------------------------------------------------- */

static void set_pending(conn *k, char *ev) {
    free(k->pending);
    k->pending = ev;
    k->pend_len = ev ? strlen(ev) : 0;
    k->pend_off = 0;
}

/* Builds the next event(s) from the job; blocks until there is something.
 * false: the client went away or memory ran out (end the stream). */
static bool next_events(conn *k) {
    serve_job *j = k->g.job;
    const serve_config *cfg = k->cfg;
    if (k->phase == 0) {
        k->phase = 1;
        if (k->g.kind == SERVE_CHAT) {
            set_pending(k, api_chunk_event(&k->g, cfg, NULL, 0, NULL, true, false));
            return k->pending != NULL;
        }
    }
    pthread_mutex_lock(&j->mu);
    double t_wait = serve_now_ms();
    while (j->released == k->sent && j->state != JOB_DONE) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 100 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) { ts.tv_sec++; ts.tv_nsec -= 1000000000L; }
        pthread_cond_timedwait(&j->cv, &j->mu, &ts);
        if (j->released > k->sent || j->state == JOB_DONE) break;
        peer_state ps = peer(k->c);
        if (ps == PEER_GONE) {
            pthread_mutex_unlock(&j->mu);
            atomic_store(&j->cancel, true);
            return false;
        }
        /* waiting (for a slot, or a long prompt): an SSE comment keeps the
         * stream visibly alive, and tells a closed client from a half-closed one */
        if ((ps == PEER_HALF && !k->probed) || serve_now_ms() - t_wait >= KEEPALIVE_MS(cfg)) {
            if (ps == PEER_HALF) k->probed = true;
            pthread_mutex_unlock(&j->mu);
            set_pending(k, strdup(": keep-alive\n\n"));
            return k->pending != NULL;
        }
    }
    char *ev = NULL;
    if (k->g.tools && j->released > k->sent) {  /* content and tool-call deltas (may be "": wait for more) */
        ev = api_tool_events(&k->g, cfg, j->text, j->released, false);
        k->sent = j->released;
        pthread_mutex_unlock(&j->mu);
        set_pending(k, ev);
        return ev != NULL;
    }
    if (j->released > k->sent) {
        ev = api_chunk_event(&k->g, cfg, j->text + k->sent, j->released - k->sent, NULL, false, false);
        k->sent = j->released;
        pthread_mutex_unlock(&j->mu);
        set_pending(k, ev);
        return ev != NULL;
    }
    /* done: closing chunk (or an error event), usage, [DONE]; the connection
     * gets its idle timeout back for the rest */
    hold_connection(k, false);
    char *a, *b = NULL;
    if (j->finish == FINISH_ERROR) {
        char *e = api_error_json(j->error, "server_error", NULL, NULL);
        a = NULL;
        if (e) {
            size_t n = strlen(e) + 16;
            a = malloc(n);
            if (a) snprintf(a, n, "data: %s\n\n", e);
            free(e);
        }
    } else if (k->g.tools) {  /* the rest of the calls, the closing chunk, usage and [DONE] */
        char *all = api_tool_events(&k->g, cfg, j->text, j->len, true);
        pthread_mutex_unlock(&j->mu);
        k->phase = 2;
        set_pending(k, all);
        return all != NULL;
    } else {
        a = api_chunk_event(&k->g, cfg, NULL, 0, api_finish_name(j->finish), false, false);
        if (k->g.include_usage) b = api_chunk_event(&k->g, cfg, NULL, 0, NULL, false, true);
    }
    pthread_mutex_unlock(&j->mu);
    size_t na = a ? strlen(a) : 0, nb = b ? strlen(b) : 0;
    char *all = a ? malloc(na + nb + 16) : NULL;
    if (all) {
        memcpy(all, a, na);
        if (b) memcpy(all + na, b, nb);
        memcpy(all + na + nb, "data: [DONE]\n\n", 15);
    }
    free(a);
    free(b);
    k->phase = 2;
    set_pending(k, all);
    return all != NULL;
}

static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max) {
    conn *k = cls;
    for (;;) {
        if (k->pending && k->pend_off < k->pend_len) {
            size_t n = k->pend_len - k->pend_off;
            if (n > max) n = max;
            memcpy(buf, k->pending + k->pend_off, n);
            k->pend_off += n;
            return (ssize_t)n;
        }
        if (k->phase == 2) return MHD_CONTENT_READER_END_OF_STREAM;
        if (!next_events(k)) return MHD_CONTENT_READER_END_WITH_ERROR;
    }
}

/* ---- generation requests ------------------------------------------------------------- */

static enum MHD_Result generate(conn *k, serve_kind kind) {
    if (k->too_large) {
        char msg[96];
        snprintf(msg, sizeof msg, "the request body exceeds %zu bytes", k->cfg->max_body);
        return reply_error(k, 413, msg, "request_too_large");
    }
    char *err = NULL;
    int st = api_start(k->cfg, kind, k->body, k->len, &k->g, &err);
    if (st) return reply(k, st, "application/json", err);
    k->gen_ok = true;
    atomic_fetch_add(&k->h->n_gen, 1);
    k->counted = true;
    hold_connection(k, true);
    serve_job *j = k->g.job;
    if (k->g.stream) {
        k->streaming = true;
        k->status = 200;
        struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_reader, k, NULL);
        if (!r) return MHD_NO;
        MHD_add_response_header(r, "Content-Type", "text/event-stream");
        MHD_add_response_header(r, "Cache-Control", "no-cache");
        if (k->cors_origin) {
            MHD_add_response_header(r, "Access-Control-Allow-Origin", k->cors_origin);
            MHD_add_response_header(r, "Vary", "Origin");
        }
        enum MHD_Result rc = MHD_queue_response(k->c, MHD_HTTP_OK, r);
        MHD_destroy_response(r);
        return rc;
    }
    /* whole answer: wait, watching for the client leaving */
    pthread_mutex_lock(&j->mu);
    while (j->state != JOB_DONE) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 100 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) { ts.tv_sec++; ts.tv_nsec -= 1000000000L; }
        pthread_cond_timedwait(&j->cv, &j->mu, &ts);
        if (j->state == JOB_DONE) break;
        peer_state ps = peer(k->c);
        if (ps == PEER_HALF && !k->probed && k->http11) {
            /* an interim 100 response (every HTTP/1.1 client must skip it):
             * a closed client answers it with a reset, a half-closed one reads on */
            k->probed = true;
            int fd = conn_fd(k->c);
            static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
            if (fd < 0 || send(fd, cont, sizeof cont - 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) ps = PEER_GONE;
        }
        if (ps == PEER_GONE) {
            pthread_mutex_unlock(&j->mu);
            atomic_store(&j->cancel, true);
            k->status = 499;  /* nginx's "client closed request", for the metrics */
            return MHD_NO;
        }
    }
    pthread_mutex_unlock(&j->mu);
    hold_connection(k, false);
    if (j->finish == FINISH_ERROR) return reply_error(k, 503, j->error, NULL);
    return reply(k, 200, "application/json", api_final_json(&k->g, k->cfg));
}

/* ---- routing ------------------------------------------------------------------------ */

static route find_route(const char *url) {
    static const struct { const char *path; route r; } table[] = {
        { "/", R_PAGE }, { "/index.html", R_PAGE }, { "/health", R_HEALTH }, { "/metrics", R_METRICS },
        { "/v1/models", R_MODELS }, { "/v1/chat/completions", R_CHAT }, { "/v1/completions", R_COMPLETIONS },
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (!strcmp(url, table[i].path)) return table[i].r;
    return R_NONE;
}

static enum MHD_Result dispatch(conn *k, const char *url, const char *method) {
    route r = find_route(url);
    bool post = !strcmp(method, "POST"), get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
    k->endpoint = r == R_NONE ? "other" : url;
    if (r == R_NONE) return reply_error(k, 404, "no such endpoint", "not_found");
    if (!strcmp(method, "OPTIONS")) {  /* a CORS preflight that vet_request let through */
        k->status = 204;
        struct MHD_Response *resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
        if (!resp) return MHD_NO;
        MHD_add_response_header(resp, "Allow", "GET, HEAD, POST, OPTIONS");
        if (k->cors_origin) {
            MHD_add_response_header(resp, "Access-Control-Allow-Origin", k->cors_origin);
            MHD_add_response_header(resp, "Access-Control-Allow-Methods", "GET, POST, OPTIONS");
            MHD_add_response_header(resp, "Access-Control-Allow-Headers", "Authorization, Content-Type");
            MHD_add_response_header(resp, "Access-Control-Max-Age", "600");
            MHD_add_response_header(resp, "Vary", "Origin");
        }
        enum MHD_Result rc = MHD_queue_response(k->c, 204, resp);
        MHD_destroy_response(resp);
        return rc;
    }
    bool wants_post = r == R_CHAT || r == R_COMPLETIONS;
    if ((wants_post && !post) || (!wants_post && !get)) return reply_error(k, 405, "method not allowed", NULL);
    if (r != R_PAGE && r != R_HEALTH && !authorized(k))
        return reply_error(k, 401, "missing or wrong API key (Authorization: Bearer ...)", "invalid_api_key");
    switch (r) {
    case R_PAGE: return reply(k, 200, "text/html; charset=utf-8", strdup(serve_page_html));
    case R_HEALTH:
        if (sched_stopping(k->cfg->sched)) return reply_error(k, 503, "shutting down", "shutting_down");
        return reply(k, 200, "application/json", strdup("{\"status\":\"ok\"}"));
    case R_METRICS: return reply(k, 200, "text/plain; version=0.0.4; charset=utf-8", metrics_render());
    case R_MODELS: {
        cJSON *root = cJSON_CreateObject();
        cJSON_AddStringToObject(root, "object", "list");
        cJSON *m = cJSON_CreateObject();
        cJSON_AddItemToArray(cJSON_AddArrayToObject(root, "data"), m);
        cJSON_AddStringToObject(m, "id", k->cfg->model_name);
        cJSON_AddStringToObject(m, "object", "model");
        cJSON_AddNumberToObject(m, "created", 0);
        cJSON_AddStringToObject(m, "owned_by", "slm");
        char *s = cJSON_PrintUnformatted(root);
        cJSON_Delete(root);
        return reply(k, 200, "application/json", s);
    }
    case R_CHAT: return generate(k, SERVE_CHAT);
    case R_COMPLETIONS: return generate(k, SERVE_COMPLETION);
    default: return reply_error(k, 404, "no such endpoint", "not_found");
    }
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_size, void **con_cls) {
    serve_http *h = cls;
    serve_config *cfg = h->cfg;
    conn *k = *con_cls;
    if (!k) {
        k = calloc(1, sizeof *k);
        if (!k) return MHD_NO;
        k->cfg = cfg;
        k->h = h;
        k->c = c;
        k->t_start = serve_now_ms();
        k->endpoint = "other";
        k->http11 = version && !strcmp(version, "HTTP/1.1");
        *con_cls = k;
        /* the head is complete: refuse what is wrong with it before reading any body */
        char msg[192];
        const char *code = NULL;
        int st = vet_request(h->guard, c, cfg, version, msg, sizeof msg, &code, &k->cors_origin);
        if (st) {
            if (find_route(url) != R_NONE) k->endpoint = url;
            return reply_error(k, st, msg, code);
        }
        return MHD_YES;
    }
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (k->status) return MHD_YES;  /* already answered from its head */
        if (k->too_large || k->len + n > cfg->max_body) {
            k->too_large = true;  /* read and dropped; answered with 413 at the end */
            return MHD_YES;
        }
        if (k->len + n + 1 > k->cap) {
            size_t nc = k->cap ? k->cap : 4096;
            while (k->len + n + 1 > nc) nc *= 2;
            char *nb = realloc(k->body, nc);
            if (!nb) return MHD_NO;
            k->body = nb;
            k->cap = nc;
        }
        memcpy(k->body + k->len, upload_data, n);
        k->len += n;
        k->body[k->len] = '\0';
        return MHD_YES;
    }
    if (k->status) return MHD_YES;  /* refused from its head; the body is being skipped */
    guard_request_arrived(h->guard, c);
    if (k->too_large && strcmp(method, "POST") == 0 && find_route(url) != R_NONE) {
        k->endpoint = url;
        char msg[96];
        snprintf(msg, sizeof msg, "the request body exceeds %zu bytes", cfg->max_body);
        return reply_error(k, 413, msg, "request_too_large");
    }
    return dispatch(k, url, method);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
    serve_http *h = cls;
    conn *k = *con_cls;
    guard_request_done(h->guard, c);
    if (!k) return;
    *con_cls = NULL;
    if (k->counted) atomic_fetch_sub(&h->n_gen, 1);
    if (k->gen_ok && k->g.job) {
        serve_job *j = k->g.job;
        pthread_mutex_lock(&j->mu);
        bool done = j->state == JOB_DONE;
        pthread_mutex_unlock(&j->mu);
        if (!done) {
            atomic_store(&j->cancel, true);  /* the client left mid-stream */
            if (k->status == 200) k->status = 499;
        }
        if (k->status == 200 && toe == MHD_REQUEST_TERMINATED_COMPLETED_OK)
            metrics_latency((serve_now_ms() - k->t_start) / 1e3);
        job_release(j);
    }
    if (k->status) metrics_request(k->endpoint, k->status);
    free(k->body);
    free(k->pending);
    free(k);
}

/* ---- the daemon ------------------------------------------------------------------------ */

static bool loopback_address(const char *host) {
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, host, &a4) == 1) return (ntohl(a4.s_addr) >> 24) == 127;
    return inet_pton(AF_INET6, host, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
}

int http_start(serve_http **out, serve_config *cfg) {
    *out = NULL;
    serve_http *h = calloc(1, sizeof *h);
    if (!h) return -1;
    h->cfg = cfg;
    atomic_init(&h->n_gen, 0);
    cfg->loopback = loopback_address(cfg->host);
    if (guard_listen(&h->guard, cfg)) {
        free(h);
        return -1;
    }
    /* connections come from the guard's accept thread (MHD_add_connection) */
    /* poll(), not select(): descriptors past FD_SETSIZE must work too */
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC |
                     MHD_USE_NO_LISTEN_SOCKET | MHD_USE_POLL;
    if (strchr(cfg->host, ':')) flags |= MHD_USE_IPv6;
    h->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, h,
                            MHD_OPTION_CONNECTION_LIMIT, guard_capacity(h->guard),
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->conn_timeout_s,
                            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024),
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
                            MHD_OPTION_NOTIFY_CONNECTION, guard_notify, h->guard,
                            MHD_OPTION_UNESCAPE_CALLBACK, guard_unescape, h->guard,
                            MHD_OPTION_STRICT_FOR_CLIENT, (int)1,
                            MHD_OPTION_END);
    if (!h->d || guard_start(h->guard, h->d)) {
        fprintf(stderr, "slm serve: cannot start the HTTP daemon\n");
        if (h->d) MHD_stop_daemon(h->d);
        guard_free(h->guard);
        free(h);
        return -1;
    }
    h->port = guard_port(h->guard);
    *out = h;
    return 0;
}

int http_port(const serve_http *h) { return h->port; }

void http_quiesce(serve_http *h) {
    if (h) guard_quiesce(h->guard);
}

void http_drain(serve_http *h, double ms) {
    if (!h) return;
    double until = serve_now_ms() + ms;
    while (atomic_load(&h->n_gen) > 0 && serve_now_ms() < until) usleep(10000);
}

void http_stop(serve_http *h) {
    if (!h) return;
    guard_quiesce(h->guard);
    if (h->d) MHD_stop_daemon(h->d);
    guard_free(h->guard);
    free(h);
}
