/* The prompt-lookup drafter (src/spec/ngram.c): the latest earlier
 * occurrence of the longest suffix wins, at most k tokens are proposed, and
 * nothing is proposed without a match or below the shortest length. */
#include <string.h>

#include "spec/ngram.h"
#include "testlib.h"

static int draft(const int32_t *h, int n, int lo, int hi, int k, int32_t *out) { return ngram_draft(h, n, lo, hi, k, out); }

int main(void) {
    int32_t d[16];
    /* a b c X a b c Y a b c  -> suffix "a b c": latest earlier occurrence is at 4, followed by Y a b c */
    const int32_t h1[] = { 1, 2, 3, 9, 1, 2, 3, 8, 1, 2, 3 };
    CHECK(draft(h1, 11, 2, 4, 8, d) == 4 && d[0] == 8 && d[1] == 1 && d[2] == 2 && d[3] == 3);
    CHECK(draft(h1, 11, 2, 4, 2, d) == 2 && d[0] == 8 && d[1] == 1);      /* k caps the draft */
    /* the longest suffix decides: "5 2 3" occurs once, followed by 7 */
    const int32_t h2[] = { 5, 2, 3, 7, 6, 2, 3, 4, 5, 2, 3 };
    CHECK(draft(h2, 11, 2, 4, 3, d) == 3 && d[0] == 7 && d[1] == 6 && d[2] == 2);
    /* with only 2-grams allowed, the latest "2 3" is at 5, followed by 4 */
    CHECK(draft(h2, 11, 2, 2, 3, d) == 3 && d[0] == 4 && d[1] == 5 && d[2] == 2);
    /* no repeated suffix: nothing */
    const int32_t h3[] = { 1, 2, 3, 4, 5, 6 };
    CHECK(draft(h3, 6, 1, 4, 8, d) == 0);
    /* a 1-gram match only counts when allowed */
    const int32_t h4[] = { 7, 1, 2, 3, 7 };
    CHECK(draft(h4, 5, 2, 4, 8, d) == 0);
    CHECK(draft(h4, 5, 1, 4, 2, d) == 2 && d[0] == 1 && d[1] == 2);
    /* a run of one token (overlapping occurrence) drafts more of it */
    const int32_t h5[] = { 4, 4, 4, 4 };
    CHECK(draft(h5, 4, 2, 3, 5, d) == 1 && d[0] == 4);
    /* degenerate calls */
    CHECK(draft(h1, 11, 2, 4, 0, d) == 0);
    CHECK(draft(h1, 1, 1, 4, 4, d) == 0);
    CHECK(draft(h1, 0, 1, 4, 4, d) == 0);
    return test_finish();
}
