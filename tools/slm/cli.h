/* Shared pieces of the slm command-line tool: options, the default model,
 * and the generation loop used by `run` and `chat`. */
#ifndef SLM_CLI_H
#define SLM_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "slm.h"

#define SLM_DEFAULT_MODEL_FILE "gemma-3-270m-q4_k_m.gguf"

typedef struct cli_gen_opts {
    const char *model;        /* NULL: the default model */
    const char *prompt;
    const char *prompt_file;
    int n_predict;
    int n_ctx, n_threads;
    slm_sampler_params sp;
    bool seed_set;
    bool verbose;
} cli_gen_opts;

void cli_gen_defaults(cli_gen_opts *o);
/* Parses one option at argv[*i] (advancing *i past its value). Returns 1 if
 * consumed, 0 if not a generation option, -1 on a bad value (message printed). */
int cli_parse_gen_opt(cli_gen_opts *o, int argc, char **argv, int *i);
/* Help text for the shared options. */
void cli_print_gen_help(FILE *out);

/* Resolves the model path: explicit, or $SLM_MODELS/<default>, or
 * ~/.cache/slm/models/<default>. Prints an error and returns NULL if absent. */
const char *cli_model_path(const char *explicit_path, char *buf, size_t cap);

/* Opens model + session + sampler as the options say; prints errors. */
typedef struct cli_engine {
    slm_model *model;
    slm_session *session;
    slm_sampler *sampler;
} cli_engine;
int cli_engine_open(cli_engine *e, const cli_gen_opts *o);
void cli_engine_close(cli_engine *e);

/* Result of one generation. */
typedef struct cli_gen_stats {
    int n_prompt, n_gen;
    double t_prompt_ms, t_gen_ms, t_first_ms;
    slm_token last;           /* last sampled token */
    bool hit_eog, ctx_full;
} cli_gen_stats;

/* Feeds `prompt` tokens, then samples and streams up to n_predict tokens to
 * out, stopping at an end-of-generation token. Returns 0 or 1 (error printed). */
int cli_generate(cli_engine *e, const slm_token *prompt, size_t n_prompt, int n_predict,
                 FILE *out, cli_gen_stats *st);
void cli_print_stats(const cli_gen_stats *st);

double cli_now_ms(void);

int cmd_run(int argc, char **argv);
int cmd_chat(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_perplexity(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_quantize(int argc, char **argv);
int cmd_imatrix(int argc, char **argv);
int cmd_serve(int argc, char **argv);   /* only when built with libmicrohttpd + cJSON */

#endif
