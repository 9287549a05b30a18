/* lib/ws/deflate.h - permessage-deflate (RFC 7692) compression contexts on zlib. */
#ifndef H2WS_LIB_WS_DEFLATE_H
#define H2WS_LIB_WS_DEFLATE_H
#include <h2ws/ws.h>

/*
 * One object per WebSocket holding the inflater (for what the peer sends)
 * and the deflater (for what we send), each configured from the negotiated
 * parameters and our role (client: we deflate with client_* parameters and
 * inflate with server_*; server: the other way round).  zlib streams are
 * allocated lazily on first use through the h2ws_mem allocator, and with
 * no_context_takeover they are reset (not reallocated) after each message.
 */
typedef struct h2ws__pmd h2ws__pmd;

/* Returns 0, H2WS_ERR_INVALID_ARGUMENT (window bits outside 8..15),
 * H2WS_ERR_NOMEM. */
int h2ws__pmd_new(h2ws__pmd **ppmd, const h2ws_pmd_params *params,
                  h2ws_role role, const h2ws_mem *mem);
void h2ws__pmd_del(h2ws__pmd *pmd);

/*
 * Inflates the payload of a compressed message, streaming.  Consumes from
 * (*pin, *pinlen), advancing both, and writes at most outcap bytes to out,
 * storing the count in *pnout.  `fin` = 1 tells that the input given is the
 * message's last (the final frame's end): the inflater then appends the
 * 0x00 0x00 0xff 0xff tail itself (RFC 7692 §7.2.2).
 * Returns 1 when the message is complete (fin given, all input consumed,
 * all output produced; the context is reset if no_context_takeover), 0 when
 * it needs more input or more output room (call again: with more input, or
 * with the same remaining input after delivering out; a call with no input
 * first drains output held back by a full buffer), H2WS_ERR_BAD_DATA
 * on corrupt data (also: a payload that does not end on a block boundary
 * once the tail is appended), H2WS_ERR_NOMEM, H2WS_ERR_INVALID_ARGUMENT.
 * The caller bounds the total output by its max message size (D3): this
 * function never buffers output itself; each call produces at most outcap
 * bytes and zlib keeps only its window.
 *
 * Accepted on input: a final (BFINAL) block, after which the rest of the
 * payload is ignored and, with context takeover, the window carries over
 * (RFC 7692 §7.2.3.4); an empty payload, read as the empty message.  The
 * inflater's window is at least 9 bits even when 8 was agreed, so peers
 * that (like zlib) cannot produce 8 and use 9 still decode.
 */
int h2ws__pmd_inflate(h2ws__pmd *pmd, const uint8_t **pin, size_t *pinlen,
                      uint8_t *out, size_t outcap, size_t *pnout, int fin);

/*
 * Deflates message payload, streaming.  Consumes as much of (in, inlen) as
 * the output room allows and writes compressed bytes to out (at most
 * outcap), storing the count in *pnout and the input consumed in *pnin.  `fin` = 1
 * on the message's last input: the output is then flushed (Z_SYNC_FLUSH),
 * the trailing 0x00 0x00 0xff 0xff is removed (RFC 7692 §7.2.1) and, with
 * no_context_takeover, the context reset.  Returns 1 when fin was given and
 * everything is out, 0 when more calls are needed (out full: call again
 * with the remaining input, or with inlen 0 to drain), H2WS_ERR_NOMEM,
 * H2WS_ERR_INVALID_ARGUMENT (outcap 0), H2WS_ERR_INTERNAL (zlib misbehaved;
 * the context is unusable).  Any outcap works (even 1): below 64 bytes the
 * output is staged in a 64-byte buffer inside the context.  An empty
 * message is the single byte 0x00 (RFC 7692 §7.2.3.6).
 *
 * Memory: the deflater uses memLevel = windowBits - 6 (at most 8), i.e.
 * (1 << (w + 2)) + (1 << (memLevel + 9)) + ~6 KiB: ~262 KiB for w = 15,
 * ~18 KiB for 10, ~12 KiB for 8 (run as 9); the inflater (1 << w) + ~7 KiB.  Both
 * are allocated on first use only.
 *
 * Window bits 8: zlib's raw deflate refuses 8.  When our sending window is
 * 8 we deflate with window 9 and strategy Z_RLE (match distance always 1),
 * so the stream never refers further back than 1 byte and is valid for a
 * 256-byte window.  Inflating always works (zlib inflates with 8..15).
 */
int h2ws__pmd_deflate(h2ws__pmd *pmd, const uint8_t *in, size_t inlen,
                      int fin, uint8_t *out, size_t outcap, size_t *pnout,
                      size_t *pnin);

/* Upper bound of the compressed size of `inlen` bytes sent as one message
 * (after the tail is removed); lets the caller reserve output space. */
size_t h2ws__pmd_deflate_bound(const h2ws__pmd *pmd, size_t inlen);

#endif
