#!/usr/bin/python3
# Interop: `h2ws serve --workers 2` and `h2ws proxy --workers 2` (N event
# loops on threads, one listener each on the same port with SO_REUSEPORT).
# Peers: python3-websockets (HTTP/1.1 clients, and the proxy's backend) and
# python3-h2 + wsproto (HTTP/2 clients).
#
#  - TLS with a generated certificate written by --write-cert: every
#    connection, whichever worker takes it, verifies against that one file
#    (a certificate per worker would fail half of them);
#  - many connections: both workers accept (h2ws_worker_connections_total
#    and _websockets_total in /metrics), and /metrics' totals equal what
#    the test did (connections, WebSockets, messages each way, closes);
#  - /chat members on different workers (each learns its worker from /stats
#    on the same HTTP/2 connection) see each other's messages exactly once;
#  - /stats of a tab lists its HTTP/1.1 connections on every worker;
#  - one access log with whole lines, one per WebSocket, with the worker
#    (connection ids are per worker);
#  - SIGTERM closes the WebSockets of every worker with 1001 and the process
#    exits 0 within seconds;
#  - --cleartext the same (h2c and HTTP/1.1);
#  - --max-ws counts every worker's WebSockets (503 on either beyond it);
#  - h2ws load --workers 2: one report summing both loops, equal to what
#    the server counted;
#  - proxy --workers 2 echoes through to a websockets backend, with two
#    listening sockets on its port, and stops the same way;
#  - --workers 0 / 65 / garbage: a usage error (exit 1) naming the option;
#    a port another server listens on: refused (exit 2) although workers
#    bind with SO_REUSEPORT.
#
# Usage: /usr/bin/python3 test_workers.py /abs/path/to/h2ws
import asyncio
import json
import os
import re
import signal
import ssl
import subprocess
import sys
import threading
import time
import urllib.request

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import interop_util as iu  # noqa: E402
import websockets  # noqa: E402

T = iu.Tally(limit=240)
ACCESS_RX = re.compile(
    r"^h2ws-access ts=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ remote=\S+ transport=(h2|h2c|http/1\.1) "
    r"tls=(yes|no) conn=\d+ stream=\d+ path=\S+ subprotocol=\S+ compressed=(yes|no) "
    r"duration_ms=\d+ msgs_in=\d+ msgs_out=\d+ bytes_in=\d+ bytes_out=\d+ close=\d+ "
    r"worker=(\d+)$")


class Server:
    """One `h2ws serve|proxy --workers N` process and what the test did to it."""

    def __init__(self, argv, tls, cafile=None):
        self.tls = tls
        self.cafile = cafile
        self.p = iu.spawn(argv)
        self.r = iu.LineReader(self.p)
        scheme = "https" if tls else "http"
        m = self.r.wait_for(r"h2ws: listening on %s://127\.0\.0\.1:(\d+)/" % scheme, timeout=15)
        if not m:
            iu.stop(self.p)
            raise RuntimeError("no listening line (%s):\n%s" % (" ".join(argv), self.r.text()))
        self.port = int(m.group(1))
        self.conns = 0      # TCP connections the test made
        self.ws = 0         # WebSockets opened
        self.msgs_in = 0    # messages the server received
        self.msgs_out = 0   # messages it sent

    def ctx(self, alpn=("http/1.1",)):
        c = ssl.create_default_context(cafile=self.cafile)
        c.check_hostname = False  # 127.0.0.1 is in the certificate, names aside
        c.set_alpn_protocols(list(alpn))
        return c

    def url(self, path):
        return "%s://127.0.0.1:%d%s" % ("wss" if self.tls else "ws", self.port, path)

    def metrics(self):
        self.conns += 1
        u = "%s://127.0.0.1:%d/metrics" % ("https" if self.tls else "http", self.port)
        kw = {"context": self.ctx()} if self.tls else {}
        with urllib.request.urlopen(u, timeout=10, **kw) as r:
            text = r.read().decode()
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                k, v = line.rsplit(" ", 1)
                out[k] = float(v)
        return out

    def h2(self):
        self.conns += 1
        if self.tls:
            return iu.H2WSClient(self.port, tls=True)
        return iu.H2WSClient(self.port, tls=False)


def per_worker(m, name):
    rx = re.compile(r'^%s\{worker="(\d+)"' % name)
    out = {}
    for k, v in m.items():
        mm = rx.match(k)
        if mm:
            out[int(mm.group(1))] = v
    return out


def settle(srv, cond, timeout=5.0):
    """/metrics until cond(m) holds (the other worker publishes within a
    tick); returns the last one."""
    deadline = time.monotonic() + timeout
    while True:
        m = srv.metrics()
        if cond(m) or time.monotonic() > deadline:
            return m
        time.sleep(0.2)


# ---- many connections ------------------------------------------------------

async def h1_echo_many(srv, n, msgs):
    ctx = srv.ctx() if srv.tls else None

    async def one(i):
        async with websockets.connect(srv.url("/echo?n=%d" % i), ssl=ctx, compression=None,
                                      close_timeout=5, open_timeout=15) as ws:
            got = []
            for k in range(msgs):
                await ws.send("m%d-%d" % (i, k))
                got.append(await asyncio.wait_for(ws.recv(), 15))
            await ws.close(1000)
            return got == ["m%d-%d" % (i, k) for k in range(msgs)]

    res = await asyncio.gather(*(one(i) for i in range(n)), return_exceptions=True)
    srv.conns += n
    srv.ws += n
    srv.msgs_in += n * msgs
    srv.msgs_out += n * msgs
    return [r is True for r in res], res


def h2_echo_many(srv, nconn, streams, msgs):
    ok = 0
    for c in range(nconn):
        cl = srv.h2()
        sts = [cl.open_ws("/echo") for _ in range(streams)]
        for st in sts:
            cl.wait_response(st)
        for st in sts:
            for k in range(msgs):
                got = cl.echo(st, "h2-%d-%d" % (c, k))
                ok += got is not None and got[1] == "h2-%d-%d" % (c, k)
        for st in sts:
            cl.ws_close(st, 1000)
        cl.pump(lambda: all(st.close is not None for st in sts), what="close echoes")
        cl.close()
        srv.ws += streams
        srv.msgs_in += streams * msgs
        srv.msgs_out += streams * msgs
    return ok == nconn * streams * msgs


def check_spread_and_totals(srv, tag, closes_1000):
    m = settle(srv, lambda m: m.get("h2ws_connections_total") == srv.conns and
               m.get("h2ws_websockets_total") == srv.ws and
               m.get('h2ws_messages_total{direction="in"}') == srv.msgs_in)
    pc = per_worker(m, "h2ws_worker_connections_total")
    pw = per_worker(m, "h2ws_worker_websockets_total")
    T.check(sorted(pc) == [0, 1] and all(v > 0 for v in pc.values()) and
            sorted(pw) == [0, 1] and all(v > 0 for v in pw.values()),
            "%s: both workers accepted connections and WebSockets" % tag, repr((pc, pw)))
    T.check(m.get("h2ws_connections_total") == srv.conns and
            sum(pc.values()) == srv.conns,
            "%s: /metrics connections_total = the %d connections made, = sum over workers"
            % (tag, srv.conns), repr((m.get("h2ws_connections_total"), pc)))
    T.check(m.get("h2ws_websockets_total") == srv.ws and sum(pw.values()) == srv.ws,
            "%s: /metrics websockets_total = the %d opened, = sum over workers" % (tag, srv.ws),
            repr((m.get("h2ws_websockets_total"), pw)))
    T.check(m.get('h2ws_messages_total{direction="in"}') == srv.msgs_in and
            m.get('h2ws_messages_total{direction="out"}') == srv.msgs_out and
            m.get('h2ws_close_total{code="1000"}') == closes_1000,
            "%s: /metrics messages in/out %d/%d and %d closes 1000, summed"
            % (tag, srv.msgs_in, srv.msgs_out, closes_1000),
            repr({k: v for k, v in m.items() if "messages" in k or "close" in k}))
    return m


# ---- chat across workers ---------------------------------------------------

def chat_on_both_workers(srv, tag):
    """Two HTTP/2 connections on different workers, each with /stats (which
    names its worker) and /chat; returns [(client, chat stream, worker)]."""
    found = {}
    spare = []
    for _ in range(40):
        cl = srv.h2()
        st = cl.open_ws("/stats")
        cl.wait_response(st)
        cl.pump(lambda: st.messages, what="/stats figures")
        w = json.loads(st.messages[0][1])["you"]["worker"]
        srv.ws += 1
        srv.msgs_out += 1
        cl.ws_close(st, 1000)
        cl.pump(lambda: st.close is not None, what="/stats close")
        if w in found:
            spare.append(cl)
            continue
        chat = cl.open_ws("/chat?nick=w%d" % w)
        cl.wait_response(chat)
        srv.ws += 1
        found[w] = (cl, chat, w)
        if len(found) == 2:
            break
    for cl in spare:
        cl.close()
    T.check(sorted(found) == [0, 1], "%s: /stats names the worker; HTTP/2 connections on both"
            % tag, repr(sorted(found)))
    return list(found.values())


def chat_once(members, tag):
    (ca, sa, wa), (cb, sb, wb) = members

    def texts(st, text):
        return [json.loads(p)["text"] for k, p in st.messages
                if k == "text" and json.loads(p).get("type") == "msg" and
                json.loads(p).get("text") == text]

    for (cx, sx, wx), (cy, sy, wy) in (((ca, sa, wa), (cb, sb, wb)), ((cb, sb, wb), (ca, sa, wa))):
        text = "from worker %d" % wx
        cx.ws_send(sx, text)
        cx.pump(lambda: texts(sx, text), what="own message")
        cy.pump(lambda: texts(sy, text), what="message from the other worker")
        t0 = time.monotonic()
        while time.monotonic() - t0 < 0.5:  # a duplicate would come now
            cx._io_once(0.05)
            cy._io_once(0.05)
        T.check(len(texts(sy, text)) == 1 and len(texts(sx, text)) == 1,
                "%s: /chat member on worker %d sees the message from worker %d once"
                % (tag, wy, wx), repr((texts(sy, text), texts(sx, text))))
    joins = [json.loads(p) for k, p in sa.messages if k == "text"]
    T.check(any(j.get("type") == "join" and j.get("nick") == "w%d" % wb for j in joins),
            "%s: the member on worker %d sees the join on worker %d" % (tag, wa, wb), repr(joins[:4]))


# ---- SIGTERM ---------------------------------------------------------------

async def sigterm_closes_all(srv, tag, h2_members, n_h1, before):
    ctx = srv.ctx() if srv.tls else None
    held = []
    for i in range(n_h1):
        held.append(await websockets.connect(srv.url("/echo?held=%d" % i), ssl=ctx,
                                             compression=None, close_timeout=5, open_timeout=15))
    srv.conns += n_h1
    srv.ws += n_h1
    m = settle(srv, lambda m: m.get("h2ws_websockets_total") == srv.ws)
    pw = per_worker(m, "h2ws_worker_websockets_total")
    bw = per_worker(before, "h2ws_worker_websockets_total")
    T.check(all(pw.get(w, 0) > bw.get(w, 0) for w in (0, 1)),
            "%s: the held WebSockets are on both workers" % tag, repr((bw, pw)))
    t0 = time.monotonic()
    os.kill(srv.p.pid, signal.SIGTERM)

    def pump_h2():
        out = []
        for cl, st, w in h2_members:
            try:
                cl.pump(lambda: st.close is not None or st.reset is not None or st.ended,
                        timeout=10, what="close on SIGTERM")
            except Exception as e:  # noqa: BLE001
                out.append((w, repr(e)))
            out.append((w, st.close and st.close[0]))
        return out

    h2res = await asyncio.get_running_loop().run_in_executor(None, pump_h2)
    for ws in held:
        try:
            await asyncio.wait_for(ws.wait_closed(), 10)
        except asyncio.TimeoutError:
            pass
    codes = [ws.close_code for ws in held]
    try:
        rc = srv.p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        rc = None
    took = time.monotonic() - t0
    T.check(all(c == 1001 for c in codes), "%s: SIGTERM closes %d HTTP/1.1 WebSockets with 1001"
            % (tag, n_h1), repr(codes))
    T.check([c for w, c in h2res] == [1001] * len(h2_members),
            "%s: SIGTERM closes the HTTP/2 /chat members on both workers with 1001" % tag,
            repr(h2res))
    T.check(rc == 0 and took < 8, "%s: exit 0 within seconds of SIGTERM" % tag,
            "rc=%r after %.1f s\n%s" % (rc, took, srv.r.text()[-1500:]))


def check_access_log(path, nws, tag):
    with open(path, "rb") as f:
        data = f.read().decode("utf-8", "replace")
    lines = data.split("\n")
    T.check(data.endswith("\n") and lines[-1] == "", "%s: access log ends with a whole line" % tag)
    lines = lines[:-1]
    bad = [x for x in lines if not ACCESS_RX.match(x)]
    T.check(len(lines) == nws and not bad,
            "%s: one access log, one whole line per WebSocket (%d)" % (tag, nws),
            "%d lines, bad: %r" % (len(lines), bad[:3]))
    workers = sorted({ACCESS_RX.match(x).group(4) for x in lines if ACCESS_RX.match(x)})
    closes = [x.rsplit(" close=", 1)[1].split()[0] for x in lines]
    T.check(workers == ["0", "1"] and closes.count("1001") >= 32,
            "%s: access log lines name both workers; the SIGTERM closes logged as 1001" % tag,
            repr((workers, closes.count("1001"))))


# ---- scenarios -------------------------------------------------------------

def serve_scenario(binary, tls):
    tag = "serve --workers 2" + ("" if tls else " --cleartext")
    d = iu.tmpdir()
    log = os.path.join(d, "access-%s.log" % ("tls" if tls else "clear"))
    cert = os.path.join(d, "cert.pem")
    argv = [binary, "serve", "--listen", "127.0.0.1:0", "--workers", "2", "--access-log", log]
    argv += ["--write-cert", cert] if tls else ["--cleartext"]
    srv = Server(argv, tls, cafile=cert if tls else None)
    oks, res = asyncio.run(h1_echo_many(srv, 60, 3))
    T.check(all(oks), "%s: 60 HTTP/1.1 WebSockets echo%s" %
            (tag, " (certificate verified on every connection)" if tls else ""),
            repr([r for r in res if r is not True][:3]))
    T.check(h2_echo_many(srv, 8, 3, 2), "%s: 8 HTTP/2 connections x 3 WebSockets echo" % tag)
    closes = srv.ws
    m = check_spread_and_totals(srv, tag, closes)
    asyncio.run(tab_across_workers(srv, tag))
    members = chat_on_both_workers(srv, tag)
    chat_once(members, tag)
    nchat_msgs = 2  # each member sent one
    srv.msgs_in += nchat_msgs
    asyncio.run(sigterm_closes_all(srv, tag, members, 30, m))
    check_access_log(log, srv.ws, tag)


async def echo_backend(ws):
    async for msg in ws:
        await ws.send(msg)


async def proxy_async(binary):
    tag = "proxy --workers 2"
    backend = await websockets.serve(echo_backend, "127.0.0.1", 0, compression=None)
    bport = backend.sockets[0].getsockname()[1]
    argv = [binary, "proxy", "--listen", "127.0.0.1:0", "--cleartext", "--workers", "2",
            "--to", "ws://127.0.0.1:%d/" % bport]
    srv = await asyncio.get_running_loop().run_in_executor(None, lambda: Server(argv, False))
    try:
        listening = count_listeners(srv.port)
        T.check(listening == 2, "%s: two listening sockets on its port (SO_REUSEPORT)" % tag,
                repr(listening))
        oks, res = await h1_echo_many(srv, 40, 3)
        T.check(all(oks), "%s: 40 HTTP/1.1 WebSockets echo through a websockets backend" % tag,
                repr([r for r in res if r is not True][:3]))
        ok = await asyncio.get_running_loop().run_in_executor(
            None, lambda: h2_echo_many(srv, 4, 3, 2))
        T.check(ok, "%s: 4 h2c connections x 3 WebSockets echo through" % tag)
        held = [await websockets.connect(srv.url("/held%d" % i), compression=None,
                                         close_timeout=5, open_timeout=15) for i in range(20)]
        for i, ws in enumerate(held):
            await ws.send("held %d" % i)
            await asyncio.wait_for(ws.recv(), 10)
        t0 = time.monotonic()
        os.kill(srv.p.pid, signal.SIGTERM)
        for ws in held:
            try:
                await asyncio.wait_for(ws.wait_closed(), 10)
            except asyncio.TimeoutError:
                pass
        codes = [ws.close_code for ws in held]
        rc = await asyncio.get_running_loop().run_in_executor(None, lambda: srv.p.wait(timeout=10))
        took = time.monotonic() - t0
        T.check(all(c == 1001 for c in codes), "%s: SIGTERM closes 20 WebSockets with 1001" % tag,
                repr(codes))
        T.check(rc == 0 and took < 8, "%s: exit 0 within seconds of SIGTERM" % tag,
                "rc=%r after %.1f s" % (rc, took))
    finally:
        iu.stop(srv.p)
        backend.close()
        await backend.wait_closed()


def count_listeners(port):
    n = 0
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            parts = line.split()
            local, state = parts[1], parts[3]
            if state == "0A" and int(local.split(":")[1], 16) == port:
                n += 1
    return n


async def max_ws_async(binary):
    """--max-ws counts the WebSockets of every worker: with 16 open (on
    both workers), each further one is refused with 503 whichever worker
    takes it (per-worker limits would let about half through)."""
    tag = "serve --workers 2 --max-ws 16"
    srv = await asyncio.get_running_loop().run_in_executor(None, lambda: Server(
        [binary, "serve", "--listen", "127.0.0.1:0", "--cleartext", "--workers", "2",
         "--max-ws", "16", "--access-log", "off"], False))
    try:
        held = [await websockets.connect(srv.url("/echo"), compression=None, open_timeout=15)
                for _ in range(16)]
        srv.conns += 16
        srv.ws += 16
        statuses = []
        for _ in range(12):
            try:
                ws = await websockets.connect(srv.url("/echo"), compression=None, open_timeout=15)
                statuses.append(101)
                await ws.close()
            except websockets.exceptions.InvalidStatusCode as e:
                statuses.append(e.status_code)
        m = await asyncio.get_running_loop().run_in_executor(
            None, lambda: settle(srv, lambda m: m.get("h2ws_websockets_total") == 16))
        pw = per_worker(m, "h2ws_worker_websockets_total")
        T.check(sorted(pw) == [0, 1] and all(v > 0 for v in pw.values()),
                "%s: the 16 open WebSockets are on both workers" % tag, repr(pw))
        T.check(statuses == [503] * 12, "%s: 12 more refused with 503 on either worker" % tag,
                repr(statuses))
        for ws in held:
            await ws.close()
    finally:
        T.check(iu.stop(srv.p) == 0, "%s: SIGTERM exit 0" % tag)


async def tab_across_workers(srv, tag):
    """The demo page over HTTP/1.1: a tab's WebSockets are connections of
    their own, on both workers; its /stats lists them all."""
    ctx = srv.ctx() if srv.tls else None
    stats = await websockets.connect(srv.url("/stats?tab=T1"), ssl=ctx, compression=None,
                                     open_timeout=15)
    echoes = [await websockets.connect(srv.url("/echo?tab=T1"), ssl=ctx, compression=None,
                                       open_timeout=15) for _ in range(15)]
    srv.conns += 16
    srv.ws += 16
    for i, ws in enumerate(echoes):
        await ws.send("tab %d" % i)
        await asyncio.wait_for(ws.recv(), 10)
    srv.msgs_in += 15

    def full(st):
        ws = [w for c in st["connections"] for w in c["ws"]]
        mine = st["you"]["worker"]
        workers = {c.get("worker", mine) for c in st["connections"]}
        return (len(ws) == 16 and len(st["connections"]) == 16 and workers == {0, 1} and
                sorted(w["msgs_in"] for w in ws if w["path"] == "/echo") == [1] * 15)

    # the other worker's part is at most a tick old: wait for a push that
    # shows everything (pushes come when something changed)
    st = None
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            st = json.loads(await asyncio.wait_for(stats.recv(), 5))
        except asyncio.TimeoutError:
            await stats.send("now")  # any message: the figures now
            srv.msgs_in += 1
            continue
        if full(st):
            break
    T.check(st is not None and full(st),
            "%s: /stats of a tab lists its 16 HTTP/1.1 connections on both workers" % tag,
            repr(st and st["connections"])[:800])
    for w in echoes + [stats]:
        await w.close()


def load_workers(binary):
    """h2ws load --workers 2 (two loops) against serve --workers 2: one
    report of the sums, equal to what the server counted."""
    tag = "load --workers 2"
    srv = Server([binary, "serve", "--listen", "127.0.0.1:0", "--cleartext", "--workers", "2",
                  "--access-log", "off"], False)
    try:
        r = subprocess.run([binary, "load", srv.url("/echo"), "--workers", "2", "--connections", "21",
                            "--streams-per-conn", "3", "--messages", "50", "--json"],
                           capture_output=True, text=True, timeout=120)
        d = json.loads(r.stdout) if r.stdout.strip() else {}
        opens = r.stderr.count("WebSockets open")
        T.check(r.returncode == 0 and d.get("ws_opened") == 63 and
                d.get("messages_received") == 63 * 50 and d.get("messages_lost") == 0 and
                d.get("connections") == 21 and d.get("latency_us", {}).get("samples") == 63 * 50 and
                opens == 2,
                "%s: one report, the sums of both loops (63 WebSockets, 3150 echoes)" % tag,
                "rc=%r %r %r" % (r.returncode, r.stdout[:400], r.stderr[-400:]))
        srv.conns += 21
        m = settle(srv, lambda m: m.get('h2ws_messages_total{direction="in"}') == 63 * 50)
        T.check(m.get('h2ws_messages_total{direction="in"}') == 63 * 50 and
                m.get("h2ws_websockets_total") == 63,
                "%s: the server counted the same" % tag, repr(m.get('h2ws_messages_total{direction="in"}')))
        r = subprocess.run([binary, "load", srv.url("/echo"), "--workers", "0"],
                           capture_output=True, text=True, timeout=10)
        T.check(r.returncode == 1 and "--workers" in r.stderr, "load --workers 0: usage error",
                repr(r.stderr))
    finally:
        T.check(iu.stop(srv.p) == 0, "%s: server SIGTERM exit 0" % tag)


def cli_errors(binary):
    for cmd in ("serve", "proxy"):
        for bad in ("0", "65", "two", "-1", ""):
            argv = [binary, cmd, "--listen", "127.0.0.1:0", "--cleartext", "--workers", bad]
            if cmd == "proxy":
                argv += ["--to", "ws://127.0.0.1:9/"]
            r = subprocess.run(argv, capture_output=True, text=True, timeout=10)
            T.check(r.returncode == 1 and "--workers" in r.stderr and "listening" not in r.stdout,
                    "%s --workers %r: usage error naming the option" % (cmd, bad),
                    "rc=%r stderr=%r" % (r.returncode, r.stderr))
    # SO_REUSEPORT would share a port in use with the same user's server:
    # refused as with one worker
    port = iu.free_port()
    first = iu.spawn([binary, "serve", "--cleartext", "--listen", "127.0.0.1:%d" % port,
                      "--workers", "2"])
    fr = iu.LineReader(first)
    try:
        T.check(fr.wait_for(r"listening on", timeout=10) is not None, "serve --workers 2 on port %d" % port)
        for cmd in ("serve", "proxy"):
            argv = [binary, cmd, "--cleartext", "--listen", "127.0.0.1:%d" % port, "--workers", "2"]
            if cmd == "proxy":
                argv += ["--to", "ws://127.0.0.1:9/"]
            r = subprocess.run(argv, capture_output=True, text=True, timeout=10)
            T.check(r.returncode == 2 and "cannot listen on 127.0.0.1:%d: address already in use" % port
                    in r.stderr, "%s --workers 2 on a port in use: refused, exit 2" % cmd,
                    "rc=%r %r" % (r.returncode, r.stderr))
    finally:
        T.check(iu.stop(first) == 0, "serve --workers 2: SIGTERM while idle, exit 0")
    # one worker: no per-worker series (as before workers existed)
    p, r, port = iu.start_h2ws_serve(binary, cleartext=True, extra=["--workers", "1"])
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10) as f:
            text = f.read().decode()
        T.check("h2ws_connections_total 1" in text and "h2ws_worker_" not in text,
                "serve --workers 1: /metrics as before (no per-worker series)", text[:300])
    finally:
        T.check(iu.stop(p) == 0, "serve --workers 1: SIGTERM exit 0")


def main():
    binary = iu.h2ws_bin()
    T.run("CLI", cli_errors, binary)
    T.run("serve TLS", serve_scenario, binary, True)
    T.run("serve cleartext", serve_scenario, binary, False)
    T.run("proxy", lambda: asyncio.run(proxy_async(binary)))
    T.run("max-ws", lambda: asyncio.run(max_ws_async(binary)))
    T.run("load --workers", load_workers, binary)
    T.finish()


if __name__ == "__main__":
    T.main(main)
