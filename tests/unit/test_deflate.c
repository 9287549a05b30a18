/* tests/unit/test_deflate.c - permessage-deflate compression contexts (lib/ws/deflate.c): RFC 7692 vectors, round trips, streaming, bounds. */
#include <zlib.h>

#include "testutil.h"
#include "ws/deflate.h"

#define MIB ((size_t)1 << 20)

static h2ws_pmd_params params_make(int sbits, int cbits, int snct, int cnct) {
  h2ws_pmd_params p = {1, snct, cnct, sbits, cbits};
  return p;
}

/* Inflates one message fed in chunks of `inchunk` bytes (fin with the last
 * one) through an output buffer of `outchunk` bytes; appends to out (cap
 * bytes).  Returns 1 (complete), a negative error, or -1000 if out is full
 * or the inflater stopped making progress. */
static int inflate_msg(h2ws__pmd *pmd, const uint8_t *in, size_t inlen,
                       size_t inchunk, size_t outchunk, uint8_t *out,
                       size_t cap, size_t *poutlen) {
  uint8_t tmp[4096];
  size_t pos = 0;
  *poutlen = 0;
  if (outchunk > sizeof(tmp)) outchunk = sizeof(tmp);
  for (;;) {
    size_t n = inlen - pos < inchunk ? inlen - pos : inchunk;
    int fin = pos + n == inlen;
    const uint8_t *ip = in + pos;
    size_t il = n;
    for (int idle = 0;;) {
      size_t nout = 0, before = il;
      int r = h2ws__pmd_inflate(pmd, &ip, &il, tmp, outchunk, &nout, fin);
      if (r < 0) return r;
      if (*poutlen + nout > cap) return -1000;
      memcpy(out + *poutlen, tmp, nout);
      *poutlen += nout;
      if (r == 1) return 1;
      if (il == 0 && nout < outchunk && !fin) break;
      idle = nout == 0 && il == before ? idle + 1 : 0;
      if (idle > 8) return -1000;
    }
    pos += n;
  }
}

/* Deflates one message in chunks of `inchunk` input bytes through output
 * buffers of `outchunk` bytes, appending to out.  Returns 1 or an error
 * (-1000: out full / no progress). */
static int deflate_msg(h2ws__pmd *pmd, const uint8_t *in, size_t inlen,
                       size_t inchunk, size_t outchunk, uint8_t *out,
                       size_t cap, size_t *poutlen) {
  uint8_t tmp[4096];
  size_t pos = 0;
  *poutlen = 0;
  if (outchunk > sizeof(tmp)) outchunk = sizeof(tmp);
  for (int idle = 0;;) {
    size_t n = inlen - pos < inchunk ? inlen - pos : inchunk;
    int fin = pos + n == inlen;
    size_t nout = 0, nin = 0;
    int r = h2ws__pmd_deflate(pmd, in ? in + pos : NULL, n, fin, tmp, outchunk, &nout, &nin);
    if (r < 0) return r;
    if (*poutlen + nout > cap) return -1000;
    memcpy(out + *poutlen, tmp, nout);
    *poutlen += nout;
    pos += nin;
    if (r == 1) return pos == inlen ? 1 : -1001;
    idle = nout == 0 && nin == 0 ? idle + 1 : 0;
    if (idle > 8) return -1000;
  }
}

/* Text-like, compressible data with some repetition at short and long
 * distances. */
static void fill_text(uint8_t *buf, size_t len, uint32_t seed) {
  static const char *words[] = {"hello ", "world ", "deflate ", "window ",
                                "websocket ", "h2 ", "stream ", "frame "};
  size_t i = 0;
  while (i < len) {
    const char *w = words[tu_rand(&seed) % 8];
    for (size_t k = 0; w[k] && i < len; k++) buf[i++] = (uint8_t)w[k];
  }
}

static void fill_random(uint8_t *buf, size_t len, uint32_t seed) {
  for (size_t i = 0; i < len; i++) buf[i] = (uint8_t)tu_rand(&seed);
}

static const uint8_t hello[] = {'H', 'e', 'l', 'l', 'o'};

/* Receiver for what a client sends: a server-role context. */
static h2ws__pmd *rx_new(const h2ws_pmd_params *p) {
  h2ws__pmd *pmd = NULL;
  if (h2ws__pmd_new(&pmd, p, H2WS_ROLE_SERVER, NULL) != 0) return NULL;
  return pmd;
}
static h2ws__pmd *tx_new(const h2ws_pmd_params *p) {
  h2ws__pmd *pmd = NULL;
  if (h2ws__pmd_new(&pmd, p, H2WS_ROLE_CLIENT, NULL) != 0) return NULL;
  return pmd;
}

/* Inflates `vec` as one message with a fresh default receiver, expecting
 * "Hello". */
static int vec_is_hello(h2ws__pmd *rx, const uint8_t *vec, size_t len) {
  uint8_t out[64];
  size_t outlen = 0;
  int r = inflate_msg(rx, vec, len, len, sizeof(out), out, sizeof(out), &outlen);
  return r == 1 && outlen == 5 && memcmp(out, hello, 5) == 0;
}

/* RFC 7692 §7.2.3.1: "Hello" in one compressed block. */
static void D2_rfc_7_2_3_1_hello_inflate(void) {
  static const uint8_t vec[] = {0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00};
  h2ws_pmd_params p = params_make(15, 15, 0, 0);
  h2ws__pmd *rx = rx_new(&p);
  CHECK(rx);
  CHECK(vec_is_hello(rx, vec, sizeof(vec)));
  /* Byte at a time in, byte at a time out. */
  uint8_t out[16];
  size_t outlen;
  h2ws__pmd *rx2 = rx_new(&p);
  CHECK(rx2);
  CHECK_EQ(inflate_msg(rx2, vec, sizeof(vec), 1, 1, out, sizeof(out), &outlen), 1);
  CHECK_EQ(outlen, 5);
  CHECK_MEM(out, hello, 5);
  h2ws__pmd_del(rx);
  h2ws__pmd_del(rx2);
}

/* RFC 7692 §7.2.3.1 the other way: our output for "Hello" is the RFC's
 * bytes (zlib emits the same fixed-Huffman block) and inflates back. */
static void D2_rfc_7_2_3_1_hello_deflate(void) {
  static const uint8_t vec[] = {0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00};
  h2ws_pmd_params p = params_make(15, 15, 0, 0);
  h2ws__pmd *tx = tx_new(&p), *rx = rx_new(&p);
  CHECK(tx && rx);
  uint8_t c[64];
  size_t clen;
  CHECK_EQ(deflate_msg(tx, hello, 5, 5, sizeof(c), c, sizeof(c), &clen), 1);
  CHECK_EQ(clen, sizeof(vec));
  CHECK_MEM(c, vec, sizeof(vec));
  CHECK(vec_is_hello(rx, c, clen));
  h2ws__pmd_del(tx);
  h2ws__pmd_del(rx);
}

/* RFC 7692 §7.2.3.2: the second "Hello" with context takeover refers back
 * into the first message. */
static void D2_rfc_7_2_3_2_context_takeover(void) {
  static const uint8_t m1[] = {0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00};
  static const uint8_t m2[] = {0xf2, 0x00, 0x11, 0x00, 0x01, 0x00};
  h2ws_pmd_params p = params_make(15, 15, 0, 0);
  h2ws__pmd *rx = rx_new(&p), *tx = tx_new(&p), *rx2 = rx_new(&p);
  CHECK(rx && tx && rx2);
  CHECK(vec_is_hello(rx, m1, sizeof(m1)));
  CHECK(vec_is_hello(rx, m2, sizeof(m2)));
  /* m2 alone is undecodable: it needs the first message's window. */
  uint8_t out[16];
  size_t outlen;
  CHECK_EQ(inflate_msg(rx2, m2, sizeof(m2), 6, 16, out, sizeof(out), &outlen),
           H2WS_ERR_BAD_DATA);
  /* Our deflater also refers back: the second message is shorter. */
  uint8_t c1[64], c2[64];
  size_t l1, l2;
  CHECK_EQ(deflate_msg(tx, hello, 5, 5, 64, c1, 64, &l1), 1);
  CHECK_EQ(deflate_msg(tx, hello, 5, 5, 64, c2, 64, &l2), 1);
  CHECK(l2 < l1);
  h2ws__pmd_del(rx);
  h2ws__pmd_del(rx2);
  h2ws__pmd_del(tx);
  rx = rx_new(&p);
  CHECK(rx);
  CHECK(vec_is_hello(rx, c1, l1));
  CHECK(vec_is_hello(rx, c2, l2));
  h2ws__pmd_del(rx);
}

/* RFC 7692 §7.2.3.3: a stored (uncompressed) block. */
static void D2_rfc_7_2_3_3_stored_block(void) {
  static const uint8_t vec[] = {0x00, 0x05, 0x00, 0xfa, 0xff, 0x48,
                                0x65, 0x6c, 0x6c, 0x6f, 0x00};
  h2ws_pmd_params p = params_make(15, 15, 0, 0);
  h2ws__pmd *rx = rx_new(&p);
  CHECK(rx);
  CHECK(vec_is_hello(rx, vec, sizeof(vec)));
  CHECK(vec_is_hello(rx, vec, sizeof(vec))); /* and again, same context */
  h2ws__pmd_del(rx);
}

/* RFC 7692 §7.2.3.4: BFINAL set; the window survives into the next
 * message (context takeover). */
static void D2_rfc_7_2_3_4_bfinal(void) {
  static const uint8_t vec[] = {0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00};
  static const uint8_t m2[] = {0xf2, 0x00, 0x11, 0x00, 0x01, 0x00};
  h2ws_pmd_params p = params_make(15, 15, 0, 0);
  h2ws__pmd *rx = rx_new(&p);
  CHECK(rx);
  CHECK(vec_is_hello(rx, vec, sizeof(vec)));
  CHECK(vec_is_hello(rx, m2, sizeof(m2)));
  CHECK(vec_is_hello(rx, vec, sizeof(vec)));
  h2ws__pmd_del(rx);
}

/* RFC 7692 §7.2.3.5: two DEFLATE blocks in one message. */
static void D2_rfc_7_2_3_5_two_blocks(void) {
  static const uint8_t vec[] = {0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff,
                                0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00};
  h2ws_pmd_params p = params_make(15, 15, 0, 0);
  h2ws__pmd *rx = rx_new(&p);
  CHECK(rx);
  CHECK(vec_is_hello(rx, vec, sizeof(vec)));
  h2ws__pmd *rx2 = rx_new(&p);
  CHECK(rx2);
  uint8_t out[16];
  size_t outlen;
  CHECK_EQ(inflate_msg(rx2, vec, sizeof(vec), 1, 1, out, sizeof(out), &outlen), 1);
  CHECK_EQ(outlen, 5);
  CHECK_MEM(out, hello, 5);
  h2ws__pmd_del(rx);
  h2ws__pmd_del(rx2);
}

/* Empty messages: we send 0x00 (RFC 7692 §7.2.3.6), in the middle of a
 * context-takeover sequence, and read both 0x00 and an empty payload. */
static void D2_empty_messages(void) {
  h2ws_pmd_params p = params_make(15, 15, 0, 0);
  h2ws__pmd *tx = tx_new(&p), *rx = rx_new(&p);
  CHECK(tx && rx);
  uint8_t c[64], out[64];
  size_t clen, outlen;
  for (int i = 0; i < 3; i++) {
    CHECK_EQ(deflate_msg(tx, NULL, 0, 1, 64, c, 64, &clen), 1);
    CHECK_EQ(clen, 1);
    CHECK_EQ(c[0], 0x00);
    CHECK_EQ(inflate_msg(rx, c, clen, 1, 64, out, 64, &outlen), 1);
    CHECK_EQ(outlen, 0);
    CHECK_EQ(deflate_msg(tx, hello, 5, 5, 64, c, 64, &clen), 1);
    CHECK(vec_is_hello(rx, c, clen));
  }
  /* Empty payload with RSV1: read as the empty message. */
  const uint8_t *ip = c;
  size_t il = 0, nout = 5;
  CHECK_EQ(h2ws__pmd_inflate(rx, &ip, &il, out, sizeof(out), &nout, 1), 1);
  CHECK_EQ(nout, 0);
  CHECK_EQ(deflate_msg(tx, hello, 5, 5, 64, c, 64, &clen), 1);
  CHECK(vec_is_hello(rx, c, clen));
  h2ws__pmd_del(tx);
  h2ws__pmd_del(rx);
}

/* Sends `nmsg` messages client -> server with params p; checks each one
 * inflates back; with client_no_context_takeover each message must also
 * inflate with a brand new inflater. */
static int roundtrip(const h2ws_pmd_params *p, int nmsg, size_t inchunk,
                     size_t outchunk, size_t msglen) {
  int ok = 0;
  h2ws__pmd *tx = tx_new(p), *rx = rx_new(p);
  uint8_t *msg = malloc(msglen + 1), *c = malloc(msglen + msglen / 8 + 256),
          *out = malloc(msglen + 1);
  if (!tx || !rx || !msg || !c || !out) goto done;
  for (int i = 0; i < nmsg; i++) {
    size_t clen, outlen;
    fill_text(msg, msglen, (uint32_t)(i % 2 + 1)); /* repeats across messages */
    if (deflate_msg(tx, msg, msglen, inchunk, outchunk, c,
                    msglen + msglen / 8 + 256, &clen) != 1)
      goto done;
    if (clen > h2ws__pmd_deflate_bound(tx, msglen)) goto done;
    if (inflate_msg(rx, c, clen, inchunk, outchunk, out, msglen, &outlen) != 1 ||
        outlen != msglen || memcmp(out, msg, msglen) != 0)
      goto done;
    if (p->client_no_context_takeover) {
      h2ws__pmd *fresh = rx_new(p);
      int r = fresh ? inflate_msg(fresh, c, clen, clen, 4096, out, msglen, &outlen) : -1;
      h2ws__pmd_del(fresh);
      if (r != 1 || outlen != msglen || memcmp(out, msg, msglen) != 0) goto done;
    }
  }
  ok = 1;
done:
  h2ws__pmd_del(tx);
  h2ws__pmd_del(rx);
  free(msg);
  free(c);
  free(out);
  return ok;
}

/* Every window 8..15, context takeover on and off. */
static void D1_roundtrip_all_windows(void) {
  for (int bits = 8; bits <= 15; bits++) {
    for (int nct = 0; nct <= 1; nct++) {
      h2ws_pmd_params p = params_make(15, bits, 0, nct);
      if (!roundtrip(&p, 4, 100000, 4096, 3000)) {
        fprintf(stderr, "  bits %d nct %d\n", bits, nct);
        CHECK(0);
      }
      /* server -> client direction uses the server_* parameters */
      h2ws_pmd_params q = params_make(bits, 15, nct, 0);
      h2ws__pmd *tx = NULL, *rx = NULL;
      CHECK_EQ(h2ws__pmd_new(&tx, &q, H2WS_ROLE_SERVER, NULL), 0);
      CHECK_EQ(h2ws__pmd_new(&rx, &q, H2WS_ROLE_CLIENT, NULL), 0);
      uint8_t msg[2000], c[3000], out[2000];
      size_t clen, outlen;
      for (int i = 0; i < 3; i++) {
        fill_text(msg, sizeof(msg), 7);
        CHECK_EQ(deflate_msg(tx, msg, sizeof(msg), 2000, 4096, c, sizeof(c), &clen), 1);
        CHECK_EQ(inflate_msg(rx, c, clen, clen, 4096, out, sizeof(out), &outlen), 1);
        CHECK_EQ(outlen, sizeof(msg));
        CHECK_MEM(out, msg, sizeof(msg));
      }
      h2ws__pmd_del(tx);
      h2ws__pmd_del(rx);
    }
  }
}

/* Window 8: our stream (zlib window 9 + Z_RLE) must be valid for a
 * 256-byte window: inflate it with zlib itself opened at windowBits -8,
 * one output byte at a time, over several messages sharing the context. */
static void D1_window8_inflates_with_zlib_window8(void) {
  h2ws_pmd_params p = params_make(15, 8, 0, 0);
  h2ws__pmd *tx = tx_new(&p);
  CHECK(tx);
  z_stream z;
  memset(&z, 0, sizeof(z));
  CHECK_EQ(inflateInit2(&z, -8), Z_OK);
  static const uint8_t tail[4] = {0, 0, 0xff, 0xff};
  uint8_t msg[5000], c[6000], out[6000];
  for (int i = 0; i < 6; i++) {
    size_t clen;
    /* Repeats at distances 300..3000 (beyond 256) and short runs. */
    fill_text(msg, sizeof(msg), (uint32_t)(i % 3 + 1));
    for (size_t k = 0; k < 64; k++) msg[k * 70] = 'z';
    CHECK_EQ(deflate_msg(tx, msg, sizeof(msg), 777, 100, c, sizeof(c), &clen), 1);
    memcpy(c + clen, tail, 4);
    /* One output byte per call: every back-reference must then come from
     * zlib's 256-byte window, not from the output buffer. */
    z.next_in = c;
    z.avail_in = (uInt)(clen + 4);
    size_t got = 0;
    int zr = Z_OK;
    while (zr == Z_OK && got < sizeof(out)) {
      z.next_out = out + got;
      z.avail_out = 1;
      zr = inflate(&z, Z_SYNC_FLUSH);
      got += 1 - z.avail_out;
      if (z.avail_out == 1 && z.avail_in == 0) break;
    }
    CHECK(zr == Z_OK || zr == Z_BUF_ERROR);
    CHECK_EQ(z.avail_in, 0);
    CHECK_EQ(got, sizeof(msg));
    CHECK_MEM(out, msg, sizeof(msg));
  }
  inflateEnd(&z);
  h2ws__pmd_del(tx);
}

/* A peer that agreed to window 8 but whose compressor refers up to 512
 * bytes back (a 9-bit window that does not, like zlib's, stop at 250):
 * our inflater, opened with at least 9 bits, still decodes it.  Built
 * with zlib at window 10 on data whose only repeat is 400 bytes back, and
 * inflated one output byte at a time so the window really matters (zlib
 * opened at 8 fails on the same stream). */
static void D1_window8_inflater_accepts_distance_400(void) {
  uint8_t msg[500], c[1000], out[500];
  fill_random(msg, 400, 4242);
  memcpy(msg + 400, msg, 100);
  z_stream z;
  memset(&z, 0, sizeof(z));
  CHECK_EQ(deflateInit2(&z, 6, Z_DEFLATED, -10, 8, Z_DEFAULT_STRATEGY), Z_OK);
  z.next_in = msg;
  z.avail_in = sizeof(msg);
  z.next_out = c;
  z.avail_out = sizeof(c);
  CHECK_EQ(deflate(&z, Z_SYNC_FLUSH), Z_OK);
  size_t clen = sizeof(c) - z.avail_out - 4;
  deflateEnd(&z);
  CHECK(clen < 480); /* the repeat was found */
  h2ws_pmd_params p = params_make(15, 8, 0, 0);
  h2ws__pmd *rx = rx_new(&p);
  CHECK(rx);
  size_t outlen;
  CHECK_EQ(inflate_msg(rx, c, clen, clen, 1, out, sizeof(out), &outlen), 1);
  CHECK_EQ(outlen, sizeof(msg));
  CHECK_MEM(out, msg, sizeof(msg));
  h2ws__pmd_del(rx);
  /* The same stream through zlib at windowBits -8, byte by byte: fails. */
  memset(&z, 0, sizeof(z));
  CHECK_EQ(inflateInit2(&z, -8), Z_OK);
  z.next_in = c;
  z.avail_in = (uInt)clen;
  int zr = Z_OK;
  for (size_t i = 0; i < sizeof(out) && zr == Z_OK; i++) {
    z.next_out = out + i;
    z.avail_out = 1;
    zr = inflate(&z, Z_SYNC_FLUSH);
  }
  inflateEnd(&z);
  CHECK_EQ(zr, Z_DATA_ERROR);
}

/* Streaming: 1-byte input chunks and 1-byte output buffers both ways, with
 * several window sizes. */
static void D2_streaming_tiny_buffers(void) {
  static const int bits[] = {8, 10, 15};
  for (size_t i = 0; i < 3; i++) {
    h2ws_pmd_params p = params_make(15, bits[i], 0, 0);
    CHECK(roundtrip(&p, 3, 1, 1, 700));
    CHECK(roundtrip(&p, 2, 3, 2, 1500));
    p.client_no_context_takeover = 1;
    CHECK(roundtrip(&p, 2, 1, 1, 500));
  }
}

/* 1 MiB messages: compressible and incompressible; the output stays within
 * h2ws__pmd_deflate_bound for every window. */
static void D2_one_mib_messages(void) {
  h2ws_pmd_params p = params_make(15, 15, 0, 0);
  CHECK(roundtrip(&p, 2, MIB, 4096, MIB));
  uint8_t *msg = malloc(MIB), *c = malloc(MIB + MIB / 8), *out = malloc(MIB);
  CHECK(msg && c && out);
  fill_random(msg, MIB, 99);
  for (int bits = 8; bits <= 15; bits++) {
    p = params_make(15, bits, 0, 0);
    h2ws__pmd *tx = tx_new(&p), *rx = rx_new(&p);
    CHECK(tx && rx);
    size_t clen, outlen;
    CHECK_EQ(deflate_msg(tx, msg, MIB, 65536, 4096, c, MIB + MIB / 8, &clen), 1);
    CHECK(clen <= h2ws__pmd_deflate_bound(tx, MIB));
    CHECK_EQ(inflate_msg(rx, c, clen, 65536, 4096, out, MIB, &outlen), 1);
    CHECK_EQ(outlen, MIB);
    CHECK_MEM(out, msg, MIB);
    h2ws__pmd_del(tx);
    h2ws__pmd_del(rx);
  }
  free(msg);
  free(c);
  free(out);
}

/* Corrupt data: H2WS_ERR_BAD_DATA, never a crash or a silent success. */
static void D2_corrupt_data(void) {
  static const uint8_t bad_type[] = {0xff, 0xff, 0xff};                 /* BTYPE 11 */
  static const uint8_t bad_nlen[] = {0x00, 0x05, 0x00, 0x00, 0x00, 'H'}; /* NLEN */
  static const uint8_t truncated[] = {0xf2, 0x48, 0xcd};                /* mid-block */
  static const uint8_t after_tail[] = {0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07,
                                       0x00, 0x00, 0x00, 0xff, 0xff, 0x07};
  const struct { const uint8_t *d; size_t n; } cases[] = {
      {bad_type, sizeof(bad_type)}, {bad_nlen, sizeof(bad_nlen)},
      {truncated, sizeof(truncated)},
      {after_tail, sizeof(after_tail)}};
  h2ws_pmd_params p = params_make(15, 15, 0, 0);
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    for (size_t chunk = 1; chunk <= 16; chunk += 15) {
      h2ws__pmd *rx = rx_new(&p);
      CHECK(rx);
      uint8_t out[64];
      size_t outlen;
      int r = inflate_msg(rx, cases[i].d, cases[i].n, chunk, chunk, out,
                          sizeof(out), &outlen);
      if (r != H2WS_ERR_BAD_DATA) fprintf(stderr, "  case %zu chunk %zu: %d\n", i, chunk, r);
      h2ws__pmd_del(rx);
      CHECK_EQ(r, H2WS_ERR_BAD_DATA);
    }
  }
}

/* D3: a zip bomb (10 MB of zeros, ~10 KB compressed) produces output only
 * as fast as the caller asks: a caller stopping at its max message size
 * has never seen more than cap + one buffer. */
static void D3_zip_bomb_bounded(void) {
  const size_t big = 10 * 1000 * 1000;
  uint8_t *zeros = calloc(1, big), *c = malloc(big / 100);
  CHECK(zeros && c);
  z_stream z;
  memset(&z, 0, sizeof(z));
  CHECK_EQ(deflateInit2(&z, 9, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
  z.next_in = zeros;
  z.avail_in = (uInt)big;
  z.next_out = c;
  z.avail_out = (uInt)(big / 100);
  CHECK_EQ(deflate(&z, Z_SYNC_FLUSH), Z_OK);
  CHECK_EQ(z.avail_in, 0);
  size_t clen = big / 100 - z.avail_out - 4; /* strip the tail */
  deflateEnd(&z);
  free(zeros);
  CHECK(clen < 20000);

  h2ws_pmd_params p = params_make(15, 15, 0, 0);
  h2ws__pmd *rx = rx_new(&p);
  CHECK(rx);
  const size_t max_message = 1 * MIB;
  uint8_t buf[4096];
  const uint8_t *ip = c;
  size_t il = clen, total = 0, calls = 0;
  int r = 0, too_big = 0;
  while (r == 0) {
    size_t nout = 0;
    r = h2ws__pmd_inflate(rx, &ip, &il, buf, sizeof(buf), &nout, 1);
    CHECK(r >= 0);
    CHECK(nout <= sizeof(buf));
    total += nout;
    calls++;
    if (total > max_message) { /* the caller's rule: close 1009 */
      too_big = 1;
      break;
    }
  }
  CHECK(too_big);
  CHECK(total <= max_message + sizeof(buf));
  CHECK(il > 0); /* most of the bomb was never even read */
  CHECK(calls < 1000);
  h2ws__pmd_del(rx);
  free(c);
}

/* Invalid parameters and arguments. */
static void D1_invalid_window_bits(void) {
  h2ws__pmd *pmd = (h2ws__pmd *)1;
  h2ws_pmd_params p = params_make(7, 15, 0, 0);
  CHECK_EQ(h2ws__pmd_new(&pmd, &p, H2WS_ROLE_SERVER, NULL), H2WS_ERR_INVALID_ARGUMENT);
  CHECK(pmd == NULL);
  p = params_make(15, 16, 0, 0);
  CHECK_EQ(h2ws__pmd_new(&pmd, &p, H2WS_ROLE_CLIENT, NULL), H2WS_ERR_INVALID_ARGUMENT);
  p = params_make(8, 8, 1, 1);
  CHECK_EQ(h2ws__pmd_new(&pmd, &p, H2WS_ROLE_CLIENT, NULL), 0);
  h2ws__pmd_del(pmd);
  h2ws__pmd_del(NULL);
}

/* Every allocation failing in turn: NOMEM or success, never a crash, and
 * nothing leaked. */
static void D2_fail_every_allocation(void) {
  uint8_t msg[3000], c[4000], out[3000];
  fill_text(msg, sizeof(msg), 5);
  int saw_nomem = 0, saw_ok = 0;
  for (long fail_at = 1; fail_at < 40; fail_at++) {
    tu_alloc a = {0, fail_at, 0, 0};
    h2ws_mem mem = tu_mem(&a);
    h2ws_pmd_params p = params_make(12, 10, 0, 0);
    h2ws__pmd *tx = NULL, *rx = NULL;
    int r1 = h2ws__pmd_new(&tx, &p, H2WS_ROLE_CLIENT, &mem);
    int r2 = h2ws__pmd_new(&rx, &p, H2WS_ROLE_SERVER, &mem);
    int ok = r1 == 0 && r2 == 0;
    if (ok) {
      size_t clen, outlen;
      int r = deflate_msg(tx, msg, sizeof(msg), 1000, 4096, c, sizeof(c), &clen);
      if (r == 1) r = inflate_msg(rx, c, clen, 500, 4096, out, sizeof(out), &outlen);
      if (r == 1) {
        CHECK_EQ(outlen, sizeof(msg));
        CHECK_MEM(out, msg, sizeof(msg));
        saw_ok = 1;
      } else {
        CHECK_EQ(r, H2WS_ERR_NOMEM);
        saw_nomem = 1;
      }
    } else {
      CHECK(r1 == H2WS_ERR_NOMEM || r2 == H2WS_ERR_NOMEM);
      saw_nomem = 1;
    }
    h2ws__pmd_del(tx);
    h2ws__pmd_del(rx);
    CHECK_EQ(a.live, 0);
  }
  CHECK(saw_nomem && saw_ok);
}

/* A byte-counting allocator (size stored in a header). */
typedef struct { size_t live, peak; } bytes_alloc;
static void *ba_malloc(size_t n, void *ud) {
  bytes_alloc *a = ud;
  size_t *p = malloc(n + sizeof(size_t) * 2);
  if (!p) return NULL;
  p[0] = n;
  a->live += n;
  if (a->live > a->peak) a->peak = a->live;
  return p + 2;
}
static void ba_free(void *ptr, void *ud) {
  bytes_alloc *a = ud;
  if (!ptr) return;
  size_t *p = (size_t *)ptr - 2;
  a->live -= p[0];
  free(p);
}
static void *ba_calloc(size_t k, size_t n, void *ud) {
  void *p = ba_malloc(k * n, ud);
  if (p) memset(p, 0, k * n);
  return p;
}
static void *ba_realloc(void *ptr, size_t n, void *ud) {
  (void)ptr; (void)n; (void)ud;
  return NULL; /* not used by this module */
}

/* D3: memory per context is what deflate.h documents: nothing until first
 * use, then about (1 << (w + 2)) + (1 << (memLevel + 9)) to deflate and
 * (1 << w) + ~7 KiB to inflate. */
static void D3_memory_per_context(void) {
  static const struct { int bits; size_t def_max, inf_max; } rows[] = {
      {15, 270 * 1024, 42 * 1024},
      {12, 58 * 1024, 12 * 1024},
      {10, 20 * 1024, 10 * 1024},
      {8, 14 * 1024, 9 * 1024}};
  for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
    bytes_alloc a = {0, 0};
    h2ws_mem mem = {&a, ba_malloc, ba_free, ba_calloc, ba_realloc};
    h2ws_pmd_params p = params_make(rows[i].bits, rows[i].bits, 0, 0);
    h2ws__pmd *tx = NULL, *rx = NULL;
    CHECK_EQ(h2ws__pmd_new(&tx, &p, H2WS_ROLE_CLIENT, &mem), 0);
    CHECK_EQ(h2ws__pmd_new(&rx, &p, H2WS_ROLE_SERVER, &mem), 0);
    size_t base = a.live;
    CHECK(base < 1024); /* lazy: no zlib state yet */
    uint8_t msg[2000], c[3000], out[2000];
    size_t clen, outlen;
    fill_text(msg, sizeof(msg), 3);
    CHECK_EQ(deflate_msg(tx, msg, sizeof(msg), 2000, 4096, c, sizeof(c), &clen), 1);
    size_t def_bytes = a.live - base;
    CHECK_EQ(inflate_msg(rx, c, clen, clen, 4096, out, sizeof(out), &outlen), 1);
    size_t inf_bytes = a.live - base - def_bytes;
    if (getenv("PMD_MEM") || def_bytes > rows[i].def_max || inf_bytes > rows[i].inf_max)
      fprintf(stderr, "  bits %d: deflate %zu, inflate %zu\n", rows[i].bits,
              def_bytes, inf_bytes);
    CHECK(def_bytes <= rows[i].def_max);
    CHECK(inf_bytes <= rows[i].inf_max);
    h2ws__pmd_del(tx);
    h2ws__pmd_del(rx);
    CHECK_EQ(a.live, 0);
  }
}

/* zlib's raw deflate of one message (Z_SYNC_FLUSH, the tail stripped) on
 * a fresh stream of `bits`; returns its length. */
static size_t zlib_deflate_msg(int bits, int level, const uint8_t *in,
                               size_t inlen, uint8_t *out, size_t cap) {
  z_stream z;
  memset(&z, 0, sizeof z);
  if (deflateInit2(&z, level, Z_DEFLATED, -bits, 8, Z_DEFAULT_STRATEGY) !=
      Z_OK)
    return 0;
  z.next_in = (Bytef *)(uintptr_t)in;
  z.avail_in = (uInt)inlen;
  z.next_out = out;
  z.avail_out = (uInt)cap;
  int zr = deflate(&z, Z_SYNC_FLUSH);
  size_t n = cap - z.avail_out;
  deflateEnd(&z);
  return zr == Z_OK && n >= 4 ? n - 4 : 0;
}

/* Found by fuzz_pmd_diff: when the output room ran out exactly as the
 * appended tail brought the stream to its block boundary, the next call
 * (with no input, to drain) moved zlib past the boundary and a valid
 * message was rejected as undecodable (1007).  The first vector is the
 * fuzzer's (window 9, one output byte per call: 48 bytes); then messages
 * of every length up to 600 inflated through an output buffer of exactly
 * their length, and of 4096 * k bytes through 4096 bytes. */
static void D2_output_full_at_message_end(void) {
  static const uint8_t vec[] = {
      0x04, 0xc1, 0x03, 0x40, 0x18, 0x00, 0x00, 0x00, 0xb0, 0x6c, 0xdb, 0xb6,
      0x6d, 0xdb, 0xb6, 0x6d, 0xdb, 0xcf, 0xb6, 0x6d, 0xdb, 0xb6, 0x6d, 0xdb,
      0xb6, 0xdd, 0x37, 0x00, 0x40, 0x20, 0x60, 0x10, 0x50, 0x30, 0x70, 0x08,
      0x48, 0x28, 0x68, 0x18, 0x58, 0x38, 0x78, 0x04, 0x44, 0x24, 0x64, 0x00,
      0x36, 0x68, 0x65, 0x6c, 0x6c, 0x6f, 0x20, 0x68, 0x65, 0x6c, 0x6c, 0x6f,
      0x20, 0x68, 0x65, 0x6c, 0x6c, 0x6f, 0x20, 0x77, 0x6f, 0x72, 0x6c, 0x64};
  static uint8_t ref[1 << 16], out[1 << 16], comp[1 << 16], msg[1 << 15];
  /* zlib's own answer for the vector */
  z_stream z;
  memset(&z, 0, sizeof z);
  CHECK_EQ(inflateInit2(&z, -9), Z_OK);
  uint8_t in[sizeof vec + 4];
  memcpy(in, vec, sizeof vec);
  memcpy(in + sizeof vec, "\x00\x00\xff\xff", 4);
  z.next_in = in;
  z.avail_in = sizeof in;
  z.next_out = ref;
  z.avail_out = sizeof ref;
  CHECK_EQ(inflate(&z, Z_SYNC_FLUSH), Z_OK);
  size_t reflen = sizeof ref - z.avail_out;
  inflateEnd(&z);
  CHECK_EQ(reflen, 48);
  h2ws_pmd_params p = params_make(9, 9, 1, 1);
  h2ws__pmd *rx = rx_new(&p);
  CHECK(rx);
  size_t outlen = 0;
  for (size_t chunk = 1; chunk <= 49; chunk++) {
    CHECK_EQ(inflate_msg(rx, vec, sizeof vec, sizeof vec, chunk, out,
                         sizeof out, &outlen), 1);
    CHECK_EQ(outlen, reflen);
    CHECK(memcmp(out, ref, reflen) == 0);
  }
  h2ws__pmd_del(rx);
  p = params_make(15, 15, 0, 0);
  int failed = 0;
  for (size_t len = 1; len <= 600 + 3; len++) {
    size_t mlen = len <= 600 ? len : 4096 * (len - 600);
    size_t chunk = len <= 600 ? len : 4096;
    if (len % 2) fill_text(msg, mlen, (uint32_t)len);
    else fill_random(msg, mlen, (uint32_t)len);
    size_t clen = zlib_deflate_msg(15, (int)(len % 10), msg, mlen, comp,
                                   sizeof comp);
    CHECK(clen > 0);
    rx = rx_new(&p);
    CHECK(rx);
    int r = inflate_msg(rx, comp, clen, clen, chunk, out, sizeof out, &outlen);
    if (r != 1 || outlen != mlen || memcmp(out, msg, mlen) != 0) {
      if (failed++ < 5)
        fprintf(stderr, "  length %zu through %zu bytes: %d\n", mlen, chunk, r);
    }
    h2ws__pmd_del(rx);
  }
  CHECK_EQ(failed, 0);
}

int main(void) {
  static const tu_case cases[] = {
      {"D2_rfc_7_2_3_1_hello_inflate", D2_rfc_7_2_3_1_hello_inflate},
      {"D2_rfc_7_2_3_1_hello_deflate", D2_rfc_7_2_3_1_hello_deflate},
      {"D2_rfc_7_2_3_2_context_takeover", D2_rfc_7_2_3_2_context_takeover},
      {"D2_rfc_7_2_3_3_stored_block", D2_rfc_7_2_3_3_stored_block},
      {"D2_rfc_7_2_3_4_bfinal", D2_rfc_7_2_3_4_bfinal},
      {"D2_rfc_7_2_3_5_two_blocks", D2_rfc_7_2_3_5_two_blocks},
      {"D2_empty_messages", D2_empty_messages},
      {"D1_roundtrip_all_windows", D1_roundtrip_all_windows},
      {"D1_window8_inflates_with_zlib_window8", D1_window8_inflates_with_zlib_window8},
      {"D1_window8_inflater_accepts_distance_400", D1_window8_inflater_accepts_distance_400},
      {"D2_streaming_tiny_buffers", D2_streaming_tiny_buffers},
      {"D2_output_full_at_message_end", D2_output_full_at_message_end},
      {"D2_one_mib_messages", D2_one_mib_messages},
      {"D2_corrupt_data", D2_corrupt_data},
      {"D3_zip_bomb_bounded", D3_zip_bomb_bounded},
      {"D1_invalid_window_bits", D1_invalid_window_bits},
      {"D2_fail_every_allocation", D2_fail_every_allocation},
      {"D3_memory_per_context", D3_memory_per_context},
  };
  return TU_RUN(cases);
}
