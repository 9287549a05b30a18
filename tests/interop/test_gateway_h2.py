#!/usr/bin/python3
# Interop: `h2ws proxy --backend-h2` (and serve's proxy-h2: routes), the
# gateway to HTTP/2 backends. Each client WebSocket, arriving over
# HTTP/1.1 (python3-websockets) or as a stream of an HTTP/2 connection
# (python3-h2 + wsproto), becomes an RFC 8441 extended CONNECT stream to
# the backend, all of them on one backend connection. Backends, each a
# separate process: `h2ws serve --cleartext` (its access log names the
# connection and stream of every WebSocket), Hypercorn (ASGI app, prints
# the client address of each WebSocket) and nghttpx (an RFC 8441 h2
# frontend in front of a python3-websockets HTTP/1.1 backend; access log
# with the remote port). Cases: 100 WebSockets on one backend connection,
# a stalled client stalls only its backend stream, close codes both ways,
# the client answered only after the backend's 200, backend GOAWAY
# (graceful shutdown) and restart, the backend's stream limit (a second
# connection is opened), strict mode 502 and the HTTP/1.1 fallback
# against backends without WebSockets over HTTP/2.
#
# Usage: /usr/bin/python3 test_gateway_h2.py /abs/path/to/h2ws
import asyncio
import os
import re
import signal
import sys
import threading
import time
import urllib.request

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import interop_util as iu  # noqa: E402
import websockets  # noqa: E402

T = iu.Tally(limit=150)
N = 100  # WebSockets on one backend connection (the client's per-session cap)


# --------------------------------------------------------------------------
# processes

def start_proxy(to, mode="--backend-h2", extra=()):
    # one worker: WebSockets share a backend connection per worker (each
    # worker's gateway has its own), and this test counts connections
    argv = [BIN, "proxy", "--cleartext", "--listen", "127.0.0.1:0", "--to", to, "-v",
            "--workers", "1"]
    if mode:
        argv.append(mode)
    argv += list(extra)
    p = iu.spawn(argv)
    r = iu.LineReader(p)
    m = r.wait_for(r"h2ws: listening on http://127\.0\.0\.1:(\d+)/")
    if not m:
        iu.stop(p)
        raise RuntimeError("h2ws proxy did not start (%s):\n%s" % (" ".join(argv), r.text()))
    return p, r, int(m.group(1))


def start_serve_backend(port=0, extra=()):
    log = os.path.join(iu.tmpdir(), "access.log")
    argv = [BIN, "serve", "--cleartext", "--listen", "127.0.0.1:%d" % port,
            "--access-log", log] + list(extra)
    p = iu.spawn(argv)
    r = iu.LineReader(p)
    m = r.wait_for(r"h2ws: listening on http://127\.0\.0\.1:(\d+)/")
    if not m:
        iu.stop(p)
        raise RuntimeError("h2ws serve did not start:\n" + r.text())
    return p, r, int(m.group(1)), log


def start_peer(argv, name):
    p = iu.spawn(argv)
    r = iu.LineReader(p)
    m = r.wait_for(r"PORT (\d+)", timeout=15)
    if not m:
        raise RuntimeError("%s did not start:\n%s" % (name, r.text()))
    return p, r, int(m.group(1))


def start_hypercorn(*args):
    return start_peer([iu.PY, os.path.join(iu.PEERS, "asgi_echo.py")] + list(args), "hypercorn")


def start_nghttpx(port, backend_port, extra=()):
    """nghttpx: h2c (prior knowledge) + HTTP/1.1 frontend, RFC 8441 on
    HTTP/2, HTTP/1.1 backend; logs 'ACCESS <remote port> <alpn> <method>
    <status>' when the backend answers."""
    argv = ["nghttpx", "--conf=" + os.path.join(iu.PEERS, "nghttpx.conf"),
            "-f", "127.0.0.1,%d;no-tls" % port, "-b", "127.0.0.1,%d" % backend_port,
            "--accesslog-file=/dev/stdout", "--accesslog-write-early",
            "--accesslog-format=ACCESS $remote_port $alpn $method $status"] + list(extra)
    p = iu.spawn(argv)
    r = iu.LineReader(p)
    if not (iu.wait_port(port, 10) and p.poll() is None):
        iu.stop(p)
        raise RuntimeError("nghttpx did not start:\n" + r.text())
    return p, r


def lines(reader, rx):
    rx = re.compile(rx)
    with reader.cv:
        return [m for m in (rx.search(x) for x in reader.out) if m]


def wait_lines(reader, rx, n, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = lines(reader, rx)
        if len(got) >= n:
            return got
        time.sleep(0.05)
    return lines(reader, rx)


def access_log(path, n=0, timeout=5.0):
    """The h2ws serve access log as dicts (waits for n lines)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with open(path) as f:
                rows = [dict(kv.split("=", 1) for kv in line.split()[1:])
                        for line in f if line.startswith("h2ws-access ")]
        except FileNotFoundError:
            rows = []
        if len(rows) >= n or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)


def metric(port, name, labels=""):
    body = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5).read().decode()
    m = re.search(r"^%s%s (\d+)$" % (re.escape(name), re.escape(labels)), body, re.M)
    return int(m.group(1)) if m else None


OPEN_RX = r"open \(([\w/.+]+), stream \d+; backend ([\w/.+]+), stream (\d+)\)"


def proxy_opens(reader):
    """The proxy's -v lines of opened pairs: (front transport, backend
    transport, backend stream)."""
    return [(m.group(1), m.group(2), int(m.group(3))) for m in
            lines_err(reader, OPEN_RX)]


def lines_err(reader, rx):
    rx = re.compile(rx)
    with reader.cv:
        return [m for m in (rx.search(x) for x in reader.err) if m]


async def ws_status(url):
    """The HTTP status a python3-websockets client gets (101: opened)."""
    try:
        async with websockets.connect(url, compression=None, open_timeout=10):
            return 101
    except websockets.InvalidStatusCode as e:
        return e.status_code


async def echo_once(url, msg):
    async with websockets.connect(url, compression=None, close_timeout=3) as ws:
        await ws.send(msg)
        return await asyncio.wait_for(ws.recv(), 10)


# --------------------------------------------------------------------------
# 100 client WebSockets (HTTP/1.1 and HTTP/2 streams) on one backend
# connection

def hundred(proxy_port, n_h1, n_h2, hold):
    """Opens n_h1 HTTP/1.1 WebSockets and n_h2 streams of one HTTP/2
    connection to the proxy, each echoing one message; calls hold() while
    all are open at once; then closes each with 1000. Returns the number
    that echoed and the close codes the clients got back."""
    url = "ws://127.0.0.1:%d/echo" % proxy_port
    h2_ready = threading.Event()
    h1_ready = threading.Event()
    res = {"h2": 0, "codes": []}

    def h2_side():
        c = iu.H2WSClient(proxy_port, tls=False, timeout=20)
        try:
            sts = [c.open_ws("/echo") for _ in range(n_h2)]
            c.pump(lambda: all(st.status is not None or st.reset is not None for st in sts),
                   what="%d responses" % n_h2)
            for i, st in enumerate(sts):
                if st.status == 200:
                    c.ws_send(st, "h2 %d" % i)
            c.pump(lambda: all(st.messages or st.status != 200 for st in sts), what="echoes")
            good = [st for i, st in enumerate(sts) if st.messages == [("text", "h2 %d" % i)]]
            h2_ready.set()
            while not h1_ready.wait(0.02):
                c._io_once(0)
            for st in good:
                c.ws_close(st, 1000, "bye")
            res["h2"] = len(good)
            c.pump(lambda: all(st.close is not None for st in good), what="close answers")
            res["codes"] += [st.close[0] for st in good]
        finally:
            h2_ready.set()
            c.close()

    t = threading.Thread(target=h2_side, daemon=True)
    t.start()

    async def h1_side():
        wss = await asyncio.gather(*(websockets.connect(url, compression=None, close_timeout=5)
                                     for _ in range(n_h1)))
        for i, ws in enumerate(wss):
            await ws.send("h1 %d" % i)
        got = [await asyncio.wait_for(ws.recv(), 10) for ws in wss]
        ok = sum(1 for i, g in enumerate(got) if g == "h1 %d" % i)
        await asyncio.get_running_loop().run_in_executor(None, h2_ready.wait, 20)
        await asyncio.get_running_loop().run_in_executor(None, hold)
        h1_ready.set()
        await asyncio.gather(*(ws.close(1000, "bye") for ws in wss))
        return ok, [ws.close_code for ws in wss]

    try:
        ok1, codes = asyncio.run(h1_side())
    finally:
        h1_ready.set()
        t.join(20)
    return ok1 + res["h2"], codes + res["codes"]


def test_serve_backend_100():
    b, _br, bport, log = start_serve_backend()
    px = None
    try:
        px, pr, pport = start_proxy("ws://127.0.0.1:%d/" % bport)
        seen = {}

        def hold():
            seen["ws"] = metric(bport, "h2ws_websockets_open", '{transport="h2c",tls="no"}')
            seen["h1"] = metric(bport, "h2ws_websockets_open", '{transport="http/1.1",tls="no"}')

        ok, codes = hundred(pport, 60, 40, hold)
        T.check(ok == N and codes == [1000] * N,
                "[h2ws serve] %d client WebSockets (60 HTTP/1.1, 40 HTTP/2 streams) "
                "echo through the gateway and close 1000" % N,
                "ok=%d codes=%r" % (ok, sorted(set(codes))))
        T.check(seen.get("ws") == N and seen.get("h1") in (0, None),
                "[h2ws serve] while all are open the backend's /metrics counts %d h2c "
                "WebSockets and no HTTP/1.1 one" % N, repr(seen))
        rows = access_log(log, N)
        conns = sorted({r.get("conn") for r in rows})
        streams = {r.get("stream") for r in rows}
        T.check(len(rows) == N and all(r.get("transport") == "h2c" for r in rows),
                "[h2ws serve] backend access log: %d WebSockets, all transport=h2c" % N,
                "rows=%d %r" % (len(rows), rows[:2]))
        T.check(len(conns) == 1 and len(streams) == N,
                "[h2ws serve] all %d on ONE backend connection (one conn id), %d distinct "
                "streams" % (N, N), "conns=%r streams=%d" % (conns, len(streams)))
        print("figure: %d client WebSockets -> backend connections %r, %d streams"
              % (len(rows), conns, len(streams)))
        wait_lines_err(pr, OPEN_RX, N, timeout=10.0)
        opens = proxy_opens(pr)
        T.check(len(opens) == N and {o[1] for o in opens} == {"h2c"}
                and len({o[2] for o in opens}) == N,
                "[h2ws serve] the proxy's -v log: %d pairs, every backend side an h2c "
                "stream, %d distinct stream ids" % (N, N), repr(opens[:3]))
        T.check(all(r.get("close") == "1000" for r in rows),
                "[h2ws serve] the clients' close 1000 reaches the backend",
                repr(sorted({r.get("close") for r in rows})))
        # close codes client -> backend, one more WebSocket on the same
        # (idle, kept) connection
        async def code_case():
            async with websockets.connect("ws://127.0.0.1:%d/echo" % pport,
                                          compression=None) as ws:
                await ws.send("x")
                await ws.recv()
                await ws.close(4321, "client says bye")
                return ws.close_code
        got = asyncio.run(code_case())
        rows = access_log(log, N + 1)
        T.check(got == 4321 and len(rows) == N + 1 and rows[-1].get("close") == "4321",
                "[h2ws serve] client close 4321 reaches the backend (its access log)",
                "echoed=%r last=%r" % (got, rows[-1] if rows else None))
        T.check(rows[-1].get("conn") == conns[0],
                "[h2ws serve] a WebSocket soon after reuses the idle backend connection",
                "conn=%r first=%r" % (rows[-1].get("conn"), conns))
    finally:
        if px:
            T.check(iu.stop(px) == 0, "[h2ws serve] proxy exits 0 on SIGTERM")
        iu.stop(b)


# Hypercorn 0.13.2 (Debian 12) drops its whole HTTP/2 connection when one
# WebSocket stream on it ends, whoever closes it (reproduced with python3-h2
# alone; pgjones/hypercorn#329 and #127): the other WebSockets on it then
# end abnormally, which the gateway reports to their clients as 1011. The
# Hypercorn cases therefore check what happens while the WebSockets are
# open, close them only at the end, and each uses a proxy (a backend
# connection) of its own.

def test_hypercorn_100(hp, hr):
    px, pr, pport = start_proxy("ws://127.0.0.1:%d/" % hp)
    try:
        before = len(lines(hr, r"^WEBSOCKET "))
        ok, codes = hundred(pport, 50, 50, lambda: None)
        T.check(ok == N, "[hypercorn] %d client WebSockets (50 HTTP/1.1, 50 HTTP/2 streams) "
                "echo through the gateway" % N, "ok=%d" % ok)
        T.check(len(codes) == N and set(codes) <= {1000, 1011},
                "[hypercorn] every client's close is answered: 1000, or 1011 once Hypercorn "
                "dropped the connection at the first WebSocket's end",
                repr(sorted(set(codes))))
        ws = lines(hr, r"^WEBSOCKET (\S+) \S+ client=(\S+)$")[before:]
        ports = {m.group(2) for m in ws}
        T.check(len(ws) == N and {m.group(1) for m in ws} == {"http/2"} and len(ports) == 1,
                "[hypercorn] its log: %d WebSockets, all http/2, all from one client "
                "address (one connection)" % N,
                "n=%d versions=%r ports=%r" % (len(ws), {m.group(1) for m in ws}, sorted(ports)[:5]))
        print("figure: hypercorn saw %d WebSockets from %d connection(s) %r"
              % (len(ws), len(ports), sorted(ports)))
    finally:
        iu.stop(px)


# --------------------------------------------------------------------------
# backpressure

def flood_count(reader, name):
    got = lines(reader, r"^FLOOD %s (\d+)$" % name)
    return int(got[-1].group(1)) if got else 0


def pump_both(c1, c2, seconds):
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        c1._io_once(0.005)
        c2._io_once(0.005)


def test_stall_nghttpx():
    """Two clients, each receiving a flood from its backend WebSocket
    (python3-websockets, whose sends wait while its socket is full) through
    nghttpx, an RFC 8441 frontend: both are streams of the gateway's one
    backend connection to nghttpx. Client A stops reading (withholds its
    stream window): A's backend stream stalls end to end, up to the
    backend's own sends, while B's keeps flowing; once A reads again its
    flood resumes."""
    wb, wr, wport = start_peer([iu.PY, os.path.join(iu.PEERS, "ws_echo_backend.py")],
                               "websockets backend")
    nport = iu.free_port()
    n = px = c1 = c2 = None
    try:
        n, nr = start_nghttpx(nport, wport)
        px, pr, pport = start_proxy("ws://127.0.0.1:%d/" % nport)
        c1 = iu.H2WSClient(pport, tls=False, timeout=15)
        c2 = iu.H2WSClient(pport, tls=False, timeout=15)
        a = c1.open_ws("/flood/a")
        a.hold = True
        b = c2.open_ws("/flood/b")
        c1.pump(lambda: a.status is not None, what="A's 200")
        c2.pump(lambda: b.status is not None, what="B's 200")
        # wait (at most 8 s) until A's flood has not moved for 1 s
        a1, b1 = flood_count(wr, "a"), flood_count(wr, "b")
        since = time.monotonic()
        deadline = since + 8
        while time.monotonic() < deadline and time.monotonic() - since < 1.0:
            pump_both(c1, c2, 0.1)
            if flood_count(wr, "a") != a1:
                a1, b1 = flood_count(wr, "a"), flood_count(wr, "b")
                since = time.monotonic()
        still = time.monotonic() - since
        a2, b2 = flood_count(wr, "a"), flood_count(wr, "b")
        T.check(still >= 1.0 and a2 == a1 and 0 < a2 and a2 * 16384 < 32 << 20,
                "[nghttpx] a stalled client stalls only its backend stream: the backend's "
                "sends on it stop (%d x 16 KiB, none for %.1f s)" % (a2, still),
                "a: %d -> %d, still for %.1f s" % (a1, a2, still))
        T.check(b2 - b1 >= 64, "[nghttpx] the other client's stream on the same backend "
                "connection keeps flowing meanwhile (%d messages in that time)" % (b2 - b1),
                "b: %d -> %d" % (b1, b2))
        acc = lines(nr, r"^ACCESS (\d+) h2c CONNECT 101$")
        T.check(len(acc) == 2 and acc[0].group(1) == acc[1].group(1),
                "[nghttpx] A and B are streams of one backend connection (one remote port)",
                repr([m.group(0) for m in acc]))
        c1.release(a)
        deadline = time.monotonic() + 10
        while flood_count(wr, "a") <= a2 + 64 and time.monotonic() < deadline:
            pump_both(c1, c2, 0.1)
            c1.release(a)
        T.check(flood_count(wr, "a") > a2 + 64,
                "[nghttpx] once client A reads again, its backend stream resumes",
                "a: %d -> %d" % (a2, flood_count(wr, "a")))
        T.check(a.ws_error is None and b.ws_error is None and all(
            k == "binary" and len(m) == 16384 for k, m in a.messages + b.messages),
            "[nghttpx] every flood message arrived whole", repr((a.ws_error, b.ws_error)))
    finally:
        for c in (c1, c2):
            if c:
                c.close()
        for p in (px, n):
            if p:
                iu.stop(p)
        iu.stop(wb)


def test_stall_serve_echo():
    """An echo backend: client A sends 160 x 64 KiB and does not read its
    echoes; its stream stalls end to end (A cannot even send everything:
    every buffer on the way is bounded, --max-message 64KiB on both) while
    client B, whose WebSocket shares the backend connection, keeps
    echoing; released, A gets every echo, in order."""
    b, _br, bport, log = start_serve_backend(extra=("--max-message", "64KiB"))
    px = c1 = c2 = None
    try:
        px, pr, pport = start_proxy("ws://127.0.0.1:%d/" % bport,
                                    extra=("--max-message", "64KiB"))
        c1 = iu.H2WSClient(pport, tls=False, timeout=15)
        c2 = iu.H2WSClient(pport, tls=False, timeout=15)
        a = c1.open_ws("/echo")
        bb = c2.open_ws("/echo")
        c1.pump(lambda: a.status is not None, what="A's 200")
        c2.pump(lambda: bb.status is not None, what="B's 200")
        a.hold = True
        msgs = [bytes([i]) * 65536 for i in range(160)]
        for m in msgs:
            c1.ws_send(a, m)
        pump_both(c1, c2, 1.5)
        n_ok = 0
        t0 = time.monotonic()
        for i in range(20):
            if c2.echo(bb, "b %d" % i, timeout=5) == ("text", "b %d" % i):
                n_ok += 1
        took = time.monotonic() - t0
        T.check(n_ok == 20 and took < 3, "[h2ws serve] while A is stalled, B echoes 20 "
                "messages over the same backend connection (%.2f s)" % took, "ok=%d" % n_ok)
        T.check(len(a.out) > 0 and len(a.messages) < 160,
                "[h2ws serve] A's stream is stalled end to end: its own sends are held by "
                "flow control (%d B unsent, %d echoes in)" % (len(a.out), len(a.messages)),
                "unsent=%d echoes=%d" % (len(a.out), len(a.messages)))
        c1.release(a)
        c1.pump(lambda: len(a.messages) == 160, timeout=20, what="A's echoes")
        T.check([m for _k, m in a.messages] == msgs,
                "[h2ws serve] released, A gets all 160 echoes intact and in order")
        c1.ws_close(a)
        c2.ws_close(bb)
        c1.pump(lambda: a.close is not None, what="A's close")
        c2.pump(lambda: bb.close is not None, what="B's close")
        rows = access_log(log, 2)
        T.check(len(rows) == 2 and rows[0].get("conn") == rows[1].get("conn"),
                "[h2ws serve] A and B were streams of one backend connection",
                repr([(r.get("conn"), r.get("stream")) for r in rows]))
    finally:
        for c in (c1, c2):
            if c:
                c.close()
        if px:
            iu.stop(px)
        iu.stop(b)


# --------------------------------------------------------------------------
# close codes, answer order, TLS

def test_hypercorn_codes_and_order(hp, hr):
    px, pr, pport = start_proxy("ws://127.0.0.1:%d/" % hp)
    px2 = None
    try:
        async def backend_closes():
            async with websockets.connect("ws://127.0.0.1:%d/close/4001" % pport,
                                          compression=None) as ws:
                await ws.send("x")
                try:
                    await asyncio.wait_for(ws.recv(), 5)
                except websockets.ConnectionClosed:
                    pass
                return ws.close_code
        code = asyncio.run(backend_closes())
        T.check(code == 4001, "[hypercorn] backend close 4001 reaches the client", repr(code))
        # the client's 200 comes only after the backend's (which takes 0.5 s);
        # a message sent right behind the request waits for it, then arrives
        px2, _pr2, pport2 = start_proxy("ws://127.0.0.1:%d/" % hp)
        c = iu.H2WSClient(pport2, tls=False, timeout=10)
        try:
            t0 = time.monotonic()
            st = c.open_ws("/slow")
            st.out += iu.raw_frame(0x1, b"early")
            c.pump(lambda: st.status is not None, what="200")
            took = time.monotonic() - t0
            c.pump(lambda: st.messages, what="echo")
            T.check(st.status == 200 and took >= 0.45,
                    "[hypercorn] the client's 200 follows the backend's (%.2f s, the "
                    "backend answers after 0.5 s)" % took, "status=%r" % st.status)
            T.check(st.messages == [("text", "early")],
                    "[hypercorn] a message sent before the 200 is held, then delivered",
                    repr(st.messages))
        finally:
            c.close()
    finally:
        for p in (px, px2):
            if p:
                iu.stop(p)


async def echo_all(urls):
    """Opens a WebSocket to each URL at once, echoes one message on each,
    then closes them all (Hypercorn: see above). Returns the echoes."""
    wss = await asyncio.gather(*(websockets.connect(u, compression=None) for u in urls))
    for i, w in enumerate(wss):
        await w.send("m%d" % i)
    got = [await asyncio.wait_for(w.recv(), 10) for w in wss]
    await asyncio.gather(*(w.close() for w in wss))
    return got


def test_hypercorn_tls():
    cert, key = iu.make_cert()
    hp, hr = None, None
    h, hr, hp = start_hypercorn("--cert", cert, "--key", key)
    px = None
    try:
        px, pr, pport = start_proxy("wss://127.0.0.1:%d/" % hp, extra=("--insecure-backend",))
        got = asyncio.run(echo_all(["ws://127.0.0.1:%d/t%d" % (pport, i) for i in range(3)]))
        ws = wait_lines(hr, r"^WEBSOCKET (\S+) /t\d client=(\S+)$", 3)
        T.check(got == ["m0", "m1", "m2"] and len(ws) == 3
                and {m.group(1) for m in ws} == {"http/2"} and len({m.group(2) for m in ws}) == 1,
                "[hypercorn wss://] TLS + ALPN h2: 3 WebSockets as streams of one backend "
                "connection", "got=%r log=%r" % (got, [m.group(0) for m in ws]))
    finally:
        if px:
            iu.stop(px)
        iu.stop(h)


# --------------------------------------------------------------------------
# GOAWAY, restart, stream limit

def test_nghttpx_goaway():
    wb, _wr, wport = start_peer([iu.PY, os.path.join(iu.PEERS, "ws_echo_backend.py")],
                                "websockets backend")
    nport = iu.free_port()
    n1 = n2 = px = None
    try:
        n1, n1r = start_nghttpx(nport, wport)
        px, pr, pport = start_proxy("ws://127.0.0.1:%d/echo" % nport)
        url = "ws://127.0.0.1:%d/x" % pport

        async def run():
            nonlocal n2
            old = [await websockets.connect(url, compression=None) for _ in range(3)]
            for i, w in enumerate(old):
                await w.send("old %d" % i)
            got_old = [await asyncio.wait_for(w.recv(), 5) for w in old]
            # graceful shutdown: nghttpx sends GOAWAY, stops listening,
            # and keeps serving its open streams
            os.killpg(n1.pid, signal.SIGQUIT)
            await asyncio.sleep(0.5)
            n2, n2r = start_nghttpx(nport, wport)
            new = []
            for i in range(3):
                w = await websockets.connect(url, compression=None)
                await w.send("new %d" % i)
                new.append((w, await asyncio.wait_for(w.recv(), 5)))
            for i, w in enumerate(old):
                await w.send("after %d" % i)
            got_after = [await asyncio.wait_for(w.recv(), 5) for w in old]
            alive = n1.poll() is None
            for w in old:
                await w.close()
            for w, _ in new:
                await w.close(4002, "new done")
            return got_old, [g for _, g in new], got_after, alive, n2r, [w.close_code for w, _ in new]

        got_old, got_new, got_after, alive, n2r, new_codes = asyncio.run(run())
        a1 = lines(n1r, r"^ACCESS (\d+) h2c CONNECT 101$")
        a2 = wait_lines(n2r, r"^ACCESS (\d+) h2c CONNECT 101$", 3)
        T.check(got_old == ["old 0", "old 1", "old 2"] and len(a1) == 3
                and len({m.group(1) for m in a1}) == 1,
                "[nghttpx] 3 WebSockets as h2c streams of one connection (one remote port)",
                "got=%r log=%r" % (got_old, [m.group(0) for m in a1]))
        T.check(got_new == ["new 0", "new 1", "new 2"] and len(a2) == 3
                and len({m.group(1) for m in a2}) == 1
                and {m.group(1) for m in a2} != {m.group(1) for m in a1},
                "[nghttpx] after the backend's GOAWAY, new WebSockets go to a new connection "
                "(the new nghttpx)", "got=%r log=%r" % (got_new, [m.group(0) for m in a2]))
        T.check(len(lines(n1r, r"^ACCESS ")) == 3,
                "[nghttpx] no new stream on the connection that got GOAWAY")
        T.check(got_after == ["after 0", "after 1", "after 2"] and alive,
                "[nghttpx] the open WebSockets go on after GOAWAY", repr(got_after))
        T.check(new_codes == [4002] * 3, "[nghttpx] client close 4002 answered through nghttpx",
                repr(new_codes))
        try:
            n1.wait(timeout=8)
        except Exception:  # noqa: BLE001
            pass
        T.check(n1.poll() is not None,
                "[nghttpx] once its WebSockets ended the old connection is closed (old "
                "nghttpx exits)", "still running")
    finally:
        for p in (px, n1, n2):
            if p:
                iu.stop(p)
        iu.stop(wb)


def test_serve_restart():
    b, _br, bport, log = start_serve_backend()
    px = b2 = None
    try:
        px, pr, pport = start_proxy("ws://127.0.0.1:%d/" % bport)
        url = "ws://127.0.0.1:%d/echo" % pport

        async def run():
            nonlocal b2
            old = [await websockets.connect(url, compression=None) for _ in range(3)]
            for w in old:
                await w.send("x")
                await w.recv()
            iu.stop(b)  # graceful: Close 1001 on every WebSocket, GOAWAY
            codes = []
            for w in old:
                try:
                    await asyncio.wait_for(w.recv(), 5)
                except websockets.ConnectionClosed:
                    pass
                codes.append(w.close_code)
            b2, _b2r, _p, log2 = start_serve_backend(bport)
            got = await echo_once(url, "after restart")
            return codes, got, log2

        codes, got, log2 = asyncio.run(run())
        T.check(codes == [1001] * 3,
                "[h2ws serve restart] the backend's shutdown close 1001 reaches every client",
                repr(codes))
        rows = access_log(log2, 1)
        T.check(got == "after restart" and len(rows) == 1 and rows[0].get("transport") == "h2c",
                "[h2ws serve restart] a new WebSocket reaches the restarted backend over a new "
                "h2c connection", "got=%r rows=%r" % (got, rows))
    finally:
        for p in (px, b, b2):
            if p:
                iu.stop(p)


def limit_case(tag, pport, reader, rx):
    """5 WebSockets at once through the proxy to a backend allowing 2
    streams per connection: all open, on 3 connections of <= 2 streams."""
    got = asyncio.run(echo_all(["ws://127.0.0.1:%d/s%d" % (pport, i) for i in range(5)]))
    seen = wait_lines(reader, rx, 5)
    per = {}
    for m in seen:
        per[m.group(1)] = per.get(m.group(1), 0) + 1
    T.check(got == ["m%d" % i for i in range(5)],
            "[%s max 2 streams] 5 concurrent WebSockets all open and echo" % tag, repr(got))
    T.check(len(seen) == 5 and len(per) == 3 and max(per.values()) == 2,
            "[%s max 2 streams] the backend's limit is respected: a 2nd and 3rd connection "
            "are opened, at most 2 streams each" % tag, repr(per))


def test_stream_limit():
    h, hr, hp = start_hypercorn("--max-streams", "2")
    px = None
    try:
        px, pr, pport = start_proxy("ws://127.0.0.1:%d/" % hp)
        limit_case("hypercorn", pport, hr, r"^WEBSOCKET http/2 /s\d client=(\S+)$")
    finally:
        if px:
            iu.stop(px)
        iu.stop(h)
    wb, _wr, wport = start_peer([iu.PY, os.path.join(iu.PEERS, "ws_echo_backend.py")],
                                "websockets backend")
    nport = iu.free_port()
    n = px = None
    try:
        n, nr = start_nghttpx(nport, wport, ("--frontend-http2-max-concurrent-streams=2",))
        px, pr, pport = start_proxy("ws://127.0.0.1:%d/" % nport)
        limit_case("nghttpx", pport, nr, r"^ACCESS (\d+) h2c CONNECT 101$")
    finally:
        for p in (px, n):
            if p:
                iu.stop(p)
        iu.stop(wb)


# --------------------------------------------------------------------------
# backends without WebSockets over HTTP/2: strict 502, else HTTP/1.1

def test_h1_only_backends():
    wb, _wr, wport = start_peer([iu.PY, os.path.join(iu.PEERS, "ws_echo_backend.py")],
                                "websockets backend")
    h, hr, hp = start_hypercorn("--no-connect-protocol")
    procs = []
    try:
        for name, to, peer in (("websockets (HTTP/1.1 only)", "ws://127.0.0.1:%d/echo" % wport, None),
                               ("hypercorn h2c without RFC 8441", "ws://127.0.0.1:%d/" % hp, hr)):
            strict, sr, sport = start_proxy(to, "--backend-h2-only")
            prefer, rr, rport = start_proxy(to, "--backend-h2")
            procs += [strict, prefer]
            before = len(lines(hr, r"^WEBSOCKET "))
            st = asyncio.run(ws_status("ws://127.0.0.1:%d/a" % sport))
            T.check(st == 502, "[%s] --backend-h2-only: 502" % name, "status=%r" % st)
            if peer:
                T.check(len(lines(hr, r"^WEBSOCKET ")) == before,
                        "[%s] --backend-h2-only: no WebSocket reached the backend" % name)
            T.check(wait_lines_err(sr, r"502 \(server does not", 1),
                    "[%s] --backend-h2-only: the proxy says why (-v)" % name,
                    "\n".join(sr.err[-3:]))
            got = asyncio.run(echo_twice("ws://127.0.0.1:%d/b" % rport))
            # the proxy's -v lines arrive through a reader thread: on a busy
            # machine the echoes can finish before it has read them
            wait_lines_err(rr, OPEN_RX, 2, timeout=10.0)
            opens = proxy_opens(rr)
            T.check(got == ["one", "two"] and [o[1] for o in opens] == ["http/1.1", "http/1.1"],
                    "[%s] --backend-h2: falls back to HTTP/1.1 (twice)" % name,
                    "got=%r opens=%r stderr=%r" % (got, opens, rr.err[-6:]))
            if peer:
                w = lines(hr, r"^WEBSOCKET (\S+) /b")
                T.check([m.group(1) for m in w] == ["http/1.1", "http/1.1"],
                        "[%s] --backend-h2: the backend saw HTTP/1.1 only" % name,
                        repr([m.group(0) for m in w]))
    finally:
        for p in procs:
            iu.stop(p)
        iu.stop(wb)
        iu.stop(h)


def wait_lines_err(reader, rx, n, timeout=3.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(lines_err(reader, rx)) >= n:
            return True
        time.sleep(0.05)
    return False


async def echo_twice(url):
    return [await echo_once(url, "one"), await echo_once(url, "two")]


# --------------------------------------------------------------------------
# serve's proxy-h2: and proxy-h2-only: routes

def test_serve_routes():
    """serve's proxy-h2: route to nghttpx (RFC 8441 h2c frontend of a
    python3-websockets backend) and proxy-h2-only: to that HTTP/1.1-only
    backend itself."""
    wb, _wr, wport = start_peer([iu.PY, os.path.join(iu.PEERS, "ws_echo_backend.py")],
                                "websockets backend")
    nport = iu.free_port()
    s = n = None
    try:
        n, nr = start_nghttpx(nport, wport)
        s, _sr, sport = iu.start_h2ws_serve(BIN, cleartext=True, extra=(
            "--access-log", "off", "--workers", "1",  # one backend connection
            "--route", "/gw/=proxy-h2:ws://127.0.0.1:%d/" % nport,
            "--route", "/strict=proxy-h2-only:ws://127.0.0.1:%d/echo" % wport))

        async def run():
            got = await echo_all(["ws://127.0.0.1:%d/gw/r%d" % (sport, i) for i in range(3)])
            return got, await ws_status("ws://127.0.0.1:%d/strict" % sport)

        got, st = asyncio.run(run())
        acc = wait_lines(nr, r"^ACCESS (\d+) h2c CONNECT 101$", 3)
        T.check(got == ["m0", "m1", "m2"] and len(acc) == 3 and len({m.group(1) for m in acc}) == 1,
                "[serve proxy-h2:] 3 WebSockets as streams of one HTTP/2 backend connection "
                "(nghttpx: one remote port)", "got=%r log=%r" % (got, [m.group(0) for m in acc]))
        T.check(st == 502, "[serve proxy-h2-only:] an HTTP/1.1-only backend: 502", repr(st))
    finally:
        for p in (s, n):
            if p:
                iu.stop(p)
        iu.stop(wb)


def main():
    T.run("serve backend 100", test_serve_backend_100)
    T.run("stall serve echo", test_stall_serve_echo)
    T.run("stall nghttpx", test_stall_nghttpx)
    T.run("serve restart", test_serve_restart)
    h, hr, hp = start_hypercorn()
    try:
        T.run("hypercorn 100", test_hypercorn_100, hp, hr)
        T.run("hypercorn codes", test_hypercorn_codes_and_order, hp, hr)
    finally:
        iu.stop(h)
    T.run("serve routes", test_serve_routes)
    T.run("hypercorn tls", test_hypercorn_tls)
    T.run("stream limit", test_stream_limit)
    T.run("nghttpx goaway", test_nghttpx_goaway)
    T.run("h1-only backends", test_h1_only_backends)


if __name__ == "__main__":
    BIN = iu.h2ws_bin()
    t0 = time.monotonic()
    main()
    print("elapsed %.1fs" % (time.monotonic() - t0))
    T.finish()
