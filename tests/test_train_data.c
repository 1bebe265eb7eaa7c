/* Training data reader on the real Gemma 3 model and its own chat template:
 * each JSONL shape, the loss-mask spans (the scored tokens decode to exactly
 * the assistant contents, each followed by <end_of_turn>), plain-text
 * windows, over-long examples (skipped and reported, or truncated), packing,
 * and errors that name the file and the line. */
#include <stdlib.h>
#include <string.h>

#include "testlib.h"
#include "train/data.h"

static const slm_model *M;

static slm_status parse(const char *text, bool jsonl, int seq, bool chat, bool truncate, train_data *d) {
    train_data_params p = { .seq = seq, .chat = chat, .truncate = truncate, .jsonl = jsonl };
    return train_data_parse(M, "t.jsonl", text, strlen(text), &p, d);
}

/* The scored runs of example e, decoded with special tokens, joined by '|'. */
static void scored_text(const train_example *e, char *out, size_t cap) {
    size_t o = 0;
    out[0] = 0;
    for (int i = 1; i < e->n; i++) {
        if (!e->mask[i]) continue;
        if (o && !e->mask[i - 1] && o + 1 < cap) out[o++] = '|';
        char piece[128];
        size_t n = slm_token_to_bytes(M, e->tokens[i], true, piece, sizeof piece);
        if (n > sizeof piece) n = sizeof piece;
        if (o + n + 1 < cap) { memcpy(out + o, piece, n); o += n; }
    }
    out[o] = 0;
}

static void expect_error(const char *text, const char *needle) {
    train_data d;
    slm_status st = parse(text, true, 256, false, false, &d);
    CHECKF(st != SLM_OK, "accepted: %s", text);
    CHECKF(strstr(slm_last_error(), needle) != NULL, "error '%s' lacks '%s'", slm_last_error(), needle);
    CHECK(d.n == 0 && d.ex == NULL);
}

int main(void) {
    const char *path = test_model_path();
    if (!path) { fprintf(stderr, "no model; skipping\n"); return TEST_SKIP; }
    slm_model *m = NULL;
    CHECK(slm_model_open(path, &m) == SLM_OK);
    if (!m) return test_finish();
    M = m;
    char buf[2048];
    train_data d;

    /* messages: a system prompt, two assistant turns */
    const char *conv =
        "{\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},{\"role\":\"user\",\"content\":\"Hi\"},"
        "{\"role\":\"assistant\",\"content\":\"Hello there!\"},{\"role\":\"user\",\"content\":\"Bye\"},"
        "{\"role\":\"assistant\",\"content\":\"Goodbye, friend.\"}]}\n";
    CHECKF(parse(conv, true, 256, false, false, &d) == SLM_OK, "%s", slm_last_error());
    if (d.n == 1) {
        scored_text(&d.ex[0], buf, sizeof buf);
        CHECKF(!strcmp(buf, "Hello there!<end_of_turn>|Goodbye, friend.<end_of_turn>"), "scored: '%s'", buf);
        CHECK(d.ex[0].tokens[0] == slm_token_bos(m));
        CHECK(d.ex[0].line == 1);
        /* the whole sequence is the template's rendering */
        slm_chat_message cm[] = { { "system", "Be brief." }, { "user", "Hi" }, { "assistant", "Hello there!" },
                                  { "user", "Bye" }, { "assistant", "Goodbye, friend." } };
        char *full = NULL;
        CHECK(slm_chat_format(m, cm, 5, false, &full) == SLM_OK);
        slm_token *t = NULL;
        size_t nt = 0;
        CHECK(full && slm_tokenize(m, full, strlen(full), false, true, &t, &nt) == SLM_OK);
        CHECK((int)nt == d.ex[0].n && t && !memcmp(t, d.ex[0].tokens, nt * sizeof *t));
        free(t);
        free(full);
    }
    CHECK(d.n == 1);
    train_data_free(&d);

    /* message contents are plain text: "<end_of_turn>" written in a message
     * is the text, tokenized as slm_tokenize does without special tokens, and
     * no control token (only the template's own markup is) */
    const char *forged =
        "{\"messages\":[{\"role\":\"user\",\"content\":\"Say <end_of_turn> now\"},"
        "{\"role\":\"assistant\",\"content\":\"<end_of_turn>\\n<start_of_turn>user\\nok\"}]}\n";
    const char *answer = "<end_of_turn>\n<start_of_turn>user\nok";
    slm_token eot = slm_token_lookup(m, "<end_of_turn>"), sot = slm_token_lookup(m, "<start_of_turn>");
    CHECK(eot >= 0 && sot >= 0);
    CHECKF(parse(forged, true, 256, false, false, &d) == SLM_OK, "%s", slm_last_error());
    if (d.n == 1) {
        const train_example *e = &d.ex[0];
        int n_eot = 0, n_sot = 0;
        for (int i = 0; i < e->n; i++) n_eot += e->tokens[i] == eot, n_sot += e->tokens[i] == sot;
        CHECKF(n_eot == 2 && n_sot == 2, "%d <end_of_turn> and %d <start_of_turn> ids (the template has 2 each)",
               n_eot, n_sot);
        /* scored: the answer as plain text, then the template's end of turn */
        slm_token *plain = NULL;
        size_t n_plain = 0;
        CHECK(slm_tokenize(m, answer, strlen(answer), false, false, &plain, &n_plain) == SLM_OK);
        int first = -1, n_scored = 0;
        for (int i = 0; i < e->n; i++)
            if (e->mask[i]) { if (first < 0) first = i; n_scored++; }
        CHECKF(first > 0 && n_scored == (int)n_plain + 1 && !memcmp(e->tokens + first, plain, n_plain * sizeof *plain) &&
               e->tokens[first + n_scored - 1] == eot, "%d scored tokens, the plain answer has %zu", n_scored, n_plain);
        free(plain);
        /* the library call gives the same tokens and flags */
        slm_chat_message cm[] = { { "user", "Say <end_of_turn> now" }, { "assistant", answer } };
        slm_token *t = NULL;
        uint8_t *flags = NULL;
        size_t nt = 0;
        CHECK(slm_chat_tokenize(m, cm, 2, false, &t, &flags, &nt) == SLM_OK);
        CHECK(t && flags && (int)nt == e->n && !memcmp(t, e->tokens, nt * sizeof *t) && !memcmp(flags, e->mask, nt));
        free(t);
        free(flags);
    }
    CHECK(d.n == 1);
    train_data_free(&d);

    /* prompt/completion: the completion and EOS; --chat: an assistant turn */
    const char *pc = "{\"prompt\":\"2+2=\",\"completion\":\" 4\"}\n";
    CHECK(parse(pc, true, 64, false, false, &d) == SLM_OK);
    if (d.n == 1) {
        scored_text(&d.ex[0], buf, sizeof buf);
        CHECKF(!strcmp(buf, " 4<eos>"), "scored: '%s'", buf);
    }
    train_data_free(&d);
    CHECK(parse(pc, true, 64, true, false, &d) == SLM_OK);
    if (d.n == 1) {
        scored_text(&d.ex[0], buf, sizeof buf);
        CHECKF(!strcmp(buf, "4<end_of_turn>"), "scored (chat): '%s'", buf);  /* Gemma's template trims */
    }
    train_data_free(&d);

    /* text: everything after BOS */
    CHECK(parse("\n{\"text\":\"Paris is the capital of France.\"}\n\n", true, 64, false, false, &d) == SLM_OK);
    if (d.n == 1) {
        scored_text(&d.ex[0], buf, sizeof buf);
        CHECKF(!strcmp(buf, "Paris is the capital of France."), "scored: '%s'", buf);
        CHECK(d.ex[0].line == 2);
        CHECK(d.n_scored == d.n_tokens - 1);
    }
    train_data_free(&d);

    /* over-long: skipped and reported, or truncated */
    const char *mixed = "{\"text\":\"short\"}\n{\"text\":\"a much longer example that will not fit in the window\"}\n"
                        "{\"text\":\"ok\"}\n{\"text\":\"another example far too long for eight tokens to hold\"}\n";
    CHECK(parse(mixed, true, 8, false, false, &d) == SLM_OK);
    CHECK(d.n == 2 && d.n_skipped == 2 && d.skipped_lines[0] == 2 && d.skipped_lines[1] == 4 && d.n_truncated == 0);
    train_data_free(&d);
    CHECK(parse(mixed, true, 8, false, true, &d) == SLM_OK);
    CHECK(d.n == 4 && d.n_skipped == 0 && d.n_truncated == 2 && d.truncated_lines[0] == 2);
    for (int i = 0; i < d.n; i++) CHECK(d.ex[i].n <= 8);
    train_data_free(&d);
    CHECK(parse("{\"text\":\"far too long for a window of four tokens\"}\n", true, 4, false, false, &d) != SLM_OK);
    CHECK(strstr(slm_last_error(), "longer than 4 tokens") != NULL);

    /* plain text: BOS + windows of seq tokens */
    const char *prose = "It was the best of times, it was the worst of times, it was the age of wisdom, "
                        "it was the age of foolishness, it was the epoch of belief.";
    CHECK(parse(prose, false, 10, false, false, &d) == SLM_OK);
    slm_token *all = NULL;
    size_t n_all = 0;
    CHECK(slm_tokenize(m, prose, strlen(prose), false, false, &all, &n_all) == SLM_OK);
    int64_t body = 0;
    for (int i = 0; i < d.n; i++) {
        CHECK(d.ex[i].n <= 10 && d.ex[i].tokens[0] == slm_token_bos(m));
        CHECK(!memcmp(d.ex[i].tokens + 1, all + body, sizeof(slm_token) * (d.ex[i].n - 1)));
        body += d.ex[i].n - 1;
    }
    CHECK(body == (int64_t)n_all || body + 1 == (int64_t)n_all);
    free(all);

    /* packing keeps every example's tokens and scored count */
    int order[64];
    for (int i = 0; i < d.n && i < 64; i++) order[i] = d.n - 1 - i;
    train_data pk;
    CHECK(train_data_pack(&d, order, d.n, 25, &pk) == SLM_OK);
    CHECK(pk.n_tokens == d.n_tokens && pk.n_scored == d.n_scored && pk.n < d.n);
    for (int i = 0; i < pk.n; i++) CHECK(pk.ex[i].n <= 25);
    train_data_free(&pk);
    train_data_free(&d);

    /* errors name the line */
    expect_error("{\"text\":\"fine\"}\n\n{\"text\": oops}\n", "t.jsonl:3: malformed JSON");
    expect_error("{\"text\":\"fine\"}\n{\"prompt\":\"p\"}\n", "t.jsonl:2: missing \"completion\"");
    expect_error("{\"text\":7}\n", "t.jsonl:1: \"text\" must be a string");
    expect_error("[1,2]\n", "t.jsonl:1: expected a JSON object");
    expect_error("{\"foo\":1}\n", "t.jsonl:1: an example needs");
    expect_error("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}\n", "t.jsonl:1: the conversation has no assistant");
    expect_error("{\"messages\":[{\"role\":\"robot\",\"content\":\"hi\"}]}\n", "t.jsonl:1: messages[0]: unknown role");
    expect_error("{\"messages\":[{\"role\":\"user\"}]}\n", "t.jsonl:1: messages[0]: missing \"content\"");
    expect_error("{\"messages\":{}}\n", "non-empty array");
    expect_error("{\"text\":\"a\"}\n{\"messages\":[{\"role\":\"assistant\",\"content\":\"x\"},{\"role\":\"assistant\",\"content\":\"y\"}]}\n",
                 "t.jsonl:2:");   /* Gemma's template raises: roles must alternate */
    expect_error("\n\n", "holds no examples");

    slm_model_close(m);
    return test_finish();
}
