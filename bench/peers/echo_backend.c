/* bench/peers/echo_backend.c - a minimal single-threaded epoll HTTP/1.1
 * WebSocket echo server (RFC 6455), the fast C backend behind nghttpx and
 * HAProxy in bench/peers/run.sh and, over cleartext HTTP/1.1, the ceiling
 * of that benchmark.  Any path upgrades; Sec-WebSocket-Accept from
 * OpenSSL's SHA-1 and base64.  Client frames are unmasked and echoed
 * unmasked with the same opcode and FIN (fragments are echoed as they
 * come); ping gets a pong, Close is echoed and the connection ends once
 * the reply is written.  No validation beyond framing: it is a benchmark
 * peer, not a conformant server.  Partial reads and writes are buffered
 * per connection; reading stops while more than 4 MiB wait to be written.
 *
 * Usage: echo_backend [PORT]   (127.0.0.1 only; 0 or none: any free port)
 * Prints "PORT <n>" on stdout once listening; SIGTERM/SIGINT end it. */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define READ_CHUNK 65536
#define OUT_HIGH (4u << 20)     /* stop reading above this much unsent */
#define HEAD_MAX 16384          /* request head limit */
#define FRAME_MAX (64u << 20)   /* payload limit per frame */

struct buf {
  uint8_t *p;
  size_t len, off, cap; /* data is p[off, len) */
};

struct conn {
  int fd;
  int upgraded;
  int closing; /* Close echoed or error: end once out is empty */
  uint32_t events;
  struct buf in, out;
};

static volatile sig_atomic_t stop;

static void on_signal(int sig) {
  (void)sig;
  stop = 1;
}

static int reserve(struct buf *b, size_t more) {
  if (b->off && b->off == b->len)
    b->off = b->len = 0;
  if (b->len + more <= b->cap)
    return 0;
  if (b->off) { /* compact first */
    memmove(b->p, b->p + b->off, b->len - b->off);
    b->len -= b->off;
    b->off = 0;
    if (b->len + more <= b->cap)
      return 0;
  }
  size_t cap = b->cap ? b->cap : READ_CHUNK;
  while (cap < b->len + more)
    cap *= 2;
  uint8_t *p = realloc(b->p, cap);
  if (!p)
    return -1;
  b->p = p;
  b->cap = cap;
  return 0;
}

static int put(struct buf *b, const void *d, size_t n) {
  if (reserve(b, n))
    return -1;
  memcpy(b->p + b->len, d, n);
  b->len += n;
  return 0;
}

static void set_events(int ep, struct conn *c, uint32_t ev) {
  if (ev == c->events)
    return;
  struct epoll_event e = {.events = ev, .data.ptr = c};
  epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e);
  c->events = ev;
}

static void drop(int ep, struct conn *c) {
  epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
  close(c->fd);
  free(c->in.p);
  free(c->out.p);
  free(c);
}

/* the value of header `name` in the head [h, h+n), or NULL */
static const char *header(const char *h, size_t n, const char *name, size_t *vlen) {
  size_t nl = strlen(name);
  const char *end = h + n, *line = memchr(h, '\n', n);
  while (line && line + 1 < end) {
    line++;
    const char *eol = memchr(line, '\n', (size_t)(end - line));
    if (!eol)
      break;
    if ((size_t)(eol - line) > nl && line[nl] == ':' && !strncasecmp(line, name, nl)) {
      const char *v = line + nl + 1, *e = eol;
      while (v < e && (*v == ' ' || *v == '\t'))
        v++;
      while (e > v && (e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t'))
        e--;
      *vlen = (size_t)(e - v);
      return v;
    }
    line = eol;
  }
  return NULL;
}

/* 1: head handled, 0: need more, -1: refuse and close */
static int handshake(struct conn *c) {
  const char *h = (const char *)c->in.p + c->in.off;
  size_t n = c->in.len - c->in.off;
  const char *eoh = memmem(h, n, "\r\n\r\n", 4);
  if (!eoh)
    return n > HEAD_MAX ? -1 : 0;
  size_t hn = (size_t)(eoh - h) + 4, klen = 0;
  const char *key = header(h, hn, "Sec-WebSocket-Key", &klen);
  if (!key || klen == 0 || klen > 64) {
    static const char bad[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
                              "Connection: close\r\n\r\n";
    put(&c->out, bad, sizeof bad - 1);
    c->closing = 1;
    c->in.off += hn;
    return 1;
  }
  char cat[128];
  memcpy(cat, key, klen);
  memcpy(cat + klen, "258EAFA5-E914-47DA-95CA-C5AB0DC85B11", 36);
  unsigned char md[SHA_DIGEST_LENGTH];
  SHA1((const unsigned char *)cat, klen + 36, md);
  unsigned char acc[64];
  EVP_EncodeBlock(acc, md, SHA_DIGEST_LENGTH);
  char resp[256];
  int rn = snprintf(resp, sizeof resp,
                    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                    "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", acc);
  if (put(&c->out, resp, (size_t)rn))
    return -1;
  c->in.off += hn;
  c->upgraded = 1;
  return 1;
}

static void unmask(uint8_t *p, size_t n, const uint8_t key[4]) {
  uint32_t k32;
  memcpy(&k32, key, 4);
  uint64_t k64 = ((uint64_t)k32 << 32) | k32;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    memcpy(&w, p + i, 8);
    w ^= k64;
    memcpy(p + i, &w, 8);
  }
  for (; i < n; i++)
    p[i] ^= key[i & 3];
}

/* echo every complete frame in c->in; -1 on a framing error */
static int frames(struct conn *c) {
  while (!c->closing) {
    uint8_t *f = c->in.p + c->in.off;
    size_t n = c->in.len - c->in.off;
    if (n < 2)
      return 0;
    uint64_t len = f[1] & 127;
    size_t hl = 2;
    if (len == 126) {
      if (n < 4)
        return 0;
      len = (uint64_t)f[2] << 8 | f[3];
      hl = 4;
    } else if (len == 127) {
      if (n < 10)
        return 0;
      len = 0;
      for (int i = 0; i < 8; i++)
        len = len << 8 | f[2 + i];
      hl = 10;
    }
    if (len > FRAME_MAX)
      return -1;
    int masked = f[1] & 128;
    size_t need = hl + (masked ? 4 : 0) + (size_t)len;
    if (n < need)
      return 0;
    uint8_t *pl = f + hl + (masked ? 4 : 0);
    if (masked)
      unmask(pl, (size_t)len, f + hl);
    int op = f[0] & 15;
    uint8_t oh[10];
    size_t ohl = 2;
    oh[0] = (uint8_t)(op == 9 ? (0x80 | 10) : f[0] & 0x8f);
    if (len < 126) {
      oh[1] = (uint8_t)len;
    } else if (len < 65536) {
      oh[1] = 126;
      oh[2] = (uint8_t)(len >> 8);
      oh[3] = (uint8_t)len;
      ohl = 4;
    } else {
      oh[1] = 127;
      for (int i = 0; i < 8; i++)
        oh[2 + i] = (uint8_t)(len >> (56 - 8 * i));
      ohl = 10;
    }
    if (op != 10) { /* pongs are dropped, everything else echoed */
      if (reserve(&c->out, ohl + (size_t)len))
        return -1;
      f = c->in.p + c->in.off; /* in is another buffer: unchanged */
      memcpy(c->out.p + c->out.len, oh, ohl);
      memcpy(c->out.p + c->out.len + ohl, pl, (size_t)len);
      c->out.len += ohl + (size_t)len;
    }
    c->in.off += need;
    if (op == 8)
      c->closing = 1;
  }
  return 0;
}

/* write what is pending; -1 on error */
static int flush_out(struct conn *c) {
  while (c->out.off < c->out.len) {
    ssize_t w = send(c->fd, c->out.p + c->out.off, c->out.len - c->out.off, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      if (errno == EAGAIN)
        return 0;
      return -1;
    }
    c->out.off += (size_t)w;
  }
  c->out.off = c->out.len = 0;
  return 0;
}

static void service(int ep, struct conn *c, uint32_t ev) {
  if (ev & (EPOLLERR | EPOLLHUP) && !(ev & EPOLLIN)) {
    drop(ep, c);
    return;
  }
  if (ev & EPOLLIN && !c->closing) {
    int eof = 0;
    for (;;) {
      if (reserve(&c->in, READ_CHUNK)) {
        drop(ep, c);
        return;
      }
      ssize_t r = recv(c->fd, c->in.p + c->in.len, c->in.cap - c->in.len, 0);
      if (r < 0) {
        if (errno == EINTR)
          continue;
        if (errno == EAGAIN)
          break;
        drop(ep, c);
        return;
      }
      if (r == 0) {
        eof = 1;
        break;
      }
      c->in.len += (size_t)r;
      if ((size_t)r < c->in.cap - c->in.len + (size_t)r)
        break; /* short read: the socket is drained */
    }
    if (!c->upgraded) {
      int h = handshake(c);
      if (h < 0) {
        drop(ep, c);
        return;
      }
    }
    if (c->upgraded && frames(c) < 0) {
      drop(ep, c);
      return;
    }
    if (eof)
      c->closing = 1;
  }
  if (flush_out(c) < 0) {
    drop(ep, c);
    return;
  }
  size_t pending = c->out.len - c->out.off;
  if (c->closing && pending == 0) {
    drop(ep, c);
    return;
  }
  uint32_t want = pending ? EPOLLOUT : 0;
  if (!c->closing && pending < OUT_HIGH)
    want |= EPOLLIN;
  set_events(ep, c, want);
}

int main(int argc, char **argv) {
  int port = argc > 1 ? atoi(argv[1]) : 0;
  struct sigaction sa = {.sa_handler = on_signal};
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof a) || listen(ls, 1024)) {
    perror("echo_backend: listen");
    return 1;
  }
  socklen_t al = sizeof a;
  getsockname(ls, (struct sockaddr *)&a, &al);
  printf("PORT %d\n", ntohs(a.sin_port));
  fflush(stdout);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event e = {.events = EPOLLIN, .data.ptr = NULL};
  epoll_ctl(ep, EPOLL_CTL_ADD, ls, &e);
  struct epoll_event evs[256];
  while (!stop) {
    int n = epoll_wait(ep, evs, 256, 1000);
    for (int i = 0; i < n; i++) {
      struct conn *c = evs[i].data.ptr;
      if (c) {
        service(ep, c, evs[i].events);
        continue;
      }
      for (;;) {
        int fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
          break;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        c = calloc(1, sizeof *c);
        if (!c) {
          close(fd);
          continue;
        }
        c->fd = fd;
        c->events = EPOLLIN;
        struct epoll_event ce = {.events = EPOLLIN, .data.ptr = c};
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ce);
      }
    }
  }
  return 0;
}
