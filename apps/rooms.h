/*
 * apps/rooms.h - publish/subscribe by room name for WebSockets: the
 * broadcast routes of `h2ws serve` (chat rooms), across the event loops
 * (workers) of one process and, through Redis, across servers.
 *
 * Three objects:
 *
 *   rooms_hub     one per process, shared by every loop: rooms, their
 *                 member counts, the order of messages, the backend link.
 *                 Thread-safe (one mutex).
 *   rooms         one per event loop (runtime, worker thread): the
 *                 members on that loop and their delivery (a uv_async).
 *                 Used only from its loop's thread.
 *   rooms_member  one member (a WebSocket in a room), caller memory.
 *
 *     rooms_hub *hub;  rooms_hub_new(&hub, &options);
 *     rooms_hub_start_redis(hub, "redis://127.0.0.1:6379", loop, err, n);
 *     rooms *r;        rooms_new(&r, hub, h2ws_rt_uv_loop(rt), &cbs, app);
 *     rooms_join(r, &member, "/chat", ws, session);
 *     rooms_publish(r, "/chat", H2WS_OP_TEXT, json, jsonlen);
 *     ...
 *     rooms_leave(&member);  rooms_del(r);  rooms_hub_stop(hub);
 *     (run the loops once more: handles close)  rooms_hub_del(hub);
 *
 * A publish builds the message once: its WebSocket frame is a prepared
 * message (h2ws/ws.h) made by the publisher, shared by every loop and
 * copied into each member's output queue (h2ws_rt_ws_send_prepared); no
 * member costs an encoding or an allocation.  Members with
 * permessage-deflate get it uncompressed (RSV1 clear).
 *
 * Delivery is always from the loop (a uv_async), never inside
 * rooms_publish(): every member of a loop sees the room's messages in
 * one order.
 *
 * Order and duplicates.  Every message carries the hub's origin id (64
 * random bits, new for each hub) and a sequence number (one counter per
 * hub, in publish order).
 *  - Local backend (no Redis, or the link is down): the hub hands each
 *    message to every loop with members under its mutex, so every member
 *    of the process sees one order per room, and each publisher's
 *    messages in the order published.
 *  - Redis link up and the room subscribed: a message is PUBLISHed and
 *    delivered when it comes back from Redis, also on the server that
 *    sent it, so every server sees Redis's one order per room.  Own
 *    messages are kept (in order, bounded) until they come back; if the
 *    link goes down first they are delivered locally then, once.  A
 *    message whose room is not subscribed yet (just joined, link just
 *    up) is delivered locally at once and PUBLISHed for the other
 *    servers; its echo, if one comes, is dropped (only messages still
 *    kept are delivered from an echo).  Messages of other servers are
 *    dropped when their sequence is not above the last one seen from
 *    that origin (a duplicate).
 *  - Link down: local delivery only (other servers do not get the
 *    messages); reconnection with backoff; once up again, rooms with
 *    members are subscribed again and cross-server delivery resumes.
 *
 * This is app code (apps/, like apps/kit.h): it uses only the library's
 * public headers, libuv and hiredis.
 */
#ifndef H2WS_APPS_ROOMS_H
#define H2WS_APPS_ROOMS_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include <h2ws/rt.h>

typedef struct rooms_hub rooms_hub;
typedef struct rooms rooms;
typedef struct rooms_member rooms_member;

/* At most this many loops (rooms objects) per hub. */
#define ROOMS_MAX_LOOPS 64
/* Longest room name (bytes). */
#define ROOMS_MAX_NAME 255

typedef struct rooms_hub_options {
  /* Allocator of the hub's messages (with their prepared frames), rooms,
   * members' records and queues; NULL (default): libc.  Must be usable
   * from every loop's thread. */
  const h2ws_mem *mem;
  /* Rooms beyond this are refused (rooms_join: H2WS_ERR_TOO_LARGE).
   * Default 1024. */
  size_t max_rooms;
  /* Largest message published or accepted from Redis (bytes); larger
   * ones are refused (rooms_publish: H2WS_ERR_TOO_LARGE) or dropped.
   * Default 1 MiB. */
  size_t max_message;
  /* Messages waiting in one loop's inbox, and their payload bytes;
   * beyond either, that loop's copy is dropped (counted).  Defaults
   * 65536 and 64 MiB. */
  size_t max_inbox, max_inbox_bytes;
  /* Own messages sent to Redis and not back yet, and their payload
   * bytes; beyond either, or when the oldest is older than
   * link_timeout_ms, the link counts as down (they are delivered
   * locally).  Defaults 4096 and 16 MiB. */
  size_t max_pending, max_pending_bytes;
  /* Redis link: heartbeat period, and the time without a heartbeat (or
   * with an own message not back) after which the link counts as down;
   * the connect (and AUTH) budget; reconnection backoff from
   * backoff_min_ms doubling to backoff_max_ms.  Defaults 1000, 3000,
   * 2000, 100, 2000 (ms). */
  uint64_t heartbeat_ms, link_timeout_ms, connect_timeout_ms;
  uint64_t backoff_min_ms, backoff_max_ms;
  /* Redis channel prefix: a room's channel is PREFIX "room:" NAME, the
   * heartbeats go to PREFIX "hb:" ORIGIN.  Default "h2ws:". */
  const char *channel_prefix;
  /* One line of diagnostics (link up, down and why, retries), from the
   * link's loop thread.  NULL: none. */
  void (*log)(const char *line, void *log_user_data);
  void *log_user_data;
} rooms_hub_options;

void rooms_hub_options_default(rooms_hub_options *options);

/* Creates a hub (options copied; NULL: defaults).  Returns 0,
 * H2WS_ERR_NOMEM, H2WS_ERR_INTERNAL (mutex). */
int rooms_hub_new(rooms_hub **phub, const rooms_hub_options *options);

/* A parsed redis:// URL. */
typedef struct rooms_redis_url {
  char host[256];
  int port;           /* default 6379 */
  char user[128];     /* "" if none */
  char password[256]; /* "" if none: no AUTH */
} rooms_redis_url;

/* Parses "redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]" (DB is accepted
 * and ignored: Redis pub/sub spans databases; an IPv6 host in
 * brackets).  Returns 0, or -1 with a reason in err. */
int rooms_redis_parse_url(const char *url, rooms_redis_url *out, char *err,
                          size_t errlen);

/* Starts the Redis backend on `loop` (its connections, timers and
 * async live there; call from that loop's thread, before rooms_new on
 * other threads uses the hub).  Until the link is up, and whenever it is
 * down, delivery is local.  Returns 0, H2WS_ERR_INVALID_ARGUMENT (bad
 * URL: reason in err), H2WS_ERR_INVALID_STATE (already started),
 * H2WS_ERR_NOMEM. */
int rooms_hub_start_redis(rooms_hub *hub, const char *url, uv_loop_t *loop,
                          char *err, size_t errlen);

/* Stops the backend (from the link loop's thread): its connections and
 * handles close; run that loop afterwards so their close callbacks run.
 * Messages kept for an echo are delivered locally.  NULL allowed. */
void rooms_hub_stop(rooms_hub *hub);

/* Frees the hub: every rooms object must have been deleted and the
 * backend stopped (and its loop run).  NULL allowed. */
void rooms_hub_del(rooms_hub *hub);

/* A loop's callbacks; each may be NULL.  Called from the loop's delivery;
 * they must not join or leave. */
typedef struct rooms_callbacks {
  /* Sends a message to a member.  NULL (default):
   * h2ws_rt_ws_send_prepared(m->ws, msg).  Set it for members that are
   * not WebSockets (a bridge, a test).  Returns what the send returned. */
  int (*deliver)(rooms_member *m, const h2ws_ws_prepared *msg,
                 void *user_data);
  /* What a member's delivery did (for figures): rv is what the send
   * returned for the message `msg` (h2ws_ws_prepared_payload() gives its
   * payload). */
  void (*on_sent)(rooms_member *m, const h2ws_ws_prepared *msg, int rv,
                  void *user_data);
} rooms_callbacks;

/* Creates the rooms of one loop (callbacks copied, may be NULL).  Call
 * from that loop's thread.  Returns 0, H2WS_ERR_TOO_LARGE (ROOMS_MAX_LOOPS
 * reached), H2WS_ERR_NOMEM, H2WS_ERR_INTERNAL. */
int rooms_new(rooms **pr, rooms_hub *hub, uv_loop_t *loop,
              const rooms_callbacks *callbacks, void *user_data);

/* Removes the loop from the hub (its members must have left) and closes
 * its handle: run the loop afterwards to free it.  NULL allowed. */
void rooms_del(rooms *r);

/* A member: caller memory (embed it), untouched between join and leave
 * except by the rooms. */
struct rooms_member {
  rooms_member *next, *prev; /* in its loop's room */
  struct rooms_local *local;
  h2ws_rt_ws *ws;
  void *user_data;
};

/* Puts ws (NULL allowed with a deliver callback) in `room` (name:
 * 1..ROOMS_MAX_NAME bytes) as member m; it gets
 * the room's messages delivered from now on (membership counts at
 * delivery: through Redis, a message published just before the join can
 * be delivered just after it).  Returns 0,
 * H2WS_ERR_INVALID_ARGUMENT, H2WS_ERR_INVALID_STATE (m is a member
 * already), H2WS_ERR_TOO_LARGE (max_rooms), H2WS_ERR_NOMEM. */
int rooms_join(rooms *r, rooms_member *m, const char *room, h2ws_rt_ws *ws,
               void *user_data);

/* Takes m out of its room (nothing more is sent to it).  A member not
 * in a room is ignored. */
void rooms_leave(rooms_member *m);

/* Members of m's room in this process (every loop), or 0. */
uint32_t rooms_member_count(const rooms_member *m);

/* Members of `room` in this process (every loop), or 0. */
uint32_t rooms_count(rooms *r, const char *room);

/* Publishes a message (TEXT: valid UTF-8, not checked) to every member
 * of `room` (this process, and other servers through Redis), the
 * publisher's own members included.  The payload is copied once, into
 * the prepared frame.  Returns 0, H2WS_ERR_INVALID_ARGUMENT,
 * H2WS_ERR_TOO_LARGE (above max_message), H2WS_ERR_NOMEM. */
int rooms_publish(rooms *r, const char *room, h2ws_opcode opcode,
                  const uint8_t *data, size_t datalen);

/* Figures (for /metrics). */
typedef struct rooms_stats {
  int backend;         /* 0: local only; 1: Redis */
  int link_up;         /* Redis link up (heartbeats flowing) */
  uint64_t link_ups;   /* times the link came up */
  uint64_t link_downs; /* times an up link was lost */
  uint64_t link_failures; /* connection attempts that failed */
  uint64_t rooms, members, subscribed; /* now */
  uint64_t published;  /* messages PUBLISHed to Redis */
  uint64_t received;   /* room messages received from Redis */
  uint64_t local;      /* published messages delivered locally (no link,
                          room not subscribed yet, link lost before echo) */
  uint64_t duplicates; /* dropped: seen already (origin + sequence) */
  uint64_t malformed;  /* dropped: not an h2ws message, or too large */
  uint64_t overflow;   /* dropped: a loop's inbox was full */
  uint64_t deliveries; /* copies queued to members */
} rooms_stats;

void rooms_hub_get_stats(rooms_hub *hub, rooms_stats *st);
/* "127.0.0.1:6379", or "" without Redis. */
const char *rooms_hub_backend_name(const rooms_hub *hub);

#endif
