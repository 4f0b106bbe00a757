// One loop for a team on a shared log: the browser holding the lease (a
// key in a JetStream KV bucket on a real nats-server) drives the feedback
// loop; another browser that wants it is told who drives it and waits.
// The driver's models reach the other browser's registry through the
// server's object store. Then the driver is closed mid-run: the lease runs
// out on the server, the other browser takes it within its time to live,
// its engine predicts with the champion whose bytes it downloaded, and no
// event is predicted twice — checked on an export of the shared log.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { storedKeys } from './support.mjs';
import { openShared, closeShared, natsServer, joined, exportLog, parse, leave, writer, quiet, countsUntil } from './nats.mjs';

/** The lease's time to live on the server (`share::lease::TTL_MS`). */
const TTL_S = 10;

let env;
before(async () => {
  ({ env } = await openShared());
});
after(closeShared);

/**
 * Wait until `page` stands `standing` on the team's loop (`ours`, `theirs`,
 * `asking`, `idle`: the loop panel's `data-standing`); the panel's words
 * then must match `re`. Returns them.
 */
async function loopStanding(page, standing, re, timeout = 30_000) {
  const said = await page.page.waitForFunction(
    ({ s, src }) => {
      const el = document.querySelector('[data-testid=loop-status]');
      return el?.dataset.standing === s && new RegExp(src).test(el.textContent) ? el.textContent : null;
    },
    { s: standing, src: re.source }, { timeout, polling: 100 });
  return said.jsonValue();
}

/** `page` drives the loop: the first model after 40 closed cases, no retrain on a schedule. */
async function drive(page) {
  await page.go('live');
  await page.page.locator('summary', { hasText: 'Policy' }).click();
  await page.page.getByTestId('policy-first').fill('40');
  await page.page.getByTestId('policy-first').press('Tab');
  await page.page.getByTestId('policy-every').fill('0');
  await page.page.getByTestId('policy-every').press('Tab');
  await page.page.getByTestId('predict-toggle').check();
  await loopStanding(page, 'ours', /This browser drives the team's loop/);
}

function typeCount(page, type) {
  return page.page.evaluate((t) => {
    const text = document.querySelector('[data-testid=stats-events]')?.closest('dl')?.textContent ?? '';
    return Number((text.match(new RegExp(`${t}: (\\d+)`)) ?? [0, 0])[1]);
  }, type);
}

test('one browser drives a shared log\'s loop; closed mid-run, another takes its lease within the time to live and predicts with the downloaded champion; nothing predicted twice', async () => {
  const server = await natsServer();
  const A = await joined(server.url, 'loop');
  const B = await joined(server.url, 'loop');
  const [a, b] = [A.page, B.page];

  // A drives: the first model after 40 closed cases, no retrain on a
  // schedule (this is about the lease, not the schedule).
  await drive(a);
  // B wants the loop too: it is told who has it, and waits.
  await b.go('live');
  await b.page.locator('summary', { hasText: 'Policy' }).click();
  await b.page.getByTestId('policy-every').fill('0');
  await b.page.getByTestId('policy-every').press('Tab');
  await b.page.getByTestId('predict-toggle').check();
  await loopStanding(b, 'theirs', /drives the team's loop on this shared log; this browser shows what it records/);
  assert.equal(await b.page.getByTestId('predict-toggle').isChecked(), true);

  // B writes the cases; A's engine trains, promotes and predicts them.
  await b.page.getByTestId('sim-rate').fill('300');
  await b.page.getByTestId('sim-start').click();
  await b.page.waitForFunction(() => {
    const text = document.querySelector('[data-testid=stats-events]')?.closest('dl')?.textContent ?? '';
    return /ModelPromoted: [1-9]/.test(text) && /PredictionRecorded: \d{3,}/.test(text);
  }, null, { timeout: 120_000, polling: 200 });
  // The champion's bytes came down into B's registry from the server.
  const deadline = Date.now() + 30_000;
  while (!(await storedKeys(b.page, 'model_bytes', 'retrace-shared-loop')).includes('model-1')) {
    assert.ok(Date.now() < deadline, 'model-1\'s bytes reach B within 30 s');
    await new Promise((r) => setTimeout(r, 250));
  }
  assert.deepEqual(await storedKeys(b.page, 'models', 'retrace-shared-loop'), await storedKeys(a.page, 'models', 'retrace-shared-loop'), 'the same models in both registries');
  const before = await typeCount(b, 'PredictionRecorded');
  // Only the driver steers the loop by hand.
  assert.equal(await b.page.getByTestId('loop-train').isDisabled(), true, 'B may not train a challenger while A drives');

  // The driver goes away; its lease runs out on the server, B takes it.
  const closedAt = Date.now();
  await A.context.close();
  await loopStanding(b, 'ours', /This browser took the team's loop over/, (TTL_S + 20) * 1000);
  const took = (Date.now() - closedAt) / 1000;
  const takenAt = await b.number('event-count');
  console.log(`team loop: taken over ${took.toFixed(1)} s after the driver closed (time to live ${TTL_S} s)`);
  assert.ok(took <= TTL_S + 3, `taken within the lease's time to live: ${took.toFixed(1)} s`);
  assert.ok(took >= TTL_S / 2, `not while the driver's lease could still be live: ${took.toFixed(1)} s`);
  // B's engine predicts with the champion it downloaded.
  await b.page.waitForFunction((n) => {
    const text = document.querySelector('[data-testid=stats-events]')?.closest('dl')?.textContent ?? '';
    return Number((text.match(/PredictionRecorded: (\d+)/) ?? [0, 0])[1]) > n + 300;
  }, before, { timeout: 120_000, polling: 200 });
  await b.page.getByTestId('sim-pause').click();
  await b.go('settings');
  await countsUntil(b, (c) => c.connected && c.waiting === 0 && c.outbox === 0, 'B settles');

  const events = parse(await exportLog(b, 'team-loop.ndjson'));
  events.sort((x, y) => Number(x.sequence) - Number(y.sequence));
  events.forEach((e, i) => assert.equal(Number(e.sequence), i + 1, 'the log is contiguous'));
  assert.equal(new Set(events.map((e) => e.id)).size, events.length, 'no event written twice');
  // Served predictions by the event that caused them (id `<cause>-p<model>`).
  const served = new Map();
  const predictions = events.filter((e) => e.type === 'PredictionRecorded' && !e.data.shadow);
  for (const e of predictions) {
    const cause = e.id.slice(0, e.id.lastIndexOf('-p'));
    served.set(cause, (served.get(cause) ?? 0) + 1);
  }
  for (const [cause, n] of served) assert.equal(n, 1, `${cause} predicted ${n} times`);
  // A predicted before it closed; B, with model-1's downloaded bytes, after.
  const [byA, byB] = [predictions.filter((e) => Number(e.sequence) <= takenAt), predictions.filter((e) => Number(e.sequence) > takenAt)];
  console.log(`team loop: ${byA.length} predictions recorded before the handover, ${byB.length} after (models ${[...new Set(byB.map((e) => e.data.model))]}); ${served.size} events predicted, each once`);
  assert.ok(byA.length >= 100 && byB.length >= 100, `${byA.length} before, ${byB.length} after`);
  assert.ok(byB.some((e) => e.data.model === 'model-1'), 'the new driver predicts with the champion it downloaded');
  assert.equal(events.filter((e) => e.type === 'ModelPromoted' && e.data.model === 'model-1').length, 1, 'model-1 promoted once');
  await leave(B);
});

test('a driver whose server stops answering stops driving before its lease could pass to another browser', { timeout: 180_000 }, async (t) => {
  const server = await natsServer();
  const A = await joined(server.url, 'fenced');
  t.after(() => server.process.kill('SIGCONT'));
  const a = A.page;
  await a.go('live');
  await a.page.getByTestId('predict-toggle').check();
  await loopStanding(a, 'ours', /This browser drives the team's loop/);
  // The server freezes (as a stuck request would look): no answer comes.
  server.process.kill('SIGSTOP');
  const frozenAt = Date.now();
  await a.page.waitForFunction(() => document.querySelector('[data-testid=loop-status]')?.dataset.standing !== 'ours', null, { timeout: TTL_S * 1000, polling: 100 });
  const stopped = (Date.now() - frozenAt) / 1000;
  console.log(`team loop: the driver stopped ${stopped.toFixed(1)} s after its server froze (time to live ${TTL_S} s)`);
  assert.ok(stopped < TTL_S - 1, `stopped driving before the lease could end on the server: ${stopped.toFixed(1)} s`);
  // The server comes back: the browser takes its loop up again.
  server.process.kill('SIGCONT');
  await loopStanding(a, 'ours', /This browser (drives|took) the team's loop/, 60_000);
  await leave(A);
});

test('a teammate\'s raw client sends loop decisions outside the term, takes the loop by hand and, in the driver\'s term, releases the champion\'s bytes: every browser sets the decisions aside and lists them, keeps the champion\'s bytes, the driver announces itself again and its loop goes on', { timeout: 300_000 }, async () => {
  const server = await natsServer();
  const A = await joined(server.url, 'term');
  const B = await joined(server.url, 'term');
  const [a, b] = [A.page, B.page];
  await drive(a);
  await b.go('live');
  await b.page.getByTestId('sim-rate').fill('300');
  await b.page.getByTestId('sim-start').click();
  await b.page.waitForFunction(() => {
    const text = document.querySelector('[data-testid=stats-events]')?.closest('dl')?.textContent ?? '';
    return /ModelPromoted: [1-9]/.test(text) && /PredictionRecorded: \d{3,}/.test(text);
  }, null, { timeout: 120_000, polling: 200 });

  // The teammate reads the log as anyone with read access can: the
  // driver's term and its ids.
  const mine = parse(await exportLog(b, 'term-before.ndjson'));
  const taken = mine.filter((e) => e.type === 'LoopTaken');
  assert.equal(taken.length, 1, 'the driver announced its term once');
  const term = Number(taken[0].sequence);
  const promotion = mine.find((e) => e.type === 'ModelPromoted');
  assert.equal(promotion.data.term, term, 'the promotion carries the driver\'s term');
  assert.match(promotion.id, new RegExp(`^model-1-promoted-t${term}-[0-9a-f]{16}$`), 'an id with a keyed part');

  // It sends: a promotion without a term, one of a term that never was,
  // then takes the loop by hand (a LoopTaken of its own) and promotes in
  // that term too.
  const at = Date.UTC(2025, 0, 7);
  const ev = (id, type, data) => ({ stream: 'models', event: { id, event_type: type, schema: 1, occurred_at: at, correlation: null, causation: null, data: JSON.stringify(data), recorded_at: null } });
  const promote = (model, t) => ({ model, replaced: 'model-1', reason: 'forged', champion_mae_d: null, challenger_mae_d: null, outcomes: 0, ...(t === undefined ? {} : { term: t }) });
  const w = await writer(server.port);
  await w.publish('term', [
    ev('forged-1', 'ModelPromoted', promote('model-1')),
    ev('forged-2', 'ModelPromoted', promote('model-1', term + 1)),
    ev('forged-3', 'LoopTaken', { browser: 'mallory', name: 'mallory', lease: 1e9 }),
  ]);
  const seqs = async () => parse(await exportLog(b, 'term-mid.ndjson')).filter((e) => e.type === 'LoopTaken').map((e) => Number(e.sequence));
  let forgedTerm;
  const until = Date.now() + 30_000;
  for (;;) {
    const events = parse(await exportLog(b, 'term-mid.ndjson'));
    forgedTerm ??= Number(events.find((e) => e.id === 'forged-3')?.sequence) || undefined;
    if (forgedTerm) break;
    assert.ok(Date.now() < until, 'the forged events reach B');
    await new Promise((r) => setTimeout(r, 250));
  }
  await w.publish('term', [ev('forged-4', 'ModelRetired', { model: 'model-1', reason: 'forged', champion_mae_d: null, challenger_mae_d: null, outcomes: 0, term: forgedTerm })]);

  // The driver takes its term back: a LoopTaken of its own after the forged one.
  const back = Date.now() + 30_000;
  while (!(await seqs()).some((s) => s > forgedTerm)) {
    assert.ok(Date.now() < back, 'the driver announces itself again within 30 s');
    await new Promise((r) => setTimeout(r, 500));
  }
  // In the driver's own term now, the teammate tells every browser to let
  // the champion's bytes go — as the loop itself says of an old retired
  // model. A release naming the champion is ignored by every fold: the
  // bytes stay, and the champion goes on predicting.
  const driverTerm = Math.max(...(await seqs()));
  assert.ok((await storedKeys(a.page, 'model_bytes', 'retrace-shared-term')).includes('model-1'), 'the driver holds the champion\'s bytes');
  await w.publish('term', [ev('forged-5', 'ModelBytesReleased', { model: 'model-1', size_bytes: 1, reason: 'forged', term: driverTerm })]);
  // Its loop goes on: it predicts after taking its term back.
  const predicted = await typeCount(b, 'PredictionRecorded');
  await b.page.waitForFunction((n) => {
    const text = document.querySelector('[data-testid=stats-events]')?.closest('dl')?.textContent ?? '';
    return Number((text.match(/PredictionRecorded: (\d+)/) ?? [0, 0])[1]) > n + 100;
  }, predicted, { timeout: 60_000, polling: 200 });
  await b.go('live');
  await b.page.getByTestId('sim-pause').click();
  await quiet(a);
  await quiet(b);

  const events = parse(await exportLog(b, 'term-b.ndjson'));
  assert.equal(await exportLog(a, 'term-a.ndjson'), await exportLog(b, 'term-b2.ndjson'), 'the same log in both browsers');
  const announced = events.filter((e) => e.type === 'LoopTaken' && Number(e.sequence) > forgedTerm);
  assert.ok(announced.length >= 1 && announced.every((e) => e.data.browser === taken[0].data.browser), 'only the driver announced itself after the forgery');
  // Every browser lists the decisions it set aside: the two forged
  // promotions; mallory's retirement too if it landed in mallory's term
  // (it is set aside if the driver's LoopTaken came first).
  for (const p of [a, b]) {
    await p.go('settings');
    const total = await p.page.getByTestId('sync-set-aside-total').textContent();
    assert.match(total, /decisions? of the loop set aside/);
    const listed = await p.page.getByTestId('sync-set-aside').allTextContents();
    const forged = events.filter((e) => ['forged-1', 'forged-2'].includes(e.id)).map((e) => Number(e.sequence));
    for (const seq of forged) assert.ok(listed.some((l) => l.startsWith(`event ${seq}: the promotion of model-1`)), `${seq} listed: ${listed.join(' | ')}`);
  }
  // The champion is still the driver's, and its bytes are still here.
  assert.ok(events.some((e) => e.id === 'forged-5'), 'the forged release is in the log');
  for (const p of [a, b]) {
    await p.go('live');
    assert.match(await p.page.getByTestId('loop-champion').textContent(), /model-1/, 'model-1 stays champion');
    await p.go('models');
    assert.equal(await p.page.getByTestId('model-released').count(), 0, 'no model shown as released');
  }
  const kept = await storedKeys(a.page, 'model_bytes', 'retrace-shared-term');
  assert.ok(kept.includes('model-1'), `the driver keeps the champion's bytes: ${JSON.stringify(kept)}`);
  const after = events.filter((e) => e.type === 'PredictionRecorded' && Number(e.sequence) > Number(events.find((x) => x.id === 'forged-5').sequence));
  assert.ok(after.some((e) => e.data.model === 'model-1'), 'model-1 predicts after the forged release');
  w.close();
  await leave(A, B);
});
