/* tests/interop/h3_get.c - a plain HTTP/3 GET with h2ws's own HTTP/3
 * client (lib/h3, h2ws_h3_client_request) on a UDP socket, for interop
 * with servers no one here wrote (test_h3.py: gtlsserver).  Prints the
 * status on stderr and the body on stdout; exit 0 on a 2xx with FIN, 1
 * otherwise, 2 on usage / setup errors.
 *
 *   h3_get HOST_IP PORT PATH SERVER_NAME CAFILE|- */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <h2ws/h3.h>

static int done, status, failed;

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int rnd(uint8_t *buf, size_t len, void *ud) {
  (void)ud;
  FILE *f = fopen("/dev/urandom", "rb");
  if (!f) return -1;
  size_t n = fread(buf, 1, len, f);
  fclose(f);
  return n == len ? 0 : -1;
}

static int64_t req_sid = -1;

static void on_hs(h2ws_h3_session *s, void *ud) {
  const char **argv = ud;
  int rv = h2ws_h3_client_request(s, "GET", "https", argv[4], argv[3], NULL, 0,
                                  NULL, 0, &req_sid);
  if (rv != 0) {
    fprintf(stderr, "h3_get: request: %s\n", h2ws_h3_strerror(rv));
    failed = done = 1;
  }
}

static int on_resp(h2ws_h3_session *s, int64_t sid, int st,
                   const h2ws_header *h, size_t n, void *ud) {
  (void)s;
  (void)ud;
  if (sid != req_sid) return 0;
  status = st;
  fprintf(stderr, "h3_get: :status %d\n", st);
  for (size_t i = 0; i < n; i++)
    fprintf(stderr, "h3_get: %.*s: %.*s\n", (int)h[i].namelen, h[i].name,
            (int)h[i].valuelen, h[i].value);
  return 0;
}

static int on_data(h2ws_h3_session *s, int64_t sid, const uint8_t *d,
                   size_t n, int fin, void *ud) {
  (void)s;
  (void)ud;
  if (sid != req_sid) return 0;
  if (n) fwrite(d, 1, n, stdout);
  if (fin) done = 1;
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: h3_get HOST_IP PORT PATH SERVER_NAME CAFILE|-\n");
    return 2;
  }
  struct sockaddr_in to, local;
  memset(&to, 0, sizeof to);
  to.sin_family = AF_INET;
  to.sin_port = htons((uint16_t)atoi(argv[2]));
  if (inet_pton(AF_INET, argv[1], &to.sin_addr) != 1) return 2;
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0 || connect(fd, (struct sockaddr *)&to, sizeof to) != 0) return 2;
  socklen_t ll = sizeof local;
  getsockname(fd, (struct sockaddr *)&local, &ll);
  gnutls_certificate_credentials_t cred;
  gnutls_certificate_allocate_credentials(&cred);
  h2ws_h3_settings st;
  h2ws_h3_settings_default(&st);
  st.server_name = argv[4];
  if (strcmp(argv[5], "-") == 0) {
    st.verify_peer = 0;
  } else if (gnutls_certificate_set_x509_trust_file(cred, argv[5],
                                                    GNUTLS_X509_FMT_PEM) <= 0) {
    fprintf(stderr, "h3_get: cannot load %s\n", argv[5]);
    return 2;
  }
  h2ws_h3_callbacks cb;
  memset(&cb, 0, sizeof cb);
  cb.random = rnd;
  cb.on_handshake_done = on_hs;
  cb.on_response = on_resp;
  cb.on_response_data = on_data;
  h2ws_h3_path path = {{&local, ll}, {&to, sizeof to}};
  h2ws_h3_session *s = NULL;
  if (h2ws_h3_client_new(&s, &cb, &st, cred, &path, now_ms(), NULL, argv) != 0)
    return 2;
  uint64_t end = now_ms() + 10000;
  uint8_t buf[65536];
  while (!done && now_ms() < end && h2ws_h3_session_want_read(s)) {
    h2ws_h3_batch b;
    while (h2ws_h3_session_send(s, &b, now_ms()) == 0 && b.count)
      for (size_t i = 0; i < b.count; i++) {
        size_t off = i * b.segment_size;
        size_t n = b.len - off < b.segment_size ? b.len - off : b.segment_size;
        if (send(fd, b.data + off, n, 0) < 0 && errno != EAGAIN) break;
      }
    uint64_t exp = h2ws_h3_session_get_expiry(s), now = now_ms();
    int wait = exp == H2WS_NO_EXPIRY ? 100 : exp > now ? (int)(exp - now) : 0;
    if (wait > 100) wait = 100;
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, wait) > 0) {
      ssize_t n = recv(fd, buf, sizeof buf, 0);
      if (n > 0) h2ws_h3_session_recv(s, &path, buf, (size_t)n, now_ms());
    }
    if (now_ms() >= h2ws_h3_session_get_expiry(s))
      h2ws_h3_session_handle_expiry(s, now_ms());
  }
  h2ws_h3_session_close(s, H2WS_H3_NO_ERROR, now_ms());
  h2ws_h3_batch b;
  if (h2ws_h3_session_send(s, &b, now_ms()) == 0 && b.count)
    send(fd, b.data, b.count == 1 ? b.len : b.segment_size, 0);
  h2ws_h3_session_del(s);
  gnutls_certificate_free_credentials(cred);
  close(fd);
  fflush(stdout);
  if (!done || failed) fprintf(stderr, "h3_get: no complete answer\n");
  return done && !failed && status >= 200 && status < 300 ? 0 : 1;
}
