// A real nats-server for the shared-log tests (the one `make test`
// installs from PyPI), started on loopback ports with JetStream and a
// WebSocket listener, and what the tests do with it: connect a browser,
// write as another client would, wait for browsers to settle, export.
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

/** The browser and the app's server for these tests, and a scratch folder; `closeShared` ends them and every nats-server started. */
export async function openShared() {
  env = await start();
  dir = await mkdtemp(join(tmpdir(), 'retrace-shared-'));
  return { env, dir };
}

export async function closeShared() {
  for (const s of servers) s.kill();
  await env?.stop();
}

export function freePort() {
  return new Promise((ok) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

/** Wait until something listens on `port`. */
export async function listening(port) {
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

/**
 * A nats-server started with a configuration file of the project's
 * (`tools/nats/team.conf`), its ports, store and passwords given through
 * the environment as the file asks.
 */
export async function natsServerFrom(file, passwords) {
  const [port, ws] = [await freePort(), await freePort()];
  const store = await mkdtemp(join(dir, 'js-'));
  const child = spawn(NATS, ['-c', file], {
    stdio: 'ignore',
    env: {
      ...process.env,
      RETRACE_NATS_PORT: String(port),
      RETRACE_WS_PORT: String(ws),
      RETRACE_NATS_STORE: store,
      RETRACE_ADMIN_PASSWORD: passwords.admin,
      RETRACE_WRITER_PASSWORD: passwords.writer,
      RETRACE_VIEWER_PASSWORD: passwords.viewer,
    },
  });
  servers.push(child);
  await listening(ws);
  return { port, url: `ws://127.0.0.1:${ws}`, process: child };
}

/** A nats-server with a WebSocket listener; `jetstream`, `token` as asked. */
export async function natsServer({ jetstream = true, token, users, compression = true } = {}) {
  const [port, ws] = [await freePort(), await freePort()];
  const store = await mkdtemp(join(dir, 'js-'));
  const conf = join(store, 'nats.conf');
  await writeFile(conf, [
    `listen: 127.0.0.1:${port}`,
    jetstream ? `jetstream { store_dir: "${store}" }` : '',
    token ? `authorization { token: "${token}" }` : '',
    users ? `authorization { users: ${JSON.stringify(users)} }` : '',
    `websocket { listen: "127.0.0.1:${ws}", no_tls: true, compression: ${compression} }`,
  ].join('\n'));
  const child = spawn(NATS, ['-c', conf], { stdio: 'ignore' });
  servers.push(child);
  await listening(ws);
  return { port, url: `ws://127.0.0.1:${ws}`, process: child, store };
}

/**
 * A writer speaking the NATS protocol over TCP: publishes Retrace events
 * (a stream and its event) to the shared log's subjects, each with its id.
 */
export async function writer(port, { user, pass } = {}) {
  const socket = connect(port, '127.0.0.1');
  const errors = [];
  // A server that closes the connection (a message over its limit, say) is
  // one of the things a test may cause: recorded, not thrown.
  socket.on('error', (e) => errors.push(`socket: ${e.code ?? e.message}`));
  let buffered = Buffer.alloc(0);
  const waiters = [];
  const replies = new Map();
  socket.on('data', (d) => {
    buffered = Buffer.concat([buffered, d]);
    let i;
    while ((i = buffered.indexOf('\r\n')) >= 0) {
      const line = buffered.subarray(0, i).toString('utf8');
      if (line.startsWith('MSG ')) {
        // MSG <subject> <sid> [reply] <bytes>: wait for the whole payload.
        const parts = line.split(' ');
        const size = Number(parts[parts.length - 1]);
        if (buffered.length < i + 2 + size + 2) break;
        const payload = buffered.subarray(i + 2, i + 2 + size).toString('utf8');
        buffered = buffered.subarray(i + 2 + size + 2);
        replies.get(parts[1])?.(payload);
        replies.delete(parts[1]);
        continue;
      }
      buffered = buffered.subarray(i + 2);
      if (line.startsWith('-ERR')) errors.push(line);
      if (line === 'PING') socket.write('PONG\r\n');
      if (line === 'PONG') waiters.shift()?.();
    }
  });
  let sids = 0;
  const ping = () => new Promise((ok) => { waiters.push(ok); socket.write('PING\r\n'); });
  const auth = user ? `,"user":${JSON.stringify(user)},"pass":${JSON.stringify(pass)}` : '';
  socket.write(`CONNECT {"verbose":false,"pedantic":false,"headers":true,"protocol":1,"lang":"node","version":"0"${auth}}\r\n`);
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
    /** Publish raw bytes to `subject`, with a `Nats-Msg-Id` if given: what any NATS client may send. */
    async raw(subject, payload, msgId) {
      const body = Buffer.from(payload);
      if (msgId === undefined) {
        socket.write(Buffer.concat([Buffer.from(`PUB ${subject} ${body.length}\r\n`), body, Buffer.from('\r\n')]));
      } else {
        const headers = Buffer.from(`NATS/1.0\r\nNats-Msg-Id: ${msgId}\r\n\r\n`);
        socket.write(Buffer.concat([
          Buffer.from(`HPUB ${subject} ${headers.length} ${headers.length + body.length}\r\n`), headers, body, Buffer.from('\r\n'),
        ]));
      }
      await ping();
    },
    /** The server's `-ERR` lines so far (permission violations among them). */
    errors,
    /** Subscribe to `subject` (the server may refuse: see `errors`). */
    async subscribe(subject) {
      socket.write(`SUB ${subject} ${++sids}\r\n`);
      await ping();
    },
    /** A request (JetStream's API) and its answer, parsed; null when none comes within 3 s. */
    async request(subject, payload, inboxPrefix = '_INBOX') {
      const sid = ++sids;
      const inbox = `${inboxPrefix}.raw.${sid}`;
      const answered = new Promise((ok) => {
        replies.set(inbox, ok);
        setTimeout(() => ok(null), 3_000).unref();
      });
      const body = Buffer.from(JSON.stringify(payload));
      socket.write(`SUB ${inbox} ${sid}\r\n`);
      socket.write(Buffer.concat([Buffer.from(`PUB ${subject} ${inbox} ${body.length}\r\n`), body, Buffer.from('\r\n')]));
      const answer = await answered;
      return answer === null ? null : JSON.parse(answer);
    },
    close() { socket.end(); },
  };
}

/** `n` events of `cases` service cases, as a writer elsewhere would record them. */
export function events(from, n) {
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

export async function exportLog(page, name) {
  await page.go('log');
  const p = page.page;
  await p.waitForFunction(() => !document.querySelector('[data-testid=export-log]')?.disabled);
  const [download] = await Promise.all([p.waitForEvent('download'), p.getByTestId('export-log').click()]);
  const file = join(dir, name);
  await download.saveAs(file);
  return readFile(file, 'utf8');
}

export async function connectTo(page, url, { log = 'team', token = '', passphrase = '' } = {}) {
  await page.go('settings');
  const p = page.page;
  await p.getByTestId('shared-server').fill(url);
  await p.getByTestId('shared-log').fill(log);
  await p.getByTestId('shared-token').fill(token);
  await p.getByTestId('shared-passphrase').fill(passphrase);
  await Promise.all([p.waitForEvent('load'), p.getByTestId('shared-connect').click()]);
  await p.getByTestId('event-count').waitFor();
}

/**
 * Wait until the sync's connection is `link` (`connected`, `offline`,
 * `stopped`: the status line's `data-link`); returns the status line's words.
 */
export async function linkIs(page, link, timeout = 30_000) {
  await page.page.waitForFunction((l) => document.querySelector('[data-testid=sync-status]')?.dataset.link === l, link, { timeout });
  return page.page.getByTestId('sync-status').textContent();
}

export const HELPDESK = '../shared/data/helpdesk.csv';

/**
 * A browser in its own profile, connected to `log` on `url`; with
 * `packEvents`, it packs the log on the server every that many events; with
 * `passphrase`, as a team member of an encrypted log (`expect`: the status
 * to wait for).
 */
export async function joined(url, log, { packEvents, passphrase = '', link = 'connected', expect } = {}) {
  const context = await env.browser.newContext({ acceptDownloads: true });
  if (packEvents) await context.addInitScript((n) => localStorage.setItem('retrace-pack-events', String(n)), packEvents);
  const page = await new LivePage(await context.newPage()).open(env.url);
  await connectTo(page, url, { log, passphrase });
  const said = await linkIs(page, link);
  if (expect) assert.match(said, expect);
  return { context, page };
}

/**
 * The sync's state as numbers, from the status line's `data-*` attributes:
 * link, connected, readOnly, heldBack, packed, fromPacks, onServer, received,
 * sent, waiting, outbox, conflicts, refused — and `said`, the line's words
 * read at the same moment.
 */
export function counts(page) {
  return page.page.evaluate(() => {
    const d = document.querySelector('[data-testid=sync-status]')?.dataset ?? {};
    const n = (v) => (v === undefined || v === '' ? null : Number(v));
    return {
      link: d.link, connected: d.connected === 'true', readOnly: d.readOnly === 'true', heldBack: n(d.heldBack),
      packed: n(d.packed), fromPacks: n(d.fromPacks), onServer: n(d.onServer), received: n(d.received), sent: n(d.sent),
      waiting: n(d.waiting), outbox: n(d.outbox), conflicts: n(d.conflicts), refused: n(d.refused),
      shown: Number(document.querySelector('[data-testid=event-count]')?.textContent.replace(/\D/g, '')),
      said: document.querySelector('[data-testid=sync-status]')?.textContent ?? '',
    };
  });
}

/** Wait until `page`'s sync numbers satisfy `ok(counts)`; returns them. */
export async function countsUntil(page, ok, what, timeout = 60_000) {
  const end = Date.now() + timeout;
  for (;;) {
    const c = await counts(page);
    if (ok(c)) return c;
    if (Date.now() > end) throw new Error(`${what}: ${JSON.stringify(c)} — ${await page.page.getByTestId('sync-status').textContent()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Wait until every page shows `n` events and has nothing left to send or receive. */
export async function settled(pages, n) {
  for (const p of pages) {
    await countsUntil(p, (c) => c.connected && c.shown === n && c.onServer === n && c.waiting === 0 && c.outbox === 0, `waiting for ${n} events`);
  }
}

/**
 * Wait until `page` writes nothing more: its outbox empty, its count the
 * server's, and both unchanged over two seconds (a simulator just stopped
 * may still have events under way). Returns the count.
 */
export async function quiet(page) {
  const read = async () => {
    const c = await counts(page);
    return c.connected && c.outbox === 0 && c.waiting === 0 && c.onServer === c.shown ? c.shown : -1;
  };
  let last = -2;
  for (let i = 0; i < 120; i++) {
    const now = await read();
    if (now >= 0 && now === last) return now;
    last = now;
    await new Promise((r) => setTimeout(r, 2_000));
  }
  throw new Error(`the page never went quiet: ${await page.page.getByTestId('sync-status').textContent()}`);
}

/** Close each browser, which must have shown no error. */
export async function leave(...browsers) {
  for (const x of browsers) {
    assert.deepEqual(x.page.errors, []);
    await x.context.close();
  }
}

export function parse(ndjson) {
  return ndjson.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
}

