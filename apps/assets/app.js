// h2ws demo page: a chat room (/chat), an echo console (/echo) and the
// server's live figures about this browser's connections (/stats).  All
// three WebSockets carry ?tab=TOKEN so the server can show them together
// even when each rides its own HTTP/1.1 connection.
'use strict';
(() => {
  const $ = (id) => document.getElementById(id);
  const scheme = location.protocol === 'https:' ? 'wss://' : 'ws://';
  const tab = Math.random().toString(36).slice(2, 10);
  const adjectives = ['swift', 'calm', 'brave', 'bright', 'quiet', 'lucky', 'clever', 'merry'];
  const animals = ['otter', 'falcon', 'panda', 'lynx', 'heron', 'fox', 'koala', 'whale'];
  const pick = (a) => a[Math.floor(Math.random() * a.length)];
  const params = new URLSearchParams(location.search);
  let nick = params.get('nick') || pick(adjectives) + '-' + pick(animals);
  const demo = window.h2wsDemo = { tab, nick, chat: [], echo: [], stats: null, sockets: {} };

  const nav = performance.getEntriesByType && performance.getEntriesByType('navigation')[0];
  const pageProto = (nav && nav.nextHopProtocol) || '';
  demo.pageProtocol = pageProto;
  const badge = $('page-proto');
  badge.textContent = 'page loaded over ' + (pageProto || 'unknown') +
    (location.protocol === 'https:' ? ' + TLS' : '');
  if (pageProto === 'h2') badge.classList.add('h2');

  const fmtBytes = (n) => n < 1024 ? n + ' B' : n < 1048576 ? (n / 1024).toFixed(1) + ' KiB'
    : (n / 1048576).toFixed(1) + ' MiB';
  const setState = (id, s) => { const e = $(id); e.textContent = s; e.className = 'state ' + s; };
  const line = (logId, cls, parts) => {
    const log = $(logId);
    const d = document.createElement('div');
    if (cls) d.className = cls;
    for (const p of parts) {
      if (typeof p === 'string') d.appendChild(document.createTextNode(p));
      else d.appendChild(p);
    }
    log.appendChild(d);
    while (log.childNodes.length > 300) log.removeChild(log.firstChild);
    log.scrollTop = log.scrollHeight;
  };
  const el = (tag, text, cls) => { const e = document.createElement(tag); e.textContent = text; if (cls) e.className = cls; return e; };

  function open(name, path, handlers) {
    const ws = new WebSocket(scheme + location.host + path);
    ws.binaryType = 'arraybuffer';
    demo.sockets[name] = ws;
    ws.addEventListener('open', () => { setState(name + '-state', 'open'); refresh(); if (handlers.open) handlers.open(); });
    ws.addEventListener('message', handlers.message);
    ws.addEventListener('close', (e) => {
      setState(name + '-state', 'closed');
      demo[name + 'Closed'] = e.code;
      if (handlers.close) handlers.close(e);
    });
    return ws;
  }

  // ---- chat
  $('nick').value = nick;
  const chat = open('chat', '/chat?tab=' + tab + '&nick=' + encodeURIComponent(nick), {
    message(e) {
      if (typeof e.data !== 'string') return;
      let m;
      try { m = JSON.parse(e.data); } catch (_) { return; }
      demo.chat.push(m);
      const members = m.members ? ' (' + m.members + ' in the room)' : '';
      if (m.type === 'msg') line('chat-log', m.from === nick ? 'me' : '', [el('b', m.from), ': ' + m.text]);
      else if (m.type === 'join') line('chat-log', 'notice', [m.nick + ' joined' + members]);
      else if (m.type === 'leave') line('chat-log', 'notice', [m.nick + ' left' + members]);
      else if (m.type === 'nick') line('chat-log', 'notice', [m.old + ' is now ' + m.nick]);
      refresh();
    },
    close(e) { line('chat-log', 'notice', ['disconnected (' + e.code + ')']); },
  });
  demo.sendChat = (text) => { if (chat.readyState === 1) chat.send(text); };
  $('chat-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const n = $('nick').value.trim();
    if (n && n !== nick && chat.readyState === 1) { chat.send('/nick ' + n); nick = demo.nick = n; }
    const t = $('chat-input').value;
    if (t) demo.sendChat(t);
    $('chat-input').value = '';
  });

  // ---- echo
  const pending = [];
  const echo = open('echo', '/echo?tab=' + tab, {
    message(e) {
      const sent = pending.shift();
      const rtt = sent ? (performance.now() - sent).toFixed(1) + ' ms' : '';
      const text = typeof e.data === 'string' ? e.data : '[' + fmtBytes(e.data.byteLength) + ' binary]';
      demo.echo.push(typeof e.data === 'string' ? e.data : e.data.byteLength);
      line('echo-log', 'in', ['\u2190 ' + text, el('span', rtt, 'rtt')]);
      refresh();
    },
    close(e) { line('echo-log', 'notice', ['closed (' + e.code + ')']); },
  });
  demo.sendEcho = (data) => {
    if (echo.readyState !== 1) return false;
    pending.push(performance.now());
    echo.send(data);
    line('echo-log', 'out', ['\u2192 ' + (typeof data === 'string' ? data : '[' + fmtBytes(data.byteLength) + ' binary]')]);
    return true;
  };
  $('echo-form').addEventListener('submit', (e) => {
    e.preventDefault();
    demo.sendEcho($('echo-input').value);
    $('echo-input').value = '';
  });
  $('echo-binary').addEventListener('click', () => {
    const b = new Uint8Array(65536);
    for (let i = 0; i < b.length; i++) b[i] = i & 255;
    demo.sendEcho(b.buffer);
  });

  // ---- live figures
  let stats = null;
  function refresh() { if (stats && stats.readyState === 1) stats.send('refresh'); }
  stats = open('stats', '/stats?tab=' + tab, {
    message(e) {
      let m;
      try { m = JSON.parse(e.data); } catch (_) { return; }
      if (m.type !== 'stats') return;
      demo.stats = m;
      render(m);
    },
  });

  function render(m) {
    const conns = m.connections || [];
    const nws = conns.reduce((n, c) => n + c.ws.length, 0);
    const h2 = conns.filter((c) => c.transport !== 'http/1.1');
    let s;
    if (conns.length === 1 && h2.length === 1)
      s = 'This page\u2019s ' + nws + ' WebSockets share ONE ' + conns[0].transport +
        ' connection (#' + conns[0].conn + '), each on its own stream opened by extended CONNECT.';
    else if (conns.length)
      s = 'This page\u2019s ' + nws + ' WebSockets use ' + conns.length + ' connection' +
        (conns.length > 1 ? 's' : '') + (h2.length ? '' : ': HTTP/1.1 Upgrade, one connection per WebSocket') + '.';
    else s = 'No WebSocket yet.';
    $('conn-summary').textContent = s;
    const box = $('conn-table');
    box.textContent = '';
    for (const c of conns) {
      const d = el('div', '', 'conn');
      const h = el('h3', 'connection #' + c.conn);
      h.appendChild(el('span', c.transport + (c.tls ? ', TLS' : ''), 'tag' + (c.transport === 'http/1.1' ? '' : ' h2')));
      h.appendChild(document.createTextNode(' ' + c.ws.map((w) => (w.stream ? 'stream ' + w.stream + ' ' : '') + w.path).join(', ')));
      d.appendChild(h);
      const t = document.createElement('table');
      const head = t.insertRow();
      for (const [txt, cls] of [['stream', ''], ['path', ''], ['deflate', ''], ['msgs in', 'num'], ['msgs out', 'num'],
        ['bytes in', 'num'], ['bytes out', 'num'], ['open for', 'num']]) {
        const th = el('th', txt, cls); head.appendChild(th);
      }
      for (const w of c.ws) {
        const r = t.insertRow();
        if (w.self) r.className = 'self';
        const cells = [w.stream ? String(w.stream) : '\u2013', w.path + (w.subprotocol ? ' (' + w.subprotocol + ')' : ''),
          w.compressed ? 'yes' : 'no', String(w.msgs_in), String(w.msgs_out), fmtBytes(w.bytes_in),
          fmtBytes(w.bytes_out), (w.age_ms / 1000).toFixed(0) + ' s'];
        cells.forEach((v, i) => { const td = r.insertCell(); td.textContent = v; if (i >= 3) td.className = 'num'; });
      }
      d.appendChild(t);
      box.appendChild(d);
    }
    const sv = m.server || {};
    $('server-totals').textContent = 'Server: ' + sv.connections_open + ' connections open, ' +
      sv.websockets_open + ' WebSockets open, ' + sv.websockets_total + ' since start, ' +
      sv.messages_in + ' messages in / ' + sv.messages_out + ' out.';
  }
})();
