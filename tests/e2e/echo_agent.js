// An echo agent for tests/e2e/edge_e2e.sh. It speaks the data plane of PROTOCOL.md §4 as the
// official TypeScript SDK does (Node's own http2 + tls clients), and answers every envelope in a
// way the test can check from the public side.
//
//   node echo_agent.js --port P --ca CA_FILE --tunnel-id ID --secret S [--pool 4]
//                      [--cert CHAIN --key KEY]
//
// It dials https://127.0.0.1:P with ALPN h2 (an IP, so no SNI: the edge hands it to the relay),
// says hello (§4.3), keeps the pool of intakes parked (§4.5) and handles each envelope (§4.6):
//   webhook     /echo...        200 JSON {method, path, headers: [[name, value], ...] (the
//                               inkbox-h-* fields, prefix removed, in order), body_length,
//                               body_sha256, forwarded_for, sni_host, route_kind}
//               /status/NNN     status NNN, body "status NNN from the agent"
//               /cookies        two inkbox-h-set-cookie fields (the TS SDK's shape)
//               /merged-cookies ONE field "a=1; Path=/, b=2; Path=/" (the Python SDK's shape)
//               /bytes/N        N bytes of "0123456789" repeated, streamed in 64000-byte chunks
//                               with backpressure (HTTP/2 flow control paces the agent, so N may be
//                               far larger than what it holds); "post-aborted ID SENT CODE" when
//                               the relay resets the post before the end
//               /not-modified   304, no body
//               /slow/MS        200 "slow" after MS ms
//               /hold           never answered
//               anything else   200 "hello from the agent"
//   ws-upgrade  accepted (§4.8): response post 200 (+ the first offered subprotocol), then the
//               bridge CONNECT; every inner message is echoed; text "close:4001" closes with 4001.
//   tcp-stream  (only with --cert/--key, §4.9) a TLS server (ALPN http/1.1) over the bridge that
//               answers one HTTP/1.1 request with "hello from passthrough".
// One line per event on stdout: "hello 200 {...}", "intake-parked N", "request GET /echo",
// "posted ID STATUS", "ws-open ID", "ws-message text|binary LEN", "ws-close CODE", "tcp-open ID",
// "tcp-tls PROTO", "tcp-request GET /", "tcp-close", "goaway CODE", "closed", "error ...".
// Exits on SIGTERM, on end-of-file on stdin, or when the session ends.
'use strict';

const crypto = require('node:crypto');
const fs = require('node:fs');
const http2 = require('node:http2');
const tls = require('node:tls');
const { Duplex } = require('node:stream');

// ---- arguments ---------------------------------------------------------------------------------
const args = { pool: '4' };
for (let i = 2; i < process.argv.length; i += 2) {
  const key = process.argv[i];
  if (!key.startsWith('--') || i + 1 >= process.argv.length) usage();
  args[key.slice(2)] = process.argv[i + 1];
}
function usage() {
  console.error('usage: node echo_agent.js --port P --ca CA_FILE --tunnel-id ID --secret S [--pool N] [--cert CHAIN --key KEY]');
  process.exit(64);
}
if (!args.port || !args.ca || !args['tunnel-id'] || !args.secret) usage();
const tunnelId = args['tunnel-id'];
const secret = args.secret;
const passthroughContext =
  args.cert && args.key
    ? tls.createSecureContext({ cert: fs.readFileSync(args.cert), key: fs.readFileSync(args.key) })
    : null;

const say = (line) => process.stdout.write(line + '\n');
function quit(code) {
  say('closed');
  process.exit(code);
}

// ---- RFC 6455 frames on the bridges (§4.8.1, §4.9) ---------------------------------------------
const OP_CONT = 0x0, OP_TEXT = 0x1, OP_BINARY = 0x2, OP_CLOSE = 0x8, OP_PING = 0x9, OP_PONG = 0xa;

// A frame from the agent: FIN = 1, always masked with a random key, like a WebSocket client's.
function encodeFrame(opcode, payload) {
  const len = payload.length;
  const head = len < 126 ? 2 : len < 65536 ? 4 : 10;
  const out = Buffer.allocUnsafe(head + 4 + len);
  out[0] = 0x80 | opcode;
  if (len < 126) {
    out[1] = 0x80 | len;
  } else if (len < 65536) {
    out[1] = 0x80 | 126;
    out.writeUInt16BE(len, 2);
  } else {
    out[1] = 0x80 | 127;
    out.writeBigUInt64BE(BigInt(len), 2);
  }
  const mask = crypto.randomBytes(4);
  mask.copy(out, head);
  for (let i = 0; i < len; i++) out[head + 4 + i] = payload[i] ^ mask[i & 3];
  return out;
}

// Incremental reader: push bytes, get complete frames {fin, opcode, payload} (unmasked).
class FrameReader {
  constructor() {
    this.buf = Buffer.alloc(0);
  }
  push(chunk) {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const frames = [];
    for (;;) {
      const b = this.buf;
      if (b.length < 2) break;
      let len = b[1] & 0x7f;
      let off = 2;
      if (len === 126) {
        if (b.length < 4) break;
        len = b.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (b.length < 10) break;
        len = Number(b.readBigUInt64BE(2));
        off = 10;
      }
      const masked = (b[1] & 0x80) !== 0;
      const maskOff = off;
      if (masked) off += 4;
      if (b.length < off + len) break;
      const payload = Buffer.from(b.subarray(off, off + len));
      if (masked) for (let i = 0; i < len; i++) payload[i] ^= b[maskOff + (i & 3)];
      frames.push({ fin: (b[0] & 0x80) !== 0, opcode: b[0] & 0x0f, payload });
      this.buf = b.subarray(off + len);
    }
    return frames;
  }
}

function closePayload(code, reason) {
  const r = Buffer.from(reason || '', 'utf8');
  const p = Buffer.allocUnsafe(2 + r.length);
  p.writeUInt16BE(code, 0);
  r.copy(p, 2);
  return p;
}

// ---- the session -------------------------------------------------------------------------------
const session = http2.connect(`https://127.0.0.1:${args.port}`, {
  ca: fs.readFileSync(args.ca),
  ALPNProtocols: ['h2'],
  minVersion: 'TLSv1.2',
});
session.on('error', (err) => say('error session ' + (err.code || '') + ' ' + err.message));
session.on('goaway', (code) => say('goaway ' + code));
session.on('close', () => quit(0));

process.on('SIGTERM', () => quit(0));
process.stdin.on('data', () => {});
process.stdin.on('end', () => {
  // Like the SDK's aclose(): GOAWAY, graceful close, torn down 250 ms later.
  session.close();
  setTimeout(() => quit(0), 250).unref();
});
process.stdin.resume();

// request(headers, body?): opens a stream; resolves {status, headers, raw, body} at its end.
function exchange(headers, body) {
  return new Promise((resolve, reject) => {
    const stream = session.request(headers, { endStream: body === undefined });
    let status = 0, hdrs = {}, raw = [];
    const chunks = [];
    stream.on('response', (h, _flags, r) => {
      status = h[':status'];
      hdrs = h;
      raw = r || [];
    });
    stream.on('data', (c) => chunks.push(c));
    stream.on('end', () => resolve({ status, headers: hdrs, raw, body: Buffer.concat(chunks) }));
    stream.on('error', reject);
    if (body !== undefined) stream.end(body);
  });
}

const systemHeaders = () => ({ 'x-tunnel-id': tunnelId, 'x-tunnel-secret': secret });

session.on('connect', async () => {
  let hello;
  try {
    hello = await exchange({
      ':method': 'POST',
      ':path': '/_system/hello',
      ...systemHeaders(),
      'x-pool-size': String(args.pool),
      'content-length': '0',
    });
  } catch (err) {
    say('error hello ' + err.message);
    return quit(1);
  }
  say('hello ' + hello.status + ' ' + hello.body.toString('utf8'));
  if (hello.status !== 200) return quit(1);
  let info;
  try {
    info = JSON.parse(hello.body.toString('utf8'));
  } catch (err) {
    say('error hello body ' + err.message);
    return quit(1);
  }
  if (typeof info.owner_token !== 'string' || !info.owner_token) return quit(1);
  const pool = info.default_pool_size || Number(args.pool) || 1;
  for (let slot = 0; slot < pool; slot++) intakeLoop(info.owner_token, slot);
});

// §4.5: one loop per slot; on 200 handle the envelope in the background and park again at once.
async function intakeLoop(token, slot) {
  while (!session.closed && !session.destroyed) {
    let reply;
    say('intake-parked ' + slot);
    try {
      reply = await exchange({
        ':method': 'POST',
        ':path': '/_system/intake',
        'x-tunnel-id': tunnelId,
        'x-owner-token': token,
        'x-pool-slot': String(slot),
        'content-length': '0',
      });
    } catch (err) {
      if (session.closed || session.destroyed) return;
      say('intake-error ' + (err.code || err.message));
      continue;
    }
    if (reply.status === 200) {
      handleEnvelope(reply).catch((err) => say('error envelope ' + err.message));
    } else if (reply.status === 401) {
      say('intake-401 ' + (reply.headers['inkbox-reason'] || ''));
      session.close();
      return;
    } else {
      say('intake-status ' + reply.status + ' ' + (reply.headers['inkbox-reason'] || ''));
    }
  }
}

// The envelope: meta headers, the inkbox-h-* fields as received (repeats kept), the body.
function parseEnvelope(reply) {
  const meta = {};
  const fields = [];
  for (let i = 0; i + 1 < reply.raw.length; i += 2) {
    const name = reply.raw[i].toLowerCase();
    if (name.startsWith('inkbox-h-')) fields.push([name.slice(9), reply.raw[i + 1]]);
    else if (name.startsWith('inkbox-')) meta[name.slice(7)] = reply.raw[i + 1];
  }
  return { meta, fields, body: reply.body };
}

async function handleEnvelope(reply) {
  const env = parseEnvelope(reply);
  const id = env.meta['request-id'];
  if (!id) return say('error envelope without inkbox-request-id');
  const kind = env.meta['route-kind'] || 'webhook';
  const method = env.meta.method || 'GET';
  const path = env.meta.path || '/';
  say('request ' + method + ' ' + path + (kind === 'webhook' ? '' : ' ' + kind));
  if (kind === 'tcp-stream') return openTcpBridge(env);
  if (kind === 'ws-upgrade') return acceptWebSocket(env);
  return answerWebhook(env, id, method, path);
}

// §4.7: the response post. `fields` is a list of [name, value]; repeats become separate fields.
async function postResponse(id, status, fields, body) {
  const headers = {
    ':method': 'POST',
    ':path': '/_system/response/' + id,
    ...systemHeaders(),
    'inkbox-status': String(status),
    'inkbox-request-id': id,
    'content-length': String(body.length),
  };
  for (const [name, value] of fields) {
    const key = 'inkbox-h-' + name;
    if (headers[key] === undefined) headers[key] = value;
    else headers[key] = [].concat(headers[key], value);
  }
  const reply = await exchange(headers, body.length ? body : undefined);
  say('posted ' + id + ' ' + status + ' -> ' + reply.status);
  return reply;
}

// A response post whose body (n bytes of "0123456789" repeated) is written chunk by chunk, each
// write awaiting 'drain': the stream's buffer stays at its high-water mark and HTTP/2 flow control
// (the relay's windows) decides the pace. Resolves when the post is answered or reset.
const streamChunk = Buffer.alloc(64000, '0123456789'); // a multiple of 10: chunks join seamlessly
function streamResponse(id, n) {
  return new Promise((resolve) => {
    const stream = session.request(
      {
        ':method': 'POST',
        ':path': '/_system/response/' + id,
        ...systemHeaders(),
        'inkbox-status': '200',
        'inkbox-request-id': id,
        'inkbox-h-content-type': 'application/octet-stream',
        'content-length': String(n),
      },
      { endStream: n === 0 },
    );
    let sent = 0, status = 0, done = false;
    const finish = (line) => {
      if (done) return;
      done = true;
      say(line);
      resolve();
    };
    stream.on('response', (h) => (status = h[':status']));
    stream.on('data', () => {});
    stream.on('error', () => {}); // the reset is reported by 'close'
    stream.on('close', () => {
      if (status && sent === n) finish('posted ' + id + ' 200 -> ' + status);
      else finish('post-aborted ' + id + ' ' + sent + ' ' + stream.rstCode);
    });
    const pump = () => {
      while (sent < n && !stream.destroyed) {
        const chunk = n - sent >= streamChunk.length ? streamChunk : streamChunk.subarray(0, n - sent);
        sent += chunk.length;
        if (sent === n) return void stream.end(chunk);
        if (!stream.write(chunk)) return void stream.once('drain', pump);
      }
    };
    pump();
  });
}

async function answerWebhook(env, id, method, path) {
  const text = (s) => Buffer.from(s, 'utf8');
  const plain = [['content-type', 'text/plain']];
  let m;
  if (path.startsWith('/echo')) {
    const body = text(
      JSON.stringify({
        method,
        path,
        headers: env.fields,
        body_length: env.body.length,
        body_sha256: crypto.createHash('sha256').update(env.body).digest('hex'),
        forwarded_for: env.meta['forwarded-for'] || null,
        sni_host: env.meta['sni-host'] || null,
        route_kind: env.meta['route-kind'] || null,
      }),
    );
    // Sent for HEAD too: the edge must not forward a body to a HEAD (§8 A17).
    return postResponse(id, 200, [['content-type', 'application/json']], body);
  }
  if ((m = /^\/status\/(\d{3})/.exec(path))) {
    return postResponse(id, Number(m[1]), plain, text(`status ${m[1]} from the agent\n`));
  }
  if (path.startsWith('/cookies')) {
    return postResponse(id, 200, [...plain, ['set-cookie', 'a=1; Path=/'], ['set-cookie', 'b=2; Path=/']], text('cookies\n'));
  }
  if (path.startsWith('/merged-cookies')) {
    return postResponse(id, 200, [...plain, ['set-cookie', 'a=1; Path=/, b=2; Path=/']], text('merged cookies\n'));
  }
  if ((m = /^\/bytes\/(\d+)/.exec(path))) return streamResponse(id, Number(m[1]));
  if (path.startsWith('/not-modified')) return postResponse(id, 304, [['etag', '"v1"']], Buffer.alloc(0));
  if ((m = /^\/slow\/(\d+)/.exec(path))) {
    await new Promise((r) => setTimeout(r, Number(m[1])));
    return postResponse(id, 200, plain, text('slow\n'));
  }
  if (path.startsWith('/hold')) return; // never answered
  return postResponse(id, 200, plain, text('hello from the agent\n'));
}

// ---- WebSocket (§4.8) --------------------------------------------------------------------------
async function acceptWebSocket(env) {
  const id = env.meta['request-id'];
  const wsId = env.meta['ws-id'];
  if (!wsId) return postResponse(id, 400, [['inkbox-reason', 'missing-ws-id']], Buffer.from('missing ws_id'));
  const offered = env.fields
    .filter(([n]) => n === 'sec-websocket-protocol')
    .flatMap(([, v]) => v.split(','))
    .map((s) => s.trim())
    .filter(Boolean);
  const fields = offered.length ? [['sec-websocket-protocol', offered[0]]] : [];
  await postResponse(id, 200, fields, Buffer.alloc(0)); // the bridge opens only after this reply
  const bridge = session.request(
    {
      ':method': 'CONNECT',
      ':protocol': 'inkbox-tunnel-ws',
      ':path': '/_system/ws/' + wsId,
      ':scheme': 'https',
      'sec-websocket-version': '13',
      ...systemHeaders(),
      'inkbox-ws-id': wsId,
    },
    { endStream: false },
  );
  const reader = new FrameReader();
  let inner = Buffer.alloc(0);
  let closing = false;
  const sendMessage = (msg) => {
    if (closing && msg.type !== 'close') return;
    const json = Buffer.from(JSON.stringify(msg), 'utf8');
    const len = Buffer.allocUnsafe(4);
    len.writeUInt32BE(json.length, 0);
    bridge.write(encodeFrame(OP_BINARY, Buffer.concat([len, json])));
  };
  const closeWith = (code, reason) => {
    if (closing) return;
    sendMessage({ type: 'close', code, reason });
    closing = true;
    bridge.write(encodeFrame(OP_CLOSE, closePayload(code, reason)));
    bridge.end();
    say('ws-close ' + code);
  };
  const onMessage = (msg) => {
    if (msg.type === 'text') {
      say('ws-message text ' + Buffer.byteLength(msg.data, 'utf8'));
      if (msg.data === 'close:4001') return closeWith(4001, 'bye');
      sendMessage({ type: 'text', data: msg.data });
    } else if (msg.type === 'binary') {
      say('ws-message binary ' + Buffer.from(msg.data, 'base64').length);
      sendMessage({ type: 'binary', data: msg.data });
    } else if (msg.type === 'close') {
      say('ws-peer-close ' + msg.code);
      closeWith(typeof msg.code === 'number' ? msg.code : 1000, '');
    }
  };
  bridge.on('response', (h) => {
    if (h[':status'] === 200) say('ws-open ' + wsId);
    else say('ws-refused ' + h[':status']);
  });
  bridge.on('data', (chunk) => {
    for (const f of reader.push(chunk)) {
      if (f.opcode === OP_BINARY || f.opcode === OP_TEXT) {
        inner = Buffer.concat([inner, f.payload]);
        while (inner.length >= 4 && inner.length >= 4 + inner.readUInt32BE(0)) {
          const n = inner.readUInt32BE(0);
          let msg = null;
          try {
            msg = JSON.parse(inner.subarray(4, 4 + n).toString('utf8'));
          } catch {
            say('error ws malformed inner message');
          }
          inner = inner.subarray(4 + n);
          if (msg) onMessage(msg);
        }
      } else if (f.opcode === OP_PING) {
        bridge.write(encodeFrame(OP_PONG, f.payload));
      } else if (f.opcode === OP_CLOSE) {
        closeWith(f.payload.length >= 2 ? f.payload.readUInt16BE(0) : 1000, '');
      }
    }
  });
  bridge.on('end', () => {
    if (!closing) {
      closing = true;
      bridge.end();
      say('ws-end');
    }
  });
  bridge.on('error', (err) => say('ws-error ' + (err.code || err.message)));
}

// ---- tcp-stream: passthrough TLS (§4.9) --------------------------------------------------------
function openTcpBridge(env) {
  const tcpId = env.meta['tcp-id'];
  if (!tcpId || !passthroughContext) return say('error tcp-stream dropped (no tcp id or no --cert/--key)');
  const bridge = session.request(
    {
      ':method': 'CONNECT',
      ':protocol': 'inkbox-tunnel-tcp',
      ':path': '/_system/tcp/' + tcpId,
      ':scheme': 'https',
      'sec-websocket-version': '13',
      'sec-websocket-protocol': 'inkbox-tunnel-tcp',
      ...systemHeaders(),
      'inkbox-tcp-id': tcpId,
    },
    { endStream: false },
  );
  const reader = new FrameReader();
  let finished = false;
  const finish = (code, reason) => {
    if (finished) return;
    finished = true;
    bridge.end(encodeFrame(OP_CLOSE, closePayload(code, reason)));
    say('tcp-close ' + code);
  };
  // The bridge as a byte stream: RFC 6455 frames unwrapped on the way in, wrapped on the way out.
  const wire = new Duplex({
    read() {},
    write(chunk, _enc, done) {
      if (!finished) bridge.write(encodeFrame(OP_BINARY, chunk));
      done();
    },
    final(done) {
      finish(1000, 'clean-eof');
      done();
    },
  });
  bridge.on('data', (chunk) => {
    for (const f of reader.push(chunk)) {
      if (f.opcode === OP_BINARY || f.opcode === OP_CONT) wire.push(f.payload);
      else if (f.opcode === OP_PING) bridge.write(encodeFrame(OP_PONG, f.payload));
      else if (f.opcode === OP_CLOSE) wire.push(null);
      else finish(1002, 'protocol-error');
    }
  });
  bridge.on('end', () => wire.push(null));
  bridge.on('error', (err) => {
    say('tcp-error ' + (err.code || err.message));
    wire.destroy();
  });
  bridge.on('response', (h) => {
    if (h[':status'] !== 200) {
      say('tcp-refused ' + h[':status']);
      bridge.close(http2.constants.NGHTTP2_CANCEL);
      return;
    }
    say('tcp-open ' + tcpId);
    const socket = new tls.TLSSocket(wire, {
      isServer: true,
      secureContext: passthroughContext,
      ALPNProtocols: ['http/1.1'],
    });
    socket.on('secure', () => say('tcp-tls ' + (socket.alpnProtocol || 'none')));
    socket.on('error', (err) => {
      say('tcp-tls-error ' + (err.code || err.message));
      finish(1011, 'tls-error');
    });
    let head = '';
    socket.on('data', (chunk) => {
      if (head === null) return;
      head += chunk.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      say('tcp-request ' + head.split('\r\n')[0].split(' ').slice(0, 2).join(' '));
      head = null;
      const body = 'hello from passthrough\n';
      socket.end(
        'HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nconnection: close\r\n' +
          `content-length: ${body.length}\r\n\r\n${body}`,
      );
    });
    socket.on('end', () => socket.end());
  });
}
