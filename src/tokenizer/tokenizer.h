/* SentencePiece-style tokenizer built from a GGUF vocabulary (and, later,
 * byte-level BPE). Internal: the public surface is slm_tokenize & co.
 *
 * Encoding ("llama" vocabularies, as llama.cpp does it):
 *   1. Tokens whose text is matched literally are cut out of the raw text
 *      first: user-defined tokens always (Gemma: "\n" runs, space runs, tab
 *      runs, HTML tags...), control and unknown tokens only with
 *      parse_special. At each position the longest such token wins.
 *   2. In the text between them every ' ' becomes U+2581 and the text is split
 *      into UTF-8 characters; the adjacent pair whose concatenation is a piece
 *      with the highest score is merged (ties: the leftmost), repeatedly.
 *   3. A symbol that is not a piece comes out as its <0xNN> byte tokens
 *      (or the unknown token where the vocabulary lacks them).
 * With tokenizer.ggml.add_space_prefix (default true, as in llama.cpp; Gemma
 * sets false) a space is put before the text that starts the input or follows
 * a literally matched token.
 *
 * "gpt2" vocabularies (byte-level BPE) are encoded and decoded by bpe.c with
 * the pre-tokenizers of pretok.c; see there. They need PCRE2 (SLM_HAVE_PCRE2):
 * without it tok_load reports them as SLM_ERR_UNSUPPORTED. */
#ifndef SLM_TOKENIZER_H
#define SLM_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gguf/gguf.h"
#include "slm.h"

typedef struct slm_tokenizer slm_tokenizer;

/* Errors: SLM_ERR_FORMAT for a missing or malformed vocabulary (no tokens
 * array, scores/types of another length or type, a special id out of range,
 * a bad byte token...), SLM_ERR_UNSUPPORTED for a tokenizer model other than
 * "llama" and "gpt2", an unknown tokenizer.ggml.pre, or "gpt2" in a build
 * without PCRE2. */
slm_status tok_load(const gguf_file *f, slm_tokenizer **out);
void tok_free(slm_tokenizer *t);

int tok_n_vocab(const slm_tokenizer *t);
int32_t tok_bos(const slm_tokenizer *t);
int32_t tok_eos(const slm_tokenizer *t);
int32_t tok_lookup(const slm_tokenizer *t, const char *piece, size_t len);
/* End-of-generation: eos, eot, <end_of_turn>. */
bool tok_is_eog(const slm_tokenizer *t, int32_t id);
bool tok_add_bos(const slm_tokenizer *t);

/* Encodes text (validated UTF-8). add_bos puts the BOS token first where the
 * vocabulary asks for one (tok_add_bos). *out is malloc'd. Invalid UTF-8 is an
 * SLM_ERR_INVALID_ARG whose message gives the byte offset. */
slm_status tok_encode(const slm_tokenizer *t, const char *text, size_t len,
                      bool add_bos, bool parse_special, int32_t **out, size_t *n_out);

/* Bytes of one token; see slm_token_to_bytes. Normal pieces with U+2581
 * turned back into spaces, byte tokens as their byte, user-defined tokens
 * verbatim, control/unknown tokens verbatim only when `special` (else ""),
 * unused tokens and ids out of range "". */
size_t tok_piece_bytes(const slm_tokenizer *t, int32_t id, bool special, char *buf, size_t cap);

/* ---- additions ---------------------------------------------------------- */

/* GGUF token types (tokenizer.ggml.token_type). */
enum tok_type {
    TOK_UNDEFINED = 0, TOK_NORMAL = 1, TOK_UNKNOWN = 2, TOK_CONTROL = 3,
    TOK_USER_DEFINED = 4, TOK_UNUSED = 5, TOK_BYTE = 6,
};

int tok_type(const slm_tokenizer *t, int32_t id);     /* -1 if out of range */
float tok_score(const slm_tokenizer *t, int32_t id);  /* 0 if out of range */
/* The piece exactly as stored in the vocabulary (e.g. "▁the", "<0x0A>"). */
const char *tok_text(const slm_tokenizer *t, int32_t id, size_t *len);
int32_t tok_unk(const slm_tokenizer *t);              /* -1 if none */

/* ---- internals, for the files in src/tokenizer only --------------------- */

/* Trie of the literally matched tokens (control, unknown, user-defined). */
typedef struct tok_bpe tok_bpe;

typedef struct tok_trie_node {
    int32_t first_child, next_sibling;
    int32_t id;            /* token ending here, or -1 */
    unsigned char byte;
} tok_trie_node;

struct slm_tokenizer {
    int32_t n_vocab;
    char *pool;            /* all piece texts, back to back */
    uint64_t *off;         /* n_vocab + 1 offsets into pool */
    float *score;
    uint8_t *type;
    size_t max_piece_len;

    /* piece text -> id: open addressing, `cap` a power of two, slots hold
     * id + 1 (0 = empty) and the upper half of the hash. */
    uint32_t *slot_id, *slot_hash;
    size_t cap;

    int32_t byte_tok[256]; /* <0xNN> ids, -1 where missing */

    tok_trie_node *trie;   /* node 0 = root */
    int32_t n_trie;
    uint8_t trie_first[32];/* bitmap of the bytes special tokens start with */

    int32_t bos, eos, unk, eot, pad;
    bool add_bos, add_space_prefix;
    bool has_unused;       /* any TOK_UNUSED piece (they are split back) */
    /* Bytes that end the character before an inner U+2581 in some piece that
     * merges may produce. Where the byte before a U+2581 is not in this set,
     * no piece can span that point, so the text is encoded in independent
     * parts there (same result, small heaps). Gemma 3: only '>' (">▁</"). */
    uint8_t before_mark[32];
    int32_t eog[8];
    int n_eog;
    tok_bpe *bpe;          /* byte-level BPE state; NULL for "llama" vocabularies */
};

uint64_t tok_hash(const char *s, size_t n);
/* Array growth shared by the encoders (vocab.c). */
bool tok_grow(void **p, size_t *cap, size_t need, size_t elem);
/* Id of the piece s[0..n) or -1 (any type). */
int32_t tok_find(const slm_tokenizer *t, const char *s, size_t n);
/* Longest literally matched token at s[0..n) that parse_special allows
 * (user-defined always, control/unknown only with it), or -1; *len = its
 * length. */
int32_t tok_match_literal(const slm_tokenizer *t, const unsigned char *s, size_t n, bool parse_special,
                          size_t *len);

/* Longest text either encoder takes (keeps every offset in an int32). */
#define TOK_MAX_TEXT ((size_t)1 << 29)
/* The checks both encoders make on their input: not NULL (unless empty), at
 * most TOK_MAX_TEXT bytes, well-formed UTF-8. */
slm_status tok_check_text(const char *text, size_t len);
/* Both encoders' outer loop: cuts the literal tokens (tok_match_literal) out
 * of text, calling frag(ctx, s, n) for each run of text before, between and
 * after them and lit(ctx, id) for each, in order; stops at the first error. */
slm_status tok_walk_literals(const slm_tokenizer *t, const char *text, size_t len, bool parse_special,
                             slm_status (*frag)(void *ctx, const char *s, size_t n),
                             slm_status (*lit)(void *ctx, int32_t id), void *ctx);

/* bpe.c: reads tokenizer.ggml.pre and tokenizer.ggml.merges into t->bpe
 * (after the common vocabulary is loaded; adjusts add_bos' default). */
slm_status bpe_load(const gguf_file *f, slm_tokenizer *t);
void bpe_free(tok_bpe *b);
slm_status bpe_encode(const slm_tokenizer *t, const char *text, size_t len, bool add_bos, bool parse_special,
                      int32_t **out, size_t *n_out);
/* Bytes of a normal byte-level piece s[0..n): each character mapped back to
 * its byte (a character outside the byte alphabet is copied as is). Returns
 * the full length; writes at most cap bytes. */
size_t bpe_piece_bytes(const char *s, size_t n, char *buf, size_t cap);

#endif
