/* apps/rooms_hub.h - what the rooms hub (apps/rooms.c) shares with its
 * backend link (apps/rooms_redis.c): the message and room records, the
 * hub object, and the calls a link makes from its loop's thread.  Not
 * for other users of apps/rooms.h. */
#ifndef H2WS_APPS_ROOMS_HUB_H
#define H2WS_APPS_ROOMS_HUB_H

#include <pthread.h>
#include "rooms.h"

typedef struct hub_room hub_room;

/* One published message, shared by every loop (and the link) that has
 * it: reference-counted, immutable once made. */
typedef struct rooms_msg {
  int refs; /* atomic */
  rooms_hub *hub;
  hub_room *room; /* holds a room reference */
  uint64_t origin, seq;
  uint64_t born_ms; /* uv_hrtime in ms, for the pending age */
  size_t len;       /* payload bytes, for the budgets */
  h2ws_ws_prepared *prep;
} rooms_msg;

/* A room's Redis subscription, as the link last asked for it. */
enum { SUB_NONE = 0, SUB_SENT, SUB_ON, UNSUB_SENT };

struct hub_room {
  hub_room *hnext;  /* hash chain */
  hub_room *wnext;  /* the link's work list */
  uint32_t refs;    /* messages + (members > 0) + (sub != NONE) + work */
  uint32_t members; /* in this process */
  uint32_t loop_members[ROOMS_MAX_LOOPS];
  /* each loop's members: slot i is read and written only by loop i's
   * thread (while loop_members[i] > 0 the room lives) */
  struct rooms_local *local[ROOMS_MAX_LOOPS];
  uint8_t sub;      /* SUB_* */
  uint8_t in_work;
  uint32_t hash;
  size_t chanlen;   /* channel: PREFIX "room:" NAME */
  size_t nameoff;   /* the name inside chan */
  char chan[];      /* NUL-terminated */
};

/* What a backend link offers the hub.  wake() may be called from any
 * thread, with the hub's mutex held: it only signals (uv_async_send). */
typedef struct rooms_backend_ops {
  void (*wake)(void *link);
  void (*stop)(void *link); /* link thread */
  void (*del)(void *link);  /* after stop and the loop's last run */
} rooms_backend_ops;

#define ROOMS_BUCKETS 256
#define ROOMS_SEEN 64

struct rooms_hub {
  pthread_mutex_t mu;
  rooms_hub_options o;
  char prefix[64];
  hub_room *bucket[ROOMS_BUCKETS];
  size_t nrooms;
  uint64_t members;
  rooms *loops[ROOMS_MAX_LOOPS];
  uint8_t loop_reserved[ROOMS_MAX_LOOPS]; /* rooms_new in progress */
  uint64_t origin, seq;
  /* backend */
  const rooms_backend_ops *bops;
  void *link;
  char backend_name[300];
  int link_up;
  int overloaded;              /* a publish found pending full */
  rooms_msg **outbox;          /* to PUBLISH, in sequence order */
  size_t out_len, out_cap;
  rooms_msg **pending;         /* PUBLISHed, awaiting the echo (ring) */
  size_t pend_head, pend_len, pend_cap;
  size_t pend_bytes;
  hub_room *work;              /* rooms whose subscription to revisit */
  struct {
    uint64_t origin, seq, used;
  } seen[ROOMS_SEEN];          /* last sequence per remote origin */
  uint64_t seen_tick;
  rooms_stats st;
};

/* Milliseconds of a monotonic clock (any thread). */
uint64_t rooms__now_ms(void);

/* ---- for the link, on its loop's thread ------------------------------- */

/* Installs the backend (before any loop uses the hub). */
void rooms__hub_set_backend(rooms_hub *h, const rooms_backend_ops *ops,
                            void *link, const char *name);

/* The link is up: every room with members is to be subscribed. */
void rooms__link_up(rooms_hub *h);
/* The link is down (or stopping): messages awaiting their echo are
 * delivered locally, in order; subscriptions are forgotten. */
void rooms__link_down(rooms_hub *h);

/* What the link writes (called under the hub's mutex, must not call the
 * hub). */
typedef struct rooms_link_io {
  void (*publish)(void *link, const hub_room *room, const rooms_msg *m);
  void (*subscribe)(void *link, const hub_room *room, int on);
} rooms_link_io;

/* Hands the outbox and the subscription work to io.  Returns 1 if the
 * link must count as down (pending full), else 0. */
int rooms__link_run(rooms_hub *h, const rooms_link_io *io, void *link);

/* A subscription (on = 1) or unsubscription was confirmed. */
void rooms__link_confirm(rooms_hub *h, const char *chan, size_t chanlen,
                         int on);

/* A message arrived on a room channel. */
void rooms__link_message(rooms_hub *h, const char *chan, size_t chanlen,
                         const uint8_t *data, size_t len);

/* Nonzero if the oldest message awaiting its echo is older than
 * link_timeout_ms at now_ms (Redis stopped answering). */
int rooms__link_stale(rooms_hub *h, uint64_t now_ms);

/* Counts a failed attempt / a lost link (stats). */
void rooms__link_count(rooms_hub *h, int lost);

/* The header of a message on the wire: "h2ws1 ORIGIN16HEX SEQ t|b\n". */
#define ROOMS_WIRE_HDR_MAX 48
size_t rooms__wire_header(char *buf, uint64_t origin, uint64_t seq,
                          h2ws_opcode op);

#endif
