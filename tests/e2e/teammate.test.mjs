// A teammate who can write to the shared log's server publishes what they
// like with a raw NATS client — no Retrace in between: bytes that are not
// JSON, JSON that is no event, an event on another case's subject, an id
// header that is not the event's id, a payload that does not match its type,
// and deletes a message on the server. Two browsers follow the log while it
// happens and a third joins afterwards: every browser keeps syncing, each
// bad message keeps its place as a refusal named on the Shared log card,
// and the copies stay equal byte for byte.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  openShared, closeShared, natsServer, writer, events, exportLog, joined, settled, leave, parse,
} from './nats.mjs';

before(openShared);
after(closeShared);

/** The refusals the Shared log card lists, once it lists `n` (the views follow the log a moment later). */
async function refusedOf(page, n) {
  await page.page.waitForFunction((k) => document.querySelectorAll('[data-testid=sync-refused]').length >= k, n, { timeout: 30_000 });
  return page.page.evaluate(() => [...document.querySelectorAll('[data-testid=sync-refused]')]
    .map((li) => [Number(li.dataset.seq), li.textContent]));
}

test('a teammate publishing garbage with a raw client stops nobody: each bad message is a refusal in every copy, named on the card', { timeout: 240_000 }, async () => {
  const server = await natsServer();
  // The log's stream made by hand, as an older Retrace or another tool would,
  // without denying deletes (Retrace now makes it append-only): so a message
  // can be deleted below.
  const w = await writer(server.port);
  const made = await w.request('$JS.API.STREAM.CREATE.RETRACE_TEAM', {
    name: 'RETRACE_TEAM', subjects: ['retrace.team.*'], storage: 'file', num_replicas: 1,
    duplicate_window: 86_400_000_000_000, allow_direct: true,
  });
  assert.ok(made?.config, JSON.stringify(made));
  const a = await joined(server.url, 'team');
  const b = await joined(server.url, 'team');
  const good = events(0, 30);
  await w.publish('team', good.slice(0, 15));
  await settled([a.page, b.page], 15);

  // Five lies, one after the other (sequences 16 to 20).
  const fake = good[15];
  const as = (stream, event) => JSON.stringify({ stream, event });
  await w.raw('retrace.team.case-w-5', 'this is not an event {', 'x-1');
  await w.raw('retrace.team.case-w-5', JSON.stringify({ hello: 'world' }), 'x-2');
  await w.raw('retrace.team.case-w-9', as(fake.stream, { ...fake.event, id: 'elsewhere' }), 'elsewhere');
  await w.raw(`retrace.team.${fake.stream}`, as(fake.stream, { ...fake.event, id: 'mine' }), 'not-mine');
  await w.raw(`retrace.team.${fake.stream}`, as(fake.stream, { ...fake.event, id: 'bad-payload', data: '{"no":"case"}' }), 'bad-payload');
  // Then the log goes on: the rest of the good events, and each browser writes.
  await w.publish('team', good.slice(15));
  await settled([a.page, b.page], 35);
  await a.page.appendDemo();
  await settled([a.page, b.page], 36);
  await b.page.appendDemo();
  await settled([a.page, b.page], 37);

  for (const x of [a, b]) {
    const refused = await refusedOf(x.page, 5);
    assert.deepEqual(refused.map(([seq]) => seq), [16, 17, 18, 19, 20], JSON.stringify(refused));
    assert.match(refused[0][1], /^event 16: not a Retrace event/);
    assert.match(refused[1][1], /^event 17: not a Retrace event/);
    assert.match(refused[2][1], /belongs on retrace\.team\.case-w-5/);
    assert.match(refused[3][1], /Nats-Msg-Id \(not-mine\) is not its id \(mine\)/);
    assert.match(refused[4][1], /payload does not match its type/);
    assert.match(await x.page.page.getByTestId("sync-status").textContent(), /5 messages refused here/);
    assert.match(await x.page.page.getByTestId("sync-refused-total").textContent(), /^5 messages on the server refused/);
  }
  const exportA = await exportLog(a.page, 'teammate-a.ndjson');
  assert.equal(await exportLog(b.page, 'teammate-b.ndjson'), exportA, 'both copies equal, byte for byte');
  const lines = parse(exportA);
  assert.equal(lines.length, 37);
  assert.deepEqual(lines.filter((e) => e.type === 'MessageRefused').map((e) => Number(e.sequence)), [16, 17, 18, 19, 20]);
  assert.deepEqual(lines.filter((e) => e.id.startsWith('w-')).map((e) => e.id), good.map((e) => e.event.id), 'every true event, once');

  // A message deleted on the server (a good one, sequence 3): a browser
  // joining afterwards is not stopped by the hole either.
  const deleted = await w.request('$JS.API.STREAM.MSG.DELETE.RETRACE_TEAM', { seq: 3 });
  assert.equal(deleted.success, true, JSON.stringify(deleted));
  const c = await joined(server.url, 'team');
  await settled([c.page], 37);
  const refusedC = await refusedOf(c.page, 6);
  assert.deepEqual(refusedC.map(([seq]) => seq), [3, 16, 17, 18, 19, 20]);
  assert.match(refusedC[0][1], /no longer holds event 3/);
  const linesC = parse(await exportLog(c.page, 'teammate-c.ndjson'));
  assert.deepEqual(
    linesC.filter((e) => Number(e.sequence) !== 3),
    lines.filter((e) => Number(e.sequence) !== 3),
    'the late joiner has the same log but for the deleted event',
  );
  // And it writes: its event reaches the others.
  await c.page.appendDemo();
  await settled([a.page, b.page, c.page], 38);

  w.close();
  await leave(a, b, c);
});
