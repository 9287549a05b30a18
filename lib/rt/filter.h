/* lib/rt/filter.h - a filter on a connection's byte stream (TLS today):
 * what the TCP connection (conn.c) asks of whatever transforms the bytes
 * between the socket and the protocol.  The connection holds at most one;
 * it knows nothing of how the filter does its work.  A transport that
 * brings its own encryption (QUIC) is not a byte stream and has none. */
#ifndef H2WS_LIB_RT_FILTER_H
#define H2WS_LIB_RT_FILTER_H

#include <stddef.h>
#include <stdint.h>

typedef struct rt_filter rt_filter;

/* Where a filter puts the bytes for the socket: a buffer the connection
 * lends for one call (the runtime's scratch, or a buffer a write request
 * takes over) and sends right after it, so a filter holds no output of
 * its own between calls (nothing kept per idle connection).  grow()
 * makes room for `want` bytes in all (contents kept); 0 or -1. */
typedef struct rt_obuf rt_obuf;
struct rt_obuf {
  uint8_t *buf;
  size_t len, cap;
  int (*grow)(rt_obuf *o, size_t want);
  void *ctx;
};

typedef struct rt_filter_ops {
  /* Lends bytes from the socket (valid until keep() or the next feed):
   * recv/handshake read them in place.  Returns 0. */
  int (*feed)(rt_filter *f, const uint8_t *data, size_t len);
  /* The lent bytes are going away: copies what was not read yet (a
   * paused protocol stopped the reads).  Returns 0 or H2WS_ERR_NOMEM. */
  int (*keep)(rt_filter *f);
  /* Advances the handshake on what was fed (a client's first call
   * produces its hello).  Returns 0 (done: recv/send may be used),
   * H2WS_ERR_WOULDBLOCK (needs more input; output may be in out), or
   * the failure (H2WS_ERR_RT_TLS, H2WS_ERR_RT_TLS_VERIFY) with a one-line
   * message in err; output in out (an alert) should still be sent. */
  int (*handshake)(rt_filter *f, rt_obuf *out, char *err, size_t errlen);
  /* Plaintext out of what was fed: 0 with *pn > 0 bytes in buf,
   * H2WS_ERR_WOULDBLOCK (nothing more now), H2WS_ERR_CLOSED (the peer
   * ended its protected stream: TLS close_notify), or another negative
   * value (a protocol failure: close the connection).  Reading may
   * produce output (TLS 1.3 tickets, key updates): into out. */
  int (*recv)(rt_filter *f, uint8_t *buf, size_t len, size_t *pn,
              rt_obuf *out);
  /* Protects all of data into out (large writes become full records,
   * a small one one small record).  Returns 0 or a negative error. */
  int (*send)(rt_filter *f, const uint8_t *data, size_t len, rt_obuf *out);
  /* Puts the end of our protected stream (TLS close_notify) into out. */
  void (*shutdown)(rt_filter *f, rt_obuf *out);
  /* The application protocol negotiated (ALPN), "" if none. */
  void (*alpn)(const rt_filter *f, char *out, size_t outlen);
  /* Optional: keep (on) or give back (off) the filter's per-connection
   * work buffers: kept while the connection is busy (no allocation per
   * record), given back when it has been idle for a while. */
  void (*hold_buffers)(rt_filter *f, int on);
  /* Bytes the filter holds for this connection (tests: idle memory). */
  size_t (*held)(const rt_filter *f);
  void (*del)(rt_filter *f);
} rt_filter_ops;

/* Every filter starts with this. */
struct rt_filter {
  const rt_filter_ops *ops;
};

#endif
