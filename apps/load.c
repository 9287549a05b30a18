/* apps/load.c - `h2ws load URL`: a load generator for WebSockets over
 * HTTP/2 (RFC 8441, N connections x M streams) and HTTP/1.1 (N*M
 * connections) against an echo endpoint on 127.0.0.1: closed loop (K
 * messages in flight per WebSocket) or fixed rate, bounded in time and
 * count; reports throughput, round-trip latency percentiles (log-linear
 * histogram), errors by kind and its own CPU time. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <uv.h>
#include <h2ws/rt.h>

int h2ws_cmd_load(int argc, char **argv);

enum { LOAD_OK = 0, LOAD_USAGE = 1, LOAD_CONNECT = 2, LOAD_FAILED = 3,
       LOAD_LOST = 4 };

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

enum { ERR_CONNECT = 0, ERR_HANDSHAKE, ERR_INTERNAL, ERR_SEND, ERR_BAD_ECHO,
       ERR_OUT_OF_ORDER, ERR_PEER_CLOSE, ERR_ABNORMAL_CLOSE, ERR_RUN_TIMEOUT,
       ERR_COUNT };
static const char *const load_err_names[ERR_COUNT] = {
    "connect", "handshake", "internal", "send", "bad_echo", "out_of_order",
    "closed_by_peer", "abnormal_close", "run_timeout"};

typedef struct load_app load_app;

typedef struct load_ws {
  load_app *app;
  h2ws_rt_ws *ws;
  uint32_t idx;
  int state;
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
  double duration;    /* seconds; 0 = until --messages */
  uint64_t messages;  /* per WebSocket; UINT64_MAX = until --duration */
  double hold;        /* seconds to keep WebSockets open after traffic */
  double timeout;     /* hard cap on the whole run, seconds */
  int policy, insecure, binary, compress, json, verbose;
  /* runtime */
  h2ws_rt *rt;
  uv_loop_t *loop;
  h2ws_client **clients;
  uint32_t nclients;
  load_ws *ws;
  uint32_t nws;
  uv_timer_t tick, phase_timer, deadline;
  int timers_open;
  int phase, stopping, hard_stopped;
  uint32_t opened, failed, ended, unfinished;
  uint64_t t_begin, t_open_done, t0, t_last_recv, t_traffic_end;
  uint64_t sent, recv, lost_dead, bytes_recv;
  uint64_t err[ERR_COUNT];
  uint32_t transport_count[5];
  load_hist hist;
  uint8_t *payload;
  size_t hdrlen;
  struct rusage ru0, ru1;
};

static void load_usage(FILE *f) {
  fprintf(f,
      "usage: h2ws load URL [--connections N] [--streams-per-conn M]\n"
      "                 [--size BYTES] [--inflight K | --rate MSG/S]\n"
      "                 [--duration SECONDS | --messages N] [--hold SECONDS]\n"
      "                 [--timeout SECONDS] [--h2|--h1] [--insecure]\n"
      "                 [--binary] [--compress] [--json] [-v]\n"
      "\n"
      "Load generator for an echo endpoint (e.g. 'h2ws serve' /echo) on\n"
      "127.0.0.1 (ws://127.0.0.1:PORT/PATH or wss://...; other hosts are\n"
      "refused).  Opens N connections each carrying M WebSockets (HTTP/2,\n"
      "RFC 8441: the M share one connection), waits until all are open,\n"
      "then sends messages and checks every echo (length, order).\n"
      "\n"
      "  --connections N       connections (default 1)\n"
      "  --streams-per-conn M  WebSockets per connection (default 1); with\n"
      "                        --h1, N*M HTTP/1.1 connections are opened;\n"
      "                        above the server's cap per connection (100\n"
      "                        for h2ws serve) the runtime opens another\n"
      "                        connection\n"
      "  --size BYTES          message size (default 64; >= 16 binary, >= 32\n"
      "                        text: a send timestamp and a sequence number\n"
      "                        lead each payload)\n"
      "  --inflight K          closed loop: K messages in flight per\n"
      "                        WebSocket, each echo triggers the next send\n"
      "                        (default 1)\n"
      "  --rate R              open loop: R messages/s per WebSocket on a\n"
      "                        fixed schedule (1 ms ticks; a backlog after\n"
      "                        a stall is sent at once); --inflight then\n"
      "                        caps what is outstanding (default none)\n"
      "  --duration S          send for S seconds (default 5 unless\n"
      "                        --messages is given)\n"
      "  --messages N          send N messages per WebSocket (0: none, with\n"
      "                        --hold to keep idle WebSockets open)\n"
      "  --hold S              keep the WebSockets open S seconds after the\n"
      "                        traffic before closing them (default 0)\n"
      "  --timeout S           hard cap on the run (default: duration + hold\n"
      "                        + 30, or 120 with --messages)\n"
      "  --h2                  HTTP/2 only (default; ws:// = h2c prior\n"
      "                        knowledge, wss:// = ALPN h2 + RFC 8441)\n"
      "  --h1                  HTTP/1.1 Upgrade, one connection per WebSocket\n"
      "  --insecure            do not verify the server's certificate\n"
      "  --binary              binary messages (default text)\n"
      "  --compress            offer permessage-deflate (default: not)\n"
      "  --json                one JSON object on stdout instead of a table\n"
      "  -v                    progress and transport notes on stderr\n"
      "\n"
      "Counts: a message is lost if its echo did not come back before the\n"
      "WebSocket closed or the run ended.  'h2ws load: N WebSockets open' is\n"
      "printed on stderr once every WebSocket has opened or failed.\n"
      "\n"
      "exit codes: 0 all WebSockets opened and every message echoed, 1 usage,\n"
      "2 no WebSocket opened, 3 some WebSocket failed or closed abnormally,\n"
      "4 a message was lost or an echo was wrong\n");
}

static uint64_t load_now(void) { return uv_hrtime(); }

/* ---- payload ---------------------------------------------------------------
 * Binary: bytes 0-7 send time (ns, little-endian), 8-15 sequence number.
 * Text: the same two numbers as 16 hex digits each (valid UTF-8). */

static void load_put64(uint8_t *p, uint64_t v, int text) {
  static const char hex[] = "0123456789abcdef";
  if (text) {
    for (int i = 15; i >= 0; i--) {
      p[i] = (uint8_t)hex[v & 15];
      v >>= 4;
    }
  } else {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
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
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
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

static void load_arm_phase(load_app *app, double seconds) {
  uv_timer_stop(&app->phase_timer);
  uv_timer_start(&app->phase_timer, load_on_phase_timer,
                 (uint64_t)(seconds * 1000.0 + 0.5), 0);
}

/* Sends what this WebSocket may send now. */
static void load_ws_fill(load_ws *w, uint64_t now) {
  load_app *app = w->app;
  int text = !app->binary;
  size_t slot = app->hdrlen / 2;
  while (app->phase == P_TRAFFIC && !app->stopping && w->state == WS_OPEN &&
         !w->blocked && !w->close_sent && w->sent < app->messages &&
         w->sent - w->recv < app->inflight) {
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

static void load_on_tick(uv_timer_t *t) {
  load_app *app = t->data;
  uint64_t now = load_now();
  for (uint32_t i = 0; i < app->nws; i++) load_ws_fill(&app->ws[i], now);
}

static void load_start_traffic(load_app *app) {
  if (app->phase != P_OPENING) return;
  app->phase = P_TRAFFIC;
  app->t_open_done = app->t0 = load_now();
  fprintf(stderr, "h2ws load: %u WebSockets open (%u failed) in %.1f ms\n",
          app->opened, app->failed,
          (double)(app->t_open_done - app->t_begin) / 1e6);
  getrusage(RUSAGE_SELF, &app->ru0);
  for (uint32_t i = 0; i < app->nws; i++) {
    load_ws *w = &app->ws[i];
    if (w->state == WS_OPEN && app->messages > 0) {
      w->unfinished = 1;
      app->unfinished++;
    }
  }
  if (app->duration > 0) load_arm_phase(app, app->duration);
  else uv_timer_stop(&app->phase_timer);
  if (app->rate > 0) uv_timer_start(&app->tick, load_on_tick, 1, 1);
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
  if (app->hold > 0 && app->opened > app->ended - app->failed) {
    if (app->verbose)
      fprintf(stderr, "h2ws load: holding %u WebSockets for %.1f s\n",
              app->opened - (app->ended - app->failed), app->hold);
    load_arm_phase(app, app->hold);
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
  else load_arm_phase(app, 10.0); /* closing handshakes: bounded */
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
    load_arm_phase(app, LOAD_DRAIN_MS / 1000.0);
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
  app->opened++;
  h2ws_rt_transport tr = h2ws_rt_ws_transport(ws);
  if ((unsigned)tr < 5) app->transport_count[tr]++;
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
  uint64_t now = load_now();
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
      load_get64(data + app->hdrlen / 2, text, &seq) != 0) {
    app->err[ERR_BAD_ECHO]++;
  } else {
    if (seq != w->recv - 1) app->err[ERR_OUT_OF_ORDER]++;
    hist_record(&app->hist, now > ts ? now - ts : 0);
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

/* The error class of a WebSocket that never opened (the runtime reports
 * an h2ws_error). */
static int load_fail_class(int error) {
  switch (error) {
  case H2WS_ERR_HANDSHAKE:
  case H2WS_ERR_H2_NO_EXTENDED_CONNECT:
  case H2WS_ERR_H2_BAD_RESPONSE:
  case H2WS_ERR_RT_ALPN:
    return ERR_HANDSHAKE;
  case H2WS_ERR_NOMEM:
  case H2WS_ERR_INTERNAL:
  case H2WS_ERR_CALLBACK_FAILURE:
    return ERR_INTERNAL;
  default: /* DNS, connect, TLS, timeout, connection lost */
    return ERR_CONNECT;
  }
}

static void load_on_fail(h2ws_rt_ws *ws, int error, int status,
                         const char *message, void *ud) {
  load_ws *w = ud;
  load_app *app = w->app;
  (void)ws;
  (void)status;
  app->failed++;
  app->err[load_fail_class(error)]++;
  /* print the first failures whatever -v says: they explain the exit code */
  if (app->verbose || app->failed <= 3)
    fprintf(stderr, "h2ws load: ws %u failed: %s\n", w->idx, message);
  load_ws_ended(w);
}

static void load_on_note(h2ws_rt_ws *ws, const char *message, void *ud) {
  load_ws *w = ud;
  (void)ws;
  if (w->app->verbose && w->idx < 4)
    fprintf(stderr, "h2ws load: ws %u: %s\n", w->idx, message);
}

/* ---- report --------------------------------------------------------------- */

static double load_tv(const struct timeval *tv) {
  return (double)tv->tv_sec + (double)tv->tv_usec / 1e6;
}

static const char *load_transport_name(const load_app *app) {
  static const char *const names[5] = {"none", "http/1.1", "http/1.1+tls",
                                       "h2c", "h2"};
  int best = 0;
  for (int i = 1; i < 5; i++)
    if (app->transport_count[i] > app->transport_count[best]) best = i;
  return names[best];
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
  if (app->json) {
    printf("{\"url\":\"%s\",\"transport\":\"%s\",\"connections\":%u,"
           "\"streams_per_conn\":%u,\"size\":%zu,\"binary\":%s,",
           app->url, load_transport_name(app), app->nconn, app->per_conn,
           app->size, app->binary ? "true" : "false");
    if (app->rate > 0) printf("\"rate\":%.3f,", app->rate);
    else printf("\"inflight\":%" PRIu64 ",", app->inflight);
    printf("\"ws_requested\":%u,\"ws_opened\":%u,\"ws_failed\":%u,"
           "\"open_ms\":%.3f,\"messages_sent\":%" PRIu64 ","
           "\"messages_received\":%" PRIu64 ",\"messages_lost\":%" PRIu64
           ",\"bytes_received\":%" PRIu64 ",\"elapsed_s\":%.6f,"
           "\"msg_per_s\":%.1f,\"mb_per_s\":%.3f,",
           app->nws, app->opened, app->failed, open_ms, app->sent, app->recv,
           lost, app->bytes_recv, elapsed, mps, mbs);
    printf("\"latency_us\":{\"samples\":%" PRIu64 ",\"p50\":%.1f,\"p90\":%.1f,"
           "\"p99\":%.1f,\"p99_9\":%.1f,\"max\":%.1f,\"mean\":%.1f},",
           app->hist.n, us[0], us[1], us[2], us[3], us[4], us[5]);
    printf("\"errors\":{");
    for (int i = 0; i < ERR_COUNT; i++)
      printf("%s\"%s\":%" PRIu64, i ? "," : "", load_err_names[i],
             app->err[i]);
    printf("},\"cpu_user_s\":%.6f,\"cpu_sys_s\":%.6f,"
           "\"cpu_us_per_msg\":%.3f}\n", cu, cs, cpu_per_msg);
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
    printf("  WebSockets           %u opened, %u failed (of %u) in %.1f ms\n",
           app->opened, app->failed, app->nws, open_ms);
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

/* ---- options -------------------------------------------------------------- */

static int load_num(const char *s, double min, double max, double *pv) {
  char *end;
  double v = strtod(s, &end);
  if (end == s || *end != '\0' || !(v >= min) || !(v <= max)) return -1;
  *pv = v;
  return 0;
}

/* Only ws://127.0.0.1[:port]/... or wss://127.0.0.1[:port]/... */
static int load_check_url(const char *url, int *ptls) {
  const char *rest;
  if (!strncmp(url, "ws://", 5)) {
    rest = url + 5;
    *ptls = 0;
  } else if (!strncmp(url, "wss://", 6)) {
    rest = url + 6;
    *ptls = 1;
  } else {
    return -1;
  }
  if (strncmp(rest, "127.0.0.1", 9) != 0) return -1;
  rest += 9;
  return (*rest == '\0' || *rest == ':' || *rest == '/') ? 0 : -1;
}

int h2ws_cmd_load(int argc, char **argv) {
  static load_app app; /* the histogram is large: not on the stack */
  memset(&app, 0, sizeof app);
  app.nconn = 1;
  app.per_conn = 1;
  app.size = 64;
  app.inflight = 0;
  app.messages = UINT64_MAX;
  app.policy = H2WS_RT_POLICY_H2;
  int have_messages = 0, have_inflight = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    int more = i + 1 < argc;
    double v;
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      load_usage(stdout);
      return LOAD_OK;
    } else if (!strcmp(a, "--connections") && more) {
      if (load_num(argv[++i], 1, LOAD_MAX_WS, &v)) goto bad;
      app.nconn = (uint32_t)v;
    } else if (!strcmp(a, "--streams-per-conn") && more) {
      if (load_num(argv[++i], 1, LOAD_MAX_WS, &v)) goto bad;
      app.per_conn = (uint32_t)v;
    } else if (!strcmp(a, "--size") && more) {
      if (load_num(argv[++i], 1, LOAD_MAX_SIZE, &v)) goto bad;
      app.size = (size_t)v;
    } else if (!strcmp(a, "--rate") && more) {
      if (load_num(argv[++i], 0.001, 1e7, &v)) goto bad;
      app.rate = v;
    } else if (!strcmp(a, "--inflight") && more) {
      if (load_num(argv[++i], 1, 1e6, &v)) goto bad;
      app.inflight = (uint64_t)v;
      have_inflight = 1;
    } else if (!strcmp(a, "--duration") && more) {
      if (load_num(argv[++i], 0.001, 86400, &v)) goto bad;
      app.duration = v;
    } else if (!strcmp(a, "--messages") && more) {
      if (load_num(argv[++i], 0, 1e12, &v)) goto bad;
      app.messages = (uint64_t)v;
      have_messages = 1;
    } else if (!strcmp(a, "--hold") && more) {
      if (load_num(argv[++i], 0, 86400, &v)) goto bad;
      app.hold = v;
    } else if (!strcmp(a, "--timeout") && more) {
      if (load_num(argv[++i], 0.1, 86400, &v)) goto bad;
      app.timeout = v;
    } else if (!strcmp(a, "--h2")) {
      app.policy = H2WS_RT_POLICY_H2;
    } else if (!strcmp(a, "--h1")) {
      app.policy = H2WS_RT_POLICY_H1;
    } else if (!strcmp(a, "--insecure") || !strcmp(a, "-k")) {
      app.insecure = 1;
    } else if (!strcmp(a, "--binary")) {
      app.binary = 1;
    } else if (!strcmp(a, "--compress")) {
      app.compress = 1;
    } else if (!strcmp(a, "--json")) {
      app.json = 1;
    } else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
      app.verbose = 1;
    } else if (a[0] == '-' || app.url) {
      fprintf(stderr, "h2ws: load: unknown, incomplete or extra argument "
                      "'%s'\n", a);
      fprintf(stderr, "run 'h2ws load --help' for the options\n");
      return LOAD_USAGE;
    } else {
      app.url = a;
    }
    continue;
  bad:
    fprintf(stderr, "h2ws: load: bad value for %s: '%s'\n", a, argv[i]);
    return LOAD_USAGE;
  }
  int tls = 0;
  if (!app.url || load_check_url(app.url, &tls) != 0) {
    fprintf(stderr, "h2ws: load: a ws:// or wss:// URL on 127.0.0.1 is "
                    "required (run 'h2ws load --help')\n");
    return LOAD_USAGE;
  }
  if (app.duration > 0 && have_messages) {
    fprintf(stderr, "h2ws: load: --duration and --messages exclude each "
                    "other\n");
    return LOAD_USAGE;
  }
  if (!have_messages && app.duration == 0) app.duration = 5;
  if (!have_inflight) app.inflight = app.rate > 0 ? UINT64_MAX : 1;
  app.hdrlen = app.binary ? 16 : 32;
  if (app.size < app.hdrlen) {
    fprintf(stderr, "h2ws: load: --size must be >= %zu for %s messages\n",
            app.hdrlen, app.binary ? "binary" : "text");
    return LOAD_USAGE;
  }
  uint64_t nws = (uint64_t)app.nconn * app.per_conn;
  if (nws > LOAD_MAX_WS) {
    fprintf(stderr, "h2ws: load: at most %u WebSockets\n", LOAD_MAX_WS);
    return LOAD_USAGE;
  }
  app.nws = (uint32_t)nws;
  if (app.timeout == 0)
    app.timeout = have_messages ? 120 : app.duration + app.hold + 30;

  /* one descriptor per connection: take the hard limit */
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }

  int code = LOAD_OK;
  app.payload = malloc(app.size);
  app.ws = calloc(app.nws, sizeof *app.ws);
  /* HTTP/2: one client per connection (a client pools one connection per
   * origin); HTTP/1.1: each WebSocket has its own connection anyway */
  app.nclients = app.policy == H2WS_RT_POLICY_H1 ? 1 : app.nconn;
  app.clients = calloc(app.nclients, sizeof *app.clients);
  if (!app.payload || !app.ws || !app.clients) {
    fprintf(stderr, "h2ws: load: out of memory\n");
    free(app.payload);
    free(app.ws);
    free(app.clients);
    return LOAD_CONNECT;
  }
  for (size_t i = 0; i < app.size; i++)
    app.payload[i] = (uint8_t)(app.binary ? (i * 131u + 7u) & 0xff
                                          : 'a' + i % 26);

  h2ws_client_settings cs;
  h2ws_client_settings_default(&cs);
  cs.insecure = app.insecure;
  cs.close_idle = 1;
  uint64_t maxmsg = app.size < 65536 ? 65536 : app.size;
  cs.ws.max_message_size = maxmsg;
  cs.ws.max_frame_size = maxmsg;
  {
    /* room for what may be in flight, bounded: BUFFER_FULL beyond */
    uint64_t k = app.inflight == UINT64_MAX ? 64 : app.inflight;
    uint64_t out = k * (app.size + 14) + 65536;
    if (out > 256u * 1024 * 1024) out = 256u * 1024 * 1024;
    cs.ws.max_output = (size_t)out;
  }
  h2ws_client_ws_options wo;
  h2ws_client_ws_options_default(&wo);
  wo.policy = app.policy;
  wo.compress = app.compress;

  if (h2ws_rt_new(&app.rt, NULL) != 0) {
    fprintf(stderr, "h2ws: load: cannot start the runtime\n");
    code = LOAD_CONNECT;
    goto out;
  }
  for (uint32_t i = 0; i < app.nclients; i++)
    if (h2ws_client_new(&app.clients[i], app.rt, &cs) != 0) {
      fprintf(stderr, "h2ws: load: cannot create a client\n");
      code = LOAD_CONNECT;
      goto out;
    }
  app.loop = h2ws_rt_uv_loop(app.rt);
  uv_timer_init(app.loop, &app.tick);
  uv_timer_init(app.loop, &app.phase_timer);
  uv_timer_init(app.loop, &app.deadline);
  app.tick.data = app.phase_timer.data = app.deadline.data = &app;
  app.timers_open = 1;
  uv_timer_start(&app.deadline, load_on_deadline,
                 (uint64_t)(app.timeout * 1000.0), 0);
  load_arm_phase(&app, LOAD_OPEN_TIMEOUT_MS / 1000.0);

  static const h2ws_rt_ws_callbacks cbs = {
      .on_open = load_on_open,
      .on_message = load_on_message,
      .on_close = load_on_close,
      .on_writable = load_on_writable,
      .on_fail = load_on_fail,
      .on_note = load_on_note,
  };
  app.t_begin = load_now();
  for (uint32_t i = 0; i < app.nws && app.phase == P_OPENING; i++) {
    load_ws *w = &app.ws[i];
    w->app = &app;
    w->idx = i;
    w->phase = (double)i / (double)app.nws;
    h2ws_client *cl = app.clients[app.nclients == 1 ? 0 : i / app.per_conn];
    int rv = h2ws_client_open(cl, app.url, &wo, &cbs, w, NULL);
    if (rv != 0) {
      fprintf(stderr, "h2ws: load: %s\n", h2ws_client_last_error(cl));
      app.failed++;
      app.err[ERR_INTERNAL]++;
      load_ws_ended(w);
    }
  }
  h2ws_rt_run(app.rt);
  load_finish(&app); /* if the loop ended on its own */
  load_report(&app);
  if (app.opened == 0) code = LOAD_CONNECT;
  else if (app.failed || app.err[ERR_PEER_CLOSE] ||
           app.err[ERR_ABNORMAL_CLOSE] || app.err[ERR_RUN_TIMEOUT])
    code = LOAD_FAILED;
  else if (app.sent != app.recv || app.err[ERR_SEND] ||
           app.err[ERR_BAD_ECHO] || app.err[ERR_OUT_OF_ORDER])
    code = LOAD_LOST;
out:
  for (uint32_t i = 0; i < app.nclients; i++) h2ws_client_del(app.clients[i]);
  if (app.rt) {
    h2ws_rt_run(app.rt); /* let closed handles finish */
    h2ws_rt_del(app.rt);
  }
  free(app.payload);
  free(app.ws);
  free(app.clients);
  return code;
}
