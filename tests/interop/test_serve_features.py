#!/usr/bin/python3
# `h2ws serve` as a product: the demo page and its assets, static files
# (--root, --route PATH=static:DIR; traversal refused, types, index.html,
# 404, HEAD), --route kinds, the origin allow-list (403), limits
# (--max-ws-per-conn, --max-ws: 503; --max-message: close 1009;
# --idle-timeout: close 1001), the broadcast chat room between two clients
# (join / message / nick / leave), /stats (streams of the caller's
# connection), the access log (one key=value line per WebSocket, h2 and
# http/1.1) and /metrics after traffic. Clients: python3-h2 + wsproto
# (interop_util.H2WSClient) and a small HTTP/1.1 wsproto client.
#
# Usage: /usr/bin/python3 test_serve_features.py /abs/path/to/h2ws
import json
import os
import re
import socket
import ssl
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import interop_util as iu  # noqa: E402
from wsproto import WSConnection  # noqa: E402
from wsproto.connection import ConnectionType  # noqa: E402
from wsproto.events import (AcceptConnection, CloseConnection, Message,  # noqa: E402
                            RejectConnection, Request, TextMessage)

T = iu.Tally(limit=100)
BIN = None


def get(c, path, method="GET"):
    st = c.request([(":method", method), (":scheme", c.scheme), (":path", path),
                    (":authority", c.authority)])
    c.pump(lambda: st.ended or st.reset is not None, what="response to " + path)
    return st.status, st.header("content-type"), bytes(st.body)


def ws_open(c, path, extra=()):
    st = c.open_ws(path, extra=extra)
    c.wait_response(st)
    return st


def wait_msgs(c, st, n, timeout=5):
    c.pump(lambda: len(st.messages) >= n or st.close is not None or st.reset is not None,
           timeout, what="%d messages on stream %d" % (n, st.sid))
    return st.messages


def send_now(c, st, data):
    c.ws_send(st, data)
    c.pump(lambda: True)  # flush it out


def wait_close(c, st, timeout=5):
    c.pump(lambda: st.close is not None or st.reset is not None or st.ended, timeout,
           what="close on stream %d" % st.sid)
    return st.close


class H1WS:
    """A WebSocket over HTTP/1.1 (TLS), wsproto framing."""

    def __init__(self, port, path, origin=None):
        raw = socket.create_connection(("127.0.0.1", port), timeout=5)
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.set_alpn_protocols(["http/1.1"])
        self.sock = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
        self.ws = WSConnection(ConnectionType.CLIENT)
        extra = [("Origin", origin)] if origin else []
        self.sock.sendall(self.ws.send(Request(host="127.0.0.1:%d" % port, target=path,
                                               extra_headers=extra)))
        self.status = None
        self.messages = []
        self.close = None
        self._read(lambda: self.status is not None)

    def _read(self, until, timeout=5):
        deadline = time.monotonic() + timeout
        while not until() and time.monotonic() < deadline:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                data = b""
            self.ws.receive_data(data or None)
            for ev in self.ws.events():
                if isinstance(ev, AcceptConnection):
                    self.status = 101
                elif isinstance(ev, RejectConnection):
                    self.status = ev.status_code
                elif isinstance(ev, TextMessage):
                    self.messages.append(ev.data)
                elif isinstance(ev, CloseConnection):
                    self.close = ev.code
                    try:
                        self.sock.sendall(self.ws.send(ev.response()))
                    except Exception:  # noqa: BLE001
                        pass
            if not data:
                break

    def echo(self, text):
        n = len(self.messages)
        self.sock.sendall(self.ws.send(Message(data=text)))
        self._read(lambda: len(self.messages) > n)
        return self.messages[n] if len(self.messages) > n else None

    def bye(self):
        self.sock.sendall(self.ws.send(CloseConnection(code=1000)))
        self._read(lambda: self.close is not None)
        self.sock.close()


def log_lines(path):
    with open(path) as f:
        return [dict(kv.split("=", 1) for kv in line.split()[1:])
                for line in f if line.startswith("h2ws-access ")]


def metric(text, name, labels=""):
    m = re.search(r"^%s%s (\d+)$" % (re.escape(name), re.escape(labels)), text, re.M)
    return int(m.group(1)) if m else None


def test_page_and_static(port, files):
    c = iu.H2WSClient(port, validate=False)
    s, ct, body = get(c, "/")
    T.check(s == 200 and ct.startswith("text/html") and b"Chat room" in body and b"/stats?tab=" in body,
            "GET / is the demo page (with its script)", "%r %r" % (s, ct))
    T.check(b"http://" not in body.replace(b"http://www.w3.org", b"") and b"cdn" not in body.lower(),
            "the demo page loads nothing from the Internet")
    s, ct, body = get(c, "/style.css")
    T.check(s == 200 and ct.startswith("text/css"), "GET /style.css", repr(ct))
    s, ct, body = get(c, "/files/a.txt")
    T.check(s == 200 and ct.startswith("text/plain") and body == b"hello static\n",
            "--route /files=static:DIR serves a file with its type", "%r %r %r" % (s, ct, body))
    s, ct, body = get(c, "/files/a.txt", method="HEAD")
    T.check(s == 200 and body == b"", "HEAD on a static file: no body", "%r %r" % (s, body))
    s, ct, body = get(c, "/files/sub/")
    T.check(s == 200 and body == b"<p>sub index</p>\n" and ct.startswith("text/html"),
            "a directory answers its index.html", "%r %r" % (s, body))
    s, _ct, _b = get(c, "/files/missing.txt")
    T.check(s == 404, "a missing static file is 404", repr(s))
    for bad in ("/files/../secret.txt", "/files/%2e%2e/secret.txt", "/files/sub/..%2f..%2fsecret.txt",
                "/files/link/secret.txt"):
        s, _ct, body = get(c, bad)
        T.check(s in (403, 404) and b"top secret" not in body, "path traversal refused: " + bad, repr(s))
    s, ct, _b = get(c, "/files/pic.png")
    T.check(s == 200 and ct == "image/png", "content type by extension (png)", repr(ct))
    s, _ct, _b = get(c, "/nothing-here")
    T.check(s == 404, "unknown path 404", repr(s))
    c.close()


def test_root(binary, files):
    p, r, port = iu.start_h2ws_serve(binary, extra=["--root", files, "--access-log", "off"])
    c = iu.H2WSClient(port, validate=False)
    s, ct, body = get(c, "/")
    T.check(s == 200 and body == b"<p>root index</p>\n", "--root: / is DIR/index.html", "%r %r" % (s, body))
    s, ct, body = get(c, "/a.txt")
    T.check(s == 200 and body == b"hello static\n", "--root: files under DIR", repr(s))
    s, _ct, body = get(c, "/../secret.txt")
    T.check(s in (403, 404) and b"top secret" not in body, "--root: traversal refused", repr(s))
    st = ws_open(c, "/echo")
    T.check(st.status == 200 and c.echo(st, "still echo") == ("text", "still echo"),
            "--root keeps the WebSocket routes")
    c.close()
    T.check(iu.stop(p) == 0, "--root server exits 0 on SIGTERM")


def test_origin(port):
    c = iu.H2WSClient(port)
    bad = ws_open(c, "/echo", extra=[("origin", "https://evil.example")])
    T.check(bad.status == 403, "--allow-origin: another Origin gets 403 (h2)", repr(bad.status))
    good = ws_open(c, "/echo", extra=[("origin", "https://good.example")])
    T.check(good.status == 200, "--allow-origin: the allowed Origin is accepted", repr(good.status))
    none = ws_open(c, "/echo")
    T.check(none.status == 200, "no Origin (not a browser) is accepted", repr(none.status))
    c.close()
    h = H1WS(port, "/echo", origin="https://evil.example")
    T.check(h.status == 403, "--allow-origin: 403 over HTTP/1.1 too", repr(h.status))


def test_per_conn_and_stats(port):
    c = iu.H2WSClient(port)
    chat = ws_open(c, "/chat?tab=t1&nick=solo")
    echo = ws_open(c, "/echo?tab=t1")
    stats = ws_open(c, "/stats?tab=t1")
    T.check(chat.status == echo.status == stats.status == 200, "three WebSockets on one connection")
    fourth = ws_open(c, "/echo")
    T.check(fourth.status == 503, "--max-ws-per-conn 3: the 4th on the connection gets 503",
            repr(fourth.status))
    c.echo(echo, "x")
    n = len(stats.messages)
    c.ws_send(stats, "refresh")
    wait_msgs(c, stats, n + 1)
    m = json.loads(stats.messages[-1][1])
    conns = m.get("connections", [])
    T.check(len(conns) == 1 and conns[0]["transport"] == "h2" and conns[0]["tls"] is True,
            "/stats: one h2 TLS connection", repr(m)[:300])
    streams = {w["path"]: w["stream"] for w in conns[0]["ws"]} if conns else {}
    T.check(streams == {"/chat": chat.sid, "/echo": echo.sid, "/stats": stats.sid},
            "/stats: each WebSocket's own stream id on this connection", repr(streams))
    T.check(m["you"]["conn"] == conns[0]["conn"] and m["you"]["stream"] == stats.sid,
            "/stats: 'you' is the caller", repr(m.get("you")))
    ew = [w for w in conns[0]["ws"] if w["path"] == "/echo"]
    T.check(ew and ew[0]["msgs_in"] == 1 and ew[0]["msgs_out"] == 1,
            "/stats: message counters per WebSocket", repr(ew))
    for st in (chat, echo, stats):
        c.ws_close(st, 1000)
    c.pump(lambda: all(s.close is not None for s in (chat, echo, stats)), what="closes")
    c.close()
    return conns[0]["conn"] if conns else None, streams


def test_limits(port):
    c = iu.H2WSClient(port)
    st = ws_open(c, "/echo")
    send_now(c, st, "y" * 2000)
    close = wait_close(c, st)
    T.check(close is not None and close[0] == 1009, "--max-message 1000: a 2000-byte message closes 1009",
            repr(close))
    c.close()


def test_idle(port, tls):
    c = iu.H2WSClient(port, tls=tls)
    idle = ws_open(c, "/echo")
    T.check(c.echo(idle, "once") == ("text", "once"), "idle WebSocket echoes before its timeout")
    t0 = time.monotonic()
    close = wait_close(c, idle, timeout=6)
    took = time.monotonic() - t0
    T.check(close is not None and close[0] == 1001 and 0.5 < took < 4,
            "--idle-timeout 1: a silent WebSocket is closed 1001", "%r after %.1fs" % (close, took))
    c.close()


def test_broadcast(port):
    a = iu.H2WSClient(port)
    b = iu.H2WSClient(port)
    sa = ws_open(a, "/room?nick=alice")
    wait_msgs(a, sa, 1)
    sb = ws_open(b, "/room?nick=bob")
    wait_msgs(b, sb, 1)
    wait_msgs(a, sa, 2)
    ja = [json.loads(x) for _k, x in sa.messages]
    T.check(ja[0]["type"] == "join" and ja[0]["nick"] == "alice" and ja[1]["type"] == "join"
            and ja[1]["nick"] == "bob" and ja[1]["members"] == 2,
            "broadcast: join notices with nicknames reach members", repr(ja))
    send_now(a, sa, "hello room")
    wait_msgs(b, sb, 2)
    wait_msgs(a, sa, 3)
    mb = json.loads(sb.messages[-1][1])
    ma = json.loads(sa.messages[-1][1])
    T.check(mb == {"type": "msg", "from": "alice", "text": "hello room"} and ma == mb,
            "broadcast: a message goes to every member (sender included)", "%r %r %r %r" % (mb, ma, sb.close, sa.close))
    send_now(b, sb, "/nick robert")
    wait_msgs(a, sa, 4)
    T.check(json.loads(sa.messages[-1][1]) == {"type": "nick", "nick": "robert", "old": "bob", "members": 2},
            "broadcast: /nick renames", repr(sa.messages[-1]))
    send_now(b, sb, 'quote " and \\ and \n')
    wait_msgs(a, sa, 5)
    T.check(json.loads(sa.messages[-1][1]).get("text") == 'quote " and \\ and \n',
            "broadcast: text is JSON-escaped", repr(sa.messages[-1]))
    h = H1WS(port, "/room?nick=carol")
    T.check(h.status == 101, "broadcast over HTTP/1.1 joins the same room", repr(h.status))
    wait_msgs(a, sa, 6)
    b.ws_close(sb, 1000)
    b.pump(lambda: sb.close is not None, what="bob's close")
    wait_msgs(a, sa, 7)
    T.check(json.loads(sa.messages[-1][1]) == {"type": "leave", "nick": "robert", "members": 2},
            "broadcast: leave notice", repr(sa.messages[-1]))
    h.bye()
    a.ws_close(sa, 1000)
    a.pump(lambda: sa.close is not None, what="alice's close")
    a.close()
    b.close()


def test_h1_echo(port):
    h = H1WS(port, "/echo")
    T.check(h.status == 101 and h.echo("over h1") == "over h1", "echo over HTTP/1.1 (TLS)")
    h.bye()


def test_max_ws(binary):
    p, r, port = iu.start_h2ws_serve(binary, cleartext=True, extra=["--max-ws", "2", "--idle-timeout", "1",
                                                                     "--handshake-timeout", "1",
                                                                     "--access-log", "off"])
    c = iu.H2WSClient(port, tls=False)
    s1, s2 = ws_open(c, "/echo"), ws_open(c, "/echo")
    s3 = ws_open(c, "/echo")
    T.check(s1.status == s2.status == 200 and s3.status == 503,
            "--max-ws 2: the 3rd WebSocket of the server gets 503 (h2c)", repr((s1.status, s2.status, s3.status)))
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(b"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    head = sock.recv(1000)
    T.check(head.startswith(b"HTTP/1.1 503"), "--max-ws 2: 503 over HTTP/1.1 too", repr(head[:40]))
    sock.close()
    c.close()
    time.sleep(0.3)
    test_idle(port, False)
    slow = socket.create_connection(("127.0.0.1", port), timeout=5)
    slow.sendall(b"GET / HTTP/1.1\r\n")  # and never the rest
    t0 = time.monotonic()
    try:
        gone = slow.recv(100) is not None
    except OSError:
        gone = True
    took = time.monotonic() - t0
    T.check(gone and 0.5 < took < 3.5, "--handshake-timeout 1: a half-sent request head is disconnected",
            "after %.1fs" % took)
    slow.close()
    iu.stop(p)


def test_units(binary):
    """One convention for every command: durations with units (plain
    numbers are seconds), sizes with units, --name=VALUE."""
    p, r, port = iu.start_h2ws_serve(binary, cleartext=True, extra=[
        "--idle-timeout=700ms", "--max-message=1KiB", "--handshake-timeout", "0.8",
        "--access-log", "off"])
    try:
        c = iu.H2WSClient(port, tls=False)
        st = ws_open(c, "/echo")
        T.check(c.echo(st, "z" * 1024) == ("text", "z" * 1024),
                "--max-message=1KiB: a 1024-byte message echoes")
        big = ws_open(c, "/echo")
        send_now(c, big, "z" * 1025)
        close = wait_close(c, big)
        T.check(close is not None and close[0] == 1009, "--max-message=1KiB: 1025 bytes close 1009",
                repr(close))
        t0 = time.monotonic()
        close = wait_close(c, st, timeout=5)
        took = time.monotonic() - t0
        T.check(close is not None and close[0] == 1001 and took < 2.5,
                "--idle-timeout=700ms: closed 1001 after %.1f s" % took, repr(close))
        c.close()
        slow = socket.create_connection(("127.0.0.1", port), timeout=5)
        slow.sendall(b"GET / HTTP/1.1\r\n")
        t0 = time.monotonic()
        try:
            slow.recv(100)
        except OSError:
            pass
        took = time.monotonic() - t0
        T.check(0.4 < took < 2.5, "--handshake-timeout 0.8 (seconds): disconnected after %.1f s"
                % took)
        slow.close()
    finally:
        iu.stop(p)


def test_usage(binary):
    """Missing values, conflicts and unknown options are named; cannot
    listen is exit 2 (the table's connect/TLS class), usage exit 1."""
    cases = [(["--max-ws"], "h2ws serve: option --max-ws needs a value N"),
             (["--idle-timeout", "--cleartext"], "h2ws serve: option --idle-timeout needs a value TIME"),
             (["--compress", "--no-compress"],
              "h2ws serve: --compress and --no-compress cannot be used together"),
             (["--cleartext", "--cert", "c.pem", "--key", "k.pem"],
              "h2ws serve: --cert and --cleartext cannot be used together"),
             (["--cert", "c.pem"], "h2ws serve: --cert and --key go together"),
             (["--max-message", "1.5GiB"], "h2ws serve: bad value for --max-message: '1.5GiB'"),
             (["--idle-timeout", "1d"], "h2ws serve: bad value for --idle-timeout: '1d'"),
             (["--listne", "x"], "h2ws serve: unknown option '--listne'"),
             (["extra"], "h2ws serve: unexpected argument 'extra'")]
    for args, want in cases:
        r = iu.subprocess.run([binary, "serve"] + args, capture_output=True, text=True, timeout=10)
        T.check(r.returncode == 1 and r.stderr.startswith(want) and
                len(r.stderr.splitlines()) == 1,
                "serve %s: %r, exit 1" % (" ".join(args), want), "%d %r" % (r.returncode, r.stderr))
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    try:
        addr = "127.0.0.1:%d" % busy.getsockname()[1]
        r = iu.subprocess.run([binary, "serve", "--cleartext", "--listen", addr],
                              capture_output=True, text=True, timeout=10)
        T.check(r.returncode == 2 and r.stderr.startswith("h2ws serve: cannot listen on " + addr),
                "serve on a port in use: cannot listen, exit 2", "%d %r" % (r.returncode, r.stderr))
    finally:
        busy.close()
    d = iu.tmpdir()
    bad = os.path.join(d, "bad.pem")
    with open(bad, "w") as f:
        f.write("not a certificate\n")
    r = iu.subprocess.run([binary, "serve", "--listen", "127.0.0.1:0", "--cert", bad, "--key", bad],
                          capture_output=True, text=True, timeout=10)
    T.check(r.returncode == 2 and "h2ws serve: cannot listen on 127.0.0.1:0" in r.stderr,
            "serve with an unusable certificate: exit 2", "%d %r" % (r.returncode, r.stderr))


def test_proxy_route(binary):
    be = iu.spawn([iu.PY, os.path.join(iu.PEERS, "ws_echo_backend.py")])
    m = iu.LineReader(be).wait_for(r"PORT (\d+)", timeout=10)
    if not m:
        T.check(False, "websockets backend starts")
        return
    p, r, port = iu.start_h2ws_serve(binary, extra=[
        "--route", "/backend=proxy:ws://127.0.0.1:%s/" % m.group(1), "--access-log", "off"])
    c = iu.H2WSClient(port)
    st = ws_open(c, "/backend")
    T.check(st.status == 200 and c.echo(st, "via the backend") == ("text", "via the backend"),
            "--route PATH=proxy:URL forwards to an HTTP/1.1 WebSocket backend", repr(st.status))
    e = ws_open(c, "/echo")
    T.check(e.status == 200 and c.echo(e, "local") == ("text", "local"), "local routes beside a proxy route")
    c.close()
    T.check(iu.stop(p) == 0, "serve with a proxy route exits 0 on SIGTERM")
    iu.stop(be)


def make_files():
    d = iu.tmpdir()
    files = os.path.join(d, "www")
    os.makedirs(os.path.join(files, "sub"))
    with open(os.path.join(files, "a.txt"), "w") as f:
        f.write("hello static\n")
    with open(os.path.join(files, "index.html"), "w") as f:
        f.write("<p>root index</p>\n")
    with open(os.path.join(files, "sub", "index.html"), "w") as f:
        f.write("<p>sub index</p>\n")
    with open(os.path.join(files, "pic.png"), "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
    with open(os.path.join(d, "secret.txt"), "w") as f:
        f.write("top secret\n")
    os.symlink(d, os.path.join(files, "link"))  # leads outside the root
    return d, files


def main():
    global BIN
    BIN = iu.h2ws_bin()
    d, files = make_files()
    log = os.path.join(d, "access.log")
    # one worker: the access log checks below identify connections by
    # conn id, which is per worker (test_workers.py covers several)
    p, r, port = iu.start_h2ws_serve(BIN, extra=[
        "--workers", "1",
        "--access-log", log, "--max-ws-per-conn", "3", "--max-message", "1000",
        "--allow-origin", "https://good.example",
        "--route", "/files=static:" + files, "--route", "/room=broadcast"])
    T.run("page and static files", test_page_and_static, port, files)
    T.run("origin allow-list", test_origin, port)
    res = {}
    T.run("per-connection limit and /stats", lambda: res.update(v=test_per_conn_and_stats(port)))
    T.run("limits", test_limits, port)
    T.run("broadcast", test_broadcast, port)
    T.run("h1 echo", test_h1_echo, port)
    time.sleep(0.3)
    c = iu.H2WSClient(port)
    s, ct, body = get(c, "/metrics")
    c.close()
    text = body.decode()
    T.check(s == 200 and ct.startswith("text/plain"), "/metrics answers Prometheus text", repr(ct))
    T.check(metric(text, "h2ws_websockets_total") == 10, "metrics: h2ws_websockets_total",
            repr(metric(text, "h2ws_websockets_total")))
    T.check((metric(text, "h2ws_messages_total", '{direction="in"}') or 0) >= 5 and
            (metric(text, "h2ws_messages_total", '{direction="out"}') or 0) >= 10 and
            (metric(text, "h2ws_bytes_total", '{direction="in"}') or 0) >= 40,
            "metrics: messages and bytes each way", text[:2000])
    T.check(metric(text, "h2ws_handshake_refused_total", '{status="403"}') == 2 and
            (metric(text, "h2ws_handshake_refused_total", '{status="503"}') or 0) >= 1,
            "metrics: refused handshakes by status (403, 503)")
    T.check(metric(text, "h2ws_close_total", '{code="1009"}') == 1 and
                        (metric(text, "h2ws_close_total", '{code="1000"}') or 0) >= 5,
            "metrics: closes by code (1009, 1000)")
    T.check(metric(text, "h2ws_connections_open") is not None and
            metric(text, 'h2ws_websockets_open', '{transport="h2",tls="yes"}') is not None and
            (metric(text, "process_resident_memory_bytes") or 0) > 1000000,
            "metrics: open connections, open WebSockets by transport, RSS")
    lines = log_lines(log)
    keys = ["ts", "remote", "transport", "tls", "conn", "stream", "path", "subprotocol", "compressed",
            "duration_ms", "msgs_in", "msgs_out", "bytes_in", "bytes_out", "close"]
    T.check(lines and all(list(x.keys()) == keys for x in lines),
            "access log: one key=value line per WebSocket, documented keys", repr(lines[:2]))
    conn, streams = res.get("v") or (None, {})
    mine = [x for x in lines if x.get("conn") == str(conn)]
    T.check(sorted((x["path"], int(x["stream"])) for x in mine) == sorted(streams.items()) and
            all(x["transport"] == "h2" and x["tls"] == "yes" and x["close"] == "1000" and x["remote"] == "127.0.0.1"
                for x in mine),
            "access log: the three streams of one h2 connection (same conn, own stream ids)", repr(mine))
    e = [x for x in mine if x["path"] == "/echo"]
    T.check(e and e[0]["msgs_in"] == "1" and e[0]["msgs_out"] == "1" and e[0]["bytes_in"] == "1"
            and e[0]["compressed"] == "no" and int(e[0]["duration_ms"]) >= 0,
            "access log: messages and bytes each way", repr(e))
    h1 = [x for x in lines if x["transport"] == "http/1.1" and x["path"] == "/echo"]
    T.check(h1 and h1[0]["stream"] == "0" and h1[0]["tls"] == "yes" and h1[0]["msgs_in"] == "1",
            "access log: HTTP/1.1 WebSockets show transport=http/1.1 stream=0", repr(h1))
    T.check([x for x in lines if x["close"] == "1009"], "access log: close code 1009")
    T.check(p.poll() is None, "h2ws serve still running", r.text()[-2000:])
    T.check(iu.stop(p) == 0, "h2ws serve: SIGTERM exits 0")
    T.run("--root", test_root, BIN, files)
    T.run("--max-ws", test_max_ws, BIN)
    T.run("proxy route", test_proxy_route, BIN)
    T.run("units", test_units, BIN)
    T.run("usage", test_usage, BIN)
    out = iu.subprocess.run([BIN, "serve", "--help"], capture_output=True, text=True).stdout
    T.check(all(o in out for o in ("--root", "--route", "--allow-origin", "--max-ws-per-conn", "--max-ws ",
                                   "--max-message", "--idle-timeout", "--handshake-timeout",
                                   "--access-log", "/metrics", "h2ws-access")),
            "serve --help documents every option and the log format")
    T.check("(default 1 MiB" in out and "(default 10s)" in out and "a plain number is seconds" in out
            and "2  cannot listen" in out,
            "serve --help: the 1 MiB default, durations in seconds, exit codes", out[-1200:])
    bad = iu.subprocess.run([BIN, "serve", "--route", "nope"], capture_output=True, text=True)
    T.check(bad.returncode == 1 and "bad --route" in bad.stderr, "a bad --route is a usage error")


if __name__ == "__main__":
    T.main(main)
