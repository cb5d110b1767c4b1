// Third-party clients for tests/e2e/edge_e2e.sh that curl, nghttp and openssl cannot play.
// Every one connects to 127.0.0.1:PORT with SNI NAME (so no DNS is needed), has a hard time limit,
// and prints its findings on stdout for the script to check.
//
//   node edge_clients.js raw PORT NAME MAX_MS < REQUEST
//       Writes REQUEST (bytes) over TLS and never half-closes; prints what comes back. On stderr,
//       "closed MS" when the edge closed the connection after MS ms, or "open MS" at MAX_MS.
//   node edge_clients.js ws-h1 PORT NAME CA_FILE
//       WebSocket over HTTP/1.1 with the `ws` package (Debian's node-ws): subprotocol, text echo,
//       1 MiB binary echo, then "close:4001". Prints one JSON object.
//   node edge_clients.js ws-h2 PORT NAME CA_FILE
//       WebSocket over HTTP/2 (RFC 8441 extended CONNECT) with node:http2: one masked text frame,
//       its echo, then a CLOSE. Prints one JSON object.
//   node edge_clients.js keepalive PORT NAME CA_FILE GO_FILE
//       HTTP/1.1 keep-alive: GET /echo, prints "first STATUS SERIAL", waits until GO_FILE exists,
//       sends a second GET /echo on the same connection, prints "second STATUS SERIAL".
//   node edge_clients.js stall PORT NAME CA_FILE PATH STALL_MS MAX_MS
//       HTTP/1.1 GET PATH, then takes no byte for STALL_MS (the socket is paused before the first
//       one arrives; Node pulls at most its high-water mark). Prints "sent EPOCH_MS" when the
//       request is written, "resumed BUFFERED" when it starts reading, then "closed MS BYTES" when
//       the connection ends (MS since the request, BYTES received in all) or "open MS BYTES" at
//       MAX_MS, and last "status LINE" (the response's first line).
'use strict';

const fs = require('node:fs');
const tls = require('node:tls');
const http2 = require('node:http2');
const crypto = require('node:crypto');

const [mode, port, name, ...rest] = process.argv.slice(2);
const out = (obj) => process.stdout.write((typeof obj === 'string' ? obj : JSON.stringify(obj)) + '\n');
const started = Date.now();
const hardLimit = (ms) => setTimeout(() => {
  out({ error: `no result after ${ms} ms` });
  process.exit(3);
}, ms);

// ---- raw ---------------------------------------------------------------------------------------
function raw() {
  const maxMs = Number(rest[0] || 5000);
  const input = fs.readFileSync(0);
  const socket = tls.connect({ host: '127.0.0.1', port: Number(port), servername: name, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] });
  socket.on('secureConnect', () => socket.write(input));
  socket.on('data', (chunk) => process.stdout.write(chunk));
  let done = false;
  const finish = (what) => {
    if (done) return;
    done = true;
    process.stderr.write(`${what} ${Date.now() - started}\n`);
    process.exit(0);
  };
  socket.on('close', () => finish('closed'));
  socket.on('error', () => finish('closed'));
  setTimeout(() => finish('open'), maxMs);
}

// ---- ws-h1 -------------------------------------------------------------------------------------
function wsH1() {
  const WebSocket = require('ws');
  hardLimit(15000);
  const lookup = (_host, opts, cb) => (opts && opts.all ? cb(null, [{ address: '127.0.0.1', family: 4 }]) : cb(null, '127.0.0.1', 4));
  const ws = new WebSocket(`wss://${name}:${port}/ws?x=1`, ['chat.v1', 'chat.v2'], {
    ca: fs.readFileSync(rest[0]),
    lookup,
    perMessageDeflate: false,
  });
  const result = { protocol: null, text: null, binary_ok: false, binary_len: 0, close_code: null, close_reason: null };
  const big = crypto.randomBytes(1024 * 1024);
  let step = 0;
  ws.on('upgrade', (res) => {
    result.status = res.statusCode;
    result.accept = res.headers['sec-websocket-accept'] || null;
  });
  ws.on('open', () => {
    result.protocol = ws.protocol;
    ws.send('hello edge');
  });
  ws.on('message', (data, isBinary) => {
    if (step === 0) {
      result.text = isBinary ? '(binary)' : data.toString('utf8');
      step = 1;
      ws.send(big, { binary: true });
    } else if (step === 1) {
      result.binary_len = data.length;
      result.binary_ok = isBinary && Buffer.compare(Buffer.from(data), big) === 0;
      step = 2;
      ws.send('close:4001');
    }
  });
  ws.on('close', (code, reason) => {
    result.close_code = code;
    result.close_reason = reason.toString('utf8');
    out(result);
    process.exit(0);
  });
  ws.on('error', (err) => {
    out({ ...result, error: err.message });
    process.exit(1);
  });
}

// ---- ws-h2 -------------------------------------------------------------------------------------
function maskedFrame(opcode, payload) {
  const mask = crypto.randomBytes(4);
  const head = Buffer.from([0x80 | opcode, 0x80 | payload.length]); // payloads < 126 bytes here
  const body = Buffer.from(payload);
  for (let i = 0; i < body.length; i++) body[i] ^= mask[i & 3];
  return Buffer.concat([head, mask, body]);
}

function wsH2() {
  hardLimit(10000);
  const result = { status: null, protocol: null, echo: null, close_code: null };
  const session = http2.connect(`https://127.0.0.1:${port}`, { ca: fs.readFileSync(rest[0]), servername: name });
  session.on('error', (err) => {
    out({ ...result, error: err.message });
    process.exit(1);
  });
  session.once('remoteSettings', (settings) => {
    result.enable_connect_protocol = settings.enableConnectProtocol === true;
    const stream = session.request(
      {
        ':method': 'CONNECT',
        ':protocol': 'websocket',
        ':scheme': 'https',
        ':path': '/ws',
        ':authority': `${name}:${port}`,
        'sec-websocket-version': '13',
        'sec-websocket-protocol': 'chat.v1',
      },
      { endStream: false },
    );
    let buf = Buffer.alloc(0);
    stream.on('response', (h) => {
      result.status = h[':status'];
      result.protocol = h['sec-websocket-protocol'] || null;
      if (h[':status'] !== 200) {
        out(result);
        process.exit(0);
      }
      stream.write(maskedFrame(0x1, Buffer.from('hi over h2')));
    });
    stream.on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 2) {
        const len = buf[1] & 0x7f; // the server's frames are unmasked; short ones only here
        if (len >= 126 || buf.length < 2 + len) break;
        const opcode = buf[0] & 0x0f;
        const payload = buf.subarray(2, 2 + len);
        buf = buf.subarray(2 + len);
        if (opcode === 0x1 && result.echo === null) {
          result.echo = payload.toString('utf8');
          const close = Buffer.alloc(2);
          close.writeUInt16BE(1000, 0);
          stream.write(maskedFrame(0x8, close));
        } else if (opcode === 0x8) {
          result.close_code = payload.length >= 2 ? payload.readUInt16BE(0) : null;
          out(result);
          session.destroy();
          process.exit(0);
        }
      }
    });
    stream.on('end', () => {
      out(result);
      process.exit(0);
    });
    stream.on('error', (err) => {
      out({ ...result, error: err.message });
      process.exit(1);
    });
  });
}

// ---- keepalive ---------------------------------------------------------------------------------
function keepalive() {
  hardLimit(20000);
  const [caFile, goFile] = rest;
  const socket = tls.connect({ host: '127.0.0.1', port: Number(port), servername: name, ca: fs.readFileSync(caFile), ALPNProtocols: ['http/1.1'] });
  let buf = '';
  let waiting = null;
  const get = () =>
    new Promise((resolve) => {
      buf = '';
      waiting = resolve;
      socket.write(`GET /echo HTTP/1.1\r\nHost: ${name}\r\n\r\n`);
    });
  socket.on('data', (chunk) => {
    buf += chunk.toString('latin1');
    const end = buf.indexOf('\r\n\r\n');
    if (end < 0 || !waiting) return;
    const m = /\r\ncontent-length:\s*(\d+)/i.exec(buf.slice(0, end + 2));
    if (!m || buf.length < end + 4 + Number(m[1])) return;
    const resolve = waiting;
    waiting = null;
    resolve(buf.split(' ')[1]);
  });
  socket.on('close', () => {
    out('connection-closed');
    process.exit(1);
  });
  socket.on('error', (err) => out('error ' + err.message));
  socket.on('secureConnect', async () => {
    const serial = socket.getPeerCertificate().serialNumber;
    out(`first ${await get()} ${serial}`);
    while (!fs.existsSync(goFile)) await new Promise((r) => setTimeout(r, 50));
    out(`second ${await get()} ${socket.getPeerCertificate().serialNumber}`);
    process.exit(0);
  });
}

// ---- stall -------------------------------------------------------------------------------------
function stall() {
  const [caFile, path, stallMs, maxMs] = rest;
  const socket = tls.connect({ host: '127.0.0.1', port: Number(port), servername: name, ca: fs.readFileSync(caFile), ALPNProtocols: ['http/1.1'] });
  let sentAt = 0, bytes = 0, head = '', done = false;
  const finish = (what) => {
    if (done) return;
    done = true;
    out(`${what} ${Date.now() - sentAt} ${bytes}`);
    out(`status ${head.split('\r\n')[0]}`);
    process.exit(0);
  };
  socket.on('error', (err) => {
    if (sentAt) return finish('closed');
    out('error ' + err.message);
    process.exit(1);
  });
  socket.on('close', () => sentAt && finish('closed'));
  socket.on('secureConnect', () => {
    socket.pause(); // no 'data' listener until STALL_MS: nothing is read beyond the high-water mark
    socket.write(`GET ${path} HTTP/1.1\r\nHost: ${name}\r\n\r\n`);
    sentAt = Date.now();
    out(`sent ${sentAt}`);
    setTimeout(() => {
      out(`resumed ${socket.readableLength}`);
      socket.on('data', (chunk) => {
        if (head.length < 200) head += chunk.subarray(0, 200).toString('latin1');
        bytes += chunk.length;
      });
      socket.resume();
      setTimeout(() => finish('open'), Number(maxMs) - Number(stallMs));
    }, Number(stallMs));
  });
  hardLimit(Number(maxMs) + 5000);
}

const modes = { raw, 'ws-h1': wsH1, 'ws-h2': wsH2, keepalive, stall };
if (!modes[mode] || !port || !name) {
  console.error('usage: node edge_clients.js raw|ws-h1|ws-h2|keepalive|stall PORT NAME ...');
  process.exit(64);
}
modes[mode]();
