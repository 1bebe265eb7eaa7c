/* Structured output for `slm run` and `slm chat`: --grammar-file F,
 * --grammar "GBNF", --json-schema F, --json (docs/STRUCTURED.md). */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "measure.h"

int cli_grammar_parse_opt(cli_gen_opts *o, int argc, char **argv, int *i) {
    const char *a = argv[*i];
    bool is_json = !strcmp(a, "--json");
    if (!is_json && strcmp(a, "--grammar-file") && strcmp(a, "--grammar") && strcmp(a, "--json-schema")) return 0;
    if ((o->grammar_file || o->grammar_text || o->json_schema_file || o->json_object)) {
        fprintf(stderr, "slm: give only one of --grammar-file, --grammar, --json-schema, --json\n");
        return -1;
    }
    if (is_json) { o->json_object = true; return 1; }
    if (*i + 1 >= argc) { fprintf(stderr, "slm: %s needs a value\n", a); return -1; }
    const char *v = argv[++*i];
    if (!strcmp(a, "--grammar-file")) o->grammar_file = v;
    else if (!strcmp(a, "--grammar")) o->grammar_text = v;
    else o->json_schema_file = v;
    return 1;
}

void cli_print_grammar_help(FILE *out) {
    fputs("      --grammar-file F    constrain the output to the GBNF grammar in F (llama.cpp's syntax)\n"
          "      --grammar TEXT      the same with the grammar given inline\n"
          "      --json-schema F     constrain the output to JSON valid against the JSON Schema in F\n"
          "      --json              constrain the output to one JSON object\n"
          "                          (with any of these, output that the token limit cuts short is\n"
          "                          reported as truncated, exit status 3)\n", out);
}

int cli_grammar_open(cli_engine *e, const cli_gen_opts *o) {
    const char *file = o->grammar_file ? o->grammar_file : o->json_schema_file;
    bool schema = o->json_schema_file || o->json_object;
    if (!file && !o->grammar_text && !o->json_object) return 0;
    char *text = NULL;
    size_t len = 0;
    if (file) {
        text = measure_read_file(NULL, file, &len);
        if (!text) return 1;
    }
    const char *src = text ? text : o->json_object ? "{\"type\":\"object\"}" : o->grammar_text;
    if (!text) len = strlen(src);
    slm_status st = schema ? slm_grammar_new_json_schema(e->model, src, len, &e->grammar)
                           : slm_grammar_new(e->model, src, len, &e->grammar);
    free(text);
    if (st) {
        fprintf(stderr, "slm: %s%s%s\n", file ? file : "", file ? ": " : "", slm_last_error());
        return 1;
    }
    if (slm_sampler_set_grammar(e->sampler, e->grammar)) {
        fprintf(stderr, "slm: %s\n", slm_last_error());
        return 1;
    }
    return 0;
}
