#!/usr/bin/python3
# Interop: the message limit is on the message as the application sees it,
# after inflation (issue 7.1, SPEC W7/D3).  Random (incompressible) binary
# messages of exactly the limit and of limit - 1 echo, with and without
# permessage-deflate (deflate makes them slightly LARGER on the wire), on
# HTTP/1.1 (python3-websockets) and HTTP/2 (python3-h2 + wsproto, h2c),
# through `h2ws serve --max-message L` and through `h2ws proxy` (default
# 1 MiB limit) in front of an h2ws echo backend; limit + 1 gets close 1009.
#
# Usage: /usr/bin/python3 test_message_limit.py /abs/path/to/h2ws
import asyncio
import os
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import interop_util as iu  # noqa: E402
import websockets  # noqa: E402

T = iu.Tally(limit=100)
L = 1 << 20  # the proxy's default --max-message; serve is given the same


def payload(n):
    return os.urandom(n)


async def h1_case(port, deflate, tag):
    url = "ws://127.0.0.1:%d/echo" % port
    comp = "deflate" if deflate else None
    async with websockets.connect(url, max_size=None, compression=comp,
                                  close_timeout=5) as ws:
        names = [e.name for e in ws.extensions]
        T.check(("permessage-deflate" in names) == deflate,
                "%s permessage-deflate %s" % (tag, "agreed" if deflate else "off"),
                repr(names))
        for n in (L - 1, L):
            data = payload(n)
            try:
                await ws.send(data)
                got = await asyncio.wait_for(ws.recv(), 30)
            except websockets.ConnectionClosed as e:
                T.check(False, "%s random %d B echoes" % (tag, n),
                        "closed: %r" % (e.rcvd.code if e.rcvd else None))
                return
            T.check(got == data, "%s random %d B (limit%s) echoes" %
                    (tag, n, "" if n == L else " - 1"), "got %d B" % len(got))
        await ws.send(payload(L + 1))
        code = None
        try:
            await asyncio.wait_for(ws.recv(), 30)
        except websockets.ConnectionClosed as e:
            code = e.rcvd.code if e.rcvd else None
        T.check(code == 1009, "%s limit + 1 gets close 1009" % tag, "close=%r" % code)


def h2_case(port, deflate, tag):
    c = iu.H2WSClient(port, tls=False, timeout=30)
    try:
        c.wait_settings()
        st = c.open_ws("/echo", deflate=deflate)
        c.wait_response(st)
        T.check(st.status == 200, tag + " 200", "status=%r" % st.status)
        agreed = "permessage-deflate" in (st.header("sec-websocket-extensions") or "")
        T.check(agreed == deflate, "%s permessage-deflate %s" %
                (tag, "agreed" if deflate else "off"), repr(st.headers))
        for n in (L - 1, L):
            data = payload(n)
            got = c.echo(st, data, timeout=30)
            T.check(got == ("binary", data), "%s random %d B (limit%s) echoes" %
                    (tag, n, "" if n == L else " - 1"),
                    "got %r close=%r" % (None if got is None else len(got[1]), st.close))
            if got is None:
                return
        c.ws_send(st, payload(L + 1))
        c.pump(lambda: st.close is not None or st.reset is not None or st.ended,
               30, what="close after limit + 1")
        T.check(st.close is not None and st.close[0] == 1009,
                "%s limit + 1 gets close 1009" % tag,
                "close=%r reset=%r" % (st.close, st.reset))
    finally:
        c.close()


def run_target(port, name):
    for deflate in (False, True):
        z = "deflate" if deflate else "no deflate"
        T.run("[%s h1 %s]" % (name, z), asyncio.run,
              h1_case(port, deflate, "[%s h1 %s]" % (name, z)))
        T.run("[%s h2c %s]" % (name, z), h2_case, port, deflate,
              "[%s h2c %s]" % (name, z))


def main():
    binary = iu.h2ws_bin()
    serve, sr, sport = iu.start_h2ws_serve(binary, cleartext=True,
                                           extra=["--max-message", str(L)])
    # the proxy's backend has a larger limit: what is tested is the proxy's
    backend, br, bport = iu.start_h2ws_serve(binary, cleartext=True)
    proxy = iu.spawn([binary, "proxy", "--cleartext", "--listen", "127.0.0.1:0",
                      "--to", "ws://127.0.0.1:%d/echo" % bport])
    pr = iu.LineReader(proxy)
    m = pr.wait_for(r"h2ws: listening on http://127\.0\.0\.1:(\d+)/", timeout=10)
    try:
        run_target(sport, "serve")
        T.check(m is not None, "proxy started", pr.text())
        if m:
            run_target(int(m.group(1)), "proxy")
        for p, r, name in ((serve, sr, "serve"), (backend, br, "backend"),
                           (proxy, pr, "proxy")):
            T.check(p.poll() is None, name + " still running", r.text()[-2000:])
    finally:
        iu.stop(proxy)
        iu.stop(backend)
        iu.stop(serve)
    T.finish()


if __name__ == "__main__":
    main()
