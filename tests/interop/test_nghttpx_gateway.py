#!/usr/bin/python3
# Interop: nghttpx as an RFC 8441 *client* of `h2ws serve`. python3-websockets
# clients speak HTTP/1.1 Upgrade to an nghttpx frontend whose backend is
# h2ws over HTTP/2 (proto=h2): nghttpx turns each Upgrade into an extended
# CONNECT on one multiplexed backend connection (SPEC H1, H4, H7, H8, H11),
# forwarding permessage-deflate offers (D1-D3, pitfall 20) and refusals (H7).
# Both h2c (prior knowledge) and TLS (ALPN h2) backends are run.
#
# Usage: /usr/bin/python3 test_nghttpx_gateway.py /abs/path/to/h2ws
# H2WS_INTEROP_PEER=hypercorn puts Hypercorn behind nghttpx (validation).
import asyncio
import os
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import interop_util as iu  # noqa: E402
import websockets  # noqa: E402

T = iu.Tally()
PEER = os.environ.get("H2WS_INTEROP_PEER", "h2ws")


def start_backend(tls):
    if PEER == "hypercorn":
        argv = [iu.PY, os.path.join(iu.PEERS, "asgi_echo.py")]
        if tls:
            cert, key = iu.make_cert()
            argv += ["--cert", cert, "--key", key]
        p = iu.spawn(argv)
        r = iu.LineReader(p)
        m = r.wait_for(r"PORT (\d+)")
        if not m:
            raise RuntimeError("hypercorn did not start:\n" + r.text())
        return p, r, int(m.group(1))
    return iu.start_h2ws_serve(BIN, cleartext=not tls)


def start_nghttpx(backend_port, tls):
    last = ""
    for _attempt in range(3):
        port = iu.free_port()
        backend = "127.0.0.1,%d;;proto=h2" % backend_port
        argv = ["nghttpx", "--conf=" + os.path.join(iu.PEERS, "nghttpx.conf"),
                "-f", "127.0.0.1,%d;no-tls" % port, "-b", backend + (";tls" if tls else "")]
        if tls:
            argv.append("--insecure")  # h2ws's certificate is self-signed
        p = iu.spawn(argv)
        r = iu.LineReader(p)
        if iu.wait_port(port, 10) and p.poll() is None:
            return p, r, port
        last = r.text()
        iu.stop(p)
    raise RuntimeError("nghttpx did not start:\n" + last)


async def echo_cases(port, tag):
    url = "ws://127.0.0.1:%d/echo" % port
    async with websockets.connect(url, max_size=None, compression=None, close_timeout=3) as ws:
        for size in (0, 1, 125, 126, 65535, 65536, 1 << 20):
            for text in (True, False):
                data = ("t" * size) if text else bytes(i & 0xFF for i in range(size))
                await ws.send(data)
                got = await asyncio.wait_for(ws.recv(), 20)
                T.check(got == data, "%s H8 %s echo %d B through nghttpx" %
                        (tag, "text" if text else "binary", size),
                        "got %r len %r" % (type(got).__name__, len(got)))
        await ws.close(1000, "bye")
        T.check(ws.close_code == 1000, tag + " W6 close 1000 answered through nghttpx",
                "close_code=%r reason=%r" % (ws.close_code, ws.close_reason))


async def deflate_case(port, tag):
    url = "ws://127.0.0.1:%d/echo" % port
    async with websockets.connect(url, max_size=None, close_timeout=3) as ws:  # offers permessage-deflate
        names = [e.name for e in ws.extensions]
        T.check("permessage-deflate" in names,
                tag + " D1 permessage-deflate negotiated end to end over RFC 8441",
                "extensions=%r response=%r" % (names, ws.response_headers.get("sec-websocket-extensions")))
        for data in ("compressible " * 5000, b"\x00\x01" * 40000, "", "short"):
            await ws.send(data)
            got = await asyncio.wait_for(ws.recv(), 20)
            T.check(got == data, "%s D2 deflated %s echo %d B" %
                    (tag, type(data).__name__, len(data)))
        await ws.close()
        T.check(ws.close_code == 1000, tag + " D2 deflate stream closes 1000", repr(ws.close_code))


async def concurrent_case(port, tag, n=30):
    url = "ws://127.0.0.1:%d/echo" % port

    async def one(i):
        async with websockets.connect(url, compression=None, close_timeout=3) as ws:
            msgs = ["ws %d msg %d" % (i, k) for k in range(5)]
            for m in msgs:
                await ws.send(m)
            got = [await asyncio.wait_for(ws.recv(), 20) for _ in msgs]
            return got == msgs

    res = await asyncio.gather(*(one(i) for i in range(n)), return_exceptions=True)
    good = sum(1 for r in res if r is True)
    T.check(good == n, "%s H11 %d WebSockets multiplexed by nghttpx on its backend connection"
            % (tag, n), "good=%d errors=%r" % (good, [r for r in res if r is not True][:3]))


async def refusal_case(port, tag):
    try:
        async with websockets.connect("ws://127.0.0.1:%d/nope" % port):
            status = 101
    except websockets.InvalidStatusCode as e:
        status = e.status_code
    except Exception as e:  # noqa: BLE001
        status = repr(e)
    T.check(status == 404, tag + " H7 /nope refused with 404, relayed by nghttpx", "status=%r" % status)


def run(tls):
    tag = "[nghttpx -> %s]" % ("h2 tls" if tls else "h2c")
    p, r, bport = start_backend(tls)
    n = None
    try:
        n, nr, port = start_nghttpx(bport, tls)
        T.run(tag + " echo", asyncio.run, echo_cases(port, tag))
        if PEER == "h2ws":
            T.run(tag + " deflate", asyncio.run, deflate_case(port, tag))
            T.run(tag + " refusal", asyncio.run, refusal_case(port, tag))
        T.run(tag + " concurrent", asyncio.run, concurrent_case(port, tag))
        T.check(p.poll() is None, tag + " backend still running",
                "exit=%r\n%s" % (p.poll(), r.text()[-2000:]))
        if T.failed:
            print("nghttpx log:\n" + nr.text()[-2000:])
    except Exception as e:  # noqa: BLE001
        T.check(False, tag + " setup", repr(e))
    finally:
        if n is not None:
            iu.stop(n)
        iu.stop(p)


if __name__ == "__main__":
    BIN = iu.h2ws_bin() if PEER == "h2ws" else None
    T.run("[nghttpx -> h2c]", run, False)
    T.run("[nghttpx -> h2 tls]", run, True)
    T.finish()
