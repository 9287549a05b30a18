/* fuzz/fuzz_inflate.c - libFuzzer harness: arbitrary compressed payloads through h2ws__pmd_inflate with small buffers and an output cap; plus a deflate -> inflate round trip mode. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "ws/deflate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define OUT_CAP (256 * 1024) /* the caller's max message size */

/*
 * Round trip: the input (after the control byte) is split into plaintext
 * messages at 0xfe 0xfe; each is deflated by our deflater (window 8..15,
 * odd output sizes) and must come back unchanged from our inflater and,
 * for window 8, from zlib's own inflater opened at windowBits -8 (our
 * window-9 + Z_RLE stream must fit a 256-byte window).
 */
static void roundtrip(uint8_t c, const uint8_t *data, size_t size) {
  int bits = 8 + (c & 7), nct = (c >> 3) & 1;
  h2ws_pmd_params p = {1, nct, nct, bits, bits};
  h2ws__pmd *tx = NULL, *rx = NULL;
  if (h2ws__pmd_new(&tx, &p, H2WS_ROLE_CLIENT, NULL) != 0 ||
      h2ws__pmd_new(&rx, &p, H2WS_ROLE_SERVER, NULL) != 0)
    abort();
  z_stream z;
  memset(&z, 0, sizeof(z));
  if (inflateInit2(&z, -8) != Z_OK) abort();
  size_t outsz = (size_t)1 + ((c >> 4) & 3) * 37;
  size_t cap = size + size / 8 + 128;
  uint8_t *comp = malloc(cap + 4), *plain = malloc(size + 1);
  if (!comp || !plain) abort();
  const uint8_t *msg = data, *end = data + size;
  for (;;) {
    const uint8_t *sep = msg;
    while (sep + 1 < end && !(sep[0] == 0xfe && sep[1] == 0xfe)) sep++;
    if (sep + 1 >= end) sep = end;
    size_t len = (size_t)(sep - msg), pos = 0, clen = 0;
    for (int r = 0, guard = 0; r != 1; guard++) {
      size_t nout = 0, nin = 0, n = len - pos < 50 ? len - pos : 50;
      r = h2ws__pmd_deflate(tx, n ? msg + pos : NULL, n, pos + n == len,
                            comp + clen, outsz, &nout, &nin);
      if (r < 0 || guard > 100000) abort();
      pos += nin;
      clen += nout;
      if (clen + outsz > cap) abort(); /* beyond the bound */
    }
    if (pos != len || clen > h2ws__pmd_deflate_bound(tx, len)) abort();
    /* Our inflater, whole. */
    const uint8_t *ip = comp;
    size_t il = clen, got = 0;
    for (int r = 0, guard = 0; r != 1; guard++) {
      size_t nout = 0;
      r = h2ws__pmd_inflate(rx, &ip, &il, plain + got, len + 1 - got, &nout, 1);
      if (r < 0 || guard > 100) abort();
      got += nout;
    }
    if (got != len || (len && memcmp(plain, msg, len) != 0)) abort();
    if (bits == 8 && !nct) {
      static const uint8_t tail[4] = {0, 0, 0xff, 0xff};
      memcpy(comp + clen, tail, 4);
      /* One output byte per call: back-references must come from zlib's
       * 256-byte window. */
      z.next_in = comp;
      z.avail_in = (uInt)(clen + 4);
      size_t n8 = 0;
      int zr = Z_OK;
      while (zr == Z_OK && n8 <= len) {
        z.next_out = plain + n8;
        z.avail_out = 1;
        zr = inflate(&z, Z_SYNC_FLUSH);
        n8 += 1 - z.avail_out;
        if (z.avail_out == 1 && z.avail_in == 0) break;
      }
      if ((zr != Z_OK && zr != Z_BUF_ERROR) || z.avail_in != 0 || n8 != len ||
          (len && memcmp(plain, msg, len) != 0))
        abort();
    }
    if (sep == end) break;
    msg = sep + 2;
  }
  inflateEnd(&z);
  free(comp);
  free(plain);
  h2ws__pmd_del(tx);
  h2ws__pmd_del(rx);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size >= 1 && (data[0] & 0x80)) {
    roundtrip(data[0], data + 1, size - 1);
    return 0;
  }
  /* data[0]: window bits, takeover, buffer sizes; then messages separated
   * by the byte pair 0xfe 0xfe (each fed in chunks). */
  if (size < 1) return 0;
  uint8_t c = data[0];
  h2ws_pmd_params p = {1, (c >> 3) & 1, (c >> 3) & 1, 8 + (c & 7), 8 + (c & 7)};
  h2ws__pmd *pmd = NULL;
  if (h2ws__pmd_new(&pmd, &p, H2WS_ROLE_CLIENT, NULL) != 0) abort();
  size_t outsz = (size_t)1 + ((c >> 4) & 3) * 100; /* 1, 101, 201, 301 */
  size_t inchunk = (c & 0x40) ? 3 : 4096; /* bit 7: round trip mode */
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
