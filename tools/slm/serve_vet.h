/* slm serve: vetting a request's head before its body is read (serve_vet.c). */
#ifndef SLM_SERVE_VET_H
#define SLM_SERVE_VET_H

#include "serve_conn.h"

/* 0: go on; else the HTTP status to refuse with, msg holding why (and *code
 * an OpenAI-style error code or NULL). *cors_origin: the request's Origin when
 * it is a cross-origin request that --allow-origin allows (the answer must
 * carry Access-Control-Allow-Origin), else NULL. */
int vet_request(conn_guard *g, struct MHD_Connection *c, const serve_config *cfg, const char *version,
                char *msg, size_t cap, const char **code, const char **cors_origin);

#endif
