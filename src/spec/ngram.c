/* Prompt-lookup drafting (ngram.h). A linear scan from the end: the history
 * of one generation is at most a context of tokens, and a scan of a few
 * thousand int32 costs microseconds against a forward pass's milliseconds. */
#include "spec/ngram.h"

#include <string.h>

int ngram_draft(const int32_t *hist, int n, int n_min, int n_max, int k, int32_t *draft) {
    if (k <= 0 || n_min < 1) return 0;
    for (int m = n_max < n - 1 ? n_max : n - 1; m >= n_min; m--) {
        const int32_t *suffix = hist + n - m;
        /* an occurrence starting at i ends before the suffix itself, and at
         * least one token follows it */
        for (int i = n - m - 1; i >= 0; i--) {
            if (hist[i] != suffix[0] || memcmp(hist + i, suffix, (size_t)m * sizeof *hist)) continue;
            int from = i + m, cnt = n - from < k ? n - from : k;
            memcpy(draft, hist + from, (size_t)cnt * sizeof *draft);
            return cnt;
        }
    }
    return 0;
}
