/* apps/rooms.c - the rooms hub (one per process: rooms, member counts,
 * message order, the local backend) and the rooms of one loop (members,
 * delivery by uv_async).  The Redis link is apps/rooms_redis.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "rooms_hub.h"

/* The members of one room on one loop. */
struct rooms_local {
  hub_room *room;
  rooms *loop;
  rooms_member *head;
  uint32_t n;
};

struct rooms {
  rooms_hub *hub;
  int index;
  uv_loop_t *loop;
  uv_async_t async;
  rooms_callbacks cb;
  void *user_data;
  /* inbox: under the hub's mutex, in the hub's order */
  rooms_msg **in;
  size_t in_len, in_cap, in_bytes;
  /* the batch being delivered (swapped with the inbox): this thread */
  rooms_msg **batch;
  size_t batch_cap;
};

uint64_t rooms__now_ms(void) { return uv_hrtime() / 1000000u; }

/* The hub's allocator (options.mem, else libc). */
static void *libc_malloc(size_t n, void *ud) { (void)ud; return malloc(n); }
static void *libc_calloc(size_t k, size_t n, void *ud) { (void)ud; return calloc(k, n); }
static void *libc_realloc(void *p, size_t n, void *ud) { (void)ud; return realloc(p, n); }
static void libc_free(void *p, void *ud) { (void)ud; free(p); }
static const h2ws_mem libc_mem = {NULL, libc_malloc, libc_free, libc_calloc,
                                  libc_realloc};
#define H_CALLOC(h, k, n) ((h)->o.mem->calloc((k), (n), (h)->o.mem->user_data))
#define H_MALLOC(h, n) ((h)->o.mem->malloc((n), (h)->o.mem->user_data))
#define H_REALLOC(h, p, n) ((h)->o.mem->realloc((p), (n), (h)->o.mem->user_data))
#define H_FREE(h, p) ((h)->o.mem->free((p), (h)->o.mem->user_data))

/* ---- options ------------------------------------------------------------- */

void rooms_hub_options_default(rooms_hub_options *o) {
  memset(o, 0, sizeof *o);
  o->max_rooms = 1024;
  o->max_message = 1u << 20;
  o->max_inbox = 65536;
  o->max_inbox_bytes = 64u << 20;
  o->max_pending = 4096;
  o->max_pending_bytes = 16u << 20;
  o->heartbeat_ms = 1000;
  o->link_timeout_ms = 3000;
  o->connect_timeout_ms = 2000;
  o->backoff_min_ms = 100;
  o->backoff_max_ms = 2000;
  o->channel_prefix = "h2ws:";
}

int rooms_hub_new(rooms_hub **phub, const rooms_hub_options *options) {
  *phub = NULL;
  const h2ws_mem *mem = options && options->mem ? options->mem : &libc_mem;
  rooms_hub *h = mem->calloc(1, sizeof *h, mem->user_data);
  if (!h) return H2WS_ERR_NOMEM;
  if (options) h->o = *options;
  else rooms_hub_options_default(&h->o);
  h->o.mem = mem;
  if (!h->o.channel_prefix) h->o.channel_prefix = "h2ws:";
  if (strlen(h->o.channel_prefix) >= sizeof h->prefix) {
    H_FREE(h, h);
    return H2WS_ERR_INVALID_ARGUMENT;
  }
  snprintf(h->prefix, sizeof h->prefix, "%s", h->o.channel_prefix);
  h->o.channel_prefix = h->prefix;
  if (!h->o.max_pending) h->o.max_pending = 1;
  if (pthread_mutex_init(&h->mu, NULL) != 0) {
    H_FREE(h, h);
    return H2WS_ERR_INTERNAL;
  }
  /* the origin id tells this hub's messages from every other's (another
   * server, or this one before a restart) */
  if (getrandom(&h->origin, sizeof h->origin, 0) != sizeof h->origin)
    h->origin = uv_hrtime() ^ ((uint64_t)getpid() << 32);
  if (h->origin == 0) h->origin = 1;
  *phub = h;
  return 0;
}

/* ---- rooms (under the mutex) --------------------------------------------- */

static uint32_t room_hash(const char *s, size_t n) {
  uint32_t x = 2166136261u; /* FNV-1a */
  for (size_t i = 0; i < n; i++) x = (x ^ (uint8_t)s[i]) * 16777619u;
  return x;
}

static hub_room *room_find(rooms_hub *h, const char *name, size_t n) {
  uint32_t x = room_hash(name, n);
  for (hub_room *r = h->bucket[x % ROOMS_BUCKETS]; r; r = r->hnext)
    if (r->hash == x && r->chanlen - r->nameoff == n &&
        memcmp(r->chan + r->nameoff, name, n) == 0)
      return r;
  return NULL;
}

/* Finds or makes the room (refs 0 when new: the caller takes one). */
static int room_get(rooms_hub *h, const char *name, size_t n,
                    hub_room **proom) {
  hub_room *r = room_find(h, name, n);
  if (!r) {
    if (h->nrooms >= h->o.max_rooms) return H2WS_ERR_TOO_LARGE;
    size_t pl = strlen(h->prefix) + 5; /* "room:" */
    r = H_CALLOC(h, 1, sizeof *r + pl + n + 1);
    if (!r) return H2WS_ERR_NOMEM;
    r->hash = room_hash(name, n);
    r->nameoff = pl;
    r->chanlen = pl + n;
    memcpy(r->chan, h->prefix, pl - 5);
    memcpy(r->chan + pl - 5, "room:", 5);
    memcpy(r->chan + pl, name, n);
    r->hnext = h->bucket[r->hash % ROOMS_BUCKETS];
    h->bucket[r->hash % ROOMS_BUCKETS] = r;
    h->nrooms++;
  }
  *proom = r;
  return 0;
}

static void room_ref(hub_room *r) { r->refs++; }

static void room_unref(rooms_hub *h, hub_room *r) {
  if (--r->refs > 0) return;
  hub_room **pp = &h->bucket[r->hash % ROOMS_BUCKETS];
  while (*pp != r) pp = &(*pp)->hnext;
  *pp = r->hnext;
  h->nrooms--;
  H_FREE(h, r);
}

/* The link should look at the room's subscription. */
static int work_add(rooms_hub *h, hub_room *r) {
  if (!h->bops || !h->link_up || r->in_work) return 0;
  r->in_work = 1;
  room_ref(r);
  r->wnext = h->work;
  h->work = r;
  return 1;
}

/* ---- messages ------------------------------------------------------------ */

static void msg_free_locked(rooms_msg *m) {
  rooms_hub *h = m->hub;
  if (m->room) room_unref(h, m->room);
  h2ws_ws_prepared_del(m->prep);
  H_FREE(h, m);
}

static void msg_ref(rooms_msg *m) {
  __atomic_fetch_add(&m->refs, 1, __ATOMIC_RELAXED);
}

/* Drops a reference; `locked`: the caller holds the hub's mutex. */
static void msg_unref(rooms_msg *m, int locked) {
  if (__atomic_sub_fetch(&m->refs, 1, __ATOMIC_ACQ_REL) > 0) return;
  rooms_hub *h = m->hub;
  if (!locked) pthread_mutex_lock(&h->mu);
  msg_free_locked(m);
  if (!locked) pthread_mutex_unlock(&h->mu);
}

/* A message of `room` (not yet attached: room may be NULL, the caller
 * sets it) with a prepared frame: the one encoding of this message. */
static int msg_new(rooms_hub *h, h2ws_opcode op, const uint8_t *data,
                   size_t len, rooms_msg **pm) {
  rooms_msg *m = H_CALLOC(h, 1, sizeof *m);
  if (!m) return H2WS_ERR_NOMEM;
  int rv = h2ws_ws_prepared_new(&m->prep, op, data, len, h->o.mem);
  if (rv) {
    H_FREE(h, m);
    return rv;
  }
  m->refs = 1;
  m->hub = h;
  m->len = len;
  m->born_ms = rooms__now_ms();
  *pm = m;
  return 0;
}

/* Hands m to every loop with members of its room, in the order of the
 * calls (the hub's mutex orders them). */
static void fanout_locked(rooms_hub *h, rooms_msg *m) {
  hub_room *r = m->room;
  if (!r->members) return;
  for (int i = 0; i < ROOMS_MAX_LOOPS; i++) {
    rooms *lp = h->loops[i];
    if (!lp || !r->loop_members[i]) continue;
    if (lp->in_bytes + m->len > h->o.max_inbox_bytes) {
      h->st.overflow++; /* that loop does not keep up: it loses this one */
      continue;
    }
    if (lp->in_len == lp->in_cap) {
      size_t ncap = lp->in_cap ? lp->in_cap * 2 : 64;
      rooms_msg **p = NULL;
      if (lp->in_cap < h->o.max_inbox) {
        if (ncap > h->o.max_inbox) ncap = h->o.max_inbox;
        p = H_REALLOC(h, lp->in, ncap * sizeof *p);
      }
      if (!p) {
        h->st.overflow++; /* that loop is stuck: it loses this one */
        continue;
      }
      lp->in = p;
      lp->in_cap = ncap;
    }
    msg_ref(m);
    lp->in[lp->in_len++] = m;
    lp->in_bytes += m->len;
    if (lp->in_len == 1) uv_async_send(&lp->async);
  }
}

/* ---- a loop's rooms ------------------------------------------------------ */

static void loop_deliver(uv_async_t *a) {
  rooms *r = a->data;
  rooms_hub *h = r->hub;
  pthread_mutex_lock(&h->mu);
  rooms_msg **batch = r->in;
  size_t n = r->in_len, cap = r->in_cap;
  r->in = r->batch;
  r->in_cap = r->batch_cap;
  r->in_len = 0;
  r->in_bytes = 0;
  pthread_mutex_unlock(&h->mu);
  r->batch = batch;
  r->batch_cap = cap;
  uint64_t copies = 0;
  for (size_t i = 0; i < n; i++) {
    rooms_msg *m = batch[i];
    struct rooms_local *lr = m->room->local[r->index];
    for (rooms_member *mb = lr ? lr->head : NULL, *nx; mb; mb = nx) {
      nx = mb->next;
      int rv = r->cb.deliver ? r->cb.deliver(mb, m->prep, r->user_data)
                             : h2ws_rt_ws_send_prepared(mb->ws, m->prep);
      copies += rv == 0;
      if (r->cb.on_sent) r->cb.on_sent(mb, m->prep, rv, r->user_data);
    }
    msg_unref(m, 0);
  }
  if (copies) {
    pthread_mutex_lock(&h->mu);
    h->st.deliveries += copies;
    pthread_mutex_unlock(&h->mu);
  }
}

int rooms_new(rooms **pr, rooms_hub *h, uv_loop_t *loop,
              const rooms_callbacks *callbacks, void *user_data) {
  *pr = NULL;
  rooms *r = H_CALLOC(h, 1, sizeof *r);
  if (!r) return H2WS_ERR_NOMEM;
  r->hub = h;
  r->loop = loop;
  if (callbacks) r->cb = *callbacks;
  r->user_data = user_data;
  pthread_mutex_lock(&h->mu);
  int i = 0;
  while (i < ROOMS_MAX_LOOPS && (h->loops[i] || h->loop_reserved[i])) i++;
  if (i < ROOMS_MAX_LOOPS) h->loop_reserved[i] = 1;
  pthread_mutex_unlock(&h->mu);
  if (i == ROOMS_MAX_LOOPS) {
    H_FREE(h, r);
    return H2WS_ERR_TOO_LARGE;
  }
  r->index = i;
  int rv = uv_async_init(loop, &r->async, loop_deliver);
  pthread_mutex_lock(&h->mu);
  h->loop_reserved[i] = 0;
  if (rv == 0) h->loops[i] = r;
  pthread_mutex_unlock(&h->mu);
  if (rv != 0) {
    H_FREE(h, r);
    return H2WS_ERR_INTERNAL;
  }
  r->async.data = r;
  /* delivery never keeps a loop running on its own */
  uv_unref((uv_handle_t *)&r->async);
  *pr = r;
  return 0;
}

static void loop_closed(uv_handle_t *hd) {
  rooms *r = hd->data;
  rooms_hub *h = r->hub;
  H_FREE(h, r->in);
  H_FREE(h, r->batch);
  H_FREE(h, r);
}

void rooms_del(rooms *r) {
  if (!r) return;
  rooms_hub *h = r->hub;
  pthread_mutex_lock(&h->mu);
  h->loops[r->index] = NULL;
  for (size_t i = 0; i < r->in_len; i++) msg_unref(r->in[i], 1);
  r->in_len = 0;
  pthread_mutex_unlock(&h->mu);
  uv_close((uv_handle_t *)&r->async, loop_closed);
}

/* ---- members ------------------------------------------------------------- */

int rooms_join(rooms *r, rooms_member *m, const char *room, h2ws_rt_ws *ws,
               void *user_data) {
  if (!r || !m || !room || (!ws && !r->cb.deliver))
    return H2WS_ERR_INVALID_ARGUMENT;
  size_t n = strlen(room);
  if (n == 0 || n > ROOMS_MAX_NAME) return H2WS_ERR_INVALID_ARGUMENT;
  if (m->local) return H2WS_ERR_INVALID_STATE;
  rooms_hub *h = r->hub;
  hub_room *hr = NULL;
  int wake = 0;
  pthread_mutex_lock(&h->mu);
  int rv = room_get(h, room, n, &hr);
  struct rooms_local *lr = rv ? NULL : hr->local[r->index];
  if (rv == 0 && !lr) {
    lr = H_CALLOC(h, 1, sizeof *lr);
    if (!lr) {
      if (hr->refs == 0) { /* made just now */
        room_ref(hr);
        room_unref(h, hr);
      }
      rv = H2WS_ERR_NOMEM;
    } else {
      lr->room = hr;
      lr->loop = r;
      hr->local[r->index] = lr;
    }
  }
  if (rv == 0) {
    m->local = lr;
    m->ws = ws;
    m->user_data = user_data;
    m->prev = NULL;
    m->next = lr->head;
    if (lr->head) lr->head->prev = m;
    lr->head = m;
    lr->n++;
    hr->loop_members[r->index]++;
    h->members++;
    if (hr->members++ == 0) {
      room_ref(hr);
      wake = work_add(h, hr);
    }
  }
  if (wake) h->bops->wake(h->link);
  pthread_mutex_unlock(&h->mu);
  return rv;
}

void rooms_leave(rooms_member *m) {
  if (!m || !m->local) return;
  struct rooms_local *lr = m->local;
  hub_room *hr = lr->room;
  rooms *r = lr->loop;
  rooms_hub *h = r->hub;
  if (m->prev) m->prev->next = m->next;
  else lr->head = m->next;
  if (m->next) m->next->prev = m->prev;
  m->next = m->prev = NULL;
  m->local = NULL;
  int wake = 0;
  pthread_mutex_lock(&h->mu);
  if (--lr->n == 0) {
    hr->local[r->index] = NULL;
    H_FREE(h, lr);
  }
  hr->loop_members[r->index]--;
  h->members--;
  if (--hr->members == 0) {
    wake = work_add(h, hr);
    room_unref(h, hr);
  }
  if (wake) h->bops->wake(h->link);
  pthread_mutex_unlock(&h->mu);
}

uint32_t rooms_member_count(const rooms_member *m) {
  if (!m || !m->local) return 0;
  rooms_hub *h = m->local->loop->hub;
  pthread_mutex_lock(&h->mu);
  uint32_t n = m->local->room->members;
  pthread_mutex_unlock(&h->mu);
  return n;
}

uint32_t rooms_count(rooms *r, const char *room) {
  if (!r || !room) return 0;
  rooms_hub *h = r->hub;
  pthread_mutex_lock(&h->mu);
  hub_room *hr = room_find(h, room, strlen(room));
  uint32_t n = hr ? hr->members : 0;
  pthread_mutex_unlock(&h->mu);
  return n;
}

/* ---- publishing ---------------------------------------------------------- */

int rooms_publish(rooms *r, const char *room, h2ws_opcode opcode,
                  const uint8_t *data, size_t datalen) {
  if (!r || !room || (!data && datalen) ||
      (opcode != H2WS_OP_TEXT && opcode != H2WS_OP_BINARY))
    return H2WS_ERR_INVALID_ARGUMENT;
  size_t n = strlen(room);
  if (n == 0 || n > ROOMS_MAX_NAME) return H2WS_ERR_INVALID_ARGUMENT;
  rooms_hub *h = r->hub;
  if (datalen > h->o.max_message) return H2WS_ERR_TOO_LARGE;
  rooms_msg *m = NULL;
  /* the one encoding of this message, outside the lock */
  int rv = msg_new(h, opcode, data, datalen, &m);
  if (rv) return rv;
  int wake = 0;
  pthread_mutex_lock(&h->mu);
  hub_room *hr = NULL;
  rv = room_get(h, room, n, &hr);
  if (rv) {
    pthread_mutex_unlock(&h->mu);
    h2ws_ws_prepared_del(m->prep);
    H_FREE(h, m);
    return rv;
  }
  room_ref(hr);
  m->room = hr;
  m->origin = h->origin;
  m->seq = ++h->seq;
  int via_link = h->bops && h->link_up && !h->overloaded &&
                 h->out_len < h->o.max_pending;
  if (via_link) {
    /* PUBLISHed for every server; delivered here when it comes back,
     * unless the room is not subscribed yet (then now, and its echo is
     * ignored) */
    if (h->out_len == h->out_cap) {
      size_t ncap = h->out_cap ? h->out_cap * 2 : 64;
      rooms_msg **p = H_REALLOC(h, h->outbox, ncap * sizeof *p);
      if (!p) via_link = 0;
      else {
        h->outbox = p;
        h->out_cap = ncap;
      }
    }
  }
  if (via_link) {
    msg_ref(m);
    h->outbox[h->out_len++] = m;
    wake = 1;
    int kept = 0;
    if (hr->sub == SUB_ON && hr->members) {
      if (h->pend_len == h->pend_cap && h->pend_cap < h->o.max_pending) {
        size_t ncap = h->pend_cap ? h->pend_cap * 2 : 64;
        if (ncap > h->o.max_pending) ncap = h->o.max_pending;
        rooms_msg **p = H_MALLOC(h, ncap * sizeof *p);
        if (p) {
          for (size_t i = 0; i < h->pend_len; i++)
            p[i] = h->pending[(h->pend_head + i) % h->pend_cap];
          H_FREE(h, h->pending);
          h->pending = p;
          h->pend_cap = ncap;
          h->pend_head = 0;
        }
      }
      if (h->pend_len < h->pend_cap &&
          h->pend_bytes + m->len <= h->o.max_pending_bytes) {
        msg_ref(m);
        h->pending[(h->pend_head + h->pend_len++) % h->pend_cap] = m;
        h->pend_bytes += m->len;
        kept = 1;
      } else {
        h->overloaded = 1; /* Redis does not keep up: the link goes down */
      }
    }
    if (!kept && hr->members) {
      fanout_locked(h, m);
      h->st.local++;
    }
  } else if (hr->members) {
    fanout_locked(h, m);
    h->st.local++;
  }
  if (!via_link) {
    if (h->bops && h->link_up) h->overloaded = 1, wake = 1;
  }
  if (wake) h->bops->wake(h->link);
  msg_unref(m, 1);
  pthread_mutex_unlock(&h->mu);
  return 0;
}

/* ---- the backend link's side ---------------------------------------------- */

void rooms__hub_set_backend(rooms_hub *h, const rooms_backend_ops *ops,
                            void *link, const char *name) {
  pthread_mutex_lock(&h->mu);
  h->bops = ops;
  h->link = link;
  snprintf(h->backend_name, sizeof h->backend_name, "%s", name);
  pthread_mutex_unlock(&h->mu);
}

void rooms__link_up(rooms_hub *h) {
  pthread_mutex_lock(&h->mu);
  h->link_up = 1;
  h->overloaded = 0;
  h->st.link_ups++;
  for (int b = 0; b < ROOMS_BUCKETS; b++)
    for (hub_room *r = h->bucket[b]; r; r = r->hnext)
      if (r->members) work_add(h, r);
  pthread_mutex_unlock(&h->mu);
}

void rooms__link_down(rooms_hub *h) {
  pthread_mutex_lock(&h->mu);
  if (h->link_up) h->st.link_downs++;
  h->link_up = 0;
  h->overloaded = 0;
  for (size_t i = 0; i < h->out_len; i++) msg_unref(h->outbox[i], 1);
  h->out_len = 0;
  /* sent, never seen back: delivered here now, in their order, once (the
   * other servers got them from Redis, or lost them with the link) */
  for (size_t i = 0; i < h->pend_len; i++) {
    rooms_msg *m = h->pending[(h->pend_head + i) % h->pend_cap];
    fanout_locked(h, m);
    h->st.local++;
    msg_unref(m, 1);
  }
  h->pend_len = h->pend_head = 0;
  h->pend_bytes = 0;
  while (h->work) {
    hub_room *r = h->work;
    h->work = r->wnext;
    r->in_work = 0;
    room_unref(h, r);
  }
  for (int b = 0; b < ROOMS_BUCKETS; b++)
    for (hub_room *r = h->bucket[b], *nx; r; r = nx) {
      nx = r->hnext;
      if (r->sub != SUB_NONE) {
        r->sub = SUB_NONE;
        room_unref(h, r);
      }
    }
  h->st.subscribed = 0;
  pthread_mutex_unlock(&h->mu);
}

int rooms__link_run(rooms_hub *h, const rooms_link_io *io, void *link) {
  pthread_mutex_lock(&h->mu);
  int down = h->overloaded;
  if (!h->link_up || down) {
    pthread_mutex_unlock(&h->mu);
    return down;
  }
  for (size_t i = 0; i < h->out_len; i++) {
    io->publish(link, h->outbox[i]->room, h->outbox[i]);
    h->st.published++;
    msg_unref(h->outbox[i], 1);
  }
  h->out_len = 0;
  while (h->work) {
    hub_room *r = h->work;
    h->work = r->wnext;
    r->in_work = 0;
    /* one command in flight per room: a confirmation revisits it */
    if (r->sub == SUB_NONE && r->members) {
      io->subscribe(link, r, 1);
      r->sub = SUB_SENT;
      room_ref(r);
    } else if (r->sub == SUB_ON && !r->members) {
      io->subscribe(link, r, 0);
      r->sub = UNSUB_SENT;
    }
    room_unref(h, r);
  }
  pthread_mutex_unlock(&h->mu);
  return 0;
}

/* The room of a channel, or NULL. */
static hub_room *chan_room(rooms_hub *h, const char *chan, size_t len) {
  size_t pl = strlen(h->prefix);
  if (len <= pl + 5 || memcmp(chan, h->prefix, pl) != 0 ||
      memcmp(chan + pl, "room:", 5) != 0)
    return NULL;
  return room_find(h, chan + pl + 5, len - pl - 5);
}

void rooms__link_confirm(rooms_hub *h, const char *chan, size_t chanlen,
                         int on) {
  pthread_mutex_lock(&h->mu);
  hub_room *r = chan_room(h, chan, chanlen);
  if (r && on && r->sub == SUB_SENT) {
    r->sub = SUB_ON;
    h->st.subscribed++;
    if (!r->members) work_add(h, r);
  } else if (r && !on && r->sub == UNSUB_SENT) {
    r->sub = SUB_NONE;
    h->st.subscribed--;
    if (r->members) work_add(h, r);
    room_unref(h, r);
  }
  pthread_mutex_unlock(&h->mu);
}

size_t rooms__wire_header(char *buf, uint64_t origin, uint64_t seq,
                          h2ws_opcode op) {
  int n = snprintf(buf, ROOMS_WIRE_HDR_MAX, "h2ws1 %016llx %llu %c\n",
                   (unsigned long long)origin, (unsigned long long)seq,
                   op == H2WS_OP_BINARY ? 'b' : 't');
  return n > 0 ? (size_t)n : 0;
}

/* Parses the header; returns its length, or 0 if it is not one. */
static size_t wire_parse(const uint8_t *d, size_t len, uint64_t *porigin,
                         uint64_t *pseq, h2ws_opcode *pop) {
  if (len < 6 + 16 + 1 + 1 + 1 + 1 + 1 || memcmp(d, "h2ws1 ", 6) != 0)
    return 0;
  uint64_t o = 0, s = 0;
  size_t i = 6;
  for (; i < 22; i++) {
    int c = d[i];
    int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (v < 0) return 0;
    o = o << 4 | (uint64_t)v;
  }
  if (d[i++] != ' ') return 0;
  size_t digits = 0;
  while (i < len && d[i] >= '0' && d[i] <= '9' && digits < 20) {
    uint64_t ns = s * 10 + (uint64_t)(d[i] - '0');
    if (ns < s) return 0;
    s = ns;
    i++;
    digits++;
  }
  if (!digits || i + 3 > len || d[i] != ' ' || (d[i + 1] != 't' && d[i + 1] != 'b') ||
      d[i + 2] != '\n')
    return 0;
  *porigin = o;
  *pseq = s;
  *pop = d[i + 1] == 'b' ? H2WS_OP_BINARY : H2WS_OP_TEXT;
  return i + 3;
}

/* Remote origins: nonzero if (origin, seq) is new (and remembers it). */
static int seen_fresh(rooms_hub *h, uint64_t origin, uint64_t seq) {
  int lru = 0;
  h->seen_tick++;
  for (int i = 0; i < ROOMS_SEEN; i++) {
    if (h->seen[i].origin == origin) {
      h->seen[i].used = h->seen_tick;
      if (seq <= h->seen[i].seq) return 0;
      h->seen[i].seq = seq;
      return 1;
    }
    if (h->seen[i].used < h->seen[lru].used) lru = i;
  }
  h->seen[lru].origin = origin;
  h->seen[lru].seq = seq;
  h->seen[lru].used = h->seen_tick;
  return 1;
}

void rooms__link_message(rooms_hub *h, const char *chan, size_t chanlen,
                         const uint8_t *data, size_t len) {
  uint64_t origin = 0, seq = 0;
  h2ws_opcode op = H2WS_OP_TEXT;
  size_t hl = wire_parse(data, len, &origin, &seq, &op);
  if (hl == 0 || len - hl > h->o.max_message ||
      (op == H2WS_OP_TEXT && !h2ws_utf8_is_valid(data + hl, len - hl))) {
    pthread_mutex_lock(&h->mu);
    h->st.malformed++;
    pthread_mutex_unlock(&h->mu);
    return;
  }
  if (origin == h->origin) {
    /* our own, back from Redis: deliver it if it is still kept (the
     * prepared frame made at publish time is the one sent) */
    pthread_mutex_lock(&h->mu);
    h->st.received++;
    while (h->pend_len) {
      rooms_msg *m = h->pending[h->pend_head];
      if (m->seq > seq) break;
      h->pend_head = (h->pend_head + 1) % h->pend_cap;
      h->pend_len--;
      h->pend_bytes -= m->len;
      /* earlier ones not seen back were for a room unsubscribed since:
       * nobody here to deliver them to */
      if (m->seq == seq) {
        fanout_locked(h, m);
        seq = 0; /* delivered */
      }
      msg_unref(m, 1);
    }
    if (seq) h->st.duplicates++;
    pthread_mutex_unlock(&h->mu);
    return;
  }
  rooms_msg *m = NULL;
  pthread_mutex_lock(&h->mu);
  h->st.received++;
  hub_room *r = chan_room(h, chan, chanlen);
  int fresh = seen_fresh(h, origin, seq);
  if (!fresh) h->st.duplicates++;
  pthread_mutex_unlock(&h->mu);
  if (!fresh || !r) return;
  /* the one encoding of this message on this server, outside the lock */
  if (msg_new(h, op, data + hl, len - hl, &m) != 0) return;
  m->origin = origin;
  m->seq = seq;
  pthread_mutex_lock(&h->mu);
  r = chan_room(h, chan, chanlen); /* it may have gone meanwhile */
  if (r) {
    room_ref(r);
    m->room = r;
    fanout_locked(h, m);
    msg_unref(m, 1);
  }
  pthread_mutex_unlock(&h->mu);
  if (!r) {
    h2ws_ws_prepared_del(m->prep);
    H_FREE(h, m);
  }
}

int rooms__link_stale(rooms_hub *h, uint64_t now_ms) {
  pthread_mutex_lock(&h->mu);
  int stale = h->overloaded ||
              (h->pend_len &&
               now_ms - h->pending[h->pend_head]->born_ms > h->o.link_timeout_ms);
  pthread_mutex_unlock(&h->mu);
  return stale;
}

void rooms__link_count(rooms_hub *h, int lost) {
  pthread_mutex_lock(&h->mu);
  if (!lost) h->st.link_failures++;
  pthread_mutex_unlock(&h->mu);
}

/* ---- the hub's life and figures ------------------------------------------- */

void rooms_hub_stop(rooms_hub *h) {
  if (!h || !h->bops) return;
  h->bops->stop(h->link);
}

void rooms_hub_del(rooms_hub *h) {
  if (!h) return;
  if (h->bops) h->bops->del(h->link);
  rooms__link_down(h); /* releases what a backend left */
  for (int b = 0; b < ROOMS_BUCKETS; b++)
    for (hub_room *r = h->bucket[b], *nx; r; r = nx) {
      nx = r->hnext;
      H_FREE(h, r);
    }
  H_FREE(h, h->outbox);
  H_FREE(h, h->pending);
  pthread_mutex_destroy(&h->mu);
  H_FREE(h, h);
}

void rooms_hub_get_stats(rooms_hub *h, rooms_stats *st) {
  pthread_mutex_lock(&h->mu);
  *st = h->st;
  st->backend = h->bops != NULL;
  st->link_up = h->link_up;
  st->rooms = h->nrooms;
  st->members = h->members;
  pthread_mutex_unlock(&h->mu);
}

const char *rooms_hub_backend_name(const rooms_hub *h) {
  return h && h->bops ? h->backend_name : "";
}
