#!/usr/bin/python3
# Interop (issue 7.4): nghttpx as a gateway in front of `h2ws serve
# --cleartext` carries all its HTTP/1.1 clients' WebSockets on one backend
# HTTP/2 connection, and never ends a backend stream once its HTTP/1.1
# client has left.  h2ws must advertise exactly what it accepts and give
# back the slots of WebSockets that are over (their streams only wait for
# nghttpx's END_STREAM), or nghttpx's clients lose their WebSockets (h2ws
# used to refuse WebSockets 101-128 while advertising 128, and to hold
# every closed one for 5 s).
#
#   - 1,000 short WebSockets in a row (python3-websockets over nghttpx),
#     every other one failed by the server with close 1007 (invalid
#     UTF-8), the others echoing and closing 1000: all get their handshake
#     (within 2 s each) and the right close code;
#   - bursts of 160 at once, failed or orderly, three times.
#
# Usage: /usr/bin/python3 test_nghttpx_slots.py /abs/path/to/h2ws
import asyncio
import os
import sys
from collections import Counter

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import interop_util as iu  # noqa: E402
import websockets  # noqa: E402

T = iu.Tally(limit=100)


def start_nghttpx(backend_port):
    last = ""
    for _attempt in range(3):
        port = iu.free_port()
        p = iu.spawn(["nghttpx", "--conf=" + os.path.join(iu.PEERS, "nghttpx.conf"),
                      "-f", "127.0.0.1,%d;no-tls" % port,
                      "-b", "127.0.0.1,%d;;proto=h2" % backend_port])
        r = iu.LineReader(p)
        if iu.wait_port(port, 10) and p.poll() is None:
            return p, r, port
        last = r.text()
        iu.stop(p)
    raise RuntimeError("nghttpx did not start:\n" + last)


async def one(port, fail, i):
    """('ok', 1000) for an echo + orderly close, ('closed', 1007) for a
    WebSocket the server failed, ('err', ...) when the handshake failed."""
    url = "ws://127.0.0.1:%d/echo" % port
    try:
        async with websockets.connect(url, compression=None, open_timeout=2,
                                      close_timeout=3) as ws:
            if fail:
                ws.transport.write(iu.raw_frame(1, b"\xff\xfe"))  # bad UTF-8
                try:
                    await asyncio.wait_for(ws.recv(), 5)
                except websockets.ConnectionClosed as e:
                    return ("closed", e.rcvd.code if e.rcvd else None)
                return ("not failed", None)
            msg = "ws %d" % i
            await ws.send(msg)
            got = await asyncio.wait_for(ws.recv(), 5)
            await ws.close()
            return ("ok" if got == msg else "bad echo", ws.close_code)
    except Exception as e:  # noqa: BLE001
        return ("err", type(e).__name__)


async def in_a_row(port, n):
    res = []
    for i in range(n):
        res.append(await one(port, i % 2 == 1, i))
    return Counter(res)


async def burst(port, n, fail):
    return Counter(await asyncio.gather(*(one(port, fail, i) for i in range(n))))


def main():
    binary = iu.h2ws_bin()
    p, r, bport = iu.start_h2ws_serve(binary, cleartext=True)
    n = None
    try:
        n, nr, port = start_nghttpx(bport)
        got = asyncio.run(in_a_row(port, 1000))
        T.check(got == Counter({("ok", 1000): 500, ("closed", 1007): 500}),
                "7.4 1,000 WebSockets in a row through nghttpx, half failed (1007): "
                "all get their handshake and their close code", repr(got))
        for rnd in range(3):
            for fail in (True, False):
                got = asyncio.run(burst(port, 160, fail))
                want = ("closed", 1007) if fail else ("ok", 1000)
                T.check(got == Counter({want: 160}),
                        "7.4 burst %d: 160 WebSockets at once through nghttpx, %s: all open"
                        % (rnd + 1, "failed with 1007" if fail else "orderly close 1000"),
                        repr(got))
        T.check(p.poll() is None, "h2ws still running", r.text()[-2000:])
        if T.failed:
            print("nghttpx log:\n" + nr.text()[-2000:])
    finally:
        if n is not None:
            iu.stop(n)
        iu.stop(p)
    T.finish()


if __name__ == "__main__":
    main()
