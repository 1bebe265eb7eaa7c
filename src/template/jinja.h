/* A small interpreter for the subset of Jinja that chat templates use.
 *
 * It renders a model's tokenizer.chat_template the way HF transformers does:
 * jinja2's sandboxed environment with trim_blocks and lstrip_blocks, the
 * loop controls extension, a tojson filter that is json.dumps with
 * ensure_ascii=False (not jinja2's HTML-escaping one), and the globals
 * raise_exception(msg) and strftime_now(fmt).
 *
 * Errors: SLM_ERR_FORMAT for a template that is not valid Jinja (unterminated
 * tag, unexpected token), SLM_ERR_UNSUPPORTED for valid Jinja this interpreter
 * does not implement (the message names the construct and its line),
 * SLM_ERR_INVALID_ARG for a failure while rendering: raise_exception() (its
 * message is passed on), undefined values used, type errors, and the limits
 * (output size, loop iterations, nesting) that keep every render bounded. */
#ifndef SLM_TEMPLATE_JINJA_H
#define SLM_TEMPLATE_JINJA_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "slm.h"

typedef struct jinja_options {
    /* Time strftime_now() formats; NULL: the current local time. */
    const struct tm *now;
} jinja_options;

/* Renders `tmpl` (tlen bytes) with the variables of the JSON object
 * `ctx_json` (NUL-terminated). *out is malloc'd and NUL-terminated; *out_len
 * (may be NULL) gets its length. */
slm_status jinja_render(const char *tmpl, size_t tlen, const char *ctx_json,
                        const jinja_options *opt, char **out, size_t *out_len);

/* Gemma 3's chat template (src/engine/chat_format.c), used for Gemma files
 * that carry none; the same text as tests/fixtures/templates/gemma3.jinja. */
extern const char slm_gemma3_template[];

#endif
