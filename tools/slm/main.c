/* slm: the command-line client of libslm. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *out) {
    fputs("usage: slm COMMAND [options]\n\n"
          "commands:\n"
          "  run         generate a continuation of a prompt\n"
          "  chat        multi-turn chat in the model's own chat template\n"
#ifdef SLM_HAVE_SERVE
          "  serve       OpenAI-compatible HTTP server with continuous batching and a chat page\n"
#else
          "  serve       (not in this build: needs libmicrohttpd and cJSON; `make deps`, then rebuild)\n"
#endif
          "  info        show a GGUF file's metadata and tensors\n"
          "  bench       measure prompt and generation speed (tokens/s), like llama-bench\n"
          "  quantize    write a copy of a model with its tensors requantized (q4_k_m, q8_0, ...)\n"
          "  imatrix     activation statistics over a calibration text, for quantize --imatrix\n"
          "  perplexity  perplexity of a text; KL divergence against a base model's logits\n"
          "  eval        accuracy on a JSONL task (multiple choice, exact-match generation)\n"
          "  finetune    train a LoRA adapter (or every weight) on JSONL or text data\n"
          "  merge       fold a LoRA adapter into a copy of its base model\n"
          "  trim-vocab  a copy of a model whose vocabulary keeps only what a corpus needs\n"
          "  tokenize    print the tokens of a text, one per line\n"
          "\n"
          "  slm COMMAND --help  options of one command\n"
          "  slm --version       version and CPU kernels\n\n"
          "With no -m, commands use the default model (Gemma 3 270M Q4_K_M) in $SLM_MODELS,\n"
          "or ~/.cache/slm/models; `make model` fetches it.\n", out);
}

int main(int argc, char **argv) {
    if (argc < 2) { usage(stderr); return 2; }
    const char *cmd = argv[1];
    const char *kern = getenv("SLM_KERNELS");  /* e.g. SLM_KERNELS=scalar to compare kernels */
    if (kern && *kern && slm_cpu_set_kernels(kern)) fprintf(stderr, "slm: SLM_KERNELS: %s\n", slm_last_error());
    const char *repack = getenv("SLM_REPACK"); /* SLM_REPACK=0: keep the weights as stored */
    if (repack && !strcmp(repack, "0")) slm_cpu_set_repack(false);
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) { usage(stdout); return 0; }
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
        printf("slm %s (CPU kernels: %s)\n", SLM_VERSION_STRING, slm_cpu_backend_name());
        return 0;
    }
    if (!strcmp(cmd, "run")) return cmd_run(argc - 2, argv + 2);
    if (!strcmp(cmd, "chat")) return cmd_chat(argc - 2, argv + 2);
    if (!strcmp(cmd, "info")) return cmd_info(argc - 2, argv + 2);
    if (!strcmp(cmd, "bench")) return cmd_bench(argc - 2, argv + 2);
    if (!strcmp(cmd, "quantize")) return cmd_quantize(argc - 2, argv + 2);
    if (!strcmp(cmd, "perplexity")) return cmd_perplexity(argc - 2, argv + 2);
    if (!strcmp(cmd, "eval")) return cmd_eval(argc - 2, argv + 2);
    if (!strcmp(cmd, "imatrix")) return cmd_imatrix(argc - 2, argv + 2);
    if (!strcmp(cmd, "merge")) return cmd_merge(argc - 2, argv + 2);
    if (!strcmp(cmd, "finetune")) return cmd_finetune(argc - 2, argv + 2);
    if (!strcmp(cmd, "trim-vocab")) return cmd_trim_vocab(argc - 2, argv + 2);
    if (!strcmp(cmd, "tokenize")) return cmd_tokenize(argc - 2, argv + 2);
#ifdef SLM_HAVE_SERVE
    if (!strcmp(cmd, "serve")) return cmd_serve(argc - 2, argv + 2);
#else
    if (!strcmp(cmd, "serve")) {
        fprintf(stderr, "slm: this slm was built without `serve`: it needs libmicrohttpd and cJSON\n"
                        "(Debian: libmicrohttpd-dev libcjson-dev pkg-config; `make deps` installs them),\n"
                        "then rebuild (`make`)\n");
        return 2;
    }
#endif
    fprintf(stderr, "slm: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return 2;
}
