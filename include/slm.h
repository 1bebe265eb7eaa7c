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
 * With add_bos the BOS token comes first where the model's vocabulary asks for
 * one (tokenizer.ggml.add_bos_token; Gemma and Llama 3 do, Qwen2 and SmolLM2
 * do not). Invalid UTF-8 is an SLM_ERR_INVALID_ARG. On success *out is malloc'd (free
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
/* slm_session_eval(s, tokens, n, true) with every row's logits bit-identical
 * to those of evaluating the tokens one at a time (the verification step of
 * speculative decoding; slm_spec_* below use it). Per row it costs more than
 * slm_session_eval where a weight type has no row-exact batched kernel. */
slm_status slm_session_eval_exact(slm_session *s, const slm_token *tokens, int n);

/* ---- sampling ---------------------------------------------------------- */

typedef struct slm_sampler_params {
    float temperature;      /* <= 0: greedy */
    int top_k;              /* <= 0: off */
    float top_p;            /* >= 1: off */
    float min_p;            /* <= 0: off */
    float repeat_penalty;   /* 1: off */
    int repeat_last_n;      /* how many recent tokens the penalty looks at */
    uint64_t seed;
    /* OpenAI-style penalties over every token accepted since the last reset:
     * logit -= frequency_penalty * count + presence_penalty * (count > 0).
     * 0: off. Applied before top-k, also when greedy. */
    float presence_penalty;
    float frequency_penalty;
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
/* Records a token for the repetition, presence and frequency penalties. */
void slm_sampler_accept(slm_sampler *s, slm_token tok);
/* Forgets the recorded tokens and restarts the random stream from the seed. */
void slm_sampler_reset(slm_sampler *s);
/* Picks the next token. `logits` (n_vocab values) may be modified. */
slm_token slm_sampler_sample(slm_sampler *s, float *logits);

/* ---- structured output: grammars and JSON Schema (issue 17) -------------- */

/* A grammar in llama.cpp's GBNF syntax (rules `name ::= ...`, the start rule
 * is `root`), compiled for one model's vocabulary, with a parser state that
 * follows the tokens accepted so far. See docs/STRUCTURED.md. Load-time
 * errors (SLM_ERR_FORMAT) name the line and column of a syntax error, an
 * undefined rule, left recursion, or an empty grammar. model may be NULL:
 * then only slm_grammar_accept_bytes and the state queries work (for
 * checking text). One grammar serves one generation at a time. */
typedef struct slm_grammar slm_grammar;
slm_status slm_grammar_new(const slm_model *model, const char *gbnf, size_t len, slm_grammar **out);
/* JSON Schema (a subset: docs/STRUCTURED.md) converted to GBNF. A keyword the
 * converter cannot honour is an SLM_ERR_UNSUPPORTED naming it; a schema no
 * document can satisfy is an SLM_ERR_INVALID_ARG. "{}" or {"type":"object"}
 * give any JSON value / any JSON object. *gbnf is malloc'd, NUL-terminated. */
slm_status slm_json_schema_to_gbnf(const char *schema, size_t len, char **gbnf);
/* Both steps at once. */
slm_status slm_grammar_new_json_schema(const slm_model *model, const char *schema, size_t len, slm_grammar **out);
void slm_grammar_free(slm_grammar *g);
/* Back to the start (nothing accepted). */
void slm_grammar_reset(slm_grammar *g);
/* May tok come next? An end-of-generation token is allowed only where the
 * root rule can be complete. */
bool slm_grammar_allows(slm_grammar *g, slm_token tok);
/* Advances past tok (SLM_ERR_INVALID_ARG if the grammar refuses it). */
slm_status slm_grammar_accept(slm_grammar *g, slm_token tok);
/* Advances past raw text (e.g. a forced prefix, or to check a document). */
slm_status slm_grammar_accept_bytes(slm_grammar *g, const char *text, size_t len);
/* Sets every refused token's logit to -inf; returns how many tokens remain. */
int slm_grammar_apply(slm_grammar *g, float *logits);
/* The text so far is a complete sentence of the grammar. */
bool slm_grammar_can_end(const slm_grammar *g);
/* Nothing may follow but the end. */
bool slm_grammar_must_end(const slm_grammar *g);
/* An end-of-generation token has been accepted. */
bool slm_grammar_ended(const slm_grammar *g);

/* Attaches a grammar (borrowed; NULL detaches); SLM_ERR_INVALID_ARG when it
 * was built without a model or for a vocabulary of another size. slm_sampler_sample then
 * returns only tokens the grammar allows: it samples as usual and, when the
 * grammar refuses the token, masks the refused tokens and samples again
 * from the same (penalised) logits. It returns -1 when no token fits. The
 * caller advances the grammar with slm_grammar_accept. */
slm_status slm_sampler_set_grammar(slm_sampler *s, slm_grammar *g);

/* ---- speculative decoding ------------------------------------------------ */

/* Decoding that checks several drafted tokens with one forward pass of the
 * model (slm_session_eval_exact) and keeps those the model itself would have
 * chosen. The output is token for token what the plain loop gives -- sample
 * from slm_session_logits, slm_grammar_accept, slm_sampler_accept, then
 * slm_session_eval of the token -- greedy or not, with the same seed: every
 * row's logits are bit-identical to a one-token step's, and the sampler is
 * called once per emitted token, in order. (With a deterministic drafter the
 * standard acceptance rule, accept x with probability min(1, p(x)/q(x)),
 * else sample from norm(max(0, p - q)), is exactly "sample y from p; keep
 * the draft while y equals it".) See docs/PERFORMANCE.md, "Speculative
 * decoding". */
typedef enum slm_spec_kind {
    SLM_SPEC_OFF = 0,  /* one token per step: the plain loop */
    SLM_SPEC_NGRAM,    /* prompt lookup: continue the latest earlier occurrence of the last tokens */
    SLM_SPEC_HEAD,     /* the model itself with its output head cut to the head_k likeliest tokens */
    SLM_SPEC_MIXED,    /* ngram where the text so far has a match, else head */
} slm_spec_kind;

typedef struct slm_spec_params {
    slm_spec_kind kind;
    int max_draft;   /* most tokens drafted per step; 0: 8. The length adapts to the acceptance */
    int ngram_min;   /* shortest suffix looked up; 0: 2 */
    int ngram_max;   /* longest suffix looked up; 0: 4 */
    int head_k;      /* tokens of the head drafter's output head; 0: 16384 */
} slm_spec_params;

typedef struct slm_spec_stats {
    long steps;      /* verification passes (the head drafter's draft steps, one pass
                      * through the layers each, are counted in drafted) */
    long drafted;    /* tokens proposed */
    long accepted;   /* of those, kept */
    long emitted;    /* tokens given out */
} slm_spec_stats;

typedef struct slm_spec slm_spec;
/* A speculative decoder for session s (borrowed; p NULL: ngram, defaults). */
slm_status slm_spec_new(const slm_model *model, slm_session *s, const slm_spec_params *p, slm_spec **out);
void slm_spec_free(slm_spec *sp);
/* Starts a generation from the session's current state: its last evaluated
 * token's logits are where the first token is sampled from. context (the
 * prompt, or the whole conversation) is what the n-gram drafter looks in. */
slm_status slm_spec_begin(slm_spec *sp, const slm_token *context, int n);
/* Gives the next 1..max_out tokens in out (*n_out of them), each already
 * passed to slm_grammar_accept (when g is non-NULL) and, except a token that
 * ends generation (which ends the step), to slm_sampler_accept. The last one
 * given is not evaluated yet: the next step evaluates it together with the
 * next draft. Fails with SLM_ERR_CONTEXT_FULL when that evaluation does not
 * fit, with SLM_ERR_INVALID_ARG when no token continues the grammar. */
slm_status slm_spec_step(slm_spec *sp, slm_sampler *smp, slm_grammar *g, int max_out, slm_token *out, int *n_out);
/* Ends the generation after the caller used n_used of the tokens given:
 * truncates the session to what the plain loop would hold (every used token
 * but the last evaluated). */
void slm_spec_end(slm_spec *sp, int n_used);
void slm_spec_get_stats(const slm_spec *sp, slm_spec_stats *st);
/* "off", "ngram", "head", "ngram+head", and "auto": what measured best on
 * prose, code and JSON (docs/PERFORMANCE.md): ngram. -1 when unknown. */
int slm_spec_kind_parse(const char *name);
const char *slm_spec_kind_name(slm_spec_kind kind);

/* ---- chat format --------------------------------------------------------- */

typedef struct slm_chat_message {
    const char *role;      /* "system", "user", "assistant" */
    const char *content;
} slm_chat_message;

/* Renders a conversation as the model expects it: the file's own
 * tokenizer.chat_template when it has one, else the built-in format of its
 * family (Gemma's turns). With add_generation_prompt the text ends with the
 * opening of the assistant's turn. The text includes the BOS piece where the
 * format does, so tokenize it with add_bos false and parse_special true (or
 * let slm_chat_tokenize do it, with the contents kept as plain text).
 * *out is malloc'd and NUL-terminated. SLM_ERR_UNSUPPORTED when the model has
 * no template and no built-in format, or the template uses a construct the
 * interpreter does not know (the message names it and its line);
 * SLM_ERR_INVALID_ARG when the template rejects the conversation (its
 * raise_exception message is passed on, e.g. roles that do not alternate);
 * SLM_ERR_FORMAT when the template is not valid Jinja. The template sees
 * messages, add_generation_prompt, bos_token and eos_token (the token texts),
 * tools = documents = none, and strftime_now() gives the local time. */
slm_status slm_chat_format(const slm_model *model, const slm_chat_message *msgs, size_t n,
                           bool add_generation_prompt, char **out);
/* slm_chat_format for tool calling (slm serve): tools_json (a JSON array of
 * {"type":"function","function":{...}}, or NULL) is the template's `tools`,
 * and msg_json (NULL, or n entries each NULL or a JSON object's text) adds
 * members to message i as the template sees it: tool_calls, tool_call_id,
 * name. Both are spliced in as they are: they must be valid JSON. */
slm_status slm_chat_format_tools(const slm_model *model, const slm_chat_message *msgs, const char *const *msg_json,
                                 size_t n, const char *tools_json, bool add_generation_prompt, char **out);

/* The conversation rendered as slm_chat_format does, as tokens in which only
 * the template's own markup becomes control tokens: the contents are plain
 * text, so "<end_of_turn>" typed in a message stays text and cannot forge or
 * close a turn. (A template that transforms contents beyond trimming them
 * falls back to the rendering with special tokens parsed, and then refuses
 * contents holding control-token text: SLM_ERR_INVALID_ARG.) The BOS is
 * included where the format has one. *tokens is malloc'd, *n_tokens long.
 * With assistant non-NULL, *assistant (malloc'd, *n_tokens bytes) is 1 for
 * the tokens of each assistant turn: its content and the end-of-turn marker
 * after it, up to trailing whitespace (what fine-tuning learns); the turns
 * are found by rendering the conversation's prefixes (SLM_ERR_UNSUPPORTED
 * when they are not prefixes of the whole), and each is tokenized apart
 * from the text before and after it, as generation produces it. */
slm_status slm_chat_tokenize(const slm_model *model, const slm_chat_message *msgs, size_t n,
                             bool add_generation_prompt, slm_token **tokens, uint8_t **assistant,
                             size_t *n_tokens);

/* ---- quantization, perplexity, evaluation (issue 4) ----------------------- */

/* Quantization: reads any GGUF model (any tensor types: each tensor is
 * dequantized to f32 first), gives every tensor the type the chosen mix
 * assigns it (rules in docs/QUANTIZATION.md), and writes a new GGUF with the
 * metadata carried over (general.file_type updated,
 * general.quantization_version set to 2). The output is written under a
 * temporary name and renamed; on failure nothing is left at out_path. */

/* Called once per tensor before it is written: index i of n (from 0), its
 * name, the type it gets ("q4_K", as ggml spells it) and its element count. */
typedef void (*slm_quantize_progress_fn)(void *user, int i, int n, const char *name, const char *type_name,
                                         uint64_t n_elements);

typedef struct slm_quantize_params {
    const char *type;          /* mix name, case-insensitive: "q4_k_m", "q8_0", "f16", ... */
    const char *imatrix;       /* importance matrix (llama.cpp's GGUF imatrix format), or NULL */
    int n_threads;             /* 0: all online CPUs */
    slm_quantize_progress_fn progress;  /* may be NULL */
    void *progress_user;
} slm_quantize_params;

typedef struct slm_quantize_stats {
    uint64_t in_file_bytes, out_file_bytes;
    uint64_t in_tensor_bytes, out_tensor_bytes;
    uint64_t n_elements;       /* of all tensors */
    double in_bpw, out_bpw;    /* tensor bits per element, before and after */
    int n_tensors;
    int n_requantized;         /* tensors whose type changed (the rest are copied) */
    int n_imatrix;             /* tensors quantized with importance weights */
} slm_quantize_stats;

void slm_quantize_default_params(slm_quantize_params *p);  /* "q4_k_m", no imatrix, all CPUs */
/* The i-th mix name ("q2_k" ... "f32"), NULL past the end. */
const char *slm_quantize_mix_name(int i);
/* Unknown type names, unreadable or corrupt input, an imatrix whose entries
 * do not fit the model's tensors, and write errors fail with a message.
 * stats may be NULL. */
slm_status slm_quantize(const char *in_path, const char *out_path, const slm_quantize_params *p,
                        slm_quantize_stats *stats);

/* Natural-log probability of token `tok` under softmax(logits) (sums in double). */
double slm_log_softmax_at(const float *logits, int n_vocab, slm_token tok);
/* Index of the largest logit (ties: the lower id). */
slm_token slm_argmax(const float *logits, int n_vocab);

/* Perplexity by the standard method: the tokens are cut into non-overlapping
 * windows of n_ctx; each window's first token becomes BOS, the window is run
 * from an empty cache, and only its second half is scored: the logits at
 * positions n_ctx/2 .. n_ctx-2 predict the tokens after them. Optionally the
 * model's distributions at the scored positions are saved (the "base"), or
 * compared with ones saved before (KL divergence, top-1 agreement). The saved
 * file keeps, per position, the top_k log-probabilities with their ids and the
 * scored token's log-probability (format in docs/EVAL.md). */
typedef struct slm_ppl slm_ppl;
typedef struct slm_ppl_params {
    int n_ctx;             /* window length; 0: 512 */
    int n_chunks;          /* windows to score; 0: all the text holds */
    const char *kl_save;   /* save the base distributions to this file, or NULL */
    const char *kl_base;   /* compare with the distributions in this file, or NULL */
    int kl_top_k;          /* log-probs saved per position; 0: 64 */
} slm_ppl_params;

typedef struct slm_ppl_result {
    int n_chunks_done, n_chunks;
    uint64_t n_scored;                 /* tokens scored so far */
    double ppl, ppl_se;                /* exp(mean NLL) and its standard error */
    bool has_kl;                       /* comparing with a base (kl_base) */
    double base_ppl, base_ppl_se;      /* the base's PPL over the same tokens */
    double ln_ratio, ln_ratio_se;      /* mean per-token NLL minus the base's = ln(PPL / base PPL) */
    double dppl, dppl_se;              /* PPL - base PPL, with the paired standard error */
    double kl_mean, kl_se, kl_p50, kl_p90, kl_p99, kl_max;
    double top1, top1_se;              /* fraction of positions whose argmax agrees */
} slm_ppl_result;

/* tokens: the whole text as slm_tokenize gives it. The session's context must
 * hold n_ctx tokens. With kl_base, the file must come from the same tokens,
 * window and vocabulary (checked). */
slm_status slm_ppl_new(const slm_model *model, slm_session *s, const slm_token *tokens,
                       size_t n_tokens, const slm_ppl_params *p, slm_ppl **out);
/* Scores the next window; false from slm_ppl_more once all are done. */
bool slm_ppl_more(const slm_ppl *p);
slm_status slm_ppl_step(slm_ppl *p);
void slm_ppl_result_get(const slm_ppl *p, slm_ppl_result *r);
/* After the last window: completes the saved file (written under a temporary
 * name, renamed here). */
slm_status slm_ppl_finish(slm_ppl *p);
/* Frees; an unfinished save file is removed. */
void slm_ppl_free(slm_ppl *p);

/* Evaluation tasks from JSONL (format in docs/EVAL.md): multiple choice
 * scored by the log-likelihood of each choice given the context, and
 * exact-match generation (greedy, stop strings). */
typedef struct slm_task slm_task;
typedef struct slm_task_item_result {
    bool is_mc;
    int answer;                 /* multiple choice: the right index */
    int pred, pred_norm;        /* argmax of the log-likelihood, and of it divided by the choice's bytes */
    bool correct, correct_norm; /* generation: correct = exact match (correct_norm the same) */
    const char *generated;      /* generation: the text produced (valid until the next call) */
    int n_fields, fields_right; /* generation scored "json_fields": the truth's keys, and how many the output matched */
} slm_task_item_result;

/* Parses a whole JSONL text; on a bad line the message names the line. */
slm_status slm_task_parse(const char *text, size_t len, slm_task **out);
void slm_task_free(slm_task *t);
size_t slm_task_n_items(const slm_task *t);
int slm_task_n_choices(const slm_task *t, size_t i);  /* 0 for a generation item */
/* Scores item i (the session's cache is reset first, except that a
 * generation item scored right after another in the same, otherwise untouched
 * session keeps the cached tokens their prompts share) and records the result
 * for slm_task_summary. A multiple-choice item's summed log-likelihoods go
 * to ll (slm_task_n_choices values; may be NULL). An item longer than the
 * session's context is an SLM_ERR_CONTEXT_FULL. */
slm_status slm_task_score(slm_task *t, size_t i, const slm_model *model, slm_session *s, double *ll,
                          slm_task_item_result *r);

typedef struct slm_task_summary {
    int n_mc, n_gen;              /* items scored so far */
    double acc, acc_se;           /* multiple choice */
    double acc_norm, acc_norm_se; /* multiple choice, length-normalised */
    double em, em_se;             /* generation: exact match */
} slm_task_summary;
/* Accuracy over the scored items; SE = sqrt(p (1 - p) / (n - 1)). */
void slm_task_summary_get(const slm_task *t, slm_task_summary *out);
/* Per-field accuracy of the "json_fields" generation items scored so far
 * (docs/EVAL.md): the fields are every key of their answers, in order of
 * first appearance; for field k, *n items have it and *acc of them were
 * right (SE as above). */
int slm_task_n_fields(const slm_task *t);
const char *slm_task_field_name(const slm_task *t, int k);
void slm_task_field_acc(const slm_task *t, int k, int *n, double *acc, double *se);

/* Importance matrix (llama.cpp's imatrix): per input column of every layer
 * weight matrix (tensors named blk.*), the sum of squared activations over
 * the evaluated tokens, and the token count; their ratio is the mean that a
 * quantizer weighs rounding errors with. Saved as GGUF in llama.cpp's layout
 * (docs/EVAL.md). */
typedef struct slm_imcollect slm_imcollect;
slm_status slm_imcollect_new(const slm_model *model, slm_imcollect **out);
void slm_imcollect_free(slm_imcollect *im);
/* While attached, every slm_session_eval of s adds to im (im NULL detaches).
 * Detach before freeing im. */
slm_status slm_imcollect_attach(slm_imcollect *im, slm_session *s);
/* Counts one finished calibration window (imatrix.chunk_count). */
void slm_imcollect_add_chunk(slm_imcollect *im);
int slm_imcollect_n_entries(const slm_imcollect *im);
/* Entry i (sorted by name): weight name, columns, sums of squares, tokens seen. */
slm_status slm_imcollect_entry(const slm_imcollect *im, int i, const char **name, int *n_in, const double **sum2,
                             uint64_t *count);
/* Writes the GGUF file (temporary name, then renamed). dataset: the
 * calibration file's name; chunk_size: the window length. */
slm_status slm_imcollect_save(slm_imcollect *im, const char *path, const char *dataset, int chunk_size);

/* ---- batched decoding for servers (issue 5) ------------------------------- */

/* A batch: one model, one thread pool and n_seq independent sequences (each
 * with its own KV cache). One slm_batch_eval runs a step of several sequences
 * through a single forward pass: every weight matrix is read once for all of
 * their rows, and only the KV-cache write and the attention are per sequence.
 * This is what a server's continuous batching is built on: a decode step of
 * every active request (one token each), plus perhaps a chunk of a newly
 * arrived prompt, per call. Not thread-safe: one caller at a time. */
typedef struct slm_batch slm_batch;

typedef struct slm_batch_params {
    int n_seq;        /* sequences (a server's slots), >= 1 */
    int n_ctx;        /* each sequence's context; 0: min(training context, 4096) */
    int n_threads;    /* 0: all online CPUs */
    bool precise;     /* as in slm_session_params */
} slm_batch_params;

slm_status slm_batch_new(const slm_model *model, const slm_batch_params *params, slm_batch **out);
void slm_batch_free(slm_batch *b);
int slm_batch_n_seq(const slm_batch *b);
int slm_batch_n_ctx(const slm_batch *b);
/* Positions in sequence seq's KV cache (0 for an out-of-range seq). */
int slm_batch_n_past(const slm_batch *b, int seq);
/* Forgets sequence seq from position n_keep on (0: the sequence is empty). */
void slm_batch_truncate(slm_batch *b, int seq, int n_keep);

typedef struct slm_batch_item {
    int seq;                   /* which sequence, 0..n_seq-1 */
    const slm_token *tokens;   /* n tokens that follow its cached ones */
    int n;                     /* 1 for a decode step; more for a prompt chunk */
} slm_batch_item;

/* One forward pass over n_items items, each naming a different sequence.
 * Afterwards slm_batch_logits(b, seq) gives the logits of the last token of
 * each item (n_vocab floats, valid until that sequence is evaluated again).
 * Everything is checked first: on failure no sequence has changed.
 * SLM_ERR_CONTEXT_FULL when an item does not fit its sequence's context. */
slm_status slm_batch_eval(slm_batch *b, const slm_batch_item *items, int n_items);
float *slm_batch_logits(slm_batch *b, int seq);

/* ---- LoRA adapters (issue 14) ------------------------------------------------ */

/* A LoRA adapter in llama.cpp's GGUF layout (docs/TRAINING.md): per adapted
 * matrix W (n_out x n_in), A (rank x n_in) and B (n_out x rank); with it the
 * product W x becomes W x + s B (A x), s = scale * alpha / rank (scale alone
 * when the file's alpha is 0). Everything in the file is checked against the
 * model: architecture, tensor names, shapes, ranks, types (F32/F16). */
typedef struct slm_lora slm_lora;
slm_status slm_lora_load(const slm_model *model, const char *path, slm_lora **out);
void slm_lora_free(slm_lora *lora);
typedef struct slm_lora_info {
    float alpha;
    int rank;          /* the largest rank of its matrices */
    int n_matrices;    /* adapted matrices */
} slm_lora_info;
void slm_lora_get_info(const slm_lora *lora, slm_lora_info *out);
/* Applies lora (loaded for the same model) with the given scale to every
 * later evaluation of the session or batch; NULL removes it. The adapter
 * must outlive its use. One adapter at a time. */
slm_status slm_session_set_lora(slm_session *s, const slm_lora *lora, float scale);
slm_status slm_batch_set_lora(slm_batch *b, const slm_lora *lora, float scale);

/* Writes a copy of the model at base_path with the adapter folded in:
 * W' = W + s B A for every adapted matrix (s as above), stored as F32 (or
 * F16 with f16); every other tensor and all metadata are copied as they
 * are. Temporary file + rename. */
slm_status slm_lora_merge(const char *base_path, const char *adapter_path, const char *out_path, float scale,
                          bool f16);

/* ---- fine-tuning (issue 14) ---------------------------------------------------- */

/* LoRA fine-tuning of a model on a data file (formats in docs/TRAINING.md),
 * driven one optimizer step at a time by the caller. */
typedef struct slm_finetune_params {
    const char *data;          /* training data: .jsonl (messages / prompt+completion / text) or plain text */
    const char *val;           /* validation file, or NULL */
    float val_split;           /* without val: this fraction of the examples is held out (0: none) */
    const char *out;           /* the adapter to write (with full: the model) */
    bool full;                 /* full fine-tuning: every weight trained, a model GGUF written */
    int rank;                  /* 16 */
    float alpha;               /* 32 */
    float dropout;             /* 0 */
    unsigned targets;          /* bit i: q, k, v, o, gate, up, down (0x7f: all) */
    int epochs;                /* 1; ignored when steps > 0 */
    int steps;                 /* optimizer steps; 0: from epochs */
    float lr;                  /* 2e-4 */
    int warmup;                /* linear warm-up steps */
    bool cosine;               /* cosine decay to 0 after the warm-up (else constant) */
    int batch;                 /* sequences per optimizer step (gradient accumulation), 8 */
    float clip;                /* global gradient-norm clip, 1.0 (0: none) */
    float weight_decay;        /* AdamW, 0 */
    int seq;                   /* longest sequence, 512 */
    bool pack, truncate, chat; /* see docs/TRAINING.md */
    int eval_every;            /* validation every N steps (0: at the end only) */
    int patience;              /* stop after N evaluations without improvement (0: never) */
    int save_every;            /* checkpoint every N steps (0: none) */
    const char *checkpoint_dir;/* NULL: "<out>.ckpt" */
    bool resume;               /* continue from the checkpoint in checkpoint_dir */
    uint64_t seed;
    int n_threads;             /* 0: all CPUs */
} slm_finetune_params;
void slm_finetune_default_params(slm_finetune_params *p);

typedef struct slm_finetune_summary {
    int n_train, n_val;                    /* sequences */
    int64_t train_tokens, train_scored, val_tokens, val_scored;
    int n_skipped, n_truncated;            /* over-long examples (of both files) */
    int skipped_lines[8], truncated_lines[8];  /* the first ones, training file */
    int total_steps, start_step;           /* start_step > 0 after --resume */
    int64_t n_trainable;                   /* trainable parameters */
    char memory_plan[1024];                /* a few lines: what the trainer holds, in bytes */
} slm_finetune_summary;

typedef struct slm_finetune_progress {
    int step, total_steps, epoch;          /* step: optimizer steps done */
    double loss;                           /* this step's mean loss per scored token */
    double val_loss;                       /* the latest validation loss (NaN: none yet) */
    double best_val_loss;
    bool evaluated, saved, stopped_early;  /* at this step */
    double grad_norm, lr;
    double tokens_per_s, eta_s;
} slm_finetune_progress;

typedef struct slm_finetune slm_finetune;
/* Reads the data (errors name file:line), builds the trainer, and with
 * resume restores the checkpoint (bit-identical continuation). */
slm_status slm_finetune_new(const slm_model *model, const slm_finetune_params *p, slm_finetune **out);
void slm_finetune_get_summary(const slm_finetune *f, slm_finetune_summary *s);
bool slm_finetune_more(const slm_finetune *f);
/* One optimizer step (+ validation and a checkpoint when they are due). */
slm_status slm_finetune_step(slm_finetune *f, slm_finetune_progress *pr);
/* Writes a checkpoint now (temporary files + rename). */
slm_status slm_finetune_checkpoint(slm_finetune *f);
/* Writes the adapter (the best one by validation loss when validating) and
 * "<out>.loss.svg", the loss curves. */
slm_status slm_finetune_finish(slm_finetune *f);
void slm_finetune_free(slm_finetune *f);

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

/* ---- vocabulary trimming (issue 15) ---------------------------------------- */

/* What slm_trim_vocab keeps beyond the special, byte and user-defined tokens. */
typedef struct slm_trim_vocab_params {
    const char *const *texts;   /* plain corpus texts, tokenized as plain text */
    size_t n_texts;
    /* JSONL documents (an `slm eval` task or fine-tuning data): every string
     * value of every line is a text, and a line with "messages" (or "chat":
     * true with "prompt"/"answer") is also rendered through the model's chat
     * template, with and without the assistant's answer. */
    const char *const *jsonl;
    size_t n_jsonl;
    int keep_top;               /* also keep the N lowest-id tokens (0: none) */
    /* Every word of the plain texts is also kept as generated: alone and
     * after one space (a name read as " Chiara" is written "Chiara" inside a
     * JSON string). true: only the corpus's own tokens. */
    bool no_word_forms;
} slm_trim_vocab_params;

typedef struct slm_trim_vocab_stats {
    int n_vocab_in, n_vocab_out;
    int n_rounds;               /* verification rounds until the corpus tokenized identically */
    size_t n_texts;             /* texts tokenized (plain, JSON strings, chat renderings) */
    uint64_t n_tokens;          /* their tokens with the full vocabulary */
    uint64_t bytes_in, bytes_out;
} slm_trim_vocab_stats;

/* Writes a copy of the model at in_path whose vocabulary holds only the
 * tokens the corpus needs: those its texts tokenize to, every piece the
 * score-ordered merges pass through to build them, the byte tokens, every
 * control / user-defined / unknown token and the special ids of the metadata.
 * The corpus is then tokenized again with the trimmed vocabulary and must
 * give the same pieces (missing tokens are added until it does). Ids are
 * renumbered in their old order; the vocabulary arrays, the special-token ids,
 * *.vocab_size, and the rows of token_embd.weight (and output.weight when
 * untied) follow; everything else is copied. Temporary file + rename. stats
 * may be NULL. */
slm_status slm_trim_vocab(const char *in_path, const char *out_path, const slm_trim_vocab_params *p,
                          slm_trim_vocab_stats *stats);

/* ---- CPU ---------------------------------------------------------------- */

/* Names the kernels chosen at start-up from the CPU's features, e.g. "avx512". */
const char *slm_cpu_backend_name(void);
/* Uses a lower kernel set than the best one ("scalar", "avx2", ...): for
 * benchmarks and debugging. Call before creating sessions. */
slm_status slm_cpu_set_kernels(const char *name);
/* Models opened afterwards copy (true, the default) or keep as stored
 * (false) every weight matrix -- the output head and the layers' matrices --
 * whose type the kernels have a packed layout for (AVX-512: Q8_0, Q4_0,
 * Q5_0; llama.cpp calls this "repacking"): faster decoding, a longer open.
 * For comparisons. */
void slm_cpu_set_repack(bool on);

#ifdef __cplusplus
}
#endif
#endif
