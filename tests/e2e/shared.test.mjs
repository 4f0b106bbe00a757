// A shared log through a real nats-server (the one `make test` installs
// from PyPI), started here with JetStream and a WebSocket listener on
// loopback ports: a browser connects (Settings → Shared log), a writer
// speaking the NATS protocol pushes events, the browser follows them live;
// a second browser joins late and downloads the same log — both exports
// equal byte for byte; the browser's own log is untouched; a server that
// is down, one without JetStream and a wrong token each say so.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, writeFile, readFile } from 'node:fs/promises';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { start, LivePage } from './support.mjs';

const NATS = process.env.NATS_SERVER ?? 'target/tools/nats/bin/nats-server';
let env;
let dir;
const servers = [];

function freePort() {
  return new Promise((ok) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

/** Wait until something listens on `port`. */
async function listening(port) {
  for (let i = 0; i < 200; i++) {
    const up = await new Promise((ok) => {
      const c = connect(port, '127.0.0.1', () => { c.end(); ok(true); });
      c.on('error', () => ok(false));
    });
    if (up) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nothing listens on ${port}`);
}

/** A nats-server with a WebSocket listener; `jetstream`, `token` as asked. */
async function natsServer({ jetstream = true, token } = {}) {
  const [port, ws] = [await freePort(), await freePort()];
  const store = await mkdtemp(join(dir, 'js-'));
  const conf = join(store, 'nats.conf');
  await writeFile(conf, [
    `listen: 127.0.0.1:${port}`,
    jetstream ? `jetstream { store_dir: "${store}" }` : '',
    token ? `authorization { token: "${token}" }` : '',
    `websocket { listen: "127.0.0.1:${ws}", no_tls: true }`,
  ].join('\n'));
  const child = spawn(NATS, ['-c', conf], { stdio: 'ignore' });
  servers.push(child);
  await listening(ws);
  return { port, url: `ws://127.0.0.1:${ws}` };
}

/**
 * A writer speaking the NATS protocol over TCP: publishes Retrace events
 * (a stream and its event) to the shared log's subjects, each with its id.
 */
async function writer(port) {
  const socket = connect(port, '127.0.0.1');
  let buffered = '';
  const waiters = [];
  socket.on('data', (d) => {
    buffered += d.toString('utf8');
    let i;
    while ((i = buffered.indexOf('\r\n')) >= 0) {
      const line = buffered.slice(0, i);
      buffered = buffered.slice(i + 2);
      if (line === 'PING') socket.write('PONG\r\n');
      if (line === 'PONG') waiters.shift()?.();
    }
  });
  const ping = () => new Promise((ok) => { waiters.push(ok); socket.write('PING\r\n'); });
  socket.write('CONNECT {"verbose":false,"pedantic":false,"headers":true,"protocol":1,"lang":"node","version":"0"}\r\n');
  await ping();
  return {
    async publish(log, events) {
      for (const { stream, event } of events) {
        const headers = `NATS/1.0\r\nNats-Msg-Id: ${event.id}\r\n\r\n`;
        const payload = JSON.stringify({ stream, event });
        const subject = `retrace.${log}.${stream}`;
        socket.write(`HPUB ${subject} ${Buffer.byteLength(headers)} ${Buffer.byteLength(headers) + Buffer.byteLength(payload)}\r\n${headers}${payload}\r\n`);
      }
      await ping();
    },
    close() { socket.end(); },
  };
}

/** `n` events of `cases` service cases, as a writer elsewhere would record them. */
function events(from, n) {
  const out = [];
  const t0 = Date.UTC(2025, 0, 6, 8);
  for (let i = from; i < from + n; i++) {
    const c = `w-${Math.floor(i / 3)}`;
    const at = t0 + i * 3_600_000;
    const step = i % 3;
    const [type, schema, data] = step === 0
      ? ['CaseOpened', 2, { case: c, attributes: { category: 'repair' } }]
      : step === 1
        ? ['ActivityRecorded', 3, { case: c, activity: 'Repair', resource: 'Ana', hours: 2, attributes: {} }]
        : ['CaseClosed', 2, { case: c, outcome: 'fixed' }];
    out.push({
      stream: `case-${c}`,
      event: { id: `w-${i}`, event_type: type, schema, occurred_at: at, correlation: c, causation: null, data: JSON.stringify(data), recorded_at: null },
    });
  }
  return out;
}

async function exportLog(page, name) {
  await page.go('log');
  const p = page.page;
  await p.waitForFunction(() => !document.querySelector('[data-testid=export-log]')?.disabled);
  const [download] = await Promise.all([p.waitForEvent('download'), p.getByTestId('export-log').click()]);
  const file = join(dir, name);
  await download.saveAs(file);
  return readFile(file, 'utf8');
}

async function connectTo(page, url, { log = 'team', token = '' } = {}) {
  await page.go('settings');
  const p = page.page;
  await p.getByTestId('shared-server').fill(url);
  await p.getByTestId('shared-log').fill(log);
  await p.getByTestId('shared-token').fill(token);
  await Promise.all([p.waitForEvent('load'), p.getByTestId('shared-connect').click()]);
  await p.getByTestId('event-count').waitFor();
}

async function statusMatches(page, re) {
  await page.page.waitForFunction((src) => new RegExp(src).test(document.querySelector('[data-testid=sync-status]')?.textContent ?? ''), re.source, { timeout: 30_000 });
  return page.page.getByTestId('sync-status').textContent();
}

before(async () => {
  env = await start();
  dir = await mkdtemp(join(tmpdir(), 'retrace-shared-'));
});
after(async () => {
  for (const s of servers) s.kill();
  await env?.stop();
});

test('two browsers share a log: one follows a writer live, one joins late; same log byte for byte; the own log untouched', async () => {
  const server = await natsServer();
  const contextA = await env.browser.newContext();
  const a = await new LivePage(await contextA.newPage()).open(env.url);
  const sockets = [];
  a.page.on('websocket', (ws) => sockets.push(ws.url()));
  // The browser's own log first.
  await a.appendDemo();
  await a.until('event-count', 'n > 0');
  const own = await a.number('event-count');

  await connectTo(a, server.url);
  const status = await statusMatches(a, /^connected/);
  assert.match(status, /shared log “team”, 0 events on the server/);
  assert.equal(await a.number('event-count'), 0, 'the shared log starts empty');

  // A writer elsewhere pushes 300 events: the browser follows them live.
  const w = await writer(server.port);
  await w.publish('team', events(0, 150));
  await a.until('event-count', 'n === 150');
  await w.publish('team', events(150, 150));
  await a.until('event-count', 'n === 300');
  assert.match(await statusMatches(a, /300 events on the server; 300 received, 0 sent, 0 waiting/), /^connected/);
  await a.page.waitForFunction(() => document.querySelector('[data-testid=views-behind]')?.textContent === 'views current');
  const exportA = await exportLog(a, 'a.ndjson');
  const lines = exportA.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
  assert.deepEqual(lines.map((e) => [Number(e.sequence), e.id]), events(0, 300).map((e, i) => [i + 1, e.event.id]), 'the server\'s order and ids');

  // A second browser joins late and downloads the same log.
  const contextB = await env.browser.newContext();
  const b = await new LivePage(await contextB.newPage()).open(env.url);
  await connectTo(b, server.url);
  await b.until('event-count', 'n === 300');
  await statusMatches(b, /^connected.*300 received/);
  assert.equal(await exportLog(b, 'b.ndjson'), exportA, 'both exports equal, byte for byte');

  // Writing from the browser is refused in words; nothing is written.
  await a.go('live');
  await a.page.getByTestId('sim-start').click();
  await a.page.waitForFunction(() => /shared log “team”/.test(document.querySelector('[data-testid=error]')?.textContent ?? ''));
  await a.page.getByTestId('sim-stop').click();
  assert.equal(await a.number('event-count'), 300);

  // Only the shared log's server was reached, and nothing broke the CSP.
  assert.ok(sockets.length > 0 && sockets.every((u) => u.startsWith(server.url)), JSON.stringify(sockets));

  // Disconnected: the browser's own log, as it was.
  await a.go('settings');
  await Promise.all([a.page.waitForEvent('load'), a.page.getByTestId('shared-disconnect').click()]);
  await a.until('event-count', `n === ${own}`);
  assert.match(await a.page.getByTestId('sync-status').textContent(), /not connected/);
  w.close();
  await contextA.close();
  await contextB.close();
});

test('a server that is down, one without JetStream, and a wrong token: each says what happened; the own log untouched', async () => {
  const context = await env.browser.newContext();
  const page = await new LivePage(await context.newPage()).open(env.url);
  await page.appendDemo();
  await page.until('event-count', 'n > 0');
  const own = await page.number('event-count');
  const disconnect = async () => {
    await page.go('settings');
    await Promise.all([page.page.waitForEvent('load'), page.page.getByTestId('shared-disconnect').click()]);
    await page.until('event-count', `n === ${own}`);
  };

  await connectTo(page, `ws://127.0.0.1:${await freePort()}`);
  assert.match(await statusMatches(page, /^not connected/), /could not reach .* is nats-server running/);
  await disconnect();

  const plain = await natsServer({ jetstream: false });
  await connectTo(page, plain.url);
  assert.match(await statusMatches(page, /^not connected/), /has no JetStream/);
  await disconnect();

  const locked = await natsServer({ token: 's3cret' });
  await connectTo(page, locked.url, { token: 'wrong' });
  assert.match(await statusMatches(page, /^not connected/), /token is wrong/);
  await disconnect();
  await connectTo(page, locked.url, { token: 's3cret' });
  await statusMatches(page, /^connected/);
  await disconnect();
  assert.deepEqual(page.errors, []);
  await context.close();
});
