// llama.cpp's own GBNF parser and matcher over tests/fixtures/grammar/compat.jsonl:
// every grammar must load or fail as the corpus says, and every string must be
// accepted or rejected as the corpus says -- the same verdicts slm's
// tests/test_grammar.c checks. Built and run by bench/grammar_llamacpp.sh
// against the llama.cpp that bench/compare_llamacpp.sh builds.
#include <cstdio>
#include <fstream>
#include <string>

#include "llama-grammar.h"
#include "nlohmann/json.hpp"

static bool matches(const std::string & g, const std::string & s) {
    llama_grammar * gr = llama_grammar_init_impl(nullptr, g.c_str(), "root", false, nullptr, 0, nullptr, 0);
    if (!gr) return false;
    bool ok = true;
    try {
        if (!s.empty()) llama_grammar_accept_str(*gr, s);
    } catch (const std::exception &) {
        ok = false;
    }
    if (ok) {
        ok = false;
        for (const auto & st : llama_grammar_get_stacks(gr)) ok |= st.empty();
    }
    llama_grammar_free_impl(gr);
    return ok;
}

int main(int argc, char ** argv) {
    std::ifstream in(argc > 1 ? argv[1] : "tests/fixtures/grammar/compat.jsonl");
    std::string line;
    int n_g = 0, n_s = 0, bad = 0;
    while (std::getline(in, line)) {
        if (line.empty()) continue;
        auto j = nlohmann::json::parse(line);
        std::string g = j["grammar"];
        bool want_error = j.value("error", false);
        llama_grammar * gr = llama_grammar_init_impl(nullptr, g.c_str(), "root", false, nullptr, 0, nullptr, 0);
        n_g++;
        if ((gr == nullptr) != want_error) {
            printf("DIFFERS: grammar %s: llama.cpp %s\n", g.c_str(), gr ? "loads it" : "refuses it");
            bad++;
        }
        if (gr) llama_grammar_free_impl(gr);
        if (!gr) continue;
        for (int k = 0; k < 2; k++)
            for (const auto & s : j[k ? "reject" : "accept"]) {
                n_s++;
                bool got = matches(g, s.get<std::string>());
                if (got != !k) {
                    printf("DIFFERS: grammar %s: '%s' llama.cpp %s\n", g.c_str(), s.get<std::string>().c_str(),
                           got ? "accepts" : "rejects");
                    bad++;
                }
            }
    }
    printf("llama.cpp: %d grammars, %d strings, %d verdicts differ from the corpus\n", n_g, n_s, bad);
    return bad ? 1 : 0;
}
