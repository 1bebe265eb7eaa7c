/* slm serve: the listening socket and the guard on every connection
 * (serve_conn.c): connection limits answered with 503 at once, a deadline for
 * each request's head and body, eviction of the slowest sender at a limit. */
#ifndef SLM_SERVE_CONN_H
#define SLM_SERVE_CONN_H

#include <microhttpd.h>

#include "serve.h"

typedef struct conn_guard conn_guard;

/* Binds and listens on cfg->host:cfg->port; 0 or -1 (with a message). */
int guard_listen(conn_guard **out, const serve_config *cfg);
int guard_port(const conn_guard *g);
/* Entries in the guard's table: libmicrohttpd's connection limit must allow as many. */
unsigned guard_capacity(const conn_guard *g);
/* Starts the accept thread, which hands admitted connections to d. */
int guard_start(conn_guard *g, struct MHD_Daemon *d);
/* Stops accepting and closes the listening socket (open connections go on). */
void guard_quiesce(conn_guard *g);
void guard_free(conn_guard *g);

/* MHD_OPTION_NOTIFY_CONNECTION callback (cls: the guard). */
void guard_notify(void *cls, struct MHD_Connection *c, void **socket_context, enum MHD_ConnectionNotificationCode toe);
/* MHD_OPTION_UNESCAPE_CALLBACK (cls: the guard): %HH decoding that marks the
 * connection when the URI holds a NUL or another control byte. */
size_t guard_unescape(void *cls, struct MHD_Connection *c, char *s);
/* The request has fully arrived: its read deadline is off. */
void guard_request_arrived(conn_guard *g, struct MHD_Connection *c);
/* The response is done: the next request's deadline starts now. */
void guard_request_done(conn_guard *g, struct MHD_Connection *c);
/* The current request's URI held a NUL or control byte. */
bool guard_bad_uri(conn_guard *g, struct MHD_Connection *c);

#endif
