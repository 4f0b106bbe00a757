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
import { storedKeys } from './support.mjs';

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

/** `n`'s base64url with padding, as the object store names descriptions. */
const b64url = (s) => Buffer.from(s).toString('base64').replace(/\+/g, '-').replace(/\//g, '_');

test('a teammate attacks the models, the packs and the size limit with a raw client: a model claiming 3 GB and promoted, a model nobody registered, a forged pack, a message over 1 MB — every browser keeps syncing and a late joiner gets the same log', { timeout: 240_000 }, async () => {
  const server = await natsServer();
  const a = await joined(server.url, 'objs', { packEvents: 2000 });
  const b = await joined(server.url, 'objs');
  const w = await writer(server.port);
  await w.publish('objs', events(0, 12));
  await settled([a.page, b.page], 12);

  // A model the log registers as 3,000,000,000 bytes, and promotes.
  const spec = { algorithm: 'RandomForest', target: 'LogHours', trees: 10, max_depth: 8, min_leaf: 5, features_per_split: 0, k: 5, alpha: 1, seed: 1 };
  const trained = {
    id: 'model-99', algorithm: 'random forest', spec, features: ['prefix_len'], versions: [], format: 5, trained_to_seq: 0,
    train_cases: 1, rows: 1, rows_hash: '0000000000000000', holdout_cases: 0, holdout_rows: 0, holdout_mae_days: 0,
    baseline_mae_days: 0, seconds: 0, size_bytes: 3_000_000_000, median_h: 1,
  };
  const at = Date.UTC(2025, 0, 7);
  const ev = (id, type, data) => ({ stream: 'models', event: { id, event_type: type, schema: 1, occurred_at: at, correlation: null, causation: null, data: JSON.stringify(data), recorded_at: null } });
  await w.publish('objs', [
    ev('mt-99', 'ModelTrained', trained),
    ev('mp-99', 'ModelPromoted', { model: 'model-99', replaced: null, reason: 'manual', champion_mae_d: null, challenger_mae_d: null, outcomes: 0 }),
  ]);
  // Its description in the models' bucket says so too; and one for a model
  // the log never registered (never fetched).
  const bucket = 'retrace_models_objs';
  const made = await w.request(`$JS.API.STREAM.CREATE.OBJ_${bucket}`, {
    name: `OBJ_${bucket}`, subjects: [`$O.${bucket}.C.>`, `$O.${bucket}.M.>`], storage: 'file', num_replicas: 1,
    discard: 'new', allow_rollup_hdrs: true, allow_direct: true,
  });
  assert.ok(made?.config, JSON.stringify(made));
  const describe = (name, size) => JSON.stringify({ name, bucket, nuid: `n-${name}`, size, chunks: Math.ceil(size / 131072), digest: 'SHA-256=AAAA', metadata: { 'retrace-record': JSON.stringify({ ...trained, id: name, size_bytes: size }) } });
  await w.raw(`$O.${bucket}.M.${b64url('model-99')}`, describe('model-99', 3_000_000_000));
  await w.raw(`$O.${bucket}.M.${b64url('model-77')}`, describe('model-77', 3_000_000_000));
  await w.raw(`$O.${bucket}.C.n-model-77`, 'x'.repeat(1000));

  // A forged pack of events 1–12: the right ids at its ends, edited inside.
  const packs = 'retrace_packs_objs';
  await w.request(`$JS.API.STREAM.CREATE.OBJ_${packs}`, {
    name: `OBJ_${packs}`, subjects: [`$O.${packs}.C.>`, `$O.${packs}.M.>`], storage: 'file', num_replicas: 1,
    discard: 'new', allow_rollup_hdrs: true, allow_direct: true,
  });
  const forged = Buffer.from('not a pack at all, but the right length?');
  await w.raw(`$O.${packs}.C.forged`, forged);
  await w.raw(`$O.${packs}.M.${b64url('events-000000000001-000000000012')}`, JSON.stringify({
    name: 'events-000000000001-000000000012', bucket: packs, nuid: 'forged', size: forged.length, chunks: 1,
    digest: 'SHA-256=AAAA', metadata: { 'retrace-from': '1', 'retrace-to': '12', 'retrace-first-id': 'w-0', 'retrace-last-id': 'w-11' },
  }));

  // A message over the server's limit: refused by the server, not by a browser.
  // (It closes that client's connection: its write fails or goes unanswered.)
  const big = await writer(server.port);
  const outcome = await Promise.race([
    big.raw('retrace.objs.case-w-1', 'x'.repeat(1_200_000), 'too-big').then(() => 'answered', (e) => e.code),
    new Promise((ok) => { setTimeout(() => ok('no answer'), 5_000).unref(); }),
  ]);
  assert.ok(big.errors.some((e) => /Maximum Payload/i.test(e)) || outcome !== 'answered', `${outcome} ${JSON.stringify(big.errors)}`);

  // The log goes on: both browsers write, and see each other's writes.
  await a.page.appendDemo();
  await settled([a.page, b.page], 15);
  await b.page.appendDemo();
  await settled([a.page, b.page], 16);
  // The promoted model's bytes never came: nobody predicts with it, and
  // nothing was fetched for a model the log never named.
  for (const x of [a, b]) {
    const stored = await storedKeys(x.page.page, 'models', 'retrace-shared-objs');
    assert.deepEqual(stored, [], 'no model bytes taken from the server');
  }

  // A late joiner reads past the forged pack and gets the same log.
  const c = await joined(server.url, 'objs');
  await settled([c.page], 16);
  const exportA = await exportLog(a.page, 'objs-a.ndjson');
  assert.equal(await exportLog(b.page, 'objs-b.ndjson'), exportA);
  assert.equal(await exportLog(c.page, 'objs-c.ndjson'), exportA);
  w.close();
  await leave(a, b, c);
});
