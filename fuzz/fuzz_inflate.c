/* fuzz/fuzz_inflate.c - libFuzzer harness: arbitrary compressed payloads through h2ws__pmd_inflate with small buffers and an output cap. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ws/deflate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define OUT_CAP (256 * 1024) /* the caller's max message size */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* data[0]: window bits, takeover, buffer sizes; then messages separated
   * by the byte pair 0xfe 0xfe (each fed in chunks). */
  if (size < 1) return 0;
  uint8_t c = data[0];
  h2ws_pmd_params p = {1, (c >> 3) & 1, (c >> 3) & 1, 8 + (c & 7), 8 + (c & 7)};
  h2ws__pmd *pmd = NULL;
  if (h2ws__pmd_new(&pmd, &p, H2WS_ROLE_CLIENT, NULL) != 0) abort();
  size_t outsz = (size_t)1 + ((c >> 4) & 3) * 100; /* 1, 101, 201, 301 */
  size_t inchunk = (c & 0x40) ? 3 : 4096;
  uint8_t out[512];
  const uint8_t *msg = data + 1;
  const uint8_t *end = data + size;
  for (;;) {
    const uint8_t *sep = msg;
    while (sep + 1 < end && !(sep[0] == 0xfe && sep[1] == 0xfe)) sep++;
    if (sep + 1 >= end) sep = end;
    int last = sep == end;
    size_t len = (size_t)(sep - msg), pos = 0, total = 0;
    int r = 0, failed = 0;
    while (!failed) {
      size_t n = len - pos < inchunk ? len - pos : inchunk;
      int fin = pos + n == len;
      const uint8_t *ip = msg + pos;
      size_t il = n;
      int idle = 0;
      for (;;) {
        size_t nout = 0, before = il;
        r = h2ws__pmd_inflate(pmd, &ip, &il, out, outsz, &nout, fin);
        if (nout > outsz || il > before) abort();
        total += nout;
        if (r < 0) {
          if (r != H2WS_ERR_BAD_DATA) abort();
          failed = 1;
          break;
        }
        if (total > OUT_CAP) { failed = 1; break; } /* close 1009 */
        if (r == 1) break;
        if (il == 0 && !fin && nout < outsz) break;
        idle = (nout == 0 && il == before) ? idle + 1 : 0;
        if (idle > 4) abort(); /* no progress and no verdict: a hang */
      }
      pos += n - il;
      if (failed || r == 1) break;
    }
    if (failed) break; /* a real engine fails the WebSocket here */
    if (r == 1 && pos != len) abort();
    if (last) break;
    msg = sep + 2;
  }
  h2ws__pmd_del(pmd);
  return 0;
}
