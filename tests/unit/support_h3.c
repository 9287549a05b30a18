/* tests/unit/support_h3.c - the in-memory QUIC pump and the run-time
 * test certificate (see h3test.h). */
#include <string.h>
#include <stdlib.h>
#include <time.h>
#include <arpa/inet.h>
#include <gnutls/x509.h>
#include "h3test.h"

static uint32_t h3t_seed = 12345;

int h3t_random(uint8_t *buf, size_t len, void *ud) {
  (void)ud;
  for (size_t i = 0; i < len; i++) {
    uint32_t x = h3t_seed;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    h3t_seed = x;
    buf[i] = (uint8_t)(x >> 11);
  }
  return 0;
}

uint32_t h3t_rand(h3t_pump *p) {
  uint32_t x = p->rng ? p->rng : 2463534242u;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  return p->rng = x;
}

static gnutls_certificate_credentials_t scred, ccred;

/* A self-signed ECDSA P-256 certificate for "localhost", made now: no key
 * is committed to the repository. */
static int make_creds(void) {
  gnutls_x509_privkey_t key;
  gnutls_x509_crt_t crt;
  if (scred) return 0;
  if (gnutls_x509_privkey_init(&key) != 0) return -1;
  if (gnutls_x509_privkey_generate(key, GNUTLS_PK_ECDSA,
                                   GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1),
                                   0) != 0)
    return -1;
  if (gnutls_x509_crt_init(&crt) != 0) return -1;
  time_t now = time(NULL);
  unsigned char serial[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  gnutls_x509_crt_set_version(crt, 3);
  gnutls_x509_crt_set_serial(crt, serial, sizeof(serial));
  gnutls_x509_crt_set_activation_time(crt, now - 3600);
  gnutls_x509_crt_set_expiration_time(crt, now + 86400);
  gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0,
                                "localhost", 9);
  gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_DNSNAME, "localhost", 9,
                                       GNUTLS_FSAN_SET);
  gnutls_x509_crt_set_key(crt, key);
  gnutls_x509_crt_set_basic_constraints(crt, 1, -1);
  gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_DIGITAL_SIGNATURE |
                                         GNUTLS_KEY_KEY_CERT_SIGN);
  if (gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0) != 0) return -1;
  if (gnutls_certificate_allocate_credentials(&scred) != 0 ||
      gnutls_certificate_allocate_credentials(&ccred) != 0)
    return -1;
  if (gnutls_certificate_set_x509_key(scred, &crt, 1, key) != 0) return -1;
  if (gnutls_certificate_set_x509_trust(ccred, &crt, 1) != 1) return -1;
  gnutls_x509_crt_deinit(crt);
  gnutls_x509_privkey_deinit(key);
  return 0;
}

gnutls_certificate_credentials_t h3t_server_cred(void) {
  return make_creds() == 0 ? scred : NULL;
}
gnutls_certificate_credentials_t h3t_client_cred(void) {
  return make_creds() == 0 ? ccred : NULL;
}

void h3t_init(h3t_pump *p, uint32_t seed) {
  memset(p, 0, sizeof(*p));
  p->rng = seed;
  h3t_seed = seed * 2654435761u + 1;
  p->now = 1000;
  p->delay_ms = 1;
  p->caddr.sin_family = AF_INET;
  p->caddr.sin_port = htons(40000);
  p->caddr.sin_addr.s_addr = htonl(0x7f000001);
  p->saddr = p->caddr;
  p->saddr.sin_port = htons(443);
  p->cpath.local.addr = &p->caddr;
  p->cpath.local.addrlen = sizeof(p->caddr);
  p->cpath.remote.addr = &p->saddr;
  p->cpath.remote.addrlen = sizeof(p->saddr);
  p->spath.local = p->cpath.remote;
  p->spath.remote = p->cpath.local;
  p->ccb.random = h3t_random;
  p->scb.random = h3t_random;
  h2ws_h3_settings_default(&p->cset);
  h2ws_h3_settings_default(&p->sset);
  p->cset.server_name = "localhost";
  for (size_t i = 0; i < sizeof(p->secret); i++) p->secret[i] = (uint8_t)(i * 7 + 1);
  p->sset.token_secret = p->secret;
  p->sset.token_secretlen = sizeof(p->secret);
  p->sset.enable_connect_protocol = 1;
}

int h3t_start(h3t_pump *p) {
  return h2ws_h3_client_new(&p->client, &p->ccb, &p->cset, h3t_client_cred(),
                            &p->cpath, p->now, p->cmem, p->cud);
}

static void enqueue(h3t_pump *p, const uint8_t *d, size_t len, int to_server) {
  p->sent++;
  if (p->loss_pct && h3t_rand(p) % 100 < p->loss_pct) {
    p->dropped++;
    return;
  }
  if (p->qn == p->qcap) {
    size_t ncap = p->qcap ? p->qcap * 2 : 256;
    h3t_dgram *q = realloc(p->q, ncap * sizeof(*q));
    if (!q) abort();
    p->q = q;
    p->qcap = ncap;
  }
  h3t_dgram *g = &p->q[p->qn++];
  memcpy(g->data, d, len);
  g->len = len;
  g->to_server = to_server;
  g->at = p->now + p->delay_ms;
  if (p->reorder_pct && h3t_rand(p) % 100 < p->reorder_pct) {
    g->at += 1 + h3t_rand(p) % 4; /* overtaken by later ones */
    p->reordered++;
  }
}

static void flush(h3t_pump *p, h2ws_h3_session *s, int to_server) {
  if (!s) return;
  for (int guard = 0; guard < 100000; guard++) {
    h2ws_h3_batch b;
    if (h2ws_h3_session_send(s, &b, p->now) != 0 || b.count == 0) return;
    for (size_t i = 0; i < b.count; i++) {
      size_t off = i * b.segment_size;
      size_t n = b.len - off < b.segment_size ? b.len - off : b.segment_size;
      enqueue(p, b.data + off, n, to_server);
    }
  }
}

static void deliver(h3t_pump *p, h3t_dgram *g) {
  if (g->to_server) {
    if (!p->server) {
      uint8_t reply[1500];
      size_t rlen = 0;
      p->server_rv = h2ws_h3_server_new(&p->server, &p->scb, &p->sset,
                                        h3t_server_cred(), &p->spath, g->data,
                                        g->len, reply, sizeof(reply), &rlen,
                                        p->now, p->smem, p->sud);
      if (rlen) enqueue(p, reply, rlen, 0);
      if (!p->server) return;
    }
    p->srv_recv_rv = h2ws_h3_session_recv(p->server, &p->spath, g->data, g->len, p->now);
  } else if (p->client) {
    p->client_rv = h2ws_h3_session_recv(p->client, &p->cpath, g->data, g->len, p->now);
  }
}

int h3t_run(h3t_pump *p, int (*done)(h3t_pump *, void *), void *arg,
            uint64_t max_ms) {
  uint64_t end = p->now + max_ms;
  for (;;) {
    flush(p, p->client, 1);
    flush(p, p->server, 0);
    if (done && done(p, arg)) return 1;
    /* deliver what is due, in arrival-time order */
    int any = 0;
    for (size_t i = 0; i < p->qn;) {
      if (p->q[i].at <= p->now) {
        h3t_dgram g = p->q[i];
        memmove(&p->q[i], &p->q[i + 1], (p->qn - i - 1) * sizeof(*p->q));
        p->qn--;
        deliver(p, &g);
        any = 1;
      } else {
        i++;
      }
    }
    if (any) continue;
    uint64_t next = UINT64_MAX;
    for (size_t i = 0; i < p->qn; i++)
      if (p->q[i].at < next) next = p->q[i].at;
    uint64_t ec = p->client ? h2ws_h3_session_get_expiry(p->client) : UINT64_MAX;
    uint64_t es = p->server ? h2ws_h3_session_get_expiry(p->server) : UINT64_MAX;
    if (ec <= p->now && p->client) {
      h2ws_h3_session_handle_expiry(p->client, p->now);
      continue;
    }
    if (es <= p->now && p->server) {
      h2ws_h3_session_handle_expiry(p->server, p->now);
      continue;
    }
    if (ec < next) next = ec;
    if (es < next) next = es;
    if (next == UINT64_MAX) return done ? done(p, arg) : 0;
    if (next > end) {
      p->now = end;
      return done ? done(p, arg) : 0;
    }
    p->now = next;
  }
}

int h3t_handshaken(h3t_pump *p, void *arg) {
  (void)arg;
  h2ws_h3_stats a, b;
  h2ws_h3_session_get_stats(p->client, &a);
  h2ws_h3_session_get_stats(p->server, &b);
  return p->client && p->server && a.handshake_done && b.handshake_done;
}

void h3t_free(h3t_pump *p) {
  h2ws_h3_session_del(p->client);
  h2ws_h3_session_del(p->server);
  free(p->q);
  p->client = p->server = NULL;
  p->q = NULL;
  p->qn = p->qcap = 0;
}
