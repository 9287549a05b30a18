/* fuzz/fuzz_pmd_diff.c - libFuzzer harness: permessage-deflate (RFC 7692)
 * of h2ws (lib/ws/deflate.c, the h2ws__pmd_* calls the engine makes)
 * against plain zlib, differentially.
 *
 * Input: byte 0 = window bits - 8 (bits 0-2), no_context_takeover (bit
 * 3, both directions), zlib's BFINAL (bit 4), mode (bit 5), output piece
 * size (bits 6-7); byte
 * 1 = zlib's level (bits 0-3, 10..15 -> 9), strategy (bits 4-6), small
 * input pieces (bit 7); then messages separated by the byte pair 0xfe
 * 0xfe.
 *
 * Mode 0 (plaintext messages), both ways, every message compared byte for
 * byte:
 *  A. h2ws deflates (in pieces, odd output sizes) -> zlib inflates raw at
 *     exactly the agreed window (8 included, one output byte per call so
 *     the window is checked exactly: h2ws sends 8 as 9 + Z_RLE,
 *     docs/design.md, so its stream must fit a 256-byte window), the tail
 *     0x00 0x00 0xff 0xff appended: every message must come back, end on
 *     a block boundary and not end the deflate stream;
 *  B. zlib deflates (level, memLevel, strategy from byte 1; flush
 *     Z_SYNC_FLUSH with the tail stripped, or Z_FULL_FLUSH, or Z_FINISH:
 *     a BFINAL block, RFC 7692 7.2.3.4, the stream then reset) at the
 *     window (9 for 8: zlib cannot deflate with 8, and h2ws inflates with
 *     at least 9 for such peers) -> h2ws inflates: every message must come
 *     back.
 * Mode 1 (the messages are arbitrary compressed payloads): h2ws's inflate
 * and zlib's raw inflate (window max(bits, 9), as h2ws's inflater) with
 * RFC 7692's rules around it (the tail appended; accepted at a block
 * boundary or at the end of a BFINAL block, the rest ignored; an empty
 * payload is the empty message; with context takeover the window carries
 * over, also across a BFINAL) must agree on accept / reject and, when
 * they accept, on the bytes.  zlib checks distances against its window
 * only across calls, so h2ws (output in pieces) may reject a stream that
 * refers beyond the window and one big zlib call accepts: that is a
 * mismatch only if zlib with one output byte per call (window-exact)
 * accepts it too.  A message inflating past OUT_CAP (the
 * caller's message size cap, a documented limit: the engine closes 1009)
 * ends the comparison without a verdict.  The first rejection ends the
 * run (a real engine fails the WebSocket there). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "ws/deflate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define OUT_CAP (1u << 20)

static const uint8_t tail[4] = {0, 0, 0xff, 0xff};
static uint8_t got[OUT_CAP + 1], ref[OUT_CAP + 1];
static int debug = -1; /* FZ_PMD_DEBUG=1: each verdict to stderr */

typedef struct msgs {
  const uint8_t *p[256];
  size_t n[256];
  size_t count;
} msgs;

static void split(const uint8_t *d, size_t size, msgs *m) {
  const uint8_t *msg = d, *end = d + size;
  m->count = 0;
  while (m->count < 256) {
    const uint8_t *sep = msg;
    while (sep + 1 < end && !(sep[0] == 0xfe && sep[1] == 0xfe)) sep++;
    if (sep + 1 >= end) sep = end;
    m->p[m->count] = msg;
    m->n[m->count++] = (size_t)(sep - msg);
    if (sep == end) break;
    msg = sep + 2;
  }
}

/* h2ws inflates one message (pieces of inchunk, output pieces of outsz)
 * into got.  Returns 1 accepted (*pn bytes), 0 rejected (BAD_DATA), -1
 * over OUT_CAP. */
static int h2ws_inflate_msg(h2ws__pmd *pmd, const uint8_t *d, size_t len,
                            size_t inchunk, size_t outsz, size_t *pn) {
  size_t pos = 0, total = 0;
  for (;;) {
    size_t n = len - pos < inchunk ? len - pos : inchunk;
    int fin = pos + n == len;
    const uint8_t *ip = d + pos;
    size_t il = n;
    int idle = 0, r;
    for (;;) {
      size_t nout = 0, before = il;
      size_t room = OUT_CAP + 1 - total < outsz ? OUT_CAP + 1 - total : outsz;
      r = h2ws__pmd_inflate(pmd, &ip, &il, got + total, room, &nout, fin);
      if (nout > room || il > before) abort();
      total += nout;
      if (r < 0) {
        if (r != H2WS_ERR_BAD_DATA) abort();
        return 0;
      }
      if (total > OUT_CAP) return -1;
      if (r == 1) break;
      if (il == 0 && !fin && nout < room) break;
      idle = (nout == 0 && il == before) ? idle + 1 : 0;
      if (idle > 4) abort(); /* no progress and no verdict: a hang */
    }
    pos += n - il;
    if (r == 1) {
      if (pos != len) abort(); /* done before all of it was taken */
      *pn = total;
      return 1;
    }
  }
}

/* zlib with RFC 7692's rules, one message into ref: as above. */
static int zlib_inflate_msg(z_stream *z, int bits, int nct, const uint8_t *d,
                            size_t len, size_t *pn) {
  *pn = 0;
  if (len == 0) return 1; /* the empty message; the context untouched */
  static uint8_t buf[1u << 16];
  if (len + 4 > sizeof buf) return -1;
  memcpy(buf, d, len);
  memcpy(buf + len, tail, 4);
  z->next_in = buf;
  z->avail_in = (uInt)(len + 4);
  z->next_out = ref;
  z->avail_out = OUT_CAP + 1;
  int zr = inflate(z, Z_SYNC_FLUSH);
  *pn = OUT_CAP + 1 - z->avail_out;
  if (*pn > OUT_CAP) return -1;
  int ok;
  if (zr == Z_STREAM_END) ok = 1; /* what follows the final block: ignored */
  else if (zr == Z_OK || zr == Z_BUF_ERROR)
    ok = z->avail_in == 0 && (z->data_type & 128);
  else ok = 0;
  if (!ok) return 0;
  if (nct) {
    inflateReset(z);
  } else if (zr == Z_STREAM_END) {
    static uint8_t dict[1u << 15];
    uInt dlen = 0;
    if (inflateGetDictionary(z, dict, &dlen) != Z_OK ||
        inflateReset2(z, -bits) != Z_OK ||
        (dlen && inflateSetDictionary(z, dict, dlen) != Z_OK))
      abort();
  }
  return 1;
}

/* zlib's raw inflate checks a back-reference against its window only for
 * output of earlier calls: within one call's output any distance passes
 * (zlib_inflate_msg's one big call is lenient).  One output byte per call
 * makes every reference go through the window: the window-exact verdict,
 * asked when h2ws (output in pieces, so in between) rejects what the
 * lenient call accepts. */
static int zlib_strict_msg(z_stream *z, const uint8_t *d, size_t len) {
  if (len == 0) return 1;
  static uint8_t buf[1u << 16];
  if (len + 4 > sizeof buf) return -1;
  memcpy(buf, d, len);
  memcpy(buf + len, tail, 4);
  z->next_in = buf;
  z->avail_in = (uInt)(len + 4);
  for (size_t n = 0; n <= OUT_CAP;) {
    z->next_out = ref + n;
    z->avail_out = 1;
    int zr = inflate(z, Z_SYNC_FLUSH);
    n += 1 - z->avail_out;
    if (zr == Z_STREAM_END) return 1;
    if (zr != Z_OK && zr != Z_BUF_ERROR) return 0;
    /* on a block boundary with all input in: done (a further call would
     * start reading the next block header and leave the boundary) */
    if (z->avail_in == 0 && (z->data_type & 128)) return 1;
    if (z->avail_in == 0 && z->avail_out == 1) return 0; /* stuck */
  }
  return -1;
}

static void mode_inflate(const msgs *m, int bits, int nct, size_t inchunk,
                         size_t outsz) {
  h2ws_pmd_params p = {1, nct, nct, bits, bits};
  h2ws__pmd *rx = NULL;
  if (h2ws__pmd_new(&rx, &p, H2WS_ROLE_SERVER, NULL) != 0) abort();
  int zbits = bits < 9 ? 9 : bits; /* h2ws's inflater: at least 9 */
  z_stream z;
  memset(&z, 0, sizeof z);
  if (inflateInit2(&z, -zbits) != Z_OK) abort();
  for (size_t i = 0; i < m->count; i++) {
    size_t gn = 0, rn = 0;
    z_stream zs; /* the context before this message, for the strict run */
    memset(&zs, 0, sizeof zs);
    if (inflateCopy(&zs, &z) != Z_OK) abort();
    int a = h2ws_inflate_msg(rx, m->p[i], m->n[i], inchunk, outsz, &gn);
    int b = zlib_inflate_msg(&z, zbits, nct, m->p[i], m->n[i], &rn);
    if (a == 0 && b == 1) {
      /* h2ws may be stricter than one big zlib call (distances beyond the
       * window), never stricter than the window itself */
      int st = zlib_strict_msg(&zs, m->p[i], m->n[i]);
      if (debug)
        fprintf(stderr, "message %zu: window-exact zlib %d\n", i, st);
      if (st == 0 || st < 0) b = st < 0 ? -1 : 0;
    }
    inflateEnd(&zs);
    if (debug)
      fprintf(stderr, "message %zu (%zu bytes): h2ws %d (%zu bytes), zlib %d (%zu)\n",
              i, m->n[i], a, gn, b, rn);
    if (a < 0 || b < 0) break; /* a documented cap: no verdict */
    if (a != b) abort();       /* accept / reject disagree */
    if (!a) break;             /* both rejected: the WebSocket fails */
    if (gn != rn || (gn && memcmp(got, ref, gn) != 0)) abort();
  }
  inflateEnd(&z);
  h2ws__pmd_del(rx);
}

static void mode_roundtrip(const msgs *m, int bits, int nct, int finish,
                           uint8_t c1,
                           size_t inchunk, size_t outsz) {
  h2ws_pmd_params p = {1, nct, nct, bits, bits};
  h2ws__pmd *tx = NULL, *rx = NULL;
  if (h2ws__pmd_new(&tx, &p, H2WS_ROLE_CLIENT, NULL) != 0 ||
      h2ws__pmd_new(&rx, &p, H2WS_ROLE_SERVER, NULL) != 0)
    abort();
  z_stream zi, zd;
  memset(&zi, 0, sizeof zi);
  memset(&zd, 0, sizeof zd);
  static const int strategies[] = {Z_DEFAULT_STRATEGY, Z_FILTERED,
                                   Z_HUFFMAN_ONLY, Z_RLE, Z_FIXED};
  int level = c1 & 15;
  if (level > 9) level = 9;
  int strategy = strategies[((c1 >> 4) & 7) % 5];
  int zbits = bits < 9 ? 9 : bits;
  int memlevel = 1 + (int)(c1 % 9);
  if (inflateInit2(&zi, -bits) != Z_OK ||
      deflateInit2(&zd, level, Z_DEFLATED, -zbits, memlevel, strategy) !=
          Z_OK)
    abort();
  static uint8_t comp[(1u << 16) + 4096];
  for (size_t i = 0; i < m->count; i++) {
    const uint8_t *msg = m->p[i];
    size_t len = m->n[i];
    /* A: h2ws deflates, zlib inflates at exactly `bits` */
    size_t pos = 0, clen = 0;
    for (int r = 0, guard = 0; r != 1; guard++) {
      size_t nout = 0, nin = 0, n = len - pos < inchunk ? len - pos : inchunk;
      r = h2ws__pmd_deflate(tx, n ? msg + pos : NULL, n, pos + n == len,
                            comp + clen, outsz, &nout, &nin);
      if (r < 0 || guard > 1000000) abort();
      pos += nin;
      clen += nout;
      if (clen + outsz + 4 > sizeof comp) abort(); /* beyond any bound */
    }
    if (pos != len || clen > h2ws__pmd_deflate_bound(tx, len)) abort();
    memcpy(comp + clen, tail, 4);
    int zr;
    size_t rn;
    if (bits == 8) {
      /* window-exact (zlib_strict_msg): the 9 + Z_RLE stream must fit 256 */
      if (zlib_strict_msg(&zi, comp, clen) != 1) abort();
      rn = (size_t)(zi.next_out - ref);
      zr = Z_OK;
    } else {
      zi.next_in = comp;
      zi.avail_in = (uInt)(clen + 4);
      zi.next_out = ref;
      zi.avail_out = OUT_CAP + 1;
      zr = inflate(&zi, Z_SYNC_FLUSH);
      rn = OUT_CAP + 1 - zi.avail_out;
    }
    if ((zr != Z_OK && zr != Z_BUF_ERROR) || zi.avail_in != 0 ||
        !(zi.data_type & 128) || rn != len ||
        (len && memcmp(ref, msg, len) != 0))
      abort();
    if (nct) inflateReset(&zi);
    /* B: zlib deflates, h2ws inflates */
    int flush = finish && i % 3 == 2 ? Z_FINISH
                : i % 4 == 3           ? Z_FULL_FLUSH
                                       : Z_SYNC_FLUSH;
    zd.next_in = (Bytef *)(uintptr_t)msg;
    zd.avail_in = (uInt)len;
    zd.next_out = comp;
    zd.avail_out = sizeof comp;
    /* a few pieces with Z_NO_FLUSH / Z_BLOCK first: more block shapes */
    while (zd.avail_in > inchunk) {
      uInt left = zd.avail_in;
      zd.avail_in = (uInt)inchunk;
      if (deflate(&zd, (left & 3) == 0 ? Z_BLOCK : Z_NO_FLUSH) == Z_STREAM_ERROR)
        abort();
      zd.avail_in += left - (uInt)inchunk;
    }
    zr = deflate(&zd, flush);
    clen = sizeof comp - zd.avail_out;
    /* an empty message right after a flush: zlib has nothing to add
     * (Z_BUF_ERROR), the payload stays empty (the empty message) */
    int empty = zr == Z_BUF_ERROR && clen == 0 && len == 0;
    if ((!empty && zr != (flush == Z_FINISH ? Z_STREAM_END : Z_OK)) ||
        zd.avail_in)
      abort();
    if (flush != Z_FINISH && !empty) {
      if (clen < 4 || memcmp(comp + clen - 4, tail, 4) != 0) abort();
      clen -= 4;
    }
    if (flush == Z_FINISH || nct) deflateReset(&zd);
    size_t gn = 0;
    if (h2ws_inflate_msg(rx, comp, clen, inchunk, outsz, &gn) != 1 ||
        gn != len || (len && memcmp(got, msg, len) != 0))
      abort();
  }
  inflateEnd(&zi);
  deflateEnd(&zd);
  h2ws__pmd_del(tx);
  h2ws__pmd_del(rx);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (debug < 0) debug = getenv("FZ_PMD_DEBUG") != NULL;
  if (size < 2 || size > (1u << 16)) return 0;
  uint8_t c0 = data[0], c1 = data[1];
  int bits = 8 + (c0 & 7), nct = (c0 >> 3) & 1;
  size_t outsz = (size_t)1 + ((c0 >> 6) & 3) * 211; /* 1, 212, 423, 634 */
  size_t inchunk = (c1 & 0x80) ? 7 : 4096;
  static msgs m;
  split(data + 2, size - 2, &m);
  if (c0 & 0x20) mode_inflate(&m, bits, nct, inchunk, outsz);
  else mode_roundtrip(&m, bits, nct, (c0 >> 4) & 1, c1, inchunk, outsz);
  return 0;
}
