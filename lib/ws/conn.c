/* lib/ws/conn.c - the h2ws_ws engine: receive state machine, output queue,
 * close handshake, closing timer, data sources, whole-message mode, stats. */
#include <string.h>

#include <h2ws/ws.h>

#include "ws/deflate.h"
#include "ws/engine.h"
#include "ws/frame.h"
#include "ws/mask.h"
#include "ws/mem.h"
#include "ws/prepared.h"
#include "ws/utf8.h"

/* Stack scratch for unmasking (server) and inflating: no heap per frame. */
#define WS_SCRATCH 8192
/* Control frames may exceed max_output by this much (a Close always fits). */
#define WS_CTRL_RESERVE 512
/* A non-NULL pointer for empty inputs (no arithmetic on NULL). */
static const uint8_t ws_empty[1] = {0};
/* Buffers above this are "large".  A large whole-message buffer or output
 * queue is kept (reused, no allocation, no page faults per message) while
 * messages that need it keep coming, and released once it is empty and no
 * message above this size was received or queued for WS_KEEP_IDLE_MS of
 * the caller's time (the `now` of recv/send): an idle WebSocket does not
 * keep the memory of its largest message.  The release runs in
 * h2ws_ws_handle_expiry(), its deadline is reported by get_expiry().
 * Small (16 KiB): a buffer up to this size is kept for the WebSocket's
 * life, so a long-lived WebSocket that once carried a 200 KiB message does
 * not keep 2 x 256 KiB of capacity that no budget counts (the soak's
 * cleartext server grew by that, issue 9). */
#define WS_KEEP_MAX (16u << 10)
#define WS_KEEP_IDLE_MS 1000
/* First allocation of the output queue. */
#define WS_OUT_MIN 256
/* Messages up to this size are never checked against max_inflate_ratio. */
#define WS_RATIO_FLOOR (1u << 20)
/* Largest control frame on the wire: 2 + 4 + 125. */
#define WS_CTRL_FRAME_MAX 131

typedef enum ws_rstate {
  RS_HEADER,  /* collecting a frame header */
  RS_PAYLOAD, /* payload bytes remain (or an inflater drain is pending) */
  RS_END      /* payload complete: frame / message end actions */
} ws_rstate;

/* What the engine keeps of h2ws_ws_settings: all but pmd (used by
 * h2ws_ws_new only) and the reserved words (40 bytes per WebSocket). */
typedef struct ws_settings {
  uint64_t max_frame_size, max_message_size, close_timeout_ms;
  uint64_t recv_budget, max_inflate_ratio;
  size_t max_output, fragment_size, compress_threshold;
  int whole_messages, auto_pong;
} ws_settings;

/* h2ws_ws_callbacks without its reserved words (32 bytes). */
typedef struct ws_cbs {
  int (*on_msg_begin)(h2ws_ws *ws, h2ws_opcode opcode, int compressed,
                      void *user_data);
  int (*on_msg_data)(h2ws_ws *ws, const uint8_t *data, size_t datalen,
                     void *user_data);
  int (*on_msg_end)(h2ws_ws *ws, void *user_data);
  int (*on_msg)(h2ws_ws *ws, h2ws_opcode opcode, const uint8_t *data,
                size_t datalen, void *user_data);
  int (*on_ping)(h2ws_ws *ws, const uint8_t *data, size_t datalen,
                 void *user_data);
  int (*on_pong)(h2ws_ws *ws, const uint8_t *data, size_t datalen,
                 void *user_data);
  void (*on_close)(h2ws_ws *ws, uint16_t code, const uint8_t *reason,
                   size_t reasonlen, void *user_data);
  void (*on_writable)(h2ws_ws *ws, void *user_data);
  int (*random)(uint8_t *buf, size_t len, void *user_data);
  void (*on_frame_trace)(h2ws_ws *ws, int sent, int fin, unsigned rsv,
                         h2ws_opcode opcode, uint64_t length,
                         void *user_data);
} ws_cbs;

/* h2ws_ws_stats without its reserved words (h2ws_ws_get_stats fills them). */
typedef struct ws_stats {
  uint64_t msgs_in, msgs_out, bytes_in, bytes_out;
  uint16_t close_code_sent, close_code_received;
} ws_stats;

struct h2ws_ws {
  h2ws_role role;
  ws_rstate rstate;
  ws_cbs cb;
  ws_settings set;
  const h2ws_mem *mem;
  void *user_data;
  h2ws__pmd *pmd; /* NULL unless permessage-deflate was negotiated */

  /* --- receive --- */
  h2ws__frame_parser fp;
  h2ws__frame_hdr hdr;  /* current frame */
  uint64_t remaining;   /* payload bytes of the current frame still to come */
  size_t phase;         /* masking key position of the next payload byte */
  h2ws_opcode msg_opcode;
  /* flags are bytes: an idle WebSocket is mostly this object */
  uint8_t msg_active;   /* a data message is in progress (between fragments) */
  uint8_t msg_compressed;
  uint8_t infl_pending; /* the inflater may hold output not yet delivered */
  uint8_t infl_done;    /* the inflater finished the current message */
  uint64_t msg_wire;    /* payload bytes announced by this message's frames */
  uint64_t msg_zin;     /* compressed payload bytes received for it */
  uint64_t msg_size;    /* bytes delivered for this message (after inflate) */
  uint64_t recv_spent;  /* message bytes delivered in this h2ws_ws_recv call
                           (settings.recv_budget) */
  h2ws__utf8 utf8;
  uint8_t skip;         /* the next input byte was already processed */
  uint8_t ctrl_len;     /* of ctrl, at most 125 */
  uint8_t ctrl[125];    /* the current control frame's payload, unmasked */
  uint8_t *wbuf;        /* whole_messages: the message so far (reused) */
  size_t wlen, wcap;

  /* --- output queue: bytes [out_off, out_len) of out are pending --- */
  uint8_t *out;
  size_t out_off, out_len, out_cap;

  /* --- send-side message state --- */
  h2ws_opcode src_opcode;
  uint8_t want_writable; /* a submit failed with BUFFER_FULL */
  uint8_t frag_active;   /* submit_fragment message in progress */
  uint8_t frag_compressed;
  uint8_t src_active, src_deferred, src_first, src_compressed;
  uint8_t src_reading;   /* inside the source's read(): no submits */
  h2ws_data_source src;

  /* --- lifecycle --- */
  uint8_t close_sent;     /* a Close frame is queued (nothing may follow) */
  uint8_t close_received; /* the peer's Close arrived */
  uint8_t failed;         /* we failed the WebSocket (peer violation) */
  uint8_t ended;          /* transport ended / aborted / closing timed out */
  uint8_t close_fired;    /* on_close was called */
  int in_callback;
  int fatal;            /* fatal error code, 0 if none */
  uint64_t close_deadline;

  uint64_t now;          /* the latest `now` the caller passed */
  uint64_t big_deadline; /* release of the idle large buffers, or NO_EXPIRY */

  ws_stats stats;
};

/* ------------------------------------------------------------------------ */
/* Close codes                                                               */

int h2ws_close_code_is_valid(uint16_t code) {
  /* RFC 6455 §7.4.1/§7.4.2: 1004, 1005, 1006 and 1015 never on the wire;
   * 1000-2999 reserved for the protocol (IANA registry up to 1014);
   * 3000-4999 registered / private use. */
  if (code >= 1000 && code <= 1003) return 1;
  if (code >= 1007 && code <= 1014) return 1;
  if (code >= 3000 && code <= 4999) return 1;
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Settings and lifetime                                                     */

void h2ws_ws_settings_default(h2ws_ws_settings *s) {
  memset(s, 0, sizeof(*s));
  s->max_frame_size = 0; /* no separate frame limit: see frame_cap() */
  s->max_message_size = 16u << 20;
  s->max_output = 1u << 20;
  s->close_timeout_ms = 5000;
  s->whole_messages = 0;
  s->auto_pong = 1;
  s->fragment_size = 64u << 10;
  s->pmd.enabled = 0;
  s->pmd.server_max_window_bits = 15;
  s->pmd.client_max_window_bits = 15;
  s->compress_threshold = 32;
}

int h2ws_ws_new(h2ws_ws **pws, h2ws_role role,
                const h2ws_ws_callbacks *callbacks,
                const h2ws_ws_settings *settings, const h2ws_mem *mem,
                void *user_data) {
  if (!pws) return H2WS_ERR_INVALID_ARGUMENT;
  *pws = NULL;
  if (role != H2WS_ROLE_CLIENT && role != H2WS_ROLE_SERVER)
    return H2WS_ERR_INVALID_ARGUMENT;
  h2ws_ws_settings set;
  if (settings) set = *settings;
  else h2ws_ws_settings_default(&set);
  if (set.fragment_size == 0 || set.max_output == 0 ||
      set.max_message_size == 0)
    return H2WS_ERR_INVALID_ARGUMENT;
  if (set.pmd.enabled &&
      (set.pmd.server_max_window_bits < 8 || set.pmd.server_max_window_bits > 15 ||
       set.pmd.client_max_window_bits < 8 || set.pmd.client_max_window_bits > 15))
    return H2WS_ERR_INVALID_ARGUMENT;
  /* RFC 6455 §5.3: a client needs unpredictable masking keys. */
  if (role == H2WS_ROLE_CLIENT && (!callbacks || !callbacks->random))
    return H2WS_ERR_INVALID_ARGUMENT;
  if (!mem) mem = h2ws__mem_default();

  h2ws_ws *ws = h2ws__calloc(mem, 1, sizeof(*ws));
  if (!ws) return H2WS_ERR_NOMEM;
  ws->role = role;
  if (callbacks) {
    ws->cb.on_msg_begin = callbacks->on_msg_begin;
    ws->cb.on_msg_data = callbacks->on_msg_data;
    ws->cb.on_msg_end = callbacks->on_msg_end;
    ws->cb.on_msg = callbacks->on_msg;
    ws->cb.on_ping = callbacks->on_ping;
    ws->cb.on_pong = callbacks->on_pong;
    ws->cb.on_close = callbacks->on_close;
    ws->cb.on_writable = callbacks->on_writable;
    ws->cb.random = callbacks->random;
    ws->cb.on_frame_trace = callbacks->on_frame_trace;
  }
  ws->set.max_frame_size = set.max_frame_size;
  ws->set.max_message_size = set.max_message_size;
  ws->set.close_timeout_ms = set.close_timeout_ms;
  ws->set.recv_budget = set.recv_budget;
  ws->set.max_inflate_ratio = set.max_inflate_ratio;
  ws->set.max_output = set.max_output;
  ws->set.fragment_size = set.fragment_size;
  ws->set.compress_threshold = set.compress_threshold;
  ws->set.whole_messages = set.whole_messages;
  ws->set.auto_pong = set.auto_pong;
  ws->mem = mem;
  ws->user_data = user_data;
  ws->rstate = RS_HEADER;
  h2ws__frame_parser_reset(&ws->fp);
  ws->close_deadline = H2WS_NO_EXPIRY;
  ws->big_deadline = H2WS_NO_EXPIRY;
  if (set.pmd.enabled) {
    int rv = h2ws__pmd_new(&ws->pmd, &set.pmd, role, mem);
    if (rv != 0) {
      h2ws__free(mem, ws);
      return rv;
    }
  }
  *pws = ws;
  return 0;
}

void h2ws_ws_del(h2ws_ws *ws) {
  if (!ws) return;
  if (ws->pmd) h2ws__pmd_del(ws->pmd);
  h2ws__free(ws->mem, ws->wbuf);
  h2ws__free(ws->mem, ws->out);
  h2ws__free(ws->mem, ws);
}

/* ------------------------------------------------------------------------ */
/* Output queue                                                              */

/* After a fatal error only h2ws_ws_del() is legal. */
static int ws_fatal(h2ws_ws *ws, int err) {
  ws->fatal = err;
  return err;
}


static size_t out_queued(const h2ws_ws *ws) { return ws->out_len - ws->out_off; }

/* A message needed a large buffer: keep the large buffers a while longer. */
static void big_touch(h2ws_ws *ws) {
  ws->big_deadline = ws->now + WS_KEEP_IDLE_MS;
}

/* Releases the large buffers that are empty; returns nonzero if a large
 * one is still held (in use). */
static int big_release(h2ws_ws *ws) {
  if (ws->out_cap > WS_KEEP_MAX && out_queued(ws) == 0) {
    h2ws__free(ws->mem, ws->out);
    ws->out = NULL;
    ws->out_off = ws->out_len = ws->out_cap = 0;
  }
  if (ws->wcap > WS_KEEP_MAX && ws->wlen == 0) {
    h2ws__free(ws->mem, ws->wbuf);
    ws->wbuf = NULL;
    ws->wcap = 0;
  }
  return ws->out_cap > WS_KEEP_MAX || ws->wcap > WS_KEEP_MAX;
}

/* Grows the buffer to at least `cap` bytes, keeping its content. */
static int out_grow(h2ws_ws *ws, size_t cap) {
  if (cap <= ws->out_cap) return 0;
  size_t ncap = ws->out_cap ? ws->out_cap * 2 : WS_OUT_MIN;
  size_t soft = ws->set.max_output + WS_CTRL_RESERVE;
  if (ncap > soft) ncap = soft;
  if (ncap < cap) ncap = cap;
  uint8_t *p = h2ws__realloc(ws->mem, ws->out, ncap);
  if (!p) return H2WS_ERR_NOMEM;
  ws->out = p;
  ws->out_cap = ncap;
  return 0;
}

/* Makes room for `need` more bytes at out + out_len (compacting first). */
static int out_reserve(h2ws_ws *ws, size_t need) {
  if (out_queued(ws) + need > WS_KEEP_MAX) big_touch(ws);
  if (ws->out_cap - ws->out_len >= need) return 0;
  if (ws->out_off > 0) {
    size_t q = out_queued(ws);
    memmove(ws->out, ws->out + ws->out_off, q);
    ws->out_off = 0;
    ws->out_len = q;
    if (ws->out_cap - ws->out_len >= need) return 0;
  }
  return out_grow(ws, ws->out_len + need);
}

static int ws_random_key(h2ws_ws *ws, uint8_t key[4]) {
  ws->in_callback++;
  int rv = ws->cb.random(key, 4, ws->user_data);
  ws->in_callback--;
  return rv < 0 ? H2WS_ERR_CALLBACK_FAILURE : 0;
}

/* Reports a frame to the optional trace callback (-v of the h2ws client);
 * costs one test when no callback is set. */
static void ws_trace(h2ws_ws *ws, int sent, int fin, unsigned rsv,
                     unsigned opcode, uint64_t len) {
  if (ws->cb.on_frame_trace)
    ws->cb.on_frame_trace(ws, sent, fin, rsv, (h2ws_opcode)opcode, len,
                          ws->user_data);
}

/* Queues one frame whose payload is copied (and masked, client) once. */
static int out_frame(h2ws_ws *ws, int fin, unsigned rsv, unsigned opcode,
                     const uint8_t *payload, size_t len) {
  int masked = ws->role == H2WS_ROLE_CLIENT;
  size_t hsize = h2ws__frame_header_size(len, masked);
  uint8_t key[4];
  if (masked) {
    int rv = ws_random_key(ws, key);
    if (rv) return rv;
  }
  int rv = out_reserve(ws, hsize + len);
  if (rv) return rv;
  uint8_t *dst = ws->out + ws->out_len;
  h2ws__frame_build(dst, fin, rsv, opcode, masked ? key : NULL, len);
  ws_trace(ws, 1, fin, rsv, opcode, len);
  if (len) {
    /* RFC 6455 §5.3: client-to-server payloads are masked; the masking is
     * fused into the single copy into the queue. */
    if (masked) h2ws__mask(dst + hsize, payload, len, key, 0);
    else memcpy(dst + hsize, payload, len);
  }
  ws->out_len += hsize + len;
  return 0;
}

/* Completes a frame whose `len` payload bytes were written at
 * out + out_len + hmax (room for the largest header it could need): moves
 * them up behind the real header, writes the header and masks in place
 * (key: client role). */
static void out_frame_seal(h2ws_ws *ws, size_t hmax, int fin, unsigned rsv,
                           unsigned opcode, const uint8_t *key, size_t len) {
  size_t hsize = h2ws__frame_header_size(len, key != NULL);
  uint8_t *dst = ws->out + ws->out_len;
  if (hsize < hmax && len) memmove(dst + hsize, dst + hmax, len);
  h2ws__frame_build(dst, fin, rsv, opcode, key, len);
  ws_trace(ws, 1, fin, rsv, opcode, len);
  if (key && len) h2ws__mask(dst + hsize, dst + hsize, len, key, 0);
  ws->out_len += hsize + len;
}

/*
 * Queues one frame whose payload is `in` deflated (RFC 7692 §7.2.1),
 * compressing straight into the queue.  fin: this is the message's last
 * input.  The room is reserved from the deflate bound; if zlib releases
 * more (held back from earlier fragments) the buffer grows past the cap by
 * that bounded amount.
 */
static int out_frame_deflate(h2ws_ws *ws, int fin, unsigned rsv,
                             unsigned opcode, const uint8_t *in, size_t inlen) {
  int masked = ws->role == H2WS_ROLE_CLIENT;
  size_t bound = h2ws__pmd_deflate_bound(ws->pmd, inlen) + 16;
  size_t hmax = h2ws__frame_header_size(bound, masked);
  uint8_t key[4];
  if (masked) {
    int rv = ws_random_key(ws, key);
    if (rv) return rv;
  }
  int rv = out_reserve(ws, hmax + bound);
  if (rv) return rv;
  size_t start = ws->out_len + hmax; /* offsets: out may move when growing */
  size_t produced = 0, consumed = 0;
  for (;;) {
    size_t room = ws->out_cap - start - produced;
    if (room < 64) {
      rv = out_grow(ws, ws->out_cap + (bound > 4096 ? bound : 4096));
      if (rv) return ws_fatal(ws, rv);
      room = ws->out_cap - start - produced;
    }
    size_t nout = 0, nin = 0;
    rv = h2ws__pmd_deflate(ws->pmd, in + consumed, inlen - consumed, fin,
                           ws->out + start + produced, room, &nout, &nin);
    /* The deflater has seen part of the message: its context is now
     * unusable, so any failure from here on is fatal. */
    if (rv < 0) return ws_fatal(ws, rv);
    if (fin && rv == 0 && nout == 0 && nin == 0 && room >= 64)
      return ws_fatal(ws, H2WS_ERR_INTERNAL);
    produced += nout;
    consumed += nin;
    if (fin ? rv == 1 : (consumed == inlen && nout < room)) break;
  }
  out_frame_seal(ws, hmax, fin, rsv, opcode, masked ? key : NULL, produced);
  return 0;
}

/* Queues a control frame; control frames may use the small reserve above
 * max_output.  force: a Close, which must always be queued. */
static int out_control(h2ws_ws *ws, unsigned opcode, const uint8_t *payload,
                       size_t len, int force) {
  if (!force && out_queued(ws) + WS_CTRL_FRAME_MAX >
                    ws->set.max_output + WS_CTRL_RESERVE)
    return H2WS_ERR_BUFFER_FULL;
  return out_frame(ws, 1, 0, opcode, payload, len);
}

/* Queues our Close (code 0: no code). */
static int out_close(h2ws_ws *ws, uint16_t code, const uint8_t *reason,
                     size_t reasonlen) {
  uint8_t p[125] = {0};
  size_t n = 0;
  if (code) {
    p[0] = (uint8_t)(code >> 8);
    p[1] = (uint8_t)code;
    n = 2;
    if (reasonlen) memcpy(p + 2, reason, reasonlen);
    n += reasonlen;
  }
  int rv = out_control(ws, H2WS_OP_CLOSE, p, n, 1);
  if (rv) return rv;
  ws->close_sent = 1;
  ws->stats.close_code_sent = code ? code : H2WS_CLOSE_NO_STATUS;
  /* RFC 6455 §5.5.1: "the endpoint MUST NOT send any more data frames
   * after sending a Close frame": an unfinished source is abandoned. */
  ws->src_active = 0;
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Closing                                                                   */

static void fire_close(h2ws_ws *ws, uint16_t code, const uint8_t *reason,
                       size_t reasonlen) {
  if (ws->close_fired) return;
  ws->close_fired = 1;
  if (ws->cb.on_close) {
    ws->in_callback++;
    ws->cb.on_close(ws, code, reason, reasonlen, ws->user_data);
    ws->in_callback--;
  }
}

/* Fails the WebSocket for a peer violation (RFC 6455 §7.1.7): queues a
 * Close with `code` unless one was sent, fires on_close, stops reading.
 * Returns err, or a fatal error if the Close could not be queued. */
static int ws_fail(h2ws_ws *ws, uint16_t code, int err) {
  ws->failed = 1;
  ws->msg_active = 0;
  if (!ws->close_sent) {
    int rv = out_close(ws, code, NULL, 0);
    if (rv) {
      ws->fatal = rv;
      err = rv;
    }
  }
  fire_close(ws, code, NULL, 0);
  return err;
}

/* Maps a callback's return value; fatal for anything but 0 / PAUSE. */
static int cb_result(h2ws_ws *ws, int rv) {
  if (rv == 0 || rv == H2WS_ERR_PAUSE) return rv;
  return ws_fatal(ws, H2WS_ERR_CALLBACK_FAILURE);
}

/* ------------------------------------------------------------------------ */
/* Receive path                                                              */

/* Makes room for `len` more bytes at wbuf + wlen (whole-message mode). */
static int wbuf_reserve(h2ws_ws *ws, size_t len) {
  if (ws->wcap - ws->wlen >= len) return 0;
  size_t need = ws->wlen + len;
  size_t ncap = ws->wcap ? ws->wcap * 2 : 1024;
  if (ncap > ws->set.max_message_size) ncap = (size_t)ws->set.max_message_size;
  if (ncap < need) ncap = need;
  uint8_t *p = h2ws__realloc(ws->mem, ws->wbuf, ncap);
  if (!p) return ws_fatal(ws, H2WS_ERR_NOMEM);
  ws->wbuf = p;
  ws->wcap = ncap;
  return 0;
}

/* Delivers decoded message bytes: size limit, UTF-8, then the application
 * (or the whole-message buffer).  A failing check delivers the valid prefix
 * first, so the bytes seen do not depend on how the input was split. */
static int deliver(h2ws_ws *ws, const uint8_t *data, size_t len) {
  int fail_code = 0, fail_err = 0;
  if (len > ws->set.max_message_size - ws->msg_size) {
    /* D3 / RFC 7692 §8.1: inflation is bounded by the max message size. */
    len = (size_t)(ws->set.max_message_size - ws->msg_size);
    fail_code = H2WS_CLOSE_TOO_BIG;
    fail_err = H2WS_ERR_MSG_TOO_BIG;
  }
  if (ws->msg_compressed && ws->set.max_inflate_ratio &&
      ws->msg_size + len > WS_RATIO_FLOOR) {
    /* A deflate bomb (16 KiB inflating to 16 MiB): past the floor, a
     * message may grow only max_inflate_ratio times what arrived for it. */
    uint64_t zin = ws->msg_zin ? ws->msg_zin : 1;
    uint64_t cap = zin > UINT64_MAX / ws->set.max_inflate_ratio
                       ? UINT64_MAX
                       : zin * ws->set.max_inflate_ratio;
    if (cap < WS_RATIO_FLOOR) cap = WS_RATIO_FLOOR;
    if (ws->msg_size + len > cap) {
      len = ws->msg_size < cap ? (size_t)(cap - ws->msg_size) : 0;
      fail_code = H2WS_CLOSE_TOO_BIG;
      fail_err = H2WS_ERR_MSG_TOO_BIG;
    }
  }
  if (ws->msg_opcode == H2WS_OP_TEXT && len) {
    size_t bad = 0;
    /* RFC 6455 §8.1: invalid UTF-8 in a text message fails the WebSocket
     * (1007), checked as bytes arrive. */
    if (h2ws__utf8_feed(&ws->utf8, data, len, &bad) != 0) {
      len = bad;
      fail_code = H2WS_CLOSE_INVALID_PAYLOAD;
      fail_err = H2WS_ERR_BAD_UTF8;
    }
  }
  int rv = 0;
  if (len) {
    ws->msg_size += len;
    ws->recv_spent += len;
    ws->stats.bytes_in += len;
    if (ws->set.whole_messages) {
      if (ws->wlen + len > WS_KEEP_MAX) big_touch(ws);
      /* data may already sit at wbuf + wlen (unmasked in place by
       * data_payload): then there is nothing to copy or grow */
      if (!ws->wbuf || data != ws->wbuf + ws->wlen) {
        rv = wbuf_reserve(ws, len);
        if (rv) return rv;
        memcpy(ws->wbuf + ws->wlen, data, len);
      }
      ws->wlen += len;
    } else if (ws->cb.on_msg_data) {
      ws->in_callback++;
      rv = ws->cb.on_msg_data(ws, data, len, ws->user_data);
      ws->in_callback--;
      rv = cb_result(ws, rv);
      if (rv < 0 && rv != H2WS_ERR_PAUSE) return rv;
    }
  }
  if (fail_code) return ws_fail(ws, (uint16_t)fail_code, fail_err);
  return rv;
}

/* Nonzero once this recv call delivered its settings.recv_budget. */
static int budget_spent(const h2ws_ws *ws) {
  return ws->set.recv_budget && ws->recv_spent >= ws->set.recv_budget;
}

/* Inflates (src, srclen) (fin: the message's end) and delivers the output.
 * Stores how many input bytes the inflater consumed in *pused. */
static int inflate_deliver(h2ws_ws *ws, const uint8_t *src, size_t srclen,
                           int fin, size_t *pused) {
  uint8_t obuf[WS_SCRATCH];
  const uint8_t *ip = src;
  size_t il = srclen;
  *pused = 0;
  for (;;) {
    size_t nout = 0, before = il;
    int r = h2ws__pmd_inflate(ws->pmd, &ip, &il, obuf, sizeof(obuf), &nout, fin);
    ws->msg_zin += (srclen - il) - *pused;
    *pused = srclen - il;
    if (r == H2WS_ERR_NOMEM) return ws_fatal(ws, r);
    /* RFC 7692 §8.2.3.x: undecodable data fails the WebSocket (1007). */
    if (r < 0) return ws_fail(ws, H2WS_CLOSE_INVALID_PAYLOAD, H2WS_ERR_BAD_DATA);
    int progress = nout > 0 || il != before;
    ws->infl_pending = r == 0 && nout == sizeof(obuf);
    if (fin && r == 1) ws->infl_done = 1;
    if (!progress && r == 0 && (fin || il > 0))
      /* Nothing consumed, nothing produced: input after the end of the
       * deflate stream, or a stream that never ends. */
      return ws_fail(ws, H2WS_CLOSE_INVALID_PAYLOAD, H2WS_ERR_BAD_DATA);
    if (nout) {
      int rv = deliver(ws, obuf, nout);
      if (rv) return rv;
    }
    if (fin ? r == 1 : (il == 0 && !ws->infl_pending)) return 0;
    if (!fin && il == 0 && nout == 0) return 0;
    /* The call's budget is spent: the rest (zlib's pending output, the
     * input not consumed) comes at the next call. */
    if (budget_spent(ws)) return H2WS_ERR_WOULDBLOCK;
  }
}

/* Processes up to `avail` payload bytes of a data frame at `in`; stores
 * the bytes consumed in *pused (less than avail only on pause / error). */
static int data_payload(h2ws_ws *ws, const uint8_t *in, size_t avail,
                        size_t *pused) {
  size_t used = 0;
  int rv = 0;
  *pused = 0;
  if (!ws->hdr.masked) {
    /* Client role: deliver straight from the input, no copy. */
    if (ws->msg_compressed) {
      rv = inflate_deliver(ws, in, avail, 0, &used);
    } else {
      used = avail;
      rv = deliver(ws, in, avail);
    }
    *pused = used;
    return rv;
  }
  if (ws->set.whole_messages && !ws->msg_compressed &&
      avail <= ws->set.max_message_size - ws->msg_size) {
    /* Whole-message mode: unmask straight into the message buffer; deliver
     * then checks the bytes in place (one copy, not two). */
    int r = wbuf_reserve(ws, avail);
    if (r) return r;
    h2ws__mask(ws->wbuf + ws->wlen, in, avail, ws->hdr.key, ws->phase);
    ws->phase = (ws->phase + avail) & 3;
    *pused = avail;
    return deliver(ws, ws->wbuf + ws->wlen, avail);
  }
  uint8_t scratch[WS_SCRATCH];
  while (used < avail) {
    size_t n = avail - used;
    if (n > sizeof(scratch)) n = sizeof(scratch);
    h2ws__mask(scratch, in + used, n, ws->hdr.key, ws->phase);
    size_t took = n;
    if (ws->msg_compressed) rv = inflate_deliver(ws, scratch, n, 0, &took);
    else rv = deliver(ws, scratch, n);
    used += took;
    ws->phase = (ws->phase + took) & 3;
    if (rv) break;
  }
  *pused = used;
  return rv;
}

/* The most a deflate stream needs for `n` bytes of content: zlib's bound
 * for any parameters (fixed Huffman codes on incompressible data cost 9
 * bits a byte, plus block headers) and room for the empty blocks of
 * flushes.  Peers do not all compress like we do, so this is wider than
 * h2ws__pmd_deflate_bound() (our own deflater). */
static uint64_t deflated_cap(uint64_t n) {
  uint64_t extra = (n >> 3) + (n >> 6) + 1024;
  return n > UINT64_MAX - extra ? UINT64_MAX : n + extra;
}

/* The one rule for a data frame's payload on the wire (RFC 6455 §7.4.1
 * 1009).  The application's limits are on what it receives:
 * max_message_size bounds the message after inflation, and
 * max_frame_size (0: no separate frame limit) a frame's content; a frame
 * can never need to hold more than a whole message.  A compressed frame
 * may carry up to the deflate bound of that content, so a message of
 * exactly the limit fits whatever its compressibility.  Apps set only
 * the message limit. */
static uint64_t frame_cap(const h2ws_ws *ws, int compressed) {
  uint64_t cap = ws->set.max_message_size;
  if (ws->set.max_frame_size && ws->set.max_frame_size < cap)
    cap = ws->set.max_frame_size;
  return compressed ? deflated_cap(cap) : cap;
}

/* Checks a complete header (RFC 6455 §5.2-5.5) and sets up the frame. */
static int frame_begin(h2ws_ws *ws) {
  const h2ws__frame_hdr *h = &ws->hdr;
  int control = h2ws__frame_is_control(h->opcode);
  unsigned allowed_rsv = 0;
  /* RFC 7692 §6: RSV1 is the "Per-Message Compressed" bit, only on the
   * first frame of a data message, never on control frames. */
  if (ws->pmd && !control && h->opcode != H2WS_OP_CONT) allowed_rsv = H2WS__RSV1;
  /* RFC 6455 §5.2: RSV bits MUST be 0 unless an extension defines them. */
  if (h->rsv & ~allowed_rsv) return ws_fail(ws, H2WS_CLOSE_PROTOCOL_ERROR, H2WS_ERR_PROTO);
  /* RFC 6455 §5.2: unknown opcodes fail the connection. */
  switch (h->opcode) {
  case H2WS_OP_CONT: case H2WS_OP_TEXT: case H2WS_OP_BINARY:
  case H2WS_OP_CLOSE: case H2WS_OP_PING: case H2WS_OP_PONG:
    break;
  default:
    return ws_fail(ws, H2WS_CLOSE_PROTOCOL_ERROR, H2WS_ERR_PROTO);
  }
  /* RFC 6455 §5.1: a server MUST close on an unmasked frame; a client
   * MUST close on a masked frame. */
  if (h->masked != (ws->role == H2WS_ROLE_SERVER))
    return ws_fail(ws, H2WS_CLOSE_PROTOCOL_ERROR, H2WS_ERR_PROTO);
  if (control) {
    /* RFC 6455 §5.5: control frames have payload <= 125 and MUST NOT be
     * fragmented. */
    if (!h->fin || h->len > 125)
      return ws_fail(ws, H2WS_CLOSE_PROTOCOL_ERROR, H2WS_ERR_PROTO);
  } else if (h->opcode == H2WS_OP_CONT) {
    /* RFC 6455 §5.4: a continuation needs a message in progress. */
    if (!ws->msg_active) return ws_fail(ws, H2WS_CLOSE_PROTOCOL_ERROR, H2WS_ERR_PROTO);
  } else {
    /* RFC 6455 §5.4: fragments of one message are not interleaved. */
    if (ws->msg_active) return ws_fail(ws, H2WS_CLOSE_PROTOCOL_ERROR, H2WS_ERR_PROTO);
  }
  /* RFC 6455 §7.4.1 1009: frame / message too big for us.  Control
   * frames answer only to an explicit max_frame_size (their payload is
   * not a message); data frames to frame_cap(), which leaves a compressed
   * frame room for deflate's growth (the limits are on what the
   * application sees). */
  if (control ? (ws->set.max_frame_size && h->len > ws->set.max_frame_size)
              : h->len > frame_cap(ws, h->opcode == H2WS_OP_CONT
                                           ? ws->msg_compressed
                                           : (h->rsv & H2WS__RSV1) != 0))
    return ws_fail(ws, H2WS_CLOSE_TOO_BIG, H2WS_ERR_MSG_TOO_BIG);
  ws->remaining = h->len;
  ws->phase = 0;
  if (control) {
    ws->ctrl_len = 0;
    ws->rstate = RS_PAYLOAD;
    return 0;
  }
  if (h->opcode != H2WS_OP_CONT) {
    ws->msg_active = 1;
    ws->msg_opcode = (h2ws_opcode)h->opcode;
    ws->msg_compressed = (h->rsv & H2WS__RSV1) != 0;
    ws->msg_wire = 0;
    ws->msg_zin = 0;
    ws->msg_size = 0;
    ws->wlen = 0;
    ws->infl_pending = 0;
    ws->infl_done = 0;
    h2ws__utf8_reset(&ws->utf8);
  }
  /* The message's wire bytes: at most the limit uncompressed, at most its
   * deflate bound compressed (no honest compressor needs more for a
   * message within the limit; the inflated size is checked in deliver). */
  uint64_t wire_cap = ws->msg_compressed ? deflated_cap(ws->set.max_message_size)
                                         : ws->set.max_message_size;
  if (h->len > wire_cap - ws->msg_wire)
    return ws_fail(ws, H2WS_CLOSE_TOO_BIG, H2WS_ERR_MSG_TOO_BIG);
  ws->msg_wire += h->len;
  ws->rstate = RS_PAYLOAD;
  if (h->opcode != H2WS_OP_CONT && !ws->set.whole_messages && ws->cb.on_msg_begin) {
    ws->in_callback++;
    int rv = ws->cb.on_msg_begin(ws, ws->msg_opcode, ws->msg_compressed, ws->user_data);
    ws->in_callback--;
    return cb_result(ws, rv);
  }
  return 0;
}

static int control_end(h2ws_ws *ws) {
  const uint8_t *p = ws->ctrl;
  size_t n = ws->ctrl_len;
  int rv = 0;
  ws->rstate = RS_HEADER;
  switch (ws->hdr.opcode) {
  case H2WS_OP_PING:
    /* RFC 6455 §5.5.2: answer with a Pong carrying the same payload
     * (unless we already sent a Close). */
    if (ws->set.auto_pong && !ws->close_sent) {
      rv = out_control(ws, H2WS_OP_PONG, p, n, 0);
      if (rv == H2WS_ERR_NOMEM) return ws_fatal(ws, rv);
      if (rv == H2WS_ERR_CALLBACK_FAILURE) return ws_fatal(ws, rv);
      rv = 0; /* output full: the peer floods pings; drop this answer */
    }
    if (ws->cb.on_ping) {
      ws->in_callback++;
      rv = ws->cb.on_ping(ws, p, n, ws->user_data);
      ws->in_callback--;
      rv = cb_result(ws, rv);
    }
    return rv;
  case H2WS_OP_PONG:
    /* RFC 6455 §5.5.3: unsolicited pongs need no response. */
    if (ws->cb.on_pong) {
      ws->in_callback++;
      rv = ws->cb.on_pong(ws, p, n, ws->user_data);
      ws->in_callback--;
      rv = cb_result(ws, rv);
    }
    return rv;
  default: { /* Close */
    uint16_t code = H2WS_CLOSE_NO_STATUS;
    const uint8_t *reason = NULL;
    size_t reasonlen = 0;
    /* RFC 6455 §5.5.1: a body starts with a 2-byte code: length 1 is
     * invalid. */
    if (n == 1) return ws_fail(ws, H2WS_CLOSE_PROTOCOL_ERROR, H2WS_ERR_PROTO);
    if (n >= 2) {
      code = (uint16_t)(p[0] << 8 | p[1]);
      reason = p + 2;
      reasonlen = n - 2;
      /* RFC 6455 §7.4: codes never sent on the wire are a protocol error. */
      if (!h2ws_close_code_is_valid(code))
        return ws_fail(ws, H2WS_CLOSE_PROTOCOL_ERROR, H2WS_ERR_PROTO);
      /* RFC 6455 §5.5.1: the reason is UTF-8. */
      if (reasonlen && !h2ws_utf8_is_valid(reason, reasonlen))
        return ws_fail(ws, H2WS_CLOSE_PROTOCOL_ERROR, H2WS_ERR_PROTO);
    }
    ws->close_received = 1;
    ws->stats.close_code_received = code;
    if (!ws->close_sent) {
      /* RFC 6455 §5.5.1: echo the status code received (none for a Close
       * without one). */
      rv = out_close(ws, code == H2WS_CLOSE_NO_STATUS ? 0 : code, NULL, 0);
      if (rv) {
        ws_fatal(ws, rv);
        fire_close(ws, code, reason, reasonlen);
        return rv;
      }
    }
    ws->close_deadline = H2WS_NO_EXPIRY;
    fire_close(ws, code, reason, reasonlen);
    return 0;
  }
  }
}

static int data_end(h2ws_ws *ws) {
  if (ws->msg_compressed && ws->hdr.fin && !ws->infl_done) {
    size_t used;
    /* RFC 7692 §7.2.2: the inflater appends 00 00 ff ff at the end. */
    int rv = inflate_deliver(ws, ws_empty, 0, 1, &used);
    if (rv) return rv;
  }
  if (!ws->hdr.fin) {
    ws->rstate = RS_HEADER;
    return 0;
  }
  /* RFC 6455 §8.1: a text message must end on a complete code point. */
  if (ws->msg_opcode == H2WS_OP_TEXT && !h2ws__utf8_complete(&ws->utf8))
    return ws_fail(ws, H2WS_CLOSE_INVALID_PAYLOAD, H2WS_ERR_BAD_UTF8);
  ws->rstate = RS_HEADER;
  ws->msg_active = 0;
  ws->stats.msgs_in++;
  int rv = 0;
  ws->in_callback++;
  if (ws->set.whole_messages) {
    if (ws->cb.on_msg)
      rv = ws->cb.on_msg(ws, ws->msg_opcode, ws->wbuf ? ws->wbuf : ws_empty,
                         ws->wlen, ws->user_data);
    ws->wlen = 0; /* a large buffer is kept: see WS_KEEP_MAX */
  } else if (ws->cb.on_msg_end) {
    rv = ws->cb.on_msg_end(ws, ws->user_data);
  }
  ws->in_callback--;
  return cb_result(ws, rv);
}

static int recv_stopped(const h2ws_ws *ws) {
  return ws->close_received || ws->failed || ws->ended;
}

int h2ws_ws_recv(h2ws_ws *ws, const uint8_t *in, size_t inlen,
                 size_t *pnread, uint64_t now) {
  size_t pos = 0;
  int rv = 0;
  if (pnread) *pnread = 0;
  if (!ws || (!in && inlen)) return H2WS_ERR_INVALID_ARGUMENT;
  ws->now = now;
  if (ws->in_callback) return H2WS_ERR_INVALID_STATE;
  if (ws->fatal) return ws->fatal;
  if (!in) in = ws_empty;
  ws->recv_spent = 0;
  if (ws->skip && inlen > 0) {
    /* The byte held back at the last pause comes again: already done. */
    ws->skip = 0;
    pos = 1;
  }
  while (!recv_stopped(ws)) {
    if (ws->rstate == RS_HEADER) {
      if (pos == inlen) break;
      size_t n = 0;
      int r = h2ws__frame_parse(&ws->fp, in + pos, inlen - pos, &n, &ws->hdr);
      pos += n;
      if (r == 0) break;
      if (r < 0) {
        rv = ws_fail(ws, H2WS_CLOSE_PROTOCOL_ERROR, H2WS_ERR_PROTO);
        break;
      }
      ws_trace(ws, 0, ws->hdr.fin, ws->hdr.rsv, ws->hdr.opcode, ws->hdr.len);
      rv = frame_begin(ws);
      if (rv) break;
    } else if (ws->rstate == RS_PAYLOAD) {
      if (ws->remaining == 0) {
        if (ws->msg_compressed && ws->infl_pending &&
            !h2ws__frame_is_control(ws->hdr.opcode) && !ws->hdr.fin) {
          /* A pause left inflated output behind: deliver it before any
           * later frame's events. */
          size_t used;
          rv = inflate_deliver(ws, ws_empty, 0, 0, &used);
          if (rv) break;
        }
        ws->rstate = RS_END;
        continue;
      }
      if (pos == inlen) break;
      size_t avail = inlen - pos;
      if (avail > ws->remaining) avail = (size_t)ws->remaining;
      size_t used = 0;
      if (!h2ws__frame_is_control(ws->hdr.opcode) && ws->set.recv_budget) {
        /* Fairness: each call delivers about recv_budget bytes at most
         * (inflated: in WS_SCRATCH steps), then WOULDBLOCK. */
        if (budget_spent(ws)) {
          rv = H2WS_ERR_WOULDBLOCK;
          break;
        }
        uint64_t left = ws->set.recv_budget - ws->recv_spent;
        if (!ws->msg_compressed && avail > left) avail = (size_t)left;
      }
      if (h2ws__frame_is_control(ws->hdr.opcode)) {
        h2ws__mask(ws->ctrl + ws->ctrl_len, in + pos, avail,
                   ws->hdr.masked ? ws->hdr.key : (const uint8_t *)"\0\0\0\0",
                   ws->phase);
        ws->phase = (ws->phase + avail) & 3;
        ws->ctrl_len = (uint8_t)(ws->ctrl_len + avail); /* a control frame: <= 125 */
        used = avail;
      } else {
        rv = data_payload(ws, in + pos, avail, &used);
      }
      pos += used;
      ws->remaining -= used;
      if (rv) break;
    } else {
      if (h2ws__frame_is_control(ws->hdr.opcode)) rv = control_end(ws);
      else rv = data_end(ws);
      if (rv) break;
    }
  }
  /* RFC 6455 §5.5.1: after the peer's Close nothing more is read; a failed
   * WebSocket ignores its input too. */
  if (recv_stopped(ws) && !ws->fatal) pos = inlen;
  if ((rv == H2WS_ERR_PAUSE || rv == H2WS_ERR_WOULDBLOCK) && recv_stopped(ws))
    rv = 0;
  if ((rv == H2WS_ERR_PAUSE || rv == H2WS_ERR_WOULDBLOCK) && pos > 0 &&
      (ws->rstate == RS_END || (ws->rstate == RS_PAYLOAD && ws->remaining == 0))) {
    /* The pause left callbacks owed for consumed input (on_msg_end, the
     * inflater's drain).  Report the last byte as unconsumed so that a
     * caller re-feeding only the unconsumed rest still resumes us; it is
     * skipped when it comes again. */
    pos--;
    ws->skip = 1;
  }
  if (pnread) *pnread = pos;
  return rv;
}

void h2ws_ws_recv_eof(h2ws_ws *ws, uint64_t now) {
  (void)now;
  if (!ws) return;
  if (!ws->close_received) ws->ended = 1;
  ws->close_deadline = H2WS_NO_EXPIRY;
  fire_close(ws, H2WS_CLOSE_ABNORMAL, NULL, 0);
}

void h2ws_ws_abort(h2ws_ws *ws) {
  if (!ws) return;
  ws->ended = 1;
  ws->out_off = ws->out_len = 0;
  ws->src_active = 0;
  ws->close_deadline = H2WS_NO_EXPIRY;
  fire_close(ws, H2WS_CLOSE_ABNORMAL, NULL, 0);
}

/* ------------------------------------------------------------------------ */
/* Data source                                                               */

static int source_read(h2ws_ws *ws, uint8_t *buf, size_t buflen, size_t *pn,
                       int *peof) {
  *pn = 0;
  *peof = 0;
  ws->in_callback++;
  ws->src_reading = 1;
  int rv = ws->src.read(ws, buf, buflen, pn, peof, ws->src.source_data);
  ws->src_reading = 0;
  ws->in_callback--;
  if (rv == H2WS_ERR_WOULDBLOCK) {
    ws->src_deferred = 1;
    return rv;
  }
  if (rv < 0 || *pn > buflen) return ws_fatal(ws, H2WS_ERR_CALLBACK_FAILURE);
  return 0;
}

/* Pulls from the data source while the queue holds less than a fragment. */
static int source_pull(h2ws_ws *ws) {
  int masked = ws->role == H2WS_ROLE_CLIENT;
  /* Compressed, the queue fills slowly when the data compresses well
   * (16 MiB of zeros deflate to 16 KiB): the work of one call is bounded
   * by the source bytes it deflates, one fragment_size, not by its
   * output (fairness: the rest at the next call). */
  size_t pulled = 0;
  while (ws->src_active && !ws->src_deferred && !ws->close_sent &&
         out_queued(ws) < ws->set.fragment_size &&
         out_queued(ws) < ws->set.max_output &&
         (!ws->src_compressed || pulled < ws->set.fragment_size)) {
    size_t chunk = ws->set.max_output - out_queued(ws);
    if (chunk > ws->set.fragment_size) chunk = ws->set.fragment_size;
    unsigned opcode = ws->src_first ? ws->src_opcode : H2WS_OP_CONT;
    size_t n = 0;
    int eof = 0, rv;
    if (ws->src_compressed) {
      uint8_t buf[WS_SCRATCH];
      if (chunk > sizeof(buf)) chunk = sizeof(buf);
      rv = source_read(ws, buf, chunk, &n, &eof);
      if (rv == H2WS_ERR_WOULDBLOCK) return 0;
      if (rv) return rv;
      if (n == 0 && !eof) return 0;
      rv = out_frame_deflate(ws, eof, ws->src_first ? H2WS__RSV1 : 0, opcode, buf, n);
      if (rv) return ws->fatal ? rv : ws_fatal(ws, rv);
      pulled += n;
    } else {
      size_t hmax = h2ws__frame_header_size(chunk, masked);
      uint8_t key[4];
      rv = out_reserve(ws, hmax + chunk);
      if (rv) return rv;
      /* The source writes straight into the queue (one copy). */
      size_t start = ws->out_len + hmax;
      rv = source_read(ws, ws->out + start, chunk, &n, &eof);
      if (rv == H2WS_ERR_WOULDBLOCK) return 0;
      if (rv) return rv;
      if (n == 0 && !eof) return 0;
      if (masked && (rv = ws_random_key(ws, key)) != 0) return ws_fatal(ws, rv);
      out_frame_seal(ws, hmax, eof, 0, opcode, masked ? key : NULL, n);
    }
    ws->stats.bytes_out += n;
    ws->src_first = 0;
    if (eof) {
      ws->src_active = 0;
      ws->stats.msgs_out++;
    }
  }
  return 0;
}

int h2ws_ws_submit_source(h2ws_ws *ws, h2ws_opcode opcode,
                          const h2ws_data_source *source) {
  if (!ws || !source || !source->read ||
      (opcode != H2WS_OP_TEXT && opcode != H2WS_OP_BINARY))
    return H2WS_ERR_INVALID_ARGUMENT;
  if (ws->fatal || ws->close_sent || ws->ended || ws->frag_active ||
      ws->src_active || ws->src_reading)
    return H2WS_ERR_INVALID_STATE;
  ws->src = *source;
  ws->src_active = 1;
  ws->src_deferred = 0;
  ws->src_first = 1;
  ws->src_opcode = opcode;
  ws->src_compressed = ws->pmd != NULL;
  return 0;
}

int h2ws_ws_resume_source(h2ws_ws *ws) {
  if (!ws) return H2WS_ERR_INVALID_ARGUMENT;
  if (!ws->src_active) return H2WS_ERR_INVALID_STATE;
  ws->src_deferred = 0;
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Send path                                                                 */

int h2ws_ws_send(h2ws_ws *ws, const uint8_t **pdata, size_t *pdatalen,
                 uint64_t now) {
  if (!ws || !pdata || !pdatalen) return H2WS_ERR_INVALID_ARGUMENT;
  ws->now = now;
  *pdata = NULL;
  *pdatalen = 0;
  if (ws->in_callback) return H2WS_ERR_INVALID_STATE;
  if (ws->fatal) return ws->fatal;
  int rv = source_pull(ws);
  if (rv) return rv;
  if (ws->out) *pdata = ws->out + ws->out_off;
  *pdatalen = out_queued(ws);
  return 0;
}

const uint8_t *h2ws__ws_out_head(const h2ws_ws *ws) {
  return ws && ws->out && out_queued(ws) ? ws->out + ws->out_off : NULL;
}

void h2ws_ws_send_consumed(h2ws_ws *ws, size_t n) {
  if (!ws) return;
  if (n > out_queued(ws)) n = out_queued(ws);
  ws->out_off += n;
  if (ws->out_off == ws->out_len)
    ws->out_off = ws->out_len = 0; /* a large queue is kept: WS_KEEP_MAX */
  if (ws->want_writable && out_queued(ws) <= ws->set.max_output / 2 &&
      !ws->close_sent && !ws->fatal) {
    ws->want_writable = 0;
    if (ws->cb.on_writable) {
      ws->in_callback++;
      ws->cb.on_writable(ws, ws->user_data);
      ws->in_callback--;
    }
  }
}

size_t h2ws_ws_output_len(const h2ws_ws *ws) { return ws ? out_queued(ws) : 0; }

size_t h2ws_ws_input_len(const h2ws_ws *ws) {
  return ws && ws->set.whole_messages ? ws->wlen : 0;
}

int h2ws_ws_want_read(const h2ws_ws *ws) {
  return ws && !ws->fatal && !recv_stopped(ws);
}

int h2ws_ws_want_write(const h2ws_ws *ws) {
  if (!ws || ws->fatal) return 0;
  return out_queued(ws) > 0 ||
         (ws->src_active && !ws->src_deferred && !ws->close_sent);
}

int h2ws_ws_is_done(const h2ws_ws *ws) {
  if (!ws) return 1;
  return (ws->close_sent && ws->close_received) || ws->failed || ws->ended ||
         ws->fatal;
}

uint64_t h2ws_ws_get_expiry(const h2ws_ws *ws) {
  if (!ws || h2ws_ws_is_done(ws)) return H2WS_NO_EXPIRY;
  uint64_t e = ws->close_deadline;
  if (ws->big_deadline < e &&
      (ws->out_cap > WS_KEEP_MAX || ws->wcap > WS_KEEP_MAX))
    e = ws->big_deadline;
  return e;
}

int h2ws_ws_handle_expiry(h2ws_ws *ws, uint64_t now) {
  if (!ws) return H2WS_ERR_INVALID_ARGUMENT;
  if (h2ws_ws_is_done(ws)) return 0;
  ws->now = now;
  if (ws->big_deadline != H2WS_NO_EXPIRY && now >= ws->big_deadline) {
    /* Idle long enough: give the large buffers back (those in use, or
     * any while a callback may hold a pointer into them, a bit later). */
    int held = ws->in_callback ? 1 : big_release(ws);
    ws->big_deadline = held ? now + WS_KEEP_IDLE_MS : H2WS_NO_EXPIRY;
  }
  if (ws->close_deadline == H2WS_NO_EXPIRY) return 0;
  if (now >= ws->close_deadline) {
    /* RFC 6455 §7.1.1: the peer did not answer our Close in time. */
    ws->ended = 1;
    ws->close_deadline = H2WS_NO_EXPIRY;
    fire_close(ws, H2WS_CLOSE_ABNORMAL, NULL, 0);
  }
  return 0;
}

/* Common checks for data submits. */
static int submit_check(h2ws_ws *ws) {
  if (ws->fatal || ws->close_sent || ws->ended || ws->src_reading)
    return H2WS_ERR_INVALID_STATE;
  return 0;
}

/* Checks the cap for a data frame of `len` payload bytes (or its deflate
 * bound when compressing). */
static int data_room(h2ws_ws *ws, size_t len, int compress) {
  if (compress) len = h2ws__pmd_deflate_bound(ws->pmd, len) + 16;
  size_t need = h2ws__frame_header_size(len, ws->role == H2WS_ROLE_CLIENT) + len;
  if (need > ws->set.max_output || out_queued(ws) > ws->set.max_output - need) {
    ws->want_writable = 1;
    return H2WS_ERR_BUFFER_FULL;
  }
  return 0;
}

int h2ws_ws_submit_msg(h2ws_ws *ws, h2ws_opcode opcode, const uint8_t *data,
                       size_t datalen) {
  if (!ws || (opcode != H2WS_OP_TEXT && opcode != H2WS_OP_BINARY) ||
      (!data && datalen))
    return H2WS_ERR_INVALID_ARGUMENT;
  int rv = submit_check(ws);
  if (rv) return rv;
  if (ws->frag_active || ws->src_active) return H2WS_ERR_INVALID_STATE;
  int compress = ws->pmd && datalen >= ws->set.compress_threshold;
  rv = data_room(ws, datalen, compress);
  if (rv) return rv;
  if (compress) {
    rv = out_frame_deflate(ws, 1, H2WS__RSV1, opcode, data, datalen);
    if (rv) return rv;
  } else {
    rv = out_frame(ws, 1, 0, opcode, data, datalen);
    if (rv) return rv;
  }
  ws->stats.msgs_out++;
  ws->stats.bytes_out += datalen;
  return 0;
}

int h2ws_ws_submit_fragment(h2ws_ws *ws, h2ws_opcode opcode, int fin,
                            const uint8_t *data, size_t datalen) {
  if (!ws || (!data && datalen)) return H2WS_ERR_INVALID_ARGUMENT;
  if (opcode != H2WS_OP_TEXT && opcode != H2WS_OP_BINARY && opcode != H2WS_OP_CONT)
    return H2WS_ERR_INVALID_ARGUMENT;
  int rv = submit_check(ws);
  if (rv) return rv;
  if (ws->src_active) return H2WS_ERR_INVALID_STATE;
  /* RFC 6455 §5.4: a message starts with TEXT/BINARY, goes on with CONT. */
  if ((opcode == H2WS_OP_CONT) != (ws->frag_active != 0)) return H2WS_ERR_INVALID_STATE;
  int first = !ws->frag_active;
  int compress = first ? ws->pmd != NULL : ws->frag_compressed;
  rv = data_room(ws, datalen, compress);
  if (rv) return rv;
  if (compress) {
    rv = out_frame_deflate(ws, fin, first ? H2WS__RSV1 : 0, opcode, data, datalen);
    if (rv) return rv;
  } else {
    rv = out_frame(ws, fin, 0, opcode, data, datalen);
    if (rv) return rv;
  }
  ws->frag_active = !fin;
  ws->frag_compressed = compress != 0;
  ws->stats.bytes_out += datalen;
  if (fin) ws->stats.msgs_out++;
  return 0;
}

/*
 * A prepared message: queued as it was framed, never re-encoded.  A
 * server copies the prepared frame (header and payload) with one memcpy;
 * a client needs its own masking key per frame (RFC 6455 §5.3), so it
 * writes a masked header and masks the payload in that same single copy.
 * Never compressed, even with permessage-deflate: RSV1 clear marks an
 * uncompressed message (RFC 7692 §6: the bit "indicate[s] whether a
 * message is compressed or not", so an endpoint may choose per message),
 * and an uncompressed message does not touch the compressor's context
 * (its LZ77 window holds only what it compressed), so a member with
 * context takeover keeps a valid stream for its later messages.
 */
int h2ws_ws_submit_prepared(h2ws_ws *ws, const h2ws_ws_prepared *prep) {
  if (!ws || !prep) return H2WS_ERR_INVALID_ARGUMENT;
  int rv = submit_check(ws);
  if (rv) return rv;
  if (ws->frag_active || ws->src_active) return H2WS_ERR_INVALID_STATE;
  rv = data_room(ws, prep->len, 0);
  if (rv) return rv;
  if (ws->role == H2WS_ROLE_CLIENT) {
    rv = out_frame(ws, 1, 0, prep->opcode, prep->wire + prep->hsize,
                   prep->len);
    if (rv) return rv;
  } else {
    size_t n = prep->hsize + prep->len;
    rv = out_reserve(ws, n);
    if (rv) return rv;
    memcpy(ws->out + ws->out_len, prep->wire, n);
    ws->out_len += n;
    ws_trace(ws, 1, 1, 0, prep->opcode, prep->len);
  }
  ws->stats.msgs_out++;
  ws->stats.bytes_out += prep->len;
  return 0;
}

static int submit_ctrl(h2ws_ws *ws, unsigned opcode, const uint8_t *data,
                       size_t datalen) {
  if (!ws || datalen > 125 || (!data && datalen)) return H2WS_ERR_INVALID_ARGUMENT;
  int rv = submit_check(ws);
  if (rv) return rv;
  rv = out_control(ws, opcode, data, datalen, 0);
  if (rv == H2WS_ERR_BUFFER_FULL) ws->want_writable = 1;
  return rv;
}

int h2ws_ws_submit_ping(h2ws_ws *ws, const uint8_t *data, size_t datalen) {
  return submit_ctrl(ws, H2WS_OP_PING, data, datalen);
}

int h2ws_ws_submit_pong(h2ws_ws *ws, const uint8_t *data, size_t datalen) {
  return submit_ctrl(ws, H2WS_OP_PONG, data, datalen);
}

int h2ws_ws_submit_close(h2ws_ws *ws, uint16_t code, const uint8_t *reason,
                         size_t reasonlen, uint64_t now) {
  if (!ws || (!reason && reasonlen)) return H2WS_ERR_INVALID_ARGUMENT;
  if (code == 0 ? reasonlen != 0 : !h2ws_close_code_is_valid(code))
    return H2WS_ERR_INVALID_ARGUMENT;
  /* RFC 6455 §5.5: control payload <= 125 bytes, 2 of them the code. */
  if (reasonlen > 123 || (reasonlen && !h2ws_utf8_is_valid(reason, reasonlen)))
    return H2WS_ERR_INVALID_ARGUMENT;
  if (ws->fatal || ws->close_sent || ws->ended || ws->src_reading)
    return H2WS_ERR_INVALID_STATE;
  int rv = out_close(ws, code, reason, reasonlen);
  if (rv) return rv;
  ws->frag_active = 0;
  if (ws->set.close_timeout_ms && !ws->close_received)
    ws->close_deadline = now + ws->set.close_timeout_ms;
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Queries                                                                   */

h2ws_role h2ws_ws_get_role(const h2ws_ws *ws) { return ws->role; }

void h2ws_ws_get_stats(const h2ws_ws *ws, h2ws_ws_stats *pstats) {
  if (!ws || !pstats) return;
  memset(pstats, 0, sizeof(*pstats));
  pstats->msgs_in = ws->stats.msgs_in;
  pstats->msgs_out = ws->stats.msgs_out;
  pstats->bytes_in = ws->stats.bytes_in;
  pstats->bytes_out = ws->stats.bytes_out;
  pstats->close_code_sent = ws->stats.close_code_sent;
  pstats->close_code_received = ws->stats.close_code_received;
}

int h2ws_ws_is_compressed(const h2ws_ws *ws) { return ws && ws->pmd; }

void *h2ws_ws_get_user_data(const h2ws_ws *ws) { return ws ? ws->user_data : NULL; }

void h2ws_ws_set_user_data(h2ws_ws *ws, void *user_data) {
  if (ws) ws->user_data = user_data;
}
