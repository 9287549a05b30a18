/* lib/ws/mask.h - RFC 6455 §5.3 masking: XOR with a 4-byte key, by words. */
#ifndef H2WS_LIB_WS_MASK_H
#define H2WS_LIB_WS_MASK_H
#include <stddef.h>
#include <stdint.h>

/*
 * dst[i] = src[i] ^ key[(phase + i) % 4] for i in [0, len), processed by
 * machine words / SIMD (no per-byte modulo).  dst may equal src (in-place)
 * but the ranges must not otherwise overlap.  `phase` (0..3) is the key
 * position of src[0], so a payload split across calls unmasks the same as
 * a whole one.  Returns the phase for the byte after the last: (phase+len)%4.
 */
size_t h2ws__mask(uint8_t *dst, const uint8_t *src, size_t len,
                  const uint8_t key[4], size_t phase);

#endif
