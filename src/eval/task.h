/* An evaluation task in memory (parsed from JSONL by task_parse.c, scored by
 * task_score.c). */
#ifndef SLM_EVAL_TASK_H
#define SLM_EVAL_TASK_H

#include <stdbool.h>
#include <stddef.h>

#include "slm.h"

typedef struct task_item {
    bool is_mc;
    char *text;            /* mc: the context; gen: the prompt */
    char **strs;           /* mc: the choices; gen: the accepted answers */
    int n_strs;
    int answer;            /* mc: index of the right choice */
    char **stops;          /* gen: stop strings */
    int n_stops;
    int max_tokens;        /* gen */
    /* result of the last slm_task_score (-1: not scored) */
    signed char correct, correct_norm;
} task_item;

struct slm_task {
    task_item *items;
    size_t n;
    char *gen_buf;         /* the last generated text */
    size_t gen_cap;
};

#define TASK_MAX_CHOICES 64
#define TASK_MAX_STOPS 16
#define TASK_MAX_GEN_TOKENS 4096
#define TASK_DEFAULT_GEN_TOKENS 64

#endif
