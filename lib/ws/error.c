/* lib/ws/error.c - h2ws_strerror (the one registry of every layer's error
 * codes, h2ws/h2ws.h). */
#include <h2ws/h2ws.h>

const char *h2ws_strerror(int error) {
  switch (error) {
  case H2WS_OK: return "success";
  case H2WS_ERR_WOULDBLOCK: return "operation would block";
  case H2WS_ERR_PAUSE: return "paused by a callback";
  case H2WS_ERR_INVALID_ARGUMENT: return "invalid argument";
  case H2WS_ERR_INVALID_STATE: return "invalid state for this operation";
  case H2WS_ERR_BUFFER_FULL: return "output buffer full";
  case H2WS_ERR_TOO_LARGE: return "value exceeds a configured limit";
  case H2WS_ERR_NOBUF: return "buffer too small";
  case H2WS_ERR_PROTO: return "protocol error by the peer";
  case H2WS_ERR_BAD_UTF8: return "invalid UTF-8 in a text message";
  case H2WS_ERR_MSG_TOO_BIG: return "message too big";
  case H2WS_ERR_BAD_DATA: return "undecodable compressed data";
  case H2WS_ERR_HANDSHAKE: return "opening handshake failed";
  case H2WS_ERR_TIMEOUT: return "timed out";
  case H2WS_ERR_CLOSED: return "closed";
  case H2WS_ERR_H2_NO_EXTENDED_CONNECT:
    return "server does not support WebSockets over HTTP/2 (RFC 8441)";
  case H2WS_ERR_H2_STREAM_RESET:
    return "HTTP/2 stream reset before the WebSocket opened";
  case H2WS_ERR_H2_BAD_RESPONSE:
    return "HTTP/2 WebSocket response does not match the request";
  case H2WS_ERR_H2_TOO_MANY_STREAMS:
    return "too many HTTP/2 streams on this connection";
  case H2WS_ERR_H2_GOAWAY: return "HTTP/2 connection is going away";
  case H2WS_ERR_RT_DNS: return "cannot resolve the host name";
  case H2WS_ERR_RT_CONNECT_REFUSED: return "connection refused";
  case H2WS_ERR_RT_CONNECT: return "cannot connect";
  case H2WS_ERR_RT_TLS: return "TLS handshake failed";
  case H2WS_ERR_RT_TLS_VERIFY: return "TLS certificate verification failed";
  case H2WS_ERR_RT_ALPN:
    return "ALPN did not select the protocol required (HTTP/2)";
  case H2WS_ERR_RT_LISTEN: return "cannot listen on the address";
  case H2WS_ERR_RT_NOT_H2:
    return "server does not speak HTTP/2 (no SETTINGS in answer to the "
           "prior-knowledge preface)";
  case H2WS_ERR_NOMEM: return "out of memory";
  case H2WS_ERR_CALLBACK_FAILURE: return "a callback failed";
  case H2WS_ERR_INTERNAL: return "internal error";
  default: return "unknown error";
  }
}
