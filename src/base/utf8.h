/* UTF-8 helpers: strict validation and decoding (RFC 3629: no overlong forms,
 * no surrogates, nothing above U+10FFFF) and the streaming detokenizer behind
 * the public slm_detok_* functions.
 *
 * Ill-formed input is replaced following the Unicode "maximal subpart"
 * practice (also what WHATWG and Python's errors="replace" do): a lead byte
 * followed by the longest run of continuation bytes that could still belong
 * to a valid sequence becomes one U+FFFD, and decoding restarts at the first
 * byte that did not fit. A byte that can never start a sequence (80..BF,
 * C0, C1, F5..FF) is a subpart of its own. */
#ifndef SLM_BASE_UTF8_H
#define SLM_BASE_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* slm_detok_push never writes more than cap. With the documented minimum
 * (cap >= len + 8) all well-formed bytes always fit; a replacement is U+FFFD
 * while that leaves room for the rest of the chunk, else '?' -- only a chunk
 * with many ill-formed bytes and a minimal buffer sees '?'. */

/* U+FFFD REPLACEMENT CHARACTER as UTF-8. */
#define UTF8_REPLACEMENT "\xEF\xBF\xBD"

/* Length of the sequence a lead byte announces: 1..4, or 0 if the byte can
 * never start a well-formed sequence. */
int utf8_lead_len(unsigned char lead);

/* Examines the sequence at s[0..n), n >= 1. Returns
 *   k > 0: s starts with a well-formed sequence of k bytes (*cp = its value);
 *   k < 0: s starts with an ill-formed maximal subpart of -k bytes;
 *   0:     s[0..n) is a proper prefix of a well-formed sequence (more bytes
 *          are needed to decide). */
int utf8_decode(const unsigned char *s, size_t n, uint32_t *cp);

/* True if s[0..n) is entirely well-formed. Otherwise *bad_off (if not NULL)
 * gets the offset of the first byte of the first ill-formed or truncated
 * sequence. */
bool utf8_validate(const char *s, size_t n, size_t *bad_off);

/* Writes cp (<= 0x10FFFF, not a surrogate) as 1..4 bytes; returns the count,
 * or 0 for a value that has no UTF-8 form. */
int utf8_encode(uint32_t cp, char out[4]);

#endif
