/* slm chat: a multi-turn conversation in the model's chat format. The KV
 * cache is kept across turns, so each turn only evaluates its new tokens. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static void chat_help(FILE *out) {
    fputs("usage: slm chat [options]\n"
          "Reads a user message per line from stdin and answers in the model's turn format\n"
          "(Gemma: <start_of_turn>user ... <end_of_turn>). /exit or Ctrl-D ends; /reset forgets the\n"
          "conversation. -n bounds each answer (default 512).\n\n"
          "  -s, --system TEXT       a system instruction, prepended to the first user turn\n", out);
    cli_print_gen_help(out);
}

/* Reads one line (without its newline); NULL at end of input. */
static char *read_line(FILE *in) {
    size_t cap = 256, n = 0;
    char *buf = malloc(cap);
    int ch;
    while (buf && (ch = fgetc(in)) != EOF && ch != '\n') {
        if (n + 1 == cap) { char *nb = realloc(buf, cap *= 2); if (!nb) { free(buf); return NULL; } buf = nb; }
        buf[n++] = (char)ch;
    }
    if (!buf || (n == 0 && ch == EOF)) { free(buf); return NULL; }
    buf[n] = '\0';
    return buf;
}

int cmd_chat(int argc, char **argv) {
    cli_gen_opts o;
    cli_gen_defaults(&o);
    o.n_predict = 512;
    const char *system = NULL;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) { chat_help(stdout); return 0; }
        if ((!strcmp(argv[i], "-s") || !strcmp(argv[i], "--system")) && i + 1 < argc) { system = argv[++i]; continue; }
        int r = cli_parse_gen_opt(&o, argc, argv, &i);
        if (r < 0) return 2;
        if (r == 0) { fprintf(stderr, "slm chat: unknown option '%s' (see slm chat --help)\n", argv[i]); return 2; }
    }
    cli_engine e;
    if (cli_engine_open(&e, &o)) return 1;
    slm_token eot = slm_token_lookup(e.model, "<end_of_turn>");
    if (eot < 0) {
        fprintf(stderr, "slm chat: this model has no <end_of_turn> token; only the Gemma turn format is supported yet\n");
        cli_engine_close(&e);
        return 1;
    }
    bool tty = isatty(0);
    bool first = true;
    int rc = 0;
    for (;;) {
        if (tty) { fputs("> ", stdout); fflush(stdout); }
        char *line = read_line(stdin);
        if (!line || !strcmp(line, "/exit")) { free(line); break; }
        if (!strcmp(line, "/reset")) {
            slm_session_truncate(e.session, 0);
            slm_sampler_reset(e.sampler);
            first = true;
            free(line);
            continue;
        }
        /* The previous answer's end: the model's own <end_of_turn> was sampled
         * but not evaluated, so close the turn in text either way. */
        size_t need = strlen(line) + (system ? strlen(system) : 0) + 128;
        char *turn = malloc(need);
        if (!turn) { free(line); rc = 1; break; }
        snprintf(turn, need, "%s<start_of_turn>user\n%s%s%s<end_of_turn>\n<start_of_turn>model\n",
                 first ? "" : "<end_of_turn>\n",
                 first && system ? system : "", first && system ? "\n\n" : "", line);
        free(line);
        slm_token *toks = NULL;
        size_t n = 0;
        if (slm_tokenize(e.model, turn, strlen(turn), first, true, &toks, &n)) {
            fprintf(stderr, "slm chat: %s\n", slm_last_error());
            free(turn);
            continue;
        }
        free(turn);
        if ((long)n + 1 > slm_session_n_ctx(e.session) - slm_session_n_past(e.session)) {
            fprintf(stderr, "slm chat: the context is full; the conversation starts over (/reset)\n");
            free(toks);
            slm_session_truncate(e.session, 0);
            slm_sampler_reset(e.sampler);
            first = true;
            continue;
        }
        cli_gen_stats st;
        if (cli_generate(&e, toks, n, o.n_predict, stdout, &st)) { free(toks); rc = 1; break; }
        free(toks);
        fputc('\n', stdout);
        if (o.verbose) cli_print_stats(&st);
        first = false;
    }
    cli_engine_close(&e);
    return rc;
}
