/* libFuzzer target: arbitrary bytes into the JSONL task parser
 * (slm_task_parse) and the JSON reader beneath it (ejson_parse).
 *
 * Checked on every input:
 *   - no crash, leak or out-of-bounds access (ASan/UBSan);
 *   - the reader: on success every string is NUL-terminated at its length,
 *     free of inner NULs and valid UTF-8; objects have one key per value;
 *     on failure the message is non-empty;
 *   - the task parser: on failure an error message naming a line or the
 *     missing items and no task; on success at least one item, each a
 *     multiple-choice item with 2..64 choices or a generation item. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/utf8.h"
#include "eval/json.h"
#include "slm.h"

static void check_value(const json_val *v, int depth) {
    if (depth > JSON_MAX_DEPTH + 1) abort();
    switch (v->kind) {
    case JSON_STR:
        if (strlen(v->str) != v->len || !utf8_validate(v->str, v->len, NULL)) abort();
        break;
    case JSON_OBJ:
        for (size_t i = 0; i < v->n; i++) {
            if (!v->keys[i] || !utf8_validate(v->keys[i], strlen(v->keys[i]), NULL)) abort();
            check_value(&v->items[i], depth + 1);
        }
        break;
    case JSON_ARR:
        for (size_t i = 0; i < v->n; i++) check_value(&v->items[i], depth + 1);
        break;
    default:
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[200] = "";
    json_doc *d = ejson_parse((const char *)data, size, err, sizeof err);
    if (d) check_value(ejson_root(d), 0);
    else if (!err[0]) abort();
    ejson_free(d);

    slm_task *t = (slm_task *)1;
    slm_status st = slm_task_parse((const char *)data, size, &t);
    if (st) {
        if (t || !slm_last_error()[0]) abort();
        return 0;
    }
    size_t n = slm_task_n_items(t);
    if (n == 0) abort();
    for (size_t i = 0; i < n; i++) {
        int c = slm_task_n_choices(t, i);
        if (c != 0 && (c < 2 || c > 64)) abort();
    }
    slm_task_free(t);
    return 0;
}
