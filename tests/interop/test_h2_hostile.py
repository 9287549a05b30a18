#!/usr/bin/python3
# Interop: `h2ws serve` against hostile and non-conforming HTTP/2 clients,
# frames built by hand with python3-hyperframe + python3-hpack (the frame
# and HPACK layers under python3-h2), on TLS (ALPN h2) and h2c.  Each probe
# asserts the answer (GOAWAY / RST_STREAM and its code, or the status),
# that a connection error really ends the connection at once, and that an
# honest WebSocket on another connection still echoes.  Covers issue 7.2
# (HEADERS on a WebSocket stream), 7.3 (:scheme), 7.4 (stream limit), 7.5
# (h2spec 3.5/2, 5.1.1/2) and issue 9 A, B, G, I, K (CONTINUATION, SETTINGS,
# PING, WINDOW_UPDATE, PRIORITY, empty-DATA floods, HPACK bomb, rapid
# reset, MadeYouReset).
#
# Usage: /usr/bin/python3 test_h2_hostile.py /abs/path/to/h2ws
import os
import select
import socket
import ssl
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import interop_util as iu  # noqa: E402
import hpack  # noqa: E402
from hyperframe.frame import (ContinuationFrame, DataFrame, Frame,  # noqa: E402
                              GoAwayFrame, HeadersFrame, PingFrame,
                              PriorityFrame, RstStreamFrame, SettingsFrame,
                              WindowUpdateFrame)

T = iu.Tally(limit=100)
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
PROTOCOL_ERROR, REFUSED_STREAM, ENHANCE_YOUR_CALM = 0x1, 0x7, 0xb


class Raw:
    """One HTTP/2 connection driven frame by frame."""

    def __init__(self, port, tls):
        self.tls = tls
        raw = socket.create_connection(("127.0.0.1", port), timeout=5)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if tls:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            ctx.set_alpn_protocols(["h2"])
            self.sock = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
        else:
            self.sock = raw
        self.scheme = "https" if tls else "http"
        self.enc = hpack.Encoder()
        self.dec = hpack.Decoder()
        self.dec.max_allowed_table_size = 65536
        self.buf = b""
        self.goaway = None          # error code
        self.rst = {}               # stream -> error code
        self.status = {}            # stream -> :status
        self.data = {}              # stream -> bytes
        self.ended = set()          # streams with END_STREAM from the server
        self.settings = {}
        self.eof = False
        self.eof_at = None

    def start(self, preface=PREFACE):
        self.send(preface + SettingsFrame(0).serialize())
        self.pump(lambda: self.settings or self.eof, 5)
        if self.settings:
            self.send(SettingsFrame(0, flags=["ACK"]).serialize())

    def send(self, data):
        try:
            self.sock.sendall(data)
        except OSError:
            self.eof = True

    def frame(self, f):
        self.send(f.serialize())

    def block(self, headers):
        return self.enc.encode(headers)

    def headers(self, sid, headers, end_stream=False):
        f = HeadersFrame(sid, self.block(headers))
        f.flags.add("END_HEADERS")
        if end_stream:
            f.flags.add("END_STREAM")
        self.frame(f)

    def ws(self, sid, path="/echo", scheme=None):
        self.headers(sid, [(":method", "CONNECT"), (":protocol", "websocket"),
                           (":scheme", scheme or self.scheme), (":path", path),
                           (":authority", "127.0.0.1"),
                           ("sec-websocket-version", "13")])

    def get(self, sid, extra=()):
        self.headers(sid, [(":method", "GET"), (":scheme", self.scheme),
                           (":path", "/"), (":authority", "127.0.0.1")] + list(extra),
                     end_stream=True)

    def ws_data(self, sid, opcode, payload):
        f = DataFrame(sid, iu.raw_frame(opcode, payload))
        self.frame(f)

    def _parse(self):
        while len(self.buf) >= 9:
            f, length = Frame.parse_frame_header(memoryview(self.buf[:9]))
            if len(self.buf) < 9 + length:
                return
            f.parse_body(memoryview(self.buf[9:9 + length]))
            self.buf = self.buf[9 + length:]
            self._on(f)

    def _on(self, f):
        if isinstance(f, SettingsFrame) and "ACK" not in f.flags:
            self.settings = dict(f.settings) or {"seen": 1}
        elif isinstance(f, GoAwayFrame):
            self.goaway = f.error_code
        elif isinstance(f, RstStreamFrame):
            self.rst[f.stream_id] = f.error_code
        elif isinstance(f, HeadersFrame):
            for k, v in self.dec.decode(f.data):
                k = k.decode() if isinstance(k, bytes) else k
                v = v.decode() if isinstance(v, bytes) else v
                if k == ":status":
                    self.status[f.stream_id] = int(v)
            if "END_STREAM" in f.flags:
                self.ended.add(f.stream_id)
        elif isinstance(f, DataFrame):
            self.data[f.stream_id] = self.data.get(f.stream_id, b"") + bytes(f.data)
            if "END_STREAM" in f.flags:
                self.ended.add(f.stream_id)

    def pump(self, until=lambda: False, timeout=2.0):
        deadline = time.monotonic() + timeout
        while not until() and not self.eof:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            if not (self.tls and self.sock.pending()):
                r, _, _ = select.select([self.sock], [], [], min(left, 0.2))
                if not r:
                    continue
            try:
                d = self.sock.recv(262144)
            except (ssl.SSLWantReadError, BlockingIOError, socket.timeout):
                continue
            except OSError:
                d = b""
            if not d:
                self.eof = True
                self.eof_at = time.monotonic()
                break
            self.buf += d
            self._parse()
        return until()

    def wait_end(self, timeout=3.0):
        """A connection error: GOAWAY arrives and the server closes."""
        t0 = time.monotonic()
        self.pump(lambda: False, timeout)
        return self.eof, time.monotonic() - t0

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def conn_error_case(port, tls, tag, name, code, attack):
    c = Raw(port, tls)
    try:
        c.start()
        attack(c)
        eof, dt = c.wait_end()
        T.check(c.goaway == code, "%s %s -> GOAWAY %#x" % (tag, name, code),
                "goaway=%r rst=%r" % (c.goaway, dict(list(c.rst.items())[:3])))
        T.check(eof and dt < 2.5, "%s %s: the connection ends at once" % (tag, name),
                "eof=%r after %.2fs" % (eof, dt))
    finally:
        c.close()


def run(port, tls, honest):
    tag = "[%s]" % ("tls" if tls else "h2c")

    def echo_ok(what):
        got = honest.echo(hst, "honest after " + what, timeout=5)
        T.check(got == ("text", "honest after " + what),
                "%s honest WebSocket still echoes after %s" % (tag, what), repr(got))

    hst = honest.open_ws("/echo")
    honest.wait_response(hst)

    # --- h2spec 3.5/2: invalid preface (TLS: GOAWAY; h2c port: HTTP/1.1)
    if tls:
        c = Raw(port, tls)
        c.send(b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n" + SettingsFrame(0).serialize())
        eof, dt = c.wait_end()
        T.check(c.goaway == PROTOCOL_ERROR,
                tag + " 7.5 h2spec 3.5/2 invalid preface -> GOAWAY PROTOCOL_ERROR",
                "goaway=%r" % c.goaway)
        T.check(eof and dt < 2.5, tag + " 7.5 invalid preface: closed at once (not 120 s)",
                "eof=%r after %.2fs" % (eof, dt))
        c.close()
        echo_ok("a bad preface")

    # --- h2spec 5.1.1/2: a lower stream id
    def lower(c):
        c.get(5)
        c.pump(lambda: 5 in c.status)
        c.get(3)
    conn_error_case(port, tls, tag, "7.5 h2spec 5.1.1/2 HEADERS on stream 3 after 5",
                    PROTOCOL_ERROR, lower)

    # --- 7.2: HEADERS on an open WebSocket stream; 7.3 :scheme
    for end in (False, True):
        c = Raw(port, tls)
        c.start()
        c.ws(1)
        c.ws(3)
        c.pump(lambda: 1 in c.status and 3 in c.status)
        c.headers(1, [("x-trailer", "1")], end_stream=end)
        c.pump(lambda: 1 in c.rst)
        T.check(c.rst.get(1) == PROTOCOL_ERROR,
                "%s 7.2 HEADERS%s on an open WebSocket -> RST_STREAM PROTOCOL_ERROR"
                % (tag, " + END_STREAM" if end else ""), "rst=%r" % c.rst)
        c.ws_data(3, 1, b"sibling")
        c.pump(lambda: b"sibling" in c.data.get(3, b""))
        T.check(b"sibling" in c.data.get(3, b"") and c.goaway is None,
                "%s 7.2 the sibling WebSocket echoes, no GOAWAY" % tag,
                "data=%r goaway=%r" % (c.data.get(3), c.goaway))
        c.close()
    c = Raw(port, tls)
    c.start()
    for sid, scheme in ((1, "wss"), (3, "ws"), (5, "ftp")):
        c.ws(sid, scheme=scheme)
    c.ws(7, scheme="https" if not tls else "https")
    c.pump(lambda: all(s in c.rst or s in c.status for s in (1, 3, 5, 7)))
    T.check(all(c.rst.get(s) == PROTOCOL_ERROR for s in (1, 3, 5)),
            tag + " 7.3 :scheme wss / ws / ftp -> RST_STREAM PROTOCOL_ERROR",
            "rst=%r status=%r" % (c.rst, c.status))
    T.check(c.status.get(7) == 200, tag + " 7.3 :scheme https accepted", repr(c.status))
    c.close()

    # --- 7.4: the advertised limit is what is accepted
    c = Raw(port, tls)
    c.start()
    limit = c.settings.get(3)
    T.check(limit == 128, tag + " 7.4 SETTINGS_MAX_CONCURRENT_STREAMS 128 advertised",
            repr(c.settings))
    T.check(c.settings.get(9) == 1, tag + " 9 K SETTINGS_NO_RFC7540_PRIORITIES = 1 sent",
            repr(c.settings))
    for i in range(129):
        c.ws(2 * i + 1)
    c.pump(lambda: len(c.status) + len(c.rst) >= 129, 5)
    ok = sum(1 for s in c.status.values() if s == 200)
    T.check(ok == 128 and c.rst == {257: REFUSED_STREAM} and c.goaway is None,
            tag + " 7.4 128 WebSockets accepted, the 129th RST_STREAM REFUSED_STREAM, "
            "the connection lives", "200s=%d rst=%r goaway=%r" % (ok, c.rst, c.goaway))
    c.ws_data(255, 1, b"last")
    c.pump(lambda: b"last" in c.data.get(255, b""))
    T.check(b"last" in c.data.get(255, b""), tag + " 7.4 WebSocket 128 echoes", "")
    c.close()

    # --- issue 9: floods end the connection with ENHANCE_YOUR_CALM
    def continuation(c):
        blk = c.block([(":method", "GET"), (":scheme", c.scheme), (":path", "/"),
                       (":authority", "127.0.0.1")])
        c.frame(HeadersFrame(1, blk[:2]))
        for _ in range(50):
            c.frame(ContinuationFrame(1, b"\x40" * 1000))
    conn_error_case(port, tls, tag, "9A CONTINUATION flood", ENHANCE_YOUR_CALM, continuation)

    def frames(make, n):
        def attack(c):
            c.send(b"".join(make(i).serialize() for i in range(n)))
        return attack
    conn_error_case(port, tls, tag, "9A SETTINGS flood (300)", ENHANCE_YOUR_CALM,
                    frames(lambda i: SettingsFrame(0), 300))
    conn_error_case(port, tls, tag, "9A PING flood (300)", ENHANCE_YOUR_CALM,
                    frames(lambda i: PingFrame(0, b"%08d" % i), 300))
    conn_error_case(port, tls, tag, "9 WINDOW_UPDATE flood (3000)", ENHANCE_YOUR_CALM,
                    frames(lambda i: WindowUpdateFrame(0, 1), 3000))
    conn_error_case(port, tls, tag, "9K PRIORITY flood (3000)", ENHANCE_YOUR_CALM,
                    frames(lambda i: PriorityFrame(2 * i + 1, depends_on=0,
                                                   stream_weight=15), 3000))

    def empty_data(c):
        c.ws(1)
        c.pump(lambda: 1 in c.status)
        c.send(b"".join(DataFrame(1, b"").serialize() for _ in range(300)))
    conn_error_case(port, tls, tag, "9 empty DATA flood (300)", ENHANCE_YOUR_CALM, empty_data)

    def rapid_reset(c):
        out = []
        for i in range(1500):
            f = HeadersFrame(2 * i + 1, c.block([(":method", "GET"), (":scheme", c.scheme),
                                                 (":path", "/"), (":authority", "127.0.0.1")]))
            f.flags.add("END_HEADERS")
            out.append(f.serialize())
            out.append(RstStreamFrame(2 * i + 1, error_code=8).serialize())
        c.send(b"".join(out))
    conn_error_case(port, tls, tag, "9I rapid reset (HEADERS + RST_STREAM x1500)",
                    ENHANCE_YOUR_CALM, rapid_reset)

    def made_you_reset(c):
        out = []
        for i in range(400):
            f = HeadersFrame(2 * i + 1, c.block([
                (":method", "CONNECT"), (":protocol", "websocket"), (":scheme", c.scheme),
                (":path", "/echo"), (":authority", "127.0.0.1"),
                ("sec-websocket-version", "13")]))
            f.flags.add("END_HEADERS")
            out.append(f.serialize())
            out.append(WindowUpdateFrame(2 * i + 1, 0x7fffffff).serialize())
        c.send(b"".join(out))
    conn_error_case(port, tls, tag, "9G MadeYouReset (HEADERS + WINDOW_UPDATE overflow x400)",
                    ENHANCE_YOUR_CALM, made_you_reset)

    # --- 9 B: HPACK bomb and too many fields: the stream, not the connection
    c = Raw(port, tls)
    c.start()
    big = "b" * 4000
    base = [(":method", "GET"), (":scheme", c.scheme), (":path", "/"),
            (":authority", "127.0.0.1")]
    c.headers(1, base + [("x-big", big)], end_stream=True)  # into the table
    c.pump(lambda: 1 in c.status)
    blk = c.block(base) + bytes([0x80 | 62]) * 16000  # x-big, 16000 times
    f = HeadersFrame(3, blk)
    f.flags.add("END_HEADERS")
    f.flags.add("END_STREAM")
    t0 = time.monotonic()
    c.frame(f)
    c.pump(lambda: 3 in c.rst or 3 in c.status)
    dt = time.monotonic() - t0
    T.check(c.rst.get(3) == ENHANCE_YOUR_CALM and 3 not in c.status,
            tag + " 9B HPACK bomb (a 4000-byte entry x16000) -> RST_STREAM ENHANCE_YOUR_CALM",
            "rst=%r status=%r after %.3fs" % (c.rst, c.status, dt))
    c.headers(5, base + [("x-big", big)], end_stream=True)
    c.pump(lambda: 5 in c.status)
    T.check(c.status.get(5) == 200 and c.goaway is None,
            tag + " 9B after the bomb the connection serves (HPACK in step)",
            "status=%r goaway=%r" % (c.status, c.goaway))
    c.headers(7, base + [("x-f%d" % i, "1") for i in range(300)], end_stream=True)
    c.pump(lambda: 7 in c.rst or 7 in c.status)
    T.check(c.rst.get(7) == ENHANCE_YOUR_CALM,
            tag + " 9B 300 header fields -> RST_STREAM ENHANCE_YOUR_CALM", repr(c.rst))
    c.close()
    echo_ok("the floods")


def main():
    binary = iu.h2ws_bin()
    for tls in (True, False):
        p, r, port = iu.start_h2ws_serve(binary, cleartext=not tls)
        honest = None
        try:
            honest = iu.H2WSClient(port, tls=tls)
            honest.wait_settings()
            T.run("[%s]" % ("tls" if tls else "h2c"), run, port, tls, honest)
            T.check(p.poll() is None, "[%s] server still running" %
                    ("tls" if tls else "h2c"), r.text()[-2000:])
        finally:
            if honest:
                honest.close()
            iu.stop(p)
    T.finish()


if __name__ == "__main__":
    main()
