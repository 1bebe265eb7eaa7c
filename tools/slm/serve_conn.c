/* slm serve: the listening socket and a guard on every connection.
 *
 * The server accepts connections itself and hands them to libmicrohttpd
 * (MHD_add_connection), so that it decides who gets in:
 *  - a connection over a limit (--max-connections in all, --max-per-address
 *    from one client address) is answered 503 with Retry-After at once and
 *    closed, never left waiting in the kernel's backlog;
 *  - when a limit is reached, the connection that has been sending its
 *    request the longest (over EVICT_AGE_MS) is closed to make room, so
 *    clients that trickle bytes cannot keep a prompt one out;
 *  - a request's head and body must have arrived within --read-timeout of the
 *    connection's start (or of the end of the previous response on it),
 *    however many bytes trickle in meanwhile (slowloris); then the connection
 *    is answered 408 and closed.
 * Once a request has arrived the guard leaves it alone: a request waiting for
 * a slot or generating is not timed out here. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "serve_conn.h"

#define EVICT_AGE_MS 1000.0   /* a connection still sending its request after this may be evicted */
#define TABLE_SLACK 64        /* entries for evicted connections that are still closing */

typedef struct gconn {
    bool used, evicted, started;
    bool reading;             /* its request has not fully arrived */
    bool bad_uri;             /* the URI held an escaped NUL or control byte */
    int fd, ip, n_req;
    double t_start;           /* when the current request's reading began (ms) */
} gconn;

typedef struct ipcount {
    unsigned char addr[16];
    int fam, n;               /* n: live connections from addr (0: the entry is free) */
} ipcount;

struct conn_guard {
    const serve_config *cfg;
    struct MHD_Daemon *d;
    int lfd, port, wake[2];
    pthread_t th;
    bool running;
    pthread_mutex_t mu;
    gconn *c;
    ipcount *ips;
    int cap, n_live;
};

static void refusal_metric(const char *why) { metrics_dropped(why); }

/* ---- the listening socket ------------------------------------------------------ */

int guard_listen(conn_guard **out, const serve_config *cfg) {
    *out = NULL;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t sl;
    struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, cfg->host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)cfg->port);
        sl = sizeof *a4;
    } else if (inet_pton(AF_INET6, cfg->host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)cfg->port);
        sl = sizeof *a6;
    } else {
        fprintf(stderr, "slm serve: --host '%s' is not an IPv4 or IPv6 address\n", cfg->host);
        return -1;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) { fprintf(stderr, "slm serve: socket: %s\n", strerror(errno)); return -1; }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (ss.ss_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&ss, sl) || listen(fd, 512)) {
        fprintf(stderr, "slm serve: cannot listen on %s:%d: %s\n", cfg->host, cfg->port, strerror(errno));
        close(fd);
        return -1;
    }
    conn_guard *g = calloc(1, sizeof *g);
    int cap = cfg->max_connections + TABLE_SLACK;
    if (g) {
        g->c = calloc((size_t)cap, sizeof *g->c);
        g->ips = calloc((size_t)cap, sizeof *g->ips);
    }
    if (!g || !g->c || !g->ips || pipe(g->wake)) {
        fprintf(stderr, "slm serve: out of memory\n");
        if (g) { free(g->c); free(g->ips); }
        free(g);
        close(fd);
        return -1;
    }
    fcntl(g->wake[0], F_SETFL, O_NONBLOCK);
    g->cfg = cfg;
    g->cap = cap;
    g->lfd = fd;
    pthread_mutex_init(&g->mu, NULL);
    struct sockaddr_storage got;
    socklen_t gl = sizeof got;
    g->port = cfg->port;
    if (!getsockname(fd, (struct sockaddr *)&got, &gl))
        g->port = ntohs(got.ss_family == AF_INET ? ((struct sockaddr_in *)&got)->sin_port
                                                  : ((struct sockaddr_in6 *)&got)->sin6_port);
    *out = g;
    return 0;
}

int guard_port(const conn_guard *g) { return g->port; }
unsigned guard_capacity(const conn_guard *g) { return (unsigned)g->cap; }

/* ---- admission ------------------------------------------------------------------- */

/* 503 on a connection that never reaches libmicrohttpd. Reads what the client
 * already sent first, so that closing does not reset the connection before
 * the answer is read. */
static void refuse(int fd, const char *why) {
    char buf[4096];
    for (int i = 0; i < 4 && recv(fd, buf, sizeof buf, MSG_DONTWAIT) > 0; i++) {}
    char body[256], msg[512];
    int bl = snprintf(body, sizeof body,
                      "{\"error\":{\"message\":\"too many connections %s; retry later\",\"type\":\"server_error\","
                      "\"param\":null,\"code\":\"too_many_connections\"}}",
                      why);
    int ml = snprintf(msg, sizeof msg,
                      "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\n"
                      "Cache-Control: no-store\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s",
                      bl, body);
    if (send(fd, msg, (size_t)ml, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {}
    shutdown(fd, SHUT_WR);
    close(fd);
}

/* Closes a connection behind libmicrohttpd's back: its thread sees the socket
 * shut and ends the connection (then NOTIFY_CLOSED frees the entry). Caller
 * holds g->mu, so the entry's socket is still open. */
static void evict(conn_guard *g, gconn *e, const char *why) {
    static const char r408[] = "HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json\r\n"
                               "Connection: close\r\nContent-Length: 108\r\n\r\n"
                               "{\"error\":{\"message\":\"the request did not arrive in time\",\"type\":"
                               "\"invalid_request_error\",\"param\":null,\"code\":null}}";
    /* a kept-alive connection gets no 408: its client may be sending a new request and read it as the answer */
    if (e->n_req == 0 && send(e->fd, r408, sizeof r408 - 1, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {}
    shutdown(e->fd, SHUT_RDWR);
    e->evicted = true;
    g->n_live--;
    g->ips[e->ip].n--;
    refusal_metric(why);
}

static int ip_slot(conn_guard *g, const struct sockaddr_storage *ss) {
    unsigned char key[16] = { 0 };
    int fam = ss->ss_family;
    if (fam == AF_INET) memcpy(key, &((const struct sockaddr_in *)ss)->sin_addr, 4);
    else memcpy(key, &((const struct sockaddr_in6 *)ss)->sin6_addr, 16);
    int free_at = -1;
    for (int i = 0; i < g->cap; i++) {
        if (g->ips[i].n == 0) { if (free_at < 0) free_at = i; continue; }
        if (g->ips[i].fam == fam && !memcmp(g->ips[i].addr, key, 16)) return i;
    }
    if (free_at >= 0) {
        g->ips[free_at].fam = fam;
        memcpy(g->ips[free_at].addr, key, 16);
    }
    return free_at;
}

/* The connection still reading its request for the longest (over
 * EVICT_AGE_MS), from address ip (-1: any), or NULL. */
static gconn *oldest_reader(conn_guard *g, int ip, double now) {
    gconn *best = NULL;
    for (int i = 0; i < g->cap; i++) {
        gconn *e = &g->c[i];
        if (!e->used || e->evicted || !e->reading || (ip >= 0 && e->ip != ip)) continue;
        if (now - e->t_start > EVICT_AGE_MS && (!best || e->t_start < best->t_start)) best = e;
    }
    return best;
}

static void admit(conn_guard *g, int fd, const struct sockaddr_storage *ss, socklen_t sl) {
    double now = serve_now_ms();
    pthread_mutex_lock(&g->mu);
    int ip = -1;
    const char *over = NULL;
    for (int tries = 0; tries < 3; tries++) {
        if (ip < 0) ip = ip_slot(g, ss);
        over = ip < 0 || g->n_live >= g->cfg->max_connections ? "in all"
               : g->ips[ip].n >= g->cfg->max_per_address     ? "from your address"
                                                             : NULL;
        if (!over) break;
        gconn *v = oldest_reader(g, over[0] == 'f' ? ip : -1, now);
        if (!v) break;
        evict(g, v, "evicted");
    }
    gconn *e = NULL;
    for (int i = 0; !over && i < g->cap && !e; i++)
        if (!g->c[i].used) e = &g->c[i];
    if (!over && !e) over = "in all";
    if (over) {
        pthread_mutex_unlock(&g->mu);
        refusal_metric(over[0] == 'f' ? "per_address" : "max_connections");
        refuse(fd, over);
        return;
    }
    *e = (gconn){ .used = true, .reading = true, .fd = fd, .ip = ip, .t_start = now };
    g->ips[ip].n++;
    g->n_live++;
    pthread_mutex_unlock(&g->mu);
    if (MHD_add_connection(g->d, fd, (const struct sockaddr *)ss, sl) != MHD_YES) {
        /* libmicrohttpd closed the socket; drop the entry unless its notifications already did */
        pthread_mutex_lock(&g->mu);
        if (e->used && e->fd == fd && !e->started) {
            if (!e->evicted) { g->n_live--; g->ips[e->ip].n--; }
            e->used = false;
        }
        pthread_mutex_unlock(&g->mu);
    }
}

/* Closes connections whose request has not arrived within --read-timeout. */
static void reap(conn_guard *g) {
    double now = serve_now_ms(), limit = g->cfg->read_timeout_s * 1e3;
    pthread_mutex_lock(&g->mu);
    for (int i = 0; i < g->cap; i++) {
        gconn *e = &g->c[i];
        if (e->used && e->started && !e->evicted && e->reading && now - e->t_start > limit)
            evict(g, e, "read_timeout");
    }
    pthread_mutex_unlock(&g->mu);
}

static void *accept_main(void *arg) {
    conn_guard *g = arg;
    for (;;) {
        struct pollfd p[2] = { { g->lfd, POLLIN, 0 }, { g->wake[0], POLLIN, 0 } };
        poll(p, 2, 200);
        if (p[1].revents) break;
        reap(g);
        if (!(p[0].revents & POLLIN)) continue;
        for (int k = 0; k < 256; k++) {
            struct sockaddr_storage ss;
            socklen_t sl = sizeof ss;
            int fd = accept4(g->lfd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC);
            if (fd < 0) {
                if (errno == EMFILE || errno == ENFILE) usleep(50000);  /* out of descriptors: let some close */
                break;
            }
            admit(g, fd, &ss, sl);
        }
    }
    return NULL;
}

int guard_start(conn_guard *g, struct MHD_Daemon *d) {
    g->d = d;
    if (pthread_create(&g->th, NULL, accept_main, g)) {
        fprintf(stderr, "slm serve: cannot start the accept thread\n");
        return -1;
    }
    g->running = true;
    return 0;
}

void guard_quiesce(conn_guard *g) {
    if (!g || !g->running) return;
    if (write(g->wake[1], "x", 1) < 0) {}
    pthread_join(g->th, NULL);
    g->running = false;
    if (g->lfd >= 0) close(g->lfd);
    g->lfd = -1;
}

void guard_free(conn_guard *g) {
    if (!g) return;
    guard_quiesce(g);
    if (g->lfd >= 0) close(g->lfd);
    close(g->wake[0]);
    close(g->wake[1]);
    pthread_mutex_destroy(&g->mu);
    free(g->c);
    free(g->ips);
    free(g);
}

/* ---- libmicrohttpd's side ------------------------------------------------------------- */

void guard_notify(void *cls, struct MHD_Connection *c, void **socket_context, enum MHD_ConnectionNotificationCode toe) {
    conn_guard *g = cls;
    pthread_mutex_lock(&g->mu);
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        *socket_context = NULL;
        for (int i = 0; ci && i < g->cap; i++)
            if (g->c[i].used && !g->c[i].started && g->c[i].fd == ci->connect_fd) {
                g->c[i].started = true;
                *socket_context = &g->c[i];
                break;
            }
    } else if (*socket_context) {
        gconn *e = *socket_context;
        if (!e->evicted) { g->n_live--; g->ips[e->ip].n--; }
        e->used = false;
        *socket_context = NULL;
    }
    pthread_mutex_unlock(&g->mu);
}

static gconn *entry_of(struct MHD_Connection *c) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

void guard_request_arrived(conn_guard *g, struct MHD_Connection *c) {
    gconn *e = entry_of(c);
    if (!e) return;
    pthread_mutex_lock(&g->mu);
    e->reading = false;
    pthread_mutex_unlock(&g->mu);
}

void guard_request_done(conn_guard *g, struct MHD_Connection *c) {
    gconn *e = entry_of(c);
    if (!e) return;
    pthread_mutex_lock(&g->mu);
    e->reading = true;
    e->bad_uri = false;
    e->n_req++;
    e->t_start = serve_now_ms();
    pthread_mutex_unlock(&g->mu);
}

bool guard_bad_uri(conn_guard *g, struct MHD_Connection *c) {
    gconn *e = entry_of(c);
    if (!e) return false;
    pthread_mutex_lock(&g->mu);
    bool bad = e->bad_uri;
    pthread_mutex_unlock(&g->mu);
    return bad;
}

static int hexval(char ch) {
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

size_t guard_unescape(void *cls, struct MHD_Connection *c, char *s) {
    conn_guard *g = cls;
    bool bad = false;
    char *w = s;
    for (const char *r = s; *r;) {
        int hi, lo;
        if (r[0] == '%' && (hi = hexval(r[1])) >= 0 && (lo = hexval(r[2])) >= 0) {
            unsigned char b = (unsigned char)(hi * 16 + lo);
            if (b < 0x20 || b == 0x7f) bad = true;
            *w++ = (char)b;
            r += 3;
        } else {
            if ((unsigned char)*r < 0x20 || *r == 0x7f) bad = true;
            *w++ = *r++;
        }
    }
    *w = '\0';
    if (bad) {
        gconn *e = entry_of(c);
        if (e) {
            pthread_mutex_lock(&g->mu);
            e->bad_uri = true;
            pthread_mutex_unlock(&g->mu);
        }
    }
    return (size_t)(w - s);
}
