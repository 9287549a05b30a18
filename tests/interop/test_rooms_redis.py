#!/usr/bin/python3
# Chat rooms shared through Redis (Debian's redis-server, started here on a
# port this test picks, no persistence, stopped at the end): two
# `h2ws serve --redis` processes share /chat.  Members on both
# (python3-websockets clients, permessage-deflate offered: the servers
# send them the room's prepared, uncompressed frames) get every message
# once, each sender's in its order, and all six in one order (Redis's).
# Redis killed (SIGKILL) in the middle of a burst, and later frozen
# (SIGSTOP) in the middle of one, then killed: both servers log the link
# going down (a frozen one: no heartbeat back), /metrics shows it, the
# sender's own members still get the whole burst once and in order (what
# Redis never echoed is delivered locally when the link is lost), the
# other server's members a part of it, in order, without a duplicate;
# each server's members keep chatting among themselves.  Each time Redis
# is restarted on the same port the links come back (logged, /metrics
# reconnects) and cross-server delivery resumes.  Both servers exit 0 on
# SIGTERM.
#
# Usage: /usr/bin/python3 test_rooms_redis.py /abs/path/to/h2ws
import asyncio
import json
import os
import re
import shutil
import signal
import sys
import time
import urllib.request

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import interop_util as iu  # noqa: E402
import websockets  # noqa: E402

T = iu.Tally(limit=200)
BIN = None
REDIS = shutil.which("redis-server") or "/usr/bin/redis-server"


def start_redis(port):
    p = iu.spawn([REDIS, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                  "--appendonly", "no", "--daemonize", "no"])
    if not iu.wait_port(port, 10):
        raise RuntimeError("redis-server did not listen on %d" % port)
    return p


def metrics(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        m = re.match(r"^(h2ws_rooms\w*)(\{[^}]*\})? (\d+)$", line)
        if m:
            key = m.group(1) + ("{%s}" % m.group(2)[1:-1] if m.group(2) and "reason" in m.group(2) else "")
            out[key] = int(m.group(3))
    return out


def wait_metric(port, name, pred, timeout=10.0):
    deadline = time.monotonic() + timeout
    v = None
    while time.monotonic() < deadline:
        v = metrics(port).get(name)
        if v is not None and pred(v):
            return v
        time.sleep(0.05)
    return v


class Member:
    def __init__(self, port, nick):
        self.port, self.nick = port, nick
        self.msgs = []     # (from, text) of type msg, in arrival order
        self.notices = []

    async def open(self):
        self.ws = await websockets.connect("ws://127.0.0.1:%d/chat?nick=%s" % (self.port, self.nick),
                                           close_timeout=3, max_size=None)
        self.task = asyncio.ensure_future(self._read())

    async def _read(self):
        try:
            async for raw in self.ws:
                m = json.loads(raw)
                if m.get("type") == "msg":
                    self.msgs.append((m["from"], m["text"]))
                else:
                    self.notices.append(m)
        except websockets.ConnectionClosed:
            pass

    async def send(self, text):
        await self.ws.send(text)

    async def close(self):
        await self.ws.close()
        await self.task

    def mine(self, sender, prefix):
        return [t for f, t in self.msgs if f == sender and t.startswith(prefix)]


async def until(cond, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        await asyncio.sleep(0.02)
    return False


def in_order_once(texts, prefix, n):
    """texts are prefix0..prefix(n-1), a subsequence in order, no duplicate."""
    idx = [int(t[len(prefix):]) for t in texts]
    return all(0 <= i < n for i in idx) and all(a < b for a, b in zip(idx, idx[1:]))


async def scenario(rport, a, b):
    ma = [Member(a.port, n) for n in ("alice", "amy", "al")]
    mb = [Member(b.port, n) for n in ("bob", "ben", "bea")]
    everyone = ma + mb
    for m in everyone:
        await m.open()
    # every member has joined on both servers, and each server's room is
    # subscribed on Redis (before that its messages are delivered locally)
    T.check(await until(lambda: all(len(m.notices) >= 1 for m in everyone), 10, "joins"),
            "six members joined (three per server)")
    T.check(wait_metric(a.port, "h2ws_rooms_subscribed", lambda v: v >= 1) == 1 and
            wait_metric(b.port, "h2ws_rooms_subscribed", lambda v: v >= 1) == 1,
            "both servers subscribed their room on Redis")
    # each member sees its own join and those of everyone after it, in
    # the order they joined, whichever server they are on (and maybe one
    # just before its own: membership counts when a message is delivered,
    # and through Redis that is a round trip after it was published)
    nicks = [m.nick for m in everyone]
    ok = await until(lambda: all(len(m.notices) >= len(nicks) - i for i, m in enumerate(everyone)),
                     10, "cross joins")
    seen = [[n["nick"] for n in m.notices if n["type"] == "join"] for m in everyone]
    T.check(ok and all(s == nicks[len(nicks) - len(s):] and len(s) >= len(nicks) - i
                       for i, s in enumerate(seen)),
            "join notices cross servers, in join order", repr(seen))

    # --- 1. everyone talks at once -------------------------------------
    K = 30
    await asyncio.gather(*[_burst(m, "t", K) for m in everyone])
    total = K * len(everyone)
    ok = await until(lambda: all(len(m.msgs) >= total for m in everyone), 15, "burst")
    T.check(ok, "every member got all %d messages (both servers)" % total,
            repr([len(m.msgs) for m in everyone]))
    once = all(len(m.msgs) == total and len(set(m.msgs)) == total for m in everyone)
    T.check(once, "exactly once: no duplicate, none missing",
            repr([(len(m.msgs), len(set(m.msgs))) for m in everyone]))
    order = all(m.mine(s.nick, "t") == ["t%d" % i for i in range(K)]
                for m in everyone for s in everyone)
    T.check(order, "each sender's messages arrive in its order, on both servers")
    T.check(all(m.msgs == everyone[0].msgs for m in everyone),
            "all six members (two servers) saw one order (Redis's)")
    sa, sb = metrics(a.port), metrics(b.port)
    T.check(sa.get("h2ws_rooms_published_total", 0) >= 3 * K and
            sb.get("h2ws_rooms_published_total", 0) >= 3 * K and
            sa.get("h2ws_rooms_received_total", 0) >= total and
            sb.get("h2ws_rooms_received_total", 0) >= total and
            sa.get("h2ws_rooms_link_up") == 1 and sb.get("h2ws_rooms_link_up") == 1,
            "/metrics: link up, published and received counters", repr((sa, sb)))
    T.check(sa.get("h2ws_rooms_deliveries_total", 0) >= 3 * total,
            "/metrics: each message queued once per local member", repr(sa))

    # --- 2. Redis killed in the middle of a burst, restarted -------------
    await outage(rport, a, b, ma, mb, 1, frozen=False)
    # --- 3. Redis stops answering in the middle of a burst (SIGSTOP: the
    # servers' writes still succeed, nothing comes back, so the rest of the
    # burst is held for its echo until the heartbeat times out and the link
    # counts as down), then dies, restarted --------------------------------
    await outage(rport, a, b, ma, mb, 2, frozen=True)
    for m in everyone:
        await m.close()


def count_lines(reader, regex):
    rx = re.compile(regex)
    with reader.cv:
        return sum(1 for line in reader.err if rx.search(line))


async def wait_lines(reader, regex, n, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if count_lines(reader, regex) >= n:
            return True
        await asyncio.sleep(0.05)
    return False


async def outage(rport, a, b, ma, mb, k, frozen):
    """The k-th Redis outage, in the middle of alice's burst."""
    what = "Redis frozen then killed" if frozen else "Redis killed"
    everyone = ma + mb
    for m in everyone:
        m.msgs.clear()
    alice, bob = ma[0], mb[0]
    N = 300
    prefix = "k%d-" % k
    sender = asyncio.ensure_future(_burst(alice, prefix, N, pause_every=20))
    await until(lambda: len(alice.mine("alice", prefix)) >= 60, 10, "burst started")
    rx_down = r"redis 127\.0\.0\.1:%d: link down: " % rport["port"]
    if frozen:
        os.kill(rport["proc"].pid, signal.SIGSTOP)
    else:
        iu.stop(rport["proc"], sig=signal.SIGKILL)
    await sender
    ok = all([await wait_lines(srv.r, rx_down, k, 10) for srv in (a, b)])
    last = [l for l in a.r.err if re.search(rx_down, l)][-1:] or [""]
    T.check(ok and (("no heartbeat" in last[0]) if frozen else True),
            "%s: both servers log the link going down" % what, last[0] or a.r.text()[-400:])
    if frozen:
        iu.stop(rport["proc"], sig=signal.SIGKILL)
    T.check(wait_metric(a.port, "h2ws_rooms_link_up", lambda v: v == 0) == 0 and
            wait_metric(b.port, "h2ws_rooms_link_up", lambda v: v == 0) == 0,
            "%s: /metrics h2ws_rooms_link_up 0 on both" % what)
    want = ["%s%d" % (prefix, i) for i in range(N)]
    ok = await until(lambda: all(len(m.mine("alice", prefix)) >= N for m in ma), 10, "local burst")
    T.check(ok and all(m.mine("alice", prefix) == want for m in ma),
            "%s: the sender's server delivered the whole burst to its members once, in "
            "order, across the link loss" % what, repr([len(m.mine("alice", prefix)) for m in ma]))
    T.check(all(in_order_once(m.mine("alice", prefix), prefix, N) for m in mb),
            "%s: what the other server got of the burst is in order, without a duplicate" % what,
            repr([len(m.mine("alice", prefix)) for m in mb]))
    # local chat goes on on each server
    la, lb = "local-a%d" % k, "local-b%d" % k
    await alice.send(la)
    await bob.send(lb)
    ok = await until(lambda: all(("alice", la) in m.msgs for m in ma) and
                     all(("bob", lb) in m.msgs for m in mb), 5, "local chat")
    T.check(ok, "%s: each server's members still chat among themselves" % what)
    await asyncio.sleep(0.3)
    T.check(not any(("alice", la) in m.msgs for m in mb) and
            not any(("bob", lb) in m.msgs for m in ma),
            "%s: nothing crosses servers (no link)" % what)
    T.check(a.proc.poll() is None and b.proc.poll() is None, "%s: both servers keep running" % what)

    # Redis back: the links reconnect, delivery crosses again
    await asyncio.sleep(0.5)  # a few refused attempts first
    rport["proc"] = start_redis(rport["port"])
    rx_up = r"redis 127\.0\.0\.1:%d: link up after \d+ failed attempt" % rport["port"]
    ok = all([await wait_lines(srv.r, rx_up, k, 15) for srv in (a, b)])
    T.check(ok, "%s, restarted: both servers log the link coming back (after failed attempts)"
            % what, b.r.text()[-600:])
    T.check(wait_metric(a.port, "h2ws_rooms_subscribed", lambda v: v >= 1) == 1 and
            wait_metric(b.port, "h2ws_rooms_subscribed", lambda v: v >= 1) == 1,
            "%s, restarted: rooms subscribed again" % what)
    sa, sb = metrics(a.port), metrics(b.port)
    T.check(sa.get("h2ws_rooms_link_up") == 1 and sb.get("h2ws_rooms_link_up") == 1 and
            sa.get("h2ws_rooms_link_reconnects_total", 0) == k and
            sb.get("h2ws_rooms_link_reconnects_total", 0) == k and
            sa.get("h2ws_rooms_link_lost_total", 0) == k and
            sa.get("h2ws_rooms_link_failures_total", 0) >= k,
            "%s, restarted: /metrics link up, %d reconnects, losses and failed attempts counted"
            % (what, k), repr((sa, sb)))
    for m in everyone:
        m.msgs.clear()
    ba, bb = "back-a%d" % k, "back-b%d" % k
    await alice.send(ba)
    await bob.send(bb)
    ok = await until(lambda: all(("alice", ba) in m.msgs and ("bob", bb) in m.msgs
                                 for m in everyone), 10, "cross again")
    await asyncio.sleep(0.3)
    T.check(ok and all(sorted(m.msgs) == [("alice", ba), ("bob", bb)] for m in everyone),
            "%s, restarted: messages cross servers again, once each" % what,
            repr([m.msgs for m in everyone]))


async def _burst(m, prefix, n, pause_every=0):
    for i in range(n):
        await m.send("%s%d" % (prefix, i))
        if pause_every and i % pause_every == pause_every - 1:
            await asyncio.sleep(0.01)


class Serve:
    def __init__(self, rport):
        self.proc, self.r, self.port = iu.start_h2ws_serve(
            BIN, cleartext=True,
            extra=("--redis", "redis://127.0.0.1:%d" % rport, "--access-log", "off"))


def main():
    global BIN
    BIN = iu.h2ws_bin()
    if not os.path.exists(REDIS):
        T.check(False, "redis-server is installed (scripts/deps.sh test)")
        return
    port = iu.free_port()
    rport = {"port": port, "proc": start_redis(port)}
    a, b = Serve(port), Serve(port)
    T.check(a.r.wait_for(r"redis 127\.0\.0\.1:%d: link up" % port, 10, "err") is not None and
            b.r.wait_for(r"redis 127\.0\.0\.1:%d: link up" % port, 10, "err") is not None,
            "both servers log their Redis link up", a.r.text())
    try:
        asyncio.new_event_loop().run_until_complete(scenario(rport, a, b))
    except Exception:
        # say what the servers saw (a 1001 here means a server got a signal)
        for name, srv in (("a", a), ("b", b)):
            print("server %s (exit %r) stderr tail:\n  %s" % (
                name, srv.proc.poll(), "\n  ".join(srv.r.err[-8:])))
        raise
    ca, cb = iu.stop(a.proc), iu.stop(b.proc)
    T.check(ca == 0 and cb == 0, "both servers exit 0 on SIGTERM", "%r %r\n%s" % (ca, cb, a.r.text()[-800:]))
    iu.stop(rport["proc"])


if __name__ == "__main__":
    T.main(main)
