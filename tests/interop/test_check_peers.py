#!/usr/bin/python3
# Interop: `h2ws check` against third-party RFC 8441 servers (Debian
# packages), each verdict pinned per case so that a change in the checker
# or in a peer fails here and is looked at (docs/check.md has the table):
# nghttpx in front of python3-websockets, HAProxy 2.6 (h2 frontend, h1
# backend), Apache 2.4 mod_http2 with H2WebSockets on (+ mod_proxy_wstunnel),
# Hypercorn, Node.js http2 with enableConnectProtocol (its WebSocket side
# is the small echo in peers/node_ws_h2.js), libwebsockets' test server.
# Every peer listens on 127.0.0.1 on a port picked here and is stopped here.
# Label check-peers: the ASan pass skips it (the binary under test is the
# checker; test_check_h2ws runs in both).  --timeout 1s keeps the
# misbehaving peers' silent cases short.
#
# Usage: /usr/bin/python3 test_check_peers.py /abs/path/to/h2ws
import os
import shutil
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import interop_util as iu  # noqa: E402
import check_util as cu  # noqa: E402

T = iu.Tally(limit=290)
ARGS = ["-k", "--timeout", "1s"]

PINNED = {
    'nghttpx': {
        'settings.no-route': 'SKIP',
        'request.content-length': 'WARN',
        'request.scheme-ws': 'WARN',
        'request.key-ignored': 'WARN',
        'handshake.version-8': 'FAIL',
        'handshake.version-garbage': 'WARN',
        'routing.unknown-path': 'SKIP',
        'data.length-msb': 'WARN',
        'close.end-stream-only': 'FAIL',
        'trailers.end-stream': 'FAIL',
        'streams.limit': 'FAIL',
    },
    'haproxy': {
        'settings.client-value-2': 'FAIL',
        'settings.no-route': 'SKIP',
        'request.protocol-on-get': 'WARN',
        'request.content-length': 'WARN',
        'request.scheme-ws': 'WARN',
        'request.key-ignored': 'WARN',
        'handshake.version-8': 'FAIL',
        'handshake.version-garbage': 'WARN',
        'routing.unknown-path': 'SKIP',
        'response.no-accept': 'WARN',
        'data.padded': 'FAIL',
        'data.length-msb': 'WARN',
        'trailers.no-end-stream': 'FAIL',
    },
    'apache': {
        'settings.no-route': 'SKIP',
        'handshake.version-8': 'FAIL',
        'handshake.version-garbage': 'WARN',
        'data.length-msb': 'WARN',
        'close.normal': 'WARN',
        'close.code-echoed': 'WARN',
        'trailers.no-end-stream': 'WARN',
        'flow.window-zero': 'FAIL',
        # racy in Apache itself: with an initial window of 0 its mod_http2
        # usually never sends the 200 HEADERS (which are not flow-controlled,
        # RFC 9113 §6.9), so the case FAILs; about one run in eight it does
        # answer and then honours the 16-byte grants (PASS)
        'flow.small-grants': ('FAIL', 'PASS'),
        'streams.many': 'FAIL',
        'streams.limit': 'FAIL',
    },
    'hypercorn': {
        'settings.no-route': 'SKIP',
        'request.protocol-on-get': 'WARN',
        'request.no-scheme': 'WARN',
        'request.no-path': 'WARN',
        'request.no-authority': 'WARN',
        'request.connection-header': 'WARN',
        'request.upgrade-header': 'WARN',
        'request.te-header': 'WARN',
        'request.uppercase-name': 'WARN',
        'request.pseudo-order': 'WARN',
        'request.duplicate-path': 'WARN',
        'request.empty-path': 'WARN',
        'request.content-length': 'WARN',
        'request.scheme-ws': 'WARN',
        'request.key-ignored': 'WARN',
        'handshake.version-8': 'FAIL',
        'handshake.version-garbage': 'WARN',
        'routing.unknown-protocol': 'FAIL',
        'routing.unknown-path': 'SKIP',
        'data.unmasked': 'FAIL',
        'data.rsv1': 'FAIL',
        'data.rsv3': 'FAIL',
        'data.opcode-3': 'FAIL',
        'data.opcode-b': 'FAIL',
        'data.control-126': 'FAIL',
        'data.control-fragmented': 'FAIL',
        'data.continuation-first': 'FAIL',
        'data.new-message-in-fragmented': 'FAIL',
        'data.length-msb': 'FAIL',
        'data.invalid-utf8': 'FAIL',
        'data.invalid-utf8-fail-fast': 'FAIL',
        'data.close-code-1005': 'FAIL',
        'data.close-length-1': 'FAIL',
        'data.close-bad-reason': 'FAIL',
        'close.normal': 'FAIL',
        'close.with-end-stream': 'FAIL',
        'close.code-echoed': 'FAIL',
        'close.end-stream-only': 'FAIL',
        'trailers.end-stream': 'FAIL',
        'trailers.no-end-stream': 'WARN',
        'streams.limit': 'FAIL',
        'goaway.client': 'FAIL',
        'pmd.rsv1-on-control': 'FAIL',
        'pmd.rsv1-on-continuation': 'FAIL',
    },
    'node': {
        'settings.client-value-2': 'WARN',
        'settings.no-route': 'SKIP',
        'request.content-length': 'WARN',
        'request.scheme-ws': 'WARN',
        'handshake.version-missing': 'FAIL',
        'handshake.version-8': 'FAIL',
        'handshake.version-garbage': 'FAIL',
        'routing.unknown-path': 'SKIP',
        'data.unmasked': 'FAIL',
        'data.rsv1': 'FAIL',
        'data.rsv3': 'FAIL',
        'data.opcode-3': 'FAIL',
        'data.opcode-b': 'FAIL',
        'data.control-126': 'FAIL',
        'data.control-fragmented': 'FAIL',
        'data.continuation-first': 'FAIL',
        'data.new-message-in-fragmented': 'FAIL',
        'data.length-msb': 'FAIL',
        'data.invalid-utf8': 'FAIL',
        'data.invalid-utf8-fail-fast': 'FAIL',
        'data.close-code-1005': 'WARN',
        'data.close-length-1': 'WARN',
        'data.close-bad-reason': 'WARN',
        'close.end-stream-only': 'FAIL',
        'trailers.end-stream': 'FAIL',
        'streams.limit': 'SKIP',
        'pmd.echo': 'SKIP',
        'pmd.rsv1-on-control': 'SKIP',
        'pmd.rsv1-on-continuation': 'SKIP',
    },
    'libwebsockets': {
        'settings.client-value-2': 'FAIL',
        'settings.no-route': 'SKIP',
        'request.protocol-on-get': 'FAIL',
        'request.no-scheme': 'WARN',
        'request.no-path': 'WARN',
        'request.no-authority': 'FAIL',
        'request.connection-header': 'WARN',
    },
}


def start_line_peer(argv, name):
    p = iu.spawn(argv)
    r = iu.LineReader(p)
    m = r.wait_for(r"PORT (\d+)", timeout=15)
    if not m:
        iu.stop(p)
        raise RuntimeError("%s did not start:\n%s" % (name, r.text()))
    return p, int(m.group(1))


def check_peer(name, url, extra=()):
    t0 = time.monotonic()
    rc, doc, out, err = cu.run_check(BIN, url, ARGS + list(extra))
    T.check(rc in (0, 1), "%s: h2ws check ran (exit %r)" % (name, rc), err[-300:])
    cu.compare(T, name, doc, PINNED[name])
    print("     %s: %.1f s" % (name, time.monotonic() - t0))


def wait_tcp(port):
    if not iu.wait_port(port, 10):
        raise RuntimeError("port %d never opened" % port)


def test_all(cert, key):
    d = iu.tmpdir()
    backend, bport = start_line_peer([iu.PY, os.path.join(iu.PEERS, "ws_echo_backend.py")], "websockets")
    try:
        # nghttpx
        port = iu.free_port()
        n = iu.spawn(["nghttpx", "--conf=" + os.path.join(iu.PEERS, "nghttpx.conf"),
                      "-f", "127.0.0.1,%d" % port, "-b", "127.0.0.1,%d" % bport, key, cert], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_tcp(port)
            check_peer("nghttpx", "https://127.0.0.1:%d/echo" % port)
        finally:
            iu.stop(n)
        # HAProxy: h2 frontend, HTTP/1.1 backend
        if shutil.which("haproxy"):
            pem = os.path.join(d, "combined.pem")
            with open(pem, "w") as f:
                f.write(open(cert).read() + open(key).read())
            port = iu.free_port()
            cfg = os.path.join(d, "haproxy.cfg")
            with open(cfg, "w") as f:
                f.write("global\n  maxconn 200\ndefaults\n  mode http\n  timeout connect 5s\n"
                        "  timeout client 30s\n  timeout server 30s\n  timeout tunnel 30s\n"
                        "frontend fe\n  bind 127.0.0.1:%d ssl crt %s alpn h2,http/1.1\n"
                        "  default_backend be\nbackend be\n  server s1 127.0.0.1:%d\n" % (port, pem, bport))
            h = iu.spawn(["haproxy", "-f", cfg, "-db"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                wait_tcp(port)
                check_peer("haproxy", "https://127.0.0.1:%d/echo" % port)
            finally:
                iu.stop(h)
        else:
            T.check(False, "haproxy installed (scripts/deps.sh test)", "")
        # Apache mod_http2, H2WebSockets on, a foreground process on its own config
        if shutil.which("apache2"):
            port = iu.free_port()
            os.chmod(d, 0o755)
            m = "/usr/lib/apache2/modules"
            conf = os.path.join(d, "httpd.conf")
            mods = ["mpm_event", "authz_core", "ssl", "http2", "proxy", "proxy_http", "proxy_wstunnel"]
            with open(conf, "w") as f:
                f.write("ServerRoot %s\nServerName localhost\nListen 127.0.0.1:%d\nPidFile %s/httpd.pid\n"
                        "DefaultRuntimeDir %s\nMutex file:%s default\nErrorLog %s/error.log\n"
                        "LogLevel warn\nUser nobody\nGroup nogroup\n" % (d, port, d, d, d, d))
                for mod in mods:
                    f.write("LoadModule %s_module %s/mod_%s.so\n" % (mod, m, mod))
                f.write("Protocols h2 http/1.1\nH2WebSockets on\nSSLEngine on\n"
                        "SSLCertificateFile %s\nSSLCertificateKeyFile %s\n"
                        "ProxyPass /echo ws://127.0.0.1:%d/echo upgrade=websocket\n" % (cert, key, bport))
            a = iu.spawn(["apache2", "-f", conf, "-DFOREGROUND"], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
            try:
                wait_tcp(port)
                check_peer("apache", "https://127.0.0.1:%d/echo" % port)
            finally:
                iu.stop(a)
        else:
            T.check(False, "apache2 installed (scripts/deps.sh test)", "")
    finally:
        iu.stop(backend)
    # Hypercorn (its own ASGI echo app)
    p, port = start_line_peer([iu.PY, os.path.join(iu.PEERS, "asgi_echo.py"), "--cert", cert, "--key", key],
                              "hypercorn")
    try:
        check_peer("hypercorn", "https://127.0.0.1:%d/echo" % port)
    finally:
        iu.stop(p)
    # Node.js http2
    p, port = start_line_peer(["node", os.path.join(iu.PEERS, "node_ws_h2.js"), cert, key], "node")
    try:
        check_peer("node", "https://127.0.0.1:%d/echo" % port)
    finally:
        iu.stop(p)
    # libwebsockets' test server: its packaged certificate has a key that
    # OpenSSL 3's default security level refuses, so it runs with an
    # OpenSSL config at SECLEVEL=0 (its own choice of certificate, not
    # ours); it has no echo protocol, and it aborts (an assertion in
    # lws_header_table_attach, "bad role ws") on some cases, so only the
    # cases before that are run and pinned.
    if shutil.which("libwebsockets-test-server"):
        cnf = os.path.join(d, "openssl-seclevel0.cnf")
        with open(cnf, "w") as f:
            f.write("openssl_conf = c\n[c]\nssl_conf = s\n[s]\nsystem_default = d\n[d]\n"
                    "CipherString = DEFAULT@SECLEVEL=0\n")
        port = iu.free_port()
        lws = iu.spawn(["libwebsockets-test-server", "--port=%d" % port, "--ssl"],
                       env=dict(os.environ, OPENSSL_CONF=cnf), stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        try:
            wait_tcp(port)
            check_peer("libwebsockets", "https://127.0.0.1:%d/" % port,
                       ["-s", "settings.*", "-s", "response.*", "-s", "request.no-*",
                        "-s", "request.connection-header", "-s", "request.protocol-on-get"])
        finally:
            iu.stop(lws)
    else:
        T.check(False, "libwebsockets-test-server installed (scripts/deps.sh test)", "")


if __name__ == "__main__":
    BIN = iu.h2ws_bin()
    cert, key = iu.make_cert()
    T.main(test_all, cert, key)
