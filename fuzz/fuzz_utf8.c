/* fuzz/fuzz_utf8.c - libFuzzer harness for lib/ws/utf8.c: the fast
 * validator, on the whole input and split in two (and byte by byte) at a
 * point taken from the input, must agree with a simple reference validator
 * on the verdict, the exact offset of the first bad byte and completeness. */
#include <stdlib.h>
#include <string.h>

#include <h2ws/ws.h>

#include "ws/utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Reference: first offset that cannot continue valid UTF-8 (RFC 3629 §4
 * syntax), or len; *popen = 1 if the input ends inside a sequence. */
static size_t ref_check(const uint8_t *d, size_t len, int *popen) {
  size_t i = 0;
  *popen = 0;
  while (i < len) {
    uint8_t b = d[i];
    size_t n;
    uint8_t lo = 0x80, hi = 0xBF;
    if (b <= 0x7F) n = 1;
    else if (b >= 0xC2 && b <= 0xDF) n = 2;
    else if (b == 0xE0) { n = 3; lo = 0xA0; }
    else if (b == 0xED) { n = 3; hi = 0x9F; }
    else if (b >= 0xE1 && b <= 0xEF) n = 3;
    else if (b == 0xF0) { n = 4; lo = 0x90; }
    else if (b == 0xF4) { n = 4; hi = 0x8F; }
    else if (b >= 0xF1 && b <= 0xF3) n = 4;
    else return i;
    for (size_t k = 1; k < n; k++) {
      if (i + k >= len) { *popen = 1; return len; }
      uint8_t c = d[i + k];
      if (c < (k == 1 ? lo : 0x80) || c > (k == 1 ? hi : 0xBF)) return i + k;
    }
    i += n;
  }
  return len;
}

/* Feeds chunks ending at cuts[] then the rest; checks against want. */
static void run(const uint8_t *d, size_t len, const size_t *cuts, size_t ncuts,
                size_t want, int open) {
  h2ws__utf8 u;
  h2ws__utf8_reset(&u);
  size_t pos = 0;
  for (size_t c = 0; c <= ncuts; c++) {
    size_t end = c < ncuts ? cuts[c] : len;
    size_t bad = (size_t)-1;
    if (h2ws__utf8_feed(&u, d + pos, end - pos, &bad) != 0) {
      if (want == len || pos + bad != want) abort();
      return;
    }
    if (want < end) abort();
    pos = end;
  }
  if (want != len) abort();
  if (h2ws__utf8_complete(&u) != !open) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2) return 0;
  size_t split = ((size_t)data[0] << 8 | data[1]);
  const uint8_t *d = data + 2;
  size_t len = size - 2;
  /* a private copy so ASan sees reads past the end */
  uint8_t *copy = malloc(len ? len : 1);
  if (!copy) return 0;
  memcpy(copy, d, len);
  int open;
  size_t want = ref_check(copy, len, &open);
  run(copy, len, NULL, 0, want, open);
  size_t cut = len ? split % (len + 1) : 0;
  run(copy, len, &cut, 1, want, open);
  size_t cuts[3] = {cut / 3, cut, cut + (len - cut) / 2};
  run(copy, len, cuts, 3, want, open);
  if (h2ws_utf8_is_valid(copy, len) != (want == len && !open)) abort();
  free(copy);
  return 0;
}
