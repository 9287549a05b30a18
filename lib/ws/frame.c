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
