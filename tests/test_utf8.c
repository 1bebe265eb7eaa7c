/* UTF-8 helpers and the streaming detokenizer (slm_detok_*).
 *
 * The reference for "what must come out" is built here independently of
 * src/base/utf8.c: every code point is encoded by hand, the set of all proper
 * prefixes of well-formed sequences is tabulated, and the replacement rule
 * (one U+FFFD per maximal subpart, as Python's errors="replace") is applied
 * with those tables. The fixed expectations below were checked against
 * Python's bytes.decode("utf-8", "replace"). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/utf8.h"
#include "slm.h"
#include "testlib.h"

/* ---- independent reference --------------------------------------------- */

static uint8_t *valid2;  /* bit set: 2-byte strings that are a prefix (or all) of a valid sequence */
static uint8_t *valid3;  /* same for 3-byte strings */
static uint8_t valid1[32];
static uint8_t full2[65536 / 8];       /* complete 2-byte sequences */
static uint8_t *full3;                 /* complete 3-byte sequences */

#define BIT_SET(a, i) ((a)[(i) >> 3] |= (uint8_t)(1u << ((i) & 7)))
#define BIT_GET(a, i) (((a)[(i) >> 3] >> ((i) & 7)) & 1u)

static int enc_ref(uint32_t c, unsigned char *o) {
    if (c < 0x80) { o[0] = (unsigned char)c; return 1; }
    if (c < 0x800) { o[0] = 0xC0 | (c >> 6); o[1] = 0x80 | (c & 63); return 2; }
    if (c < 0x10000) { o[0] = 0xE0 | (c >> 12); o[1] = 0x80 | ((c >> 6) & 63); o[2] = 0x80 | (c & 63); return 3; }
    o[0] = 0xF0 | (c >> 18); o[1] = 0x80 | ((c >> 12) & 63); o[2] = 0x80 | ((c >> 6) & 63); o[3] = 0x80 | (c & 63);
    return 4;
}

static void build_reference(void) {
    valid2 = calloc(65536 / 8, 1);
    valid3 = calloc((1u << 24) / 8, 1);
    full3 = calloc((1u << 24) / 8, 1);
    for (uint32_t c = 0; c <= 0x10FFFF; c++) {
        if (c >= 0xD800 && c <= 0xDFFF) continue;
        unsigned char b[4];
        int n = enc_ref(c, b);
        BIT_SET(valid1, b[0]);
        if (n >= 2) BIT_SET(valid2, (uint32_t)b[0] << 8 | b[1]);
        if (n >= 3) BIT_SET(valid3, (uint32_t)b[0] << 16 | (uint32_t)b[1] << 8 | b[2]);
        if (n == 2) BIT_SET(full2, (uint32_t)b[0] << 8 | b[1]);
        if (n == 3) BIT_SET(full3, (uint32_t)b[0] << 16 | (uint32_t)b[1] << 8 | b[2]);
    }
}

/* Length of the longest prefix of s[0..n) (at most 4) that is the beginning
 * of some well-formed sequence; *complete tells whether that prefix is a
 * whole sequence. */
static int ref_prefix(const unsigned char *s, size_t n, int *complete) {
    *complete = 0;
    if (!BIT_GET(valid1, s[0])) return 0;
    if (s[0] < 0x80) { *complete = 1; return 1; }
    if (n < 2 || !BIT_GET(valid2, (uint32_t)s[0] << 8 | s[1])) return 1;
    if (BIT_GET(full2, (uint32_t)s[0] << 8 | s[1])) { *complete = 1; return 2; }
    if (n < 3) return 2;
    uint32_t k3 = (uint32_t)s[0] << 16 | (uint32_t)s[1] << 8 | s[2];
    if (!BIT_GET(valid3, k3)) return 2;
    if (BIT_GET(full3, k3)) { *complete = 1; return 3; }
    if (n < 4 || s[3] < 0x80 || s[3] > 0xBF) return 3;
    *complete = 1;
    return 4;
}

/* Whole-input reference: well-formed sequences copied, each maximal subpart
 * (including a truncated tail) replaced by one U+FFFD. */
static size_t ref_replace(const unsigned char *s, size_t n, char *out) {
    size_t w = 0, i = 0;
    while (i < n) {
        int complete, k = ref_prefix(s + i, n - i, &complete);
        if (complete) {
            memcpy(out + w, s + i, (size_t)k);
            w += (size_t)k;
            i += (size_t)k;
        } else {
            memcpy(out + w, "\xEF\xBF\xBD", 3);
            w += 3;
            i += k ? (size_t)k : 1;
        }
    }
    return w;
}

/* ---- helpers ----------------------------------------------------------- */

static uint64_t rng = 0x9E3779B97F4A7C15ULL;
static uint32_t rnd(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}

/* Streams s through a detokenizer in the given chunk sizes (0-terminated
 * list, the rest in one go) with a generous cap; checks each push emits
 * only well-formed UTF-8; returns the total output length. */
static size_t stream(const char *s, size_t n, const size_t *chunks, char *out) {
    slm_detok d;
    slm_detok_init(&d);
    size_t w = 0, i = 0;
    char buf[4096 * 4 + 64];
    for (int c = 0; i < n; c++) {
        size_t len = chunks && chunks[c] ? chunks[c] : n - i;
        if (len > n - i) len = n - i;
        size_t cap = 3 * len + 16;
        size_t k = slm_detok_push(&d, s + i, len, buf, cap);
        CHECK(k <= cap);
        CHECKF(utf8_validate(buf, k, NULL), "push of %zu bytes at %zu emitted ill-formed UTF-8", len, i);
        memcpy(out + w, buf, k);
        w += k;
        i += len;
        if (!chunks || !chunks[c]) chunks = NULL;
    }
    size_t k = slm_detok_flush(&d, buf, 16);
    CHECK(k <= 16 && utf8_validate(buf, k, NULL));
    memcpy(out + w, buf, k);
    return w + k;
}

static void check_all_splits(const char *s, const char *expect_hex) {
    size_t n = strlen(s);
    char expect[256], got[1024];
    size_t ne = 0;
    for (size_t i = 0; expect_hex[i] && expect_hex[i + 1]; i += 2) {
        unsigned v;
        sscanf(expect_hex + i, "%2x", &v);
        expect[ne++] = (char)v;
    }
    /* one piece */
    size_t w = stream(s, n, NULL, got);
    CHECKF(w == ne && memcmp(got, expect, ne) == 0, "whole \"%s\"", expect_hex);
    /* every split in two and three */
    for (size_t a = 1; a < n; a++) {
        size_t ch[] = { a, 0 };
        w = stream(s, n, ch, got);
        CHECKF(w == ne && memcmp(got, expect, ne) == 0, "split at %zu of %s", a, expect_hex);
        for (size_t b = 1; a + b < n; b++) {
            size_t ch3[] = { a, b, 0 };
            w = stream(s, n, ch3, got);
            CHECKF(w == ne && memcmp(got, expect, ne) == 0, "split at %zu+%zu of %s", a, b, expect_hex);
        }
    }
    /* byte by byte */
    size_t ones[300];
    for (size_t i = 0; i < n && i < 299; i++) ones[i] = 1;
    ones[n < 299 ? n : 299] = 0;
    w = stream(s, n, ones, got);
    CHECKF(w == ne && memcmp(got, expect, ne) == 0, "byte by byte %s", expect_hex);
}

/* ---- tests ------------------------------------------------------------- */

static void test_codec(void) {
    /* every scalar value: our encoder == the reference, decode gives it back */
    for (uint32_t c = 0; c <= 0x10FFFF; c++) {
        char b[4];
        unsigned char r[4];
        int n = utf8_encode(c, b);
        if (c >= 0xD800 && c <= 0xDFFF) {
            if (n != 0) { CHECKF(n == 0, "surrogate %X encoded", c); break; }
            continue;
        }
        int nr = enc_ref(c, r);
        uint32_t back = 0xFFFFFFFF;
        int k = utf8_decode((const unsigned char *)b, (size_t)n, &back);
        if (n != nr || memcmp(b, r, (size_t)n) != 0 || k != n || back != c) {
            CHECKF(0, "code point U+%04X: enc %d ref %d dec %d -> %X", c, n, nr, k, back);
            break;
        }
        for (int p = 1; p < n; p++)  /* proper prefixes want more bytes */
            if (utf8_decode((const unsigned char *)b, (size_t)p, NULL) != 0) {
                CHECKF(0, "prefix %d of U+%X not reported incomplete", p, c);
                break;
            }
    }
    char b4[4];
    CHECK(utf8_encode(0x110000, b4) == 0);

    /* all 1-, 2- and 3-byte strings: validate and decode agree with the tables */
    int bad = 0;
    for (uint32_t v = 0; v < (1u << 24) && bad < 5; v++) {
        unsigned char s[3] = { (unsigned char)(v >> 16), (unsigned char)(v >> 8), (unsigned char)v };
        int complete, k = ref_prefix(s, 3, &complete);
        /* the string is valid iff it is a concatenation of whole sequences */
        size_t i = 0;
        bool ok = true;
        while (i < 3) {
            int c2, k2 = ref_prefix(s + i, 3 - i, &c2);
            if (!c2) { ok = false; break; }
            i += (size_t)k2;
        }
        size_t off = 99;
        bool got = utf8_validate((const char *)s, 3, &off);
        int d = utf8_decode(s, 3, NULL);
        /* whole sequence: its length; bad lead: -1; a proper prefix using all
         * 3 bytes: 0 (needs more); else ill-formed after k bytes: -k */
        int want_d = complete ? k : k == 0 ? -1 : k == 3 ? 0 : -k;
        if (got != ok || d != want_d) {
            bad++;
            CHECKF(0, "%02X %02X %02X: validate %d (want %d), decode %d (want %d)", s[0], s[1], s[2], got, ok,
                   d, want_d);
        }
    }
    /* 4-byte sequences, sampled */
    for (int it = 0; it < 2000000 && bad < 10; it++) {
        uint32_t v = rnd() ^ (rnd() << 21);
        unsigned char s[4] = { (unsigned char)(0xF0 | (v & 7)), (unsigned char)(v >> 3), (unsigned char)(v >> 11),
                               (unsigned char)(v >> 19) };
        if (it & 1) s[0] = (unsigned char)(v >> 24);
        int complete, k = ref_prefix(s, 4, &complete);
        int d = utf8_decode(s, 4, NULL);
        int want = complete ? k : (k ? -k : -1);
        if (d != want) {
            bad++;
            CHECKF(0, "%02X %02X %02X %02X: decode %d want %d", s[0], s[1], s[2], s[3], d, want);
        }
    }

    size_t off = 0;
    CHECK(utf8_validate("", 0, &off));
    CHECK(!utf8_validate("abc\xFF", 4, &off) && off == 3);
    CHECK(!utf8_validate("ab\xE2\x82", 4, &off) && off == 2);
    CHECK(!utf8_validate("\xED\xA0\x80", 3, &off) && off == 0);
    CHECK(!utf8_validate("x\xC0\xAF", 3, &off) && off == 1);
    CHECK(utf8_validate("h\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80", 10, &off));
}

static void test_detok_fixed(void) {
    /* well-formed: 2, 3, 4-byte characters, emoji with ZWJ and modifiers */
    check_all_splits("a\xC3\xA9z", "61c3a97a");
    check_all_splits("\xE2\x82\xAC\xE6\x97\xA5", "e282ace697a5");
    check_all_splits("\xF0\x9F\x98\x80!", "f09f988021");
    check_all_splits("\xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x91\xA7",
                     "f09f91a8e2808df09f91a9e2808df09f91a7");
    check_all_splits("\xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD\xF0\x9F\x87\xAB\xF0\x9F\x87\xB7",
                     "f09f918df09f8fbdf09f87abf09f87b7");
    check_all_splits("\xF4\x8F\xBF\xBF\xEF\xBF\xBD\xC2\x80", "f48fbfbfefbfbdc280");
    /* ill-formed: each maximal subpart -> U+FFFD (expectations from Python) */
    check_all_splits("\xFF", "efbfbd");
    check_all_splits("a\xFF" "b", "61efbfbd62");
    check_all_splits("\xC0\xAF", "efbfbdefbfbd");                  /* overlong */
    check_all_splits("\xE0\x80\xAF", "efbfbdefbfbdefbfbd");        /* overlong */
    check_all_splits("\xED\xA0\x80", "efbfbdefbfbdefbfbd");        /* surrogate */
    check_all_splits("\xE2\x82" "A", "efbfbd41");                  /* truncated, then ASCII */
    check_all_splits("\xF0\x9F\x98", "efbfbd");                    /* truncated at the end: flush */
    check_all_splits("\xF4\x90\x80\x80", "efbfbdefbfbdefbfbdefbfbd"); /* above U+10FFFF */
    check_all_splits("\xF0\x9F\x98\xFF", "efbfbdefbfbd");
    check_all_splits("\xF0\x9F\x98" "A\xE2", "efbfbd41efbfbd");
    check_all_splits("\x80\x80", "efbfbdefbfbd");
    check_all_splits("\xE2(\xA1", "efbfbd28efbfbd");
    check_all_splits("\xF8\x88\x80\x80\x80", "efbfbdefbfbdefbfbdefbfbdefbfbd");
    check_all_splits("\xC2", "efbfbd");
    check_all_splits("ok\xC3\xA9\xC3", "6f6bc3a9efbfbd");
}

static void test_detok_contract(void) {
    slm_detok d;
    char out[64];
    /* nothing pending: flush writes nothing */
    slm_detok_init(&d);
    CHECK(slm_detok_flush(&d, out, sizeof out) == 0);
    /* a pending prefix is held back, then completed */
    slm_detok_init(&d);
    CHECK(slm_detok_push(&d, "\xF0\x9F", 2, out, 10) == 0);
    CHECK(d.n_pending == 2);
    CHECK(slm_detok_push(&d, "\x98", 1, out, 9) == 0);
    size_t k = slm_detok_push(&d, "\x80" "a", 2, out, 10);
    CHECK(k == 5 && memcmp(out, "\xF0\x9F\x98\x80" "a", 5) == 0);
    CHECK(slm_detok_flush(&d, out, sizeof out) == 0);
    /* flush clears the state even with no room */
    slm_detok_init(&d);
    slm_detok_push(&d, "\xE2", 1, out, 9);
    CHECK(slm_detok_flush(&d, out, 0) == 0);
    CHECK(d.n_pending == 0);
    CHECK(slm_detok_flush(&d, out, sizeof out) == 0);
    /* NULL bytes with length 0 */
    CHECK(slm_detok_push(&d, NULL, 0, out, 8) == 0);

    /* the minimum cap (len + 8) is never exceeded, even for pure garbage */
    char garbage[200], big[200 + 8];
    memset(garbage, 0xFF, sizeof garbage);
    for (size_t len = 1; len <= sizeof garbage; len += 7) {
        slm_detok_init(&d);
        slm_detok_push(&d, "\xF0\x9F\x98", 3, big, 11);
        memset(big, 0, sizeof big);
        size_t w = slm_detok_push(&d, garbage, len, big, len + 8);
        CHECKF(w <= len + 8, "len %zu: wrote %zu", len, w);
        CHECK(utf8_validate(big, w, NULL));
        CHECK(w >= len);  /* at least one byte per dropped byte */
    }
    /* well-formed bytes after the garbage are never dropped for lack of room */
    for (size_t ng = 0; ng <= 40; ng += 5) {
        char in[64], o[64 + 8];
        memset(in, 0xFF, ng);
        memcpy(in + ng, "hello \xC3\xA9", 8);
        slm_detok_init(&d);
        size_t w = slm_detok_push(&d, in, ng + 8, o, ng + 8 + 8);
        CHECKF(w >= 8 && memcmp(o + w - 8, "hello \xC3\xA9", 8) == 0, "%zu bytes of garbage, then text", ng);
        CHECK(utf8_validate(o, w, NULL));
    }
    /* and a well-formed chunk after pending bytes always fits in len + 8 */
    slm_detok_init(&d);
    slm_detok_push(&d, "\xE2\x82", 2, out, 10);
    k = slm_detok_push(&d, "\xE2\x82\xAC", 3, out, 11);
    CHECK(k == 6 && memcmp(out, "\xEF\xBF\xBD\xE2\x82\xAC", 6) == 0);
}

/* Random byte strings (biased towards UTF-8 structure), random chunkings:
 * the streamed output equals the whole-input reference. */
static void test_detok_random(void) {
    static const unsigned char pool[] = { 'a', ' ', 0x80, 0x9F, 0xA0, 0xBF, 0xC0, 0xC2, 0xDF, 0xE0, 0xE1, 0xED,
                                          0xEF, 0xF0, 0xF4, 0xF5, 0xFF, 0x90, 0x8F, 0xBD };
    unsigned char s[512];
    char want[512 * 3 + 8], got[512 * 3 + 64];
    size_t chunks[600];
    int bad = 0;
    for (int it = 0; it < 20000 && bad < 5; it++) {
        size_t n = rnd() % 64 + (it % 50 == 0 ? 400 : 0);
        for (size_t i = 0; i < n; i++) {
            uint32_t r = rnd();
            if (r % 4 == 0) {  /* a whole random character */
                unsigned char b[4];
                uint32_t c = rnd() % 0x110000;
                if (c >= 0xD800 && c <= 0xDFFF) c = 0x41;
                int k = enc_ref(c, b);
                for (int j = 0; j < k && i < n; j++) s[i++] = b[j];
                i--;
            } else {
                s[i] = pool[r % sizeof pool];
            }
        }
        size_t wn = ref_replace(s, n, want);
        size_t nc = 0, tot = 0;
        while (tot < n && nc < 598) {
            size_t c = rnd() % 6 + 1;
            chunks[nc++] = c;
            tot += c;
        }
        chunks[nc] = 0;
        size_t gn = stream((const char *)s, n, chunks, got);
        if (gn != wn || memcmp(got, want, wn) != 0) {
            bad++;
            CHECKF(0, "random case %d (len %zu) differs from the reference", it, n);
        }
    }
}

int main(void) {
    build_reference();
    test_codec();
    test_detok_fixed();
    test_detok_contract();
    test_detok_random();
    free(valid2);
    free(valid3);
    free(full3);
    return test_finish();
}
