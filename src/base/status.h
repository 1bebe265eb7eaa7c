/* Errors are values: a failing function records a one-line message and
 * returns a status. The message lives in a per-thread buffer. */
#ifndef SLM_BASE_STATUS_H
#define SLM_BASE_STATUS_H

#include "slm.h"

#if defined(__GNUC__)
#define SLM_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define SLM_PRINTF(a, b)
#endif

/* Records the message and returns st, so callers can `return slm_fail(...)`. */
slm_status slm_fail(slm_status st, const char *fmt, ...) SLM_PRINTF(2, 3);
void slm_clear_error(void);

#endif
