/*
 * h2ws/pmd.h - Sec-WebSocket-Extensions parsing and permessage-deflate
 * (RFC 7692) negotiation, for both roles, on every transport.
 *
 * This layer does no compression (the engine does, see h2ws/ws.h) and no
 * I/O: it reads header values, decides what is agreed, and writes header
 * values.  Its output, an h2ws_pmd_params, goes unchanged into
 * h2ws_ws_settings.pmd.  The same calls serve HTTP/1.1 (101 response) and
 * HTTP/2 / HTTP/3 (2xx response, RFC 8441 §5: the header keeps its RFC 6455
 * meaning).
 *
 * Typical use:
 *
 *   client                                  server
 *   ------                                  ------
 *   h2ws_pmd_config_default(&cfg);          h2ws_pmd_config_default(&cfg);
 *   h2ws_pmd_offer_build(&cfg, buf, ...)
 *     -> send "sec-websocket-extensions: <buf>"
 *                                           h2ws_pmd_server_negotiate(
 *                                               req.extensions, ..., &cfg,
 *                                               &params, resp, ...)
 *                                           -> if params.enabled, answer with
 *                                              "sec-websocket-extensions:
 *                                              <resp>"
 *   h2ws_pmd_client_accept(
 *       response extensions, ..., &cfg,
 *       &params)  (H2WS_ERR_HANDSHAKE: fail the connection)
 *   settings.pmd = params;                  settings.pmd = params;
 *
 * Strings are (pointer, length) pairs and need not be NUL-terminated; a NULL
 * pointer with length 0 means "header absent".  Several header lines must
 * be joined with ", " first (h2ws_header_join() in h2ws/handshake.h).
 * Nothing here allocates or keeps state between calls; every function is
 * reentrant.
 */
#ifndef H2WS_PMD_H
#define H2WS_PMD_H

#include <h2ws/ws.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------
 * Generic Sec-WebSocket-Extensions parser (RFC 6455 §9.1)
 * ------------------------------------------------------------------------ */

/* Caps applied by every function of this header (a value beyond them is
 * treated as malformed: H2WS_ERR_HANDSHAKE). */
#define H2WS_EXT_MAX_LEN 4096   /* bytes in one (joined) header value */
#define H2WS_EXT_MAX_EXTS 16    /* extensions (offers) in one value */
#define H2WS_EXT_MAX_PARAMS 16  /* parameters of one extension */

/*
 * One extension parameter.  name is a token.  value is NULL (valuelen 0)
 * for a parameter without "=value"; otherwise it points at the token, or,
 * when quoted is 1, at the inside of the quoted-string (between the quotes,
 * backslash escapes NOT removed: use h2ws_ext_param_value_copy()).
 * Pointers borrow the caller's input.
 */
typedef struct h2ws_ext_param {
  const char *name;
  size_t namelen;
  const char *value;
  size_t valuelen;
  int quoted;
} h2ws_ext_param;

/* One extension: its name (a token) and its parameters, which are
 * params[first_param .. first_param + nparams - 1] of the array given to
 * h2ws_ext_parse(). */
typedef struct h2ws_ext {
  const char *name;
  size_t namelen;
  size_t first_param;
  size_t nparams;
} h2ws_ext;

/*
 * Parses a Sec-WebSocket-Extensions value, strictly, following RFC 6455
 * §9.1:
 *
 *   extension-list = 1#extension
 *   extension      = token *( OWS ";" OWS param )
 *   param          = token [ OWS "=" OWS ( token / quoted-string ) ]
 *
 * with optional whitespace (SP / HTAB) around "," ";" "=" and at both ends.
 * Empty list elements ("a, , b", as RFC 9110 §5.6.1 allows a recipient to
 * skip) are skipped; a value that holds no extension at all is malformed.
 * Quoted-strings may contain backslash escapes (quoted-pair); a quoted
 * value whose unescaped content is not a token is malformed (RFC 6455
 * §9.1).  Names are returned as written (compare them case-insensitively).
 *
 * `exts` (maxexts entries) and `params` (maxparams entries) are caller
 * storage; *pnexts / *pnparams receive the counts used.  Pointers in the
 * results borrow (value, len).
 *
 * Returns 0; H2WS_ERR_HANDSHAKE when the value is malformed or exceeds
 * H2WS_EXT_MAX_LEN / H2WS_EXT_MAX_EXTS / H2WS_EXT_MAX_PARAMS; H2WS_ERR_NOBUF
 * when it is well-formed but needs more than maxexts / maxparams entries;
 * H2WS_ERR_INVALID_ARGUMENT on NULL output pointers.
 */
H2WS_EXTERN int h2ws_ext_parse(const char *value, size_t len, h2ws_ext *exts,
                               size_t maxexts, size_t *pnexts, h2ws_ext_param *params,
                               size_t maxparams, size_t *pnparams);

/*
 * Copies a parameter's value into buf (bufcap bytes), removing the quoted-
 * string escapes, and NUL-terminates it; *plen (may be NULL) receives the
 * length without the NUL.  A parameter without value yields "".
 * Returns 0 or H2WS_ERR_NOBUF.
 */
H2WS_EXTERN int h2ws_ext_param_value_copy(const h2ws_ext_param *param, char *buf,
                                          size_t bufcap, size_t *plen);

/* ------------------------------------------------------------------------
 * permessage-deflate negotiation (RFC 7692 §7.1)
 * ------------------------------------------------------------------------ */

/* Longest value h2ws_pmd_offer_build() / h2ws_pmd_server_negotiate() can
 * produce, including the terminating NUL: a buffer this large always
 * suffices. */
#define H2WS_PMD_MAX_VALUE_LEN 160

/*
 * What we want from permessage-deflate, in either role.  "server_*" always
 * means the server's compressor (what the server sends), "client_*" the
 * client's, whatever role we play.  Fill with h2ws_pmd_config_default()
 * and change fields; more fields may be added later.
 *
 * Memory per WebSocket (measured by tests/unit/test_deflate.c): the
 * deflater costs (1 << (w + 2)) + (1 << (mem_level + 9)) + ~6 KiB of zlib
 * state, where lib/ws/deflate.c uses mem_level = w - 6 (at most 8); the
 * inflater (1 << w) + ~7 KiB.  That is, for deflater / inflater:
 *   w = 15: ~262 KiB / ~39 KiB     w = 12: ~54 KiB / ~11 KiB
 *   w = 10:  ~18 KiB /  ~8 KiB     w =  8: ~12 KiB / ~7.5 KiB
 * A side only allocates once it sends / receives a compressed message.
 * The two "no_context_takeover" switches do not reduce the allocation
 * (contexts are reset, not freed) but make each message independent.
 */
typedef struct h2ws_pmd_config {
  /* Nonzero (default 1): offer (client) / accept (server) the extension. */
  int enabled;

  /*
   * Largest LZ77 window, 8..15 (default 15), for the server's compressor.
   *  client: < 15 offers "server_max_window_bits=N" (smaller inflater on
   *          our side); a response without the parameter or with a larger
   *          value is then rejected.
   *  server: the largest window we compress with; a client request for a
   *          smaller one is always honoured; < 15 is announced in the
   *          response even if the client did not ask.
   */
  int server_max_window_bits;

  /*
   * Largest LZ77 window, 8..15 (default 15), for the client's compressor.
   *  client: we always offer "client_max_window_bits" (we accept a limit);
   *          < 15 offers it with this value and we never compress with a
   *          larger window.
   *  server: when the offer carries client_max_window_bits (with or
   *          without a value) and this is < 15 (or the offered value is
   *          smaller) the response sets client_max_window_bits to the
   *          minimum.  A client that did not offer the parameter cannot be
   *          limited: we then inflate with a 15-bit window unless
   *          require_client_window is set, in which case such an offer is
   *          skipped (memory before interoperability).
   */
  int client_max_window_bits;

  /* client: offer server_no_context_takeover.
   * server: always answer with server_no_context_takeover (we reset our
   * compressor after each message); a client asking for it is always
   * honoured anyway.  Default 0. */
  int server_no_context_takeover;

  /* client: offer client_no_context_takeover (we reset our compressor per
   * message).  server: always require it in the response (RFC 7692
   * §7.1.1.2 lets the server add it).  Default 0. */
  int client_no_context_takeover;

  /* server only: skip offers without client_max_window_bits when
   * client_max_window_bits < 15 (see above).  Default 0. */
  int require_client_window;
  /* ABI (docs/abi.md): room for members added within this SONAME;
   * leave zero. */
  uint64_t reserved[4];
} h2ws_pmd_config;

/* Fills cfg with the defaults documented above: enabled, both windows 15,
 * context takeover on both sides, require_client_window 0. */
H2WS_EXTERN void h2ws_pmd_config_default(h2ws_pmd_config *cfg);

/*
 * Client: writes our offer, a NUL-terminated Sec-WebSocket-Extensions
 * value such as "permessage-deflate; client_max_window_bits", into buf
 * (buflen bytes; H2WS_PMD_MAX_VALUE_LEN always suffices); *plen (may be
 * NULL) receives its length without the NUL.  One offer only (we send no
 * fallback offer).  When cfg->enabled is 0 nothing should be sent: the
 * function writes "" and *plen = 0.
 * Returns 0, H2WS_ERR_NOBUF, H2WS_ERR_INVALID_ARGUMENT (NULL pointer,
 * window bits outside 8..15).
 */
H2WS_EXTERN int h2ws_pmd_offer_build(const h2ws_pmd_config *cfg, char *buf,
                                     size_t buflen, size_t *plen);

/*
 * Client: checks the server's Sec-WebSocket-Extensions answer (resp may be
 * NULL / resplen 0: the header was absent) against the offer built from
 * the same cfg, and fills *pparams with what was agreed.
 *
 * Absent or empty answer: the server declined; *pparams = {.enabled = 0}
 * and 0 is returned.  Otherwise the answer must be exactly one
 * "permessage-deflate" (RFC 6455 §9.1: the server may only answer with an
 * extension the client offered; we offer nothing else) whose parameters
 * are each known, at most once, with valid values (RFC 7692 §7.1):
 *   - server_no_context_takeover, client_no_context_takeover: no value;
 *     accepted whether offered or not (§7.1.1.1, §7.1.1.2);
 *   - server_max_window_bits=8..15: at most the offered value; required
 *     when we offered one (§7.1.2.1);
 *   - client_max_window_bits=8..15: only since we offered it (§7.1.2.2),
 *     and at most our offered value.
 * Anything else: H2WS_ERR_HANDSHAKE, *pparams->enabled = 0, and the client
 * MUST fail the WebSocket connection (RFC 7692 §7.1, RFC 6455 §4.1).
 *
 * When accepted, windows not limited by the answer are our offer's values
 * (15 if unbounded).  Returns 0, H2WS_ERR_HANDSHAKE,
 * H2WS_ERR_INVALID_ARGUMENT (NULL cfg / pparams, bad cfg).
 */
H2WS_EXTERN int h2ws_pmd_client_accept(const char *resp, size_t resplen,
                                       const h2ws_pmd_config *cfg,
                                       h2ws_pmd_params *pparams);

/*
 * Server: picks the first acceptable permessage-deflate offer in the
 * client's Sec-WebSocket-Extensions value (offers may be NULL / len 0: no
 * header), in the client's order of preference (RFC 7692 §5), and writes
 * the response value to resp.
 *
 * An offer is skipped (the next one is tried) when it has an unknown
 * parameter, a parameter twice, a value where none is allowed, a window
 * value that is not 8..15 (RFC 7692 §7.1: "decline"), or, with
 * require_client_window, no client_max_window_bits.  Other extensions are
 * ignored (we do not implement them).  For the chosen offer:
 *   - server_no_context_takeover requested -> granted;
 *   - server_max_window_bits=N requested -> granted as min(N, ours), N = 8
 *     included (lib/ws/deflate.c compresses with an 8-bit-compatible
 *     stream);
 *   - client_max_window_bits (with or without value) -> we answer with
 *     min(value or 15, ours) when that is below 15;
 *   - client_no_context_takeover requested -> echoed (our inflater can then
 *     reset per message);
 * and our own cfg->*_no_context_takeover are added.
 *
 * On agreement: *pparams is filled (enabled = 1), resp (resplen bytes,
 * H2WS_PMD_MAX_VALUE_LEN always suffices) receives the NUL-terminated value
 * to send, e.g. "permessage-deflate; client_max_window_bits=10", and
 * *presplen its length.  On decline (no header, no acceptable offer,
 * cfg->enabled 0): *pparams->enabled = 0, resp = "", *presplen = 0: send
 * no Sec-WebSocket-Extensions header.  presplen may be NULL.
 *
 * Returns 0 (agreed or declined: look at pparams->enabled);
 * H2WS_ERR_HANDSHAKE when the header is not valid §9.1 syntax or exceeds
 * the H2WS_EXT_MAX_* caps (pparams->enabled = 0; the server may answer 400,
 * or continue without extensions); H2WS_ERR_NOBUF (resp too small);
 * H2WS_ERR_INVALID_ARGUMENT (NULL cfg / pparams / resp, bad cfg).
 */
H2WS_EXTERN int h2ws_pmd_server_negotiate(const char *offers, size_t len,
                                          const h2ws_pmd_config *cfg,
                                          h2ws_pmd_params *pparams, char *resp,
                                          size_t resplen, size_t *presplen);

/*
 * Writes the response value describing `params` (as a server sends it)
 * into buf, NUL-terminated; *plen (may be NULL) gets its length: the
 * extension name, then server_no_context_takeover,
 * client_no_context_takeover, server_max_window_bits=N and
 * client_max_window_bits=N, each only when set / below 15 (a client that
 * sees no window parameter uses 15).  Only valid as an answer to an offer
 * that allowed each parameter written (h2ws_pmd_server_negotiate() makes
 * sure of it); exposed for gateways that forward an agreement.
 * Returns 0, H2WS_ERR_NOBUF, H2WS_ERR_INVALID_ARGUMENT (NULL pointer,
 * params not enabled or window bits outside 8..15).
 */
H2WS_EXTERN int h2ws_pmd_response_build(const h2ws_pmd_params *params, char *buf,
                                        size_t buflen, size_t *plen);

#ifdef __cplusplus
}
#endif
#endif /* H2WS_PMD_H */
