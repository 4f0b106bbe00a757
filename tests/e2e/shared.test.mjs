// A shared log through a real nats-server (the one `make test` installs
// from PyPI), started here with JetStream and a WebSocket listener on
// loopback ports: a browser connects (Settings → Shared log), a writer
// speaking the NATS protocol pushes events, the browser follows them live;
// a second browser joins late and downloads the same log — both exports
// equal byte for byte; the browser's own log is untouched. Browsers write:
// a simulator and an import at once, a browser offline for 1,000 events,
// two browsers writing one case (a conflict, shown and settled). A server
// that is down, one without JetStream and a wrong token each say so.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LivePage } from './support.mjs';
import {
  openShared, closeShared, natsServer, writer, events, exportLog, connectTo, linkIs,
  joined, settled, leave, parse, freePort, HELPDESK, quiet, counts, countsUntil,
} from './nats.mjs';

let env;
let dir;
before(async () => {
  ({ env, dir } = await openShared());
});
after(closeShared);

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
  const status = await linkIs(a, 'connected');
  assert.match(status, /shared log “team”, 0 events on the server/);
  assert.equal(await a.number('event-count'), 0, 'the shared log starts empty');

  // A writer elsewhere pushes 300 events: the browser follows them live.
  const w = await writer(server.port);
  await w.publish('team', events(0, 150));
  await a.until('event-count', 'n === 150');
  await w.publish('team', events(150, 150));
  await a.until('event-count', 'n === 300');
  const c300 = await countsUntil(a, (c) => c.onServer === 300 && c.waiting === 0, 'A has all 300');
  assert.deepEqual([c300.connected, c300.received, c300.sent, c300.outbox], [true, 300, 0, 0]);
  await a.page.waitForFunction(() => document.querySelector('[data-testid=views-behind]')?.textContent === 'views current');
  const exportA = await exportLog(a, 'a.ndjson');
  const lines = exportA.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
  assert.deepEqual(lines.map((e) => [Number(e.sequence), e.id]), events(0, 300).map((e, i) => [i + 1, e.event.id]), 'the server\'s order and ids');

  // A second browser joins late and downloads the same log.
  const contextB = await env.browser.newContext();
  const b = await new LivePage(await contextB.newPage()).open(env.url);
  await connectTo(b, server.url);
  await b.until('event-count', 'n === 300');
  await countsUntil(b, (c) => c.connected && c.received === 300, 'B received 300');
  assert.equal(await exportLog(b, 'b.ndjson'), exportA, 'both exports equal, byte for byte');

  // A browser writes: the event goes through the server to both.
  await a.appendDemo();
  await a.until('event-count', 'n === 301');
  await b.until('event-count', 'n === 301');
  await countsUntil(a, (c) => c.sent === 1 && c.outbox === 0, 'A sent its event');
  assert.equal(await exportLog(a, 'a2.ndjson'), await exportLog(b, 'b2.ndjson'));

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

test('a server that is down, one without JetStream, a wrong token, and one that does not compress: each says what happened; the own log untouched', async () => {
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
  // Down may mean "not yet": it says so and keeps trying.
  assert.match(await linkIs(page, 'offline'), /could not reach .* is nats-server running.*trying again/);
  await disconnect();

  const plain = await natsServer({ jetstream: false });
  await connectTo(page, plain.url);
  assert.match(await linkIs(page, 'stopped'), /has no JetStream/);
  await disconnect();

  const locked = await natsServer({ token: 's3cret' });
  await connectTo(page, locked.url, { token: 'wrong' });
  assert.match(await linkIs(page, 'stopped'), /token \(or user:password\) is wrong/);
  await disconnect();
  await connectTo(page, locked.url, { token: 's3cret' });
  assert.doesNotMatch(await linkIs(page, 'connected'), /does not compress/);
  await disconnect();

  // Works, and says why it is slower than it could be.
  const uncompressed = await natsServer({ compression: false });
  await connectTo(page, uncompressed.url);
  assert.match(await linkIs(page, 'connected'), /the server does not compress its WebSocket messages/);
  await disconnect();
  assert.deepEqual(page.errors, []);
  await context.close();
});

test('two browsers write at once — a simulator and an import of helpdesk.csv — and a third joins late, from the packs they made: one log in all three, byte for byte', async () => {
  const server = await natsServer();
  // The writers pack the log on the server every 2,000 events (at least).
  const A = await joined(server.url, 'busy', { packEvents: 2000 });
  const B = await joined(server.url, 'busy', { packEvents: 2000 });
  const [a, b] = [A.page, B.page];
  await a.go('live');
  await a.page.getByTestId('sim-rate').fill('500');
  await a.page.getByTestId('sim-start').click();
  await a.until('event-count', 'n >= 200');
  await b.choose(HELPDESK);
  const imported = await b.importAndWait();
  const m = imported.match(/Imported (\d+) cases \((\d+) events/);
  assert.ok(m, imported);
  await a.until('event-count', `n >= ${Number(m[2])}`, 120_000);
  await a.page.getByTestId('sim-stop').click();
  const total = await quiet(a);
  await settled([a, b], total);
  assert.ok(total > Number(m[2]));

  const exportA = await exportLog(a, 'busy-a.ndjson');
  assert.equal(await exportLog(b, 'busy-b.ndjson'), exportA, 'the writers hold one log, byte for byte');
  const lines = parse(exportA);
  assert.equal(new Set(lines.map((e) => e.id)).size, lines.length, 'no event twice');
  assert.deepEqual(lines.map((e) => Number(e.sequence)), lines.map((_, i) => i + 1), 'seq is the server\'s sequence, no gaps');
  const fromImport = lines.filter((e) => /^case-helpdesk-\d+$/.test(e.subject)).length;
  assert.equal(fromImport, Number(m[2]), 'every imported event, once');
  assert.ok(lines.some((e) => e.type === 'ImportCompleted'));
  assert.ok(lines.length - fromImport > 200, 'the simulator\'s events too');

  // The import is packed (a pack ends only after a whole import).
  const importEnd = Math.max(...lines.filter((e) => /^case-helpdesk-\d+$/.test(e.subject)).map((e) => Number(e.sequence)));
  const { packed, said } = await countsUntil(a, (c) => c.packed >= importEnd, `the import (to ${importEnd}) packed`);
  assert.match(said, new RegExp(`${packed} events packed on the server`), 'the status line says it too');

  // A third browser joins late: it reads the packs, then the rest.
  const C = await joined(server.url, 'busy');
  await settled([C.page], lines.length);
  const { fromPacks } = await counts(C.page);
  assert.ok(fromPacks >= importEnd, `${fromPacks} events read from packs, the import ends at ${importEnd}`);
  assert.equal(await exportLog(C.page, 'busy-c.ndjson'), exportA, 'a late joiner gets the same log');
  await leave(A, B, C);
});

test('a browser offline writes 1,000 events and comes back: both browsers converge, nothing lost or doubled', async () => {
  const server = await natsServer();
  const A = await joined(server.url, 'away');
  const B = await joined(server.url, 'away');
  const [a, b] = [A.page, B.page];
  await B.context.setOffline(true);
  await linkIs(b, 'offline');
  // B writes while away; A writes too.
  await b.go('live');
  await b.page.getByTestId('sim-rate').fill('1000');
  await b.page.getByTestId('sim-start').click();
  await countsUntil(b, (c) => !c.connected && c.outbox >= 1000, 'B offline with 1,000 events waiting');
  await b.page.getByTestId('sim-stop').click();
  await a.appendDemo();
  await a.until('event-count', 'n === 1');
  assert.equal(await b.number('event-count'), 0, 'nothing of B\'s reached its log while away');
  const { outbox: waiting } = await counts(b);
  assert.ok(waiting >= 1000, `${waiting} waiting`);

  await B.context.setOffline(false);
  // The status said how many waited when it last tried the server; the
  // simulator may have committed more since. B's outbox drains whole: both
  // browsers go quiet at one count, at least that many and A's event.
  const n = await quiet(b);
  assert.equal(await quiet(a), n, 'both browsers hold the same count');
  assert.ok(n >= waiting + 1, `${n} events, ${waiting} said to wait`);
  const exportA = await exportLog(a, 'away-a.ndjson');
  assert.equal(await exportLog(b, 'away-b.ndjson'), exportA);
  const lines = parse(exportA);
  assert.equal(lines.length, n);
  assert.equal(new Set(lines.map((e) => e.id)).size, n, 'every event once');
  assert.match(await b.verify(), /seq and versions contiguous, every event id unique/);
  await leave(A, B);
});

test('two browsers write to one case at once: one conflict, shown; kept after theirs, the log is consistent', async () => {
  const server = await natsServer();
  const A = await joined(server.url, 'clash');
  const B = await joined(server.url, 'clash');
  const [a, b] = [A.page, B.page];
  // One file name (a case's stream is named after its file and case id),
  // different contents.
  const fileA = join(await mkdtemp(join(dir, 'a-')), 'clash.csv');
  const fileB = join(await mkdtemp(join(dir, 'b-')), 'clash.csv');
  await writeFile(fileA, 'case,activity,timestamp\nc1,Diagnose,2025-01-06 08:00:00\nc1,Repair,2025-01-06 10:00:00\n');
  await writeFile(fileB, 'case,activity,timestamp\nc1,Call back,2025-01-06 09:00:00\nc2,Diagnose,2025-01-06 09:30:00\n');
  // B is away while both write to case c1.
  await B.context.setOffline(true);
  await linkIs(b, 'offline');
  await a.choose(fileA);
  assert.match(await a.importAndWait(), /Imported 1 cases/);
  await b.choose(fileB);
  assert.match(await b.importAndWait(), /Imported 2 cases/);
  // (the import goes into the outbox as one unit: once the count is not 0, it is all of it)
  const { outbox: bOnly } = await countsUntil(b, (c) => !c.connected && c.outbox > 0, 'B\'s import waits offline');
  const { onServer: aOnly } = await countsUntil(a, (c) => c.connected && c.outbox === 0, 'A\'s import is on the server');
  await B.context.setOffline(false);

  // One conflict, on case c1; c2 and the import's own record go through.
  await b.go('settings');
  await b.page.getByTestId('sync-conflict').waitFor();
  assert.equal(await b.page.getByTestId('sync-conflict').count(), 1);
  assert.match(await b.page.getByTestId('sync-conflict').textContent(), /Conflict on case-clash-c1: somebody else wrote to it first/);
  await countsUntil(b, (c) => c.connected && c.conflicts === 1, 'B shows one case in conflict');
  // Keep mine: B's events of c1 follow A's.
  await b.page.getByTestId('sync-keep').click();
  await b.page.getByTestId('sync-conflict').waitFor({ state: 'detached' });
  // Every event of both ends up on the server once: A's, then all of B's
  // (its status said "0 in the outbox" already while c1 was held back, so
  // the total is counted, not read off it).
  const total = aOnly + bOnly;
  await settled([a, b], total);
  const exportA = await exportLog(a, 'clash-a.ndjson');
  assert.equal(await exportLog(b, 'clash-b.ndjson'), exportA);
  const c1 = parse(exportA).filter((e) => e.subject === 'case-clash-c1');
  assert.ok(c1.length > 3, `${c1.length} events of c1`);
  for (const p of [a, b]) assert.match(await p.verify(), /seq and versions contiguous, every event id unique/);
  await leave(A, B);
});

test('an import reaches others whole: while the importing browser is away halfway, the others show none of it', async () => {
  const server = await natsServer();
  const A = await joined(server.url, 'whole');
  const B = await joined(server.url, 'whole');
  const [a, b] = [A.page, B.page];
  await a.appendDemo();
  await settled([a, b], 1);
  await b.choose(HELPDESK);
  const m = (await b.importAndWait()).match(/Imported (\d+) cases \((\d+) events/);
  // Part of the import is on the server: A holds it back.
  const held = await countsUntil(a, (c) => c.heldBack > 0, 'part of an import held back');
  assert.match(held.said, new RegExp(`holding ${held.heldBack} events back until an import is complete`));
  await B.context.setOffline(true);
  await linkIs(b, 'offline');
  const seen = await a.page.evaluate(() => [
    Number(document.querySelector('[data-testid=event-count]').textContent),
    document.querySelector('[data-testid=sync-status]').textContent,
    Number(document.querySelector('[data-testid=sync-status]').dataset.onServer),
  ]);
  assert.equal(seen[0], 1, 'nothing of the import is in A\'s log');
  const onServer = seen[2];
  assert.ok(onServer > 1 && onServer < Number(m[2]), `${onServer} events on the server: the import stopped halfway (${seen[1]})`);
  assert.match(seen[1], /holding/);
  await a.go('live');
  assert.equal(await a.number('stats-events'), 1, 'nor in its views');

  // B comes back and finishes: A gets all of it at once.
  await B.context.setOffline(false);
  const total = 1 + Number(m[2]) + 1;
  await settled([a, b], total);
  const lines = parse(await exportLog(a, 'whole-a.ndjson'));
  assert.equal(lines.filter((e) => /^case-helpdesk-\d+$/.test(e.subject)).length, Number(m[2]));
  assert.equal(await exportLog(b, 'whole-b.ndjson'), lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
  await leave(A, B);
});

test('a read-only user follows the shared log; a write is not sent, and the page says why', async () => {
  const server = await natsServer({
    users: [
      { user: 'ana', password: 'write', permissions: { publish: ['>'], subscribe: ['_INBOX_ana.>'] } },
      {
        user: 'viewer', password: 'read', permissions: {
          publish: ['$JS.API.STREAM.INFO.>', '$JS.API.CONSUMER.CREATE.>', '$JS.FC.>'],
          subscribe: ['_INBOX_viewer.>'],
        },
      },
    ],
  });
  const contextA = await env.browser.newContext({ acceptDownloads: true });
  const a = await new LivePage(await contextA.newPage()).open(env.url);
  await connectTo(a, server.url, { log: 'ro', token: 'ana:write' });
  await linkIs(a, 'connected');
  await a.appendDemo();
  await settled([a], 1);

  const contextV = await env.browser.newContext({ acceptDownloads: true });
  const v = await new LivePage(await contextV.newPage()).open(env.url);
  await connectTo(v, server.url, { log: 'ro', token: 'viewer:read' });
  await settled([v], 1);
  // A writer's event still reaches the viewer.
  await a.appendDemo();
  await settled([a, v], 2);
  // The viewer writes: the server refuses it, and the page says so.
  await v.appendDemo();
  const { said } = await countsUntil(v, (c) => c.readOnly, 'read only');
  assert.match(said, /this user may only read this log/);
  await v.appendDemo();
  await v.page.waitForFunction(() => /may only read the shared log “ro”/.test(document.querySelector('[data-testid=error]')?.textContent ?? ''));
  await a.appendDemo();
  await settled([a], 3);
  await v.until('event-count', 'n === 3');
  assert.equal(await exportLog(v, 'ro-v.ndjson'), await exportLog(a, 'ro-a.ndjson'), 'nothing of the viewer\'s in the log');
  await contextA.close();
  await contextV.close();
});

test('a browser uploads its own log into a new, empty shared log in one action; a second browser gets the same events', async () => {
  const server = await natsServer();
  const context = await env.browser.newContext({ acceptDownloads: true });
  const a = await new LivePage(await context.newPage()).open(env.url);
  await a.choose(HELPDESK);
  await a.importAndWait();
  const own = await a.number('event-count');
  const ownLines = parse(await exportLog(a, 'own.ndjson'));

  await connectTo(a, server.url, { log: 'upload' });
  await countsUntil(a, (c) => c.connected && c.onServer === 0, 'connected to an empty log');
  await a.go('settings');
  await a.page.getByTestId('shared-upload').click();
  await a.page.waitForFunction(() => /in the outbox as one unit/.test(document.querySelector('[data-testid=shared-upload-status]')?.textContent ?? ''));
  await settled([a], own);
  assert.ok(await a.page.getByTestId('shared-upload').isDisabled(), 'only into an empty shared log');

  const B = await joined(server.url, 'upload');
  await settled([B.page], own);
  const shared = await exportLog(a, 'upload-a.ndjson');
  assert.equal(await exportLog(B.page, 'upload-b.ndjson'), shared);
  // The same events as the own log: ids, streams, versions, payloads and
  // times; only their places in the log are the server's.
  const key = (e) => { const { sequence, ...rest } = e; return JSON.stringify(rest); };
  assert.deepEqual(parse(shared).map(key).sort(), ownLines.map(key).sort());
  assert.deepEqual(a.errors, []);
  await B.context.close();
  await context.close();
});

test('a pack on the server that does not match the log is not used: the joining browser reads the stream and gets the true log', async () => {
  const server = await natsServer();
  const A = await joined(server.url, 'forged', { packEvents: 100 });
  const w = await writer(server.port);
  await w.publish('forged', events(0, 300));
  await settled([A.page], 300);
  // A packs what it received: at least events 1..100.
  await countsUntil(A.page, (c) => c.packed > 0, 'a pack on the server');
  // Someone else then describes a pack of the whole log whose last event is
  // not the log's (as a server whose log was replaced would hold).
  const { natsWriter } = await import('../../bench/nats_writer.mjs');
  const forger = await natsWriter(server.port, 'forger');
  const name = 'events-000000000001-000000000300';
  const ack = await forger.publish(`$O.retrace_packs_forged.M.${Buffer.from(name).toString('base64url')}=`, 'forged-meta', null, {
    name, bucket: 'retrace_packs_forged', nuid: 'forged', size: 10, chunks: 1,
    digest: 'SHA-256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU=',
    metadata: { 'retrace-from': '1', 'retrace-to': '300', 'retrace-first-id': 'w-0', 'retrace-last-id': 'not-w-299' },
  });
  assert.ok(!ack.error, JSON.stringify(ack));
  forger.close();

  // The joining browser keeps every status line it shows.
  const context = await env.browser.newContext({ acceptDownloads: true });
  await context.addInitScript(() => {
    window.said = [];
    new MutationObserver(() => {
      const t = document.querySelector('[data-testid=sync-status]')?.textContent;
      if (t && window.said.at(-1) !== t) window.said.push(t);
    }).observe(document, { subtree: true, childList: true, characterData: true });
  });
  const B = { context, page: await new LivePage(await context.newPage()).open(env.url) };
  await connectTo(B.page, server.url, { log: 'forged' });
  await settled([B.page], 300);
  const said = await B.page.page.evaluate(() => window.said);
  assert.ok(said.some((t) => t.includes(`pack ${name} does not match the log on the server at event 300; reading the log's events one by one instead`)), said.join('\n'));
  assert.equal((await counts(B.page)).fromPacks, 0, 'the forged pack reaches furthest, and is refused: nothing is read from packs');
  assert.equal(await exportLog(B.page, 'forged-b.ndjson'), await exportLog(A.page, 'forged-a.ndjson'));
  w.close();
  await leave(A, B);
});
