/* lib/ws/frame.c - RFC 6455 §5.2 frame header codec: incremental parser and builder. */
#include "ws/frame.h"

#include <string.h>

#include <h2ws/h2ws.h>

void h2ws__frame_parser_reset(h2ws__frame_parser *p) {
  p->have = 0;
  p->need = 2;
}

/* Header size implied by the first two bytes. */
static uint8_t frame_size_from_start(const uint8_t *b) {
  uint8_t n = 2;
  uint8_t len7 = b[1] & 0x7f;
  if (len7 == 126) n += 2;
  else if (len7 == 127) n += 8;
  if (b[1] & 0x80) n += 4;
  return n;
}

int h2ws__frame_parse(h2ws__frame_parser *p, const uint8_t *in, size_t inlen,
                      size_t *pnread, h2ws__frame_hdr *phdr) {
  size_t pos = 0;
  if (p->need < 2) p->need = 2; /* zero-initialised parser */
  while (p->have < p->need && pos < inlen) {
    /* Fast path: the rest of the header is in the input. */
    size_t take = (size_t)(p->need - p->have);
    if (take > inlen - pos) take = inlen - pos;
    memcpy(p->buf + p->have, in + pos, take);
    p->have = (uint8_t)(p->have + take);
    pos += take;
    if (p->have == 2 && p->need == 2) p->need = frame_size_from_start(p->buf);
  }
  *pnread = pos;
  if (p->have < p->need) return 0;

  const uint8_t *b = p->buf;
  h2ws__frame_hdr h;
  h.fin = (uint8_t)(b[0] >> 7);
  h.rsv = (uint8_t)((b[0] >> 4) & 0x7);
  h.opcode = (uint8_t)(b[0] & 0x0f);
  h.masked = (uint8_t)(b[1] >> 7);
  size_t off = 2;
  uint8_t len7 = b[1] & 0x7f;
  if (len7 < 126) {
    h.len = len7;
  } else if (len7 == 126) {
    h.len = (uint64_t)b[2] << 8 | b[3];
    off = 4;
  } else {
    h.len = 0;
    for (int i = 0; i < 8; i++) h.len = h.len << 8 | b[2 + i];
    off = 10;
    /* RFC 6455 §5.2: "the most significant bit MUST be 0" */
    if (h.len >> 63) {
      h2ws__frame_parser_reset(p);
      return H2WS_ERR_PROTO;
    }
  }
  if (h.masked) memcpy(h.key, b + off, 4);
  else memset(h.key, 0, 4);
  *phdr = h;
  h2ws__frame_parser_reset(p);
  return 1;
}

size_t h2ws__frame_header_size(uint64_t len, int masked) {
  size_t n = len < 126 ? 2 : len <= 0xffff ? 4 : 10;
  return masked ? n + 4 : n;
}

size_t h2ws__frame_build(uint8_t *out, int fin, unsigned rsv, unsigned opcode,
                         const uint8_t *key, uint64_t len) {
  size_t n;
  out[0] = (uint8_t)((fin ? 0x80 : 0) | (rsv & 0x7) << 4 | (opcode & 0x0f));
  uint8_t m = key ? 0x80 : 0;
  /* RFC 6455 §5.2: "the minimal number of bytes MUST be used to encode the
   * length" */
  if (len < 126) {
    out[1] = (uint8_t)(m | len);
    n = 2;
  } else if (len <= 0xffff) {
    out[1] = (uint8_t)(m | 126);
    out[2] = (uint8_t)(len >> 8);
    out[3] = (uint8_t)len;
    n = 4;
  } else {
    out[1] = (uint8_t)(m | 127);
    for (int i = 0; i < 8; i++) out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
    n = 10;
  }
  if (key) {
    memcpy(out + n, key, 4);
    n += 4;
  }
  return n;
}

/* ---- the public raw codec (h2ws/frame.h) -----------------------------------
 * It writes what it is told, valid or not, for tools that must send frames
 * the engine refuses to produce; the engine above keeps all its checks. */
#include <h2ws/frame.h>

#include "ws/mask.h"

size_t h2ws_frame_write_header(uint8_t *out, size_t outlen,
                               const h2ws_frame_header *hdr) {
  int form = hdr->len_form;
  uint64_t len = hdr->len;
  if (form == H2WS_FRAME_LEN_MINIMAL)
    form = len < 126 ? 7 : len <= 0xffff ? 16 : 64;
  if ((form == 7 && len > 127) || (form == 16 && len > 0xffff) ||
      (form != 7 && form != 16 && form != 64))
    return 0;
  size_t n = (form == 7 ? 2 : form == 16 ? 4 : 10) + (hdr->masked ? 4 : 0);
  if (outlen < n) return 0;
  out[0] = (uint8_t)((hdr->fin ? 0x80 : 0) | (hdr->rsv & 0x7) << 4 | (hdr->opcode & 0x0f));
  uint8_t m = hdr->masked ? 0x80 : 0;
  size_t off = 2;
  if (form == 7) {
    out[1] = (uint8_t)(m | len);
  } else if (form == 16) {
    out[1] = (uint8_t)(m | 126);
    out[2] = (uint8_t)(len >> 8);
    out[3] = (uint8_t)len;
    off = 4;
  } else {
    out[1] = (uint8_t)(m | 127);
    for (int i = 0; i < 8; i++) out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
    off = 10;
  }
  if (hdr->masked) memcpy(out + off, hdr->key, 4);
  return n;
}

size_t h2ws_frame_encode(uint8_t *out, size_t outlen,
                         const h2ws_frame_header *hdr, const uint8_t *payload,
                         size_t payloadlen) {
  size_t n = h2ws_frame_write_header(out, outlen, hdr);
  if (n == 0 || outlen - n < payloadlen) return 0;
  if (payloadlen) {
    if (hdr->masked) h2ws__mask(out + n, payload, payloadlen, hdr->key, 0);
    else memcpy(out + n, payload, payloadlen);
  }
  return n + payloadlen;
}

int h2ws_frame_parse_header(const uint8_t *in, size_t inlen,
                            h2ws_frame_header *hdr) {
  if (inlen < 2) return 0;
  size_t need = frame_size_from_start(in);
  if (inlen < need) return 0;
  h2ws__frame_parser p;
  h2ws__frame_parser_reset(&p);
  size_t nread = 0;
  h2ws__frame_hdr h;
  int rv = h2ws__frame_parse(&p, in, need, &nread, &h);
  uint8_t len7 = in[1] & 0x7f;
  hdr->fin = in[0] >> 7;
  hdr->rsv = (in[0] >> 4) & 0x7;
  hdr->opcode = in[0] & 0x0f;
  hdr->masked = in[1] >> 7;
  hdr->len_form = len7 < 126 ? 7 : len7 == 126 ? 16 : 64;
  if (rv == 1) {
    hdr->len = h.len;
    memcpy(hdr->key, h.key, 4);
    return (int)need;
  }
  /* MSB set: the internal parser refuses it; decode it for the report. */
  uint64_t len = 0;
  for (int i = 0; i < 8; i++) len = len << 8 | in[2 + i];
  hdr->len = len;
  if (hdr->masked) memcpy(hdr->key, in + 10, 4);
  else memset(hdr->key, 0, 4);
  return H2WS_ERR_PROTO;
}

size_t h2ws_frame_mask(uint8_t *dst, const uint8_t *src, size_t len,
                       const uint8_t key[4], size_t phase) {
  return h2ws__mask(dst, src, len, key, phase & 3);
}
