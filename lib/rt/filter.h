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

typedef struct rt_filter_ops {
  /* Bytes from the socket.  Returns 0 or H2WS_ERR_NOMEM. */
  int (*feed)(rt_filter *f, const uint8_t *data, size_t len);
  /* Advances the handshake on what was fed (a client's first call
   * produces its hello).  Returns 0 (done: recv/send may be used),
   * H2WS_ERR_WOULDBLOCK (needs more input; output may be pending), or the
   * failure (H2WS_ERR_RT_TLS, H2WS_ERR_RT_TLS_VERIFY) with a one-line
   * message in err; pending output (an alert) should still be sent. */
  int (*handshake)(rt_filter *f, char *err, size_t errlen);
  /* Plaintext out of what was fed: 0 with *pn > 0 bytes in buf,
   * H2WS_ERR_WOULDBLOCK (nothing more now), H2WS_ERR_CLOSED (the peer
   * ended its protected stream: TLS close_notify), or another negative
   * value (a protocol failure: close the connection). */
  int (*recv)(rt_filter *f, uint8_t *buf, size_t len, size_t *pn);
  /* Protects all of data (the connection calls it once per flush with
   * everything gathered).  Returns 0 or a negative error. */
  int (*send)(rt_filter *f, const uint8_t *data, size_t len);
  /* Queues the end of our protected stream (TLS close_notify). */
  void (*shutdown)(rt_filter *f);
  /* Bytes waiting to go to the socket, and taking up to len of them
   * (returns how many were copied). */
  size_t (*pending)(const rt_filter *f);
  size_t (*take)(rt_filter *f, uint8_t *buf, size_t len);
  /* The application protocol negotiated (ALPN), "" if none. */
  void (*alpn)(const rt_filter *f, char *out, size_t outlen);
  void (*del)(rt_filter *f);
} rt_filter_ops;

/* Every filter starts with this. */
struct rt_filter {
  const rt_filter_ops *ops;
};

#endif
