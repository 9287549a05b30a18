/* lib/ws/frame.h - RFC 6455 §5.2 frame header codec: incremental parser and builder. */
#ifndef H2WS_LIB_WS_FRAME_H
#define H2WS_LIB_WS_FRAME_H
#include <stddef.h>
#include <stdint.h>

/* Largest header: 2 + 8 (64-bit length) + 4 (masking key). */
#define H2WS__FRAME_HDR_MAX 14

#define H2WS__RSV1 0x4
#define H2WS__RSV2 0x2
#define H2WS__RSV3 0x1

/* A decoded frame header.  rsv holds RSV1..RSV3 as bits 2..0. */
typedef struct h2ws__frame_hdr {
  uint8_t fin;
  uint8_t rsv;
  uint8_t opcode;
  uint8_t masked;
  uint8_t key[4];
  uint64_t len;
} h2ws__frame_hdr;

/*
 * Incremental header parser.  It copies at most 14 header bytes into its own
 * buffer, so a header split at any byte boundary across calls parses the
 * same.  Zero-initialise (or h2ws__frame_parser_reset) before each header.
 */
typedef struct h2ws__frame_parser {
  uint8_t buf[H2WS__FRAME_HDR_MAX];
  uint8_t have; /* bytes collected */
  uint8_t need; /* header size known so far (2 until the second byte) */
} h2ws__frame_parser;

void h2ws__frame_parser_reset(h2ws__frame_parser *p);

/*
 * Consumes header bytes from (in, inlen), never more than the header needs,
 * storing the count in *pnread.  Returns 1 when the header is complete
 * (*phdr filled, parser reset for the next one), 0 when more bytes are
 * needed (all input consumed), or H2WS_ERR_PROTO for a 64-bit length with
 * its most significant bit set (RFC 6455 §5.2).  Semantic checks (opcode,
 * RSV, masking direction, control frame rules) belong to the caller.
 * Non-minimal length encodings are accepted.
 */
int h2ws__frame_parse(h2ws__frame_parser *p, const uint8_t *in, size_t inlen,
                      size_t *pnread, h2ws__frame_hdr *phdr);

/* Size of the header that h2ws__frame_build() writes for this payload
 * length (minimal length encoding) with or without a masking key. */
size_t h2ws__frame_header_size(uint64_t len, int masked);

/*
 * Writes a header into out (room for H2WS__FRAME_HDR_MAX bytes) using the
 * minimal length encoding, and returns its size.  key == NULL: unmasked;
 * otherwise MASK is set and the 4 key bytes follow the length.
 * rsv: RSV1..RSV3 as bits 2..0.
 */
size_t h2ws__frame_build(uint8_t *out, int fin, unsigned rsv, unsigned opcode,
                         const uint8_t *key, uint64_t len);

/* Nonzero for opcodes 0x8..0xF (RFC 6455 §5.5). */
static inline int h2ws__frame_is_control(unsigned opcode) { return (opcode & 0x8) != 0; }

#endif
