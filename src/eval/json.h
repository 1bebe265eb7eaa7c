/* A small JSON reader (RFC 8259) for one value per line of a JSONL file:
 * objects, arrays, strings (escapes and surrogate pairs decoded to UTF-8),
 * numbers, true/false/null. Everything is allocated from one arena that
 * json_free releases. Strings containing U+0000 or invalid UTF-8 are refused;
 * nesting is limited to JSON_MAX_DEPTH. */
#ifndef SLM_EVAL_JSON_H
#define SLM_EVAL_JSON_H

#include <stdbool.h>
#include <stddef.h>

#define JSON_MAX_DEPTH 32

typedef enum { JSON_NULL, JSON_BOOL, JSON_NUM, JSON_STR, JSON_ARR, JSON_OBJ } json_kind;

typedef struct json_val json_val;
struct json_val {
    json_kind kind;
    bool b;
    double num;
    char *str;            /* NUL-terminated (no inner NUL) */
    size_t len;
    size_t n;             /* array elements / object members */
    json_val *items;      /* array elements, object values */
    char **keys;          /* object keys */
};

typedef struct json_doc json_doc;

/* Parses exactly one value (surrounding whitespace allowed). On failure
 * returns NULL and writes a short reason with the byte offset into err. */
json_doc *ejson_parse(const char *text, size_t len, char *err, size_t err_cap);
const json_val *ejson_root(const json_doc *d);
void ejson_free(json_doc *d);

/* The member named key of an object, or NULL. */
const json_val *ejson_get(const json_val *obj, const char *key);

#endif
