// A WebSocket client for tests/integration/agent/plaintext_server_test.cc: it talks to the
// passthrough plaintext service over TLS, as a third party would, and prints one JSON object.
//
//   NODE_PATH=/usr/share/nodejs node ws_passthrough_client.js h1|h2 PORT NAME CA_FILE PATH [BEHAVIOUR]
//
// Both modes offer the subprotocols chat.v1 and chat.v2, ask the origin what it saw ("path?": the
// path and x-forwarded-host it was opened with, reported as `seen`), send a text message and expect its echo,
// send 1 MiB of random binary and expect it back unchanged, then send "close:4001" (tests/e2e/
// ws_origin.js then closes with 4001 "bye") and report the close code and reason that reached the
// client. A refused handshake reports its status. h1 uses the `ws` package (Debian's node-ws); h2
// is an RFC 8441 extended CONNECT with node:http2 and a small frame codec of its own.
// BEHAVIOUR "vanish": after the first answer the client drops its TCP connection without a word.
// "hold" (h1): once open, it only waits for the close (the test kills the origin meanwhile).
'use strict';

const fs = require('node:fs');
const crypto = require('node:crypto');

const [mode, port, name, caFile, path, behaviour = 'full'] = process.argv.slice(2);
const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');
const hardLimit = setTimeout(() => {
  out({ error: 'no result after 15000 ms' });
  process.exit(3);
}, 15000);
const big = crypto.randomBytes(1024 * 1024);
const result = { status: null, protocol: null, seen: null, text: null, binary_ok: false, binary_len: 0, close_code: null, close_reason: null };
const finish = (code) => {
  clearTimeout(hardLimit);
  out(result);
  process.exit(code);
};

// ---- HTTP/1.1: the ws package ------------------------------------------------------------------
function h1() {
  const WebSocket = require('ws');
  const lookup = (_host, opts, cb) => (opts && opts.all ? cb(null, [{ address: '127.0.0.1', family: 4 }]) : cb(null, '127.0.0.1', 4));
  const ws = new WebSocket(`wss://${name}:${port}${path}`, ['chat.v1', 'chat.v2'], {
    ca: fs.readFileSync(caFile),
    lookup,
    perMessageDeflate: false,
    maxPayload: 4 * 1024 * 1024,
  });
  let step = -1;
  ws.on('upgrade', (res) => {
    result.status = res.statusCode;
  });
  ws.on('unexpected-response', (_req, res) => {
    result.status = res.statusCode;
    let body = '';
    res.on('data', (chunk) => { body += chunk; });
    res.on('end', () => {
      result.body = body;
      finish(0);
    });
  });
  ws.on('open', () => {
    result.protocol = ws.protocol;
    result.opened = true;
    if (behaviour === 'hold') return;
    ws.send('path?');
  });
  ws.on('message', (data, isBinary) => {
    if (step === -1) {
      result.seen = isBinary ? '(binary)' : JSON.parse(data.toString('utf8'));
      if (behaviour === 'vanish') {
        ws._socket.destroy();
        finish(0);
      }
      step = 0;
      ws.send('hello passthrough');
    } else if (step === 0) {
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
    finish(0);
  });
  ws.on('error', (err) => {
    result.error = err.message;
    finish(1);
  });
}

// ---- HTTP/2: extended CONNECT --------------------------------------------------------------------
function clientFrame(opcode, payload) {
  const mask = crypto.randomBytes(4);
  let head;
  if (payload.length < 126) {
    head = Buffer.from([0x80 | opcode, 0x80 | payload.length]);
  } else if (payload.length < 65536) {
    head = Buffer.alloc(4);
    head[0] = 0x80 | opcode;
    head[1] = 0x80 | 126;
    head.writeUInt16BE(payload.length, 2);
  } else {
    head = Buffer.alloc(10);
    head[0] = 0x80 | opcode;
    head[1] = 0x80 | 127;
    head.writeBigUInt64BE(BigInt(payload.length), 2);
  }
  const body = Buffer.from(payload);
  for (let i = 0; i < body.length; i++) body[i] ^= mask[i & 3];
  return Buffer.concat([head, mask, body]);
}

// Unmasked server frames, whole messages only (the origin does not fragment).
function* serverFrames(state) {
  for (;;) {
    const buf = state.buf;
    if (buf.length < 2) return;
    let len = buf[1] & 0x7f;
    let off = 2;
    if (len === 126) {
      if (buf.length < 4) return;
      len = buf.readUInt16BE(2);
      off = 4;
    } else if (len === 127) {
      if (buf.length < 10) return;
      len = Number(buf.readBigUInt64BE(2));
      off = 10;
    }
    if (buf[1] & 0x80) throw new Error('masked server frame');
    if (buf.length < off + len) return;
    const frame = { opcode: buf[0] & 0x0f, payload: buf.subarray(off, off + len) };
    state.buf = buf.subarray(off + len);
    yield frame;
  }
}

function h2() {
  const http2 = require('node:http2');
  const session = http2.connect(`https://127.0.0.1:${port}`, { ca: fs.readFileSync(caFile), servername: name });
  session.on('error', (err) => {
    result.error = err.message;
    finish(1);
  });
  session.once('remoteSettings', (settings) => {
    result.enable_connect_protocol = settings.enableConnectProtocol === true;
    const stream = session.request(
      {
        ':method': 'CONNECT',
        ':protocol': 'websocket',
        ':scheme': 'https',
        ':path': path,
        ':authority': `${name}:${port}`,
        'sec-websocket-version': '13',
        'sec-websocket-protocol': 'chat.v1, chat.v2',
      },
      { endStream: false },
    );
    const state = { buf: Buffer.alloc(0) };
    let step = -1;
    stream.on('response', (h) => {
      result.status = h[':status'];
      result.protocol = h['sec-websocket-protocol'] || null;
      if (h[':status'] !== 200) {
        stream.resume();
        stream.on('close', () => {
          session.close();
          finish(0);
        });
        return;
      }
      stream.write(clientFrame(0x1, Buffer.from('path?')));
    });
    stream.on('data', (chunk) => {
      if (result.status !== 200) return;
      state.buf = Buffer.concat([state.buf, chunk]);
      for (const frame of serverFrames(state)) {
        if (frame.opcode === 0x1 && step === -1) {
          result.seen = JSON.parse(frame.payload.toString('utf8'));
          if (behaviour === 'vanish') {
            session.destroy();
            finish(0);
          }
          step = 0;
          stream.write(clientFrame(0x1, Buffer.from('hello passthrough')));
        } else if (frame.opcode === 0x1 && step === 0) {
          result.text = frame.payload.toString('utf8');
          step = 1;
          stream.write(clientFrame(0x2, big));
        } else if (frame.opcode === 0x2 && step === 1) {
          result.binary_len = frame.payload.length;
          result.binary_ok = Buffer.compare(frame.payload, big) === 0;
          step = 2;
          stream.write(clientFrame(0x1, Buffer.from('close:4001')));
        } else if (frame.opcode === 0x8) {
          result.close_code = frame.payload.length >= 2 ? frame.payload.readUInt16BE(0) : null;
          result.close_reason = frame.payload.subarray(2).toString('utf8');
          // Echo the CLOSE (RFC 6455 §5.5.1) and end our side; the origin then ends its own.
          stream.end(clientFrame(0x8, frame.payload.subarray(0, 2)));
        }
      }
    });
    stream.on('end', () => {
      result.stream_ended = true;
    });
    stream.on('close', () => {
      if (result.status !== 200) return;
      result.rst_code = stream.rstCode;
      session.close();
      finish(0);
    });
    stream.on('error', (err) => {
      result.error = err.message;
    });
  });
}

const modes = { h1, h2 };
if (!modes[mode] || !port || !name || !caFile || !path) {
  console.error('usage: node ws_passthrough_client.js h1|h2 PORT NAME CA_FILE PATH');
  process.exit(64);
}
modes[mode]();
