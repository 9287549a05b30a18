#!/usr/bin/python3
# HTTP/3 (RFC 9114 over QUIC) and WebSockets over it (RFC 9220) between
# h2ws and peers no one here wrote, and between h2ws client and h2ws serve
# through a lossy, reordering UDP relay:
#   - Debian's ngtcp2 examples (ngtcp2-client / ngtcp2-server, GnuTLS
#     builds): gtlsclient fetches / and a file from `h2ws serve` over
#     HTTP/3; `h2ws client --h3-only` completes QUIC + HTTP/3 with
#     gtlsserver (certificate verified with --cacert) and reports that it
#     does not advertise RFC 9220; h3_get (h2ws's HTTP/3 client, a plain
#     GET: tests/interop/h3_get.c) fetches a file from gtlsserver;
#   - `h2ws serve` listens on UDP on its TLS port, names it in Alt-Svc on
#     HTTP/1.1 and HTTP/2 responses, logs transport=h3, counts h3 in
#     /metrics; --no-h3 and --cleartext turn it off;
#   - `h2ws client --h3` / `--h3-only` / `h2ws load --h3`: echoes 1 B to
#     1 MiB, deflate, 100 WebSockets on one QUIC connection, a close code
#     from the server (1009 for a message over its limit), SIGTERM of the
#     server (1001), 5% loss and reordering each way (Python relay), the
#     fallback to TCP with its reason when nothing listens on UDP;
#   - serve --quic-retry: Retry before every handshake (gtlsclient, h2ws
#     client follow it);
#   - `h2ws proxy` takes HTTP/3 clients and forwards them to HTTP/1.1,
#     HTTP/2 and TCP backends.
# Prints "N passed, N failed" last; kills everything it started.
#
# Usage: /usr/bin/python3 test_h3.py /abs/path/to/h2ws
import json
import os
import random
import re
import select
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import http.client

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import interop_util as iu  # noqa: E402

T = iu.Tally(limit=240)
BIN = None
GTLSCLIENT = shutil.which("gtlsclient") or "/usr/bin/gtlsclient"
GTLSSERVER = shutil.which("gtlsserver") or "/usr/sbin/gtlsserver"


def run(argv, data=b"", timeout=30):
    p = iu.spawn(argv, stdin=subprocess.PIPE)
    try:
        out, err = p.communicate(data, timeout=timeout)
    except subprocess.TimeoutExpired:
        iu.stop(p, timeout=2)
        out, err = p.communicate()
        return "timeout", out, err.decode("utf-8", "replace")
    return p.returncode, out, err.decode("utf-8", "replace")


def client(args, data=b"", timeout=30):
    return run([BIN, "client"] + list(args), data, timeout)


def tail(s, n=1500):
    if isinstance(s, bytes):
        s = s.decode("utf-8", "replace")
    return s[-n:]


class LossyRelay:
    """UDP relay on 127.0.0.1 for one client: drops `loss` of the
    datagrams each way and holds back `reorder` of them behind the next
    one (reordering)."""

    def __init__(self, server_port, loss=0.05, reorder=0.05, seed=7):
        self.rng = random.Random(seed)
        self.loss, self.reorder = loss, reorder
        self.front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.front.bind(("127.0.0.1", 0))
        self.port = self.front.getsockname()[1]
        self.back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.back.connect(("127.0.0.1", server_port))
        self.client = None
        self.held = {0: None, 1: None}
        self.stats = {"fwd": 0, "dropped": 0, "reordered": 0}
        self.running = True
        threading.Thread(target=self._loop, daemon=True).start()

    def _send(self, way, data):
        if way == 0:
            self.back.send(data)
        elif self.client:
            self.front.sendto(data, self.client)

    def _pass(self, way, data):
        self.stats["fwd"] += 1
        if self.rng.random() < self.loss:
            self.stats["dropped"] += 1
            return
        if self.held[way] is None and self.rng.random() < self.reorder:
            self.held[way] = data  # overtaken by the next datagram
            self.stats["reordered"] += 1
            return
        self._send(way, data)
        if self.held[way] is not None:
            d, self.held[way] = self.held[way], None
            self._send(way, d)

    def _loop(self):
        while self.running:
            try:
                r, _, _ = select.select([self.front, self.back], [], [], 0.05)
            except (OSError, ValueError):
                return
            if not r:  # let held datagrams go when traffic stops
                for way in (0, 1):
                    if self.held[way] is not None:
                        d, self.held[way] = self.held[way], None
                        self._send(way, d)
            for s in r:
                try:
                    if s is self.front:
                        data, addr = s.recvfrom(65536)
                        self.client = addr
                        self._pass(0, data)
                    else:
                        self._pass(1, s.recv(65536))
                except OSError:
                    pass

    def close(self):
        self.running = False
        self.front.close()
        self.back.close()


def https_get(port, path, h2=False):
    """(status, headers dict lower-case) over HTTP/1.1 (Python's client)."""
    ctx = ssl._create_unverified_context()
    c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10)
    c.request("GET", path)
    r = c.getresponse()
    r.read()
    hs = {k.lower(): v for k, v in r.getheaders()}
    c.close()
    return r.status, hs


# ---- tests ------------------------------------------------------------------

def test_listening_and_alt_svc(lines, port, noh3_port, clear_port):
    T.check(any(l == "h2ws: listening on UDP 127.0.0.1:%d (h3, QUIC)" % port
                for l in lines),
            "serve: listening line for h3 on the TLS port", "\n".join(lines))
    st, hs = https_get(port, "/")
    T.check(st == 200 and hs.get("alt-svc", "").startswith('h3=":%d"' % port),
            "serve: Alt-Svc h3 on the HTTP/1.1 response", repr(hs))
    # HTTP/2 response: nghttp (nghttp2-client) prints the response headers
    if shutil.which("nghttp"):
        rc, out, err = run(["nghttp", "-v", "-n", "https://127.0.0.1:%d/" % port],
                           timeout=15)
        T.check(re.search(r'alt-svc: h3=":%d"' % port, out.decode("utf-8", "replace")),
                "serve: Alt-Svc h3 on the HTTP/2 response (nghttp)", tail(out))
    st, hs = https_get(noh3_port, "/")
    T.check(st == 200 and "alt-svc" not in hs, "--no-h3: no Alt-Svc", repr(hs))
    # the WebSocket's own answer (HTTP/1.1 101) names it too
    ctx = ssl._create_unverified_context()
    ctx.set_alpn_protocols(["http/1.1"])
    raw = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10),
                          server_hostname="localhost")
    raw.sendall(b"GET /echo HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                b"Sec-WebSocket-Version: 13\r\n\r\n")
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = raw.recv(4096)
        if not chunk:
            break
        head += chunk
    raw.close()
    T.check(head.startswith(b"HTTP/1.1 101") and
            ('alt-svc: h3=":%d"' % port).encode() in head.lower(),
            "serve: Alt-Svc h3 on the WebSocket's 101", repr(head[:400]))


def test_gtlsclient(port, root):
    d = iu.tmpdir()
    rc, out, err = run([GTLSCLIENT, "--exit-on-all-streams-close", "--no-quic-dump",
                        "--download", d, "127.0.0.1", str(port),
                        "https://localhost:%d/" % port,
                        "https://localhost:%d/blob.bin" % port], timeout=30)
    got_root = os.path.join(d, "index.html")
    got_blob = os.path.join(d, "blob.bin")
    with open(os.path.join(root, "blob.bin"), "rb") as f:
        want_blob = f.read()
    with open(os.path.join(root, "index.html"), "rb") as f:
        want_root = f.read()
    T.check(os.path.exists(got_root) and open(got_root, "rb").read() == want_root,
            "gtlsclient: GET / over HTTP/3 from h2ws serve", tail(err))
    T.check(os.path.exists(got_blob) and open(got_blob, "rb").read() == want_blob,
            "gtlsclient: GET /blob.bin (300 KB) over HTTP/3 from h2ws serve",
            tail(err))
    T.check(rc == 0, "gtlsclient: exit 0 (connection closed cleanly)", "rc=%r" % rc)
    # a WebSocket route answered to a plain GET: 426, as on h2
    d2 = iu.tmpdir()
    rc, out, err = run([GTLSCLIENT, "--exit-on-all-streams-close", "--no-quic-dump",
                        "--no-http-dump", "127.0.0.1", str(port),
                        "https://localhost:%d/echo" % port], timeout=30)
    T.check(re.search(r":status: 426|:status\s*: 426|status.*426", err + out.decode()),
            "gtlsclient: plain GET on a WebSocket route -> 426", tail(err))
    del d2


def test_gtlsserver():
    d = iu.tmpdir()
    cert, key = iu.make_cert(d)
    port = iu.free_port()
    www = os.path.join(d, "www")
    os.mkdir(www)
    with open(os.path.join(www, "index.html"), "w") as f:
        f.write("hello from gtlsserver\n")
    gs = iu.spawn([GTLSSERVER, "-d", www, "127.0.0.1", str(port), key, cert])
    time.sleep(0.5)
    try:
        rc, out, err = client(["-v", "--h3-only", "--cacert", cert,
                               "wss://127.0.0.1:%d/" % port], b"hi\n", timeout=20)
        T.check(rc != 0 and "server does not support WebSockets over HTTP/3" in err,
                "gtlsserver: h2ws client --h3-only: QUIC + HTTP/3 SETTINGS "
                "exchanged, certificate verified, no RFC 9220 reported",
                "rc=%r %s" % (rc, tail(err)))
        h3get = os.path.join(os.path.dirname(BIN), "h3_get")
        rc, out, err = run([h3get, "127.0.0.1", str(port), "/index.html", "localhost", cert],
                           timeout=20)
        T.check(rc == 0 and out == b"hello from gtlsserver\n" and ":status 200" in err,
                "gtlsserver: a plain HTTP/3 GET with h2ws's HTTP/3 client (h3_get: "
                "lib/h3's h2ws_h3_client_request), certificate verified",
                "rc=%r out=%r %s" % (rc, out, tail(err)))
        rc, out, err = client(["-v", "--h3-only", "wss://127.0.0.1:%d/" % port],
                              b"hi\n", timeout=20)
        T.check(rc != 0 and "the server's certificate did not verify" in err,
                "gtlsserver: without --cacert the self-signed certificate is "
                "refused", "rc=%r %s" % (rc, tail(err)))
    finally:
        iu.stop(gs)


def test_echo(port, cert):
    url = "wss://127.0.0.1:%d/echo" % port
    rc, out, err = client(["-v", "--h3-only", "--cacert", cert, url], b"hello\nworld\n")
    T.check(rc == 0 and out == b"hello\nworld\n", "client --h3-only: text echo",
            "rc=%r out=%r %s" % (rc, out, tail(err)))
    T.check("connected via h3 (QUIC, ALPN h3), stream 0" in err,
            "client -v: names the transport (h3, stream 0)", tail(err))
    for n in (1, 65536, 300000, 1 << 20):
        data = os.urandom(n)
        rc, out, err = client(["--h3-only", "-k", "--raw", url], data, timeout=60)
        T.check(rc == 0 and out == data, "client --h3-only --raw: echo %d B" % n,
                "rc=%r len=%d %s" % (rc, len(out), tail(err)))
    rc, out, err = client(["-v", "--h3", "-k", "--compress", url], b"a" * 5000 + b"\n")
    T.check(rc == 0 and out == b"a" * 5000 + b"\n" and "permessage-deflate on" in err
            and re.search(r"^< ws .*rsv1=1", err, re.M),
            "client --h3 --compress: permessage-deflate over HTTP/3", tail(err))
    rc, out, err = client(["--json", "--h3-only", "-k", url], b"x\n")
    evs = [json.loads(l) for l in out.decode().splitlines() if l.strip()]
    opened = [e for e in evs if e.get("type") == "open"]
    T.check(opened and opened[0].get("transport") == "h3",
            "client --json: open event says transport h3", repr(evs[:2]))


def test_access_log_and_metrics(reader, port):
    m = reader.wait_for(r"h2ws-access .*transport=h3 tls=yes .*path=/echo", timeout=5,
                        stream="err")
    T.check(m, "serve: access log transport=h3", "\n".join(reader.err[-5:]))
    ctx = ssl._create_unverified_context()
    c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10)
    c.request("GET", "/metrics")
    body = c.getresponse().read().decode()
    c.close()
    T.check(re.search(r'h2ws_websockets_open\{transport="h3",tls="yes"\} \d+', body),
            '/metrics: h2ws_websockets_open{transport="h3"}', body[:600])


def test_load_100_streams(port):
    rc, out, err = run([BIN, "load", "-k", "--h3", "--connections", "1",
                        "--streams-per-conn", "100", "--messages", "20", "--size", "512",
                        "wss://127.0.0.1:%d/echo" % port], timeout=90)
    o = out.decode()
    T.check(rc == 0 and re.search(r"transport\s+h3, 1 connection\(s\) x 100", o)
            and re.search(r"100 opened, 0 failed", o) and re.search(r"2000 received, 0 lost", o),
            "load --h3: 100 WebSockets on one QUIC connection, 2000 echoes",
            "rc=%r %s %s" % (rc, tail(o), tail(err)))


def test_server_close_code(port):
    url = "wss://127.0.0.1:%d/echo" % port
    rc, out, err = client(["-v", "--h3-only", "-k", "--raw", url], os.urandom(40000))
    T.check(rc != 0 and "1009" in err,
            "server closes 1009 (message over its --max-message) over HTTP/3",
            "rc=%r %s" % (rc, tail(err)))


def test_sigterm_1001(cert):
    p, r, port = iu.start_h2ws_serve(BIN)
    c = iu.spawn([BIN, "client", "-v", "--h3-only", "-k", "--no-close",
                  "wss://127.0.0.1:%d/echo" % port], stdin=subprocess.PIPE)
    cr = iu.LineReader(c)
    ok = cr.wait_for(r"connected via h3", timeout=10, stream="err")
    T.check(ok, "sigterm: client connected over h3", cr.text())
    t0 = time.monotonic()
    p.send_signal(signal.SIGTERM)
    try:
        c.wait(timeout=15)
    except subprocess.TimeoutExpired:
        pass
    cr.join()
    T.check(c.returncode is not None and re.search(r"1001", "\n".join(cr.err)),
            "SIGTERM to serve: the HTTP/3 WebSocket closes with 1001",
            "rc=%r %s" % (c.returncode, cr.text()))
    try:
        p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass
    T.check(p.returncode == 0 and time.monotonic() - t0 < 10,
            "SIGTERM: serve drains and exits 0", "rc=%r" % p.returncode)
    iu.stop(c)
    iu.stop(p)


def test_loss_and_reordering(port):
    relay = LossyRelay(port, loss=0.05, reorder=0.05)
    try:
        data = os.urandom(1 << 20)
        t0 = time.monotonic()
        rc, out, err = client(["--h3-only", "-k", "--raw",
                               "wss://127.0.0.1:%d/echo" % relay.port], data, timeout=120)
        dt = time.monotonic() - t0
        T.check(rc == 0 and out == data,
                "5%% loss + 5%% reordering each way: 1 MiB echo intact over HTTP/3 "
                "(%.1f s; relay: %r)" % (dt, relay.stats),
                "rc=%r len=%d %s" % (rc, len(out), tail(err)))
        T.check(relay.stats["dropped"] > 10 and relay.stats["reordered"] > 10,
                "the relay did drop and reorder", repr(relay.stats))
        rc, out, err = client(["--h3-only", "-k", "wss://127.0.0.1:%d/echo" % relay.port],
                              b"".join(b"line %d\n" % i for i in range(200)), timeout=120)
        T.check(rc == 0 and out == b"".join(b"line %d\n" % i for i in range(200)),
                "lossy relay: 200 messages in order", "rc=%r %s" % (rc, tail(err)))
    finally:
        relay.close()


def test_fallback(noh3_port, clear_port):
    url = "wss://127.0.0.1:%d/echo" % noh3_port
    rc, out, err = client(["-v", "--h3", "-k", url], b"ok\n", timeout=30)
    T.check(rc == 0 and out == b"ok\n" and
            "HTTP/3: no HTTP/3 server on that UDP port" in err and
            "connected via h2" in err,
            "--h3 against --no-h3: falls back to h2, -v says why", tail(err))
    rc, out, err = client(["--h3-only", "-k", url], b"ok\n", timeout=30)
    T.check(rc != 0 and "HTTP/3" in err, "--h3-only against --no-h3: fails with the reason",
            "rc=%r %s" % (rc, tail(err)))
    rc, out, err = client(["--h3", "ws://127.0.0.1:%d/echo" % clear_port], b"ok\n")
    T.check(rc == 1 and "wss://" in err, "--h3 with ws://: refused at once (exit 1, as a bad URL)",
            "rc=%r %s" % (rc, tail(err)))


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for l in f:
            if l.startswith("VmRSS:"):
                return int(l.split()[1])
    return 0


def test_hostile_datagrams(p, port):
    """What reaches the UDP port without being a connection: garbage is
    dropped, an unknown version gets Version Negotiation, a short header
    for no connection a Stateless Reset (smaller than what caused it), a
    flood of Initials makes sessions bounded by the handshake deadline;
    the server keeps serving and its memory stays bounded."""
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.settimeout(1.0)
    dst = ("127.0.0.1", port)
    rng = random.Random(3)
    # Version Negotiation (RFC 9000 §6): long header, version 0x1a2a3a4a
    dcid, scid = bytes(rng.randrange(256) for _ in range(8)), bytes(rng.randrange(256) for _ in range(8))
    pkt = bytes([0xc0]) + (0x1a2a3a4a).to_bytes(4, "big") + bytes([8]) + dcid + bytes([8]) + scid
    u.sendto(pkt.ljust(1200, b"\0"), dst)
    try:
        vn, _ = u.recvfrom(2000)
    except socket.timeout:
        vn = b""
    versions = [int.from_bytes(vn[i:i + 4], "big") for i in range(7 + 16, len(vn), 4)] if vn else []
    T.check(len(vn) > 7 and vn[1:5] == b"\0\0\0\0" and vn[6:14] == scid and 1 in versions,
            "unknown QUIC version: Version Negotiation naming v1, our CIDs echoed",
            repr(vn[:40]))
    # Stateless Reset (RFC 9000 §10.3): short header to an unknown CID
    short = bytes([0x40 | rng.randrange(64)]) + bytes(rng.randrange(256) for _ in range(120))
    u.sendto(short, dst)
    try:
        sr, _ = u.recvfrom(2000)
    except socket.timeout:
        sr = b""
    T.check(21 <= len(sr) < len(short) and (sr[0] & 0xc0) == 0x40,
            "short header for no connection: a Stateless Reset, smaller than the datagram",
            "len=%d first=%r" % (len(sr), sr[:1]))
    # garbage of every size, then a flood of Initials (fresh DCIDs)
    r0 = rss_kb(p.pid)
    for i in range(600):
        u.sendto(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 1400))), dst)
    for i in range(300):
        d = bytes(rng.randrange(256) for _ in range(8))
        ini = bytes([0xc0]) + (1).to_bytes(4, "big") + bytes([8]) + d + bytes([0]) + b"\0" + \
            b"\x44\xd0" + bytes(rng.randrange(256) for _ in range(1190))
        u.sendto(ini[:1200], dst)
    time.sleep(0.5)
    r1 = rss_kb(p.pid)
    u.close()
    rc, out, err = client(["--h3-only", "-k", "wss://127.0.0.1:%d/echo" % port], b"still here\n")
    T.check(rc == 0 and out == b"still here\n",
            "after garbage, VN, resets and 300 bogus Initials: serve still echoes over h3",
            "rc=%r %s" % (rc, tail(err)))
    T.check(p.poll() is None and r1 - r0 < 64 * 1024,
            "serve alive, RSS grew %d KiB (< 64 MiB)" % (r1 - r0), "")


def metrics_h3(port):
    ctx = ssl._create_unverified_context()
    c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10)
    c.request("GET", "/metrics")
    body = c.getresponse().read().decode()
    c.close()
    out = {}
    for l in body.splitlines():
        if l and not l.startswith("#") and "{" not in l:
            k, _, v = l.partition(" ")
            try:
                out[k] = float(v)
            except ValueError:
                pass
    return out


def test_silent_h3_websockets():
    """issue 9 C on HTTP/3 against serve: 48 WebSockets of one QUIC
    connection (tests/interop/h3_slow.c) send 4 MiB each to /echo and never
    read. The connection's budget (16 MiB) pauses them all: serve's RSS
    grows by less than that budget + their receive windows + a fixed part
    (before: each was paused by its own 2 MiB budget only and the streams'
    send queues were not counted: +81 MiB), and an honest client echoes
    over HTTP/3 meanwhile."""
    n = 48
    with open(BIN, "rb") as f:
        # ASan's quarantine and padding keep more resident: the bound
        # stays well below an unbounded server's
        limit = 48 + (160 if b"AddressSanitizer" in f.read() else 0)
    p, r, port = iu.start_h2ws_serve(BIN, extra=("--workers", "1", "--access-log", "off",
                                                 "--max-message", "1MiB"))
    slow = None
    try:
        r.wait_for(r"\(h3, QUIC\)", timeout=5)
        time.sleep(0.3)
        r0 = rss_kb(p.pid)
        slow = iu.spawn([os.path.join(os.path.dirname(BIN), "h3_slow"),
                         "wss://127.0.0.1:%d/echo" % port, str(n), "16", "262144"])
        sr = iu.LineReader(slow)
        ok = sr.wait_for(r"paused %d" % n, timeout=30)
        T.check(ok, "h3_slow: %d WebSockets on one QUIC connection sent, got an echo, "
                "stopped reading" % n, sr.text()[-800:])
        time.sleep(1.5)  # what they sent keeps arriving until the budgets close in
        grown = (rss_kb(p.pid) - r0) >> 10
        m = metrics_h3(port)
        held = int(m.get("h2ws_memory_held_bytes", -1))
        T.check(m.get("h2ws_budget_paused_total", 0) >= n,
                "/metrics: the %d silent h3 WebSockets were paused by a budget" % n, repr(m))
        T.check(0 < held <= (16 << 20) + n * 2 * (256 << 10),
                "/metrics: held %d B within the connection budget (16 MiB) + a "
                "message in and out per WebSocket" % held)
        T.check(grown < limit,
                "serve's RSS grew %d MiB with %d silent h3 WebSockets (< %d MiB: 16 MiB "
                "budget + 12 MiB receive windows + 20 MiB)" % (grown, n, limit))
        rc, out, err = client(["--h3-only", "-k", "wss://127.0.0.1:%d/echo" % port],
                              b"honest\n")
        T.check(rc == 0 and out == b"honest\n",
                "an honest h3 client echoes beside them", "rc=%r %s" % (rc, tail(err)))
    finally:
        if slow:
            iu.stop(slow)
        iu.stop(p)
        r.join()


def test_quic_retry():
    """serve --quic-retry: every new connection gets a Retry first (its
    token bound to the client's address); gtlsclient and h2ws client
    follow it and go on."""
    p, r, port = iu.start_h2ws_serve(BIN, extra=("--quic-retry",))
    T.check(r.wait_for(r"\(h3, QUIC, Retry\)", timeout=5), "--quic-retry: listening line",
            r.text())
    d = iu.tmpdir()
    rc, out, err = run([GTLSCLIENT, "--exit-on-all-streams-close", "--no-quic-dump",
                        "--download", d, "127.0.0.1", str(port),
                        "https://localhost:%d/" % port], timeout=30)
    page = os.path.join(d, "index.html")
    T.check(rc == 0 and re.search(r"pkt rx .*type=Retry", err) and os.path.exists(page)
            and b"<html" in open(page, "rb").read().lower(),
            "--quic-retry: gtlsclient gets a Retry, then the page over HTTP/3", tail(err))
    rc, out, err = client(["--h3-only", "-k", "wss://127.0.0.1:%d/echo" % port], b"retried\n")
    T.check(rc == 0 and out == b"retried\n", "--quic-retry: h2ws client follows the Retry",
            "rc=%r %s" % (rc, tail(err)))
    iu.stop(p)


def test_proxy(clear_port):
    """h2ws proxy takes HTTP/3 clients (UDP on its TLS port) and forwards
    them to any backend kind: HTTP/1.1, HTTP/2 (--backend-h2), raw TCP."""
    tcp = iu.TcpListener()

    def tcp_echo(conn):
        while True:
            b = conn.recv(65536)
            if not b:
                return
            conn.sendall(b)
    tcp.serve = tcp_echo
    for name, args in (("HTTP/1.1", ["--to", "ws://127.0.0.1:%d/echo" % clear_port]),
                       ("HTTP/2", ["--backend-h2", "--to", "ws://127.0.0.1:%d/echo" % clear_port]),
                       ("tcp", ["--to", "tcp://127.0.0.1:%d" % tcp.port])):
        p = iu.spawn([BIN, "proxy", "--listen", "127.0.0.1:0"] + args)
        r = iu.LineReader(p)
        m = r.wait_for(r"listening on UDP 127\.0\.0\.1:(\d+) \(h3, QUIC\)", timeout=10)
        T.check(m, "proxy (%s backend): listens on UDP" % name, r.text())
        if not m:
            iu.stop(p)
            continue
        port = int(m.group(1))
        data = os.urandom(200000)
        rc, out, err = client(["-v", "--h3-only", "-k", "--raw",
                               "wss://127.0.0.1:%d/echo" % port], data, timeout=60)
        T.check(rc == 0 and out == data and "connected via h3" in err,
                "proxy: HTTP/3 client -> %s backend, 200 KB echo" % name,
                "rc=%r len=%d %s" % (rc, len(out), tail(err)))
        iu.stop(p)
    tcp.close()


def main():
    global BIN
    BIN = iu.h2ws_bin()
    for b in (GTLSCLIENT, GTLSSERVER):
        if not os.access(b, os.X_OK):
            T.check(False, "peer installed: %s (scripts/deps.sh test)" % b)
            return
    d = iu.tmpdir()
    cert = os.path.join(d, "cert.pem")
    root = os.path.join(d, "www")
    os.mkdir(root)
    with open(os.path.join(root, "index.html"), "w") as f:
        f.write("<!doctype html><title>h3</title>root page\n")
    with open(os.path.join(root, "blob.bin"), "wb") as f:
        f.write(os.urandom(300000))
    p, r, port = iu.start_h2ws_serve(BIN, extra=("--write-cert", cert, "--root", root,
                                                 "--max-message", "32KiB"))
    r.wait_for(r"\(h3, QUIC\)", timeout=5)
    _, _, noh3 = iu.start_h2ws_serve(BIN, extra=("--no-h3",))
    cp, cr, clear = iu.start_h2ws_serve(BIN, cleartext=True)
    T.check(not cr.wait_for(r"h3", timeout=0.5), "--cleartext: no HTTP/3 listener",
            cr.text())
    bigcert = os.path.join(d, "bigcert.pem")
    _, br, big = iu.start_h2ws_serve(BIN, extra=("--max-message", "2MiB", "--write-cert",
                                                 bigcert))
    T.run("listening and Alt-Svc", test_listening_and_alt_svc, r.out, port, noh3, clear)
    T.run("gtlsclient", test_gtlsclient, port, root)
    T.run("gtlsserver", test_gtlsserver)
    T.run("echo", test_echo, big, bigcert)
    T.run("access log and metrics", test_access_log_and_metrics, br, big)
    T.run("load 100 streams", test_load_100_streams, big)
    T.run("server close code", test_server_close_code, port)
    T.run("sigterm", test_sigterm_1001, cert)
    T.run("loss and reordering", test_loss_and_reordering, big)
    T.run("fallback", test_fallback, noh3, clear)
    T.run("proxy", test_proxy, clear)
    T.run("quic retry", test_quic_retry)
    T.run("hostile datagrams", test_hostile_datagrams, p, port)
    T.run("silent h3 WebSockets", test_silent_h3_websockets)


if __name__ == "__main__":
    T.main(main)
