#!/usr/bin/python3
# Interop: python3-h2 + python3-wsproto (RFC 8441 client) against
# `h2ws serve`, over TLS (ALPN h2) and h2c prior knowledge: echo sizes,
# 100 concurrent WebSockets mixed with GETs, malformed/refused extended
# CONNECTs (SPEC H5-H7, pitfalls 5-7), orderly close (H9, pitfall 14),
# flow control (H10, pitfalls 11-12), pings (H13), permessage-deflate (D2).
#
# Usage: /usr/bin/python3 test_python_h2.py /abs/path/to/h2ws
# H2WS_INTEROP_PEER=hypercorn runs the positive cases against Hypercorn
# instead (validates this client against a third-party server; Hypercorn
# 0.13 never sends END_STREAM after its close frame and drops the connection
# on ours, so its orderly-close checks fail: a Hypercorn bug, not ours).
import os
import random
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import interop_util as iu  # noqa: E402
import h2.events  # noqa: E402
import h2.settings  # noqa: E402
from hyperframe.frame import (DataFrame, Frame, GoAwayFrame, HeadersFrame,  # noqa: E402
                              RstStreamFrame, SettingsFrame)

T = iu.Tally()
PEER = os.environ.get("H2WS_INTEROP_PEER", "h2ws")
PROTOCOL_ERROR = 1
SIZES = [0, 1, 125, 126, 65535, 65536, 1 << 20]


def payload(size, text):
    if text:
        base = "h2ws-interop \u00e9\u4e2d "  # multi-byte UTF-8 too
        s = (base * (size // len(base.encode()) + 1)).encode()[:size]
        # cut back to a character boundary, pad with ASCII to the exact size
        while True:
            try:
                t = s.decode("utf-8")
                break
            except UnicodeDecodeError:
                s = s[:-1]
        return t + "x" * (size - len(t.encode()))
    return bytes((i * 7 + 3) & 0xFF for i in range(size))


def start_server(cleartext, extra=()):
    if PEER == "hypercorn":
        argv = [iu.PY, os.path.join(iu.PEERS, "asgi_echo.py")]
        if not cleartext:
            cert, key = iu.make_cert()
            argv += ["--cert", cert, "--key", key]
        p = iu.spawn(argv)
        r = iu.LineReader(p)
        m = r.wait_for(r"PORT (\d+)")
        if not m:
            raise RuntimeError("hypercorn peer did not start:\n" + r.text())
        return p, r, int(m.group(1))
    return iu.start_h2ws_serve(BIN, cleartext=cleartext, extra=extra)


def check_accept(name, st):
    T.check(st.status == 200, name + ": extended CONNECT answered 200",
            "status=%r reset=%r" % (st.status, st.reset))
    T.check(not st.headers_end_stream and not st.ended,
            name + ": 200 without END_STREAM (H7)")
    T.check(st.header("sec-websocket-accept") is None,
            name + ": no sec-websocket-accept in the 200 (H6)", repr(st.headers))
    T.check(st.header("content-length") is None and st.header("transfer-encoding") is None,
            name + ": no content-length/transfer-encoding in the 200 (pitfall 6)", repr(st.headers))


def connect(port, tls, validate=True):
    c = iu.H2WSClient(port, tls=tls, validate=validate)
    return c


def test_settings(port, tls, tag):
    c = connect(port, tls)
    try:
        if tls:
            T.check(c.alpn == "h2", tag + " ALPN selects h2", "alpn=%r" % c.alpn)
        ecp = c.wait_settings()
        T.check(ecp == 1, tag + " H1 SETTINGS_ENABLE_CONNECT_PROTOCOL=1 advertised",
                "value=%r" % ecp)
        g = c.get("/")
        c.pump(lambda: g.ended or g.reset is not None, what="GET /")
        T.check(g.status == 200 and b"<" in bytes(g.body),
                tag + " GET / returns an HTML page", "status=%r body=%r" % (g.status, bytes(g.body[:80])))
    finally:
        c.close()


def test_echo_sizes(port, tls, tag):
    c = connect(port, tls)
    try:
        c.wait_settings()
        st = c.open_ws("/echo")
        c.wait_response(st)
        check_accept(tag + " H7", st)
        if st.status != 200:
            return
        for size in SIZES:
            for text in (True, False):
                data = payload(size, text)
                kind = "text" if text else "binary"
                got = c.echo(st, data, timeout=30)
                T.check(got is not None and got[0] == kind and got[1] == data,
                        "%s H8 %s echo %d B" % (tag, kind, size),
                        "got kind=%r len=%r reset=%r close=%r ws_error=%r" % (
                            got and got[0], got and len(got[1]), st.reset, st.close, st.ws_error))
        # two messages in one go, then a ping in between: framing within DATA
        n = len(st.messages)
        c.ws_send(st, "first")
        c.ws_ping(st, b"ping-payload")
        c.ws_send(st, b"second")
        c.pump(lambda: len(st.messages) >= n + 2 and st.pongs, what="two echoes and a pong")
        T.check(st.messages[n:n + 2] == [("text", "first"), ("binary", b"second")],
                tag + " H8 back-to-back messages keep order", repr(st.messages[n:n + 2]))
        T.check(st.pongs == [b"ping-payload"], tag + " W4 ping answered with same payload",
                repr(st.pongs))
        c.conn.ping(b"h2wsping")
        c.pump(lambda: c.ping_acks, what="HTTP/2 PING ack")
        T.check(c.ping_acks == [b"h2wsping"], tag + " H13 HTTP/2 PING acked alongside WebSockets")
        close_orderly(c, st, tag)
    finally:
        c.close()


def close_orderly(c, st, tag):
    c.ws_close(st, 1000, "bye")
    c.pump(lambda: (st.close is not None and st.ended) or st.reset is not None,
           what="close frame and END_STREAM")
    T.check(st.close is not None and int(st.close[0]) == 1000,
            tag + " W6 server echoes close 1000", "close=%r" % (st.close,))
    T.check(st.ended and st.reset is None,
            tag + " H9 server half-closes with END_STREAM, no RST_STREAM",
            "ended=%r reset=%r" % (st.ended, st.reset))
    # our END_STREAM follows our close frame (sent by the client on the
    # peer's close); give the server a moment to misbehave (late RST)
    deadline = time.monotonic() + 0.3
    while time.monotonic() < deadline:
        c._io_once(0.05)
    T.check(st.local_ended and st.reset is None and c.terminated is None,
            tag + " pitfall 14 stream closed both ways without RST/GOAWAY",
            "local_ended=%r reset=%r terminated=%r" % (st.local_ended, st.reset, c.terminated))


def test_concurrent(port, tls, tag):
    c = connect(port, tls)
    try:
        c.wait_settings()
        mcs = c.conn.remote_settings.max_concurrent_streams
        streams, gets = [], []
        for i in range(100):
            if i % 10 == 5:  # stays within a 100-stream limit (hypercorn's)
                gets.append(c.get("/"))
                c.pump(lambda: gets[-1].ended or gets[-1].reset is not None,
                       what="GET / among WebSockets")
            streams.append(c.open_ws("/echo"))
        c.pump(lambda: all(s.status is not None or s.reset is not None for s in streams),
               timeout=30, what="100 responses")
        ok = sum(1 for s in streams if s.status == 200 and not s.ended)
        T.check(ok == 100, tag + " H11 100 concurrent WebSockets on one connection accepted",
                "accepted=%d max_concurrent_streams=%r resets=%r" % (
                    ok, mcs, [s.reset for s in streams if s.reset is not None][:5]))
        T.check(all(g.status == 200 for g in gets),
                tag + " H11 GET / interleaved with 100 WebSockets",
                repr([(g.status, g.reset) for g in gets]))
        live = [s for s in streams if s.status == 200]
        for s in live:
            c.ws_send(s, "stream %d says hello" % s.sid)
            c.ws_send(s, bytes([s.sid & 0xFF]) * 3000)
        c.pump(lambda: all(len(s.messages) >= 2 or s.reset is not None or s.ended for s in live),
               timeout=30, what="200 echoes")
        good = sum(1 for s in live if s.messages[:2] ==
                   [("text", "stream %d says hello" % s.sid), ("binary", bytes([s.sid & 0xFF]) * 3000)])
        T.check(good == 100, tag + " H11 every concurrent WebSocket gets its own echoes",
                "good=%d" % good)
        for s in live:
            c.ws_close(s, 1000)
        c.pump(lambda: all(s.ended or s.reset is not None for s in live), timeout=30,
               what="100 closes")
        T.check(all(s.close is not None and int(s.close[0]) == 1000 and s.ended and s.reset is None
                    for s in live),
                tag + " W6 100 orderly closes", repr([(s.sid, s.close, s.reset) for s in live
                                                      if s.reset is not None or s.close is None][:5]))
    finally:
        c.close()


def test_flow_control(port, tls, tag):
    c = connect(port, tls)
    try:
        c.wait_settings()
        # a big connection window, so only the held stream's window limits it
        c.conn.increment_flow_control_window(8 << 20)
        a = c.open_ws("/echo")
        b = c.open_ws("/echo")
        c.pump(lambda: a.status is not None and b.status is not None, what="two 200s")
        a.hold = True
        big = payload(300000, False)
        c.ws_send(a, big)
        # the server can send back at most our 65535-byte stream window
        c.pump(lambda: a.unacked >= 65535 - 16, timeout=10, what="stream A window filled")
        T.check(a.unacked <= 65535 and not a.messages,
                tag + " pitfall 11 server respects a stalled stream's window",
                "unacked=%d" % a.unacked)
        got = c.echo(b, "still flowing")
        T.check(got == ("text", "still flowing"),
                tag + " H10 a stalled WebSocket does not freeze the others", repr(got))
        c.release(a)
        c.pump(lambda: a.messages or a.reset is not None, timeout=20, what="stream A after release")
        T.check(a.messages == [("binary", big)],
                tag + " H10 stalled stream resumes after WINDOW_UPDATE",
                "msgs=%r reset=%r" % ([(k, len(v)) for k, v in a.messages], a.reset))
        close_orderly(c, b, tag + " (flow)")
    finally:
        c.close()


def test_deflate(port, tls, tag, expect):
    c = connect(port, tls)
    try:
        c.wait_settings()
        st = c.open_ws("/echo", deflate=True)
        c.wait_response(st)
        ext = st.header("sec-websocket-extensions") or ""
        if expect:
            T.check(st.status == 200 and "permessage-deflate" in ext,
                    tag + " D1 permessage-deflate accepted over HTTP/2", "ext=%r" % ext)
        else:
            T.check(st.status == 200 and "permessage-deflate" not in ext,
                    tag + " D1 --no-compress declines permessage-deflate", "ext=%r" % ext)
        if st.status != 200:
            return
        for size in (0, 10, 5000, 200000):
            for text in (True, False):
                data = ("compress me " * (size // 12 + 1))[:size] if text else \
                    bytes(i % 5 for i in range(size))
                got = c.echo(st, data, timeout=20)
                T.check(got is not None and got[1] == data,
                        "%s D2 %s echo %d B (deflate %s)" % (tag, "text" if text else "binary",
                                                            size, "on" if expect else "off"),
                        "got=%r ws_error=%r close=%r" % (got and (got[0], len(got[1])),
                                                         st.ws_error, st.close))
        close_orderly(c, st, tag + " (deflate)")
    finally:
        c.close()


def bad_requests(c):
    a = c.authority
    s = c.scheme
    ok = [(":method", "CONNECT"), (":protocol", "websocket"), (":scheme", s),
          (":path", "/echo"), (":authority", a), ("sec-websocket-version", "13")]

    def without(name):
        return [h for h in ok if h[0] != name]

    return [
        ("H5 :protocol on a GET", [(":method", "GET"), (":protocol", "websocket"),
                                   (":scheme", s), (":path", "/echo"), (":authority", a),
                                   ("sec-websocket-version", "13")], "rst"),
        ("H5 extended CONNECT without :scheme", without(":scheme"), "rst"),
        ("H5 extended CONNECT without :path", without(":path"), "rst"),
        ("H5 extended CONNECT without :authority", without(":authority"), "rst"),
        ("H6 connection: upgrade", ok + [("connection", "upgrade")], "rst"),
        ("H6 upgrade: websocket", ok + [("upgrade", "websocket")], "rst"),
        ("pitfall 6 content-length: 5 on CONNECT", ok + [("content-length", "5")], "rst"),
        ("pitfall 7 no sec-websocket-version", without("sec-websocket-version"), 400),
        ("pitfall 7 sec-websocket-version: abc",
         without("sec-websocket-version") + [("sec-websocket-version", "abc")], 426),
        ("W8 sec-websocket-version: 8",
         without("sec-websocket-version") + [("sec-websocket-version", "8")], 426),
        ("H4 :protocol: foo", [h if h[0] != ":protocol" else (":protocol", "foo") for h in ok], 501),
        ("H7 no route /nope", [h if h[0] != ":path" else (":path", "/nope") for h in ok], 404),
    ]


def test_bad_requests(port, tls, tag):
    c = connect(port, tls, validate=False)
    try:
        c.wait_settings()
        for name, headers, want in bad_requests(c):
            st = c.request(headers, end_stream=False, ws=True)
            try:
                c.pump(lambda: st.reset is not None or st.ended, timeout=5,
                       what="answer to " + name)
            except TimeoutError:
                pass
            if want == "rst":
                T.check(st.reset == PROTOCOL_ERROR and st.status is None,
                        "%s %s -> RST_STREAM PROTOCOL_ERROR" % (tag, name),
                        "status=%r reset=%r ended=%r terminated=%r" % (
                            st.status, st.reset, st.ended, c.terminated))
            else:
                extra = ""
                good = st.status == want and st.ended
                if want == 426:
                    good = good and st.header("sec-websocket-version") == "13"
                    extra = " with sec-websocket-version: 13"
                T.check(good, "%s %s -> %d%s" % (tag, name, want, extra),
                        "status=%r headers=%r reset=%r ended=%r terminated=%r" % (
                            st.status, st.headers, st.reset, st.ended, c.terminated))
            if st.reset is None and not st.local_ended and c.terminated is None:
                try:
                    c.conn.reset_stream(st.sid, 8)  # CANCEL what we left open
                except Exception:
                    pass
            # the connection must keep serving other streams
            alive = None
            try:
                if c.terminated is None and not c.eof:
                    ws = c.open_ws("/echo")
                    c.wait_response(ws, timeout=5)
                    if ws.status == 200:
                        alive = c.echo(ws, "alive after " + name, timeout=5)
                        c.ws_close(ws)
                        c.pump(lambda: ws.ended or ws.reset is not None, timeout=5)
            except Exception as e:  # noqa: BLE001
                alive = repr(e)
            T.check(alive == ("text", "alive after " + name),
                    "%s connection survives: %s" % (tag, name),
                    "echo=%r terminated=%r eof=%r" % (alive, c.terminated, c.eof))
            if c.terminated is not None or c.eof:
                c.close()
                c = connect(port, tls, validate=False)
                c.wait_settings()
        # H6: a sec-websocket-key is ignored, never answered with an accept
        st = c.open_ws("/echo", extra=[("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")])
        c.wait_response(st)
        check_accept(tag + " H6 sec-websocket-key ignored", st)
        if st.status == 200:
            close_orderly(c, st, tag + " H6")
    finally:
        c.close()


def test_ws_protocol_errors(port, tls, tag):
    """The server's WebSocket layer over h2 (W2, W3, W5, W6): bad frames
    from the client get the right close code; the connection lives on."""
    cases = [
        ("W2 unmasked client frame", iu.raw_frame(1, b"hi", mask=False), 1002),
        ("W5 invalid UTF-8 in a text message", iu.raw_frame(1, b"ok\xff\xfe"), 1007),
        ("W3 ping longer than 125 bytes", iu.raw_frame(9, b"p" * 126), 1002),
        ("W3 fragmented ping", iu.raw_frame(9, b"p", fin=False), 1002),
        ("W3 unknown opcode 3", iu.raw_frame(3, b"x"), 1002),
        ("W3 RSV1 without a negotiated extension", iu.raw_frame(1, b"x", rsv=4), 1002),
        ("W3 continuation without a start", iu.raw_frame(0, b"x"), 1002),
        ("W3 new data frame inside a fragmented message",
         iu.raw_frame(1, b"a", fin=False) + iu.raw_frame(1, b"b"), 1002),
        ("W6 close code 1005 on the wire", iu.raw_frame(8, (1005).to_bytes(2, "big")), 1002),
        ("W6 close payload of one byte", iu.raw_frame(8, b"\x03"), 1002),
    ]
    c = connect(port, tls)
    try:
        c.wait_settings()
        for name, frame, code in cases:
            st = c.open_ws("/echo")
            c.wait_response(st)
            if st.status != 200:
                T.check(False, tag + " " + name, "status=%r" % st.status)
                continue
            st.out += frame
            try:
                c.pump(lambda: st.close is not None or st.reset is not None or st.ended, timeout=5,
                       what="close after " + name)
                c.pump(lambda: st.ended or st.reset is not None, timeout=5, what="end of stream")
            except TimeoutError:
                pass
            T.check(st.close is not None and int(st.close[0]) == code,
                    "%s %s -> close %d" % (tag, name, code),
                    "close=%r reset=%r ended=%r" % (st.close, st.reset, st.ended))
            T.check(st.ended or st.reset is not None,
                    "%s %s: stream ends (no hang)" % (tag, name),
                    "close=%r reset=%r ended=%r" % (st.close, st.reset, st.ended))
            ws = c.open_ws("/echo")
            c.wait_response(ws)
            got = c.echo(ws, "after " + name) if ws.status == 200 else None
            T.check(got == ("text", "after " + name) and c.terminated is None,
                    "%s connection survives: %s" % (tag, name), "got=%r terminated=%r" % (got, c.terminated))
            if ws.status == 200:
                c.ws_close(ws)
                c.pump(lambda: ws.ended or ws.reset is not None, timeout=5)
    finally:
        c.close()


def test_early_connect(port, tls, tag):
    """Pitfall 3: the server accepts :protocol as soon as its SETTINGS is
    sent (here the CONNECT leaves with our preface, before its SETTINGS
    arrives and before we acknowledge it)."""
    c = iu.H2WSClient(port, tls=tls, validate=False)
    try:
        st = c.open_ws("/echo")
        c.wait_response(st)
        T.check(st.status == 200, tag + " pitfall 3 extended CONNECT sent with the preface accepted",
                "status=%r reset=%r terminated=%r" % (st.status, st.reset, c.terminated))
        if st.status == 200:
            got = c.echo(st, "early")
            T.check(got == ("text", "early"), tag + " pitfall 3 early WebSocket echoes", repr(got))
            close_orderly(c, st, tag + " (early)")
    finally:
        c.close()


def test_zero_window(port, tls, tag):
    """Pitfall 11: a client that starts with SETTINGS_INITIAL_WINDOW_SIZE=0
    gets no DATA until it sends WINDOW_UPDATE."""
    c = iu.H2WSClient(port, tls=tls, settings={
        h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0,
        h2.settings.SettingCodes.ENABLE_PUSH: 0})
    try:
        c.wait_settings()
        st = c.open_ws("/echo")
        c.wait_response(st)
        T.check(st.status == 200, tag + " zero window: 200 (HEADERS are not flow controlled)",
                "status=%r" % st.status)
        if st.status != 200:
            return
        c.ws_send(st, "zero window")
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline and c.terminated is None:
            c._io_once(0.05)
        T.check(st.rx == 0 and c.terminated is None,
                tag + " pitfall 11 no DATA beyond an initial window of 0",
                "rx=%d terminated=%r" % (st.rx, c.terminated))
        c.conn.increment_flow_control_window(1 << 16, stream_id=st.sid)
        c.pump(lambda: st.messages or st.reset is not None, timeout=5, what="echo after credit")
        T.check(st.messages == [("text", "zero window")],
                tag + " pitfall 11 echo arrives once WINDOW_UPDATE grants credit",
                "msgs=%r reset=%r" % (st.messages, st.reset))
    finally:
        c.close()


def test_stream_limits(port, tls, tag):
    """Pitfall 18: WebSockets hold stream slots; a client that opens as many
    as the advertised MAX_CONCURRENT_STREAMS gets each one accepted or
    refused with REFUSED_STREAM (never queued, never a connection error),
    the open ones keep working, and a closed WebSocket frees its slot.
    (Going *over* the advertised limit is the client's fault; nghttp2
    answers that with GOAWAY rather than RFC 9113 §5.1.2's stream error,
    so it is not tested here.)"""
    c = connect(port, tls)
    try:
        c.wait_settings()
        limit = c.conn.remote_settings.max_concurrent_streams
        if limit > 1000:
            T.check(False, tag + " pitfall 18 server advertises a MAX_CONCURRENT_STREAMS limit",
                    "limit=%r" % limit)
            return
        streams = [c.open_ws("/echo") for _ in range(limit)]
        try:
            c.pump(lambda: all(s.status is not None or s.reset is not None for s in streams)
                   or c.terminated is not None, timeout=30, what="%d answers" % limit)
        except (TimeoutError, ConnectionError):
            pass
        accepted = [s for s in streams if s.status == 200 and s.reset is None]
        refused = [s for s in streams if s.status is None and s.reset == 7]
        other = [(s.sid, s.status, s.reset) for s in streams if s not in accepted and s not in refused]
        T.check(c.terminated is None and not other,
                "%s pitfall 18 up to the limit: each WebSocket either 200 or RST_STREAM REFUSED_STREAM" % tag,
                "accepted=%d refused=%d other=%r terminated=%r" % (len(accepted), len(refused), other[:5],
                                                                   c.terminated))
        T.check(len(accepted) >= 100, "%s pitfall 18 at least 100 concurrent WebSockets accepted" % tag,
                "accepted=%d" % len(accepted))
        print("note %s: MAX_CONCURRENT_STREAMS=%d advertised, %d WebSockets accepted at once"
              % (tag, limit, len(accepted)))
        if c.terminated is not None or c.eof or not accepted:
            return
        got = c.echo(accepted[-1], "still here")
        T.check(got == ("text", "still here"), tag + " pitfall 18 the open WebSockets keep working", repr(got))
        c.ws_close(accepted[0])
        c.pump(lambda: accepted[0].ended or accepted[0].reset is not None, what="close of one WebSocket")
        st = c.open_ws("/echo")
        c.wait_response(st)
        T.check(st.status == 200, tag + " pitfall 18 a closed WebSocket frees its slot",
                "status=%r reset=%r" % (st.status, st.reset))
    finally:
        c.close()

def test_slot_reuse(port, tls, tag, rounds=300):
    """More WebSockets over a connection's life than MAX_CONCURRENT_STREAMS,
    one after the other: every closed stream's slot comes back."""
    c = connect(port, tls)
    try:
        c.wait_settings()
        ok = 0
        for i in range(rounds):
            st = c.open_ws("/echo")
            c.wait_response(st)
            if st.status != 200:
                break
            if c.echo(st, "round %d" % i) != ("text", "round %d" % i):
                break
            c.ws_close(st)
            c.pump(lambda: (st.ended and st.local_ended) or st.reset is not None, what="close")
            ok += 1
        T.check(ok == rounds, "%s H11 %d WebSockets one after another on one connection" % (tag, rounds),
                "completed=%d" % ok)
    finally:
        c.close()


def test_stream_edges(port, tls, tag):
    """H8/H9 edges: tiny and padded DATA frames, RST_STREAM(CANCEL) from the
    client, END_STREAM without a close frame, the client's own
    ENABLE_CONNECT_PROTOCOL (pitfall 2); the connection lives through all."""
    c = iu.H2WSClient(port, tls=tls, settings={
        h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL: 1,
        h2.settings.SettingCodes.ENABLE_PUSH: 0})
    try:
        c.wait_settings()
        st = c.open_ws("/echo")
        c.wait_response(st)
        T.check(st.status == 200, tag + " pitfall 2 a client that sends ENABLE_CONNECT_PROTOCOL=1 is served",
                "status=%r reset=%r terminated=%r" % (st.status, st.reset, c.terminated))
        if st.status != 200:
            return
        st.chunk = 1
        msg = "one byte per DATA frame \u00e9" * 10
        T.check(c.echo(st, msg) == ("text", msg), tag + " H8 a message spread over 1-byte DATA frames")
        st.chunk, st.pad = 7, 200
        data = bytes(range(256)) * 20
        T.check(c.echo(st, data) == ("binary", data), tag + " H8 padded DATA frames")
        st.chunk, st.pad = None, None
        # RST_STREAM(CANCEL) mid-message: an abnormal close of that stream only
        st.out += iu.raw_frame(2, b"z" * 1000)[:500]
        c._flush_h2()
        c.conn.reset_stream(st.sid, 8)
        st.reset = -1
        c._flush_h2()
        ws = c.open_ws("/echo")
        c.wait_response(ws)
        got = c.echo(ws, "after cancel") if ws.status == 200 else None
        T.check(got == ("text", "after cancel") and c.terminated is None,
                tag + " H9 RST_STREAM(CANCEL) from the client ends only that WebSocket", repr(got))
        # END_STREAM with no close frame: the server must end its side too
        ws.end_after = True
        c.pump(lambda: ws.ended or ws.reset is not None, timeout=10, what="server end after our bare END_STREAM")
        T.check(ws.ended or ws.reset is not None,
                tag + " H9 END_STREAM without a close frame: the server ends the stream (no hang)",
                "ended=%r reset=%r close=%r" % (ws.ended, ws.reset, ws.close))
        ws2 = c.open_ws("/echo")
        c.wait_response(ws2)
        got = c.echo(ws2, "still alive") if ws2.status == 200 else None
        T.check(got == ("text", "still alive") and c.terminated is None,
                tag + " connection survives the edge cases", repr(got))
    finally:
        c.close()


def test_bad_setting(port, tls, tag):
    """H2: SETTINGS_ENABLE_CONNECT_PROTOCOL=2 from the client is a
    connection error PROTOCOL_ERROR (GOAWAY), not a crash."""
    c = connect(port, tls)
    try:
        c.wait_settings()
        c.outbuf += SettingsFrame(0, settings={8: 2}).serialize()
        try:
            c.pump(lambda: c.terminated is not None, timeout=5, what="GOAWAY")
        except (TimeoutError, ConnectionError):
            pass
        t = c.terminated
        T.check(isinstance(t, h2.events.ConnectionTerminated) and int(t.error_code) == 1,
                tag + " H2 ENABLE_CONNECT_PROTOCOL=2 -> GOAWAY PROTOCOL_ERROR", "terminated=%r eof=%r" % (t, c.eof))
    finally:
        c.close()


def test_soak(port, tls, tag, nconn=10, nws=20, nmsg=8):
    """H10/H11 under mixed load: several connections, each with many
    WebSockets exchanging messages of assorted sizes at the same time,
    plus GETs; every echo must come back intact on its own stream."""
    rnd = random.Random(8441)
    clients = [connect(port, tls) for _ in range(nconn)]
    try:
        for c in clients:
            c.wait_settings()
        work = []
        for c in clients:
            for _ in range(nws):
                st = c.open_ws("/echo")
                msgs = []
                for k in range(nmsg):
                    size = rnd.choice([0, 1, 100, 126, 1000, 20000, 70000])
                    msgs.append("%d:%d:" % (st.sid, k) + "s" * size if k % 2 else
                                bytes(rnd.getrandbits(8) for _ in range(min(size, 2000))) + b"x" * max(0, size - 2000))
                work.append((c, st, msgs))
        deadline = time.monotonic() + 60
        started = set()
        gets = []
        while time.monotonic() < deadline:
            busy = False
            for c, st, msgs in work:
                if st.status == 200 and id(st) not in started:
                    for m in msgs:
                        c.ws_send(st, m)
                    started.add(id(st))
                if len(st.messages) < len(msgs) and st.reset is None and not st.ended:
                    busy = True
            for c in clients:
                if rnd.random() < 0.05 and len(gets) < 50:
                    gets.append(c.get("/"))
                c._io_once(0)
            if not busy and all(g.ended or g.reset is not None for g in gets):
                break
        good = sum(1 for _c, st, msgs in work if [m for _k, m in st.messages] == msgs)
        T.check(good == len(work), "%s soak: %d connections x %d WebSockets x %d messages all echoed"
                % (tag, nconn, nws, nmsg), "good=%d of %d; resets=%r" % (
                    good, len(work), [st.reset for _c, st, _m in work if st.reset is not None][:5]))
        T.check(all(g.status == 200 for g in gets), "%s soak: %d GETs among them answered" % (tag, len(gets)),
                repr([(g.status, g.reset) for g in gets if g.status != 200][:5]))
        for c, st, _m in work:
            if st.status == 200 and st.reset is None:
                c.ws_close(st)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not all(st.ended or st.reset is not None for _c, st, _m in work):
            for c in clients:
                c._io_once(0.01)
        T.check(all(st.close is not None and int(st.close[0]) == 1000 and st.ended for _c, st, _m in work),
                "%s soak: every WebSocket closes 1000 with END_STREAM" % tag,
                repr([(st.sid, st.close, st.reset) for _c, st, _m in work if not st.ended][:5]))
    finally:
        for c in clients:
            c.close()


def test_graceful_shutdown(tls):
    """H12, pitfall 16: SIGTERM closes open WebSockets with 1001, ends their
    streams, sends GOAWAY and exits 0. python3-h2 refuses every frame once
    it has seen a GOAWAY (even the legal ones on streams below its
    last-stream-id), so after SIGTERM this test reads frames with
    hyperframe and answers the close with a hand-built DATA frame."""
    tag = "[%s shutdown]" % ("tls" if tls else "h2c")
    p, r, port = start_server(cleartext=not tls)
    try:
        c = connect(port, tls)
        c.wait_settings()
        st = c.open_ws("/echo")
        c.wait_response(st)
        got = c.echo(st, "before shutdown") if st.status == 200 else None
        T.check(got == ("text", "before shutdown"), tag + " echo before SIGTERM", repr(got))
        raw = bytearray()
        c._feed = raw.extend          # from here on: raw frames, parsed below
        seen = {"close": None, "end": False, "rst": None, "goaway": [], "answered": False}
        os.killpg(p.pid, iu.signal.SIGTERM)
        deadline = time.monotonic() + 10
        ws_in = bytearray()
        while time.monotonic() < deadline and not c.eof:
            c._io_once(0.05)
            while len(raw) >= 9:
                f, length = Frame.parse_frame_header(memoryview(bytes(raw[:9])))
                if len(raw) < 9 + length:
                    break
                f.parse_body(memoryview(bytes(raw[9:9 + length])))
                del raw[:9 + length]
                if isinstance(f, GoAwayFrame):
                    seen["goaway"].append((f.last_stream_id, f.error_code, seen["close"] is not None))
                elif isinstance(f, RstStreamFrame) and f.stream_id == st.sid:
                    seen["rst"] = f.error_code
                elif isinstance(f, DataFrame) and f.stream_id == st.sid:
                    ws_in += f.data
                    if len(ws_in) >= 4 and ws_in[0] == 0x88 and seen["close"] is None:
                        seen["close"] = int.from_bytes(ws_in[2:4], "big")
                        reply = DataFrame(st.sid, data=iu.raw_frame(8, ws_in[2:4]), flags=["END_STREAM"])
                        c.outbuf += reply.serialize()
                        seen["answered"] = True
                    if "END_STREAM" in f.flags:
                        seen["end"] = True
                elif isinstance(f, HeadersFrame) and f.stream_id == st.sid and "END_STREAM" in f.flags:
                    seen["end"] = True
        T.check(seen["close"] == 1001, tag + " H12 SIGTERM sends close 1001 on an open WebSocket",
                repr(seen))
        T.check(seen["end"] and seen["rst"] is None,
                tag + " H12 the WebSocket stream then ends with END_STREAM, no RST", repr(seen))
        T.check(any(g[0] < (1 << 31) - 1 and g[2] for g in seen["goaway"]),
                tag + " H12 final GOAWAY after the close 1001", repr(seen))
        c.close()
        try:
            rc = p.wait(timeout=10)
        except Exception:  # noqa: BLE001
            rc = "still running 10 s after SIGTERM"
        T.check(rc == 0, tag + " H12 exits 0 after the drain", "exit=%r" % (rc,))
    finally:
        iu.stop(p)


def run_transport(tls):
    tag = "[tls]" if tls else "[h2c]"
    try:
        p, r, port = start_server(cleartext=not tls)
    except Exception as e:  # noqa: BLE001
        T.check(False, tag + " server starts", str(e))
        return
    try:
        T.run(tag + " settings", test_settings, port, tls, tag)
        T.run(tag + " echo", test_echo_sizes, port, tls, tag)
        T.run(tag + " concurrent", test_concurrent, port, tls, tag)
        T.run(tag + " flow", test_flow_control, port, tls, tag)
        T.run(tag + " deflate", test_deflate, port, tls, tag, True)
        T.run(tag + " early", test_early_connect, port, tls, tag)
        T.run(tag + " zero window", test_zero_window, port, tls, tag)
        if PEER == "h2ws":
            T.run(tag + " bad requests", test_bad_requests, port, tls, tag)
            T.run(tag + " ws errors", test_ws_protocol_errors, port, tls, tag)
            T.run(tag + " stream limit", test_stream_limits, port, tls, tag)
            T.run(tag + " stream edges", test_stream_edges, port, tls, tag)
            T.run(tag + " bad setting", test_bad_setting, port, tls, tag)
        T.run(tag + " slot reuse", test_slot_reuse, port, tls, tag)
        T.run(tag + " soak", test_soak, port, tls, tag)
        T.check(p.poll() is None, tag + " server still running after all cases",
                "exit=%r\n%s" % (p.poll(), r.text()[-3000:]))
    finally:
        if PEER == "h2ws":
            rc = iu.stop(p)
            T.check(rc == 0, tag + " SIGTERM: graceful shutdown exits 0",
                    "exit=%r\n%s" % (rc, r.text()[-2000:]))
        else:
            iu.stop(p)


def run_no_compress():
    tag = "[tls --no-compress]"
    try:
        p, _r, port = start_server(cleartext=False, extra=["--no-compress"])
    except Exception as e:  # noqa: BLE001
        T.check(False, tag + " server starts", str(e))
        return
    try:
        T.run(tag + " deflate", test_deflate, port, True, tag, False)
    finally:
        iu.stop(p)


if __name__ == "__main__":
    BIN = iu.h2ws_bin() if PEER == "h2ws" else None
    T.run("[tls]", run_transport, True)
    T.run("[h2c]", run_transport, False)
    if PEER == "h2ws":
        T.run("[tls --no-compress]", run_no_compress)
        T.run("[tls shutdown]", test_graceful_shutdown, True)
        T.run("[h2c shutdown]", test_graceful_shutdown, False)
    T.finish()
