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
    char *gbnf;            /* gen, "json_schema": the schema as a grammar the output must follow, or NULL */
    int n_stops;
    int max_tokens;        /* gen */
    /* gen, "chat": the prompt is a conversation rendered through the model's
     * chat template (with the assistant turn opened): n_msgs messages, the
     * last a user turn ("prompt" alone becomes one user message). */
    bool chat;
    char **msg_roles, **msg_texts;
    int n_msgs;
    /* gen, "score": "json_fields": the first answer is a JSON object; each of
     * its keys is a field, scored by JSON equality with the generated
     * object's member. field_idx[k]: the task-wide index of key k. */
    int *field_idx;
    int n_fields;
    signed char *field_ok;     /* result of the last score (-1: not scored) */
    /* result of the last slm_task_score (-1: not scored) */
    signed char correct, correct_norm;
} task_item;

struct slm_task {
    task_item *items;
    size_t n;
    char *gen_buf;         /* the last generated text */
    size_t gen_cap;
    char **field_names;    /* every json_fields key, in order of first appearance */
    int n_field_names;
    /* The last generation item's prompt, and the session whose cache still
     * holds it (then at n_past tokens), so that the next item re-evaluates
     * only what follows the prefix they share (few-shot turns). */
    slm_token *prev_prompt;
    size_t n_prev;
    const slm_session *prev_session;
    int prev_n_past;
};

/* JSON equality: same kind; numbers by value, strings by bytes, arrays
 * element by element, objects with the same keys and equal members (order
 * free). */
struct json_val;
bool task_json_equal(const struct json_val *a, const struct json_val *b);
/* Scores generated text against a json_fields item's truth (an object):
 * ok[k] = the truth's k-th key is a member of the generated object, equal to
 * the truth's. Text that is not a JSON object (surrounding white space
 * allowed) gets every field wrong. Returns the number right, or -1 when the
 * truth is not an object (the parser refuses such items). */
int task_json_fields(const char *truth, const char *generated, int n_fields, signed char *ok);

#define TASK_MAX_CHOICES 64
#define TASK_MAX_STOPS 16
#define TASK_MAX_GEN_TOKENS 4096
#define TASK_DEFAULT_GEN_TOKENS 64
#define TASK_MAX_MESSAGES 64
#define TASK_MAX_FIELDS 64

#endif
