/* lib/rt/udp.c - one UDP socket on the loop: datagrams in through libuv
 * (uv_udp with UV_UDP_RECVMMSG: up to 20 datagrams per system call),
 * batches out with one sendmsg() carrying UDP_SEGMENT (GSO: the kernel
 * cuts the batch into datagrams) where Linux offers it, one sendmmsg()
 * of the datagrams otherwise.  GRO is not used: libuv's receive path
 * does not pass the control message that gives the segment size. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <sys/socket.h>
#include "rt/udp.h"

/* libuv's recvmmsg cuts the read buffer into 64 KiB slots, at most 20. */
#define UDP_SLOT 65536u
#define UDP_SLOTS 20u
/* Socket buffers: a burst of a few hundred datagrams each way. */
#define UDP_SOCKBUF (4 * 1024 * 1024)

struct rt_udp {
  h2ws_rt *rt;
  uv_udp_t udp;
  rt_udp_hooks hooks;
  void *ud;
  int closing;
  int gso;          /* 1 until a UDP_SEGMENT send fails as unsupported */
  rt_udp_stats st;
  uint8_t *rbuf;    /* UDP_SLOTS * UDP_SLOT, reused for every read */
};

static void udp_alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  rt_udp *u = h->data;
  (void)hint;
  buf->base = (char *)u->rbuf;
  buf->len = UDP_SLOTS * UDP_SLOT;
}

static void udp_recv_cb(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf,
                        const struct sockaddr *addr, unsigned flags) {
  rt_udp *u = h->data;
  (void)buf;
  if (flags & UV_UDP_MMSG_FREE) return; /* our buffer: nothing to free */
  if (nread < 0 && !u->closing && u->hooks.error) {
    u->hooks.error(u, (int)nread, u->ud);
    return;
  }
  if (nread <= 0 || !addr || u->closing) return;
  if (flags & UV_UDP_PARTIAL) return;   /* truncated: not a QUIC packet */
  size_t alen = addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                            : sizeof(struct sockaddr_in);
  u->st.datagrams_in++;
  u->hooks.datagram(u, addr, alen, (const uint8_t *)buf->base,
                    (size_t)nread, u->ud);
}

int h2ws__rt_udp_new(rt_udp **pu, h2ws_rt *rt, const struct sockaddr *addr,
                     int reuseport, const rt_udp_hooks *hooks, void *ud,
                     char *err, size_t errlen) {
  rt_udp *u = h2ws__calloc(rt->mem, 1, sizeof *u);
  if (!u) return H2WS_ERR_NOMEM;
  u->rbuf = h2ws__malloc(rt->mem, UDP_SLOTS * UDP_SLOT);
  if (!u->rbuf) {
    h2ws__free(rt->mem, u);
    return H2WS_ERR_NOMEM;
  }
  u->rt = rt;
  u->hooks = *hooks;
  u->ud = ud;
  u->gso = 1;
  int r = uv_udp_init_ex(&rt->loop, &u->udp,
                         (unsigned)addr->sa_family | UV_UDP_RECVMMSG);
  if (r != 0) {
    snprintf(err, errlen, "UDP socket: %s", uv_strerror(r));
    h2ws__free(rt->mem, u->rbuf);
    h2ws__free(rt->mem, u);
    return H2WS_ERR_RT_LISTEN;
  }
  u->udp.data = u;
  uv_os_fd_t fd;
  r = uv_fileno((uv_handle_t *)&u->udp, &fd);
  if (r == 0) {
    int one = 1, sz = UDP_SOCKBUF;
    if (reuseport) {
#ifdef SO_REUSEPORT
      if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one))
        r = UV_EINVAL;
#else
      r = UV_ENOTSUP;
#endif
    }
    /* best effort: the kernel caps them at rmem_max / wmem_max */
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
  }
  if (r == 0) r = uv_udp_bind(&u->udp, addr, 0);
  if (r == 0) r = uv_udp_recv_start(&u->udp, udp_alloc_cb, udp_recv_cb);
  if (r != 0) {
    snprintf(err, errlen, "%s", uv_strerror(r));
    u->closing = 1;
    /* the handle must be closed from the loop: free it there */
    u->hooks.closed = NULL;
    h2ws__rt_udp_close(u);
    return H2WS_ERR_RT_LISTEN;
  }
  *pu = u;
  return 0;
}

int h2ws__rt_udp_connect(rt_udp *u, const struct sockaddr *to) {
  return uv_udp_connect(&u->udp, to);
}

void h2ws__rt_udp_local(const rt_udp *u, struct sockaddr_storage *ss,
                        size_t *plen) {
  int n = sizeof *ss;
  memset(ss, 0, sizeof *ss);
  if (uv_udp_getsockname(&u->udp, (struct sockaddr *)ss, &n) != 0) n = 0;
  *plen = (size_t)n;
}

/* One datagram per message (no GSO): sendmmsg. */
static void udp_send_each(rt_udp *u, int fd, const struct sockaddr *to,
                          size_t tolen, const uint8_t *data, size_t len,
                          size_t segsize, size_t count) {
  struct mmsghdr mm[64];
  struct iovec iov[64];
  size_t done = 0;
  while (done < count) {
    size_t n = count - done > 64 ? 64 : count - done;
    for (size_t i = 0; i < n; i++) {
      size_t off = (done + i) * segsize;
      iov[i].iov_base = (void *)(uintptr_t)(data + off);
      iov[i].iov_len = len - off < segsize ? len - off : segsize;
      memset(&mm[i], 0, sizeof mm[i]);
      mm[i].msg_hdr.msg_name = (void *)(uintptr_t)to;
      mm[i].msg_hdr.msg_namelen = (socklen_t)tolen;
      mm[i].msg_hdr.msg_iov = &iov[i];
      mm[i].msg_hdr.msg_iovlen = 1;
    }
    int r;
    do r = sendmmsg(fd, mm, (unsigned)n, 0);
    while (r < 0 && errno == EINTR);
    u->st.sendmsg_calls++;
    if (r <= 0) {
      int e = errno;
      u->st.dropped_out += count - done;
      if (r < 0 && e == ECONNREFUSED && u->hooks.error)
        u->hooks.error(u, UV_ECONNREFUSED, u->ud);
      return;
    }
    u->st.datagrams_out += (uint64_t)r;
    done += (size_t)r;
  }
}

void h2ws__rt_udp_send(rt_udp *u, const struct sockaddr *to, size_t tolen,
                       const uint8_t *data, size_t len, size_t segsize,
                       size_t count) {
  uv_os_fd_t fd;
  if (!count || u->closing || uv_fileno((uv_handle_t *)&u->udp, &fd) != 0)
    return;
  if (count == 1 || !u->gso) {
    udp_send_each(u, fd, to, tolen, data, len, segsize, count);
    return;
  }
  struct iovec iov = {(void *)(uintptr_t)data, len};
  union {
    char buf[CMSG_SPACE(sizeof(uint16_t))];
    struct cmsghdr align;
  } ctl;
  struct msghdr mh;
  memset(&mh, 0, sizeof mh);
  memset(&ctl, 0, sizeof ctl);
  mh.msg_name = (void *)(uintptr_t)to;
  mh.msg_namelen = (socklen_t)tolen;
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = ctl.buf;
  mh.msg_controllen = sizeof ctl.buf;
  struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
  cm->cmsg_level = SOL_UDP;
  cm->cmsg_type = UDP_SEGMENT;
  cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
  uint16_t seg = (uint16_t)segsize;
  memcpy(CMSG_DATA(cm), &seg, sizeof seg);
  ssize_t r;
  do r = sendmsg(fd, &mh, 0);
  while (r < 0 && errno == EINTR);
  u->st.sendmsg_calls++;
  if (r >= 0) {
    u->st.gso_batches++;
    u->st.datagrams_out += count;
    return;
  }
  if (errno == EIO || errno == EINVAL || errno == ENOPROTOOPT ||
      errno == EOPNOTSUPP) {
    /* no GSO here (an old kernel, a device without checksum offload):
     * one datagram per message from now on */
    u->gso = 0;
    udp_send_each(u, fd, to, tolen, data, len, segsize, count);
    return;
  }
  int e = errno;
  u->st.dropped_out += count; /* EAGAIN: buffer full; QUIC resends */
  if (e == ECONNREFUSED && u->hooks.error)
    u->hooks.error(u, UV_ECONNREFUSED, u->ud);
}

void h2ws__rt_udp_get_stats(const rt_udp *u, rt_udp_stats *st) {
  *st = u->st;
}

static void udp_closed_cb(uv_handle_t *h) {
  rt_udp *u = h->data;
  h2ws_rt *rt = u->rt;
  if (u->hooks.closed) u->hooks.closed(u, u->ud);
  h2ws__free(rt->mem, u->rbuf);
  h2ws__free(rt->mem, u);
}

void h2ws__rt_udp_close(rt_udp *u) {
  if (uv_is_closing((uv_handle_t *)&u->udp)) return;
  u->closing = 1;
  uv_udp_recv_stop(&u->udp);
  uv_close((uv_handle_t *)&u->udp, udp_closed_cb);
}
