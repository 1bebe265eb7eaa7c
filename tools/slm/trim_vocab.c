/* slm trim-vocab: shrink a model's vocabulary to what a corpus needs;
 * slm tokenize: print the pieces a text tokenizes to (one per line). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "measure.h"

#define TRIM_MAX_FILES 64

static void trim_help(FILE *out) {
    fputs("usage: slm trim-vocab -m IN.gguf --corpus FILE [--corpus FILE ...] [--task TASK.jsonl] -o OUT.gguf\n"
          "                      [--keep-top N] [--no-word-forms]\n"
          "Writes a copy of IN whose vocabulary keeps only the tokens the corpus tokenizes to, the pieces\n"
          "their merges pass through, the byte tokens <0x00>..<0xFF>, every control and user-defined\n"
          "token and the special ids; the corpus is checked to tokenize to the same pieces with the\n"
          "trimmed vocabulary. The embedding rows (and an untied output head) follow the kept tokens.\n"
          "The model can then only produce kept tokens, so every word of the corpus is also kept in the\n"
          "forms it is written in: alone and after a space (a name read as \" Chiara\" is written \"Chiara\"\n"
          "inside a JSON string).\n\n"
          "  -m FILE        the model to trim\n"
          "  -o FILE        the trimmed copy (written to a temporary name, then renamed)\n"
          "  --corpus FILE  text the vocabulary must cover (repeatable); a name ending in .jsonl is read\n"
          "                 as JSONL like --task\n"
          "  --task FILE    JSONL (an `slm eval` task or fine-tuning data, repeatable): every string value,\n"
          "                 and each line with \"messages\" or \"chat\": true rendered through the chat template\n"
          "  --keep-top N   also keep the N lowest ids (the specials and the most common pieces)\n"
          "  --no-word-forms  keep only the corpus's own tokens, not its words' other forms\n", out);
}

static bool ends_with(const char *s, const char *suf) {
    size_t n = strlen(s), k = strlen(suf);
    return n >= k && !strcmp(s + n - k, suf);
}

int cmd_trim_vocab(int argc, char **argv) {
    const char *in = NULL, *out = NULL;
    const char *plain_paths[TRIM_MAX_FILES], *jsonl_paths[TRIM_MAX_FILES];
    int n_plain = 0, n_jsonl = 0, keep_top = 0;
    bool no_word_forms = false;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { trim_help(stdout); return 0; }
        bool has_val = i + 1 < argc;
        if (!strcmp(a, "-m") || !strcmp(a, "-o") || !strcmp(a, "--corpus") || !strcmp(a, "--task")) {
            if (!has_val) { fprintf(stderr, "slm trim-vocab: %s needs a value\n", a); return 2; }
            const char *v = argv[++i];
            if (!strcmp(a, "-m")) in = v;
            else if (!strcmp(a, "-o")) out = v;
            else {
                bool js = !strcmp(a, "--task") || ends_with(v, ".jsonl");
                if ((js ? n_jsonl : n_plain) == TRIM_MAX_FILES) {
                    fprintf(stderr, "slm trim-vocab: at most %d files of each kind\n", TRIM_MAX_FILES);
                    return 2;
                }
                if (js) jsonl_paths[n_jsonl++] = v;
                else plain_paths[n_plain++] = v;
            }
            continue;
        }
        if (!strcmp(a, "--no-word-forms")) { no_word_forms = true; continue; }
        if (!strcmp(a, "--keep-top")) {
            if (measure_int_arg("trim-vocab", argc, argv, &i, 0, 1 << 30, &keep_top)) return 2;
            continue;
        }
        fprintf(stderr, "slm trim-vocab: unknown argument '%s' (see slm trim-vocab --help)\n", a);
        return 2;
    }
    if (!in || !out) { fprintf(stderr, "slm trim-vocab: give -m IN.gguf and -o OUT.gguf (see --help)\n"); return 2; }
    if (n_plain + n_jsonl == 0) {
        fprintf(stderr, "slm trim-vocab: give at least one --corpus or --task file\n");
        return 2;
    }
    char *plain[TRIM_MAX_FILES], *jsonl[TRIM_MAX_FILES];
    int rc = 1, got_plain = 0, got_jsonl = 0;
    for (; got_plain < n_plain; got_plain++) {
        size_t len;
        if (!(plain[got_plain] = measure_read_file("trim-vocab", plain_paths[got_plain], &len))) goto done;
        if (strlen(plain[got_plain]) != len) {
            fprintf(stderr, "slm trim-vocab: %s contains a NUL byte\n", plain_paths[got_plain]);
            got_plain++;
            goto done;
        }
    }
    for (; got_jsonl < n_jsonl; got_jsonl++) {
        size_t len;
        if (!(jsonl[got_jsonl] = measure_read_file("trim-vocab", jsonl_paths[got_jsonl], &len))) goto done;
    }
    slm_trim_vocab_params p = { (const char *const *)plain, (size_t)n_plain, (const char *const *)jsonl,
                                (size_t)n_jsonl, keep_top, no_word_forms };
    slm_trim_vocab_stats s;
    double t0 = cli_now_ms();
    if (slm_trim_vocab(in, out, &p, &s)) {
        fprintf(stderr, "slm trim-vocab: %s\n", slm_last_error());
        goto done;
    }
    fprintf(stderr,
            "slm trim-vocab: wrote %s in %.1f s\n"
            "  vocabulary  %d -> %d tokens (%d verification round%s over %zu texts, %llu tokens)\n"
            "  file size   %.1f MiB -> %.1f MiB\n",
            out, (cli_now_ms() - t0) / 1e3, s.n_vocab_in, s.n_vocab_out, s.n_rounds, s.n_rounds == 1 ? "" : "s",
            s.n_texts, (unsigned long long)s.n_tokens, s.bytes_in / 1048576.0, s.bytes_out / 1048576.0);
    rc = 0;
done:
    for (int i = 0; i < got_plain; i++) free(plain[i]);
    for (int i = 0; i < got_jsonl; i++) free(jsonl[i]);
    return rc;
}

/* ---- slm tokenize ---------------------------------------------------------- */

static void tokenize_help(FILE *out) {
    fputs("usage: slm tokenize [-m MODEL] (-p TEXT | -f FILE) [--special] [--ids]\n"
          "Prints the tokens of a text, one per line: the piece's bytes with \\n, \\t, \\\\ and other\n"
          "non-printable bytes escaped (\\xNN); with --ids the id and a tab first.\n\n"
          "  --special  control-token text (\"<start_of_turn>\") becomes the control token\n", out);
}

int cmd_tokenize(int argc, char **argv) {
    const char *model = NULL, *text = NULL, *file = NULL;
    bool special = false, ids = false;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { tokenize_help(stdout); return 0; }
        if (!strcmp(a, "--special")) { special = true; continue; }
        if (!strcmp(a, "--ids")) { ids = true; continue; }
        if ((!strcmp(a, "-m") || !strcmp(a, "-p") || !strcmp(a, "-f")) && i + 1 < argc) {
            const char *v = argv[++i];
            if (a[1] == 'm') model = v;
            else if (a[1] == 'p') text = v;
            else file = v;
            continue;
        }
        fprintf(stderr, "slm tokenize: bad argument '%s' (see slm tokenize --help)\n", a);
        return 2;
    }
    if (!text == !file) { fprintf(stderr, "slm tokenize: give -p TEXT or -f FILE\n"); return 2; }
    char pathbuf[4096];
    const char *path = cli_model_path(model, pathbuf, sizeof pathbuf);
    if (!path) return 1;
    size_t len = text ? strlen(text) : 0;
    char *buf = NULL;
    if (file && !(buf = measure_read_file("tokenize", file, &len))) return 1;
    slm_model *m = NULL;
    slm_token *toks = NULL;
    size_t n = 0;
    int rc = 1;
    if (slm_model_open(path, &m) ||
        slm_tokenize(m, buf ? buf : text, len, false, special, &toks, &n)) {
        fprintf(stderr, "slm tokenize: %s\n", slm_last_error());
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        char piece[512];
        size_t k = slm_token_to_bytes(m, toks[i], true, piece, sizeof piece);
        if (k > sizeof piece) k = sizeof piece;
        if (ids) printf("%d\t", (int)toks[i]);
        for (size_t j = 0; j < k; j++) {
            unsigned char c = (unsigned char)piece[j];
            if (c == '\n') fputs("\\n", stdout);
            else if (c == '\t') fputs("\\t", stdout);
            else if (c == '\\') fputs("\\\\", stdout);
            else if (c < 0x20 || c == 0x7f) printf("\\x%02X", c);
            else putchar(c);
        }
        putchar('\n');
    }
    rc = 0;
done:
    free(toks);
    free(buf);
    slm_model_close(m);
    return rc;
}
