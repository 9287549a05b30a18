/* lib/ws/utf8.h - incremental UTF-8 validation (RFC 3629), ASCII fast path. */
#ifndef H2WS_LIB_WS_UTF8_H
#define H2WS_LIB_WS_UTF8_H
#include <stddef.h>
#include <stdint.h>

/*
 * Validator state carried across chunks (fragments, DATA frames, reads).
 * Zero-initialise (or h2ws__utf8_reset) at the start of each text message.
 */
typedef struct h2ws__utf8 {
  uint32_t state; /* 0 = between code points; other values are private */
  uint32_t aux;   /* private */
} h2ws__utf8;

static inline void h2ws__utf8_reset(h2ws__utf8 *u) { u->state = 0; u->aux = 0; }

/*
 * Validates the next chunk.  Returns 0 if every byte so far can still be
 * the start of valid UTF-8 (a sequence may be left open at the chunk's
 * end), or -1 at the first byte that makes the text invalid (overlong
 * forms, surrogates U+D800..U+DFFF, code points above U+10FFFF, bad
 * continuation or lead bytes): then *pbad (if not NULL) receives that
 * byte's offset in this chunk.  Fails fast: the byte is reported as soon as
 * it is seen, not at the end of the sequence.  After -1 the state is
 * undefined until reset.
 */
int h2ws__utf8_feed(h2ws__utf8 *u, const uint8_t *data, size_t len,
                    size_t *pbad);

/* Nonzero if the text so far ends on a complete code point (call at the
 * end of a message: an open sequence there is invalid, close 1007). */
static inline int h2ws__utf8_complete(const h2ws__utf8 *u) { return u->state == 0; }

#endif
