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
    bool precise;             /* --precise: f32 activations (slm_session_params.precise) */
    const char *lora;         /* --lora FILE, or NULL */
    float lora_scale;         /* --lora-scale (default 1) */
    /* structured output (cli_grammar.c): at most one of these */
    const char *grammar_file;     /* --grammar-file F (GBNF) */
    const char *grammar_text;     /* --grammar "..." */
    const char *json_schema_file; /* --json-schema F */
    bool json_object;             /* --json: any JSON object */
    int spec_kind;                /* --speculative: an slm_spec_kind (cli_spec.c) */
    int spec_draft;               /* --draft N: most tokens drafted per step; 0: the library's default */
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
    slm_lora *lora;           /* NULL without --lora */
    slm_grammar *grammar;     /* NULL without a grammar option; attached to the sampler */
    slm_spec *spec;           /* NULL with --speculative off */
} cli_engine;
int cli_engine_open(cli_engine *e, const cli_gen_opts *o);
void cli_engine_close(cli_engine *e);

/* Result of one generation. */
typedef struct cli_gen_stats {
    int n_prompt, n_gen;
    double t_prompt_ms, t_gen_ms, t_first_ms;
    slm_token last;           /* last sampled token */
    bool hit_eog, ctx_full;
    bool truncated;           /* a grammar was set and the output stopped before it was complete */
    long spec_steps, spec_drafted, spec_accepted; /* speculative decoding: forward passes, drafted, kept */
} cli_gen_stats;

/* Feeds `prompt` tokens, then samples and streams up to n_predict tokens to
 * out, stopping at an end-of-generation token. Returns 0 or 1 (error printed). */
int cli_generate(cli_engine *e, const slm_token *prompt, size_t n_prompt, int n_predict,
                 FILE *out, cli_gen_stats *st);
void cli_print_stats(const cli_gen_stats *st);

double cli_now_ms(void);

/* Structured output (cli_grammar.c): parses --grammar-file/--grammar/
 * --json-schema/--json (1 consumed, 0 not one, -1 bad, printed); prints their
 * help; builds the grammar for e's model and attaches it (0 or 1, printed). */
int cli_grammar_parse_opt(cli_gen_opts *o, int argc, char **argv, int *i);
void cli_print_grammar_help(FILE *out);
int cli_grammar_open(cli_engine *e, const cli_gen_opts *o);

/* Speculative decoding (cli_spec.c): parses --speculative/--draft (1, 0, -1
 * as above), prints their help, creates e->spec as the options say (0 or 1,
 * printed). */
int cli_parse_spec_opt(cli_gen_opts *o, int argc, char **argv, int *i);
void cli_print_spec_help(FILE *out);
int cli_spec_open(cli_engine *e, const cli_gen_opts *o);

/* The tokens of one answer, one at a time, from the plain loop or from
 * speculative decoding (the same tokens): each one already passed to the
 * grammar and (unless it ends generation) to slm_sampler_accept. After the
 * last one used, cli_tokens_end leaves the session holding every used token
 * but the last, as the plain loop does; toks[0..used) are those tokens. */
typedef struct cli_tokens {
    cli_engine *e;
    int n_predict, n_start;
    slm_token buf[64];        /* the current speculative step's tokens */
    int n, at;
    slm_token *toks;
    int used, cap;
} cli_tokens;
int cli_tokens_begin(cli_tokens *it, cli_engine *e, const slm_token *context, size_t n, int n_predict);
int cli_tokens_next(cli_tokens *it, slm_token *tok);
void cli_tokens_end(cli_tokens *it, cli_gen_stats *st);

/* Loads the adapter at path for model m and applies it to session s (when
 * s is non-NULL) with the given scale; prints an error naming cmd. 0 or 1. */
int cli_lora_open(const char *cmd, slm_model *m, slm_session *s, const char *path, float scale, slm_lora **out);
/* Parses "--lora FILE" / "--lora-scale S" at argv[*i]: 1 consumed, 0 not
 * one of them, -1 bad value (printed). */
int cli_parse_lora_opt(const char *cmd, int argc, char **argv, int *i, const char **path, float *scale);

int cmd_run(int argc, char **argv);
int cmd_chat(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_perplexity(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_quantize(int argc, char **argv);
int cmd_imatrix(int argc, char **argv);
int cmd_merge(int argc, char **argv);
int cmd_finetune(int argc, char **argv);
int cmd_trim_vocab(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_serve(int argc, char **argv);   /* only when built with libmicrohttpd + cJSON */

#endif
