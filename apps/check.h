/* apps/check.h - `h2ws check`, shared between its files: the raw HTTP/2
 * wire (check_wire.c), the server case catalogue (check_cases.c), the
 * client-checking server (check_serve.c) and the command line and report
 * (check.c).
 *
 * The wire writes HTTP/2 frames itself (9-byte headers, any type, flags,
 * stream id, padding) and encodes header blocks with nghttp2's public HPACK
 * codec, so the checker can send what nghttp2's session would refuse to
 * send; WebSocket frames come from the public raw codec (h2ws/frame.h).
 * Every wait has a deadline: a peer that never answers makes a verdict
 * ("no answer within N ms"), never a hung checker. */
#ifndef H2WS_APPS_CHECK_H
#define H2WS_APPS_CHECK_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <nghttp2/nghttp2.h>
#include <openssl/ssl.h>

/* ---- HTTP/2 frame types, flags, settings, error codes (RFC 9113) ------ */
enum { CW_DATA = 0, CW_HEADERS = 1, CW_PRIORITY = 2, CW_RST_STREAM = 3, CW_SETTINGS = 4,
       CW_PUSH_PROMISE = 5, CW_PING = 6, CW_GOAWAY = 7, CW_WINDOW_UPDATE = 8,
       CW_CONTINUATION = 9 };
enum { CW_F_END_STREAM = 0x1, CW_F_ACK = 0x1, CW_F_END_HEADERS = 0x4, CW_F_PADDED = 0x8,
       CW_F_PRIORITY = 0x20 };
enum { CW_S_HEADER_TABLE_SIZE = 1, CW_S_ENABLE_PUSH = 2, CW_S_MAX_CONCURRENT_STREAMS = 3,
       CW_S_INITIAL_WINDOW_SIZE = 4, CW_S_MAX_FRAME_SIZE = 5, CW_S_MAX_HEADER_LIST_SIZE = 6,
       CW_S_ENABLE_CONNECT_PROTOCOL = 8 };
#define CW_NSETTINGS 16

#define CW_MAX_HEADERS 64
#define CW_MAX_STREAMS 300

/* A header list: names and values as given (case, order, duplicates kept). */
typedef struct cw_headers {
  int n;
  char name[CW_MAX_HEADERS][128];
  char value[CW_MAX_HEADERS][512];
} cw_headers;

void cw_headers_add(cw_headers *h, const char *name, const char *value);
/* Removes every field called name; returns how many. */
int cw_headers_del(cw_headers *h, const char *name);
/* Replaces the first field called name (adds it when absent). */
void cw_headers_set(cw_headers *h, const char *name, const char *value);
/* First value of name (exact, case-sensitive) or NULL. */
const char *cw_headers_get(const cw_headers *h, const char *name);
/* Same, names compared case-insensitively. */
const char *cw_headers_iget(const cw_headers *h, const char *name);

/* One WebSocket frame taken from a stream's DATA. */
typedef struct cw_wsframe {
  int fin;
  unsigned rsv, opcode;
  int masked;
  uint8_t *data; /* unmasked payload, owned by the stream (valid until the
                    next frame is taken from it) */
  size_t len;
} cw_wsframe;

typedef struct cw_stream {
  int32_t id;
  int used;
  int status;          /* :status of the response, 0 before it */
  cw_headers resp;     /* the response's header block (requests: the request) */
  int nblocks;         /* header blocks received on the stream */
  cw_headers trailers; /* a later block */
  int headers_end_stream; /* END_STREAM on the first header block */
  int end_stream;      /* the peer sent END_STREAM */
  int rst;             /* the peer sent RST_STREAM */
  uint32_t rst_code;
  int rst_sent;        /* we reset it */
  int64_t send_window; /* the peer's credit for our DATA */
  int64_t recv_window; /* our credit for the peer's DATA */
  int auto_update;     /* give the stream window back on arrival (default) */
  uint64_t data_bytes; /* DATA payload received (padding excluded) */
  int data_before_status; /* DATA arrived before any HEADERS */
  uint64_t data_after_end; /* DATA bytes after our WINDOW check failed */
  int max_data_frame;  /* largest DATA payload seen */
  /* WebSocket byte stream received, not yet taken as frames */
  uint8_t *in;
  size_t inlen, incap, inoff;
  uint8_t *frame; /* the current frame's payload */
  size_t framecap;
  int ws_masked_seen; /* a frame with MASK set arrived */
  int ws_unmasked_seen;
  int close_received; uint16_t close_code; char close_reason[128];
  int data_after_close; /* a data frame came after the peer's Close */
  int pongs; uint8_t last_pong[125]; size_t last_pong_len;
  int pings_received;
  uint8_t last_key[4]; int key_repeats; int keys_seen;
} cw_stream;

typedef struct cw_opts {
  const char *host;      /* to connect to */
  const char *port;
  int tls;
  int insecure;          /* no certificate verification */
  const char *cacert;
  const char *sni;       /* name to verify / send (default host) */
  int verbose;           /* frame log on log */
  FILE *log;
  const char *log_prefix;
  unsigned timeout_ms;   /* default deadline of one wait */
} cw_opts;

typedef struct cw_conn {
  cw_opts o;
  int server;            /* role: 1 when we are the server (--serve) */
  int fd;
  SSL_CTX *ctx;          /* owned when we made it (client) */
  SSL *ssl;
  char alpn[32];
  uint8_t *rbuf;
  size_t rlen, rcap;
  nghttp2_hd_deflater *def;
  nghttp2_hd_inflater *inf;
  /* the peer's SETTINGS */
  int settings_seen, settings_frames, settings_acked;
  int peer_has[CW_NSETTINGS];
  uint32_t peer_val[CW_NSETTINGS];
  int ecp_changes;       /* ENABLE_CONNECT_PROTOCOL changed 1 -> 0 */
  uint32_t peer_max_frame;
  uint32_t peer_init_window;
  /* ours */
  uint32_t our_init_window;
  uint32_t our_max_frame;
  int64_t conn_send_window, conn_recv_window;
  int auto_conn_update;  /* give the connection window back on arrival */
  int auto_ping_ack;
  /* connection state */
  int goaway;
  uint32_t goaway_code, goaway_last;
  char goaway_debug[128];
  /* How a connection ends.  The transport ends first (eof: the peer's FIN,
   * TCP reset, TLS close_notify or error, or a write of ours that failed,
   * after which we read what had arrived); the frames read before that end
   * are still handled, and only then is the connection closed.  So a
   * GOAWAY that came before a reset is never lost, and nothing is written
   * once the transport ended. */
  int eof;
  int reset;             /* the end was a TCP reset */
  int write_failed;      /* a write of ours failed (the peer had gone) */
  int closed;            /* eof, and every whole frame before it handled */
  char closed_why[160];  /* set with eof */
  uint64_t bytes_in;     /* bytes read from the transport (after TLS) */
  /* mute: writes are held back (automatic answers too: SETTINGS ACK, PING
   * ACK, WINDOW_UPDATE) until cw_unmute, so that after an offending frame
   * the checker writes nothing a closing peer could leave unread */
  int mute;
  uint8_t *obuf;
  size_t olen, ocap;
  char violation[256];   /* first HTTP/2 rule the peer broke, seen by the wire */
  int ping_acks;
  uint8_t ping_ack_data[8];
  int pings_received;
  uint64_t frames_in;
  int32_t next_id;
  int32_t peer_last_sid; /* highest stream the peer opened (server role) */
  int preface_seen;      /* server role: the client preface arrived */
  int last_frame_type;
  cw_stream streams[CW_MAX_STREAMS];
  uint64_t t0;
  /* server role: a hook called for each frame before it is handled */
  void (*on_frame)(struct cw_conn *c, int type, int flags, int32_t sid,
                   const uint8_t *p, size_t n, void *ud);
  void *ud;
} cw_conn;

uint64_t cw_now_ms(void);

/* Client: TCP connect + TLS (ALPN h2) with a deadline.  Returns 0, or -1
 * with why (a one-line reason) filled; no preface sent yet. */
int cw_connect(cw_conn *c, const cw_opts *o, char *why, size_t whylen);
/* Server role on an accepted socket (ssl may be NULL: cleartext). */
void cw_init_server(cw_conn *c, const cw_opts *o, int fd, SSL *ssl);
void cw_close(cw_conn *c);

/* The client preface plus a SETTINGS frame with these (id, value) pairs
 * (n of them; INITIAL_WINDOW_SIZE and MAX_FRAME_SIZE are remembered). */
int cw_send_preface(cw_conn *c, const uint32_t (*settings)[2], int n);
/* Waits for the peer's first SETTINGS.  Returns 1, 0 on timeout, -1 when
 * the connection ended. */
int cw_wait_settings(cw_conn *c, unsigned ms);

int cw_send_frame(cw_conn *c, int type, int flags, int32_t sid, const uint8_t *p,
                  size_t n);
/* HEADERS (+ CONTINUATION when the block exceeds the peer's frame size)
 * with the header list HPACK-encoded as given. */
int cw_send_headers(cw_conn *c, int32_t sid, const cw_headers *h, int end_stream);
int cw_send_rst(cw_conn *c, int32_t sid, uint32_t code);
int cw_send_window_update(cw_conn *c, int32_t sid, uint32_t inc);
int cw_send_ping(cw_conn *c, const uint8_t data[8]);
int cw_send_goaway(cw_conn *c, int32_t last, uint32_t code);
int cw_send_settings(cw_conn *c, const uint32_t (*settings)[2], int n);

/* Reads and handles one frame.  Returns 1, 0 when the deadline passed, -1
 * when the connection is over. */
int cw_read_frame(cw_conn *c, uint64_t deadline);
/* Reads frames until pred(c, arg) is true (1), the deadline (0), or the
 * end of the connection (-1). */
int cw_pump(cw_conn *c, int (*pred)(cw_conn *, void *), void *arg, uint64_t deadline);
/* PING round trip: every frame sent before it has been handled by the
 * peer's HTTP/2 layer when the ACK comes.  1, 0 timeout, -1 closed.
 * Reads what has arrived first; after a GOAWAY with an error code it
 * writes no PING (the peer is closing: bytes it leaves unread make its
 * kernel reset the connection) and only reads until the end, at most
 * 300 ms. */
int cw_barrier(cw_conn *c, unsigned ms);

/* Holds every write back from now on (see mute above). */
void cw_mute(cw_conn *c);
/* Sends what was held back, in order.  0 or -1. */
int cw_unmute(cw_conn *c);
/* Reads (and handles) frames without writing anything until the peer's
 * GOAWAY, the end of the connection, or the deadline: 1 GOAWAY, -1 the
 * connection ended without one, 0 deadline.  The connection is muted while
 * it waits and stays muted. */
int cw_await_goaway(cw_conn *c, uint64_t deadline);

cw_stream *cw_stream_get(cw_conn *c, int32_t id);
cw_stream *cw_stream_new(cw_conn *c, int32_t id);

/* The request an RFC 8441 client sends for path, in order: :method
 * CONNECT, :protocol websocket, :scheme, :path, :authority,
 * sec-websocket-version 13. */
void cw_ws_request(const cw_conn *c, const char *path, const char *authority,
                   cw_headers *h);
/* Sends a request on a new stream; returns it (NULL on error). */
cw_stream *cw_request(cw_conn *c, const cw_headers *h, int end_stream);
/* Waits until the stream has a response, is reset, or the connection
 * ends.  1 answered (status or reset), 0 timeout, -1 connection over. */
int cw_wait_answer(cw_conn *c, cw_stream *s, unsigned ms);

/* Sends bytes as DATA on a stream, within the peer's windows and frame
 * size, waiting for WINDOW_UPDATE as needed.  pad > 0: every DATA frame
 * carries PADDED with that many bytes of padding.  0, or -1 (window
 * closed past the deadline: why says so, or the connection ended). */
int cw_send_data(cw_conn *c, cw_stream *s, const uint8_t *p, size_t n, int end_stream,
                 int pad, unsigned ms, char *why, size_t whylen);

/* Encodes one WebSocket frame into out (cap bytes) with a fresh random
 * masking key when masked; returns its size or 0. */
size_t cw_ws_frame(uint8_t *out, size_t cap, int fin, unsigned rsv, unsigned opcode,
                   int masked, const void *payload, size_t len);
/* Sends one masked frame on s.  0 or -1. */
int cw_ws_send(cw_conn *c, cw_stream *s, unsigned opcode, const void *p, size_t n);
/* Takes the next WebSocket frame of s, reading until the deadline.
 * 1 frame, 0 timeout, -1 stream or connection ended before a frame,
 * -2 undecodable header (64-bit length MSB). */
int cw_ws_next(cw_conn *c, cw_stream *s, cw_wsframe *f, uint64_t deadline);
/* Receives the next message or Close (control frames in between are
 * handled: pings answered, pongs counted).  Reassembles fragments into
 * buf (cap).  Returns the opcode (1, 2, 8), 0 timeout, -1 ended. */
int cw_ws_recv(cw_conn *c, cw_stream *s, uint8_t *buf, size_t cap, size_t *plen,
               int *prsv1, uint64_t deadline);

void cw_log(cw_conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *cw_err_name(uint32_t code);
const char *cw_setting_name(int id);
const char *cw_frame_name(int type);

/* Server role: reads the client preface (24 bytes).  1, 0, -1. */
int cw_read_preface(cw_conn *c, uint64_t deadline);

/* ---- the catalogue (check_cases.c) ---------------------------------- */

enum { CK_PASS = 0, CK_WARN = 1, CK_FAIL = 2, CK_SKIP = 3 };
const char *ck_verdict_name(int v);

typedef struct ck_target {
  cw_opts wire;
  const char *path;      /* the WebSocket endpoint (path + query) */
  char authority[300];
  int no_route;          /* --no-route: the server has no WebSocket route */
  /* learnt by the preflight */
  int h2;                /* ALPN h2 / prior knowledge answered */
  int ecp;               /* ENABLE_CONNECT_PROTOCOL value, -1 absent */
  int opens;             /* a WebSocket opens at path */
  int echo;              /* and echoes */
  int pmd;               /* the server accepts permessage-deflate */
  char pmd_answer[256];
  uint32_t max_streams;  /* advertised, 0 when none */
  int has_max_streams;
  int nsettings;
  uint32_t settings[CW_NSETTINGS][2];
  char preflight_why[256];
} ck_target;

typedef struct ck_run {
  const ck_target *t;
  cw_conn *c;            /* the case's connection (NULL until made) */
  int verdict;
  int decided;
  char detail[600];
  int survival;          /* CK_SURV_* */
} ck_run;

enum { CK_SURV_FRESH = 0, /* a fresh WebSocket opens and echoes */
       CK_SURV_NONE = 1   /* the connection is meant to end */ };

enum { CK_NEED_NONE = 0, CK_NEED_OPEN = 1, CK_NEED_ECHO = 2, CK_NEED_PMD = 4,
       CK_NEED_LIMIT = 8 };

typedef struct ck_case {
  const char *id;
  const char *clause;
  const char *title;
  int needs;
  void (*run)(ck_run *r);
} ck_case;

extern const ck_case ck_cases[];
extern const size_t ck_ncases;

/* Runs the preflight: connects, reads SETTINGS, opens a WebSocket and
 * tries an echo and permessage-deflate.  Returns 0, or 2 when it cannot
 * connect or the server does not speak HTTP/2 (why in t->preflight_why). */
int ck_preflight(ck_target *t);
/* Runs one case on a fresh connection, then the survival check. */
void ck_run_case(const ck_target *t, const ck_case *k, ck_run *r);

/* ---- the client checker (check_serve.c) ----------------------------- */
typedef struct ck_serve_opts {
  const char *listen;    /* HOST:PORT */
  int cleartext;
  const char *cert, *key;
  int verbose;
  unsigned settings_delay_ms;
  unsigned timeout_ms;
  int once;              /* exit after the first client's report */
  int json;
} ck_serve_opts;
int ck_serve(const ck_serve_opts *o);

#endif
