/* Internals of the Jinja interpreter shared by its files: the arena, values,
 * tokens, the syntax tree and the render state. */
#ifndef SLM_TEMPLATE_JINJA_INT_H
#define SLM_TEMPLATE_JINJA_INT_H

#include <setjmp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "template/jinja.h"

/* Limits that keep any template, however hostile, bounded. */
#define JINJA_MAX_ARENA    (256u << 20)   /* bytes of values and tree */
#define JINJA_MAX_OUTPUT   (16u << 20)    /* bytes rendered */
#define JINJA_MAX_STEPS    2000000        /* loop iterations + calls + filters */
#define JINJA_MAX_DEPTH    64             /* nesting of blocks, calls and expressions */

/* ---- errors: a failing step longjmps back to jinja_render ---------------- */

typedef struct jerr {
    jmp_buf jb;
    slm_status st;
    char msg[400];
} jerr;

_Noreturn void jfail(jerr *e, slm_status st, int line, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

/* ---- arena --------------------------------------------------------------- */

typedef struct jchunk jchunk;
typedef struct jarena {
    jchunk *head;
    size_t total;
    jerr *err;
} jarena;

void *ja_alloc(jarena *a, size_t n);          /* zeroed; fails through err */
char *ja_strndup(jarena *a, const char *s, size_t n);
void ja_free(jarena *a);

/* ---- values -------------------------------------------------------------- */

typedef enum { JV_UNDEF, JV_NONE, JV_BOOL, JV_INT, JV_FLOAT, JV_STR, JV_LIST, JV_DICT, JV_FUNC } jv_type;

typedef struct jlist jlist;
typedef struct jdict jdict;
typedef struct jfunc jfunc;

typedef struct jv {
    jv_type t;
    union {
        bool b;
        int64_t i;
        double f;
        struct { const char *p; size_t n; } s;   /* JV_STR; JV_UNDEF: its name */
        jlist *l;
        jdict *d;
        jfunc *fn;
    } u;
} jv;

struct jlist { size_t n, cap; jv *v; };
struct jdict { size_t n, cap; jv *k; jv *v; bool ns; };  /* keys are strings; insertion order */

struct node;
typedef enum { JF_BUILTIN, JF_METHOD, JF_MACRO } jfunc_kind;
struct jfunc {
    jfunc_kind kind;
    const char *name;
    jv self;                 /* JF_METHOD: the object */
    const struct node *macro;
    struct jscope *scope;    /* JF_MACRO: where it was defined */
};

jv jv_undef(const char *name);
jv jv_none(void);
jv jv_bool(bool b);
jv jv_int(int64_t i);
jv jv_float(double f);
jv jv_str(const char *p, size_t n);           /* not copied */
jv jv_strz(const char *p);
jv jv_list_new(jarena *a, size_t cap);
void jv_list_push(jarena *a, jv list, jv item);
jv jv_dict_new(jarena *a, size_t cap);
void jv_dict_set(jarena *a, jv dict, jv key, jv val);
/* NULL if absent. */
jv *jv_dict_get(jv dict, const char *key, size_t klen);

bool jv_truthy(jv v);
bool jv_equal(jv a, jv b);
/* -1/0/1; false when the two cannot be ordered. */
bool jv_compare(jv a, jv b, int *out);
bool jv_is_number(jv v);                      /* int, float or bool */
double jv_num(jv v);
const char *jv_type_name(jv v);

/* Growable byte buffer (malloc), used for output and temporary strings. */
/* With `arena` set the bytes live in the arena (nothing to free, safe to
 * abandon on an error); else they are malloc'd and the owner frees them. */
typedef struct jbuf { char *p; size_t n, cap; jerr *err; size_t limit; jarena *arena; } jbuf;
void jb_add(jbuf *b, const char *s, size_t n);
void jb_addz(jbuf *b, const char *s);
void jb_addc(jbuf *b, char c);
/* Copies the buffer's bytes into the arena as a string value and empties it. */
jv jb_take(jbuf *b, jarena *a);

/* str(v) as Python prints it (None, True, 1.5, ['a'], {'k': 1}); undefined: "". */
void jv_to_str(jbuf *b, jv v);
/* json.dumps(v, ensure_ascii=False, indent=indent (<0: none), sort_keys).
 * b must be an arena buffer (sorting keys allocates from it). */
void jv_to_json(jbuf *b, jv v, int indent, bool sort_keys, int line);
/* Value as a string: itself if a string, else str(v) in the arena. */
jv jv_as_str(jarena *a, jv v);

/* Parses JSON text into values (objects keep key order). */
jv json_parse(jarena *a, const char *text, size_t len);

/* UTF-8 helpers: code points in s, byte offset of code point i. */
size_t u8_count(const char *s, size_t n);
size_t u8_offset(const char *s, size_t n, size_t cp_index);
bool u8_is_space_at(const char *s, size_t n, size_t *len);   /* Python str.isspace of the char at s */

/* ---- tokens -------------------------------------------------------------- */

typedef enum {
    TK_TEXT, TK_VAR_BEGIN, TK_VAR_END, TK_BLOCK_BEGIN, TK_BLOCK_END,
    TK_NAME, TK_STRING, TK_INT, TK_FLOAT, TK_OP, TK_EOF
} tk_type;

typedef struct token {
    tk_type t;
    int line;
    const char *p;     /* TEXT, NAME, OP: source bytes; STRING: decoded (arena) */
    size_t n;
    int64_t i;
    double f;
} token;

typedef struct tokens { token *v; size_t n, cap; } tokens;

/* Splits the template into tokens applying whitespace control. */
void jinja_lex(jarena *a, const char *src, size_t len, tokens *out);

/* ---- syntax tree --------------------------------------------------------- */

typedef enum {
    /* statements */
    N_TEXT, N_OUTPUT, N_IF, N_FOR, N_SET, N_SET_ATTR, N_SET_BLOCK, N_MACRO, N_BREAK, N_CONTINUE,
    /* expressions */
    E_CONST, E_NAME, E_ATTR, E_ITEM, E_SLICE, E_CALL, E_FILTER, E_TEST, E_NEG, E_POS, E_NOT,
    E_BIN, E_AND, E_OR, E_CONCAT, E_COND, E_LIST, E_DICT, E_COMPARE
} node_kind;

typedef enum { OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_FLOORDIV, OP_MOD, OP_POW,
               OP_EQ, OP_NE, OP_LT, OP_GT, OP_LE, OP_GE, OP_IN, OP_NOTIN } bin_op;

typedef struct nlist { struct node **v; int n, cap; } nlist;

typedef struct node {
    node_kind kind;
    int line;
    int op;                /* bin_op; E_TEST: 1 when negated ("is not") */
    jv val;                /* E_CONST value; names (variable, attribute, filter, test, set target, macro) */
    struct node *a, *b, *c;
    nlist args;            /* call/filter/test arguments, list items, dict k,v pairs, for targets, macro params */
    const char **kw;       /* parallel to args for calls: keyword name or NULL; macro params: NULL */
    nlist defs;            /* macro: default values parallel to params (NULL entries: none) */
    nlist body, orelse;
} node;

void nl_push(jarena *a, nlist *l, node *n);

/* Parses tokens into a statement list. */
nlist jinja_parse(jarena *a, jerr *e, const tokens *tk);

/* ---- render state -------------------------------------------------------- */

typedef struct jscope { struct jscope *parent; jv vars; } jscope;

typedef struct jrender {
    jarena *a;
    jerr *e;
    jbuf *out;
    jscope *globals;       /* context variables and built-in functions */
    long steps;
    int depth;
    int loop_ctl;          /* 1: break, 2: continue pending */
    const jinja_options *opt;
} jrender;

void jr_step(jrender *r, int line);
/* Charges work proportional to `bytes` (string and list operations) to the step budget. */
void jr_work(jrender *r, size_t bytes, int line);
void jinja_exec(jrender *r, jscope *sc, const nlist *body);

/* Built-ins (builtins.c). Unknown names are SLM_ERR_UNSUPPORTED. */
bool jinja_filter_known(const char *name, size_t n);
bool jinja_test_known(const char *name, size_t n);
jv jinja_apply_filter(jrender *r, jscope *sc, const node *n, jv v);
bool jinja_apply_test(jrender *r, jscope *sc, const node *n, jv v);
/* obj.name: a method bound to obj, or undefined when obj has none by that name. */
jv jinja_method(jrender *r, jv obj, const char *name, size_t n);
/* Calls a built-in or method with evaluated arguments. */
jv jinja_call_builtin(jrender *r, const jfunc *f, int line, int argc, const jv *argv, const char **kw);
void jinja_add_globals(jrender *r, jv dict);

/* String operations shared by filters and methods (methods.c). mode for
 * strip: 0 both ends, 1 left, 2 right; chars: none/undefined = whitespace. */
jv jstr_strip(jrender *r, jv s, jv chars, int mode, int line);
typedef enum { CASE_UPPER, CASE_LOWER, CASE_CAPITALIZE, CASE_TITLE_JINJA, CASE_TITLE_PY } case_mode;
jv jstr_case(jrender *r, jv s, case_mode m);
jv jstr_replace(jrender *r, jv s, jv old, jv new_, int64_t count, int line);
/* environment.getattr for filters: dotted names ("a.b") walk attributes. */
jv jinja_getattr_path(jrender *r, jv obj, jv path, int line);

/* Evaluated call arguments (shared by calls and filters). */
typedef struct jargs { int n; jv v[16]; const char *kw[16]; } jargs;
void jinja_eval_args(jrender *r, jscope *sc, const node *n, jargs *out);
jv jinja_eval_in(jrender *r, jscope *sc, const node *n);

#endif
