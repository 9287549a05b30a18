#!/usr/bin/python3
# Interop: the HTTP/1.1 Upgrade (RFC 6455) side of `h2ws serve` on the same
# port as HTTP/2 (pitfall 19), with python3-websockets as the client (echo
# sizes, permessage-deflate negotiation D1-D3, close W6) and hand-written
# raw handshakes checked byte for byte against RFC 6455 §4.2.2 (W8: 101 and
# Sec-WebSocket-Accept, 426 + Sec-WebSocket-Version: 13, 400 without a key).
#
# Usage: /usr/bin/python3 test_websockets_h1.py /abs/path/to/h2ws
import asyncio
import base64
import hashlib
import os
import socket
import ssl
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import interop_util as iu  # noqa: E402
import websockets  # noqa: E402

T = iu.Tally()
GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def client_ctx(alpn=("http/1.1",)):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(list(alpn))
    return ctx


async def echo_cases(url, ctx, tag):
    async with websockets.connect(url, ssl=ctx, max_size=None, compression=None,
                                  close_timeout=3) as ws:
        for size in (0, 1, 125, 126, 65535, 65536, 1 << 20):
            for text in (True, False):
                data = ("w" * size) if text else bytes((i * 13) & 0xFF for i in range(size))
                await ws.send(data)
                got = await asyncio.wait_for(ws.recv(), 20)
                T.check(got == data, "%s W1 %s echo %d B over HTTP/1.1" %
                        (tag, "text" if text else "binary", size),
                        "got %s len %d" % (type(got).__name__, len(got)))
        pong = await ws.ping(b"h1-ping")
        await asyncio.wait_for(pong, 5)
        T.check(True, tag + " W4 ping answered")
        await ws.close(1000, "done")
        T.check(ws.close_code == 1000, tag + " W6 close 1000 echoed", repr(ws.close_code))


async def deflate_cases(url, ctx, tag, expect):
    async with websockets.connect(url, ssl=ctx, max_size=None, close_timeout=3) as ws:
        names = [e.name for e in ws.extensions]
        T.check(("permessage-deflate" in names) == expect,
                "%s D1 permessage-deflate %s" % (tag, "negotiated" if expect else "declined (--no-compress)"),
                "extensions=%r header=%r" % (names, ws.response_headers.get("sec-websocket-extensions")))
        for data in ("deflate me " * 10000, b"\x07" * 100000, "", "x"):
            await ws.send(data)
            got = await asyncio.wait_for(ws.recv(), 20)
            T.check(got == data, "%s D2 %s echo %d B (deflate %s)" % (
                tag, type(data).__name__, len(data), "on" if expect else "off"))
        await ws.close()
        T.check(ws.close_code == 1000, tag + " D2 close after compressed messages", repr(ws.close_code))


def raw_request(port, tls, head):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    if tls:
        s = client_ctx().wrap_socket(s, server_hostname="127.0.0.1")
    s.sendall(head.encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    s.close()
    lines = data.split(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1]) if lines and len(lines[0].split()) > 1 else None
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    return status, headers, lines[0] if lines else ""


def handshake_cases(port, tls, tag):
    key = base64.b64encode(os.urandom(16)).decode()
    want = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
    base = ("GET /echo HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\n" % port)
    st, h, line = raw_request(port, tls, base + "Sec-WebSocket-Key: %s\r\n"
                              "Sec-WebSocket-Version: 13\r\n\r\n" % key)
    T.check(st == 101 and h.get("upgrade", "").lower() == "websocket"
            and "upgrade" in h.get("connection", "").lower(),
            tag + " W8 101 with Upgrade/Connection", "%s %r" % (line, h))
    T.check(h.get("sec-websocket-accept") == want, tag + " W8 Sec-WebSocket-Accept = base64(SHA-1(key+GUID))",
            "got %r want %r" % (h.get("sec-websocket-accept"), want))
    st, h, line = raw_request(port, tls, base + "Sec-WebSocket-Key: %s\r\n"
                              "Sec-WebSocket-Version: 8\r\n\r\n" % key)
    T.check(st == 426 and h.get("sec-websocket-version") == "13",
            tag + " W8 version 8 -> 426 with Sec-WebSocket-Version: 13", "%s %r" % (line, h))
    st, h, line = raw_request(port, tls, base + "Sec-WebSocket-Version: 13\r\n\r\n")
    T.check(st == 400, tag + " W8 no Sec-WebSocket-Key -> 400", line)
    st, h, line = raw_request(port, tls, base.replace("/echo", "/nope") +
                              "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % key)
    T.check(st == 404, tag + " /nope over HTTP/1.1 -> 404", line)
    st, h, line = raw_request(port, tls, "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    T.check(st == 200 and "html" in h.get("content-type", ""),
            tag + " GET / over HTTP/1.1 -> 200 text/html", "%s %r" % (line, h))


def alpn_cases(port, tag):
    """ALPN on the shared port; each probe closes right after the TLS
    handshake, which the server must shrug off (no SIGPIPE, no crash)."""
    for offer, want in ((("h2", "http/1.1"), "h2"), (("http/1.1",), "http/1.1"),
                        (("h2",), "h2"), (("http/1.1", "h2"), "h2")):
        s = client_ctx(offer).wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=5),
                                          server_hostname="127.0.0.1")
        got = s.selected_alpn_protocol()
        s.close()
        T.check(got == want, "%s ALPN offer %s selects %s" % (tag, ",".join(offer), want), repr(got))
    for _ in range(10):  # hang-ups right after the handshake, a few times
        try:
            s = client_ctx(("h2",)).wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=5),
                                                server_hostname="127.0.0.1")
            s.close()
        except OSError:
            break
        time.sleep(0.05)
    time.sleep(0.3)
    try:
        st, _h, line = raw_request(port, True, "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    except OSError as e:
        st, line = None, repr(e)
    T.check(st == 200, tag + " server survives clients that hang up right after the TLS handshake",
            line or "no answer (server gone?)")


def run(tls, extra=(), only_deflate=False):
    tag = "[h1 %s%s]" % ("tls" if tls else "cleartext", " " + " ".join(extra) if extra else "")
    try:
        p, r, port = iu.start_h2ws_serve(BIN, cleartext=not tls, extra=extra)
    except Exception as e:  # noqa: BLE001
        T.check(False, tag + " server starts", str(e))
        return
    try:
        url = "%s://127.0.0.1:%d/echo" % ("wss" if tls else "ws", port)
        ctx = client_ctx() if tls else None
        if not only_deflate:
            T.run(tag + " echo", asyncio.run, echo_cases(url, ctx, tag))
            T.run(tag + " handshake", handshake_cases, port, tls, tag)
        T.run(tag + " deflate", asyncio.run, deflate_cases(url, ctx, tag, "--no-compress" not in extra))
        if tls and not only_deflate:
            T.run(tag + " alpn", alpn_cases, port, tag)
        T.check(p.poll() is None, tag + " server still running", r.text()[-2000:])
    finally:
        rc = iu.stop(p)
        T.check(rc == 0, tag + " SIGTERM exits 0", "exit=%r" % rc)


def shutdown_case(tls):
    """H12 on HTTP/1.1: SIGTERM closes an open WebSocket with 1001 and the
    server exits 0."""
    tag = "[h1 %s shutdown]" % ("tls" if tls else "cleartext")
    p, r, port = iu.start_h2ws_serve(BIN, cleartext=not tls)
    try:
        url = "%s://127.0.0.1:%d/echo" % ("wss" if tls else "ws", port)

        async def go():
            async with websockets.connect(url, ssl=client_ctx() if tls else None, close_timeout=3) as ws:
                await ws.send("before")
                T.check(await asyncio.wait_for(ws.recv(), 5) == "before", tag + " echo before SIGTERM")
                os.killpg(p.pid, iu.signal.SIGTERM)
                try:
                    await asyncio.wait_for(ws.recv(), 10)
                except websockets.ConnectionClosed:
                    pass
                return ws.close_code

        code = asyncio.run(go())
        T.check(code == 1001, tag + " H12 SIGTERM sends close 1001 over HTTP/1.1", "close_code=%r" % code)
        try:
            rc = p.wait(timeout=10)
        except Exception:  # noqa: BLE001
            rc = "still running"
        T.check(rc == 0, tag + " exits 0 after the drain", "exit=%r" % (rc,))
    finally:
        iu.stop(p)


if __name__ == "__main__":
    BIN = iu.h2ws_bin()
    T.run("[h1 tls]", run, True)
    T.run("[h1 cleartext]", run, False)
    T.run("[h1 tls --no-compress]", run, True, ["--no-compress"], True)
    T.run("[h1 tls shutdown]", shutdown_case, True)
    T.run("[h1 cleartext shutdown]", shutdown_case, False)
    T.finish()
