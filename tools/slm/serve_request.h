/* slm serve: an OpenAI-style request body, parsed and validated into a plain
 * C struct. Free of libmicrohttpd (the fuzzer links this file, with
 * serve_tools.c for `tools`, and cJSON); every limit a client can push
 * against is checked here. */
#ifndef SLM_SERVE_REQUEST_H
#define SLM_SERVE_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SERVE_MAX_STOP 4          /* OpenAI's limit on stop sequences */
#define SERVE_MAX_STOP_LEN 256    /* bytes per stop sequence */
#define SERVE_MAX_MESSAGES 1024

typedef enum { SERVE_CHAT, SERVE_COMPLETION } serve_kind;

typedef struct serve_message {
    char *role;                   /* "system", "user", "assistant" or "tool" */
    char *content;
    char *tool_json;              /* tool_calls / tool_call_id as a JSON object (serve_tools.h), or NULL */
} serve_message;

typedef struct serve_request {
    serve_kind kind;
    serve_message *messages;      /* chat */
    int n_messages;
    char *prompt;                 /* completion */
    int max_tokens;               /* 0: not given */
    float temperature, top_p, min_p, presence_penalty, frequency_penalty;
    int top_k;
    bool seed_set;
    uint64_t seed;
    char *stop[SERVE_MAX_STOP];
    int n_stop;
    bool stream, include_usage;
    bool ignore_eos;              /* non-standard (as llama.cpp's server): generate max_tokens */
    /* response_format: the JSON Schema the output must satisfy ("json_object":
     * {"type":"object"}; "json_schema": its "schema", unformatted); NULL: free text */
    char *response_schema;
    struct serve_tools *tools;    /* tools and tool_choice (serve_tools.h); NULL: none given */
} serve_request;

typedef struct serve_request_limits {
    int max_tokens;               /* largest max_tokens a client may ask for */
} serve_request_limits;

/* Parses body (len bytes, need not be NUL-terminated). On success returns 0
 * and fills *out (release with serve_request_free). On failure returns -1,
 * writes a one-line reason into err and, when one field is at fault, points
 * *param at its name (a static string), else NULL; *out is left empty. */
int serve_request_parse(const char *body, size_t len, serve_kind kind, const serve_request_limits *lim,
                        serve_request *out, char *err, size_t errcap, const char **param);
void serve_request_free(serve_request *r);

/* Copies at most max_bytes of src into dst (cap bytes, NUL-terminated) fit to
 * quote in a message: cut only between characters, invalid UTF-8 and control
 * bytes as '?', "..." when cut. Returns the length written. */
size_t serve_quote(char *dst, size_t cap, const char *src, size_t max_bytes);

#endif
