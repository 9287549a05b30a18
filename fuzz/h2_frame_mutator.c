/* fuzz/h2_frame_mutator.c - a structure-aware libFuzzer mutator for the
 * HTTP/2 session harness (fuzz_h2_server.c, linked into it only).  Its
 * inputs stay what the harness reads (byte 0 the control byte: piece
 * size, tight limits, 0xff = the bytes carry their own preface; then
 * frames), so the existing corpus stays valid.  A mutation parses the
 * input as [control][preface?] frame* [tail] (9-byte header + payload;
 * a truncated last frame is the tail) and, chosen from the seed, does
 * one of:
 *  - change a frame's type, flags (END_STREAM, END_HEADERS, PADDED,
 *    PRIORITY, ACK, any) or stream id (0, a neighbour's, +2, R bit, any);
 *  - make a frame's length lie (the header claims more or less than the
 *    payload: the following bytes re-frame);
 *  - insert a generated frame (SETTINGS with real parameters including
 *    ENABLE_CONNECT_PROTOCOL, PING, WINDOW_UPDATE, RST_STREAM, PRIORITY,
 *    GOAWAY, PRIORITY_UPDATE, DATA carrying masked WebSocket frames,
 *    HEADERS with a generated HPACK block), delete, duplicate (floods),
 *    swap frames, or split a HEADERS into HEADERS + CONTINUATION;
 *  - replace a HEADERS block with a generated one: extended CONNECT
 *    (:protocol websocket, RFC 8441) or GET, as indexed and literal
 *    fields (with/without/never indexing, names indexed or literal),
 *    dynamic-table references and size updates, sometimes a pseudo-header
 *    dropped, doubled or misplaced, or a bad Huffman flag;
 *  - mutate one payload with LLVMFuzzerMutate, or the control byte;
 *  - and now and then plain byte mutation of the whole input.
 * LLVMFuzzerCustomCrossOver splices the frames of two inputs. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size,
                               unsigned int seed);
size_t LLVMFuzzerCustomCrossOver(const uint8_t *d1, size_t s1,
                                 const uint8_t *d2, size_t s2, uint8_t *out,
                                 size_t max_out, unsigned int seed);

#define MAXF 128
#define WORK (1u << 20)

static const uint8_t mu_preface[24] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

typedef struct mframe {
  uint8_t type, flags;
  uint32_t sid;
  uint32_t lie; /* 0: the header says the payload's length; else len+1 */
  const uint8_t *p;
  size_t n;
} mframe;

typedef struct minput {
  uint8_t ctl;
  int has_preface;
  mframe f[MAXF];
  size_t nf;
  const uint8_t *tail;
  size_t ntail;
} minput;

static uint32_t mu_rng;
static uint32_t rnd(uint32_t n) {
  mu_rng ^= mu_rng << 13;
  mu_rng ^= mu_rng >> 17;
  mu_rng ^= mu_rng << 5;
  return n ? mu_rng % n : 0;
}

static void mu_parse(const uint8_t *d, size_t n, minput *in) {
  memset(in, 0, sizeof *in);
  if (n == 0) return;
  in->ctl = d[0];
  size_t off = 1;
  if (n - off >= 24 && memcmp(d + off, mu_preface, 24) == 0) {
    in->has_preface = 1;
    off += 24;
  }
  while (off + 9 <= n && in->nf < MAXF) {
    size_t len = (size_t)d[off] << 16 | (size_t)d[off + 1] << 8 | d[off + 2];
    if (off + 9 + len > n) break;
    mframe *f = &in->f[in->nf++];
    f->type = d[off + 3];
    f->flags = d[off + 4];
    f->sid = (uint32_t)d[off + 5] << 24 | (uint32_t)d[off + 6] << 16 |
             (uint32_t)d[off + 7] << 8 | d[off + 8];
    f->p = d + off + 9;
    f->n = len;
    off += 9 + len;
  }
  in->tail = d + off;
  in->ntail = n - off;
}

/* Writes the input into out (at most max); returns its size. */
static size_t mu_write(const minput *in, uint8_t *out, size_t max) {
  size_t o = 0;
  if (max == 0) return 0;
  out[o++] = in->ctl;
  if (in->has_preface && o + 24 <= max) {
    memcpy(out + o, mu_preface, 24);
    o += 24;
  }
  for (size_t i = 0; i < in->nf; i++) {
    const mframe *f = &in->f[i];
    if (o + 9 + f->n > max) break;
    size_t len = f->lie ? f->lie - 1 : f->n;
    out[o] = (uint8_t)(len >> 16);
    out[o + 1] = (uint8_t)(len >> 8);
    out[o + 2] = (uint8_t)len;
    out[o + 3] = f->type;
    out[o + 4] = f->flags;
    out[o + 5] = (uint8_t)(f->sid >> 24);
    out[o + 6] = (uint8_t)(f->sid >> 16);
    out[o + 7] = (uint8_t)(f->sid >> 8);
    out[o + 8] = (uint8_t)f->sid;
    if (f->n) memcpy(out + o + 9, f->p, f->n);
    o += 9 + f->n;
  }
  size_t t = in->ntail < max - o ? in->ntail : max - o;
  if (t) memcpy(out + o, in->tail, t);
  return o + t;
}

/* ---- generated pieces (in an arena valid for one mutation) ------------ */

static uint8_t arena[WORK];
static size_t arena_used;

static uint8_t *mu_alloc(size_t n) {
  if (arena_used + n > sizeof arena) return NULL;
  uint8_t *p = arena + arena_used;
  arena_used += n;
  return p;
}

typedef struct buf {
  uint8_t d[4096];
  size_t n;
} buf;

static void put(buf *b, uint8_t c) {
  if (b->n < sizeof b->d) b->d[b->n++] = c;
}
static void putn(buf *b, const void *p, size_t n) {
  for (size_t i = 0; i < n; i++) put(b, ((const uint8_t *)p)[i]);
}

/* HPACK integer (RFC 7541 5.1) with an n-bit prefix and first-byte bits */
static void hp_int(buf *b, uint8_t first, int nbits, uint32_t v) {
  uint32_t max = (1u << nbits) - 1;
  if (v < max) {
    put(b, (uint8_t)(first | v));
    return;
  }
  put(b, (uint8_t)(first | max));
  v -= max;
  while (v >= 128) {
    put(b, (uint8_t)(v % 128 + 128));
    v /= 128;
  }
  put(b, (uint8_t)v);
}

static void hp_str(buf *b, const char *s) {
  size_t n = strlen(s);
  /* a Huffman flag on a raw string now and then: a decoding error */
  hp_int(b, rnd(40) == 0 ? 0x80 : 0, 7, (uint32_t)n);
  putn(b, s, n);
}

/* One field: indexed name (static index, 0 = literal name) and value,
 * with a random representation; dynamic-table entries are made with
 * incremental indexing and referred to later (index 62..). */
static void hp_field(buf *b, int name_idx, const char *name,
                     const char *value) {
  switch (rnd(6)) {
  case 0: case 1: /* with incremental indexing */
    hp_int(b, 0x40, 6, name_idx > 0 ? (uint32_t)name_idx : 0);
    break;
  case 2: /* without indexing */
    hp_int(b, 0x00, 4, name_idx > 0 ? (uint32_t)name_idx : 0);
    break;
  case 3: /* never indexed */
    hp_int(b, 0x10, 4, name_idx > 0 ? (uint32_t)name_idx : 0);
    break;
  default: /* literal name, incremental indexing */
    hp_int(b, 0x40, 6, 0);
    name_idx = 0;
    break;
  }
  if (name_idx <= 0) hp_str(b, name);
  hp_str(b, value);
}

static void hp_block(buf *b, int websocket) {
  static const char *paths[] = {"/echo", "/echo?x=1", "/", "/nope", "*",
                                "", "/echo/../echo"};
  static const char *exts[] = {
      "permessage-deflate", "permessage-deflate; client_max_window_bits",
      ("permessage-deflate; server_no_context_takeover; "
       "client_no_context_takeover; server_max_window_bits=8"),
      "permessage-deflate; server_max_window_bits=16", "x-foo, permessage-deflate"};
  int drop = rnd(10) == 0 ? (int)rnd(6) : -1;
  int twice = rnd(12) == 0 ? (int)rnd(6) : -1;
  if (rnd(8) == 0) hp_int(b, 0x20, 5, rnd(5000)); /* table size update */
  for (int k = 0; k < 6; k++) {
    if (k == drop) continue;
    for (int t = 0; t < (k == twice ? 2 : 1); t++) {
      switch (k) {
      case 0:
        if (websocket) hp_field(b, 2, ":method", rnd(10) ? "CONNECT" : "GET");
        else if (rnd(3)) put(b, 0x82); /* :method GET */
        else hp_field(b, 2, ":method", rnd(2) ? "POST" : "HEAD");
        break;
      case 1:
        if (websocket) hp_field(b, 0, ":protocol", rnd(10) ? "websocket" : "WebSocket");
        break;
      case 2: put(b, rnd(2) ? 0x86 : 0x87); break; /* :scheme http/https */
      case 3:
        if (rnd(4)) hp_field(b, 4, ":path", paths[rnd(7)]);
        else put(b, 0x84); /* :path / */
        break;
      case 4: hp_field(b, 1, ":authority", rnd(2) ? "localhost" : "x"); break;
      case 5:
        if (websocket) {
          hp_field(b, 0, "sec-websocket-version", rnd(10) ? "13" : "8");
          if (rnd(2)) hp_field(b, 0, "sec-websocket-protocol", "chat, x");
          if (rnd(2)) hp_field(b, 0, "sec-websocket-extensions", exts[rnd(5)]);
        }
        break;
      }
    }
  }
  /* extras: dynamic-table references, odd names, big values */
  int extra = (int)rnd(4);
  for (int i = 0; i < extra; i++) {
    switch (rnd(6)) {
    case 0: hp_int(b, 0x80, 7, 62 + rnd(6)); break; /* dynamic reference */
    case 1: hp_int(b, 0x80, 7, 1 + rnd(61)); break; /* static entry */
    case 2: hp_field(b, 0, "x-a", "b"); break;
    case 3: hp_field(b, 0, "Upper", "bad name"); break;
    case 4: hp_field(b, 0, "connection", "keep-alive"); break;
    default: {
      char v[600];
      size_t n = 1 + rnd(sizeof v - 1);
      memset(v, 'v', n);
      v[n] = 0;
      hp_field(b, 0, "x-big", v);
    }
    }
  }
  /* a pseudo-header after a regular one (malformed) */
  if (rnd(20) == 0) put(b, 0x84);
}

/* A masked WebSocket frame (client to server) into b. */
static void ws_frame(buf *b) {
  static const char *texts[] = {"hello", "abc", "", "\xff\xfe", "close"};
  uint8_t op;
  switch (rnd(8)) {
  case 0: op = 0x9; break; /* ping */
  case 1: op = 0x8; break; /* close */
  case 2: op = 0x2; break;
  case 3: op = 0x0; break; /* continuation */
  default: op = 0x1;
  }
  int fin = rnd(6) != 0, rsv = rnd(10) == 0 ? 0x40 : 0;
  const char *t = texts[rnd(5)];
  size_t n = strlen(t);
  uint8_t pl[260];
  if (op == 0x8) {
    pl[0] = 0x03;
    pl[1] = 0xe8;
    memcpy(pl + 2, t, n);
    n += 2;
  } else if (rnd(6) == 0) {
    n = 126 + rnd(100); /* 16-bit length */
    memset(pl, 'z', n);
  } else {
    memcpy(pl, t, n);
  }
  put(b, (uint8_t)((fin ? 0x80 : 0) | rsv | op));
  int masked = rnd(20) != 0;
  if (n < 126) put(b, (uint8_t)((masked ? 0x80 : 0) | n));
  else {
    put(b, (uint8_t)((masked ? 0x80 : 0) | 126));
    put(b, (uint8_t)(n >> 8));
    put(b, (uint8_t)n);
  }
  uint8_t key[4] = {(uint8_t)rnd(256), (uint8_t)rnd(256), (uint8_t)rnd(256),
                    (uint8_t)rnd(256)};
  if (masked) putn(b, key, 4);
  for (size_t i = 0; i < n; i++) put(b, masked ? pl[i] ^ key[i % 4] : pl[i]);
}

static uint32_t pick_sid(const minput *in) {
  switch (rnd(6)) {
  case 0: return 0;
  case 1: return 1 + 2 * rnd(4);
  case 2:
    if (in->nf) return in->f[rnd((uint32_t)in->nf)].sid;
    return 1;
  case 3: return rnd(2) ? 0x80000001u : 2;
  case 4: return mu_rng;
  default: return 1 + 2 * rnd(40);
  }
}

/* A new frame into f (payload in the arena); 0 if out of room. */
static int gen_frame(const minput *in, mframe *f) {
  buf b;
  b.n = 0;
  memset(f, 0, sizeof *f);
  f->sid = 1 + 2 * rnd(4);
  switch (rnd(12)) {
  case 0: /* SETTINGS */
    f->type = 4;
    f->sid = 0;
    if (rnd(4) == 0) f->flags = 1; /* ACK (empty, or not) */
    for (uint32_t i = 0, k = rnd(4); i < k; i++) {
      static const uint16_t ids[] = {1, 2, 3, 4, 5, 6, 8, 9, 0x10};
      uint16_t id = ids[rnd(9)];
      uint32_t v = rnd(4) == 0 ? mu_rng : rnd(70000);
      if (id == 8 && rnd(2)) v = 1;
      uint8_t s[6] = {(uint8_t)(id >> 8), (uint8_t)id, (uint8_t)(v >> 24),
                      (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
      putn(&b, s, 6);
    }
    break;
  case 1: /* PING */
    f->type = 6;
    f->sid = 0;
    f->flags = rnd(5) == 0;
    putn(&b, "\1\2\3\4\5\6\7\x08", rnd(10) ? 8 : 7);
    break;
  case 2: { /* WINDOW_UPDATE */
    f->type = 8;
    f->sid = rnd(2) ? 0 : pick_sid(in);
    uint32_t v = rnd(3) == 0 ? 0x7fffffffu : rnd(3) == 0 ? 0 : rnd(100000);
    uint8_t s[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8),
                    (uint8_t)v};
    putn(&b, s, 4);
    break;
  }
  case 3: /* RST_STREAM */
    f->type = 3;
    f->sid = pick_sid(in);
    putn(&b, "\0\0\0", 3);
    put(&b, (uint8_t)rnd(14));
    break;
  case 4: /* PRIORITY */
    f->type = 2;
    f->sid = pick_sid(in);
    putn(&b, "\0\0\0\1", 4);
    put(&b, (uint8_t)rnd(256));
    break;
  case 5: /* GOAWAY */
    f->type = 7;
    f->sid = 0;
    putn(&b, "\0\0\0\1\0\0\0", 7);
    put(&b, (uint8_t)rnd(14));
    break;
  case 6: /* PRIORITY_UPDATE (RFC 9218) */
    f->type = 0x10;
    f->sid = 0;
    putn(&b, "\0\0\0\1u=3", 7);
    break;
  case 7: case 8: /* DATA with WebSocket frames */
    f->type = 0;
    f->sid = pick_sid(in);
    for (uint32_t i = 0, k = 1 + rnd(3); i < k; i++) ws_frame(&b);
    if (rnd(6) == 0) f->flags |= 1;
    break;
  case 9: /* CONTINUATION */
    f->type = 9;
    f->sid = pick_sid(in);
    f->flags = rnd(2) ? 4 : 0;
    hp_field(&b, 0, "x-c", "d");
    break;
  default: /* HEADERS */
    f->type = 1;
    f->flags = 4 | (rnd(5) == 0 ? 1 : 0);
    if (rnd(8) == 0) { /* PRIORITY flag: 5 bytes first */
      f->flags |= 0x20;
      putn(&b, "\0\0\0\0\x10", 5);
    }
    hp_block(&b, rnd(4) != 0);
    break;
  }
  uint8_t *p = mu_alloc(b.n);
  if (!p && b.n) return 0;
  if (b.n) memcpy(p, b.d, b.n);
  f->p = p;
  f->n = b.n;
  return 1;
}

static int insert_at(minput *in, size_t at, const mframe *f) {
  if (in->nf >= MAXF) return 0;
  memmove(&in->f[at + 1], &in->f[at], (in->nf - at) * sizeof in->f[0]);
  in->f[at] = *f;
  in->nf++;
  return 1;
}

static size_t find_type(const minput *in, uint8_t type) {
  size_t hits[MAXF], nh = 0;
  for (size_t i = 0; i < in->nf; i++)
    if (in->f[i].type == type) hits[nh++] = i;
  return nh ? hits[rnd((uint32_t)nh)] : (size_t)-1;
}

static int mutate_frames(minput *in) {
  size_t i = in->nf ? rnd((uint32_t)in->nf) : 0;
  mframe *f = in->nf ? &in->f[i] : NULL;
  switch (rnd(16)) {
  case 0: /* type */
    if (!f) return 0;
    f->type = rnd(8) == 0 ? (uint8_t)rnd(256) : (uint8_t)rnd(10);
    return 1;
  case 1: { /* flags */
    static const uint8_t bits[] = {1, 4, 8, 0x20};
    if (!f) return 0;
    if (rnd(6) == 0) f->flags = (uint8_t)rnd(256);
    else f->flags ^= bits[rnd(4)];
    return 1;
  }
  case 2: /* stream id */
    if (!f) return 0;
    f->sid = pick_sid(in);
    return 1;
  case 3: /* length lie */
    if (!f) return 0;
    switch (rnd(4)) {
    case 0: f->lie = (uint32_t)(f->n + 2); break; /* one more */
    case 1: f->lie = f->n ? (uint32_t)f->n : 1; break; /* one less */
    case 2: f->lie = 16385 + 1; break;
    default: f->lie = 1 + rnd(1u << 24); break;
    }
    return 1;
  case 4: case 5: case 6: { /* insert a generated frame */
    mframe g;
    if (!gen_frame(in, &g)) return 0;
    return insert_at(in, in->nf ? rnd((uint32_t)in->nf + 1) : 0, &g);
  }
  case 7: /* delete */
    if (!f) return 0;
    memmove(&in->f[i], &in->f[i + 1], (in->nf - i - 1) * sizeof in->f[0]);
    in->nf--;
    return 1;
  case 8: { /* duplicate, a few times (floods) */
    if (!f) return 0;
    mframe g = *f;
    uint32_t k = rnd(4) == 0 ? 1 + rnd(40) : 1;
    for (uint32_t t = 0; t < k; t++)
      if (!insert_at(in, i, &g)) break;
    return 1;
  }
  case 9: { /* swap */
    if (in->nf < 2) return 0;
    size_t j = rnd((uint32_t)in->nf);
    mframe t = in->f[i];
    in->f[i] = in->f[j];
    in->f[j] = t;
    return 1;
  }
  case 10: case 11: { /* mutate one payload */
    if (!f) return 0;
    size_t cap = f->n * 2 + 64;
    uint8_t *p = mu_alloc(cap);
    if (!p) return 0;
    if (f->n) memcpy(p, f->p, f->n);
    f->n = LLVMFuzzerMutate(p, f->n, cap);
    f->p = p;
    return 1;
  }
  case 12: { /* a generated header block in a HEADERS */
    size_t h = find_type(in, 1);
    mframe g;
    do {
      if (!gen_frame(in, &g)) return 0;
    } while (g.type != 1);
    if (h == (size_t)-1) {
      g.sid = 1;
      return insert_at(in, 0, &g);
    }
    g.sid = in->f[h].sid;
    in->f[h] = g;
    return 1;
  }
  case 13: { /* split a HEADERS: HEADERS + CONTINUATION */
    size_t h = find_type(in, 1);
    if (h == (size_t)-1 || in->f[h].n < 2 || in->nf >= MAXF) return 0;
    mframe a = in->f[h], c = a;
    size_t cut = 1 + rnd((uint32_t)a.n - 1);
    a.n = cut;
    a.flags &= (uint8_t)~4;
    a.flags &= (uint8_t)~8; /* no padding across the cut */
    c.type = 9;
    c.flags = 4;
    c.p = a.p + cut;
    c.n = in->f[h].n - cut;
    in->f[h] = a;
    return insert_at(in, h + 1, &c);
  }
  case 14: /* the control byte */
    in->ctl = rnd(4) == 0 ? 0xff : (uint8_t)rnd(256);
    return 1;
  default: /* the tail (bytes after the last whole frame) */
    if (in->ntail == 0 || rnd(2)) {
      in->ntail = 0;
      return 1;
    }
    return 0;
  }
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size,
                               unsigned int seed) {
  static uint8_t copy[WORK];
  mu_rng = seed * 2654435761u + 1;
  /* plain byte mutation now and then (and for inputs with no frames) */
  if (size < 10 || rnd(8) == 0) return LLVMFuzzerMutate(data, size, max_size);
  if (size > sizeof copy) size = sizeof copy;
  memcpy(copy, data, size);
  arena_used = 0;
  minput in;
  mu_parse(copy, size, &in);
  int done = 0;
  for (uint32_t k = 1 + rnd(3), t = 0; t < k; t++)
    done |= mutate_frames(&in);
  if (!done) return LLVMFuzzerMutate(data, size, max_size);
  size_t n = mu_write(&in, data, max_size);
  return n ? n : LLVMFuzzerMutate(data, size, max_size);
}

size_t LLVMFuzzerCustomCrossOver(const uint8_t *d1, size_t s1,
                                 const uint8_t *d2, size_t s2, uint8_t *out,
                                 size_t max_out, unsigned int seed) {
  static minput a, b;
  mu_rng = seed * 2246822519u + 7;
  mu_parse(d1, s1, &a);
  mu_parse(d2, s2, &b);
  if (s1 == 0) return 0;
  /* a's first frames, then a run of b's, then the rest of a */
  size_t cut = a.nf ? rnd((uint32_t)a.nf + 1) : 0;
  size_t from = b.nf ? rnd((uint32_t)b.nf) : 0;
  size_t run = b.nf ? 1 + rnd((uint32_t)(b.nf - from)) : 0;
  static minput m;
  m = a;
  m.nf = 0;
  for (size_t i = 0; i < cut && m.nf < MAXF; i++) m.f[m.nf++] = a.f[i];
  for (size_t i = 0; i < run && m.nf < MAXF; i++) m.f[m.nf++] = b.f[from + i];
  for (size_t i = cut; i < a.nf && m.nf < MAXF; i++) m.f[m.nf++] = a.f[i];
  return mu_write(&m, out, max_out);
}
