/* Training data: JSONL or plain text in, token sequences with loss masks out.
 *
 * JSONL, one example per line, any of
 *   {"messages": [{"role": "...", "content": "..."}, ...]}
 *       rendered with the model's chat template; only the assistant turns'
 *       tokens are scored (each turn's content and its end-of-turn marker,
 *       found by rendering the conversation's prefixes: works with any
 *       template whose renderings of prefixes are prefixes of the whole);
 *       contents are plain text: "<end_of_turn>" written in a message is
 *       text, not the control token (slm_chat_tokenize);
 *   {"prompt": "...", "completion": "..."}
 *       the completion (and an EOS after it) is scored; with `chat` the pair
 *       is rendered as a user turn and an assistant turn instead;
 *   {"text": "..."}
 *       every token is scored.
 * The last two are raw text: control-token strings in them (the model's
 * own markup, written out) become control tokens.
 * Any other file is plain text: tokenized whole and cut into windows of
 * `seq` tokens (each starting with BOS where the model uses one).
 *
 * Errors name the file and the line. Examples longer than `seq` tokens are
 * skipped (counted, first line numbers kept) unless `truncate` is set. */
#ifndef SLM_TRAIN_DATA_H
#define SLM_TRAIN_DATA_H

#include <stdbool.h>
#include <stdint.h>

#include "slm.h"

typedef struct train_example {
    int32_t *tokens;
    uint8_t *mask;          /* mask[i] != 0: tokens[i] is a target (predicted from i-1) */
    int n;
    int line;               /* 1-based line (JSONL) or window index (text) */
} train_example;

#define TRAIN_DATA_MAX_LINES 8

typedef struct train_data {
    train_example *ex;
    int n, cap;
    int64_t n_tokens, n_scored;
    int n_skipped;                               /* too long, dropped */
    int skipped_lines[TRAIN_DATA_MAX_LINES];     /* the first ones */
    int n_truncated;                             /* too long, cut (truncate) */
    int truncated_lines[TRAIN_DATA_MAX_LINES];
} train_data;

typedef struct train_data_params {
    int seq;            /* longest sequence (tokens) */
    bool truncate;      /* cut over-long examples instead of skipping them */
    bool chat;          /* prompt/completion as a user and an assistant turn */
    bool jsonl;         /* parse as JSONL (train_data_load: from the file name) */
} train_data_params;

/* Parses text (len bytes) named `name` in messages. On failure *out is
 * empty and the message names name:line. */
slm_status train_data_parse(const slm_model *m, const char *name, const char *text, size_t len,
                            const train_data_params *p, train_data *out);
/* Reads a file: JSONL when its name ends in .jsonl, else plain text. */
slm_status train_data_load(const slm_model *m, const char *path, const train_data_params *p, train_data *out);
void train_data_free(train_data *d);

/* Packs the examples, in the given order, into sequences of at most seq
 * tokens, greedily: several short examples share one sequence (attention
 * then crosses their boundary; the loss masks stay their own). out gets new
 * examples (their `line` is that of the first example packed). */
slm_status train_data_pack(const train_data *d, const int *order, int n_order, int seq, train_data *out);

#endif
