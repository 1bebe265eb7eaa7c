/* GBNF parser, matcher and JSON Schema converter (issue 17); with the real
 * model also token checks against the full mask and the sampler hook. */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "eval/json.h"
#include "slm.h"
#include "testlib.h"

/* Does `text` (whole) match the grammar? -1 if the grammar does not load. */
static int matches(const char *gbnf, const char *text) {
    slm_grammar *g;
    if (slm_grammar_new(NULL, gbnf, strlen(gbnf), &g)) return -1;
    int ok = slm_grammar_accept_bytes(g, text, strlen(text)) == SLM_OK && slm_grammar_can_end(g);
    slm_grammar_free(g);
    return ok;
}

static void expect_error(const char *gbnf, const char *needle) {
    slm_grammar *g = NULL;
    slm_status st = slm_grammar_new(NULL, gbnf, strlen(gbnf), &g);
    CHECKF(st != SLM_OK && strstr(slm_last_error(), needle), "grammar %s: status %d, message '%s', wanted '%s'",
           gbnf, st, slm_last_error(), needle);
    slm_grammar_free(g);
}

static void test_parser(void) {
    /* accepted forms */
    CHECK(matches("root ::= \"abc\"", "abc") == 1);
    CHECK(matches("root ::= \"abc\"", "ab") == 0);
    CHECK(matches("root ::= \"a\" | \"b\"", "b") == 1);
    CHECK(matches("root ::= (\"a\" | \"b\")+ \"c\"", "abbac") == 1);
    CHECK(matches("root ::= (\"a\" | \"b\")+ \"c\"", "c") == 0);
    CHECK(matches("root ::= [a-z]* [0-9]?", "hello7") == 1);
    CHECK(matches("root ::= [^a-z]+", "ABC") == 1);
    CHECK(matches("root ::= [^a-z]+", "AbC") == 0);
    CHECK(matches("root ::= \"x\"{3}", "xxx") == 1);
    CHECK(matches("root ::= \"x\"{3}", "xx") == 0);
    CHECK(matches("root ::= \"x\"{2,}", "xxxxx") == 1);
    CHECK(matches("root ::= \"x\"{2,}", "x") == 0);
    CHECK(matches("root ::= \"x\"{1,3}", "xxx") == 1);
    CHECK(matches("root ::= \"x\"{1,3}", "xxxx") == 0);
    CHECK(matches("root ::= \"x\"{0,2} \"y\"", "y") == 1);
    CHECK(matches("root ::= . . .", "a\xc3\xa9z") == 1);           /* UTF-8: 3 characters */
    CHECK(matches("root ::= \"\\u00e9\" \"\\x41\" \"\\n\\t\\\\\\\"\"", "\xc3\xa9" "A\n\t\\\"") == 1);
    CHECK(matches("root ::= [\\u4e00-\\u9fff]+", "\xe4\xb8\xad\xe6\x96\x87") == 1);
    CHECK(matches("root ::= [\\u4e00-\\u9fff]+", "a") == 0);
    CHECK(matches("# comment\nroot ::= a b # trailing\na ::= \"a\"\nb ::= \"b\"\n", "ab") == 1);
    CHECK(matches("root ::= (\n  \"a\"\n  | \"b\"\n)\n", "b") == 1);
    CHECK(matches("root ::= \"a\" |\n  \"b\"", "b") == 1);
    CHECK(matches("root ::= \"(\" root \")\" | \"\"", "((()))") == 1);   /* recursion */
    CHECK(matches("root ::= \"(\" root \")\" | \"\"", "(()") == 0);
    CHECK(matches("root ::= [a-]+", "a-a") == 1);                        /* '-' before ']' is literal */
    CHECK(matches("root ::= [\\]]", "]") == 1);
    CHECK(matches("root ::= x\nx ::= \"1\"\nx ::= \"2\"", "2") == 1);     /* last definition wins */
    CHECK(matches("root ::= (\"a\"?)* \"b\"", "aab") == 1);              /* nullable repetition: no hang */
    CHECK(matches("root ::= a\na ::= b\nb ::= a | \"z\"", "z") == 1);     /* tail cycle: no hang */
    {   /* nested ambiguous repetitions: the stacks grow exponentially with the
         * text; the matcher must refuse quickly and clearly, not run for minutes */
        char gbnf[64] = "root ::= \"a\"", text[257];
        for (int i = 0; i < 30; i++) strcat(gbnf, "+");
        memset(text, 'a', 256);
        text[256] = 0;
        slm_grammar *g;
        CHECK(slm_grammar_new(NULL, gbnf, strlen(gbnf), &g) == SLM_OK);
        slm_status st = slm_grammar_accept_bytes(g, text, strlen(text));   /* ~0.1 s; minutes before the limit */
        CHECKF(st == SLM_ERR_NOMEM && strstr(slm_last_error(), "too ambiguous"), "status %d, message '%s'", st,
               slm_last_error());
        slm_grammar_free(g);
        CHECK(matches("root ::= \"a\"++", "aaaa") == 1);   /* a modest nesting still works */
    }
    CHECK(matches("root ::= \"\"", "") == 1);
    /* errors, with positions */
    expect_error("", "empty grammar");
    expect_error("# only a comment\n", "empty grammar");
    expect_error("start ::= \"a\"", "no rule named 'root'");
    expect_error("root ::= foo", "line 1, column 10: undefined rule 'foo'");
    expect_error("root ::= \"a\"\nx ::= \"b\" \"c", "line 2, column 11: unterminated string literal");
    expect_error("root ::= [a-z", "unterminated character class");
    expect_error("root = \"a\"", "line 1, column 6: expecting ::=");
    expect_error("root ::= (\"a\"", "expecting ')'");
    expect_error("root ::= \"a\")", "unmatched ')'");
    expect_error("root ::= * \"a\"", "'*' needs an item before it");
    expect_error("root ::= \"\\q\"", "unknown escape");
    expect_error("root ::= \"\\x4\"", "expecting 2 hex digits");
    expect_error("root ::= \"a\"{3,1}", "n < m");
    expect_error("root ::= \"a\"{99999}", "above the limit");
    expect_error("root ::= <think>", "token references");
    expect_error("root ::= root \"a\" | \"b\"", "rule 'root' is left-recursive");
    expect_error("root ::= expr\nexpr ::= term \"+\" expr | term\nterm ::= expr \"*\" \"x\" | \"x\"", "left-recursive");
    expect_error("root ::= a \"x\"\na ::= \"b\"? root", "left-recursive");
    expect_error("root ::= \"a\"\n  | \"b\"", "line 2, column 3: expecting a rule name");
}

static int schema_doc(const char *schema, const char *doc) {
    char *gbnf = NULL;
    if (slm_json_schema_to_gbnf(schema, strlen(schema), &gbnf)) {
        fprintf(stderr, "schema %s: %s\n", schema, slm_last_error());
        return -1;
    }
    int r = matches(gbnf, doc);
    if (r < 0) fprintf(stderr, "schema %s gives a grammar that does not load: %s\n%s\n", schema, slm_last_error(), gbnf);
    free(gbnf);
    return r;
}

static void expect_schema_error(const char *schema, slm_status want, const char *needle) {
    char *gbnf = NULL;
    slm_status st = slm_json_schema_to_gbnf(schema, strlen(schema), &gbnf);
    CHECKF(st == want && strstr(slm_last_error(), needle), "schema %s: status %d, '%s'; wanted %d '%s'", schema, st,
           slm_last_error(), want, needle);
    free(gbnf);
}

static void test_schema(void) {
    const char *person = "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\",\"maxLength\":5},"
                         "\"age\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":150},"
                         "\"tags\":{\"type\":\"array\",\"items\":{\"enum\":[\"a\",\"b\"]},\"maxItems\":2}},"
                         "\"required\":[\"name\",\"age\"],\"additionalProperties\":false}";
    CHECK(schema_doc(person, "{\"name\":\"Ann\",\"age\":30}") == 1);
    CHECK(schema_doc(person, "{ \"name\": \"Ann\",\n  \"age\": 150, \"tags\": [\"a\", \"b\"] }") == 1);
    CHECK(schema_doc(person, "{\"name\":\"Ann\"}") == 0);                    /* missing required */
    CHECK(schema_doc(person, "{\"name\":\"Ann\",\"age\":151}") == 0);        /* maximum */
    CHECK(schema_doc(person, "{\"name\":\"Ann\",\"age\":-1}") == 0);         /* minimum */
    CHECK(schema_doc(person, "{\"name\":\"Annabel\",\"age\":3}") == 0);      /* maxLength */
    CHECK(schema_doc(person, "{\"name\":\"A\",\"age\":3,\"tags\":[\"a\",\"b\",\"a\"]}") == 0); /* maxItems */
    CHECK(schema_doc(person, "{\"name\":\"A\",\"age\":3,\"x\":1}") == 0);     /* additionalProperties false */
    CHECK(schema_doc(person, "{\"name\":\"A\",\"age\":03}") == 0);           /* leading zero */
    CHECK(schema_doc(person, "{\"name\":\"A\",\"age\":3} ") == 0);           /* nothing after the root */
    /* maps: any key but the required ones, which come first with their own schema */
    const char *map = "{\"type\":\"object\",\"required\":[\"id\"],\"additionalProperties\":{\"type\":\"boolean\"}}";
    CHECK(schema_doc(map, "{\"id\":true,\"ok\":true,\"idx\":false,\"i\":true,\"\u00e9\":false}") == 1);
    CHECK(schema_doc(map, "{\"id\":true,\"id\":true}") == 0);
    CHECK(schema_doc(map, "{\"id\":true,\"ok\":3}") == 0);
    CHECK(schema_doc(map, "{\"ok\":true}") == 0);
    /* declared properties: the grammar keeps to them even when more are allowed */
    const char *open_obj = "{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"integer\"}},\"required\":[\"id\"],"
                           "\"additionalProperties\":true}";
    CHECK(schema_doc(open_obj, "{\"id\":1}") == 1);
    CHECK(schema_doc(open_obj, "{\"id\":1,\"x\":2}") == 0);
    /* integer ranges across signs and digit counts */
    const char *rng = "{\"type\":\"integer\",\"minimum\":-37,\"maximum\":1234}";
    int lo = -37, hi = 1234;
    for (int v = -200; v <= 2000; v++) {
        char buf[32];
        snprintf(buf, sizeof buf, "%d", v);
        int want = v >= lo && v <= hi;
        int got = schema_doc(rng, buf);
        if (got != want) { CHECKF(got == want, "range %d..%d: %d gives %d", lo, hi, v, got); break; }
    }
    static const struct { long lo, hi; } ranges[] = {{0, 99}, {-1000, -10}, {1900, 2100}, {-5, 5}, {7, 7}, {10, 1000}, {-99999, 123456}};
    for (size_t k = 0; k < sizeof ranges / sizeof *ranges; k++) {
        char sch[160];
        snprintf(sch, sizeof sch, "{\"type\":\"integer\",\"minimum\":%ld,\"maximum\":%ld}", ranges[k].lo, ranges[k].hi);
        char *gbnf = NULL;
        slm_grammar *g = NULL;
        CHECK(slm_json_schema_to_gbnf(sch, strlen(sch), &gbnf) == SLM_OK && gbnf);
        CHECKF(gbnf && strlen(gbnf) < 20000, "range grammar of %zu bytes", gbnf ? strlen(gbnf) : 0);
        CHECK(gbnf && slm_grammar_new(NULL, gbnf, strlen(gbnf), &g) == SLM_OK);
        int wrong = 0;
        for (long v = -200000; g && v <= 200000; v += (v > -3000 && v < 3000) ? 1 : 97) {
            char buf[32];
            snprintf(buf, sizeof buf, "%ld", v);
            slm_grammar_reset(g);
            bool got = slm_grammar_accept_bytes(g, buf, strlen(buf)) == SLM_OK && slm_grammar_can_end(g);
            wrong += got != (v >= ranges[k].lo && v <= ranges[k].hi);
        }
        CHECKF(wrong == 0, "range %ld..%ld: %d values misjudged", ranges[k].lo, ranges[k].hi, wrong);
        slm_grammar_free(g);
        free(gbnf);
    }
    CHECK(schema_doc("{\"type\":\"integer\",\"minimum\":1000000}", "999999") == 0);
    CHECK(schema_doc("{\"type\":\"integer\",\"minimum\":1000000}", "1000000") == 1);
    CHECK(schema_doc("{\"type\":\"integer\",\"minimum\":1000000}", "123456789012345") == 1);
    CHECK(schema_doc("{\"type\":\"integer\",\"exclusiveMinimum\":5}", "5") == 0);
    CHECK(schema_doc("{\"type\":\"integer\",\"exclusiveMinimum\":5}", "6") == 1);
    CHECK(schema_doc("{\"type\":\"integer\",\"exclusiveMinimum\":5}", "60000") == 1);
    /* formats */
    CHECK(schema_doc("{\"type\":\"string\",\"format\":\"date\"}", "\"2024-02-29\"") == 1);
    CHECK(schema_doc("{\"type\":\"string\",\"format\":\"date\"}", "\"2023-02-29\"") == 0);
    CHECK(schema_doc("{\"type\":\"string\",\"format\":\"date\"}", "\"1900-02-29\"") == 0);
    CHECK(schema_doc("{\"type\":\"string\",\"format\":\"date\"}", "\"2000-02-29\"") == 1);
    CHECK(schema_doc("{\"type\":\"string\",\"format\":\"date\"}", "\"2023-04-31\"") == 0);
    CHECK(schema_doc("{\"type\":\"string\",\"format\":\"date-time\"}", "\"2023-04-30T23:59:59.5+02:00\"") == 1);
    CHECK(schema_doc("{\"type\":\"string\",\"format\":\"time\"}", "\"24:00:00Z\"") == 0);
    CHECK(schema_doc("{\"type\":\"string\",\"format\":\"uuid\"}", "\"123e4567-e89b-12d3-a456-426614174000\"") == 1);
    /* refs, recursion, anyOf, type lists, const, free-form */
    const char *tree = "{\"$ref\":\"#/$defs/node\",\"$defs\":{\"node\":{\"type\":\"object\",\"properties\":"
                       "{\"v\":{\"type\":\"integer\"},\"kids\":{\"type\":\"array\",\"items\":{\"$ref\":\"#/$defs/node\"}}},"
                       "\"required\":[\"v\"],\"additionalProperties\":false}}}";
    CHECK(schema_doc(tree, "{\"v\":1,\"kids\":[{\"v\":2},{\"v\":3,\"kids\":[]}]}") == 1);
    CHECK(schema_doc(tree, "{\"v\":1,\"kids\":[{\"w\":2}]}") == 0);
    CHECK(schema_doc("{\"anyOf\":[{\"type\":\"null\"},{\"type\":\"number\"}]}", "-1.5e3") == 1);
    CHECK(schema_doc("{\"type\":[\"string\",\"null\"]}", "null") == 1);
    CHECK(schema_doc("{\"type\":[\"string\",\"null\"]}", "1") == 0);
    CHECK(schema_doc("{\"const\":{\"a\":[1,\"x\"]}}", "{\"a\":[1,\"x\"]}") == 1);
    CHECK(schema_doc("{\"enum\":[\"say \\\"hi\\\"\", 2]}", "\"say \\\"hi\\\"\"") == 1);
    CHECK(schema_doc("{\"type\":\"object\"}", "{\"k\": [1, {\"x\": null}], \"s\": \"\\u00e9\\n\"}") == 1);
    CHECK(schema_doc("{}", "[true, false]") == 1);
    CHECK(schema_doc("{\"type\":\"string\",\"minLength\":2}", "\"\\ud83d\"") == 0); /* no lone surrogates */
    CHECK(schema_doc("{\"type\":\"array\",\"minItems\":2,\"items\":{\"type\":\"boolean\"}}", "[true]") == 0);
    /* errors */
    expect_schema_error("{\"type\":\"string\",\"pattern\":\"^a\"}", SLM_ERR_UNSUPPORTED, "keyword 'pattern' is not supported");
    expect_schema_error("{\"properties\":{\"a\":{\"uniqueItems\":true}}}", SLM_ERR_UNSUPPORTED, "'uniqueItems' is not supported (at #/properties/a)");
    expect_schema_error("{\"type\":\"string\",\"format\":\"email\"}", SLM_ERR_UNSUPPORTED, "format 'email'");
    expect_schema_error("{\"type\":\"number\",\"maximum\":3.5}", SLM_ERR_UNSUPPORTED, "not expressible");
    expect_schema_error("{\"type\":\"integer\",\"minimum\":5,\"maximum\":4}", SLM_ERR_INVALID_ARG, "no integer");
    expect_schema_error("{\"$ref\":\"#/$defs/missing\"}", SLM_ERR_UNSUPPORTED, "local reference that resolves");
    expect_schema_error("{\"$ref\":\"http://x/y\"}", SLM_ERR_UNSUPPORTED, "local reference");
    expect_schema_error("false", SLM_ERR_INVALID_ARG, "admits no value");
    expect_schema_error("{\"type\":\"object\",\"required\":[\"x\"],\"additionalProperties\":false}", SLM_ERR_INVALID_ARG, "required");
    expect_schema_error("{\"type\":", SLM_ERR_FORMAT, "not valid JSON");
    expect_schema_error("{\"enum\":[1,2],\"type\":\"string\"}", SLM_ERR_INVALID_ARG, "enum");
}

/* With the model: single-token checks agree with the full mask, and a
 * constrained generation from random logits always stays in the grammar
 * (whole softmax, then slm's default chain at temperature 1). */
static void test_with_model(void) {
    const char *path = test_model_path();
    if (!path) { test_skip("no model (SLM_TEST_MODEL)"); return; }
    slm_model *m;
    if (slm_model_open(path, &m)) { test_skip("model does not open: %s", slm_last_error()); return; }
    const int nv = slm_vocab_size(m);
    const char *schema = "{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\",\"maxLength\":12},"
                         "\"n\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":99},\"ok\":{\"type\":\"boolean\"}},"
                         "\"required\":[\"city\",\"n\",\"ok\"],\"additionalProperties\":false}";
    slm_grammar *g;
    double t0 = (double)clock() / CLOCKS_PER_SEC;
    CHECK(slm_grammar_new_json_schema(m, schema, strlen(schema), &g) == SLM_OK);
    double t_build = (double)clock() / CLOCKS_PER_SEC - t0;
    float *logits = malloc((size_t)nv * sizeof *logits), *masked = malloc((size_t)nv * sizeof *masked);
    slm_sampler_params sp;
    slm_sampler_default_params(&sp);
    sp.temperature = 1.0f; sp.top_k = 0; sp.top_p = 1.0f; sp.min_p = 0.0f;
    unsigned rng = 12345;
    int docs = 0, mismatches = 0;
    double t_mask = 0;
    int n_mask = 0;
    for (int d = 0; d < 6; d++) {
        sp.seed = (uint64_t)d;
        if (d == 3) slm_sampler_default_params(&sp), sp.temperature = 1.0f; /* top-k 40: the candidate scan after a refusal */
        slm_sampler *s;
        CHECK(slm_sampler_new(&sp, nv, &s) == SLM_OK);
        slm_grammar_reset(g);
        CHECK(slm_sampler_set_grammar(s, g) == SLM_OK);
        if (d == 0) { /* a grammar without the model's vocabulary is refused */
            slm_grammar *g0;
            CHECK(slm_grammar_new(NULL, "root ::= \"a\"", 12, &g0) == SLM_OK);
            CHECK(slm_sampler_set_grammar(s, g0) == SLM_ERR_INVALID_ARG);
            slm_grammar_free(g0);
            CHECK(slm_sampler_set_grammar(s, g) == SLM_OK);
        }
        char text[4096];
        size_t tl = 0;
        for (int step = 0; step < 300; step++) {
            for (int i = 0; i < nv; i++) { rng = rng * 1664525u + 1013904223u; logits[i] = (float)(rng >> 8) / (1 << 24) * 4.0f; }
            if (step % 7 == 0) { /* the full mask agrees with single-token checks on sampled ids */
                memcpy(masked, logits, (size_t)nv * sizeof *masked);
                double a = (double)clock() / CLOCKS_PER_SEC;
                slm_grammar_apply(g, masked);
                t_mask += (double)clock() / CLOCKS_PER_SEC - a;
                n_mask++;
                for (int k = 0; k < 3000; k++) {
                    int t = (int)((unsigned)(k * 2654435761u + (unsigned)step) % (unsigned)nv);
                    if ((masked[t] != -INFINITY) != slm_grammar_allows(g, t)) mismatches++;
                }
            }
            slm_token t = slm_sampler_sample(s, logits);
            CHECK(t >= 0);
            if (t < 0) break;
            CHECK(slm_grammar_accept(g, t) == SLM_OK);
            if (slm_token_is_eog(m, t)) break;
            char piece[256];
            size_t n = slm_token_to_bytes(m, t, false, piece, sizeof piece);
            if (tl + n < sizeof text) { memcpy(text + tl, piece, n); tl += n; }
        }
        text[tl] = 0;
        CHECKF(slm_grammar_ended(g), "document %d did not end: %s", d, text);
        /* the text read back through a fresh grammar matches */
        slm_grammar *g2;
        CHECK(slm_grammar_new_json_schema(NULL, schema, strlen(schema), &g2) == SLM_OK);
        CHECKF(slm_grammar_accept_bytes(g2, text, tl) == SLM_OK && slm_grammar_can_end(g2), "doc %s", text);
        slm_grammar_free(g2);
        if (d == 0) fprintf(stderr, "random-logit document: %s\n", text);
        docs++;
        slm_sampler_free(s);
    }
    CHECKF(mismatches == 0, "%d tokens where the mask and the single check disagree", mismatches);
    fprintf(stderr, "grammar build (with vocabulary index) %.1f ms; %d masks, %.2f ms each (cached states included)\n",
            t_build * 1e3, n_mask, n_mask ? t_mask * 1e3 / n_mask : 0.0);
    free(logits);
    free(masked);
    slm_grammar_free(g);
    slm_model_close(m);
}

/* Grammars on one model share its vocabulary index (built once, on first
 * use, by whichever thread gets there first). Several threads make the first
 * grammars at once; then two grammars walked alike give the same masks, and
 * one keeps working, in states it has not masked yet, after the other is
 * freed (ASan would see a use after free). */
#define SHARED_GBNF "root ::= \"{\" ws \"\\\"a\\\":\" ws num ws \"}\"\nnum ::= [0-9]+\nws ::= [ \\t\\n]*"

typedef struct {
    const slm_model *m;
    float *masked;      /* zero logits after the initial state's mask */
    slm_status st;
} shared_job;

static void *make_grammar(void *arg) {
    shared_job *j = arg;
    slm_grammar *g;
    j->st = slm_grammar_new(j->m, SHARED_GBNF, strlen(SHARED_GBNF), &g);
    if (!j->st) {
        slm_grammar_apply(g, j->masked);
        slm_grammar_free(g);
    }
    return NULL;
}

/* Do g and h allow the same tokens in their current states? */
static bool same_mask(slm_grammar *g, slm_grammar *h, float *a, float *b, int nv) {
    memset(a, 0, (size_t)nv * sizeof *a);
    memset(b, 0, (size_t)nv * sizeof *b);
    int na = slm_grammar_apply(g, a), nb = slm_grammar_apply(h, b);
    for (int i = 0; i < nv; i++)
        if ((a[i] == -INFINITY) != (b[i] == -INFINITY)) return false;
    return na == nb && na > 0;
}

static void test_shared_index(void) {
    const char *path = test_model_path();
    if (!path) { test_skip("no model (SLM_TEST_MODEL)"); return; }
    slm_model *m;
    if (slm_model_open(path, &m)) { test_skip("model does not open: %s", slm_last_error()); return; }
    const int nv = slm_vocab_size(m);
    enum { NT = 3 };
    shared_job jobs[NT];
    pthread_t th[NT];
    for (int i = 0; i < NT; i++) {
        jobs[i] = (shared_job){ m, calloc((size_t)nv, sizeof(float)), SLM_ERR_INVALID_ARG };
        CHECK(jobs[i].masked && pthread_create(&th[i], NULL, make_grammar, &jobs[i]) == 0);
    }
    for (int i = 0; i < NT; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < NT; i++) {
        CHECKF(jobs[i].st == SLM_OK, "thread %d: %s", i, slm_last_error());
        CHECK(i == 0 || !memcmp(jobs[i].masked, jobs[0].masked, (size_t)nv * sizeof(float)));
    }
    for (int i = 0; i < NT; i++) free(jobs[i].masked);

    float *a = malloc((size_t)nv * sizeof *a), *b = malloc((size_t)nv * sizeof *b);
    slm_grammar *g1, *g2, *g3;
    double t0 = (double)clock() / CLOCKS_PER_SEC;
    CHECK(slm_grammar_new(m, SHARED_GBNF, strlen(SHARED_GBNF), &g1) == SLM_OK);
    double t_new = (double)clock() / CLOCKS_PER_SEC - t0;
    CHECK(slm_grammar_new(m, SHARED_GBNF, strlen(SHARED_GBNF), &g2) == SLM_OK);
    const char *steps[] = { "{", " \"a\":", " 1", "2" };
    for (int k = 0; k < 3; k++) {   /* the last step is left for after g1 is gone */
        CHECKF(same_mask(g1, g2, a, b, nv), "masks differ before step %d", k);
        CHECK(slm_grammar_accept_bytes(g1, steps[k], strlen(steps[k])) == SLM_OK);
        CHECK(slm_grammar_accept_bytes(g2, steps[k], strlen(steps[k])) == SLM_OK);
    }
    slm_grammar_free(g1);
    CHECK(slm_grammar_accept_bytes(g2, steps[3], strlen(steps[3])) == SLM_OK);
    CHECK(slm_grammar_new(m, SHARED_GBNF, strlen(SHARED_GBNF), &g3) == SLM_OK);
    for (int k = 0; k < 4; k++) CHECK(slm_grammar_accept_bytes(g3, steps[k], strlen(steps[k])) == SLM_OK);
    CHECK(same_mask(g2, g3, a, b, nv));
    slm_token close = -1;
    for (int i = 0; i < nv && close < 0; i++) {   /* a token that closes the object */
        char piece[8];
        if (b[i] != -INFINITY && slm_token_to_bytes(m, i, false, piece, sizeof piece) == 1 && piece[0] == '}') close = i;
    }
    CHECK(close >= 0 && slm_grammar_allows(g2, close) && slm_grammar_accept(g2, close) == SLM_OK);
    CHECK(slm_grammar_can_end(g2));
    slm_grammar_free(g3);
    slm_grammar_free(g2);
    free(a);
    free(b);
    fprintf(stderr, "a grammar on a model whose vocabulary index exists: %.2f ms CPU\n", t_new * 1e3);
    slm_model_close(m);
}

/* tests/fixtures/grammar/compat.jsonl: grammars with strings both slm and
 * llama.cpp accept or reject, and grammars both refuse to load (checked
 * against llama.cpp itself by bench/grammar_llamacpp.sh). */
static void test_compat_corpus(void) {
    size_t len;
    char *text = test_read_file("tests/fixtures/grammar/compat.jsonl", &len);
    CHECK(text != NULL);
    if (!text) return;
    int n_grammars = 0, n_strings = 0;
    for (char *line = text, *next; line < text + len; line = next) {
        char *nl = memchr(line, '\n', (size_t)(text + len - line));
        next = nl ? nl + 1 : text + len;
        size_t ll = (size_t)((nl ? nl : text + len) - line);
        if (ll == 0) continue;
        char err[200];
        json_doc *d = ejson_parse(line, ll, err, sizeof err);
        CHECKF(d != NULL, "compat.jsonl: %s", err);
        if (!d) continue;
        const json_val *r = ejson_root(d), *gv = ejson_get(r, "grammar"), *er = ejson_get(r, "error");
        slm_grammar *g = NULL;
        slm_status st = slm_grammar_new(NULL, gv->str, gv->len, &g);
        bool want_error = er && er->kind == JSON_BOOL && er->b;
        CHECKF((st != SLM_OK) == want_error, "compat grammar %s: load status %d (%s)", gv->str, st, st ? slm_last_error() : "");
        n_grammars++;
        for (int k = 0; k < 2 && g; k++) {
            const json_val *list = ejson_get(r, k ? "reject" : "accept");
            for (size_t i = 0; list && i < list->n; i++) {
                slm_grammar_reset(g);
                bool ok = slm_grammar_accept_bytes(g, list->items[i].str, list->items[i].len) == SLM_OK &&
                          slm_grammar_can_end(g);
                CHECKF(ok == !k, "compat grammar %s: '%s' should be %s", gv->str, list->items[i].str, k ? "rejected" : "accepted");
                n_strings++;
            }
        }
        slm_grammar_free(g);
        ejson_free(d);
    }
    free(text);
    CHECK(n_grammars >= 30);
    fprintf(stderr, "compat corpus: %d grammars, %d strings\n", n_grammars, n_strings);
}

int main(void) {
    test_parser();
    test_compat_corpus();
    test_schema();
    test_with_model();
    test_shared_index();
    return test_finish();
}
