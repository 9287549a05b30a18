/* lib/ws/utf8.c - incremental, fail-fast UTF-8 validation (RFC 3629): a
 * scalar state machine (authoritative, finds the exact bad byte) with an
 * ASCII word fast path, and an AVX2 (or SSSE3) nibble-table range check
 * that clears long runs of text in 32- (16-) byte blocks (runtime dispatch). */
#include "ws/utf8.h"

#include <string.h>

#include <h2ws/ws.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(H2WS_NO_SIMD)
#define UTF8_X86 1 /* -DH2WS_NO_SIMD forces the portable scalar path */
#include <immintrin.h>
#endif

/*
 * State: u->state = continuation bytes still expected (0..3); u->aux = the
 * range allowed for the next one, lo | hi << 8 (only the first continuation
 * byte after E0, ED, F0 and F4 is narrower than 80..BF).
 */
#define RANGE(lo, hi) ((uint32_t)(lo) | (uint32_t)(hi) << 8)

/* Scalar validation of data[i..len) from state *u; the reference for the
 * error offset.  Returns 0 or -1 with *pbad set. */
static int utf8_scalar(h2ws__utf8 *u, const uint8_t *data, size_t i, size_t len,
                       size_t *pbad) {
  uint32_t rem = u->state, range = u->aux;
  while (i < len) {
    if (rem == 0) {
      /* ASCII fast path: 32 bytes (four words) at a time, then 8. */
      while (i + 32 <= len) {
        uint64_t w[4];
        memcpy(w, data + i, 32);
        if ((w[0] | w[1] | w[2] | w[3]) & 0x8080808080808080ull) break;
        i += 32;
      }
      while (i + 8 <= len) {
        uint64_t w;
        memcpy(&w, data + i, 8);
        if (w & 0x8080808080808080ull) break;
        i += 8;
      }
      if (i == len) break;
      uint8_t b = data[i];
      if (b < 0x80) {
        i++;
        continue;
      }
      /* RFC 3629 §4: C0, C1 would be overlong 2-byte forms; F5..FF would
       * encode above U+10FFFF; 80..BF cannot start a character. */
      if (b < 0xC2 || b > 0xF4) goto bad;
      if (b < 0xE0) {
        rem = 1;
        range = RANGE(0x80, 0xBF);
      } else if (b < 0xF0) {
        rem = 2;
        /* E0 80..9F: overlong; ED A0..BF: surrogates U+D800..U+DFFF. */
        range = RANGE(b == 0xE0 ? 0xA0 : 0x80, b == 0xED ? 0x9F : 0xBF);
      } else {
        rem = 3;
        /* F0 80..8F: overlong; F4 90..BF: above U+10FFFF. */
        range = RANGE(b == 0xF0 ? 0x90 : 0x80, b == 0xF4 ? 0x8F : 0xBF);
      }
      i++;
      /* Whole 2- and 3-byte sequences inside the chunk, without the loop. */
      if (rem == 1 && i < len) {
        if ((data[i] & 0xC0) != 0x80) goto bad;
        rem = 0;
        i++;
      } else if (rem == 2 && i + 1 < len) {
        if (data[i] < (range & 0xFF) || data[i] > (range >> 8)) goto bad;
        i++;
        if ((data[i] & 0xC0) != 0x80) goto bad;
        rem = 0;
        i++;
      }
      continue;
    }
    uint8_t c = data[i];
    if (c < (range & 0xFF) || c > (range >> 8)) goto bad;
    range = RANGE(0x80, 0xBF);
    rem--;
    i++;
  }
  u->state = rem;
  u->aux = range;
  return 0;
bad:
  if (pbad) *pbad = i;
  return -1;
}

#ifdef UTF8_X86
/* Error classes of a (previous byte, current byte) pair.  Each class is the
 * product of a set of high nibbles of prev, low nibbles of prev and high
 * nibbles of cur, so three 16-entry tables ANDed together flag it. */
#define E_SHORT 0x01     /* lead byte followed by a non-continuation */
#define E_LONG 0x02      /* ASCII followed by a continuation */
#define E_OVL2 0x04      /* C0, C1 + continuation (overlong) */
#define E_OVL3 0x08      /* E0 + 80..9F (overlong) */
#define E_SURR 0x10      /* ED + A0..BF (surrogate) */
#define E_OVL4 0x20      /* F0, F5..FF + 80..8F (overlong / too large) */
#define E_BIG 0x40       /* F4..FF + 90..BF (above U+10FFFF) */
#define E_TWOCONT 0x80   /* continuation + continuation: must be 3rd/4th */

#define LEAD_ALL (E_SHORT | E_LONG | E_TWOCONT)
/* Builds a 16-entry table broadcast to both lanes of a 256-bit vector. */
#define TAB16(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, aA, aB, aC, aD, aE, aF)        \
  _mm256_setr_epi8((char)(a0), (char)(a1), (char)(a2), (char)(a3), (char)(a4),       \
                   (char)(a5), (char)(a6), (char)(a7), (char)(a8), (char)(a9),       \
                   (char)(aA), (char)(aB), (char)(aC), (char)(aD), (char)(aE),       \
                   (char)(aF), (char)(a0), (char)(a1), (char)(a2), (char)(a3),       \
                   (char)(a4), (char)(a5), (char)(a6), (char)(a7), (char)(a8),       \
                   (char)(a9), (char)(aA), (char)(aB), (char)(aC), (char)(aD),       \
                   (char)(aE), (char)(aF))

/* prev_n: the block shifted right by n bytes with the tail of `prev` in front. */
#define PREVN(in, prev, n)                                                            \
  _mm256_alignr_epi8((in), _mm256_permute2x128_si256((prev), (in), 0x21), 16 - (n))

/* Nonzero if the 32 bytes `in`, preceded by `prev`, contain a UTF-8 error
 * (not counting sequences left open at the block's end). */
__attribute__((target("avx2"))) static int utf8_block_bad(__m256i in, __m256i prev) {
  const __m256i nib = _mm256_set1_epi8(0x0F);
  /* By high nibble of the previous byte. */
  const __m256i t1 = TAB16(E_LONG, E_LONG, E_LONG, E_LONG, E_LONG, E_LONG, E_LONG, E_LONG,
                           E_TWOCONT, E_TWOCONT, E_TWOCONT, E_TWOCONT,
                           E_SHORT | E_OVL2, E_SHORT, E_SHORT | E_OVL3 | E_SURR,
                           E_SHORT | E_OVL4 | E_BIG);
  /* By low nibble of the previous byte. */
  const __m256i t2 = TAB16(LEAD_ALL | E_OVL2 | E_OVL3 | E_OVL4, LEAD_ALL | E_OVL2, LEAD_ALL,
                           LEAD_ALL, LEAD_ALL | E_BIG, LEAD_ALL | E_OVL4 | E_BIG,
                           LEAD_ALL | E_OVL4 | E_BIG, LEAD_ALL | E_OVL4 | E_BIG,
                           LEAD_ALL | E_OVL4 | E_BIG, LEAD_ALL | E_OVL4 | E_BIG,
                           LEAD_ALL | E_OVL4 | E_BIG, LEAD_ALL | E_OVL4 | E_BIG,
                           LEAD_ALL | E_OVL4 | E_BIG, LEAD_ALL | E_OVL4 | E_BIG | E_SURR,
                           LEAD_ALL | E_OVL4 | E_BIG, LEAD_ALL | E_OVL4 | E_BIG);
  /* By high nibble of the current byte. */
  const __m256i t3 = TAB16(E_SHORT, E_SHORT, E_SHORT, E_SHORT, E_SHORT, E_SHORT, E_SHORT,
                           E_SHORT,
                           E_LONG | E_TWOCONT | E_OVL2 | E_OVL3 | E_OVL4,
                           E_LONG | E_TWOCONT | E_OVL2 | E_OVL3 | E_BIG,
                           E_LONG | E_TWOCONT | E_OVL2 | E_SURR | E_BIG,
                           E_LONG | E_TWOCONT | E_OVL2 | E_SURR | E_BIG,
                           E_SHORT, E_SHORT, E_SHORT, E_SHORT);
  __m256i p1 = PREVN(in, prev, 1);
  __m256i a = _mm256_shuffle_epi8(t1, _mm256_and_si256(_mm256_srli_epi16(p1, 4), nib));
  __m256i b = _mm256_shuffle_epi8(t2, _mm256_and_si256(p1, nib));
  __m256i c = _mm256_shuffle_epi8(t3, _mm256_and_si256(_mm256_srli_epi16(in, 4), nib));
  __m256i special = _mm256_and_si256(_mm256_and_si256(a, b), c);
  /* A continuation after a continuation is right only as the 3rd byte of
   * E0..FF or the 3rd/4th of F0..FF: bit 7 of prev2 - 0x60 / prev3 - 0x70
   * (saturated) is set exactly then; XOR cancels E_TWOCONT. */
  __m256i p2 = PREVN(in, prev, 2);
  __m256i p3 = PREVN(in, prev, 3);
  __m256i m3 = _mm256_subs_epu8(p2, _mm256_set1_epi8(0x60));
  __m256i m4 = _mm256_subs_epu8(p3, _mm256_set1_epi8(0x70));
  __m256i must = _mm256_and_si256(_mm256_or_si256(m3, m4), _mm256_set1_epi8((char)0x80));
  __m256i err = _mm256_xor_si256(special, must);
  return !_mm256_testz_si256(err, err);
}

/* The code point boundary at or before p (start <= p, data[start..p)
 * checked): steps back to a lead byte whose sequence runs past p. */
static size_t utf8_backoff(const uint8_t *data, size_t start, size_t p) {
  if (p - start >= 1 && data[p - 1] >= 0xC0) return p - 1;
  if (p - start >= 2 && data[p - 2] >= 0xE0) return p - 2;
  if (p - start >= 3 && data[p - 3] >= 0xF0) return p - 3;
  return p;
}

/* Checks whole 32-byte blocks of data[start..len) (start on a code point
 * boundary).  Returns a boundary r: data[start..r) is valid UTF-8 and the
 * scalar path resumes at r (at the block holding an error, if any). */
__attribute__((target("avx2"))) static size_t utf8_avx2(const uint8_t *data, size_t start,
                                                        size_t len) {
  __m256i prev = _mm256_setzero_si256();
  size_t p = start;
  int prev_ascii = 1;
  while (p + 32 <= len) {
    __m256i in = _mm256_loadu_si256((const __m256i *)(const void *)(data + p));
    if (_mm256_movemask_epi8(in) == 0) {
      /* An all-ASCII block: the previous one must not end mid-sequence. */
      if (!prev_ascii && utf8_backoff(data, start, p) != p) break;
      prev_ascii = 1;
      p += 32;
      /* Long ASCII runs: 64 bytes per step. */
      while (p + 64 <= len) {
        __m256i x = _mm256_loadu_si256((const __m256i *)(const void *)(data + p));
        __m256i y = _mm256_loadu_si256((const __m256i *)(const void *)(data + p + 32));
        if (_mm256_movemask_epi8(_mm256_or_si256(x, y)) != 0) break;
        p += 64;
      }
      prev = _mm256_loadu_si256((const __m256i *)(const void *)(data + p - 32));
      continue;
    }
    if (utf8_block_bad(in, prev)) break;
    prev = in;
    prev_ascii = 0;
    p += 32;
  }
  return utf8_backoff(data, start, p);
}
/* The same check on 16-byte blocks with SSSE3 (pshufb), for x86-64 CPUs
 * without AVX2. */
#define TAB16X(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, aA, aB, aC, aD, aE, aF)       \
  _mm_setr_epi8((char)(a0), (char)(a1), (char)(a2), (char)(a3), (char)(a4),           \
                (char)(a5), (char)(a6), (char)(a7), (char)(a8), (char)(a9),           \
                (char)(aA), (char)(aB), (char)(aC), (char)(aD), (char)(aE), (char)(aF))

__attribute__((target("ssse3"))) static int utf8_block_bad_ssse3(__m128i in, __m128i prev) {
  const __m128i nib = _mm_set1_epi8(0x0F);
  const __m128i t1 = TAB16X(E_LONG, E_LONG, E_LONG, E_LONG, E_LONG, E_LONG, E_LONG, E_LONG,
                            E_TWOCONT, E_TWOCONT, E_TWOCONT, E_TWOCONT,
                            E_SHORT | E_OVL2, E_SHORT, E_SHORT | E_OVL3 | E_SURR,
                            E_SHORT | E_OVL4 | E_BIG);
  const __m128i t2 = TAB16X(LEAD_ALL | E_OVL2 | E_OVL3 | E_OVL4, LEAD_ALL | E_OVL2, LEAD_ALL,
                            LEAD_ALL, LEAD_ALL | E_BIG, LEAD_ALL | E_OVL4 | E_BIG,
                            LEAD_ALL | E_OVL4 | E_BIG, LEAD_ALL | E_OVL4 | E_BIG,
                            LEAD_ALL | E_OVL4 | E_BIG, LEAD_ALL | E_OVL4 | E_BIG,
                            LEAD_ALL | E_OVL4 | E_BIG, LEAD_ALL | E_OVL4 | E_BIG,
                            LEAD_ALL | E_OVL4 | E_BIG, LEAD_ALL | E_OVL4 | E_BIG | E_SURR,
                            LEAD_ALL | E_OVL4 | E_BIG, LEAD_ALL | E_OVL4 | E_BIG);
  const __m128i t3 = TAB16X(E_SHORT, E_SHORT, E_SHORT, E_SHORT, E_SHORT, E_SHORT, E_SHORT,
                            E_SHORT,
                            E_LONG | E_TWOCONT | E_OVL2 | E_OVL3 | E_OVL4,
                            E_LONG | E_TWOCONT | E_OVL2 | E_OVL3 | E_BIG,
                            E_LONG | E_TWOCONT | E_OVL2 | E_SURR | E_BIG,
                            E_LONG | E_TWOCONT | E_OVL2 | E_SURR | E_BIG,
                            E_SHORT, E_SHORT, E_SHORT, E_SHORT);
  __m128i p1 = _mm_alignr_epi8(in, prev, 15);
  __m128i a = _mm_shuffle_epi8(t1, _mm_and_si128(_mm_srli_epi16(p1, 4), nib));
  __m128i b = _mm_shuffle_epi8(t2, _mm_and_si128(p1, nib));
  __m128i c = _mm_shuffle_epi8(t3, _mm_and_si128(_mm_srli_epi16(in, 4), nib));
  __m128i special = _mm_and_si128(_mm_and_si128(a, b), c);
  __m128i m3 = _mm_subs_epu8(_mm_alignr_epi8(in, prev, 14), _mm_set1_epi8(0x60));
  __m128i m4 = _mm_subs_epu8(_mm_alignr_epi8(in, prev, 13), _mm_set1_epi8(0x70));
  __m128i must = _mm_and_si128(_mm_or_si128(m3, m4), _mm_set1_epi8((char)0x80));
  __m128i err = _mm_xor_si128(special, must);
  return _mm_movemask_epi8(_mm_cmpeq_epi8(err, _mm_setzero_si128())) != 0xFFFF;
}

/* utf8_avx2 with 16-byte blocks. */
__attribute__((target("ssse3"))) static size_t utf8_ssse3(const uint8_t *data, size_t start,
                                                          size_t len) {
  __m128i prev = _mm_setzero_si128();
  size_t p = start;
  int prev_ascii = 1;
  while (p + 16 <= len) {
    __m128i in = _mm_loadu_si128((const __m128i *)(const void *)(data + p));
    if (_mm_movemask_epi8(in) == 0) {
      if (!prev_ascii && utf8_backoff(data, start, p) != p) break;
      prev_ascii = 1;
      p += 16;
      while (p + 64 <= len) { /* long ASCII runs: 64 bytes per step */
        __m128i x = _mm_or_si128(_mm_loadu_si128((const __m128i *)(const void *)(data + p)),
                                 _mm_loadu_si128((const __m128i *)(const void *)(data + p + 16)));
        __m128i y = _mm_or_si128(_mm_loadu_si128((const __m128i *)(const void *)(data + p + 32)),
                                 _mm_loadu_si128((const __m128i *)(const void *)(data + p + 48)));
        if (_mm_movemask_epi8(_mm_or_si128(x, y)) != 0) break;
        p += 64;
      }
      prev = _mm_loadu_si128((const __m128i *)(const void *)(data + p - 16));
      continue;
    }
    if (utf8_block_bad_ssse3(in, prev)) break;
    prev = in;
    prev_ascii = 0;
    p += 16;
  }
  return utf8_backoff(data, start, p);
}
#endif

int h2ws__utf8_feed(h2ws__utf8 *u, const uint8_t *data, size_t len, size_t *pbad) {
  size_t i = 0;
  if (len == 0) return 0;
  /* Finish a sequence left open by the previous chunk. */
  while (u->state != 0 && i < len) {
    uint8_t c = data[i];
    if (c < (u->aux & 0xFF) || c > (u->aux >> 8)) {
      if (pbad) *pbad = i;
      return -1;
    }
    u->aux = RANGE(0x80, 0xBF);
    u->state--;
    i++;
  }
#ifdef UTF8_X86
  /* -DH2WS_UTF8_NO_AVX2 (tests only) exercises the SSSE3 path. */
  if (len - i >= 64) {
#ifndef H2WS_UTF8_NO_AVX2
    if (__builtin_cpu_supports("avx2"))
      i = utf8_avx2(data, i, len);
    else
#endif
    if (__builtin_cpu_supports("ssse3"))
      i = utf8_ssse3(data, i, len);
  }
#endif
  return utf8_scalar(u, data, i, len, pbad);
}

int h2ws_utf8_is_valid(const uint8_t *data, size_t datalen) {
  h2ws__utf8 u;
  h2ws__utf8_reset(&u);
  if (datalen && h2ws__utf8_feed(&u, data, datalen, NULL) != 0) return 0;
  /* RFC 6455 §8.1: the text must end on a complete code point. */
  return h2ws__utf8_complete(&u);
}
