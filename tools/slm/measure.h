/* Pieces shared by the measuring commands (perplexity, eval, imatrix). */
#ifndef SLM_CLI_MEASURE_H
#define SLM_CLI_MEASURE_H

#include <stddef.h>

#include "slm.h"

/* Reads a whole file (NUL-terminated; *len excludes the NUL); prints an error
 * naming `cmd` (NULL: none) and returns NULL when it cannot. Also used by
 * run/chat for grammar and schema files (cli_grammar.c). */
char *measure_read_file(const char *cmd, const char *path, size_t *len);
/* Parses argv[*i + 1] as an integer in lo..hi for flag argv[*i]; 0 or -1 (printed). */
int measure_int_arg(const char *cmd, int argc, char **argv, int *i, long lo, long hi, int *out);
/* Opens the model (NULL: the default one) and a session; prints errors. */
int measure_open(const char *cmd, const char *model_path, int n_ctx, int n_threads, slm_model **m,
                 slm_session **s);

#endif
