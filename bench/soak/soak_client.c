/* bench/soak/soak_client.c - the soak's traffic and its bookkeeping (issue 9,
 * `make soak`; bench/soak/soak.py starts it).
 *
 * Opens many WebSockets on the library's own client API (h2ws/rt.h), of
 * the targets given with --target (a URL, a transport policy, deflate on
 * or off, a mode, a count), and keeps each of them busy for --seconds:
 *
 *   echo   messages of mixed sizes (40 B .. 256 KiB, text or binary) to an
 *          echo route; every echo must come back whole, in order, once;
 *   stall  as echo, but the reader stops now and then for seconds
 *          (on_message returns H2WS_ERR_PAUSE) while the writer keeps
 *          going until its output is full, then resumes: everything must
 *          still come back;
 *   chat   members of a broadcast room (binary messages are relayed as
 *          they are): each member sees its own messages back in order
 *          and once, and every other sender's in increasing order with
 *          no gap and no duplicate.
 *
 * Every message carries "IIIIIIII SSSSSSSS LLLLLLLL CCCCCCCC " (hex: the
 * WebSocket's id, the sequence number, the whole length, a CRC-32 of the
 * first 27 header bytes and the body), then the body.  A WebSocket that
 * ends gets a new id when it reopens.
 *
 * Faults of the client's own: --abort-every S ends a random open
 * WebSocket at once (h2ws_rt_ws_abort: RST_STREAM CANCEL on HTTP/2, the
 * connection closed on HTTP/1.1); --rotate-every S closes every WebSocket
 * of one of a target's h2ws_client objects (after their echoes are in),
 * sends GOAWAY on its HTTP/2 connections (h2ws_client_close_idle) and
 * opens the WebSockets again on a new client.
 *
 * Accounting: messages still in flight when a WebSocket ends other than
 * by our own clean close are "lost" with the close code and reason as the
 * cause; each such close is a line of --events (JSON, with the wall-clock
 * time) so that the orchestrator can match it with the fault that caused
 * it.  A message missing from the middle of a live WebSocket (a gap), a
 * duplicate, a corrupted or misrouted message, or one still missing when
 * the run ends, is counted as such.  --report gets the totals (JSON).
 *
 *   soak_client --seconds N --target SPEC [--target SPEC...] [--insecure]
 *               [--rate R] [--abort-every S] [--rotate-every S]
 *               [--seed N] [--events FILE] [--report FILE]
 *   SPEC: name=NAME,url=URL,policy=auto|h1|h2,deflate=0|1,
 *         mode=echo|stall|chat,n=COUNT[,clients=K]
 *
 * Exit status: 0 if nothing was duplicated, corrupted, or lost without a
 * cause (the orchestrator judges the causes), 1 otherwise, 2 on usage. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <uv.h>
#include <zlib.h>

#include <h2ws/rt.h>

#define HDR 36          /* "%08x %08x %08x %08x " */
#define MAX_MSG (256 * 1024)
#define MAX_TARGETS 32
#define MAX_KEYS 64     /* close causes kept apart in the report */

enum { M_ECHO, M_STALL, M_CHAT };
enum { S_IDLE, S_OPENING, S_OPEN, S_CLOSING };

typedef struct target {
  char name[40];
  char url[256];
  h2ws_rt_policy policy;
  int compress, mode, count, nclients;
  h2ws_client **cls;
  /* figures */
  uint64_t sent, echoed, lost, opens, fails, closes_clean;
} target;

typedef struct pend {
  uint32_t seq, len, crc;
  uint8_t op;
} pend;

typedef struct peer {
  uint32_t id, last;
} peer;

typedef struct slot {
  target *t;
  int idx, state, cli;
  h2ws_client *cl;     /* the client this incarnation was opened on */
  h2ws_rt_ws *ws;
  uint32_t id, next_seq;
  pend *q;             /* in flight, oldest first (a ring) */
  size_t qhead, qlen, qcap;
  uint64_t next_send, reopen_at, stall_until, next_stall;
  int paused, blocked, closing_by_us, aborted, want_close, compressed;
  const char *why;     /* why we closed or aborted */
  peer *peers;         /* chat: last sequence seen per other sender */
  size_t npeers, peercap;
  int fails_in_row;
} slot;

typedef struct cause {
  char key[96];
  uint64_t closes, lost;
} cause;

static struct {
  h2ws_rt *rt;
  uv_loop_t *loop;
  uv_timer_t tick;
  target targets[MAX_TARGETS];
  int ntargets;
  slot *slots;
  size_t nslots;
  h2ws_client_settings cset;
  double rate;         /* messages per second per WebSocket */
  double abort_every, rotate_every;
  uint64_t start, end_at, drain_until, next_abort, next_rotate, next_line;
  int ending, done;
  uint32_t next_id;
  uint64_t rng;
  FILE *events;
  const char *report;
  uint8_t *buf;
  /* old clients (rotated) waiting to be deleted */
  h2ws_client *old[64];
  uint64_t old_at[64];
  int nold;
  /* totals */
  uint64_t sent, sent_bytes, echoed, echoed_bytes, lost, dup, corrupt,
      misrouted, gaps, end_missing, opens, fails, aborts, rotations,
      stalls, send_errors, closes;
  uint64_t chat_own, chat_others, chat_gaps, chat_dup;
  cause causes[MAX_KEYS];
  int ncauses;
  cause failcauses[MAX_KEYS];
  int nfailcauses;
} S;

/* ---- small helpers -------------------------------------------------------- */

static uint64_t rnd(void) { /* xorshift64* */
  S.rng ^= S.rng >> 12;
  S.rng ^= S.rng << 25;
  S.rng ^= S.rng >> 27;
  return S.rng * 2685821657736338717ULL;
}
static uint64_t rnd_range(uint64_t lo, uint64_t hi) { /* [lo, hi] */
  return lo + rnd() % (hi - lo + 1);
}
static double rnd_unit(void) { return (double)(rnd() >> 11) / 9007199254740992.0; }

static uint64_t now_ms(void) { return h2ws_rt_now(S.rt); }
static uint64_t wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void count_cause(cause *tab, int *n, const char *key, uint64_t lost) {
  for (int i = 0; i < *n; i++)
    if (!strcmp(tab[i].key, key)) {
      tab[i].closes++;
      tab[i].lost += lost;
      return;
    }
  int i;
  if (*n < MAX_KEYS - 1) {
    i = (*n)++;
    snprintf(tab[i].key, sizeof tab[i].key, "%s", key);
  } else { /* the last one collects the rest */
    i = MAX_KEYS - 1;
    if (*n < MAX_KEYS) (*n)++;
    snprintf(tab[i].key, sizeof tab[i].key, "other");
  }
  tab[i].closes++;
  tab[i].lost += lost;
}

/* JSON string contents: printable ASCII kept, the rest as '?'. */
static void json_str(FILE *f, const char *s, size_t n) {
  fputc('"', f);
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\') fputc('\\', f), fputc(c, f);
    else if (c < 0x20 || c >= 0x7f) fputc('?', f);
    else fputc(c, f);
  }
  fputc('"', f);
}

/* ---- messages ------------------------------------------------------------- */

static uint32_t pick_len(int chat) {
  uint64_t r = rnd() % 1000;
  uint32_t lo, hi;
  if (r < 600) lo = HDR + 4, hi = 256;
  else if (r < 850) lo = 257, hi = 4096;
  else if (r < 970) lo = 4097, hi = 65536;
  else lo = 65537, hi = MAX_MSG;
  if (chat && hi > 16384) lo = 4097, hi = 16384; /* fan-out: keep it small */
  return (uint32_t)rnd_range(lo, hi);
}

/* Fills buf with a message; returns its CRC. */
static uint32_t build(uint8_t *buf, uint32_t id, uint32_t seq, uint32_t len,
                      h2ws_opcode op) {
  char h[HDR + 1];
  snprintf(h, sizeof h, "%08" PRIx32 " %08" PRIx32 " %08" PRIx32 " ", id, seq, len);
  memcpy(buf, h, 27);
  uint64_t x = ((uint64_t)id << 32 | seq) * 0x9E3779B97F4A7C15ULL | 1;
  int lowent = (seq % 3) == 0; /* some messages compress well */
  for (uint32_t i = HDR; i < len; i++) {
    if (lowent && i % 64 >= 8) {
      buf[i] = buf[i - 8];
      continue;
    }
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    uint8_t b = (uint8_t)((x * 2685821657736338717ULL) >> 56);
    buf[i] = op == H2WS_OP_TEXT ? (uint8_t)('a' + b % 26) : b;
  }
  uLong c = crc32(0L, Z_NULL, 0);
  c = crc32(c, buf, 27);
  c = crc32(c, buf + HDR, len - HDR);
  snprintf(h, sizeof h, "%08lx ", (unsigned long)c);
  memcpy(buf + 27, h, 9);
  return (uint32_t)c;
}

static int hex8(const uint8_t *p, uint32_t *v) {
  uint32_t r = 0;
  for (int i = 0; i < 8; i++) {
    uint8_t c = p[i];
    uint32_t d;
    if (c >= '0' && c <= '9') d = c - '0';
    else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
    else return -1;
    r = r << 4 | d;
  }
  *v = r;
  return p[8] == ' ' ? 0 : -1;
}

/* Parses and checks a message: 0 with id/seq, -1 if corrupted. */
static int parse(const uint8_t *d, size_t n, uint32_t *id, uint32_t *seq,
                 uint32_t *crc) {
  uint32_t len, c;
  if (n < HDR || hex8(d, id) || hex8(d + 9, seq) || hex8(d + 18, &len) ||
      hex8(d + 27, &c) || len != n)
    return -1;
  uLong k = crc32(0L, Z_NULL, 0);
  k = crc32(k, d, 27);
  k = crc32(k, d + HDR, (uInt)(n - HDR));
  if ((uint32_t)k != c) return -1;
  *crc = c;
  return 0;
}

/* ---- the in-flight queue -------------------------------------------------- */

static void q_push(slot *s, pend p) {
  if (s->qlen == s->qcap) {
    size_t ncap = s->qcap ? s->qcap * 2 : 16;
    pend *nq = malloc(ncap * sizeof *nq);
    if (!nq) abort();
    for (size_t i = 0; i < s->qlen; i++) nq[i] = s->q[(s->qhead + i) % s->qcap];
    free(s->q);
    s->q = nq;
    s->qcap = ncap;
    s->qhead = 0;
  }
  s->q[(s->qhead + s->qlen) % s->qcap] = p;
  s->qlen++;
}
static pend *q_head(slot *s) { return s->qlen ? &s->q[s->qhead] : NULL; }
static void q_pop(slot *s) {
  s->qhead = (s->qhead + 1) % s->qcap;
  s->qlen--;
}

/* ---- one WebSocket -------------------------------------------------------- */

static void slot_open(slot *s);

static const char *mode_name(int m) {
  return m == M_ECHO ? "echo" : m == M_STALL ? "stall" : "chat";
}

static void event(slot *s, const char *kind, int code, const char *reason,
                  size_t reasonlen, uint64_t lost) {
  if (!S.events) return;
  fprintf(S.events, "{\"t\":%" PRIu64 ",\"kind\":\"%s\",\"target\":\"%s\",\"mode\":\"%s\","
          "\"id\":%" PRIu32 ",\"code\":%d,\"reason\":",
          wall_ms(), kind, s->t->name, mode_name(s->t->mode), s->id, code);
  json_str(S.events, reason ? reason : "", reason ? reasonlen : 0);
  fprintf(S.events, ",\"by_us\":%s,\"lost\":%" PRIu64 "}\n",
          s->why ? "true" : "false", lost);
}

static void slot_reset(slot *s) {
  s->ws = NULL;
  s->qhead = s->qlen = 0;
  s->npeers = 0;
  s->paused = s->blocked = s->closing_by_us = s->aborted = s->want_close = 0;
  s->why = NULL;
}

static void slot_schedule_reopen(slot *s, uint64_t delay) {
  s->state = S_IDLE;
  s->reopen_at = now_ms() + delay;
}

static void on_open(h2ws_rt_ws *ws, void *ud) {
  slot *s = ud;
  s->state = S_OPEN;
  s->fails_in_row = 0;
  s->compressed = h2ws_rt_ws_compressed(ws);
  s->t->opens++;
  S.opens++;
  uint64_t now = now_ms();
  s->next_send = now + (uint64_t)(rnd_unit() * 1000.0 / S.rate);
  s->next_stall = now + rnd_range(3000, 15000);
}

static void check_own(slot *s, h2ws_opcode op, uint32_t seq, uint32_t crc,
                      size_t n) {
  pend *h = q_head(s);
  if (!h || seq < h->seq) {
    S.dup++;
    return;
  }
  while (h && h->seq < seq) { /* missing from a live WebSocket */
    S.gaps++;
    q_pop(s);
    h = q_head(s);
  }
  if (!h || h->seq != seq || h->crc != crc || h->len != n ||
      (s->t->mode != M_CHAT && h->op != op)) {
    S.corrupt++;
    if (h && h->seq == seq) q_pop(s);
    return;
  }
  q_pop(s);
  S.echoed++;
  S.echoed_bytes += n;
  s->t->echoed++;
  if (s->t->mode == M_CHAT) S.chat_own++;
}

static void check_peer(slot *s, uint32_t id, uint32_t seq) {
  for (size_t i = 0; i < s->npeers; i++)
    if (s->peers[i].id == id) {
      if (seq <= s->peers[i].last) S.chat_dup++;
      else {
        if (seq != s->peers[i].last + 1) S.chat_gaps += seq - s->peers[i].last - 1;
        s->peers[i].last = seq;
        S.chat_others++;
      }
      return;
    }
  if (s->npeers == s->peercap) {
    size_t ncap = s->peercap ? s->peercap * 2 : 16;
    peer *np = realloc(s->peers, ncap * sizeof *np);
    if (!np) abort();
    s->peers = np;
    s->peercap = ncap;
  }
  s->peers[s->npeers].id = id;
  s->peers[s->npeers++].last = seq;
  S.chat_others++;
}

static int on_message(h2ws_rt_ws *ws, h2ws_opcode op, const uint8_t *d,
                      size_t n, void *ud) {
  slot *s = ud;
  (void)ws;
  if (s->t->mode == M_CHAT && op == H2WS_OP_TEXT) return 0; /* notices */
  uint32_t id, seq, crc;
  if (parse(d, n, &id, &seq, &crc) != 0) {
    S.corrupt++;
    return 0;
  }
  if (id == s->id) check_own(s, op, seq, crc, n);
  else if (s->t->mode == M_CHAT) check_peer(s, id, seq);
  else S.misrouted++;
  if (s->t->mode == M_STALL && !S.ending && !s->paused &&
      now_ms() >= s->next_stall) {
    s->paused = 1;
    s->stall_until = now_ms() + rnd_range(2000, 8000);
    S.stalls++;
    return H2WS_ERR_PAUSE;
  }
  return 0;
}

static void on_writable(h2ws_rt_ws *ws, void *ud) {
  slot *s = ud;
  (void)ws;
  s->blocked = 0;
}

static void on_close(h2ws_rt_ws *ws, uint16_t code, const uint8_t *reason,
                     size_t reasonlen, void *ud) {
  slot *s = ud;
  (void)ws;
  uint64_t lost = s->qlen;
  int clean = s->closing_by_us && code == H2WS_CLOSE_NORMAL && lost == 0;
  S.closes++;
  if (clean) {
    s->t->closes_clean++;
  } else {
    char key[96];
    if (s->aborted)
      snprintf(key, sizeof key, "client abort (%s)", s->why);
    else if (s->why)
      snprintf(key, sizeof key, "client %s: %u", s->why, (unsigned)code);
    else
      snprintf(key, sizeof key, "%u %.*s", (unsigned)code,
               (int)(reasonlen > 60 ? 60 : reasonlen), (const char *)reason);
    count_cause(S.causes, &S.ncauses, key, lost);
    S.lost += lost;
    s->t->lost += lost;
    event(s, "close", code, (const char *)reason, reasonlen, lost);
  }
  slot_reset(s);
  if (!S.ending) slot_schedule_reopen(s, rnd_range(100, 600));
  else s->state = S_IDLE;
}

static void on_fail(h2ws_rt_ws *ws, int error, int status, const char *msg,
                    void *ud) {
  slot *s = ud;
  (void)ws;
  (void)status;
  char key[96];
  snprintf(key, sizeof key, "%s", msg ? msg : h2ws_strerror(error));
  count_cause(S.failcauses, &S.nfailcauses, key, 0);
  S.fails++;
  s->t->fails++;
  event(s, "fail", error, msg, msg ? strlen(msg) : 0, 0);
  slot_reset(s);
  s->fails_in_row++;
  uint64_t back = 200u << (s->fails_in_row < 4 ? s->fails_in_row : 4);
  if (!S.ending) slot_schedule_reopen(s, rnd_range(back / 2, back));
  else s->state = S_IDLE;
}

static const h2ws_rt_ws_callbacks cbs = {
    .on_open = on_open,
    .on_message = on_message,
    .on_close = on_close,
    .on_writable = on_writable,
    .on_fail = on_fail,
};

static void slot_open(slot *s) {
  target *t = s->t;
  h2ws_client_ws_options o;
  h2ws_client_ws_options_default(&o);
  o.policy = t->policy;
  o.compress = t->compress;
  slot_reset(s);
  s->id = ++S.next_id;
  s->next_seq = 1;
  s->cli = s->idx % t->nclients;
  s->cl = t->cls[s->cli];
  s->state = S_OPENING;
  h2ws_rt_ws *ws = NULL;
  int rv = h2ws_client_open(s->cl, t->url, &o, &cbs, s, &ws);
  if (rv != 0) {
    fprintf(stderr, "soak_client: open %s: %s\n", t->url, h2ws_client_last_error(s->cl));
    exit(2);
  }
  /* on_fail may have fired inside the call */
  if (s->state == S_OPENING) s->ws = ws;
}

static void slot_send(slot *s, uint64_t now) {
  int stall = s->t->mode == M_STALL;
  size_t window = stall ? 256 : 4;
  while (s->qlen < window) {
    if (!stall || !s->paused) {
      if (now < s->next_send) return;
    }
    h2ws_opcode op = s->t->mode != M_CHAT && rnd() % 4 == 0 ? H2WS_OP_TEXT
                                                            : H2WS_OP_BINARY;
    uint32_t len = pick_len(s->t->mode == M_CHAT);
    if (stall && s->paused && len > 4096) len = 4096;
    uint32_t crc = build(S.buf, s->id, s->next_seq, len, op);
    int rv = h2ws_rt_ws_send(s->ws, op, S.buf, len);
    if (rv == H2WS_ERR_BUFFER_FULL) {
      s->blocked = 1;
      return;
    }
    if (rv != 0) {
      S.send_errors++;
      return;
    }
    pend p = {s->next_seq++, len, crc, (uint8_t)op};
    q_push(s, p);
    S.sent++;
    S.sent_bytes += len;
    s->t->sent++;
    double gap = -log(1.0 - rnd_unit() * 0.999) * 1000.0 / S.rate;
    s->next_send = now + (uint64_t)gap;
    if (!stall || !s->paused) return; /* one at a time, paced */
  }
}

/* ---- faults of the client's own ------------------------------------------- */

static slot *random_open(int not_chat) {
  for (int tries = 0; tries < 64; tries++) {
    slot *s = &S.slots[rnd() % S.nslots];
    if (s->state == S_OPEN && !s->closing_by_us && !s->want_close &&
        (!not_chat || s->t->mode != M_CHAT))
      return s;
  }
  return NULL;
}

static void fault_abort(void) {
  slot *s = random_open(0);
  if (!s) return;
  h2ws_rt_transport tr = h2ws_rt_ws_transport(s->ws);
  s->aborted = 1;
  s->why = tr >= H2WS_RT_H2C ? "RST_STREAM" : "h1 connection closed";
  if (h2ws_rt_ws_abort(s->ws) == 0) S.aborts++;
}

static void fault_rotate(void) {
  /* one client object of a random target */
  target *t = &S.targets[rnd() % S.ntargets];
  int ci = (int)(rnd() % (uint64_t)t->nclients);
  if (S.nold == 64) return;
  h2ws_client *old = t->cls[ci], *nw = NULL;
  if (h2ws_client_new(&nw, S.rt, &S.cset) != 0) return;
  t->cls[ci] = nw;
  S.old[S.nold] = old;
  S.old_at[S.nold++] = now_ms() + 15000;
  for (size_t i = 0; i < S.nslots; i++) {
    slot *s = &S.slots[i];
    if (s->cl != old) continue;
    if (s->state == S_OPEN) {
      s->want_close = 1; /* closed once its echoes are in */
    }
  }
  h2ws_client_close_idle(old); /* GOAWAY as each connection empties */
  S.rotations++;
}

/* ---- the clock ------------------------------------------------------------- */

static void print_line(const char *what) {
  size_t open = 0;
  for (size_t i = 0; i < S.nslots; i++) open += S.slots[i].state == S_OPEN;
  fprintf(stderr,
          "soak_client: %s t=%" PRIu64 "s open=%zu sent=%" PRIu64 " echoed=%" PRIu64
          " lost=%" PRIu64 " dup=%" PRIu64 " corrupt=%" PRIu64 " gaps=%" PRIu64
          " chat_gaps=%" PRIu64 " opens=%" PRIu64 " fails=%" PRIu64 "\n",
          what, (now_ms() - S.start) / 1000, open, S.sent, S.echoed, S.lost,
          S.dup + S.chat_dup, S.corrupt + S.misrouted, S.gaps, S.chat_gaps,
          S.opens, S.fails);
}

static void finish(void);

/* Before h2ws_client_del(): what it ends is ours. */
static void mark_client(h2ws_client *cl, const char *why) {
  for (size_t i = 0; i < S.nslots; i++)
    if (S.slots[i].cl == cl && S.slots[i].state != S_IDLE) S.slots[i].why = why;
}

static void on_tick(uv_timer_t *t) {
  (void)t;
  uint64_t now = now_ms();
  if (!S.ending && now >= S.end_at) {
    S.ending = 1;
    S.drain_until = now + 20000;
    print_line("ending");
  }
  if (now >= S.next_line) {
    S.next_line = now + 10000;
    print_line("at");
  }
  if (!S.ending && S.abort_every > 0 && now >= S.next_abort) {
    fault_abort();
    S.next_abort = now + (uint64_t)(S.abort_every * 1000 * (0.5 + rnd_unit()));
  }
  if (!S.ending && S.rotate_every > 0 && now >= S.next_rotate) {
    fault_rotate();
    S.next_rotate = now + (uint64_t)(S.rotate_every * 1000 * (0.5 + rnd_unit()));
  }
  for (int i = 0; i < S.nold;) {
    if (now >= S.old_at[i]) {
      mark_client(S.old[i], "rotate-deleted");
      h2ws_client_del(S.old[i]); /* what is left of it ends now */
      S.old[i] = S.old[--S.nold];
      S.old_at[i] = S.old_at[S.nold];
    } else {
      i++;
    }
  }
  size_t busy = 0;
  for (size_t i = 0; i < S.nslots; i++) {
    slot *s = &S.slots[i];
    if (s->state == S_IDLE) {
      if (!S.ending && now >= s->reopen_at) slot_open(s);
      continue;
    }
    busy++;
    if (s->state != S_OPEN) continue;
    if (s->paused && (now >= s->stall_until || S.ending)) {
      s->paused = 0;
      s->next_stall = now + rnd_range(5000, 20000);
      h2ws_rt_ws_resume(s->ws);
    }
    if (S.ending || s->want_close) {
      if (s->qlen == 0 || (S.ending && now >= S.drain_until)) {
        if (s->qlen) { /* never came back */
          S.end_missing += s->qlen;
          event(s, "end-missing", 0, "", 0, s->qlen);
          s->qhead = s->qlen = 0;
        }
        s->closing_by_us = 1;
        s->why = S.ending ? "done" : "rotate";
        s->state = S_CLOSING;
        h2ws_rt_ws_close(s->ws, H2WS_CLOSE_NORMAL, S.ending ? "done" : "rotate");
      }
      continue;
    }
    if (!s->blocked) slot_send(s, now);
  }
  if (S.ending && (busy == 0 || now >= S.drain_until + 10000)) finish();
}

/* ---- the report ------------------------------------------------------------ */

static void write_causes(FILE *f, const char *name, const cause *c, int n) {
  fprintf(f, "  \"%s\": [", name);
  for (int i = 0; i < n; i++) {
    fprintf(f, "%s\n    {\"cause\": ", i ? "," : "");
    json_str(f, c[i].key, strlen(c[i].key));
    fprintf(f, ", \"closes\": %" PRIu64 ", \"lost\": %" PRIu64 "}", c[i].closes, c[i].lost);
  }
  fprintf(f, "]");
}

static void write_report(void) {
  FILE *f = S.report ? fopen(S.report, "w") : stdout;
  if (!f) {
    perror(S.report);
    return;
  }
  fprintf(f, "{\n  \"seconds\": %.1f,\n  \"websockets\": %zu,\n", (double)(now_ms() - S.start) / 1000,
          S.nslots);
  fprintf(f,
          "  \"sent\": %" PRIu64 ", \"sent_bytes\": %" PRIu64 ", \"echoed\": %" PRIu64
          ", \"echoed_bytes\": %" PRIu64 ",\n  \"lost\": %" PRIu64 ", \"duplicated\": %" PRIu64
          ", \"corrupted\": %" PRIu64 ", \"misrouted\": %" PRIu64 ", \"gaps\": %" PRIu64
          ", \"end_missing\": %" PRIu64 ",\n",
          S.sent, S.sent_bytes, S.echoed, S.echoed_bytes, S.lost, S.dup, S.corrupt,
          S.misrouted, S.gaps, S.end_missing);
  fprintf(f,
          "  \"chat_own\": %" PRIu64 ", \"chat_others\": %" PRIu64 ", \"chat_gaps\": %" PRIu64
          ", \"chat_duplicated\": %" PRIu64 ",\n",
          S.chat_own, S.chat_others, S.chat_gaps, S.chat_dup);
  fprintf(f,
          "  \"opens\": %" PRIu64 ", \"open_failures\": %" PRIu64 ", \"closes\": %" PRIu64
          ", \"aborts\": %" PRIu64 ", \"rotations\": %" PRIu64 ", \"stalls\": %" PRIu64
          ", \"send_errors\": %" PRIu64 ",\n",
          S.opens, S.fails, S.closes, S.aborts, S.rotations, S.stalls, S.send_errors);
  write_causes(f, "lost_by_cause", S.causes, S.ncauses);
  fprintf(f, ",\n");
  write_causes(f, "open_failures_by_cause", S.failcauses, S.nfailcauses);
  fprintf(f, ",\n  \"targets\": [");
  for (int i = 0; i < S.ntargets; i++) {
    target *t = &S.targets[i];
    fprintf(f,
            "%s\n    {\"name\": \"%s\", \"url\": \"%s\", \"mode\": \"%s\", \"deflate\": %d, "
            "\"n\": %d, \"sent\": %" PRIu64 ", \"echoed\": %" PRIu64 ", \"lost\": %" PRIu64
            ", \"opens\": %" PRIu64 ", \"open_failures\": %" PRIu64 "}",
            i ? "," : "", t->name, t->url, mode_name(t->mode), t->compress, t->count, t->sent,
            t->echoed, t->lost, t->opens, t->fails);
  }
  fprintf(f, "]\n}\n");
  if (f != stdout) fclose(f);
}

static void finish(void) {
  if (S.done) return;
  S.done = 1;
  uv_timer_stop(&S.tick);
  uv_close((uv_handle_t *)&S.tick, NULL);
  for (int i = 0; i < S.nold; i++) {
    mark_client(S.old[i], "rotate-deleted");
    h2ws_client_del(S.old[i]);
  }
  S.nold = 0;
  for (int i = 0; i < S.ntargets; i++)
    for (int c = 0; c < S.targets[i].nclients; c++) {
      mark_client(S.targets[i].cls[c], "end-cut");
      h2ws_client_del(S.targets[i].cls[c]);
      S.targets[i].cls[c] = NULL;
    }
  print_line("done");
}

/* ---- command line ---------------------------------------------------------- */

static int parse_target(char *spec, target *t) {
  memset(t, 0, sizeof *t);
  t->policy = H2WS_RT_POLICY_AUTO;
  t->compress = 1;
  t->count = 10;
  t->nclients = 1;
  for (char *kv = strtok(spec, ","); kv; kv = strtok(NULL, ",")) {
    char *v = strchr(kv, '=');
    if (!v) return -1;
    *v++ = '\0';
    if (!strcmp(kv, "name")) snprintf(t->name, sizeof t->name, "%s", v);
    else if (!strcmp(kv, "url")) snprintf(t->url, sizeof t->url, "%s", v);
    else if (!strcmp(kv, "policy"))
      t->policy = !strcmp(v, "h2") ? H2WS_RT_POLICY_H2
                  : !strcmp(v, "h1") ? H2WS_RT_POLICY_H1 : H2WS_RT_POLICY_AUTO;
    else if (!strcmp(kv, "deflate")) t->compress = atoi(v);
    else if (!strcmp(kv, "mode"))
      t->mode = !strcmp(v, "chat") ? M_CHAT : !strcmp(v, "stall") ? M_STALL : M_ECHO;
    else if (!strcmp(kv, "n")) t->count = atoi(v);
    else if (!strcmp(kv, "clients")) t->nclients = atoi(v);
    else return -1;
  }
  if (!t->url[0] || t->count < 0 || t->nclients < 1 || t->nclients > 256) return -1;
  if (!t->name[0]) {
    size_t n = strlen(t->url) < sizeof t->name - 1 ? strlen(t->url) : sizeof t->name - 1;
    memcpy(t->name, t->url, n);
    t->name[n] = '\0';
  }
  return 0;
}

int main(int argc, char **argv) {
  double seconds = 60;
  uint64_t seed = 1;
  const char *events = NULL;
  S.rate = 0.5;
  h2ws_client_settings_default(&S.cset);
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--insecure")) {
      S.cset.insecure = 1;
      continue;
    }
    if (!v) goto usage;
    i++;
    if (!strcmp(a, "--seconds")) seconds = atof(v);
    else if (!strcmp(a, "--rate")) S.rate = atof(v);
    else if (!strcmp(a, "--abort-every")) S.abort_every = atof(v);
    else if (!strcmp(a, "--rotate-every")) S.rotate_every = atof(v);
    else if (!strcmp(a, "--seed")) seed = strtoull(v, NULL, 10);
    else if (!strcmp(a, "--events")) events = v;
    else if (!strcmp(a, "--report")) S.report = v;
    else if (!strcmp(a, "--target")) {
      if (S.ntargets == MAX_TARGETS) goto usage;
      char *spec = strdup(v);
      if (!spec || parse_target(spec, &S.targets[S.ntargets]) != 0) {
        fprintf(stderr, "soak_client: bad --target %s\n", v);
        return 2;
      }
      free(spec);
      S.ntargets++;
    } else goto usage;
  }
  if (S.ntargets == 0 || S.rate <= 0 || seconds <= 0) goto usage;
  S.rng = seed * 0x9E3779B97F4A7C15ULL | 1;
  S.buf = malloc(MAX_MSG);
  if (events && !(S.events = fopen(events, "w"))) {
    perror(events);
    return 2;
  }
  if (S.events) setvbuf(S.events, NULL, _IOLBF, 0);
  if (h2ws_rt_new(&S.rt, NULL) != 0) return 2;
  S.loop = h2ws_rt_uv_loop(S.rt);
  for (int i = 0; i < S.ntargets; i++) {
    target *t = &S.targets[i];
    t->cls = calloc((size_t)t->nclients, sizeof *t->cls);
    for (int c = 0; c < t->nclients; c++)
      if (!t->cls || h2ws_client_new(&t->cls[c], S.rt, &S.cset) != 0) return 2;
    S.nslots += (size_t)t->count;
  }
  S.slots = calloc(S.nslots ? S.nslots : 1, sizeof *S.slots);
  if (!S.slots || !S.buf) return 2;
  size_t k = 0;
  S.start = now_ms();
  for (int i = 0; i < S.ntargets; i++)
    for (int j = 0; j < S.targets[i].count; j++, k++) {
      S.slots[k].t = &S.targets[i];
      S.slots[k].idx = j;
      /* spread the opens over the first seconds */
      S.slots[k].reopen_at = S.start + (uint64_t)(rnd_unit() * (seconds > 20 ? 5000 : 1000));
    }
  S.end_at = S.start + (uint64_t)(seconds * 1000);
  S.next_abort = S.start + 3000;
  S.next_rotate = S.start + (uint64_t)(S.rotate_every * 1000);
  S.next_line = S.start + 10000;
  uv_timer_init(S.loop, &S.tick);
  uv_timer_start(&S.tick, on_tick, 20, 20);
  h2ws_rt_run(S.rt);
  write_report();
  for (int i = 0; i < S.ntargets; i++) free(S.targets[i].cls);
  for (size_t i = 0; i < S.nslots; i++) {
    free(S.slots[i].q);
    free(S.slots[i].peers);
  }
  free(S.slots);
  free(S.buf);
  if (S.events) fclose(S.events);
  h2ws_rt_del(S.rt);
  return (S.dup || S.corrupt || S.misrouted || S.gaps || S.end_missing || S.chat_gaps ||
          S.chat_dup)
             ? 1
             : 0;
usage:
  fprintf(stderr,
          "usage: soak_client --seconds N --target name=NAME,url=URL,policy=auto|h1|h2,"
          "deflate=0|1,mode=echo|stall|chat,n=COUNT[,clients=K] [--target ...]\n"
          "       [--insecure] [--rate R] [--abort-every S] [--rotate-every S] [--seed N]\n"
          "       [--events FILE] [--report FILE]\n");
  return 2;
}
