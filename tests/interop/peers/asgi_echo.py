#!/usr/bin/python3
# Interop peer: an ASGI WebSocket echo app served by Hypercorn (third-party
# RFC 8441 server) on 127.0.0.1, TLS with ALPN h2 + http/1.1 (cleartext
# without --cert). Prints
# "PORT <n>" once listening and "WEBSOCKET http/<version> <path>
# client=<ip>:<port>" per WebSocket (equal client ports: one connection).
# --no-connect-protocol makes Hypercorn's HTTP/2
# side omit SETTINGS_ENABLE_CONNECT_PROTOCOL (a real h2 server with
# WebSockets over HTTP/1.1 only), for the client fallback test.
# --max-streams N sets its SETTINGS_MAX_CONCURRENT_STREAMS.
# Paths: /nope refuses; /slow... accepts after 0.5 s, then echoes;
# /close/<code> closes with <code> after the first
# message; /flood/<name> sends 16 KiB binary messages as fast as the
# stream's flow control lets it, printing "FLOOD <name> <count>" every 8;
# any other path echoes.  Every end prints "DISCONNECT <path> <code>" with
# the close code the peer sent.
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
        client = scope.get("client") or ("?", 0)
        path = scope["path"]
        print("WEBSOCKET http/%s %s client=%s:%s" % (scope.get("http_version"), path,
                                                    client[0], client[1]), flush=True)
        if path == "/nope":
            await send({"type": "websocket.close", "code": 1008})
            return
        if path.startswith("/slow"):
            await asyncio.sleep(0.5)  # the answer (200 / 101) comes late
        await send({"type": "websocket.accept"})
        if path.startswith("/flood/"):
            await flood(path[len("/flood/"):], receive, send)
            return
        while True:
            msg = await receive()
            if msg["type"] == "websocket.receive":
                if path.startswith("/close/"):
                    await send({"type": "websocket.close", "code": int(path[7:])})
                elif msg.get("bytes") is not None:
                    await send({"type": "websocket.send", "bytes": msg["bytes"]})
                else:
                    await send({"type": "websocket.send", "text": msg.get("text") or ""})
            elif msg["type"] == "websocket.disconnect":
                print("DISCONNECT %s %s" % (path, msg.get("code")), flush=True)
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


async def flood(name, receive, send):
    chunk = bytes(16384)
    n = 0
    done = asyncio.Event()

    async def watch():
        while True:
            msg = await receive()
            if msg["type"] == "websocket.disconnect":
                print("DISCONNECT /flood/%s %s" % (name, msg.get("code")), flush=True)
                done.set()
                return

    watcher = asyncio.ensure_future(watch())
    while not done.is_set():
        await send({"type": "websocket.send", "bytes": chunk})
        n += 1
        if n % 8 == 0:
            print("FLOOD %s %d" % (name, n), flush=True)
        await asyncio.sleep(0)
    watcher.cancel()


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
    ap.add_argument("--max-streams", type=int)
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
    if a.max_streams:
        cfg.h2_max_concurrent_streams = a.max_streams
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
