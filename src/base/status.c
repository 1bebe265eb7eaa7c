#include "base/status.h"

#include <stdarg.h>
#include <stdio.h>

static _Thread_local char last_error[512];

slm_status slm_fail(slm_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return st;
}

void slm_clear_error(void) { last_error[0] = '\0'; }

const char *slm_last_error(void) { return last_error; }

const char *slm_status_name(slm_status st) {
    switch (st) {
    case SLM_OK: return "ok";
    case SLM_ERR_IO: return "i/o error";
    case SLM_ERR_FORMAT: return "format error";
    case SLM_ERR_UNSUPPORTED: return "unsupported";
    case SLM_ERR_INVALID_ARG: return "invalid argument";
    case SLM_ERR_NOMEM: return "out of memory";
    case SLM_ERR_CONTEXT_FULL: return "context full";
    }
    return "unknown status";
}
