/* slm — run, compress and specialise small language models.
 *
 * The one public header. Every user-facing program (the CLI, the server, the
 * evaluation and training tools) is a client of this API. Functions that can
 * fail return an slm_status; on failure slm_last_error() describes the problem
 * in one line (the message is per thread and stays until the next failure).
 * Nothing in the library prints, exits or reads the environment. */
#ifndef SLM_H
#define SLM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SLM_VERSION_STRING "0.1.0"

typedef enum slm_status {
    SLM_OK = 0,
    SLM_ERR_IO,            /* a file could not be opened, mapped or written */
    SLM_ERR_FORMAT,        /* corrupt or truncated input */
    SLM_ERR_UNSUPPORTED,   /* valid input this build cannot handle */
    SLM_ERR_INVALID_ARG,   /* a caller passed a bad value */
    SLM_ERR_NOMEM,
    SLM_ERR_CONTEXT_FULL,  /* the session's context has no room left */
} slm_status;

/* The message of the last failure on this thread ("" if none). */
const char *slm_last_error(void);
const char *slm_status_name(slm_status st);

/* ---- models ------------------------------------------------------------ */

typedef struct slm_model slm_model;

/* Opens a GGUF file (memory-mapped; weights are not copied) and checks that
 * everything the architecture needs is present with the right shape. */
slm_status slm_model_open(const char *path, slm_model **out);
void slm_model_close(slm_model *model);

typedef struct slm_model_info {
    const char *arch;          /* general.architecture */
    const char *name;          /* general.name, or "" */
    int n_vocab, n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff;
    int n_ctx_train;           /* the context length the model was trained with */
    uint64_t n_params;         /* total elements of all tensors */
    uint64_t file_size;
} slm_model_info;
void slm_model_get_info(const slm_model *model, slm_model_info *out);

/* ---- tokens ------------------------------------------------------------ */

typedef int32_t slm_token;

int slm_vocab_size(const slm_model *model);
slm_token slm_token_bos(const slm_model *model);     /* -1 if the model has none */
slm_token slm_token_eos(const slm_model *model);
/* Id of a piece spelled exactly so in the vocabulary (e.g. "<end_of_turn>"), or -1. */
slm_token slm_token_lookup(const slm_model *model, const char *piece);
/* True for tokens that end generation (eos, end-of-turn and the like). */
bool slm_token_is_eog(const slm_model *model, slm_token tok);

/* Encodes UTF-8 text. With parse_special, control tokens written in the text
 * (such as "<start_of_turn>") become their ids; otherwise they are plain text.
 * Invalid UTF-8 is an SLM_ERR_INVALID_ARG. On success *out is malloc'd (free
 * it with free()) and holds *n_out tokens. */
slm_status slm_tokenize(const slm_model *model, const char *text, size_t len,
                        bool add_bos, bool parse_special,
                        slm_token **out, size_t *n_out);

/* The raw bytes a token stands for (spaces restored, byte tokens decoded);
 * control tokens give their text only when `special` is true. Returns the
 * number of bytes the piece needs; writes at most cap bytes (no terminator). */
size_t slm_token_to_bytes(const slm_model *model, slm_token tok, bool special,
                          char *buf, size_t cap);

/* Streaming detokenizer: pushes token bytes in and hands out only complete
 * UTF-8 sequences, so a character split across tokens is never printed half.
 * Bytes that can never form valid UTF-8 come out as U+FFFD. */
typedef struct slm_detok {
    unsigned char pending[8];
    int n_pending;
} slm_detok;
void slm_detok_init(slm_detok *d);
/* Appends the printable part of `bytes` to out (cap must be >= len + 8);
 * returns the number of bytes written. */
size_t slm_detok_push(slm_detok *d, const char *bytes, size_t len, char *out, size_t cap);
/* Flushes what is left (incomplete sequences become U+FFFD). */
size_t slm_detok_flush(slm_detok *d, char *out, size_t cap);

/* ---- sessions ---------------------------------------------------------- */

typedef struct slm_session slm_session;

typedef struct slm_session_params {
    int n_ctx;        /* 0: min(model's training context, 4096) */
    int n_threads;    /* 0: all online CPUs */
    /* Multiply weights with f32 activations instead of 8-bit blocks: several
     * times slower, closest to a float reference (used by the golden tests). */
    bool precise;
} slm_session_params;

slm_status slm_session_new(const slm_model *model, const slm_session_params *params,
                           slm_session **out);
void slm_session_free(slm_session *s);
int slm_session_n_ctx(const slm_session *s);
/* Positions already in the KV cache. */
int slm_session_n_past(const slm_session *s);
/* Forgets everything from position n_keep on (n_keep <= n_past). */
void slm_session_truncate(slm_session *s, int n_keep);

/* Runs the model on n tokens that follow the cached ones. Afterwards
 * slm_session_logits() gives the logits of the last token; with all_logits
 * slm_session_logits_all() gives those of every one of the n tokens (row i at
 * + i*n_vocab). Fails with SLM_ERR_CONTEXT_FULL when n_past + n exceeds the
 * context, leaving the session as it was. */
slm_status slm_session_eval(slm_session *s, const slm_token *tokens, int n, bool all_logits);
float *slm_session_logits(slm_session *s);
float *slm_session_logits_all(slm_session *s);

/* ---- sampling ---------------------------------------------------------- */

typedef struct slm_sampler_params {
    float temperature;      /* <= 0: greedy */
    int top_k;              /* <= 0: off */
    float top_p;            /* >= 1: off */
    float min_p;            /* <= 0: off */
    float repeat_penalty;   /* 1: off */
    int repeat_last_n;      /* how many recent tokens the penalty looks at */
    uint64_t seed;
} slm_sampler_params;

/* Defaults: temperature 0.8, top_k 40, top_p 0.95, min_p 0.05, repeat
 * penalty 1 (off) over the last 64 tokens, seed 0. The penalty applies in
 * greedy mode too and counts each distinct recent token once. Equal logits
 * are broken by the lower id. The same seed gives the same tokens on every
 * IEEE-754 platform. */
void slm_sampler_default_params(slm_sampler_params *p);

typedef struct slm_sampler slm_sampler;
slm_status slm_sampler_new(const slm_sampler_params *p, int n_vocab, slm_sampler **out);
void slm_sampler_free(slm_sampler *s);
/* Records a token for the repetition penalty (prompt and generated tokens). */
void slm_sampler_accept(slm_sampler *s, slm_token tok);
/* Forgets the recorded tokens and restarts the random stream from the seed. */
void slm_sampler_reset(slm_sampler *s);
/* Picks the next token. `logits` (n_vocab values) may be modified. */
slm_token slm_sampler_sample(slm_sampler *s, float *logits);

/* ---- chat format --------------------------------------------------------- */

typedef struct slm_chat_message {
    const char *role;      /* "system", "user", "assistant" */
    const char *content;
} slm_chat_message;

/* Renders a conversation as the model expects it: the file's own
 * tokenizer.chat_template when it has one, else the built-in format of its
 * family (Gemma's turns). With add_generation_prompt the text ends with the
 * opening of the assistant's turn. The text includes the BOS piece where the
 * format does, so tokenize it with add_bos false and parse_special true.
 * *out is malloc'd and NUL-terminated. SLM_ERR_UNSUPPORTED when the model has
 * no template and no built-in format, or the template uses a construct the
 * interpreter does not know (the message names it). */
slm_status slm_chat_format(const slm_model *model, const slm_chat_message *msgs, size_t n,
                           bool add_generation_prompt, char **out);

/* ---- quantization, perplexity, evaluation (issue 4) ----------------------- */

/* ---- batched decoding for servers (issue 5) ------------------------------- */

/* ---- file inspection ----------------------------------------------------- */

/* A GGUF file opened for inspection only (any architecture). */
typedef struct gguf_file slm_gguf;

typedef struct slm_tensor_desc {
    const char *name;      /* not NUL-terminated: name_len bytes */
    size_t name_len;
    const char *type_name; /* "q8_0", or "?" */
    uint32_t type;
    int n_dims;
    uint64_t ne[4];
    uint64_t offset, nbytes;
} slm_tensor_desc;

slm_status slm_gguf_open(const char *path, slm_gguf **out);
void slm_gguf_close(slm_gguf *g);
uint32_t slm_gguf_version(const slm_gguf *g);
uint64_t slm_gguf_n_meta(const slm_gguf *g);
/* Key i (not NUL-terminated, *len bytes). */
const char *slm_gguf_meta_key(const slm_gguf *g, uint64_t i, size_t *len);
/* Writes value i in readable form (arrays: type, count and the first
 * max_items elements) into buf, NUL-terminated and truncated to cap. */
void slm_gguf_meta_format(const slm_gguf *g, uint64_t i, int max_items, char *buf, size_t cap);
uint64_t slm_gguf_n_tensors(const slm_gguf *g);
void slm_gguf_tensor(const slm_gguf *g, uint64_t i, slm_tensor_desc *out);

/* ---- CPU ---------------------------------------------------------------- */

/* Names the kernels chosen at start-up from the CPU's features, e.g. "avx512". */
const char *slm_cpu_backend_name(void);
/* Uses a lower kernel set than the best one ("scalar", "avx2", ...): for
 * benchmarks and debugging. Call before creating sessions. */
slm_status slm_cpu_set_kernels(const char *name);

#ifdef __cplusplus
}
#endif
#endif
