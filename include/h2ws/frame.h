/*
 * h2ws/frame.h - the raw RFC 6455 §5.2 frame codec, public: encode any
 * WebSocket frame, valid or not, and parse frame headers.
 *
 * This is the low-level layer under the engine (h2ws/ws.h).  The engine
 * only ever produces valid frames and refuses invalid ones; this layer
 * checks nothing, so that a tool (the `h2ws check` conformance checker, a
 * fuzzer, a test) can write what a peer must refuse: unknown opcodes, RSV
 * bits, unmasked client frames, control frames above 125 bytes or
 * fragmented, non-minimal length encodings, a 64-bit length with its most
 * significant bit set, a length that does not match the payload that
 * follows.  The engine's own checks are unchanged by its existence.
 *
 * Nothing here allocates, keeps state between calls or reads a clock.
 *
 * Layout of a header (RFC 6455 §5.2):
 *
 *     byte 0: FIN(0x80) RSV1(0x40) RSV2(0x20) RSV3(0x10) opcode(0x0f)
 *     byte 1: MASK(0x80) length7 (0..125, 126: 16-bit follows, 127: 64-bit)
 *     then the 16- or 64-bit length (network order), then the 4-byte
 *     masking key when MASK is set.
 */
#ifndef H2WS_FRAME_H
#define H2WS_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include <h2ws/h2ws.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The largest header: 2 + 8 (64-bit length) + 4 (masking key). */
#define H2WS_FRAME_HEADER_MAX 14

/* RSV bits as stored in h2ws_frame_header.rsv (bits 2..0). */
#define H2WS_FRAME_RSV1 0x4
#define H2WS_FRAME_RSV2 0x2
#define H2WS_FRAME_RSV3 0x1

/* How the payload length is encoded (h2ws_frame_header.len_form). */
typedef enum h2ws_frame_len_form {
  H2WS_FRAME_LEN_MINIMAL = 0, /* 7-bit, 16-bit or 64-bit, the shortest that
                                 fits (RFC 6455 §5.2: the only legal one) */
  H2WS_FRAME_LEN_7 = 7,       /* 7-bit: len must be <= 127 (126, 127 then
                                 mean "16/64-bit length follows" while
                                 none does: a deliberately broken header) */
  H2WS_FRAME_LEN_16 = 16,     /* 16-bit even for a small len; len <= 65535 */
  H2WS_FRAME_LEN_64 = 64      /* 64-bit, any value including MSB set */
} h2ws_frame_len_form;

/* One frame header, decoded or to encode.  Every field is taken as given:
 * opcode is any 4-bit value, rsv any 3-bit value. */
typedef struct h2ws_frame_header {
  int fin;          /* nonzero: FIN set */
  unsigned rsv;     /* RSV1..RSV3 as bits 2..0 (H2WS_FRAME_RSV*) */
  unsigned opcode;  /* 0x0..0xF (h2ws_opcode for the defined ones) */
  int masked;       /* nonzero: MASK set, key follows */
  uint8_t key[4];   /* masking key (when masked) */
  uint64_t len;     /* payload length as written / read */
  int len_form;     /* encode: h2ws_frame_len_form; decode: the form found
                       (7, 16 or 64) */
} h2ws_frame_header;

/*
 * Writes the header into out (outlen bytes of room) and returns its size
 * (2..14), or 0 when it does not fit or len does not fit the requested
 * len_form (e.g. len 70000 with H2WS_FRAME_LEN_16).  Only the low 4 bits
 * of opcode and the low 3 bits of rsv are used.
 */
H2WS_EXTERN size_t h2ws_frame_write_header(uint8_t *out, size_t outlen,
                                           const h2ws_frame_header *hdr);

/*
 * Writes a whole frame: the header (as h2ws_frame_write_header; hdr->len
 * is the length field written, which need not equal payloadlen), then
 * payload masked with hdr->key when hdr->masked.  Returns the bytes
 * written, or 0 when out is too small.  payload may be NULL when
 * payloadlen is 0.
 */
H2WS_EXTERN size_t h2ws_frame_encode(uint8_t *out, size_t outlen,
                                     const h2ws_frame_header *hdr, const uint8_t *payload,
                                     size_t payloadlen);

/*
 * Parses one header from the start of (in, inlen).  Returns the header's
 * size (2..14) with *hdr filled, 0 when more bytes are needed, or
 * H2WS_ERR_PROTO when the 64-bit length has its most significant bit set
 * (RFC 6455 §5.2; *hdr is still filled, so a tool can report it).  No
 * other check is made: opcodes, RSV bits, masking direction and control
 * frame rules are the caller's to judge.
 */
H2WS_EXTERN int h2ws_frame_parse_header(const uint8_t *in, size_t inlen,
                                        h2ws_frame_header *hdr);

/*
 * XOR-masks (or unmasks) len bytes: dst[i] = src[i] ^ key[(phase + i) % 4]
 * (RFC 6455 §5.3).  dst may equal src.  Returns the phase of the byte
 * after the last, so a payload masked in pieces gives the same bytes.
 */
H2WS_EXTERN size_t h2ws_frame_mask(uint8_t *dst, const uint8_t *src, size_t len,
                                   const uint8_t key[4], size_t phase);

#ifdef __cplusplus
}
#endif
#endif
