/* lib/ws/mask.c - RFC 6455 §5.3 payload masking: XOR with a 4-byte key by
 * AVX2 (runtime dispatch) / SSE2 vectors, 64-bit words, then a byte tail. */
#include "ws/mask.h"

#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(H2WS_NO_SIMD)
#define MASK_X86 1 /* -DH2WS_NO_SIMD forces the portable word path */
#include <immintrin.h>
#endif

#ifdef MASK_X86
/* 64 bytes per iteration with 256-bit vectors; loads precede stores so
 * dst == src is fine.  Returns the bytes processed (a multiple of 32). */
__attribute__((target("avx2"))) static size_t mask_avx2(uint8_t *dst, const uint8_t *src,
                                                        size_t len, uint32_t k32) {
  const __m256i k = _mm256_set1_epi32((int)k32);
  size_t i = 0;
  for (; i + 64 <= len; i += 64) {
    __m256i a = _mm256_loadu_si256((const __m256i *)(const void *)(src + i));
    __m256i b = _mm256_loadu_si256((const __m256i *)(const void *)(src + i + 32));
    _mm256_storeu_si256((__m256i *)(void *)(dst + i), _mm256_xor_si256(a, k));
    _mm256_storeu_si256((__m256i *)(void *)(dst + i + 32), _mm256_xor_si256(b, k));
  }
  for (; i + 32 <= len; i += 32) {
    __m256i a = _mm256_loadu_si256((const __m256i *)(const void *)(src + i));
    _mm256_storeu_si256((__m256i *)(void *)(dst + i), _mm256_xor_si256(a, k));
  }
  return i;
}

/* SSE2 is baseline on x86-64: 16 bytes at a time. */
static size_t mask_sse2(uint8_t *dst, const uint8_t *src, size_t len, uint32_t k32) {
  const __m128i k = _mm_set1_epi32((int)k32);
  size_t i = 0;
  for (; i + 32 <= len; i += 32) {
    __m128i a = _mm_loadu_si128((const __m128i *)(const void *)(src + i));
    __m128i b = _mm_loadu_si128((const __m128i *)(const void *)(src + i + 16));
    _mm_storeu_si128((__m128i *)(void *)(dst + i), _mm_xor_si128(a, k));
    _mm_storeu_si128((__m128i *)(void *)(dst + i + 16), _mm_xor_si128(b, k));
  }
  for (; i + 16 <= len; i += 16) {
    __m128i a = _mm_loadu_si128((const __m128i *)(const void *)(src + i));
    _mm_storeu_si128((__m128i *)(void *)(dst + i), _mm_xor_si128(a, k));
  }
  return i;
}
#endif

size_t h2ws__mask(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t key[4],
                  size_t phase) {
  /* RFC 6455 §5.3: octet i of the payload is XORed with masking-key octet
   * (i MOD 4); `phase` is the position of src[0] in that cycle, so the key
   * is rotated once here and every block below is a multiple of 4 bytes. */
  uint8_t rk[8];
  size_t ph = phase & 3;
  for (size_t j = 0; j < 4; j++) rk[j] = rk[j + 4] = key[(ph + j) & 3];
  uint32_t k32;
  uint64_t k64;
  memcpy(&k32, rk, 4);
  memcpy(&k64, rk, 8);
  size_t i = 0;
#ifdef MASK_X86
  if (len >= 128 && __builtin_cpu_supports("avx2"))
    i = mask_avx2(dst, src, len, k32);
  i += mask_sse2(dst + i, src + i, len - i, k32);
#endif
  /* Portable path (and the tail of the vector path): 64-bit words through
   * memcpy, which compiles to unaligned loads/stores. */
  for (; i + 32 <= len; i += 32) {
    uint64_t w[4];
    memcpy(w, src + i, 32);
    w[0] ^= k64;
    w[1] ^= k64;
    w[2] ^= k64;
    w[3] ^= k64;
    memcpy(dst + i, w, 32);
  }
  for (; i + 8 <= len; i += 8) {
    uint64_t w;
    memcpy(&w, src + i, 8);
    w ^= k64;
    memcpy(dst + i, &w, 8);
  }
  for (size_t j = 0; i < len; i++, j++) dst[i] = src[i] ^ rk[j];
  (void)k32;
  return (ph + len) & 3;
}
