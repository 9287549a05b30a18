// Interop peer: Node.js http2 with enableConnectProtocol (RFC 8441) and a
// minimal WebSocket echo written for the test (Node has no WebSocket
// server of its own): TLS with ALPN h2 on 127.0.0.1, any path. The
// HTTP/2 side (settings, request validation, flow control, streams) is
// Node's; the WebSocket side is this small echo, which checks nothing
// (it echoes each data frame with the same opcode and FIN, answers ping
// and Close, and ends the stream after a Close). Prints "PORT <n>".
// Usage: node node_ws_h2.js CERT KEY
'use strict';
const fs = require('fs');
const http2 = require('http2');

const server = http2.createSecureServer({
  cert: fs.readFileSync(process.argv[2]), key: fs.readFileSync(process.argv[3]),
  settings: { enableConnectProtocol: true }, allowHTTP1: false,
});

function frame(op, fin, payload) {
  const n = payload.length;
  const h = n < 126 ? Buffer.from([(fin ? 0x80 : 0) | op, n])
    : n < 65536 ? Buffer.from([(fin ? 0x80 : 0) | op, 126, n >> 8, n & 255])
      : Buffer.concat([Buffer.from([(fin ? 0x80 : 0) | op, 127, 0, 0, 0, 0]), (() => { const b = Buffer.alloc(4); b.writeUInt32BE(n); return b; })()]);
  return Buffer.concat([h, payload]);
}

server.on('stream', (stream, headers) => {
  if (headers[':method'] !== 'CONNECT' || headers[':protocol'] !== 'websocket') {
    stream.respond({ ':status': headers[':method'] === 'CONNECT' ? 501 : 404 });
    stream.end();
    return;
  }
  stream.respond({ ':status': 200 });
  let buf = Buffer.alloc(0);
  let closed = false;
  stream.on('data', (d) => {
    buf = Buffer.concat([buf, d]);
    for (;;) {
      if (buf.length < 2) return;
      const b0 = buf[0], b1 = buf[1];
      let len = b1 & 127, off = 2;
      if (len === 126) { if (buf.length < 4) return; len = buf.readUInt16BE(2); off = 4; }
      else if (len === 127) { if (buf.length < 10) return; len = Number(buf.readBigUInt64BE(2) & 0xffffffffn); off = 10; }
      const masked = (b1 & 128) !== 0;
      const key = masked ? buf.subarray(off, off + 4) : null;
      if (masked) off += 4;
      if (buf.length < off + len) return;
      const p = Buffer.from(buf.subarray(off, off + len));
      if (masked) for (let i = 0; i < p.length; i++) p[i] ^= key[i & 3];
      buf = buf.subarray(off + len);
      const op = b0 & 15, fin = (b0 & 128) !== 0;
      if (closed) continue;
      if (op === 8) { closed = true; stream.end(frame(8, true, p)); return; }
      if (op === 9) { stream.write(frame(10, true, p)); continue; }
      if (op === 10) continue;
      stream.write(frame(op, fin, p));
    }
  });
  stream.on('error', () => {});
});
server.on('sessionError', () => {});
server.listen(0, '127.0.0.1', () => { console.log('PORT ' + server.address().port); });
process.on('SIGTERM', () => { server.close(); process.exit(0); });
