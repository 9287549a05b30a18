// Interop peer: Node.js's http2 client as an RFC 8441 WebSocket client,
// run against `h2ws check --serve` (tests/interop/test_check_clients.py).
// Node has no WebSocket client over HTTP/2 of its own, so the WebSocket
// framing is the small codec below; the HTTP/2 side (preface, SETTINGS,
// HPACK, flow control, the window of 0 the server gives, GOAWAY) is Node's.
//
// Two clients, each with its own user-agent so the server reports on them
// apart:
//
//   careful  what a careful application does with Node's http2: it waits
//            for the server's SETTINGS (the 'remoteSettings' event with
//            enableConnectProtocol) before its first extended CONNECT,
//            masks every frame with a fresh key, closes with Close then
//            END_STREAM, answers the server's Close, takes a 403 as the end
//            (RST_STREAM CANCEL, nothing sent), goes on after GOAWAY and
//            opens nothing more on that session.  Cases /ws/echo,
//            /ws/close, /ws/refuse on one session, /ws/goaway on a second.
//   eager    what Node's http2 module does on its own: an extended CONNECT
//            asked for at once, before the server's SETTINGS can have
//            arrived (does Node hold it back?), and after the server's
//            GOAWAY a new request on the same session (does Node refuse
//            it?).  Case /ws/goaway.
//
// Prints one JSON line with what each step saw, then exits 0 (1 when a
// step could not be run at all).
// Usage: node node_ws_client_h2.js https://127.0.0.1:PORT
'use strict';
const crypto = require('crypto');
const http2 = require('http2');

const base = process.argv[2];
const TIMEOUT = 5000;
const UA_CAREFUL = 'node-http2-careful/' + process.version + ' (h2ws test client)';
const UA_EAGER = 'node-http2-eager/' + process.version + ' (h2ws test client)';

// ---- WebSocket frames (RFC 6455 §5.2): masked out, unmasked in ----------
function encode(op, payload) {
  const n = payload.length;
  const key = crypto.randomBytes(4);
  let h;
  if (n < 126) h = Buffer.from([0x80 | op, 0x80 | n]);
  else if (n < 65536) h = Buffer.from([0x80 | op, 0x80 | 126, n >> 8, n & 255]);
  else {
    h = Buffer.alloc(10);
    h[0] = 0x80 | op;
    h[1] = 0x80 | 127;
    h.writeBigUInt64BE(BigInt(n), 2);
  }
  const p = Buffer.from(payload);
  for (let i = 0; i < p.length; i++) p[i] ^= key[i & 3];
  return Buffer.concat([h, key, p]);
}

// A WebSocket over one HTTP/2 stream: next() gives the next message or
// Close as {op, data}; pings are answered.
function wrap(stream) {
  let buf = Buffer.alloc(0);
  const inbox = [];
  let waiter = null;
  let frag = null;
  let ended = false;
  const push = (m) => {
    inbox.push(m);
    if (waiter) { const w = waiter; waiter = null; w(); }
  };
  stream.on('data', (d) => {
    buf = Buffer.concat([buf, d]);
    for (;;) {
      if (buf.length < 2) return;
      let len = buf[1] & 127;
      let off = 2;
      if (len === 126) { if (buf.length < 4) return; len = buf.readUInt16BE(2); off = 4; }
      else if (len === 127) { if (buf.length < 10) return; len = Number(buf.readBigUInt64BE(2)); off = 10; }
      if (buf[1] & 128) off += 4; // a server must not mask; not ours to judge here
      if (buf.length < off + len) return;
      const fin = (buf[0] & 128) !== 0;
      const op = buf[0] & 15;
      const data = Buffer.from(buf.subarray(off, off + len));
      buf = buf.subarray(off + len);
      if (op === 9) { if (!stream.writableEnded) stream.write(encode(10, data)); continue; }
      if (op === 10) continue;
      if (op === 8) { push({ op, data }); continue; }
      if (op !== 0) frag = { op, parts: [] };
      if (!frag) continue;
      frag.parts.push(data);
      if (fin) { push({ op: frag.op, data: Buffer.concat(frag.parts) }); frag = null; }
    }
  });
  stream.on('end', () => { ended = true; push({ op: -1, data: Buffer.alloc(0) }); });
  stream.on('error', () => { ended = true; push({ op: -2, data: Buffer.alloc(0) }); });
  const next = (what) => new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(what + ': nothing within ' + TIMEOUT + ' ms')), TIMEOUT);
    const take = () => { clearTimeout(t); resolve(inbox.shift()); };
    if (inbox.length) take(); else waiter = take;
  });
  return {
    stream, next,
    send: (op, data) => stream.write(encode(op, Buffer.from(data))),
    ended: () => ended,
  };
}

function closePayload(code) {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(code);
  return b;
}

const within = (p, what) => Promise.race([p, new Promise((_, no) =>
  setTimeout(() => no(new Error(what + ': nothing within ' + TIMEOUT + ' ms')), TIMEOUT))]);

function connect(ua) {
  const s = http2.connect(base, { rejectUnauthorized: false, settings: { enablePush: false } });
  s.on('error', () => {});
  s.ua = ua;
  s.settingsSeen = false;
  s.on('remoteSettings', () => { s.settingsSeen = true; });
  s.goawaySeen = new Promise((r) => s.on('goaway', (code, last) => r({ code, last })));
  return s;
}

// The careful client's own gate: no extended CONNECT before the server
// said it may (RFC 8441 §3).
function settingsAllowConnect(s) {
  return within(new Promise((resolve, reject) => {
    const check = () => {
      if (s.remoteSettings && s.remoteSettings.enableConnectProtocol) resolve(true);
      else reject(new Error('the server does not advertise ENABLE_CONNECT_PROTOCOL'));
    };
    if (s.settingsSeen) check(); else s.once('remoteSettings', check);
  }), 'server SETTINGS');
}

function request(s, path) {
  const req = s.request({
    ':method': 'CONNECT', ':protocol': 'websocket', ':path': path,
    'sec-websocket-version': '13', 'user-agent': s.ua,
  }, { endStream: false });
  const response = within(new Promise((resolve, reject) => {
    req.on('response', (h) => resolve(h));
    req.on('error', (e) => reject(e));
    req.on('close', () => reject(new Error('stream closed before a response (rst code ' + req.rstCode + ')')));
  }), path + ' response');
  return { req, response };
}

// Close (1000), the server's Close, then END_STREAM: RFC 6455 §7.1.2 and
// RFC 8441 §5.
async function closeWs(ws) {
  ws.send(8, closePayload(1000));
  let m;
  do m = await ws.next('server Close'); while (m.op === 1 || m.op === 2);
  ws.stream.end();
  return m.op === 8 ? m.data.length >= 2 ? m.data.readUInt16BE(0) : 1005 : 'no Close (' + m.op + ')';
}

async function open(s, path) {
  const { req, response } = request(s, path);
  const h = await response;
  if (h[':status'] !== 200) throw new Error(path + ': status ' + h[':status']);
  return wrap(req);
}

async function careful() {
  const out = {};
  const s = connect(UA_CAREFUL);
  await settingsAllowConnect(s);
  out.waited_for_settings = true;
  // /ws/echo: text and 70000 bytes of binary, then the client closes
  let ws = await open(s, '/ws/echo');
  ws.send(1, 'hello from node');
  let m = await ws.next('echo');
  const big = Buffer.alloc(70000);
  for (let i = 0; i < big.length; i++) big[i] = i & 255;
  ws.send(2, big);
  const m2 = await ws.next('binary echo');
  out.echo = m.data.toString() === 'hello from node' && m2.op === 2 && m2.data.equals(big);
  out.echo_close = await closeWs(ws);
  // /ws/close: the server closes after the first echo; answer, then END_STREAM
  ws = await open(s, '/ws/close');
  ws.send(1, 'close me');
  m = await ws.next('echo');
  m = await ws.next('server Close');
  out.server_close = m.op === 8 ? m.data.readUInt16BE(0) : 'no Close (' + m.op + ')';
  ws.send(8, closePayload(1000));
  ws.stream.end();
  // /ws/refuse: a 403 is the end; nothing sent, the stream cancelled
  const { req, response } = request(s, '/ws/refuse');
  const h = await response;
  out.refused = h[':status'];
  req.close(http2.constants.NGHTTP2_CANCEL);
  await new Promise((r) => setTimeout(r, 300));
  s.close();
  // /ws/goaway on a fresh session: after GOAWAY the WebSocket goes on
  const g = connect(UA_CAREFUL);
  await settingsAllowConnect(g);
  ws = await open(g, '/ws/goaway');
  ws.send(1, 'one');
  await ws.next('echo 1');
  const ga = await within(g.goawaySeen, 'GOAWAY');
  out.goaway = { code: ga.code, last: ga.last };
  ws.send(1, 'two');
  m = await ws.next('echo 2 (after GOAWAY)');
  out.after_goaway = m.data.toString();
  out.goaway_close = await closeWs(ws);
  await new Promise((r) => setTimeout(r, 200));
  g.close();
  return out;
}

async function eager() {
  const out = {};
  const s = connect(UA_EAGER);
  // asked at once: Node sends it as soon as the connection is up, or holds
  // it until the server's SETTINGS?
  const { req, response } = request(s, '/ws/goaway');
  const h = await response;
  out.settings_seen_before_response = s.settingsSeen;
  out.status = h[':status'];
  const ws = wrap(req);
  ws.send(1, 'one');
  await ws.next('echo 1');
  await within(s.goawaySeen, 'GOAWAY');
  // a new request after GOAWAY: does Node refuse it?
  try {
    const x = s.request({ ':method': 'CONNECT', ':protocol': 'websocket', ':path': '/ws/echo',
                          'sec-websocket-version': '13', 'user-agent': s.ua });
    x.on('error', (e) => { out.request_after_goaway_error = e.code; });
    out.request_after_goaway = 'sent';
  } catch (e) {
    out.request_after_goaway = 'refused by Node: ' + e.code;
  }
  ws.send(1, 'two');
  const m = await ws.next('echo 2 (after GOAWAY)');
  out.after_goaway = m.data.toString();
  out.close = await closeWs(ws);
  await new Promise((r) => setTimeout(r, 200));
  s.close();
  return out;
}

(async () => {
  const result = { node: process.version };
  let rc = 0;
  for (const [name, fn] of [['careful', careful], ['eager', eager]]) {
    try {
      result[name] = await fn();
    } catch (e) {
      result[name] = { error: e.message };
      rc = 1;
    }
  }
  console.log(JSON.stringify(result));
  process.exit(rc);
})();
