// A minimal agent on Node's own http2 client (the stack the TypeScript SDK uses), for
// tests/e2e/relay_e2e.sh. It opens one TLS + HTTP/2 session to the relay, verifying the server
// certificate against CA_FILE, says hello, parks one intake with the owner token the hello
// returned, and then holds the session until stdin reaches end-of-file, the server ends the
// session, or LIFETIME seconds pass.
//
//   node agent.js PORT CA_FILE TUNNEL_ID SECRET [LIFETIME]
//
// Everything it sees goes to stdout, one event per line, for the script to wait on:
//   settings {"enableConnectProtocol":true,"maxConcurrentStreams":256,...}
//   hello 200 {...}
//   intake-sent
//   intake-status 204           (the relay answered the parked intake)
//   intake-closed
//   goaway 0                    (GOAWAY from the relay, with its error code)
//   stdin-closed                (the agent is closing the session)
//   closed                      (the session has ended; the process exits 0 right after)
// Failures print "error ..." and exit 1; running out of LIFETIME prints "lifetime" and exits 2.
'use strict';

const fs = require('node:fs');
const http2 = require('node:http2');

const [port, caFile, tunnelId, secret, lifetimeArg] = process.argv.slice(2);
if (!port || !caFile || !tunnelId || !secret) {
  console.error('usage: node agent.js PORT CA_FILE TUNNEL_ID SECRET [LIFETIME]');
  process.exit(64);
}
const lifetimeMs = Number(lifetimeArg || 40) * 1000;

const say = (line) => process.stdout.write(line + '\n');
const fail = (what) => {
  say('error ' + what);
  process.exit(1);
};

const session = http2.connect(`https://127.0.0.1:${port}`, {
  ca: fs.readFileSync(caFile),
  ALPNProtocols: ['h2'],
  minVersion: 'TLSv1.2',
});

const lifetime = setTimeout(() => {
  say('lifetime');
  process.exit(2);
}, lifetimeMs);

session.on('error', (err) => fail('session ' + (err.code || '') + ' ' + err.message));
session.on('goaway', (code) => say('goaway ' + code));
session.on('close', () => {
  say('closed');
  clearTimeout(lifetime);
  process.exit(0);
});
session.once('remoteSettings', (s) => say('settings ' + JSON.stringify(s)));

// stdin at end-of-file: the test is done with this session. Like the TS SDK's aclose(): GOAWAY
// and a graceful close, then the session is torn down 250 ms later (the parked intake would
// otherwise keep a graceful close waiting for ever).
process.stdin.on('data', () => {});
process.stdin.on('end', () => {
  say('stdin-closed');
  session.close();
  setTimeout(() => session.destroy(), 250).unref();
});
process.stdin.resume();

session.on('connect', () => {
  const hello = session.request(
    {
      ':method': 'POST',
      ':path': '/_system/hello',
      'x-tunnel-id': tunnelId,
      'x-tunnel-secret': secret,
      'content-length': '0',
    },
    { endStream: true },
  );
  let status = 0;
  let body = '';
  hello.setEncoding('utf8');
  hello.on('response', (h) => {
    status = h[':status'];
  });
  hello.on('data', (chunk) => {
    body += chunk;
  });
  hello.on('error', (err) => fail('hello ' + err.message));
  hello.on('end', () => {
    say('hello ' + status + ' ' + body);
    if (status !== 200) {
      session.close();
      return;
    }
    let token;
    try {
      token = JSON.parse(body).owner_token;
    } catch (err) {
      fail('hello body is not JSON: ' + err.message);
    }
    if (typeof token !== 'string' || token === '') fail('hello gave no owner_token');
    const intake = session.request(
      {
        ':method': 'POST',
        ':path': '/_system/intake',
        'x-tunnel-id': tunnelId,
        'x-owner-token': token,
        'x-pool-slot': '0',
        'content-length': '0',
      },
      { endStream: true },
    );
    intake.on('response', (h) => say('intake-status ' + h[':status']));
    intake.on('data', () => {});
    // A stream reset by the session's end is reported as an error: that is not a failure here.
    intake.on('error', (err) => say('intake-error ' + (err.code || err.message)));
    intake.on('close', () => say('intake-closed'));
    say('intake-sent');
  });
});
