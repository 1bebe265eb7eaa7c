#include "base/utf8.h"

#include <string.h>

#include "slm.h"

int utf8_lead_len(unsigned char b) {
    if (b < 0x80) return 1;
    if (b < 0xC2) return 0;      /* continuation byte, or overlong C0/C1 */
    if (b < 0xE0) return 2;
    if (b < 0xF0) return 3;
    if (b < 0xF5) return 4;
    return 0;                    /* F5..FF: beyond U+10FFFF */
}

int utf8_decode(const unsigned char *s, size_t n, uint32_t *cp) {
    unsigned char b = s[0];
    if (b < 0x80) {
        if (cp) *cp = b;
        return 1;
    }
    int len = utf8_lead_len(b);
    if (len == 0) return -1;
    /* The second byte's range excludes overlongs (E0, F0), surrogates (ED)
     * and values above U+10FFFF (F4); later bytes are plain 80..BF. */
    unsigned char lo = 0x80, hi = 0xBF;
    if (b == 0xE0) lo = 0xA0;
    else if (b == 0xED) hi = 0x9F;
    else if (b == 0xF0) lo = 0x90;
    else if (b == 0xF4) hi = 0x8F;
    uint32_t v = b & (0x7F >> len);
    for (int j = 1; j < len; j++) {
        if ((size_t)j >= n) return 0;
        unsigned char c = s[j];
        if (j > 1) { lo = 0x80; hi = 0xBF; }
        if (c < lo || c > hi) return -j;
        v = (v << 6) | (c & 0x3F);
    }
    if (cp) *cp = v;
    return len;
}

bool utf8_validate(const char *str, size_t n, size_t *bad_off) {
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        if (s[i] < 0x80) { i++; continue; }
        int k = utf8_decode(s + i, n - i, NULL);
        if (k <= 0) {
            if (bad_off) *bad_off = i;
            return false;
        }
        i += (size_t)k;
    }
    return true;
}

int utf8_encode(uint32_t cp, char out[4]) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp >= 0xD800 && cp <= 0xDFFF) return 0;
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    if (cp <= 0x10FFFF) {
        out[0] = (char)(0xF0 | (cp >> 18));
        out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[3] = (char)(0x80 | (cp & 0x3F));
        return 4;
    }
    return 0;
}

/* ---- streaming detokenizer ------------------------------------------------
 *
 * The state keeps at most 3 bytes: a proper prefix of a well-formed sequence
 * that the next push may complete. Output never exceeds cap. With the
 * documented minimum (cap >= len + 8) every well-formed byte fits, because
 * the pending bytes plus the new ones are at most len + 3; a replacement is
 * written as U+FFFD when that still leaves room for the rest of the chunk,
 * otherwise as '?' (one byte for at least one dropped byte), so a chunk full
 * of garbage cannot overflow a buffer sized for the minimum. */

void slm_detok_init(slm_detok *d) {
    memset(d, 0, sizeof *d);
}

/* Writes one replacement for an ill-formed subpart, given how many input
 * bytes are still to be processed after it. */
static size_t put_replacement(char *out, size_t w, size_t cap, size_t rest) {
    if (w + 3 + rest <= cap) {
        memcpy(out + w, UTF8_REPLACEMENT, 3);
        return 3;
    }
    if (w + 1 <= cap) {
        out[w] = '?';
        return 1;
    }
    return 0;
}

size_t slm_detok_push(slm_detok *d, const char *bytes, size_t len, char *out, size_t cap) {
    if (d->n_pending < 0 || d->n_pending > 3) d->n_pending = 0;  /* never trust a bad state */
    if (!bytes) len = 0;
    size_t np = (size_t)d->n_pending;
    size_t n = np + len;         /* the stream: pending bytes, then the new ones */
    const unsigned char *b = (const unsigned char *)bytes;
    size_t w = 0, i = 0;
    d->n_pending = 0;
    while (i < n) {
        /* Fast path: plain ASCII from the new bytes. */
        if (i >= np && b[i - np] < 0x80) {
            if (w >= cap) break;
            out[w++] = (char)b[i - np];
            i++;
            continue;
        }
        unsigned char win[4];
        size_t avail = n - i < 4 ? n - i : 4;
        for (size_t j = 0; j < avail; j++) {
            size_t k = i + j;
            win[j] = k < np ? d->pending[k] : b[k - np];
        }
        int k = utf8_decode(win, avail, NULL);
        if (k > 0) {
            if (w + (size_t)k > cap) break;  /* only when cap < len + 8 */
            memcpy(out + w, win, (size_t)k);
            w += (size_t)k;
            i += (size_t)k;
        } else if (k < 0) {
            i += (size_t)-k;
            w += put_replacement(out, w, cap, n - i);
        } else {
            /* A proper prefix at the very end: keep it for the next push. */
            memcpy(d->pending, win, avail);
            d->n_pending = (int)avail;
            break;
        }
    }
    return w;
}

size_t slm_detok_flush(slm_detok *d, char *out, size_t cap) {
    size_t w = 0;
    if (d->n_pending > 0 && d->n_pending <= 3) w = put_replacement(out, 0, cap, 0);
    d->n_pending = 0;
    return w;
}
