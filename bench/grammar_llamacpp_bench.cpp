// llama.cpp's grammar-constrained decoding, timed the way bench/grammar_bench.c
// times slm's: one process, one prompt, rounds alternating an unconstrained
// and a constrained generation; per token the forward pass (wall) and the
// sampling step (wall and the thread's CPU time). Sampling is what llama-cli
// and llama-server do (common_sampler, grammar_first = false): sample with the
// chain, check the token with the grammar sampler, and only on a refusal apply
// the grammar to every token of the vocabulary and sample again. The grammar
// is the GBNF text slm generates for the schema (`slm_json_schema_to_gbnf`),
// so both engines run the same grammar.
// usage: grammar_llamacpp_bench MODEL GRAMMAR.gbnf PROMPT_FILE [N=64] [ROUNDS=2] [THREADS=2]
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "llama.h"

static double now_ms(clockid_t c) {
    timespec ts;
    clock_gettime(c, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static std::string slurp(const char * p) {
    std::ifstream f(p);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

int main(int argc, char ** argv) {
    if (argc < 4) { fprintf(stderr, "usage: %s MODEL GRAMMAR PROMPT [N] [ROUNDS] [THREADS]\n", argv[0]); return 2; }
    int N = argc > 4 ? atoi(argv[4]) : 64, rounds = argc > 5 ? atoi(argv[5]) : 2, nt = argc > 6 ? atoi(argv[6]) : 2;
    std::string gbnf = slurp(argv[2]), prompt = slurp(argv[3]);
    llama_backend_init();
    llama_log_set([](ggml_log_level, const char *, void *) {}, nullptr);
    llama_model_params mp = llama_model_default_params();
    llama_model * model = llama_model_load_from_file(argv[1], mp);
    if (!model) { fprintf(stderr, "cannot load model\n"); return 1; }
    const llama_vocab * vocab = llama_model_get_vocab(model);
    const int nv = llama_vocab_n_tokens(vocab);
    llama_context_params cp = llama_context_default_params();
    cp.n_ctx = 1024; cp.n_batch = 1024; cp.n_threads = nt; cp.n_threads_batch = nt;
    llama_context * ctx = llama_init_from_model(model, cp);
    std::vector<llama_token> pt(prompt.size() + 8);
    int np = llama_tokenize(vocab, prompt.c_str(), (int)prompt.size(), pt.data(), (int)pt.size(), true, true);
    pt.resize(np);
    double tb = now_ms(CLOCK_MONOTONIC);
    llama_sampler * grmr = llama_sampler_init_grammar(vocab, gbnf.c_str(), "root");
    double t_build = now_ms(CLOCK_MONOTONIC) - tb;
    if (!grmr) { fprintf(stderr, "llama.cpp refuses the grammar\n"); return 1; }
    struct acc { double eval = 0, sw = 0, sc = 0; int n = 0, rej = 0; } a[2];
    std::vector<llama_token_data> cur(nv);
    int ended = 0;
    for (int r = 0; r < rounds; r++)
        for (int mode = 0; mode < 2; mode++) {
            llama_sampler * chain = llama_sampler_chain_init(llama_sampler_chain_default_params());
            llama_sampler_chain_add(chain, llama_sampler_init_top_k(40));
            llama_sampler_chain_add(chain, llama_sampler_init_top_p(0.95f, 1));
            llama_sampler_chain_add(chain, llama_sampler_init_min_p(0.05f, 1));
            llama_sampler_chain_add(chain, llama_sampler_init_temp(1.0f));
            llama_sampler_chain_add(chain, llama_sampler_init_dist((uint32_t)r));
            llama_sampler_reset(grmr);
            llama_memory_clear(llama_get_memory(ctx), true);
            llama_decode(ctx, llama_batch_get_one(pt.data(), (int)pt.size()));
            for (int i = 0; i < N; i++) {
                double w0 = now_ms(CLOCK_MONOTONIC), c0 = now_ms(CLOCK_THREAD_CPUTIME_ID);
                const float * logits = llama_get_logits_ith(ctx, -1);
                for (int t = 0; t < nv; t++) cur[t] = {t, logits[t], 0.0f};
                llama_token_data_array arr = {cur.data(), (size_t)nv, -1, false};
                llama_sampler_apply(chain, &arr);
                llama_token id = arr.data[arr.selected].id;
                if (mode) {
                    llama_token_data one = {id, 1.0f, 0.0f};
                    llama_token_data_array single = {&one, 1, -1, false};
                    llama_sampler_apply(grmr, &single);
                    if (std::isinf(single.data[0].logit)) {   // refused: grammar over the whole vocabulary, then the chain
                        a[1].rej++;
                        for (int t = 0; t < nv; t++) cur[t] = {t, logits[t], 0.0f};
                        arr = {cur.data(), (size_t)nv, -1, false};
                        llama_sampler_apply(grmr, &arr);
                        llama_sampler_apply(chain, &arr);
                        id = arr.data[arr.selected].id;
                    }
                    llama_sampler_accept(grmr, id);
                }
                llama_sampler_accept(chain, id);
                double w1 = now_ms(CLOCK_MONOTONIC), c1 = now_ms(CLOCK_THREAD_CPUTIME_ID);
                a[mode].sw += w1 - w0;
                a[mode].sc += c1 - c0;
                if (llama_vocab_is_eog(vocab, id)) { if (mode) ended++; break; }
                llama_decode(ctx, llama_batch_get_one(&id, 1));
                a[mode].eval += now_ms(CLOCK_MONOTONIC) - w1;
                a[mode].n++;
            }
            llama_sampler_free(chain);
        }
    const char * name[2] = {"unconstrained", "constrained"};
    for (int k = 0; k < 2; k++)
        printf("llama.cpp %-13s %4d tokens: forward %.2f ms/token, sampling %.3f ms/token wall, %.3f ms/token thread CPU\n",
               name[k], a[k].n, a[k].eval / a[k].n, a[k].sw / a[k].n, a[k].sc / a[k].n);
    double base = (a[0].eval + a[0].sw) / a[0].n;
    double xw = a[1].sw / a[1].n - a[0].sw / a[0].n, xc = a[1].sc / a[1].n - a[0].sc / a[0].n;
    printf("llama.cpp grammar init %.1f ms; refusals %d; constrained documents ended %d of %d\n", t_build, a[1].rej, ended, rounds);
    printf("llama.cpp overhead per token: %.3f ms wall (%.2f %% of %.2f ms), %.3f ms thread CPU\n", xw, 100 * xw / base, base, xc);
    llama_sampler_free(grmr);
    llama_free(ctx);
    llama_model_free(model);
    return 0;
}
