#!/usr/bin/python3
# Interop peer: python3-websockets echo server speaking only HTTP/1.1
# (RFC 6455 Upgrade) on 127.0.0.1; plain TCP (an nghttpx backend) or, with
# --cert/--key, TLS with ALPN http/1.1 only. Prints "PORT <n>" once listening.
# Path /abort echoes one message, then drops the connection without a close.
# Path /flood/<name> sends 16 KiB binary messages as fast as the connection
# takes them (each send waits while the socket's write buffer is full),
# printing "FLOOD <name> <count>" every 8 messages.
import argparse
import asyncio
import signal
import socket
import ssl

import websockets


async def echo(ws, path=None):
    path = path if path is not None else ws.path
    try:
        if path.startswith("/flood/"):
            chunk, n = bytes(16384), 0
            while True:
                await ws.send(chunk)
                n += 1
                if n % 8 == 0:
                    print("FLOOD %s %d" % (path[7:], n), flush=True)
        if path == "/abort":
            # echo one message, then drop the TCP connection (no close frame)
            await ws.send(await ws.recv())
            ws.transport.abort()
            return
        async for msg in ws:
            await ws.send(msg)
    except websockets.ConnectionClosed:
        pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cert")
    ap.add_argument("--key")
    a = ap.parse_args()
    ctx = None
    if a.cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(a.cert, a.key)
        ctx.set_alpn_protocols(["http/1.1"])
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)

    async def run():
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        async with websockets.serve(echo, sock=sock, ssl=ctx, max_size=4 * 1024 * 1024):
            print("PORT %d" % sock.getsockname()[1], flush=True)
            await stop.wait()

    asyncio.run(run())


if __name__ == "__main__":
    main()
