/* apps/load.c - `h2ws load URL`: a load generator for WebSockets over
 * HTTP/2 (RFC 8441, N connections x M streams) and HTTP/1.1 (N*M
 * connections) against an echo endpoint on a loopback address: closed
 * loop (K messages in flight per WebSocket) or fixed rate, bounded in
 * time and count; reports what opened, throughput, round-trip latency
 * percentiles (log-linear histogram), errors by kind and its own CPU
 * time; exit codes of the table every command shares (apps/kit.h). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <uv.h>
#include <h2ws/rt.h>
#include "kit.h"

int h2ws_cmd_load(int argc, char **argv);

#define LOAD_MAX_WS 200000u
#define LOAD_MAX_SIZE (64u * 1024 * 1024)
#define LOAD_OPEN_TIMEOUT_MS 15000u
#define LOAD_DRAIN_MS 10000u

/* ---- latency histogram: log-linear buckets ------------------------------
 * Values (ns) below 128 have a bucket each; above, each power of two is
 * split into 64 equal sub-buckets, so a bucket's width is at most 1/64 of
 * its lower bound (relative error < 1.6%).  Fixed size, O(1) record. */
#define HIST_SUB_BITS 6
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_BUCKETS ((64u - HIST_SUB_BITS + 1u) * HIST_SUB)

typedef struct load_hist {
  uint64_t count[HIST_BUCKETS];
  uint64_t n, max, min;
  double sum;
} load_hist;

static size_t hist_index(uint64_t v) {
  if (v < 2 * HIST_SUB) return (size_t)v;
  unsigned e = 63u - (unsigned)__builtin_clzll(v); /* >= 7 */
  size_t sub = (size_t)((v >> (e - HIST_SUB_BITS)) & (HIST_SUB - 1));
  return (size_t)(e - HIST_SUB_BITS + 1) * HIST_SUB + sub;
}

/* Lower bound and width of bucket idx (inverse of hist_index). */
static void hist_bucket(size_t idx, uint64_t *plow, uint64_t *pwidth) {
  if (idx < 2 * HIST_SUB) {
    *plow = idx;
    *pwidth = 1;
    return;
  }
  unsigned e = (unsigned)(idx / HIST_SUB) + HIST_SUB_BITS - 1;
  uint64_t sub = idx % HIST_SUB;
  *plow = (HIST_SUB + sub) << (e - HIST_SUB_BITS);
  *pwidth = (uint64_t)1 << (e - HIST_SUB_BITS);
}

static void hist_record(load_hist *h, uint64_t v) {
  h->count[hist_index(v)]++;
  if (h->n == 0 || v < h->min) h->min = v;
  if (v > h->max) h->max = v;
  h->n++;
  h->sum += (double)v;
}

/* The value at quantile q (0..1): the middle of the bucket holding the
 * ceil(q*n)-th sample, clamped to the exact min/max. */
static uint64_t hist_quantile(const load_hist *h, double q) {
  if (h->n == 0) return 0;
  uint64_t rank = (uint64_t)(q * (double)h->n + 0.999999);
  if (rank < 1) rank = 1;
  if (rank > h->n) rank = h->n;
  uint64_t seen = 0;
  for (size_t i = 0; i < HIST_BUCKETS; i++) {
    seen += h->count[i];
    if (seen >= rank) {
      uint64_t low, width;
      hist_bucket(i, &low, &width);
      uint64_t v = low + width / 2;
      if (v > h->max) v = h->max;
      if (v < h->min) v = h->min;
      return v;
    }
  }
  return h->max;
}

/* ---- state ---------------------------------------------------------------- */

enum { WS_PENDING = 0, WS_OPEN, WS_DONE };

/* Run phases, in order. */
enum { P_OPENING = 0, P_TRAFFIC, P_DRAIN, P_HOLD, P_CLOSING, P_DONE };

enum { ERR_CONNECT = 0, ERR_HANDSHAKE, ERR_INTERNAL, ERR_OPEN_TIMEOUT,
       ERR_SEND, ERR_BAD_ECHO, ERR_OUT_OF_ORDER, ERR_PEER_CLOSE,
       ERR_ABNORMAL_CLOSE, ERR_RUN_TIMEOUT, ERR_COUNT };
static const char *const load_err_names[ERR_COUNT] = {
    "connect", "handshake", "internal", "open_timeout", "send", "bad_echo",
    "out_of_order", "closed_by_peer", "abnormal_close", "run_timeout"};

typedef struct load_app load_app;

typedef struct load_ws {
  load_app *app;
  h2ws_rt_ws *ws;
  uint32_t idx;
  int state;
  int late;       /* opened after the traffic started without it */
  int blocked;    /* a send returned BUFFER_FULL: wait for on_writable */
  int close_sent;
  int unfinished; /* counted in app->unfinished */
  uint64_t sent, recv;
  double phase;   /* rate mode: offset of this WebSocket's schedule (0..1) */
} load_ws;

struct load_app {
  /* options */
  const char *url;
  uint32_t nconn, per_conn;
  size_t size;
  double rate;        /* messages/s per WebSocket; 0 = closed loop */
  uint64_t inflight;  /* messages in flight per WebSocket (cap) */
  uint64_t duration_ms;  /* 0 = until --messages */
  uint64_t messages;  /* per WebSocket; UINT64_MAX = until --duration */
  uint64_t hold_ms;   /* keep WebSockets open after traffic */
  uint64_t timeout_ms; /* hard cap on the whole run */
  uint64_t open_timeout_ms; /* budget for every WebSocket to open */
  uint64_t interval_ms; /* --interval: a progress line per interval */
  int policy, insecure, binary, compress, json, verbose;
  /* runtime */
  h2ws_rt *rt;
  uv_loop_t *loop;
  h2ws_client **clients;
  uint32_t nclients;
  load_ws *ws;
  uint32_t nws;
  uv_timer_t tick, phase_timer, deadline, interval;
  uv_prepare_t turn;    /* before each poll: the cached clock goes stale */
  uint64_t now_cached;  /* one clock read for up to LOAD_CLOCK_REUSE echoes */
  unsigned now_left;
  uint64_t ivl_t, ivl_recv, ivl_max_ns; /* the current interval's start */
  struct rusage ivl_ru;
  int timers_open;
  int phase, stopping, hard_stopped;
  /* opened: open when the traffic started (the ones measured); late:
   * opened after that; failed: never opened (on_fail) */
  uint32_t opened, late, failed, closed, ended, unfinished;
  uint32_t pending_at_start; /* neither open nor failed at the start */
  uint64_t t_begin, t_open_done, t0, t_last_recv, t_traffic_end;
  uint64_t sent, recv, lost_dead, bytes_recv;
  uint64_t err[ERR_COUNT];
  uint32_t transport_count[6];
  load_hist hist;
  uint8_t *payload;
  size_t hdrlen;
  struct rusage ru0, ru1;
};

static uint64_t load_now(void) { return uv_hrtime(); }

/* The clock of an echo: read once for up to LOAD_CLOCK_REUSE echoes
 * handled in one loop turn (a burst of a read), read again in the next
 * turn.  A clock read cost ~6 % of the client's CPU per 64 B echo on
 * this VM (perf); the reuse makes a round trip at most the time of
 * handling 32 echoes (~10 us) short, and the send time stamps of the
 * messages those echoes trigger as early (they leave at the turn's flush
 * anyway). */
#define LOAD_CLOCK_REUSE 32u
static uint64_t load_echo_now(load_app *app) {
  if (app->now_left == 0) {
    app->now_cached = load_now();
    app->now_left = LOAD_CLOCK_REUSE;
  }
  app->now_left--;
  return app->now_cached;
}

static void load_on_turn(uv_prepare_t *h) {
  load_app *app = h->data;
  app->now_left = 0;
}

/* ---- payload ---------------------------------------------------------------
 * Binary: bytes 0-7 send time (ns, little-endian), 8-15 sequence number.
 * Text: the same two numbers as 16 hex digits each (valid UTF-8). */

/* The binary numbers are little-endian whatever the host. */
static uint64_t load_le64(uint64_t v) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  return __builtin_bswap64(v);
#else
  return v;
#endif
}

static void load_put64(uint8_t *p, uint64_t v, int text) {
  static const char hex[] = "0123456789abcdef";
  if (text) {
    for (int i = 15; i >= 0; i--) {
      p[i] = (uint8_t)hex[v & 15];
      v >>= 4;
    }
  } else {
    uint64_t le = load_le64(v); /* one store */
    memcpy(p, &le, 8);
  }
}

static int load_get64(const uint8_t *p, int text, uint64_t *pv) {
  uint64_t v = 0;
  if (text) {
    for (int i = 0; i < 16; i++) {
      uint8_t c = p[i];
      unsigned d;
      if (c >= '0' && c <= '9') d = (unsigned)(c - '0');
      else if (c >= 'a' && c <= 'f') d = (unsigned)(c - 'a' + 10);
      else return -1;
      v = (v << 4) | d;
    }
  } else {
    memcpy(&v, p, 8);
    v = load_le64(v);
  }
  *pv = v;
  return 0;
}


/* ---- phases --------------------------------------------------------------- */

static void load_enter_hold(load_app *app);
static void load_enter_closing(load_app *app);
static void load_hard_stop(load_app *app);
static void load_finish(load_app *app);
static void load_on_phase_timer(uv_timer_t *t);

static uint64_t load_outstanding(const load_app *app) {
  return app->sent - app->recv - app->lost_dead;
}

static void load_arm_phase(load_app *app, uint64_t ms) {
  uv_timer_stop(&app->phase_timer);
  uv_timer_start(&app->phase_timer, load_on_phase_timer, ms, 0);
}

/* Sends what this WebSocket may send now. */
static void load_ws_fill(load_ws *w, uint64_t now) {
  load_app *app = w->app;
  int text = !app->binary;
  size_t slot = app->hdrlen / 2;
  if (app->phase != P_TRAFFIC || app->stopping) return;
  /* what may go now (a send changes nothing else: callbacks run later) */
  uint64_t out = w->sent - w->recv;
  uint64_t room = out < app->inflight ? app->inflight - out : 0;
  if (app->messages - w->sent < room) room = app->messages - w->sent;
  for (; room > 0 && w->state == WS_OPEN && !w->blocked && !w->close_sent;
       room--) {
    if (app->rate > 0) {
      /* message k of WebSocket i is due at t0 + (k + phase_i) / rate; a
       * backlog after a stall is sent at once (the schedule is kept) */
      double due = ((double)w->sent + w->phase) / app->rate * 1e9;
      if (app->t0 + (uint64_t)due > now) break;
    }
    /* the round trip is timed from the send: the 1 ms tick of rate mode
     * would otherwise add up to 1 ms of schedule lag to every sample */
    load_put64(app->payload, now, text);
    load_put64(app->payload + slot, w->sent, text);
    int rv = h2ws_rt_ws_send(w->ws, app->binary ? H2WS_OP_BINARY
                                                : H2WS_OP_TEXT,
                             app->payload, app->size);
    if (rv == H2WS_ERR_BUFFER_FULL) {
      w->blocked = 1; /* on_writable resumes */
      break;
    }
    if (rv != 0) {
      app->err[ERR_SEND]++;
      if (app->verbose)
        fprintf(stderr, "h2ws load: ws %u: send: %s\n", w->idx,
                h2ws_strerror(rv));
      w->close_sent = 1;
      h2ws_rt_ws_close(w->ws, H2WS_CLOSE_INTERNAL_ERROR, "send failed");
      break;
    }
    w->sent++;
    app->sent++;
    if (w->sent == app->messages && w->unfinished) {
      w->unfinished = 0;
      app->unfinished--;
    }
  }
}

/* Traffic is over once nothing more will be sent and every echo is back. */
static void load_check_idle(load_app *app) {
  if (app->phase != P_TRAFFIC && app->phase != P_DRAIN) return;
  if (!app->stopping && app->unfinished > 0) return;
  if (load_outstanding(app) > 0) return;
  load_enter_hold(app);
}

static double load_tv(const struct timeval *tv) {
  return (double)tv->tv_sec + (double)tv->tv_usec / 1e6;
}

static double load_ru_s(const struct rusage *r) {
  return load_tv(&r->ru_utime) + load_tv(&r->ru_stime);
}

/* --interval: one line on stderr per interval of the traffic (echoes,
 * what is outstanding, the slowest round trip, this loop's CPU): to see
 * stalls that a whole run's figures average away. */
static void load_on_interval(uv_timer_t *t) {
  load_app *app = t->data;
  uint64_t now = load_now();
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  double dt = (double)(now - app->ivl_t) / 1e9;
  uint64_t n = app->recv - app->ivl_recv;
  fprintf(stderr,
          "h2ws load: %8.3f s  %10.0f msg/s  outstanding %" PRIu64
          "  max rtt %.1f ms  cpu %.0f%%\n",
          (double)(now - app->t0) / 1e9, dt > 0 ? (double)n / dt : 0,
          load_outstanding(app), (double)app->ivl_max_ns / 1e6,
          dt > 0 ? (load_ru_s(&ru) - load_ru_s(&app->ivl_ru)) / dt * 100 : 0);
  app->ivl_t = now;
  app->ivl_recv = app->recv;
  app->ivl_max_ns = 0;
  app->ivl_ru = ru;
}

static void load_on_tick(uv_timer_t *t) {
  load_app *app = t->data;
  uint64_t now = load_now();
  for (uint32_t i = 0; i < app->nws; i++) load_ws_fill(&app->ws[i], now);
}

static void load_start_traffic(load_app *app) {
  if (app->phase != P_OPENING) return;
  app->phase = P_TRAFFIC;
  app->t_open_done = app->t0 = load_now();
  app->pending_at_start = app->nws - app->opened - app->failed;
  app->err[ERR_OPEN_TIMEOUT] += app->pending_at_start;
  if (app->pending_at_start) {
    char d[32];
    fprintf(stderr,
            "h2ws load: %u WebSockets open (%u failed, %u not open within "
            "%s, --open-timeout) in %.1f ms\n",
            app->opened, app->failed, app->pending_at_start,
            kit_fmt_duration(app->open_timeout_ms, d, sizeof d),
            (double)(app->t_open_done - app->t_begin) / 1e6);
  } else {
    fprintf(stderr, "h2ws load: %u WebSockets open (%u failed) in %.1f ms\n",
            app->opened, app->failed,
            (double)(app->t_open_done - app->t_begin) / 1e6);
  }
  getrusage(RUSAGE_SELF, &app->ru0);
  for (uint32_t i = 0; i < app->nws; i++) {
    load_ws *w = &app->ws[i];
    if (w->state == WS_OPEN && app->messages > 0) {
      w->unfinished = 1;
      app->unfinished++;
    }
  }
  if (app->duration_ms > 0) load_arm_phase(app, app->duration_ms);
  else uv_timer_stop(&app->phase_timer);
  if (app->rate > 0) uv_timer_start(&app->tick, load_on_tick, 1, 1);
  if (app->interval_ms > 0) {
    app->ivl_t = app->t0;
    app->ivl_ru = app->ru0;
    uv_timer_start(&app->interval, load_on_interval, app->interval_ms,
                   app->interval_ms);
  }
  for (uint32_t i = 0; i < app->nws; i++) load_ws_fill(&app->ws[i], app->t0);
  load_check_idle(app);
}

static void load_enter_hold(load_app *app) {
  if (app->phase >= P_HOLD) return;
  app->phase = P_HOLD;
  app->t_traffic_end = app->t_last_recv > app->t0 ? app->t_last_recv
                                                  : load_now();
  getrusage(RUSAGE_SELF, &app->ru1);
  uv_timer_stop(&app->tick);
  uv_timer_stop(&app->interval);
  if (app->hold_ms > 0 && app->opened + app->late > app->closed) {
    char d[32];
    if (app->verbose)
      fprintf(stderr, "h2ws load: holding %u WebSockets for %s\n",
              app->opened + app->late - app->closed,
              kit_fmt_duration(app->hold_ms, d, sizeof d));
    load_arm_phase(app, app->hold_ms);
  } else {
    load_enter_closing(app);
  }
}

static void load_enter_closing(load_app *app) {
  if (app->phase >= P_CLOSING) return;
  app->phase = P_CLOSING;
  for (uint32_t i = 0; i < app->nws; i++) {
    load_ws *w = &app->ws[i];
    if (w->state == WS_OPEN && !w->close_sent) {
      w->close_sent = 1;
      h2ws_rt_ws_close(w->ws, H2WS_CLOSE_NORMAL, NULL);
    }
  }
  if (app->ended == app->nws) load_finish(app);
  else load_arm_phase(app, 10000); /* closing handshakes: bounded */
}

static void load_on_phase_timer(uv_timer_t *t) {
  load_app *app = t->data;
  switch (app->phase) {
  case P_OPENING: /* not everything opened in time: go with what did */
    if (app->verbose)
      fprintf(stderr, "h2ws load: open timeout, %u still pending\n",
              app->nws - app->opened - app->failed);
    load_start_traffic(app);
    break;
  case P_TRAFFIC: /* --duration elapsed: wait a bounded time for echoes */
    app->stopping = 1;
    app->phase = P_DRAIN;
    load_arm_phase(app, LOAD_DRAIN_MS);
    load_check_idle(app);
    break;
  case P_DRAIN: /* echoes missing: they will count as lost */
    load_enter_hold(app);
    break;
  case P_HOLD:
    load_enter_closing(app);
    break;
  case P_CLOSING:
    load_hard_stop(app);
    break;
  default:
    break;
  }
}

static void load_on_deadline(uv_timer_t *t) {
  load_app *app = t->data;
  fprintf(stderr, "h2ws load: --timeout reached, stopping\n");
  load_hard_stop(app);
}

/* Ends everything now: WebSockets still open count as run_timeout, their
 * outstanding messages as lost. */
static void load_hard_stop(load_app *app) {
  if (app->phase == P_DONE || app->hard_stopped) return;
  app->hard_stopped = 1;
  if (app->phase < P_HOLD) {
    app->t_traffic_end = app->t_last_recv > app->t0 ? app->t_last_recv
                                                    : load_now();
    getrusage(RUSAGE_SELF, &app->ru1);
  }
  if (app->t_open_done == 0) app->t_open_done = load_now();
  /* no phase logic may run while the clients tear their WebSockets down */
  app->phase = P_CLOSING;
  uv_timer_stop(&app->tick);
  uv_timer_stop(&app->interval);
  for (uint32_t i = 0; i < app->nws; i++)
    if (app->ws[i].state != WS_DONE) app->err[ERR_RUN_TIMEOUT]++;
  for (uint32_t i = 0; i < app->nclients; i++) {
    h2ws_client_del(app->clients[i]); /* fires on_close / on_fail */
    app->clients[i] = NULL;
  }
  load_finish(app);
}

static void load_finish(load_app *app) {
  if (app->phase == P_DONE) return;
  if (app->t0 == 0) { /* traffic never started */
    app->t0 = app->t_traffic_end = load_now();
    if (app->t_open_done == 0) app->t_open_done = app->t0;
    getrusage(RUSAGE_SELF, &app->ru0);
    app->ru1 = app->ru0;
  }
  app->phase = P_DONE;
  if (app->timers_open) {
    app->timers_open = 0;
    uv_close((uv_handle_t *)&app->tick, NULL);
    uv_close((uv_handle_t *)&app->phase_timer, NULL);
    uv_close((uv_handle_t *)&app->deadline, NULL);
    uv_close((uv_handle_t *)&app->interval, NULL);
    uv_close((uv_handle_t *)&app->turn, NULL);
  }
}

/* ---- WebSocket events ----------------------------------------------------- */

static void load_ws_ended(load_ws *w) {
  load_app *app = w->app;
  w->state = WS_DONE;
  app->ended++;
  if (w->unfinished) {
    w->unfinished = 0;
    app->unfinished--;
  }
  app->lost_dead += w->sent - w->recv;
  if (app->phase == P_OPENING && app->opened + app->failed == app->nws)
    load_start_traffic(app);
  else load_check_idle(app);
  if (app->phase == P_CLOSING && app->ended == app->nws) load_finish(app);
}

static void load_on_open(h2ws_rt_ws *ws, void *ud) {
  load_ws *w = ud;
  load_app *app = w->app;
  w->ws = ws;
  w->state = WS_OPEN;
  if (app->phase == P_OPENING) {
    app->opened++;
  } else {
    /* it missed the start: not counted as opened (the table reports what
     * opened within --open-timeout) */
    w->late = 1;
    app->late++;
    if (app->verbose)
      fprintf(stderr, "h2ws load: ws %u opened late\n", w->idx);
  }
  h2ws_rt_transport tr = h2ws_rt_ws_transport(ws);
  if (!w->late && (unsigned)tr < 6) app->transport_count[tr]++;
  if (app->phase == P_OPENING) {
    if (app->opened + app->failed == app->nws) load_start_traffic(app);
  } else if (app->phase == P_TRAFFIC) { /* late: joins the traffic */
    if (app->messages > 0) {
      w->unfinished = 1;
      app->unfinished++;
    }
    load_ws_fill(w, load_now());
  } else if (app->phase >= P_CLOSING) {
    w->close_sent = 1;
    h2ws_rt_ws_close(ws, H2WS_CLOSE_NORMAL, NULL);
  }
}

static int load_on_message(h2ws_rt_ws *ws, h2ws_opcode op,
                           const uint8_t *data, size_t len, void *ud) {
  load_ws *w = ud;
  load_app *app = w->app;
  uint64_t now = load_echo_now(app);
  int text = !app->binary;
  uint64_t ts, seq;
  (void)ws;
  if (w->recv >= w->sent) { /* more echoes than messages sent */
    app->err[ERR_BAD_ECHO]++;
    return 0;
  }
  w->recv++;
  app->recv++;
  app->bytes_recv += len;
  app->t_last_recv = now;
  if (len != app->size || op != (app->binary ? H2WS_OP_BINARY : H2WS_OP_TEXT)
      || load_get64(data, text, &ts) != 0 ||
      load_get64(data + app->hdrlen / 2, text, &seq) != 0 ||
      /* every byte after the header: the fixed pattern sent */
      memcmp(data + app->hdrlen, app->payload + app->hdrlen,
             len - app->hdrlen) != 0) {
    app->err[ERR_BAD_ECHO]++;
  } else {
    if (seq != w->recv - 1) app->err[ERR_OUT_OF_ORDER]++;
    uint64_t rtt = now > ts ? now - ts : 0;
    hist_record(&app->hist, rtt);
    if (rtt > app->ivl_max_ns) app->ivl_max_ns = rtt;
  }
  load_ws_fill(w, now);
  load_check_idle(app);
  return 0;
}

static void load_on_writable(h2ws_rt_ws *ws, void *ud) {
  load_ws *w = ud;
  (void)ws;
  if (!w->blocked) return;
  w->blocked = 0;
  load_ws_fill(w, load_now());
}

static void load_on_close(h2ws_rt_ws *ws, uint16_t code,
                          const uint8_t *reason, size_t rlen, void *ud) {
  load_ws *w = ud;
  load_app *app = w->app;
  (void)ws;
  app->closed++;
  if (!app->hard_stopped) {
    if (!w->close_sent) {
      app->err[ERR_PEER_CLOSE]++;
      if (app->verbose)
        fprintf(stderr, "h2ws load: ws %u closed by the server: %u %.*s\n",
                w->idx, code, (int)rlen, (const char *)reason);
    } else if (code != H2WS_CLOSE_NORMAL) {
      app->err[ERR_ABNORMAL_CLOSE]++;
      if (app->verbose)
        fprintf(stderr, "h2ws load: ws %u closed with %u %.*s\n", w->idx,
                code, (int)rlen, (const char *)reason);
    }
  }
  load_ws_ended(w);
}

static void load_on_fail(h2ws_rt_ws *ws, int error, int status,
                         const char *message, void *ud) {
  load_ws *w = ud;
  load_app *app = w->app;
  (void)ws;
  (void)status;
  /* after the start it was counted as open_timeout already */
  if (app->phase == P_OPENING) {
    app->failed++;
    /* the classes of the exit-code table (a connection lost during the
     * handshake is a connect failure, not a refusal) */
    const char *cls = kit_fail_name(error);
    if (!strcmp(cls, "connect")) app->err[ERR_CONNECT]++;
    else if (!strcmp(cls, "handshake")) app->err[ERR_HANDSHAKE]++;
    else app->err[ERR_INTERNAL]++;
  }
  /* print the first failures whatever -v says: they explain the exit code */
  if (app->verbose || (app->failed <= 3 && app->phase == P_OPENING))
    fprintf(stderr, "h2ws load: ws %u failed: %s%s\n", w->idx, message,
            kit_fail_hint(error));
  load_ws_ended(w);
}

static void load_on_note(h2ws_rt_ws *ws, const char *message, void *ud) {
  load_ws *w = ud;
  (void)ws;
  if (w->app->verbose && w->idx < 4)
    fprintf(stderr, "h2ws load: ws %u: %s\n", w->idx, message);
}

/* ---- report --------------------------------------------------------------- */

/* The transport most WebSockets used, "none" if none opened. */
static const char *load_transport_name(const load_app *app) {
  int best = 0;
  for (int i = 1; i < 6; i++)
    if (app->transport_count[i] > app->transport_count[best]) best = i;
  return best ? kit_transport_name((h2ws_rt_transport)best) : "none";
}

static void load_report(const load_app *app) {
  double elapsed = (double)(app->t_traffic_end - app->t0) / 1e9;
  if (elapsed <= 0) elapsed = 1e-9;
  double cu = load_tv(&app->ru1.ru_utime) - load_tv(&app->ru0.ru_utime);
  double cs = load_tv(&app->ru1.ru_stime) - load_tv(&app->ru0.ru_stime);
  uint64_t lost = app->sent - app->recv;
  double mps = (double)app->recv / elapsed;
  double mbs = (double)app->bytes_recv / elapsed / 1e6;
  double us[6] = {
      (double)hist_quantile(&app->hist, 0.50) / 1e3,
      (double)hist_quantile(&app->hist, 0.90) / 1e3,
      (double)hist_quantile(&app->hist, 0.99) / 1e3,
      (double)hist_quantile(&app->hist, 0.999) / 1e3,
      (double)app->hist.max / 1e3,
      app->hist.n ? app->hist.sum / (double)app->hist.n / 1e3 : 0};
  double cpu_per_msg = app->recv ? (cu + cs) * 1e6 / (double)app->recv : 0;
  double open_ms = (double)(app->t_open_done - app->t_begin) / 1e6;
  char d[32];
  kit_fmt_duration(app->open_timeout_ms, d, sizeof d);
  if (app->json) {
    kit_buf b = {0};
    kit_json j;
    kit_json_init(&j, &b);
    kit_json_obj(&j);
    kit_json_key(&j, "url");
    kit_json_cstr(&j, app->url);
    kit_json_key(&j, "transport");
    kit_json_cstr(&j, load_transport_name(app));
    kit_json_key(&j, "connections");
    kit_json_uint(&j, app->nconn);
    kit_json_key(&j, "streams_per_conn");
    kit_json_uint(&j, app->per_conn);
    kit_json_key(&j, "size");
    kit_json_uint(&j, app->size);
    kit_json_key(&j, "binary");
    kit_json_bool(&j, app->binary);
    if (app->rate > 0) {
      kit_json_key(&j, "rate");
      kit_json_double(&j, app->rate, 3);
    } else {
      kit_json_key(&j, "inflight");
      kit_json_uint(&j, app->inflight);
    }
    kit_json_key(&j, "ws_requested");
    kit_json_uint(&j, app->nws);
    kit_json_key(&j, "ws_opened");
    kit_json_uint(&j, app->opened);
    kit_json_key(&j, "ws_failed");
    kit_json_uint(&j, app->failed);
    kit_json_key(&j, "ws_not_open_in_time");
    kit_json_uint(&j, app->pending_at_start);
    kit_json_key(&j, "ws_opened_late");
    kit_json_uint(&j, app->late);
    kit_json_key(&j, "open_ms");
    kit_json_double(&j, open_ms, 3);
    kit_json_key(&j, "messages_sent");
    kit_json_uint(&j, app->sent);
    kit_json_key(&j, "messages_received");
    kit_json_uint(&j, app->recv);
    kit_json_key(&j, "messages_lost");
    kit_json_uint(&j, lost);
    kit_json_key(&j, "bytes_received");
    kit_json_uint(&j, app->bytes_recv);
    kit_json_key(&j, "elapsed_s");
    kit_json_double(&j, elapsed, 6);
    kit_json_key(&j, "msg_per_s");
    kit_json_double(&j, mps, 1);
    kit_json_key(&j, "mb_per_s");
    kit_json_double(&j, mbs, 3);
    kit_json_key(&j, "latency_us");
    kit_json_obj(&j);
    kit_json_key(&j, "samples");
    kit_json_uint(&j, app->hist.n);
    static const char *const qn[6] = {"p50", "p90", "p99", "p99_9", "max",
                                      "mean"};
    for (int i = 0; i < 6; i++) {
      kit_json_key(&j, qn[i]);
      kit_json_double(&j, us[i], 1);
    }
    kit_json_end(&j);
    kit_json_key(&j, "errors");
    kit_json_obj(&j);
    for (int i = 0; i < ERR_COUNT; i++) {
      kit_json_key(&j, load_err_names[i]);
      kit_json_uint(&j, app->err[i]);
    }
    kit_json_end(&j);
    kit_json_key(&j, "cpu_user_s");
    kit_json_double(&j, cu, 6);
    kit_json_key(&j, "cpu_sys_s");
    kit_json_double(&j, cs, 6);
    kit_json_key(&j, "cpu_us_per_msg");
    kit_json_double(&j, cpu_per_msg, 3);
    kit_json_end(&j);
    if (!b.bad) printf("%s\n", b.p);
    kit_buf_free(&b);
  } else {
    printf("h2ws load %s\n", app->url);
    printf("  transport            %s, %u connection(s) x %u WebSocket(s)\n",
           load_transport_name(app), app->nconn, app->per_conn);
    if (app->rate > 0)
      printf("  mode                 %.1f msg/s per WebSocket, %zu B %s\n",
             app->rate, app->size, app->binary ? "binary" : "text");
    else
      printf("  mode                 closed loop, %" PRIu64
             " in flight per WebSocket, %zu B %s\n",
             app->inflight, app->size, app->binary ? "binary" : "text");
    printf("  WebSockets           %u opened, %u failed", app->opened,
           app->failed);
    if (app->pending_at_start)
      printf(", %u not open within %s (%u opened later)",
             app->pending_at_start, d, app->late);
    printf(" (of %u) in %.1f ms\n", app->nws, open_ms);
    printf("  messages             %" PRIu64 " sent, %" PRIu64
           " received, %" PRIu64 " lost\n", app->sent, app->recv, lost);
    printf("  elapsed              %.3f s\n", elapsed);
    printf("  throughput           %.1f msg/s, %.3f MB/s (echoed payload, "
           "1 MB = 10^6 B)\n", mps, mbs);
    printf("  latency (us)         p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f"
           "  max %.1f  mean %.1f  (%" PRIu64 " samples)\n",
           us[0], us[1], us[2], us[3], us[4], us[5], app->hist.n);
    printf("  errors              ");
    int any = 0;
    for (int i = 0; i < ERR_COUNT; i++)
      if (app->err[i]) {
        printf(" %s=%" PRIu64, load_err_names[i], app->err[i]);
        any = 1;
      }
    printf("%s\n", any ? "" : " none");
    printf("  load CPU             user %.3f s, sys %.3f s, %.2f us/msg\n",
           cu, cs, cpu_per_msg);
  }
  fflush(stdout);
}

/* The first line of the exit-code table that applies. */
static int load_exit_code(const load_app *app) {
  const uint64_t *e = app->err;
  if (e[ERR_CONNECT] || e[ERR_INTERNAL] ||
      (app->opened + app->late == 0 && !e[ERR_HANDSHAKE] &&
       !e[ERR_OPEN_TIMEOUT]))
    return KIT_EXIT_CONNECT;
  if (e[ERR_HANDSHAKE] || e[ERR_OPEN_TIMEOUT]) return KIT_EXIT_HANDSHAKE;
  if (e[ERR_RUN_TIMEOUT]) return KIT_EXIT_TIMEOUT;
  if (e[ERR_PEER_CLOSE] || e[ERR_ABNORMAL_CLOSE] || e[ERR_SEND] ||
      e[ERR_BAD_ECHO] || e[ERR_OUT_OF_ORDER] || app->sent != app->recv)
    return KIT_EXIT_ABNORMAL;
  return KIT_EXIT_OK;
}

/* ---- options -------------------------------------------------------------- */

/* --rate: messages per second, decimals allowed. */
static int load_parse_rate(const char *s, void *dest, char *err,
                           size_t errlen) {
  char *end;
  double v = strtod(s, &end);
  if (end == s || *end != '\0' || !(v >= 0.001) || !(v <= 1e7)) {
    snprintf(err, errlen, "messages per second from 0.001 to 10000000");
    return -1;
  }
  *(double *)dest = v;
  return 0;
}

static const char load_about[] =
    "Load generator for an echo endpoint (e.g. 'h2ws serve' /echo) on a\n"
    "loopback address (ws://HOST:PORT/PATH or wss://..., HOST localhost,\n"
    "127.0.0.1, [::1], 127.x.y.z or any name that resolves only to\n"
    "loopback addresses; other hosts are refused: a load generator must\n"
    "not hit a remote service by mistake).  Opens N connections each\n"
    "carrying M WebSockets (HTTP/2, RFC 8441: the M share one\n"
    "connection), waits until all are open (at most --open-timeout),\n"
    "then sends messages and checks every echo (length, order and\n"
    "every byte).\n";

static const char load_epilog[] =
    "TIME is a duration: 10s, 500ms, 2m; a plain number is seconds.\n"
    "SIZE is in bytes, or with a unit: 64KiB, 1MiB (x1024), 1MB (x1000).\n"
    "\n"
    "Counts: 'opened' are the WebSockets open when the traffic started\n"
    "(those measured); one that opens after --open-timeout is reported as\n"
    "not open in time (and as opened later), never as opened.  A message\n"
    "is lost if its echo did not come back before the WebSocket closed or\n"
    "the run ended.  'h2ws load: N WebSockets open' is printed on stderr\n"
    "when the traffic starts (with --workers, once per loop, with its\n"
    "share; each loop starts its traffic when its own WebSockets are\n"
    "open, and the report's elapsed time runs from the first start to\n"
    "the last end).\n"
    "\n"
    "exit codes (the first that applies):\n"
    "  0  every WebSocket opened in time and every message was echoed\n"
    "  1  usage error (bad option, or a URL that is not on loopback)\n"
    "  2  a WebSocket could not connect: DNS, refused, TLS, connection\n"
    "     lost before the WebSocket opened\n"
    "  3  a WebSocket was refused (HTTP status, bad answer), or did not\n"
    "     open within --open-timeout\n"
    "  5  --timeout cut the run\n"
    "  4  a WebSocket closed abnormally or was closed by the server, a\n"
    "     message was lost or an echo was wrong\n";

/* One run on its own runtime and loop (the whole command, or one
 * worker of --workers: its share of the connections): the results stay
 * in app.  Returns 0, or an exit code after a setup failure (a message
 * was printed); load_free() cleans up either way. */
static int load_run(load_app *app, const kit_cmd *cmd) {
  int code = KIT_EXIT_OK;
  app->payload = malloc(app->size);
  app->ws = calloc(app->nws, sizeof *app->ws);
  /* HTTP/2: one client per connection (a client pools one connection per
   * origin); HTTP/1.1: each WebSocket has its own connection anyway */
  app->nclients = app->policy == H2WS_RT_POLICY_H1 ? 1 : app->nconn;
  app->clients = calloc(app->nclients, sizeof *app->clients);
  if (!app->payload || !app->ws || !app->clients) {
    kit_error(cmd, "out of memory");
    return KIT_EXIT_CONNECT; /* load_free() frees what was made */
  }
  for (size_t i = 0; i < app->size; i++)
    app->payload[i] = (uint8_t)(app->binary ? (i * 131u + 7u) & 0xff
                                          : 'a' + i % 26);

  h2ws_client_settings cs;
  h2ws_client_settings_default(&cs);
  cs.insecure = app->insecure;
  cs.close_idle = 1;
  uint64_t maxmsg = app->size < 65536 ? 65536 : app->size;
  cs.ws.max_message_size = maxmsg;
  {
    /* room for what may be in flight, bounded: BUFFER_FULL beyond */
    uint64_t k = app->inflight == UINT64_MAX ? 64 : app->inflight;
    uint64_t out = k * (app->size + 14) + 65536;
    if (out > 256u * 1024 * 1024) out = 256u * 1024 * 1024;
    cs.ws.max_output = (size_t)out;
  }
  h2ws_client_ws_options wo;
  h2ws_client_ws_options_default(&wo);
  wo.policy = app->policy;
  wo.compress = app->compress;

  if (h2ws_rt_new(&app->rt, NULL) != 0) {
    kit_error(cmd, "cannot start the runtime");
    return KIT_EXIT_CONNECT;
  }
  for (uint32_t i = 0; i < app->nclients; i++)
    if (h2ws_client_new(&app->clients[i], app->rt, &cs) != 0) {
      kit_error(cmd, "cannot create a client");
      return KIT_EXIT_CONNECT;
    }
  app->loop = h2ws_rt_uv_loop(app->rt);
  uv_timer_init(app->loop, &app->tick);
  uv_timer_init(app->loop, &app->phase_timer);
  uv_timer_init(app->loop, &app->deadline);
  uv_timer_init(app->loop, &app->interval);
  uv_prepare_init(app->loop, &app->turn);
  app->turn.data = app;
  uv_prepare_start(&app->turn, load_on_turn);
  app->tick.data = app->phase_timer.data = app->deadline.data = app;
  app->interval.data = app;
  app->timers_open = 1;
  uv_timer_start(&app->deadline, load_on_deadline, app->timeout_ms, 0);
  load_arm_phase(app, app->open_timeout_ms);

  static const h2ws_rt_ws_callbacks cbs = {
      .on_open = load_on_open,
      .on_message = load_on_message,
      .on_close = load_on_close,
      .on_writable = load_on_writable,
      .on_fail = load_on_fail,
      .on_note = load_on_note,
  };
  app->t_begin = load_now();
  for (uint32_t i = 0; i < app->nws && app->phase == P_OPENING; i++) {
    load_ws *w = &app->ws[i];
    w->app = app;
    w->idx = i;
    w->phase = (double)i / (double)app->nws;
    h2ws_client *cl = app->clients[app->nclients == 1 ? 0 : i / app->per_conn];
    int rv = h2ws_client_open(cl, app->url, &wo, &cbs, w, NULL);
    if (rv != 0) {
      kit_error(cmd, "%s", h2ws_client_last_error(cl));
      app->failed++;
      app->err[ERR_INTERNAL]++;
      load_ws_ended(w);
    }
  }
  h2ws_rt_run(app->rt);
  load_finish(app); /* if the loop ended on its own */
  return code;
}

static void load_free(load_app *app) {
  for (uint32_t i = 0; i < app->nclients; i++) h2ws_client_del(app->clients[i]);
  if (app->rt) {
    h2ws_rt_run(app->rt); /* let closed handles finish */
    h2ws_rt_del(app->rt);
  }
  free(app->payload);
  free(app->ws);
  free(app->clients);
}

/* --workers N: N runs on N threads, each with its share of the
 * connections (connection i on worker i mod N), then one report of the
 * sums: counts and errors added, histograms merged, the traffic from the
 * first start to the last end, the process's CPU over that span. */
typedef struct load_worker {
  load_app *app;
  const kit_cmd *cmd;
  int code;
} load_worker;

static void load_worker_main(void *arg) {
  load_worker *lw = arg;
  lw->code = load_run(lw->app, lw->cmd);
}

static void load_merge(load_app *t, const load_app *a) {
  t->opened += a->opened;
  t->late += a->late;
  t->failed += a->failed;
  t->closed += a->closed;
  t->ended += a->ended;
  t->pending_at_start += a->pending_at_start;
  t->sent += a->sent;
  t->recv += a->recv;
  t->lost_dead += a->lost_dead;
  t->bytes_recv += a->bytes_recv;
  for (int i = 0; i < ERR_COUNT; i++) t->err[i] += a->err[i];
  for (int i = 0; i < 6; i++) t->transport_count[i] += a->transport_count[i];
  for (size_t i = 0; i < HIST_BUCKETS; i++)
    t->hist.count[i] += a->hist.count[i];
  if (a->hist.n && (t->hist.n == 0 || a->hist.min < t->hist.min))
    t->hist.min = a->hist.min;
  if (a->hist.max > t->hist.max) t->hist.max = a->hist.max;
  t->hist.n += a->hist.n;
  t->hist.sum += a->hist.sum;
  if (t->t_begin == 0 || a->t_begin < t->t_begin) t->t_begin = a->t_begin;
  if (a->t_open_done > t->t_open_done) t->t_open_done = a->t_open_done;
  if (t->t0 == 0 || a->t0 < t->t0) {
    t->t0 = a->t0;
    t->ru0 = a->ru0; /* RUSAGE_SELF: the whole process */
  }
  if (a->t_traffic_end >= t->t_traffic_end) {
    t->t_traffic_end = a->t_traffic_end;
    t->ru1 = a->ru1;
  }
}

static int load_workers(const load_app *tmpl, const kit_cmd *cmd,
                        unsigned n) {
  if (n > tmpl->nconn) n = tmpl->nconn; /* a connection each at least */
  load_app *apps = calloc(n, sizeof *apps);
  load_app *sum = calloc(1, sizeof *sum);
  load_worker *lw = calloc(n, sizeof *lw);
  uv_thread_t *th = calloc(n, sizeof *th);
  int code = KIT_EXIT_OK;
  unsigned started = 0;
  if (!apps || !sum || !lw || !th) {
    kit_error(cmd, "out of memory");
    code = KIT_EXIT_CONNECT;
  }
  for (unsigned w = 0; w < n && code == KIT_EXIT_OK; w++) {
    apps[w] = *tmpl; /* the options; no runtime state yet */
    apps[w].nconn = tmpl->nconn / n + (w < tmpl->nconn % n);
    apps[w].nws = apps[w].nconn * apps[w].per_conn;
    lw[w].app = &apps[w];
    lw[w].cmd = cmd;
    if (uv_thread_create(&th[w], load_worker_main, &lw[w]) != 0) {
      kit_error(cmd, "cannot start a thread");
      code = KIT_EXIT_CONNECT;
      break;
    }
    started++;
  }
  for (unsigned w = 0; w < started; w++) {
    uv_thread_join(&th[w]);
    if (lw[w].code != KIT_EXIT_OK && code == KIT_EXIT_OK) code = lw[w].code;
  }
  if (code == KIT_EXIT_OK) {
    *sum = *tmpl;
    for (unsigned w = 0; w < n; w++) load_merge(sum, &apps[w]);
    load_report(sum);
    code = load_exit_code(sum);
  }
  for (unsigned w = 0; w < started; w++) load_free(&apps[w]);
  free(apps);
  free(sum);
  free(lw);
  free(th);
  return code;
}

int h2ws_cmd_load(int argc, char **argv) {
  static load_app app; /* the histogram is large: not on the stack */
  memset(&app, 0, sizeof app);
  uint64_t nconn = 1, per_conn = 1, size = 64, inflight = 0,
           messages = UINT64_MAX;
  uint64_t duration_ms = 0, hold_ms = 0, timeout_ms = 0, workers = 1;
  int policy = H2WS_RT_POLICY_H2;
  app.open_timeout_ms = LOAD_OPEN_TIMEOUT_MS;
  const kit_opt opts[] = {
      {.name = "connections", .kind = KIT_UINT, .dest = &nconn, .arg = "N",
       .min = 1, .max = LOAD_MAX_WS, .help = "connections (default 1)"},
      {.name = "streams-per-conn", .kind = KIT_UINT, .dest = &per_conn,
       .arg = "M", .min = 1, .max = LOAD_MAX_WS,
       .help = "WebSockets per connection (default 1); with\n"
               "--h1, N*M HTTP/1.1 connections are opened;\n"
               "above the server's cap per connection (100\n"
               "for h2ws serve) the runtime opens another\n"
               "connection"},
      {.name = "size", .kind = KIT_SIZE, .dest = &size, .arg = "SIZE",
       .min = 1, .max = LOAD_MAX_SIZE,
       .help = "message size (default 64; >= 16 binary, >= 32\n"
               "text: a send timestamp and a sequence number\n"
               "lead each payload)"},
      {.name = "inflight", .kind = KIT_UINT, .dest = &inflight, .arg = "K",
       .min = 1, .max = 1000000,
       .help = "closed loop: K messages in flight per\n"
               "WebSocket, each echo triggers the next send\n"
               "(default 1)"},
      {.name = "rate", .kind = KIT_FUNC, .dest = &app.rate, .arg = "R",
       .fn = load_parse_rate,
       .help = "open loop: R messages/s per WebSocket on a\n"
               "fixed schedule (1 ms ticks; a backlog after\n"
               "a stall is sent at once); --inflight then\n"
               "caps what is outstanding (default none)"},
      {.name = "duration", .kind = KIT_DURATION, .dest = &duration_ms,
       .arg = "TIME", .min = 1, .max = 86400000, .group = 1,
       .help = "send for TIME (default 5s unless --messages\n"
               "is given)"},
      {.name = "messages", .kind = KIT_UINT, .dest = &messages, .arg = "N",
       .max = 1000000000000ull, .group = 1,
       .help = "send N messages per WebSocket (0: none, with\n"
               "--hold to keep idle WebSockets open)"},
      {.name = "hold", .kind = KIT_DURATION, .dest = &hold_ms, .arg = "TIME",
       .max = 86400000,
       .help = "keep the WebSockets open TIME after the\n"
               "traffic before closing them (default 0)"},
      {.name = "open-timeout", .kind = KIT_DURATION,
       .dest = &app.open_timeout_ms, .arg = "TIME", .min = 1,
       .max = 86400000,
       .help = "budget for every WebSocket to open (default\n"
               "15s); the traffic then starts with those open"},
      {.name = "interval", .kind = KIT_DURATION, .dest = &app.interval_ms,
       .arg = "TIME", .min = 10, .max = 86400000,
       .help = "a progress line on stderr every TIME of the\n"
               "traffic: echoes/s, outstanding, slowest round\n"
               "trip, the process's CPU (with --workers, a\n"
               "line per loop)"},
      {.name = "timeout", .kind = KIT_DURATION, .dest = &timeout_ms,
       .arg = "TIME", .min = 100, .max = 86400000,
       .help = "hard cap on the run (default: duration + hold\n"
               "+ 30s, or 120s with --messages)"},
      {.name = "h3", .kind = KIT_FLAG, .dest = &policy,
       .value = H2WS_RT_POLICY_H3, .group = 2,
       .help = "HTTP/3 only (wss://: QUIC, RFC 9220; the\n"
               "streams of a connection share one QUIC\n"
               "connection)"},
      {.name = "h2", .kind = KIT_FLAG, .dest = &policy,
       .value = H2WS_RT_POLICY_H2, .group = 2,
       .help = "HTTP/2 only (default; ws:// = h2c prior\n"
               "knowledge, wss:// = ALPN h2 + RFC 8441)"},
      {.name = "h1", .kind = KIT_FLAG, .dest = &policy,
       .value = H2WS_RT_POLICY_H1, .group = 2,
       .help = "HTTP/1.1 Upgrade, one connection per WebSocket"},
      {.name = "insecure", .short_name = 'k', .kind = KIT_FLAG,
       .dest = &app.insecure,
       .help = "do not verify the server's certificate"},
      {.name = "binary", .kind = KIT_FLAG, .dest = &app.binary,
       .help = "binary messages (default text)"},
      {.name = "compress", .kind = KIT_FLAG, .dest = &app.compress,
       .help = "offer permessage-deflate (default: not)"},
      {.name = "workers", .kind = KIT_UINT, .dest = &workers, .arg = "N",
       .min = 1, .max = KIT_MAX_WORKERS,
       .help = "N event loops on N threads, connection i on\n"
               "loop i mod N, one report of the sums (for\n"
               "servers on several cores; default 1)"},
      {.name = "json", .kind = KIT_FLAG, .dest = &app.json,
       .help = "one JSON object on stdout instead of a table"},
      {.name = "verbose", .short_name = 'v', .kind = KIT_FLAG,
       .dest = &app.verbose,
       .help = "progress and transport notes on stderr"},
  };
  const kit_cmd cmd = {.name = "load",
                       .synopsis = "URL [OPTIONS]",
                       .about = load_about,
                       .epilog = load_epilog,
                       .opts = opts,
                       .nopts = sizeof opts / sizeof opts[0],
                       .min_pos = 1,
                       .max_pos = 1,
                       .pos_name = "URL"};
  int pr = kit_parse(&cmd, argc, argv, &app.url, NULL);
  if (pr == KIT_PARSE_HELP) return KIT_EXIT_OK;
  if (pr != KIT_PARSE_OK) return KIT_EXIT_USAGE;
  char host[256];
  if (kit_url_host(app.url, host, sizeof host, NULL) != 0) {
    kit_usage_error(&cmd, "URL must be ws://HOST:PORT/PATH or wss://...: '%s'",
                    app.url);
    return KIT_EXIT_USAGE;
  }
  int lo = kit_host_is_loopback(host);
  if (lo != 1) {
    kit_usage_error(&cmd,
                    "%s '%s': the URL must name a loopback host (localhost, "
                    "127.0.0.1, [::1], 127.x.y.z)",
                    lo < 0 ? "cannot resolve" : "not a loopback host", host);
    return KIT_EXIT_USAGE;
  }
  int have_messages = messages != UINT64_MAX;
  app.nconn = (uint32_t)nconn;
  app.per_conn = (uint32_t)per_conn;
  app.size = (size_t)size;
  app.messages = messages;
  app.policy = policy;
  app.duration_ms = duration_ms;
  app.hold_ms = hold_ms;
  if (!have_messages && app.duration_ms == 0) app.duration_ms = 5000;
  app.inflight = inflight ? inflight : app.rate > 0 ? UINT64_MAX : 1;
  app.hdrlen = app.binary ? 16 : 32;
  if (app.size < app.hdrlen) {
    kit_usage_error(&cmd, "--size must be >= %zu for %s messages",
                    app.hdrlen, app.binary ? "binary" : "text");
    return KIT_EXIT_USAGE;
  }
  uint64_t nws = nconn * per_conn;
  if (nws > LOAD_MAX_WS) {
    kit_usage_error(&cmd, "at most %u WebSockets (--connections x "
                          "--streams-per-conn)", LOAD_MAX_WS);
    return KIT_EXIT_USAGE;
  }
  app.nws = (uint32_t)nws;
  app.timeout_ms = timeout_ms ? timeout_ms
                   : have_messages ? 120000
                                   : app.duration_ms + app.hold_ms + 30000;

  /* one descriptor per connection: take the hard limit */
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }

  int code = KIT_EXIT_OK;
  if (workers <= 1) {
    code = load_run(&app, &cmd);
    if (code == KIT_EXIT_OK) {
      load_report(&app);
      code = load_exit_code(&app);
    }
    load_free(&app);
    return code;
  }
  return load_workers(&app, &cmd, (unsigned)workers);
}
