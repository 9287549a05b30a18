#!/usr/bin/python3
# Interop peer: an ASGI WebSocket echo app served by Hypercorn (third-party
# RFC 8441 server) on 127.0.0.1, TLS with ALPN h2 + http/1.1 (cleartext
# without --cert). Prints
# "PORT <n>" once listening and "WEBSOCKET http/<version> <path>" per
# WebSocket. --no-connect-protocol makes Hypercorn's HTTP/2
# side omit SETTINGS_ENABLE_CONNECT_PROTOCOL (a real h2 server with
# WebSockets over HTTP/1.1 only), for the client fallback test.
import argparse
import asyncio
import signal
import socket
import sys

import h2.settings
from hypercorn.asyncio import serve
from hypercorn.config import Config
import hypercorn.protocol.h2 as hyper_h2

PAGE = b"<!doctype html><title>asgi echo</title><p>hypercorn echo peer</p>\n"


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    elif scope["type"] == "websocket":
        msg = await receive()
        if msg["type"] != "websocket.connect":
            return
        # tells the tests which transport really carried the WebSocket
        print("WEBSOCKET http/%s %s" % (scope.get("http_version"), scope["path"]), flush=True)
        if scope["path"] == "/nope":
            await send({"type": "websocket.close", "code": 1008})
            return
        await send({"type": "websocket.accept"})
        while True:
            msg = await receive()
            if msg["type"] == "websocket.receive":
                if msg.get("bytes") is not None:
                    await send({"type": "websocket.send", "bytes": msg["bytes"]})
                else:
                    await send({"type": "websocket.send", "text": msg.get("text") or ""})
            elif msg["type"] == "websocket.disconnect":
                return
    elif scope["type"] == "http":
        while True:
            msg = await receive()
            if msg["type"] != "http.request" or not msg.get("more_body"):
                break
        ok = scope["path"] == "/"
        body = PAGE if ok else b"not found\n"
        await send({"type": "http.response.start", "status": 200 if ok else 404,
                    "headers": [(b"content-type", b"text/html" if ok else b"text/plain"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def drop_connect_protocol():
    orig = hyper_h2.H2Protocol.__init__

    def init(self, *a, **kw):
        orig(self, *a, **kw)
        cur = self.connection.local_settings
        self.connection.local_settings = h2.settings.Settings(
            client=False,
            initial_values={
                h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: cur.max_concurrent_streams,
                h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: cur.max_header_list_size,
            })

    hyper_h2.H2Protocol.__init__ = init


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--no-connect-protocol", action="store_true")
    a = ap.parse_args()
    if a.no_connect_protocol:
        drop_connect_protocol()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    cfg = Config()
    cfg.bind = ["fd://%d" % sock.fileno()]
    if a.cert:  # else cleartext: HTTP/1.1 and h2c prior knowledge
        cfg.certfile = a.cert
        cfg.keyfile = a.key
    cfg.alpn_protocols = ["h2", "http/1.1"]
    cfg.graceful_timeout = 1
    print("PORT %d" % sock.getsockname()[1], flush=True)
    stop = asyncio.Event()

    async def run():
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        await serve(app, cfg, shutdown_trigger=stop.wait)

    asyncio.run(run())
    sys.exit(0)


if __name__ == "__main__":
    main()
