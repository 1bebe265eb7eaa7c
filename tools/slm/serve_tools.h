/* slm serve: OpenAI tool calling (serve_tools.c). The request's `tools` and
 * `tool_choice`, the history's tool calls and tool results, the prompt (the
 * model's own template when it knows tools, else a generic description in
 * the system prompt), the grammar that holds the model to the call format,
 * and the parser that turns the generated text back into tool_calls.
 *
 * The call format, for every model: one block per call,
 *   <tool_call>\n{"name": "NAME", "arguments": {...}}\n</tool_call>
 * blocks separated by "\n" (Qwen2.5's convention, which its template
 * teaches; other templates are told it in the system prompt). With
 * tool_choice auto, an answer that is one such object, bare or in a ```json
 * fence, is read as a call too (small models often drop the tags). */
#ifndef SLM_SERVE_TOOLS_H
#define SLM_SERVE_TOOLS_H

#include <stdbool.h>
#include <stddef.h>

#include "slm.h"

#define SERVE_MAX_TOOLS 128
#define SERVE_MAX_CALLS 16          /* tool calls in one answer, at most */
#define TOOL_OPEN "<tool_call>"
#define TOOL_CLOSE "</tool_call>"

typedef enum { TOOL_CHOICE_AUTO, TOOL_CHOICE_NONE, TOOL_CHOICE_REQUIRED, TOOL_CHOICE_NAMED } tool_choice_kind;

typedef struct serve_tool {
    char *name;
    char *gbnf;                     /* the parameters' schema as GBNF (converter's rule names) */
} serve_tool;

typedef struct serve_tools {
    serve_tool *v;
    int n;
    char *json;                     /* the tools array as the template sees it (unformatted) */
    tool_choice_kind choice;
    int named;                      /* TOOL_CHOICE_NAMED: index into v */
    bool parallel;                  /* parallel_tool_calls (default true) */
} serve_tools;

/* cJSON is not named here so that users of this header need not include it;
 * `root` and `msg` are const cJSON *. */

/* Reads tools / tool_choice / parallel_tool_calls of a chat request. *out
 * stays NULL when there are no tools. Each function's parameters are
 * converted to GBNF here, so that a schema the converter refuses is a 400
 * naming the tool. Returns 0, or -1 with err and *param set. */
int serve_tools_parse(const void *root, serve_tools **out, char *err, size_t errcap, const char **param);
void serve_tools_free(serve_tools *t);

/* A history message's tool fields: an assistant's tool_calls (arguments
 * given as a JSON string become the object they encode, as templates print
 * them with tojson) and a tool message's tool_call_id / name, as one JSON
 * object's text in *out (NULL when the message has none). *content_optional
 * tells whether the message may go without content (an assistant turn that
 * only calls tools). */
int serve_tools_message(const void *msg, const char *role, char **out, bool *content_optional, char *err,
                        size_t errcap);

/* The prompt of a chat with tools (or with tool turns in its history) as
 * tokens. msg_json[i]: the message's serve_tools_message JSON or NULL. tools
 * may be NULL. *native tells whether the model's template rendered the
 * tools itself. Returns SLM_OK or the failure with the reason in err. */
slm_status serve_tools_prompt(const slm_model *m, const slm_chat_message *msgs, const char *const *msg_json, size_t n,
                              const serve_tools *tools, slm_token **out, size_t *n_out, bool *native, char *err,
                              size_t errcap);

/* The GBNF of the answer's tool calls for this tool_choice (all the tools,
 * or the named one); malloc'd, NULL when out of memory. */
char *serve_tools_grammar(const serve_tools *t);

/* The generated text read as content and tool calls. Calls are taken from
 * <tool_call> blocks; with final false (streaming) only what can no longer
 * change is reported: content stops short of a possible opening tag and of
 * trailing whitespace, arguments short of what may be the block's end. */
typedef struct tool_call_out {
    char *name;                     /* NULL: not known yet */
    char *args;                     /* the arguments text so far ("" if none) */
    bool complete;                  /* the block is closed */
} tool_call_out;

typedef struct tools_parsed {
    size_t content_len;             /* the content is text[0 .. content_len) */
    int n_calls;
    tool_call_out calls[SERVE_MAX_CALLS];
} tools_parsed;

void serve_tools_read(const char *text, size_t len, bool final, tools_parsed *p);

/* tool_choice auto: where a call starts in the text, (size_t)-1 if none
 * yet: the opening tag anywhere (looked for from about `from` on), or an
 * answer that begins with a JSON object or a ```json fence. */
size_t serve_tools_trigger(const char *text, size_t len, size_t from);
void tools_parsed_free(tools_parsed *p);

#endif
