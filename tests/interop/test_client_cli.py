#!/usr/bin/python3
# `h2ws client` as a command: every option with its observable effect and
# every failure with its one-line message and exit code, against `h2ws
# serve` (TLS h2 + http/1.1, cleartext h2c + http/1.1, a server without
# RFC 8441) and small Python fake servers for what a good server never
# does (an HTTP/1.1 server that records the request, picks a subprotocol
# that was not offered, drops the connection or closes 1011; an HTTP/2
# server, python3-h2, that resets the stream after 200; a TCP server that
# never answers).  --json output is parsed; -v must show the HTTP/2 and
# WebSocket frames.  Prints "N passed, N failed" last; kills everything.
#
# Usage: /usr/bin/python3 test_client_cli.py /abs/path/to/h2ws
import base64
import hashlib
import json
import os
import pty
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import interop_util as iu  # noqa: E402

import h2.config  # noqa: E402
import h2.connection  # noqa: E402
import h2.events  # noqa: E402
import h2.settings  # noqa: E402

T = iu.Tally(limit=100)
BIN = None
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def run(args, data=b"", timeout=15, keep_open=None):
    """Runs `h2ws client ARGS` with data on stdin (closed after, unless
    keep_open seconds: then stdin stays open that long).  Returns
    (rc, stdout bytes, stderr str)."""
    p = iu.spawn([BIN, "client"] + list(args), stdin=subprocess.PIPE)
    try:
        if keep_open is None:
            out, err = p.communicate(data, timeout=timeout)
        else:
            p.stdin.write(data)
            p.stdin.flush()
            try:
                p.wait(timeout=keep_open)
            except subprocess.TimeoutExpired:
                pass
            out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        iu.stop(p, timeout=2)
        out, err = p.communicate()
        return "timeout", out, err.decode("utf-8", "replace")
    return p.returncode, out, err.decode("utf-8", "replace")


def show(rc, out, err):
    return "exit=%r stdout=%r stderr=%r" % (rc, out[:300], err[-700:])


def jlines(out):
    return [json.loads(line) for line in out.decode("utf-8").splitlines() if line.strip()]


# --------------------------------------------------------------------------
# fake servers

class FakeH1:
    """HTTP/1.1 WebSocket server on a raw socket.  mode: 'echo1' (answers
    101, sends one text frame "fake", then Close 1000), 'badproto' (101
    with a subprotocol nobody offered), 'drop' (101, then the connection
    is closed without a Close frame), 'close1011' (Close 1011 "boom"),
    'silent' (accepts, never answers), 'closehead' (reads the request
    head, then closes without answering), 'sink' (101, then reads and
    never answers a message or a ping; answers a Close), 'slowsink'
    (the same, reading 64 KiB every 5 ms).  Keeps each request head."""

    def __init__(self, mode):
        self.mode = mode
        self.heads = []
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        c.settimeout(10)
        if self.mode == "silent":
            return
        data = b""
        try:
            while b"\r\n\r\n" not in data:
                chunk = c.recv(4096)
                if not chunk:
                    return
                data += chunk
        except OSError:
            return
        head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1")
        self.heads.append(head.replace("\r\n", "\n"))
        if self.mode == "closehead":
            c.close()
            return
        if self.mode == "halfhead":
            c.sendall(b"HTTP/1.1 101 Switching")
            c.close()
            return
        key = ""
        for line in head.split("\r\n")[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "sec-websocket-key":
                key = value.strip()
        accept = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()
        resp = ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n" % accept)
        if self.mode == "badproto":
            resp += "Sec-WebSocket-Protocol: evil\r\n"
        resp += "\r\n"
        out = resp.encode()
        if self.mode == "echo1":
            out += b"\x81\x04fake" + b"\x88\x02\x03\xe8"
        elif self.mode == "close1011":
            out += b"\x88\x06\x03\xf3boom"
        try:
            c.sendall(out)
            if self.mode in ("sink", "slowsink"):
                self._sink(c, data.split(b"\r\n\r\n", 1)[1])
                return
            if self.mode == "drop":
                time.sleep(0.1)
                c.shutdown(socket.SHUT_RDWR)
                c.close()
                return
            time.sleep(2)  # let the client finish its side
            c.close()
        except OSError:
            pass

    def _sink(self, c, buf):
        """Reads client frames, answers only a Close (with a Close)."""
        while True:
            while len(buf) >= 6:
                n = buf[1] & 0x7f
                off = 2
                if n == 126:
                    n, off = int.from_bytes(buf[2:4], "big"), 4
                elif n == 127:
                    n, off = int.from_bytes(buf[2:10], "big"), 10
                if len(buf) < off + 4 + n:
                    break
                if buf[0] & 0x0f == 0x8:
                    c.sendall(b"\x88\x02\x03\xe8")
                    time.sleep(0.5)
                    c.close()
                    return
                buf = buf[off + 4 + n:]
            chunk = c.recv(65536)
            if not chunk:
                return
            buf += chunk
            if self.mode == "slowsink":
                time.sleep(0.005)

    def close(self):
        self.sock.close()
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass


class FakeH2:
    """h2c prior knowledge (python3-h2): advertises RFC 8441, answers an
    extended CONNECT with 200, then resets the stream (CANCEL); or, mode
    'badproto', answers 200 with a subprotocol nobody offered."""

    def __init__(self, mode="reset"):
        self.mode = mode
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        c.settimeout(10)
        conn = h2.connection.H2Connection(
            config=h2.config.H2Configuration(client_side=False, header_encoding="utf-8"))
        # RFC 8441 §3: the setting must be in the first SETTINGS (the
        # client decides on it)
        conn.local_settings = h2.settings.Settings(
            client=False,
            initial_values={h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL: 1})
        conn.initiate_connection()
        try:
            c.sendall(conn.data_to_send())
            while True:
                data = c.recv(65536)
                if not data:
                    return
                for ev in conn.receive_data(data):
                    if isinstance(ev, h2.events.RequestReceived) and \
                            self.mode == "badproto":
                        conn.send_headers(ev.stream_id, [(":status", "200"),
                                                         ("sec-websocket-protocol", "evil")])
                    elif isinstance(ev, h2.events.RequestReceived):
                        conn.send_headers(ev.stream_id, [(":status", "200")])
                        c.sendall(conn.data_to_send())
                        time.sleep(0.1)
                        conn.reset_stream(ev.stream_id, error_code=8)
                c.sendall(conn.data_to_send())
        except Exception:  # noqa: BLE001 - the client went away
            pass
        finally:
            c.close()


class Relay(iu.TcpListener):
    """A TCP relay 127.0.0.1:port -> 127.0.0.1:target.  blackhole() makes it
    stop forwarding both ways while it keeps both connections open: a peer
    that stops answering without closing (a dead backend behind a
    gateway, a host gone from the network)."""

    def __init__(self, target):
        self.target = target
        self.hole = threading.Event()
        self.upstream = []
        super().__init__()

    def serve(self, c):
        u = socket.create_connection(("127.0.0.1", self.target))
        self.upstream.append(u)
        threading.Thread(target=self._pipe, args=(u, c), daemon=True).start()
        self._pipe(c, u)

    def _pipe(self, a, b):
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                if not self.hole.is_set():
                    b.sendall(data)
        except OSError:
            pass
        for x in (a, b):
            try:
                x.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def blackhole(self):
        self.hole.set()

    def close(self):
        super().close()
        for x in self.upstream:
            try:
                x.close()
            except OSError:
                pass


# --------------------------------------------------------------------------
# cases

LINES = b"hello\nwebsocket over http/2 with a long enough line to compress\n\xc3\xa9t\xc3\xa9\n"


def test_echo_and_trace(tls, cert):
    u = "wss://127.0.0.1:%d/echo" % tls
    rc, out, err = run([u, "--cacert", cert, "-v", "-H", "X-Trace-Me: 42",
                        "--origin", "https://o.example"], LINES)
    T.check(rc == 0 and out == LINES, "cacert: echo over h2, exit 0", show(rc, out, err))
    T.check(re.search(r"^> h2 SETTINGS ", err, re.M),
            "-v: our SETTINGS", err[:500])
    T.check(re.search(r"^< h2 SETTINGS .*ENABLE_CONNECT_PROTOCOL=1", err, re.M),
            "-v: server SETTINGS with ENABLE_CONNECT_PROTOCOL=1", err[:800])
    m = re.search(r"^> h2 HEADERS stream=1 .*$", err, re.M)
    hdr = m.group(0) if m else ""
    T.check(all(s in hdr for s in (":method: CONNECT", ":protocol: websocket",
                                   ":scheme: https", ":path: /echo",
                                   ":authority: 127.0.0.1:%d" % tls,
                                   "sec-websocket-version: 13")),
            "-v: HEADERS with the extended CONNECT pseudo-headers", hdr or err[:800])
    T.check("x-trace-me: 42" in hdr, "-H: header sent on HTTP/2 (lower-case)", hdr)
    T.check("origin: https://o.example" in hdr, "--origin: sent on HTTP/2", hdr)
    T.check(re.search(r"^< h2 HEADERS stream=1 .*:status: 200", err, re.M),
            "-v: response HEADERS :status 200", err[:1200])
    T.check(re.search(r"^> h2 DATA stream=1 length=\d+", err, re.M) and
            re.search(r"^< h2 DATA stream=1 length=\d+", err, re.M),
            "-v: DATA sizes both ways", err[-800:])
    T.check(re.search(r"^[<>] h2 WINDOW_UPDATE stream=0 increment=\d+", err, re.M),
            "-v: WINDOW_UPDATE", err[:800])
    T.check(re.search(r"^> ws stream=1 TEXT \(0x1\) fin=1 rsv1=[01] len=5$", err, re.M) and
            re.search(r"^< ws stream=1 TEXT \(0x1\) fin=1 rsv1=[01] len=5$", err, re.M),
            "-v: WebSocket frames (opcode, fin, rsv1, length)", err[-1200:])
    T.check(re.search(r"^> ws stream=1 CLOSE \(0x8\) fin=1 rsv1=0 len=2$", err, re.M),
            "-v: our Close frame", err[-600:])
    T.check(re.search(r"^> h2 GOAWAY last_stream=\d+ error=NO_ERROR", err, re.M),
            "-v: GOAWAY at the end", err[-600:])

    # default verification against the self-signed server; --insecure
    rc, out, err = run([u], b"x\n")
    T.check(rc == 2 and re.search(
        r"^h2ws: TLS certificate verification failed: self-signed certificate "
        r"\(to trust the server's certificate: --cacert FILE; to skip verification, "
        r"for testing only: -k\)$", err, re.M) and len(err.splitlines()) == 1,
        "TLS verify: one line with OpenSSL's reason and what to do (--cacert / -k), exit 2",
        show(rc, out, err))
    rc, out, err = run([u, "--insecure"], b"x\n")
    T.check(rc == 0 and out == b"x\n", "--insecure: no verification, exit 0", show(rc, out, err))


def test_compress(tls):
    u = "wss://127.0.0.1:%d/echo" % tls
    rc, out, err = run([u, "-k", "-v", "--compress", "--json"], LINES)
    ev = jlines(out)
    T.check(rc == 0 and ev[0]["type"] == "open" and ev[0]["compressed"] is True,
            "--compress: permessage-deflate negotiated", show(rc, out, err))
    T.check(re.search(r"^> h2 HEADERS .*sec-websocket-extensions: permessage-deflate", err, re.M),
            "--compress: offered in HEADERS", err[:1000])
    T.check(re.search(r"^> ws stream=1 TEXT \(0x1\) fin=1 rsv1=1 ", err, re.M) and
            re.search(r"^< ws stream=1 TEXT \(0x1\) fin=1 rsv1=1 ", err, re.M),
            "--compress: long messages carry RSV1 both ways", err[-1200:])
    rc, out, err = run([u, "-k", "-v", "--no-compress", "--json"], LINES)
    ev = jlines(out)
    T.check(rc == 0 and ev[0]["compressed"] is False and
            "permessage-deflate" not in "".join(re.findall(r"^> h2 HEADERS.*$", err, re.M)) and
            not re.search(r"rsv1=1", err),
            "--no-compress: no offer, no RSV1", show(rc, out, err))


def test_json(tls):
    u = "wss://127.0.0.1:%d/echo" % tls
    rc, out, err = run([u, "-k", "--json"], b"text line\n")
    ev = jlines(out)
    T.check(rc == 0 and [e["type"] for e in ev] == ["open", "message", "close"],
            "--json: open, message, close events", show(rc, out, err))
    if len(ev) == 3:
        T.check(ev[0]["transport"] == "h2" and ev[0]["stream"] == 1,
                "--json open: transport h2, stream 1", repr(ev[0]))
        T.check(ev[1] == {"type": "message", "opcode": "text", "length": 9,
                          "data": "text line"}, "--json message: text as a string", repr(ev[1]))
        T.check(ev[2]["code"] == 1000 and ev[2]["by"] == "client" and
                ev[2]["transport"] == "h2" and ev[2]["stream"] == 1,
                "--json close: code 1000 by the client, transport, stream", repr(ev[2]))
    # --binary: lines go as binary messages, data comes back in base64
    rc, out, err = run([u, "-k", "--json", "--binary"], b"bin\x00\xff\n")
    ev = jlines(out)
    msg = [e for e in ev if e["type"] == "message"]
    T.check(rc == 0 and len(msg) == 1 and msg[0]["opcode"] == "binary" and
            base64.b64decode(msg[0]["data"]) == b"bin\x00\xff",
            "--binary: binary message, base64 in --json", show(rc, out, err))
    rc, out, err = run([u, "-k", "--json", "--binary"], b"plain\n")
    ev = jlines(out)
    T.check(rc == 0 and any(e.get("opcode") == "binary" and e.get("data") == "cGxhaW4="
                            for e in ev),
            "--binary: even UTF-8 lines go as binary", show(rc, out, err))
    # --raw: bytes as read, echoed back without added newlines
    blob = bytes(range(256)) * 4
    rc, out, err = run([u, "-k", "--raw"], blob)
    T.check(rc == 0 and out == blob, "--raw: stdin chunks as binary, output byte-exact",
            show(rc, out, err))
    # refused handshake as a JSON error event
    rc, out, err = run(["wss://127.0.0.1:%d/nope" % tls, "-k", "--json"], b"x\n")
    ev = jlines(out)
    T.check(rc == 3 and ev and ev[-1]["type"] == "error" and ev[-1]["kind"] == "handshake"
            and ev[-1]["status"] == 404 and ev[-1]["exit"] == 3,
            "--json error event: handshake 404, exit 3", show(rc, out, err))


def test_subprotocols(clear):
    u = "ws://127.0.0.1:%d/echo" % clear
    for pol in ("--h2", "--h1"):
        rc, out, err = run([u, pol, "-v", "--json", "--subprotocol", "nope",
                            "--subprotocol", "chat"], b"x\n")
        ev = jlines(out)
        T.check(rc == 0 and ev and ev[0].get("subprotocol") == "chat" and
                re.search(r"^h2ws: subprotocol chat$", err, re.M),
                "--subprotocol %s: server picks one offered (chat)" % pol, show(rc, out, err))
    rc, out, err = run([u, "--h2", "-v", "--subprotocol", "a", "--subprotocol", "chat"], b"x\n")
    m = re.search(r"^> h2 HEADERS .*$", err, re.M)
    T.check(m and "sec-websocket-protocol: a, chat" in m.group(0),
            "--subprotocol: offered in order on HTTP/2", m.group(0) if m else err[:600])
    f = FakeH1("badproto")
    try:
        rc, out, err = run(["ws://127.0.0.1:%d/x" % f.port, "--subprotocol", "chat"], b"x\n")
        T.check(rc == 3 and err.strip() == "h2ws: handshake failed: the server chose "
                "subprotocol 'evil', which was not offered",
                "HTTP/1.1 server picks a subprotocol not offered: exit 3", show(rc, out, err))
    finally:
        f.close()
    g = FakeH2("badproto")
    rc, out, err = run(["ws://127.0.0.1:%d/x" % g.port, "--h2", "--subprotocol", "chat"],
                       b"x\n")
    T.check(rc == 3 and err.strip() == "h2ws: handshake failed: the server's "
            "sec-websocket-protocol or sec-websocket-extensions was not offered",
            "HTTP/2 server picks a subprotocol not offered: exit 3", show(rc, out, err))


def test_headers_h1():
    f = FakeH1("echo1")
    try:
        rc, out, err = run(["ws://127.0.0.1:%d/path?q=1" % f.port, "-H", "X-One: 1",
                            "--header", "X-Two:two words ", "--origin", "http://o.example",
                            "-v"], b"", keep_open=1.5)
        head = f.heads[0] if f.heads else ""
        T.check(rc == 0 and out == b"fake\n", "fake h1: message printed, server close 1000 -> exit 0",
                show(rc, out, err))
        T.check(re.search(r"^x-one: 1$", head, re.M | re.I) and
                re.search(r"^x-two: two words$", head, re.M | re.I),
                "-H: headers received by an HTTP/1.1 server", head)
        T.check(re.search(r"^origin: http://o\.example$", head, re.M | re.I),
                "--origin: received on HTTP/1.1", head)
        T.check(head.startswith("GET /path?q=1 HTTP/1.1"), "HTTP/1.1 request line", head[:80])
        T.check(re.search(r"^> http/1\.1 GET /path\?q=1 HTTP/1\.1$", err, re.M) and
                re.search(r"^< http/1\.1 HTTP/1\.1 101 ", err, re.M),
                "-v: HTTP/1.1 handshake heads", err[:600])
        T.check("h2ws: closed by the server: 1000" in err, "server close reported", err)
    finally:
        f.close()


def test_header_usage_errors(tls):
    u = "wss://127.0.0.1:%d/echo" % tls
    cases = [("Connection: close", "connection-specific"),
             ("Upgrade: websocket", "connection-specific"),
             ("Host: evil.example", "connection-specific"),
             ("TE: trailers", "connection-specific"),
             ("Transfer-Encoding: chunked", "connection-specific"),
             (":path: /other", "pseudo-headers cannot be set"),
             (":authority: x", "pseudo-headers cannot be set"),
             ("Sec-WebSocket-Key: abc", "belongs to the WebSocket handshake"),
             ("Bad Name: x", "not a token"),
             ("novalue", "-H wants 'Name: value'")]
    for h, why in cases:
        rc, out, err = run([u, "-k", "-H", h], b"x\n")
        T.check(rc == 1 and why in err and len(err.strip().splitlines()) == 1,
                "-H %r refused: usage error, exit 1" % h, show(rc, out, err))


def test_wrong_scheme(tls, clear):
    """wss:// to a cleartext port and ws:// to a TLS port say what is wrong
    (issue 7.7), instead of OpenSSL's "wrong version number" or a bare
    "connection closed during the handshake"."""
    for extra in ([], ["--h2"], ["--h1"]):
        rc, out, err = run(["wss://127.0.0.1:%d/echo" % clear, "-k"] + extra, b"x\n")
        T.check(rc == 2 and err.strip() ==
                'h2ws: the server does not speak TLS on this port (it answered '
                '"HTTP/1.1 400 Bad Request"): try ws://',
                "wss:// to a cleartext port %s: says it is not TLS, try ws://, exit 2" % extra,
                show(rc, out, err))
    for extra in ([], ["--h2"]):
        rc, out, err = run(["ws://127.0.0.1:%d/echo" % tls] + extra, b"x\n")
        T.check(rc == 2 and err.strip() ==
                "h2ws: the server closed the connection without answering "
                "(if this port expects TLS, try wss://)",
                "ws:// to a TLS port %s: says it may expect TLS, try wss://, exit 2" % extra,
                show(rc, out, err))
    # a TLS server that answers a plaintext request with a TLS alert
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(4)
    def alert_server():
        for _ in range(1):
            try:
                c, _ = lst.accept()
            except OSError:
                return
            c.recv(4096)
            c.sendall(bytes([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x46]))  # fatal protocol_version
            c.close()
    th = threading.Thread(target=alert_server, daemon=True)
    th.start()
    try:
        rc, out, err = run(["ws://127.0.0.1:%d/echo" % lst.getsockname()[1]], b"x\n")
    finally:
        lst.close()
    T.check(rc == 2 and err.strip() ==
            "h2ws: the server expects TLS on this port (it answered with a TLS alert): try wss://",
            "ws:// to a server that answers with a TLS alert: says TLS, try wss://, exit 2",
            show(rc, out, err))


def test_errors(tls, no8441):
    rc, out, err = run(["ws://nonexistent.invalid/echo"], b"x\n")
    T.check(rc == 2 and re.search(r"^h2ws: cannot resolve nonexistent\.invalid: .+$", err, re.M),
            "DNS failure: one line, exit 2", show(rc, out, err))
    port = iu.free_port()
    rc, out, err = run(["ws://127.0.0.1:%d/echo" % port], b"x\n")
    T.check(rc == 2 and err.strip() == "h2ws: cannot connect to 127.0.0.1:%d: connection refused" % port,
            "connection refused: one line naming the address, exit 2", show(rc, out, err))
    rc, out, err = run(["ws://localhost:%d/echo" % port, "--h1"], b"x\n")
    T.check(rc == 2 and re.match(r"^h2ws: cannot connect to localhost:%d \((127\.0\.0\.1|::1)\): "
                                 r"connection refused$" % port, err.strip()),
            "connection refused by a name: the name and the address tried, exit 2",
            show(rc, out, err))
    u = "wss://127.0.0.1:%d/echo" % no8441
    rc, out, err = run([u, "-k", "--h2"], b"x\n")
    T.check(rc == 3 and err.strip() ==
            "h2ws: server does not support WebSockets over HTTP/2 (RFC 8441)",
            "no RFC 8441 with --h2: one line, exit 3", show(rc, out, err))
    rc, out, err = run([u, "-k", "-v"], b"x\n")
    T.check(rc == 0 and out == b"x\n" and
            "h2ws: server does not support WebSockets over HTTP/2 (RFC 8441); "
            "fell back to HTTP/1.1" in err and "connected via http/1.1 (TLS)" in err,
            "no RFC 8441, auto: -v says it fell back to HTTP/1.1", show(rc, out, err))
    T.check(re.search(r"^< h2 SETTINGS (?!.*ENABLE_CONNECT_PROTOCOL=1)", err, re.M),
            "no RFC 8441: -v shows SETTINGS without ENABLE_CONNECT_PROTOCOL", err[:800])
    for pol in ("--h2", "--h1"):
        rc, out, err = run(["wss://127.0.0.1:%d/nope" % tls, "-k", pol], b"x\n")
        T.check(rc == 3 and err.strip() == "h2ws: handshake refused: HTTP 404",
                "handshake refused %s: status in one line, exit 3" % pol, show(rc, out, err))
    f = FakeH1("drop")
    try:
        rc, out, err = run(["ws://127.0.0.1:%d/x" % f.port], b"", keep_open=1.5)
        T.check(rc == 4 and re.search(r"^h2ws: abnormal close 1006 \(.+\)$", err, re.M),
                "connection dropped after the handshake: abnormal close 1006, exit 4",
                show(rc, out, err))
    finally:
        f.close()
    f = FakeH1("close1011")
    try:
        rc, out, err = run(["ws://127.0.0.1:%d/x" % f.port, "--json"], b"", keep_open=1.5)
        ev = jlines(out)
        T.check(rc == 4 and re.search(
            r"^h2ws: closed by the server: 1011 \(internal server error\): boom$", err, re.M),
            "server closes 1011: code and reason in one line, exit 4", show(rc, out, err))
        T.check(ev and ev[-1] == {"type": "close", "code": 1011, "reason": "boom",
                                  "by": "server", "transport": "http/1.1", "stream": 0},
                "--json close event for 1011", repr(ev))
    finally:
        f.close()
    g = FakeH2()
    rc, out, err = run(["ws://127.0.0.1:%d/x" % g.port, "--h2", "-v"], b"", keep_open=1.5)
    T.check(rc == 4 and re.search(r"^h2ws: abnormal close 1006 ", err, re.M) and
            re.search(r"^< h2 RST_STREAM stream=1 error=CANCEL$", err, re.M),
            "stream reset after 200: abnormal close 1006, exit 4, RST_STREAM in -v",
            show(rc, out, err))


def test_limits_and_scripts(tls):
    u = "wss://127.0.0.1:%d/echo" % tls
    # --max-message: the echo of a 500-byte line is too big for us -> 1009
    rc, out, err = run([u, "-k", "--max-message", "100"], b"y" * 500 + b"\n")
    T.check(rc == 4 and "closed by us with 1009 (message too big)" in err,
            "--max-message: a larger message closes 1009, exit 4", show(rc, out, err))
    rc, out, err = run([u, "-k", "--max-message", "600"], b"y" * 500 + b"\n")
    T.check(rc == 0 and out == b"y" * 500 + b"\n", "--max-message: within the limit is fine",
            show(rc, out, err))
    # --count: exits after N messages although stdin stays open
    t0 = time.monotonic()
    rc, out, err = run([u, "-k", "--count", "2", "--json"], b"a\nb\nc\n", keep_open=5)
    ev = jlines(out)
    msgs = [e["data"] for e in ev if e["type"] == "message"]
    T.check(rc == 0 and msgs == ["a", "b"] and ev[-1]["type"] == "close" and
            ev[-1]["code"] == 1000 and time.monotonic() - t0 < 4,
            "--count 2: two messages, close 1000, exit 0 with stdin still open",
            show(rc, out, err))
    # --no-close: stdin at its end, the WebSocket stays open until --count
    f = FakeH1("echo1")
    try:
        rc, out, err = run(["ws://127.0.0.1:%d/x" % f.port, "--no-close"], b"")
        T.check(rc == 0 and out == b"fake\n",
                "--no-close: empty stdin, still receives until the server closes",
                show(rc, out, err))
    finally:
        f.close()
    rc, out, err = run([u, "-k", "--timeout", "0.5"], b"")
    T.check(rc == 0, "without --no-close an empty stdin closes at once, exit 0",
            show(rc, out, err))
    rc, out, err = run([u, "-k", "--no-close", "--timeout", "0.5"], b"")
    T.check(rc == 5, "--no-close: nothing to receive, the deadline ends it (exit 5)",
            show(rc, out, err))
    # --ping-interval + --timeout: pongs with an RTT, then exit 5
    t0 = time.monotonic()
    rc, out, err = run([u, "-k", "--json", "--ping-interval", "0.05", "--timeout", "0.6"],
                       b"", keep_open=5)
    el = time.monotonic() - t0
    ev = jlines(out)
    pongs = [e for e in ev if e["type"] == "pong"]
    T.check(len(pongs) >= 3 and all(isinstance(p["rtt_ms"], float) and p["rtt_ms"] >= 0
                                    for p in pongs),
            "--ping-interval: pongs with their round-trip time (--json)", show(rc, out, err))
    T.check(rc == 5 and el < 3 and "h2ws: timed out after 0.6 s (--timeout)" in err and
            ev[-1]["type"] == "error" and ev[-1]["kind"] == "timeout",
            "--timeout: exit 5 with one line and an error event", show(rc, out, err))
    rc, out, err = run([u, "-k", "-v", "--ping-interval", "0.05", "--timeout", "0.4"],
                       b"", keep_open=5)
    T.check(re.search(r"^h2ws: pong: rtt \d+\.\d+ ms$", err, re.M) and
            re.search(r"^> ws stream=1 PING \(0x9\) fin=1 rsv1=0 len=8$", err, re.M),
            "--ping-interval -v: pings traced, pong RTT printed", err[-600:])
    # --timeout while the server never answers the handshake
    f = FakeH1("silent")
    try:
        t0 = time.monotonic()
        rc, out, err = run(["ws://127.0.0.1:%d/x" % f.port, "--timeout", "0.5"], b"x\n")
        T.check(rc == 5 and time.monotonic() - t0 < 3 and
                err.strip() == "h2ws: timed out after 0.5 s (--timeout)",
                "--timeout during a handshake that never ends: exit 5", show(rc, out, err))
    finally:
        f.close()


def open_client(args):
    """Starts `h2ws client ARGS` with stdin kept open; sends one line and
    waits for its echo.  Returns (proc, reader) or raises."""
    p = iu.spawn([BIN, "client"] + list(args), stdin=subprocess.PIPE)
    r = iu.LineReader(p)
    p.stdin.write(b"before\n")
    p.stdin.flush()
    if not r.wait_for(r"before", timeout=5):
        iu.stop(p)
        raise RuntimeError("no echo: " + r.text())
    return p, r


def test_peer_stops_answering(clear):
    """Issue 7 item 6: pings on an idle connection; a peer that stops
    answering without closing ends the client with a clear line and exit
    4, over HTTP/1.1 and HTTP/2 (a relay that blackholes after the
    handshake), and for a server stopped with SIGSTOP."""
    for pol in ("--h1", "--h2"):
        relay = Relay(clear)
        try:
            p, r = open_client(["ws://127.0.0.1:%d/echo" % relay.port, pol, "--json",
                                "--ping-interval", "200ms", "--ping-timeout", "0.6"])
            time.sleep(0.5)  # pings answered meanwhile: still open
            alive = p.poll() is None
            relay.blackhole()
            t0 = time.monotonic()
            try:
                rc = p.wait(timeout=6)
            except subprocess.TimeoutExpired:
                rc = "timeout"
            took = time.monotonic() - t0
            r.join()
            err = "\n".join(r.err)
            ev = [json.loads(x) for x in r.out if x.strip()]
            T.check(alive and any(e["type"] == "pong" for e in ev),
                    "%s: idle pings answered while the peer is there" % pol, r.text()[-600:])
            T.check(rc == 4 and took < 3 and re.search(
                r"^h2ws: peer stopped answering: nothing received for \S+ (ms|s), a ping "
                r"unanswered for \S+ (ms|s) \(--ping-timeout\)$", err, re.M),
                "%s: blackholed peer -> 'peer stopped answering', exit 4 (%.1f s)" % (pol, took),
                "exit=%r %s" % (rc, r.text()[-600:]))
            T.check(ev and ev[-1]["type"] == "error" and ev[-1]["kind"] == "unanswered" and
                    ev[-1]["exit"] == 4, "%s: --json error event kind unanswered" % pol,
                    repr(ev[-2:]))
            iu.stop(p)
        finally:
            relay.close()
    # a slow reader of a large upload answers no ping while it reads (the
    # pong would wait behind the data): its taking our output is a sign
    # of life, not "stopped answering"
    f = FakeH1("slowsink")
    try:
        blob = os.urandom(1 << 20) * 40
        t0 = time.monotonic()
        rc, out, err = run(["ws://127.0.0.1:%d/x" % f.port, "--raw", "--ping-interval", "0.3",
                            "--ping-timeout", "1.5", "--linger", "0.2"], blob, timeout=40)
        T.check(rc == 0 and "stopped answering" not in err,
                "40 MiB upload to a slow reader that answers no ping: not 'stopped answering' "
                "(%.1f s)" % (time.monotonic() - t0), show(rc, out, err))
    finally:
        f.close()
    # --ping-interval 0: no pings, so only the deadline ends the wait
    relay = Relay(clear)
    try:
        p, r = open_client(["ws://127.0.0.1:%d/echo" % relay.port, "--h2",
                            "--ping-interval", "0", "--ping-timeout", "0.3", "--timeout", "1.5"])
        relay.blackhole()
        try:
            rc = p.wait(timeout=6)
        except subprocess.TimeoutExpired:
            rc = "timeout"
        r.join()
        T.check(rc == 5 and not any("stopped answering" in x for x in r.err),
                "--ping-interval 0: no pings, the peer's silence goes unnoticed (exit 5)",
                "exit=%r %s" % (rc, r.text()[-400:]))
        iu.stop(p)
    finally:
        relay.close()
    # a server process stopped with SIGSTOP (its kernel still ACKs)
    sp, _, port = iu.start_h2ws_serve(BIN, cleartext=True)
    try:
        p, r = open_client(["ws://127.0.0.1:%d/echo" % port, "--h2",
                            "--ping-interval", "0.2", "--ping-timeout", "0.5"])
        os.kill(sp.pid, signal.SIGSTOP)
        try:
            rc = p.wait(timeout=6)
        except subprocess.TimeoutExpired:
            rc = "timeout"
        r.join()
        T.check(rc == 4 and any(x.startswith("h2ws: peer stopped answering") for x in r.err),
                "server stopped with SIGSTOP: peer stopped answering, exit 4",
                "exit=%r %s" % (rc, r.text()[-400:]))
        iu.stop(p)
    finally:
        os.kill(sp.pid, signal.SIGCONT)
        iu.stop(sp)


def test_signals(clear):
    """One lifecycle (kit_life): SIGTERM, like Ctrl-C, closes with 1000
    (exit 0); a second signal while the close waits exits at once."""
    for sig in (signal.SIGTERM, signal.SIGINT):
        p, r = open_client(["ws://127.0.0.1:%d/echo" % clear, "--h2", "--json"])
        p.send_signal(sig)
        try:
            rc = p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            rc = "timeout"
        r.join()
        ev = [json.loads(x) for x in r.out if x.strip()]
        T.check(rc == 0 and ev and ev[-1]["type"] == "close" and ev[-1]["code"] == 1000 and
                ev[-1]["by"] == "client",
                "%s: clean close 1000 by the client, exit 0" % signal.Signals(sig).name,
                "exit=%r %s" % (rc, r.text()[-400:]))
        iu.stop(p)
    relay = Relay(clear)
    try:
        p, r = open_client(["ws://127.0.0.1:%d/echo" % relay.port, "--h1"])
        relay.blackhole()  # the Close will not be answered
        p.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        alive = p.poll() is None
        t0 = time.monotonic()
        p.send_signal(signal.SIGTERM)
        try:
            rc = p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            rc = "timeout"
        T.check(alive and rc == 4 and time.monotonic() - t0 < 1.5,
                "a second signal while the close is unanswered: exit 4 at once",
                "alive=%r exit=%r %s" % (alive, rc, r.text()[-300:]))
        iu.stop(p)
    finally:
        relay.close()


def test_linger(tls):
    """Issue 7 item 7: a server that answers fewer messages than it gets (a
    sink; a tcp:// bridge, see test_proxy.py) no longer keeps the client
    waiting for ever at the end of stdin: --linger bounds each wait."""
    f = FakeH1("sink")
    try:
        t0 = time.monotonic()
        rc, out, err = run(["ws://127.0.0.1:%d/x" % f.port, "--linger", "300ms"], b"a\nb\n",
                           timeout=8)
        took = time.monotonic() - t0
        T.check(rc == 0 and took < 3 and
                "h2ws: end of input: 0 of 2 answers received, none for 300 ms (--linger); "
                "closing" in err,
                "--linger: no answers, closes 1000 after the linger, exit 0 (%.1f s)" % took,
                show(rc, out, err))
        rc, out, err = run(["ws://127.0.0.1:%d/x" % f.port, "--count", "3", "--linger", "0.3"],
                           b"a\n", timeout=8)
        T.check(rc == 0 and "0 of 3 answers" in err,
                "--count 3 after the end of stdin: --linger ends the wait too", show(rc, out, err))
        t0 = time.monotonic()
        rc, out, err = run(["ws://127.0.0.1:%d/x" % f.port, "--linger", "0"], b"a\n", timeout=8)
        T.check(rc == 0 and time.monotonic() - t0 < 2 and "answers" not in err,
                "--linger 0: close at once at the end of stdin", show(rc, out, err))
    finally:
        f.close()
    # an echo is not cut short: the answers come within the linger
    rc, out, err = run(["wss://127.0.0.1:%d/echo" % tls, "-k", "--linger", "2s"], LINES)
    T.check(rc == 0 and out == LINES and "answers" not in err,
            "--linger: an echo ends as soon as every answer is in", show(rc, out, err))


def test_exit_codes(tls):
    """One run per line of the documented exit-code table."""
    u = "wss://127.0.0.1:%d/echo" % tls
    rc, out, err = run([u, "-k"], b"x\n")
    T.check(rc == 0, "exit 0: clean close", show(rc, out, err))
    rc, out, err = run([u, "-k", "--nope"], b"")
    T.check(rc == 1, "exit 1: usage error", show(rc, out, err))
    rc, out, err = run(["ws://127.0.0.1:%d/echo" % iu.free_port()], b"x\n")
    T.check(rc == 2, "exit 2: connection refused", show(rc, out, err))
    f = FakeH1("closehead")
    try:
        rc, out, err = run(["ws://127.0.0.1:%d/x" % f.port, "--json"], b"x\n")
        ev = jlines(out)
        T.check(rc == 2 and err.strip() == "h2ws: the server closed the connection without "
                "answering (if this port expects TLS, try wss://)" and
                ev and ev[-1]["kind"] == "connect" and ev[-1]["exit"] == 2,
                "exit 2: connection closed during the handshake (lost before the "
                "WebSocket opened), kind connect", show(rc, out, err))
    finally:
        f.close()
    f = FakeH1("halfhead")
    try:
        rc, out, err = run(["ws://127.0.0.1:%d/x" % f.port], b"x\n")
        T.check(rc == 2 and err.strip() == "h2ws: connection closed during the handshake",
                "exit 2: connection closed in the middle of the 101, kind connect",
                show(rc, out, err))
    finally:
        f.close()
    rc, out, err = run(["wss://127.0.0.1:%d/nope" % tls, "-k"], b"x\n")
    T.check(rc == 3, "exit 3: handshake refused", show(rc, out, err))
    f = FakeH1("close1011")
    try:
        rc, out, err = run(["ws://127.0.0.1:%d/x" % f.port], b"", keep_open=1.5)
        T.check(rc == 4, "exit 4: closed with a code other than 1000", show(rc, out, err))
    finally:
        f.close()
    rc, out, err = run([u, "-k", "--no-close", "--timeout", "300ms"], b"")
    T.check(rc == 5, "exit 5: --timeout", show(rc, out, err))


def test_default_max_message(tls, big):
    """One --max-message default, 1 MiB, in the server and the client: a
    message of exactly 1 MiB passes both ways, one byte more is refused
    by whichever side receives it."""
    mib = 1 << 20
    rc, out, err = run(["wss://127.0.0.1:%d/echo" % tls, "-k"], b"y" * mib + b"\n", timeout=20)
    T.check(rc == 0 and out == b"y" * mib + b"\n",
            "defaults: a 1 MiB message through h2ws serve and back", show(rc, b"", err))
    rc, out, err = run(["wss://127.0.0.1:%d/echo" % tls, "-k"], b"y" * (mib + 1) + b"\n",
                       timeout=20)
    T.check(rc == 4 and "closed by the server: 1009" in err,
            "serve's default: 1 MiB + 1 closes 1009", show(rc, b"", err))
    # letters that compress like text, not 1000:1 (a run of one byte is
    # what serve's inflate-ratio cap refuses past 1 MiB)
    rnd = random.Random(7)
    text = bytes(rnd.randrange(97, 123) for _ in range(mib + 1))
    rc, out, err = run(["ws://127.0.0.1:%d/echo" % big, "--h2"], text + b"\n",
                       timeout=20)
    T.check(rc == 4 and "closed by us with 1009" in err,
            "client's default: an answer of 1 MiB + 1 closes 1009", show(rc, b"", err))


def test_option_forms(tls):
    """Issue 8 item 5 / issue 7 item 7: one option parser: --name=VALUE,
    units, missing values, conflicts and unknown options named."""
    u = "wss://127.0.0.1:%d/echo" % tls
    rc, out, err = run([u, "-k", "--count=1", "--json", "--max-message=1KiB"], b"a\nb\n",
                       keep_open=3)
    ev = jlines(out)
    T.check(rc == 0 and [e["data"] for e in ev if e["type"] == "message"] == ["a"],
            "--count=1 and --max-message=1KiB (--name=VALUE, units)", show(rc, out, err))
    rc, out, err = run([u, "-k", "--max-message", "1KiB"], b"y" * 2000 + b"\n")
    T.check(rc == 4 and "closed by us with 1009" in err,
            "--max-message 1KiB: a 2000-byte message closes 1009", show(rc, out, err))
    rc, out, err = run([u, "-k", "--no-close", "--timeout", "500ms"], b"")
    T.check(rc == 5 and "h2ws: timed out after 0.5 s (--timeout)" in err,
            "--timeout 500ms: a duration with a unit", show(rc, out, err))
    cases = [([u, "--count"], "h2ws client: option --count needs a value N"),
             ([u, "--count", "--json"], "h2ws client: option --count needs a value N"),
             ([u, "--h1", "--h2"], "h2ws client: --h1 and --h2 cannot be used together"),
             ([u, "--compress", "--no-compress"],
              "h2ws client: --compress and --no-compress cannot be used together"),
             ([u, "--binary", "--raw"], "h2ws client: --binary and --raw cannot be used together"),
             ([u, "--no-close", "--linger", "1"],
              "h2ws client: --no-close and --linger cannot be used together"),
             ([u, "--cout", "3"], "h2ws client: unknown option '--cout'"),
             ([u, "--timeout", "soon"], "h2ws client: bad value for --timeout: 'soon'"),
             ([u, "--max-message", "lots"], "h2ws client: bad value for --max-message: 'lots'"),
             ([u, u], "h2ws client: unexpected argument")]
    for args, want in cases:
        rc, out, err = run(args, b"")
        T.check(rc == 1 and err.startswith(want) and len(err.strip().splitlines()) == 1 and
                err.rstrip().endswith("(see h2ws client --help)"),
                "usage error %r: %r, exit 1" % (" ".join(args[1:]), want), show(rc, out, err))


def test_stdout_gone(tls):
    """`h2ws client ... | head -1`: once stdout is closed the client closes
    1000 and exits 0 instead of running on."""
    p = iu.spawn([BIN, "client", "wss://127.0.0.1:%d/echo" % tls, "-k"],
                 stdin=subprocess.PIPE)
    try:
        p.stdin.write(b"first\n")
        p.stdin.flush()
        line = p.stdout.readline()
        p.stdout.close()
        p.stdin.write(b"second\n")
        p.stdin.flush()
        try:
            rc = p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            rc = "timeout"
        T.check(line == b"first\n" and rc == 0,
                "stdout closed (| head -1): clean close, exit 0", "line=%r exit=%r" % (line, rc))
    finally:
        iu.stop(p)


def test_usage():
    for args, name in (([], "no URL"), (["ws://x/", "--bogus"], "unknown option"),
                       (["ws://x/", "--count", "zero"], "bad --count"),
                       (["ws://x/", "--timeout", "-1"], "bad --timeout"),
                       (["http://x/"], "not a ws URL")):
        rc, out, err = run(args, b"")
        T.check(rc == 1, "usage error (%s): exit 1" % name, show(rc, out, err))
    rc, out, err = run(["--help"], b"")
    txt = out.decode()
    T.check(rc == 0 and "exit codes" in txt and re.search(r"^  5  --timeout expired", txt, re.M)
            and all(o in txt for o in ("-H, --header", "--subprotocol", "--origin", "--binary",
                                       "--raw", "--no-compress", "--ping-interval",
                                       "--max-message", "--cacert", "--insecure", "--count",
                                       "--timeout", "--no-close", "--json", "-v",
                                       "--ping-timeout", "--linger")),
            "--help lists every option and the exit codes", txt[-400:])
    T.check("(default\n                      20s)" in txt and "(default 20s)" in txt and
            "(default 5s; 0: close at once)" in txt and "default 1 MiB" in txt and
            "peer\n     stopped answering" in txt,
            "--help documents the ping interval and bound, the linger and the 1 MiB default",
            txt)
    T.check("tcp:// route" in txt and "binary messages" in txt,
            "--help says a tcp:// route's bytes arrive as binary messages, not lines", txt[:1500])


def test_tty(tls):
    """Interactive: stdin is a terminal; lines go as typed, echoes print
    as they come, Ctrl-D closes."""
    master, slave = pty.openpty()
    p = iu.spawn([BIN, "client", "wss://127.0.0.1:%d/echo" % tls, "-k"], stdin=slave)
    os.close(slave)
    r = iu.LineReader(p)
    try:
        time.sleep(0.3)
        os.write(master, b"typed one\n")
        got1 = r.wait_for(r"^typed one$", timeout=5)
        os.write(master, b"typed two\n")
        got2 = r.wait_for(r"^typed two$", timeout=5)
        T.check(got1 and got2, "tty: each typed line echoed as it is typed", r.text())
        os.write(master, b"\x04")  # Ctrl-D: end of input
        try:
            rc = p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            rc = "timeout"
        T.check(rc == 0, "tty: Ctrl-D closes cleanly, exit 0", "exit %r %s" % (rc, r.text()))
    finally:
        iu.stop(p)
        os.close(master)


def main():
    global BIN
    BIN = iu.h2ws_bin()
    d = iu.tmpdir()
    cert = os.path.join(d, "cert.pem")
    _, _, tls = iu.start_h2ws_serve(BIN, extra=("--write-cert", cert))
    _, _, clear = iu.start_h2ws_serve(BIN, cleartext=True, extra=("--protocol", "chat"))
    _, _, no8441 = iu.start_h2ws_serve(BIN, extra=("--no-h2-websockets",))
    _, _, big = iu.start_h2ws_serve(BIN, cleartext=True, extra=("--max-message", "2MiB"))
    T.run("echo and trace", test_echo_and_trace, tls, cert)
    T.run("compress", test_compress, tls)
    T.run("json", test_json, tls)
    T.run("subprotocols", test_subprotocols, clear)
    T.run("headers h1", test_headers_h1)
    T.run("header usage errors", test_header_usage_errors, tls)
    T.run("errors", test_errors, tls, no8441)
    T.run("wrong scheme", test_wrong_scheme, tls, clear)
    T.run("limits and scripts", test_limits_and_scripts, tls)
    T.run("stdout gone", test_stdout_gone, tls)
    T.run("peer stops answering", test_peer_stops_answering, clear)
    T.run("linger", test_linger, tls)
    T.run("signals", test_signals, clear)
    T.run("exit codes", test_exit_codes, tls)
    T.run("option forms", test_option_forms, tls)
    T.run("default max message", test_default_max_message, tls, big)
    T.run("usage", test_usage)
    T.run("tty", test_tty, tls)


if __name__ == "__main__":
    T.main(main)
