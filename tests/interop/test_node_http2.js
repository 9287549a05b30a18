// Interop: Node.js's built-in http2 client (nghttp2 inside Node, not ours)
// opens RFC 8441 WebSockets on `h2ws serve` over TLS and h2c, with a small
// hand-rolled RFC 6455 frame codec: settings (H1), 200 (H7), echoes (H8),
// ping (W4), streams multiplexed with a GET (H11), close handshake (W6, H9).
//
// Usage: node test_node_http2.js /abs/path/to/h2ws
// H2WS_INTEROP_PEER=hypercorn runs against Hypercorn instead (validation).
'use strict';
const http2 = require('http2');
const fs = require('fs');
const os = require('os');
const path = require('path');
const crypto = require('crypto');
const { spawn, execFileSync } = require('child_process');

const PEER = process.env.H2WS_INTEROP_PEER || 'h2ws';
const BIN = process.argv[2];
let passed = 0;
let failed = 0;
const failures = [];
const children = [];
const tmpdirs = [];

let TAG = '';
let TLS = true;

function check(cond, name, detail) {
  name = TAG + name;
  if (cond) {
    passed++;
    console.log('ok   ' + name);
  } else {
    failed++;
    failures.push(name);
    console.log('FAIL ' + name + (detail !== undefined ? ': ' + detail : ''));
  }
  return !!cond;
}

function cleanup() {
  for (const c of children) {
    if (c.exitCode === null && c.signalCode === null) {
      try { process.kill(-c.pid, 'SIGKILL'); } catch (e) { /* gone */ }
    }
  }
  for (const d of tmpdirs) fs.rmSync(d, { recursive: true, force: true });
}

function finish() {
  if (failures.length) console.log('failed: ' + failures.join(', '));
  console.log(`${passed} passed, ${failed} failed`);
  cleanup();
  process.exit(failed || !passed ? 1 : 0);
}

process.on('exit', cleanup);
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => { cleanup(); process.exit(1); });

// ---- RFC 6455 frames (client side: masked out, unmasked in) ---------------
function encodeFrame(opcode, payload, fin = true) {
  payload = Buffer.from(payload);
  const len = payload.length;
  let head;
  if (len < 126) {
    head = Buffer.alloc(2);
    head[1] = 0x80 | len;
  } else if (len < 65536) {
    head = Buffer.alloc(4);
    head[1] = 0x80 | 126;
    head.writeUInt16BE(len, 2);
  } else {
    head = Buffer.alloc(10);
    head[1] = 0x80 | 127;
    head.writeBigUInt64BE(BigInt(len), 2);
  }
  head[0] = (fin ? 0x80 : 0) | opcode;
  const key = crypto.randomBytes(4);
  const body = Buffer.alloc(len);
  for (let i = 0; i < len; i++) body[i] = payload[i] ^ key[i & 3];
  return Buffer.concat([head, key, body]);
}

class WsReader {
  constructor(stream) {
    this.buf = Buffer.alloc(0);
    this.events = [];
    this.waiters = [];
    this.frag = null;
    this.error = null;
    stream.on('data', (d) => { this.buf = Buffer.concat([this.buf, d]); this.parse(); });
    stream.on('end', () => this.push({ type: 'end' }));
    stream.on('close', () => this.push({ type: 'stream-close', rstCode: stream.rstCode }));
  }

  push(ev) {
    this.events.push(ev);
    const w = this.waiters.splice(0);
    for (const f of w) f();
  }

  parse() {
    for (;;) {
      const b = this.buf;
      if (b.length < 2) return;
      const fin = (b[0] & 0x80) !== 0;
      const rsv = b[0] & 0x70;
      const op = b[0] & 0x0f;
      const masked = (b[1] & 0x80) !== 0;
      let len = b[1] & 0x7f;
      let off = 2;
      if (len === 126) {
        if (b.length < 4) return;
        len = b.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (b.length < 10) return;
        len = Number(b.readBigUInt64BE(2));
        off = 10;
      }
      if (masked) off += 4;
      if (b.length < off + len) return;
      let payload = Buffer.from(b.subarray(off, off + len));
      if (masked) {
        const key = b.subarray(off - 4, off);
        for (let i = 0; i < len; i++) payload[i] ^= key[i & 3];
        this.error = this.error || 'server sent a masked frame';
      }
      if (rsv) this.error = this.error || 'server set RSV bits without an extension';
      this.buf = b.subarray(off + len);
      if (op === 0x8) {
        const code = len >= 2 ? payload.readUInt16BE(0) : 1005;
        this.push({ type: 'close', code, reason: payload.subarray(2).toString() });
      } else if (op === 0x9) {
        this.push({ type: 'ping', data: payload });
      } else if (op === 0xa) {
        this.push({ type: 'pong', data: payload });
      } else if (op === 0x1 || op === 0x2 || op === 0x0) {
        if (op !== 0) this.frag = { op, parts: [] };
        if (!this.frag) { this.error = 'continuation without start'; continue; }
        this.frag.parts.push(payload);
        if (fin) {
          const data = Buffer.concat(this.frag.parts);
          this.push({ type: this.frag.op === 1 ? 'text' : 'binary', data });
          this.frag = null;
        }
      } else {
        this.error = 'unknown opcode ' + op;
      }
    }
  }

  // next event matching pred (default: anything but ping), with a timeout
  next(pred = (e) => e.type !== 'ping', ms = 15000) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('timeout waiting for a WebSocket event')), ms);
      const look = () => {
        const i = this.events.findIndex(pred);
        if (i >= 0) {
          clearTimeout(timer);
          resolve(this.events.splice(i, 1)[0]);
        } else {
          this.waiters.push(look);
        }
      };
      look();
    });
  }
}

// ---- servers ---------------------------------------------------------------
function startServer() {
  return new Promise((resolve, reject) => {
    let argv;
    let rx;
    if (PEER === 'hypercorn' && !TLS) {
      argv = ['/usr/bin/python3', [path.join(__dirname, 'peers', 'asgi_echo.py')]];
      rx = /PORT (\d+)/;
    } else if (PEER === 'hypercorn') {
      const d = fs.mkdtempSync(path.join(os.tmpdir(), 'h2ws-interop-'));
      tmpdirs.push(d);
      const cert = path.join(d, 'cert.pem');
      const key = path.join(d, 'key.pem');
      execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
        '-nodes', '-keyout', key, '-out', cert, '-subj', '/CN=localhost', '-days', '2',
        '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'], { stdio: 'ignore' });
      argv = ['/usr/bin/python3', [path.join(__dirname, 'peers', 'asgi_echo.py'), '--cert', cert, '--key', key]];
      rx = /PORT (\d+)/;
    } else {
      argv = [BIN, ['serve', '--listen', '127.0.0.1:0'].concat(TLS ? [] : ['--cleartext'])];
      rx = TLS ? /h2ws: listening on https:\/\/127\.0\.0\.1:(\d+)\// : /h2ws: listening on http:\/\/127\.0\.0\.1:(\d+)\//;
    }
    const child = spawn(argv[0], argv[1], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let out = '';
    let err = '';
    const timer = setTimeout(() => reject(new Error('server did not print its port: ' + out + err)), 10000);
    child.stdout.on('data', (d) => {
      out += d;
      const m = rx.exec(out);
      if (m) { clearTimeout(timer); resolve({ child, port: Number(m[1]), log: () => out + err }); }
    });
    child.stderr.on('data', (d) => { err += d; });
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error('server exited ' + code + ': ' + out + err)); });
  });
}

function connect(port) {
  return new Promise((resolve, reject) => {
    const s = http2.connect(`${TLS ? 'https' : 'http'}://127.0.0.1:${port}`, { rejectUnauthorized: false });
    const timer = setTimeout(() => reject(new Error('no SETTINGS from server')), 10000);
    s.once('remoteSettings', (st) => { clearTimeout(timer); resolve({ s, settings: st }); });
    s.once('error', (e) => { clearTimeout(timer); reject(e); });
  });
}

function openWs(s, port, extra = {}) {
  return new Promise((resolve, reject) => {
    const req = s.request(Object.assign({
      ':method': 'CONNECT', ':protocol': 'websocket', ':scheme': TLS ? 'https' : 'http',
      ':path': '/echo', ':authority': `127.0.0.1:${port}`, 'sec-websocket-version': '13',
    }, extra), { endStream: false });
    const reader = new WsReader(req);
    const timer = setTimeout(() => reject(new Error('no response to extended CONNECT')), 10000);
    req.once('response', (h, flags) => { clearTimeout(timer); resolve({ req, reader, headers: h, flags }); });
    req.once('error', (e) => { clearTimeout(timer); reject(e); });
  });
}

function get(s, p) {
  return new Promise((resolve, reject) => {
    const req = s.request({ ':method': 'GET', ':path': p });
    let status = null;
    let body = '';
    req.on('response', (h) => { status = h[':status']; });
    req.on('data', (d) => { body += d; });
    req.on('end', () => resolve({ status, body }));
    req.on('error', reject);
  });
}

async function echo(ws, opcode, data) {
  ws.req.write(encodeFrame(opcode, data));
  return ws.reader.next();
}

async function main() {
  if (PEER === 'h2ws' && !(BIN && fs.existsSync(BIN))) {
    check(false, 'h2ws binary not found: ' + BIN);
    finish();
  }
  for (const tls of [true, false]) {
    TLS = tls;
    TAG = tls ? '[tls] ' : '[h2c] ';
    await runOnce();
  }
  TAG = '';
}

async function runOnce() {
  const srv = await startServer();
  const port = srv.port;
  const { s, settings } = await connect(port);
  s.on('error', (e) => check(false, 'session error', String(e)));
  check(s.alpnProtocol === (TLS ? 'h2' : 'h2c'), 'ALPN h2 negotiated (h2c: prior knowledge)', s.alpnProtocol);
  check(settings.enableConnectProtocol === true, 'H1 remoteSettings.enableConnectProtocol === true',
    JSON.stringify(settings));

  const ws = await openWs(s, port);
  check(ws.headers[':status'] === 200, 'H7 extended CONNECT answered 200', ws.headers[':status']);
  check(ws.headers['sec-websocket-accept'] === undefined, 'H6 no sec-websocket-accept in 200');
  check(!(ws.flags & 0x1), 'H7 200 without END_STREAM', ws.flags);

  const cases = [
    [0x1, Buffer.from('hello from node'), 'text'],
    [0x1, Buffer.from(''), 'text'],
    [0x2, Buffer.alloc(0), 'binary'],
    [0x2, Buffer.from([0, 1, 2, 255]), 'binary'],
    [0x2, crypto.randomBytes(125), 'binary'],
    [0x2, crypto.randomBytes(126), 'binary'],
    [0x1, Buffer.from('\u00e9\u4e2d'.repeat(30000)), 'text'],
    [0x2, crypto.randomBytes(65536), 'binary'],
    [0x2, crypto.randomBytes(300000), 'binary'],
  ];
  for (const [op, data, kind] of cases) {
    const ev = await echo(ws, op, data);
    check(ev.type === kind && Buffer.compare(ev.data, data) === 0,
      `H8 ${kind} echo ${data.length} B`, `got ${ev.type} ${ev.data ? ev.data.length : ''}`);
  }

  // a fragmented message with a ping in the middle (W4)
  ws.req.write(Buffer.concat([encodeFrame(0x1, 'frag-', false), encodeFrame(0x9, 'pp'),
    encodeFrame(0x0, 'mented', true)]));
  const pong = await ws.reader.next((e) => e.type === 'pong');
  check(pong.data.toString() === 'pp', 'W4 ping between fragments answered with same payload');
  const frag = await ws.reader.next((e) => e.type === 'text' || e.type === 'close');
  check(frag.type === 'text' && frag.data.toString() === 'frag-mented', 'W4 fragmented message echoed',
    frag.type + ' ' + (frag.data || frag.code));

  // a second WebSocket and a GET multiplexed on the same session (H11)
  const ws2 = await openWs(s, port);
  const [g, e2, e1] = await Promise.all([get(s, '/'), echo(ws2, 0x1, 'two'), echo(ws, 0x1, 'one')]);
  check(g.status === 200 && /</.test(g.body), 'H11 GET / on the same session', g.status);
  check(e1.type === 'text' && e1.data.toString() === 'one' && e2.type === 'text' &&
    e2.data.toString() === 'two', 'H11 two WebSockets on one session keep their own echoes');

  // close handshake: close frames both ways, then END_STREAM both ways
  for (const [w, name] of [[ws, 'first'], [ws2, 'second']]) {
    const body = Buffer.alloc(2);
    body.writeUInt16BE(1000);
    w.req.write(encodeFrame(0x8, Buffer.concat([body, Buffer.from('bye')])));
    const cl = await w.reader.next((e) => e.type === 'close' || e.type === 'stream-close');
    check(cl.type === 'close' && cl.code === 1000, `W6 ${name} WebSocket: server echoes close 1000`,
      cl.type + ' ' + (cl.code || cl.rstCode));
    const end = await w.reader.next((e) => e.type === 'end' || e.type === 'stream-close', 5000)
      .catch((e) => ({ type: String(e) }));
    check(end.type === 'end', `H9 ${name} WebSocket: server sends END_STREAM after its close`, end.type);
    w.req.end();
    const closed = await w.reader.next((e) => e.type === 'stream-close', 5000)
      .catch((e) => ({ rstCode: String(e) }));
    check(closed.rstCode === http2.constants.NGHTTP2_NO_ERROR,
      `H9 ${name} WebSocket: stream closed without RST_STREAM error`, closed.rstCode);
    check(!w.reader.error, `W2 ${name} WebSocket: server frames well-formed (unmasked)`, w.reader.error);
  }

  if (PEER === 'h2ws') {
    const bad = await openWs(s, port, { 'sec-websocket-version': '8' });
    check(bad.headers[':status'] === 426 && bad.headers['sec-websocket-version'] === '13',
      'W8 sec-websocket-version 8 -> 426 with sec-websocket-version: 13', JSON.stringify(bad.headers));
    const nope = await openWs(s, port, { ':path': '/nope' });
    check(nope.headers[':status'] === 404, 'H7 /nope -> 404', nope.headers[':status']);
    bad.req.close();
    nope.req.close();
    const ws3 = await openWs(s, port);
    const e3 = await echo(ws3, 0x1, 'still alive');
    check(e3.type === 'text' && e3.data.toString() === 'still alive', 'session survives refusals');
    ws3.req.close();
  }

  const closedOk = await new Promise((resolve) => {
    const t = setTimeout(() => { s.destroy(); resolve(false); }, 5000);
    s.close(() => { clearTimeout(t); resolve(true); });
  });
  check(closedOk, 'session closes cleanly (all streams done, GOAWAY)');
  if (PEER === 'h2ws') {
    const code = await new Promise((resolve) => {
      const t = setTimeout(() => { try { process.kill(-srv.child.pid, 'SIGKILL'); } catch (e) { /* */ } resolve('timeout'); }, 5000);
      srv.child.removeAllListeners('exit');
      srv.child.on('exit', (c) => { clearTimeout(t); resolve(c); });
      process.kill(-srv.child.pid, 'SIGTERM');
    });
    check(code === 0, 'SIGTERM: graceful shutdown exits 0', code);
  }
}

const watchdog = setTimeout(() => { check(false, 'test finished within 90 s'); finish(); }, 90000);
main().then(() => { clearTimeout(watchdog); finish(); }, (e) => {
  check(false, 'unexpected error', e && e.stack);
  finish();
});
