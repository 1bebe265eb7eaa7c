/* slm serve: a request's head vetted before anything else is done with it
 * (and before its body is read): framing that two parsers could read in two
 * ways is refused, as are bytes that do not belong in a head, Host names
 * other than loopback ones on a loopback server (DNS rebinding), and
 * browser origins other than the server's own unless --allow-origin names
 * them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "serve_vet.h"

typedef struct {
    int n_cl, n_te;
    char cl[32];              /* the first Content-Length */
    bool cl_differ, nul;
} head_scan;

static enum MHD_Result scan_header(void *cls, enum MHD_ValueKind kind, const char *key, size_t key_size,
                                   const char *value, size_t value_size) {
    (void)kind;
    head_scan *h = cls;
    if (!key || strlen(key) != key_size || (value && strlen(value) != value_size)) h->nul = true;
    if (!key) return MHD_YES;
    if (!strcasecmp(key, "Content-Length")) {
        if (h->n_cl++ == 0) snprintf(h->cl, sizeof h->cl, "%s", value ? value : "");
        else if (!value || strcmp(h->cl, value)) h->cl_differ = true;
    } else if (!strcasecmp(key, "Transfer-Encoding")) {
        h->n_te++;
    }
    return MHD_YES;
}

/* host[:port] -> is host a loopback name or address? */
static bool loopback_host(const char *h) {
    char name[256];
    size_t n = strlen(h);
    if (n == 0 || n >= sizeof name) return false;
    if (h[0] == '[') {  /* [v6]:port */
        const char *e = strchr(h, ']');
        if (!e) return false;
        size_t l = (size_t)(e - h - 1);
        memcpy(name, h + 1, l);
        name[l] = '\0';
        return !strcmp(name, "::1") || !strcasecmp(name, "0:0:0:0:0:0:0:1");
    }
    const char *colon = strchr(h, ':');
    size_t l = colon ? (size_t)(colon - h) : n;
    memcpy(name, h, l);
    name[l] = '\0';
    if (colon) {  /* the port must be digits */
        if (!colon[1]) return false;
        for (const char *p = colon + 1; *p; p++)
            if (*p < '0' || *p > '9') return false;
    }
    if (!strcasecmp(name, "localhost") || !strcasecmp(name, "localhost.")) return true;
    unsigned a, b, c, d;
    char extra;
    return sscanf(name, "%u.%u.%u.%u%c", &a, &b, &c, &d, &extra) == 4 && a == 127 && b < 256 && c < 256 && d < 256;
}

/* Is origin (scheme://host[:port]) in the comma-separated list? */
static bool origin_listed(const char *list, const char *origin) {
    if (!list) return false;
    size_t on = strlen(origin);
    for (const char *p = list; *p;) {
        while (*p == ' ' || *p == ',') p++;
        const char *e = p;
        while (*e && *e != ',') e++;
        const char *t = e;
        while (t > p && t[-1] == ' ') t--;
        size_t l = (size_t)(t - p);
        if ((l == 1 && *p == '*') || (l == on && !strncasecmp(p, origin, l))) return true;
        p = e;
    }
    return false;
}

int vet_request(conn_guard *g, struct MHD_Connection *c, const serve_config *cfg, const char *version,
                char *msg, size_t cap, const char **code, const char **cors_origin) {
    *code = NULL;
    *cors_origin = NULL;
    if (guard_bad_uri(g, c)) {
        snprintf(msg, cap, "the request target holds a NUL or control byte");
        return 400;
    }
    head_scan h;
    memset(&h, 0, sizeof h);
    MHD_get_connection_values_n(c, MHD_HEADER_KIND, scan_header, &h);
    if (h.nul) {
        snprintf(msg, cap, "a header holds a NUL byte");
        return 400;
    }
    if (h.cl_differ) {
        snprintf(msg, cap, "several different Content-Length headers");
        return 400;
    }
    if (h.n_te) {
        snprintf(msg, cap, "request bodies must come with Content-Length (Transfer-Encoding is not accepted)");
        return 411;
    }
    if (h.n_cl) {
        char *end;
        unsigned long long n = strtoull(h.cl, &end, 10);
        if (end == h.cl || *end || h.cl[0] == '-') {
            snprintf(msg, cap, "Content-Length is not a number");
            return 400;
        }
        if (n > cfg->max_body) {
            snprintf(msg, cap, "the request body exceeds %zu bytes", cfg->max_body);
            *code = "request_too_large";
            return 413;
        }
    }
    const char *host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Host");
    if (!host && version && !strcmp(version, "HTTP/1.1")) {
        snprintf(msg, cap, "HTTP/1.1 requests need a Host header");
        return 400;
    }
    if (host && cfg->loopback && !loopback_host(host)) {
        snprintf(msg, cap,
                 "this server listens on a loopback address and answers only requests for localhost or a "
                 "loopback address (Host)");
        *code = "host_not_allowed";
        return 403;
    }
    const char *origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
    if (origin) {
        bool same = false;
        if (host && !strncasecmp(origin, "http://", 7) && !strcasecmp(origin + 7, host)) same = true;
        if (!same) {
            if (!origin_listed(cfg->allow_origin, origin)) {
                snprintf(msg, cap, "cross-origin requests are refused (start the server with --allow-origin to "
                                   "allow an origin)");
                *code = "origin_not_allowed";
                return 403;
            }
            *cors_origin = origin;
        }
    }
    return 0;
}
