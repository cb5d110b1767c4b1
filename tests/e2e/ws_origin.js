// A local origin for tests/e2e/agent_e2e.sh that Python's http.server cannot play: WebSocket
// (Debian's node-ws) and, with a certificate, HTTPS. The agent forwards to it.
//
//   node ws_origin.js PORT [CERT KEY]
//
// HTTP: GET /hello answers "hello from node" with the request's x-forwarded-host and
// x-forwarded-proto echoed as x-seen-forwarded-host / x-seen-forwarded-proto.
// WebSocket on any path but /refuse (403): the first offered subprotocol is chosen; every message is echoed with
// its type; the text "close:4001" closes with 4001 "bye"; the text "path?" answers the request
// path and x-forwarded-host it was opened with.
'use strict';

const fs = require('node:fs');
const http = require('node:http');
const https = require('node:https');
const WebSocket = require('ws');

const [port, cert, key] = process.argv.slice(2);
const handler = (req, res) => {
  if (req.url === '/hello') {
    res.writeHead(200, {
      'content-type': 'text/plain',
      'x-seen-forwarded-host': req.headers['x-forwarded-host'] || '',
      'x-seen-forwarded-proto': req.headers['x-forwarded-proto'] || '',
    });
    res.end('hello from node\n');
    return;
  }
  res.writeHead(404, { 'content-type': 'text/plain' });
  res.end('not found\n');
};
const server = cert ? https.createServer({ cert: fs.readFileSync(cert), key: fs.readFileSync(key) }, handler)
                    : http.createServer(handler);
const wss = new WebSocket.Server({
  server,
  perMessageDeflate: false,
  handleProtocols: (protocols) => (protocols.size ? [...protocols][0] : false),
  verifyClient: (info, cb) => (info.req.url.startsWith('/refuse') ? cb(false, 403, 'Forbidden') : cb(true)),
});
wss.on('connection', (ws, req) => {
  ws.on('message', (data, isBinary) => {
    if (!isBinary && data.toString() === 'close:4001') {
      ws.close(4001, 'bye');
      return;
    }
    if (!isBinary && data.toString() === 'path?') {
      ws.send(JSON.stringify({ path: req.url, forwarded_host: req.headers['x-forwarded-host'] || null }));
      return;
    }
    ws.send(data, { binary: isBinary });
  });
});
server.listen(Number(port), '127.0.0.1', () => console.log(`ws origin listening on ${port}`));
