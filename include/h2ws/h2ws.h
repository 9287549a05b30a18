/*
 * h2ws/h2ws.h - what every h2ws layer shares: error codes, the allocator
 * hook, the time convention and version information.
 *
 * Conventions used by every public header:
 *  - Functions return 0 (H2WS_OK) on success or one of the negative
 *    h2ws_error values; each function's comment lists which.
 *  - Time is always a parameter: a monotonic timestamp in milliseconds
 *    (uint64_t) chosen by the caller.  The library never reads a clock.
 *  - "(data, datalen)" pairs carry bytes; out-parameters start with "p".
 *  - "Valid until the callback returns" / "valid until the next call on
 *    the same object" are the only two lifetimes of pointers the library
 *    hands out.  The library never takes ownership of caller memory.
 */
#ifndef H2WS_H2WS_H
#define H2WS_H2WS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * H2WS_EXTERN marks every function the shared libraries export; the
 * library is built with -fvisibility=hidden, so what does not carry it is
 * internal (docs/abi.md).  For a program it expands to nothing.
 */
#if defined(H2WS_BUILDING) && defined(__GNUC__) && __GNUC__ >= 4
#define H2WS_EXTERN __attribute__((visibility("default")))
#else
#define H2WS_EXTERN
#endif

/*
 * The version of the headers compiled against.  H2WS_VERSION_NUM is
 * 0xMMmmpp (major, minor, patch), so `H2WS_VERSION_NUM >= 0x000200` tests
 * for 0.2.0 or later at compile time; h2ws_version_num() gives the library
 * actually loaded.  This is the project's version; the shared libraries'
 * ABI has its own number, the SONAME's (libh2ws.so.1): docs/abi.md says
 * how the two move.
 */
#define H2WS_VERSION_MAJOR 0
#define H2WS_VERSION_MINOR 1
#define H2WS_VERSION_PATCH 0
#define H2WS_VERSION "0.1.0"
#define H2WS_VERSION_NUM                                                      \
  ((H2WS_VERSION_MAJOR << 16) | (H2WS_VERSION_MINOR << 8) | H2WS_VERSION_PATCH)

/*
 * Error codes, in ranges:
 *   -1 .. -99     flow control (not failures: try again / paused)
 *   -100 .. -199  usage errors (the caller did something illegal)
 *   -200 .. -299  the peer violated the protocol or refused (the library
 *                 has already acted: queued the right close code /
 *                 RST_STREAM / GOAWAY); -250 .. -299 are the HTTP/2
 *                 binding's (h2ws/h2.h)
 *   -300 .. -399  the runtime (h2ws/rt.h): the network or the transport
 *                 under the WebSocket failed (DNS, connect, TLS, listen)
 *   -900 .. -999  fatal: after one of these only the _del function is legal
 * h2ws_strerror() knows every one of them.
 */
typedef enum h2ws_error {
  H2WS_OK = 0,
  /* flow */
  H2WS_ERR_WOULDBLOCK = -1,     /* nothing can be done now; try later */
  H2WS_ERR_PAUSE = -2,          /* a callback asked to pause delivery */
  /* usage */
  H2WS_ERR_INVALID_ARGUMENT = -101,
  H2WS_ERR_INVALID_STATE = -102, /* e.g. sending after a Close was sent */
  H2WS_ERR_BUFFER_FULL = -103,   /* queued output would exceed its cap */
  H2WS_ERR_TOO_LARGE = -104,     /* a value exceeds a configured limit */
  H2WS_ERR_NOBUF = -105,         /* caller's output buffer too small */
  /* peer */
  H2WS_ERR_PROTO = -201,         /* protocol violation (close 1002) */
  H2WS_ERR_BAD_UTF8 = -202,      /* invalid UTF-8 in a text message (1007) */
  H2WS_ERR_MSG_TOO_BIG = -203,   /* frame or message above the limit (1009) */
  H2WS_ERR_BAD_DATA = -204,      /* undecodable compressed data (1007) */
  H2WS_ERR_HANDSHAKE = -205,     /* opening handshake malformed/refused */
  H2WS_ERR_TIMEOUT = -206,       /* the peer did not answer in time */
  H2WS_ERR_CLOSED = -207,        /* the peer or transport ended the WebSocket */
  /* HTTP/2 binding (h2ws/h2.h) */
  /* Client: the server's SETTINGS did not carry
   * SETTINGS_ENABLE_CONNECT_PROTOCOL = 1, so RFC 8441 WebSockets cannot be
   * opened on this connection (RFC 8441 §3).  Fall back to HTTP/1.1 or
   * report "server does not support RFC 8441". */
  H2WS_ERR_H2_NO_EXTENDED_CONNECT = -250,
  /* The stream was refused or reset before the WebSocket opened
   * (RST_STREAM, GOAWAY above our stream id, session ended). */
  H2WS_ERR_H2_STREAM_RESET = -251,
  /* Client: the server answered 2xx but its sec-websocket-protocol /
   * sec-websocket-extensions do not match what was offered. */
  H2WS_ERR_H2_BAD_RESPONSE = -252,
  /* Stream limit (settings.max_websockets or the peer's
   * MAX_CONCURRENT_STREAMS) reached: open a new connection. */
  H2WS_ERR_H2_TOO_MANY_STREAMS = -253,
  /* The session is shutting down or received GOAWAY: no new streams. */
  H2WS_ERR_H2_GOAWAY = -254,
  /* runtime (h2ws/rt.h): the network or the transport failed */
  H2WS_ERR_RT_DNS = -301,             /* the host name did not resolve */
  H2WS_ERR_RT_CONNECT_REFUSED = -302, /* TCP connect refused: nothing listens */
  H2WS_ERR_RT_CONNECT = -303,         /* TCP connect failed otherwise
                                         (unreachable, reset, ...) */
  H2WS_ERR_RT_TLS = -304,             /* TLS handshake failed (an alert, or
                                         the peer does not speak TLS) */
  H2WS_ERR_RT_TLS_VERIFY = -305,      /* the peer's certificate did not
                                         verify (unknown CA, wrong name,
                                         expired) */
  H2WS_ERR_RT_ALPN = -306,            /* ALPN did not select a protocol the
                                         policy requires (HTTP/2 only) */
  H2WS_ERR_RT_LISTEN = -307,          /* bind or listen failed (address in
                                         use, no permission) */
  H2WS_ERR_RT_NOT_H2 = -308,          /* HTTP/2: the server answered the
                                         preface without SETTINGS (an
                                         HTTP/1.1-only server, prior
                                         knowledge) */
  /* fatal */
  H2WS_ERR_NOMEM = -901,
  H2WS_ERR_CALLBACK_FAILURE = -902, /* a callback returned a failure */
  H2WS_ERR_INTERNAL = -903
} h2ws_error;

/* Returns a static, human-readable description of an h2ws_error code. */
H2WS_EXTERN const char *h2ws_strerror(int error);

/*
 * Returns the version of the library loaded at run time, as a static
 * string ("0.1.0"), which may be newer than the H2WS_VERSION a program
 * was compiled with (the same SONAME keeps older programs working).
 */
H2WS_EXTERN const char *h2ws_version(void);

/* Returns the loaded library's version as H2WS_VERSION_NUM (0xMMmmpp). */
H2WS_EXTERN uint32_t h2ws_version_num(void);

/*
 * Custom allocator.  Every h2ws object takes an optional `const h2ws_mem *`;
 * NULL means the C library's malloc family.  The functions must behave like
 * their libc counterparts; `user_data` is passed to each of them.  Library
 * code never aborts when an allocation fails: it returns H2WS_ERR_NOMEM.
 */
typedef struct h2ws_mem {
  void *user_data;
  void *(*malloc)(size_t size, void *user_data);
  void (*free)(void *ptr, void *user_data);
  void *(*calloc)(size_t nmemb, size_t size, void *user_data);
  void *(*realloc)(void *ptr, size_t size, void *user_data);
} h2ws_mem;

/* Timestamp meaning "no deadline" in get_expiry functions. */
#define H2WS_NO_EXPIRY UINT64_MAX

#ifdef __cplusplus
}
#endif
#endif /* H2WS_H2WS_H */
