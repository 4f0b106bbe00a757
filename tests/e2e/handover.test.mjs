// The loop's leader goes away mid-run: the tab that drove the loop (its
// engine in a worker) is closed while another tab's simulator writes; the
// other tab, waiting in line for the loop's Web Lock, takes it over, its
// own engine starts from the log, and from then on every event is
// predicted exactly once. Nothing is lost or written twice, checked on an
// export of the log.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { start, LivePage } from './support.mjs';

let env;
before(async () => {
  env = await start();
});
after(async () => {
  await env?.stop();
});

/** Count of one event type on the Log view's statistics. */
function typeCount(page, type) {
  return page.evaluate((t) => {
    const text = document.querySelector('[data-testid=stats-events]')?.closest('dl')?.textContent ?? '';
    return Number((text.match(new RegExp(`${t}: (\\d+)`)) ?? [0, 0])[1]);
  }, type);
}

test('the loop\'s tab closes mid-run: another tab\'s engine takes over; every later event predicted once, nothing lost or doubled', async () => {
  const context = await env.browser.newContext();
  const a = await new LivePage(await context.newPage()).open(env.url);
  // The first model after 40 closed cases (the policy is kept for the origin).
  await a.go('live');
  await a.page.locator('summary', { hasText: 'Policy' }).click();
  await a.page.getByTestId('policy-first').fill('40');
  await a.page.getByTestId('policy-first').press('Tab');
  await a.page.getByTestId('predict-toggle').check();
  await a.page.waitForFunction(async () => (await navigator.locks.query()).held.some((l) => l.name === 'retrace-loop'));

  const b = await new LivePage(await context.newPage()).open(env.url);
  await b.go('live');
  await b.page.getByTestId('predict-toggle').click();
  await b.page.waitForFunction(() => /Another tab runs the loop/.test(document.querySelector('[data-testid=loop-status]')?.textContent ?? ''));
  await b.page.getByTestId('sim-rate').fill('400');
  await b.page.getByTestId('sim-start').click();

  // Tab A's engine trains a first model and predicts B's events.
  await b.page.waitForFunction(() => {
    const text = document.querySelector('[data-testid=stats-events]')?.closest('dl')?.textContent ?? '';
    return /ModelPromoted: [1-9]/.test(text) && /PredictionRecorded: \d{3,}/.test(text);
  }, null, { timeout: 120_000, polling: 200 });
  const before = await typeCount(b.page, 'PredictionRecorded');
  const closedSeq = await b.number('event-count');
  await a.page.close();

  // B takes the loop over and its engine predicts from the log on.
  await b.page.waitForFunction(() => /took the loop over/.test(document.querySelector('[data-testid=loop-status]')?.textContent ?? ''), null, { timeout: 30_000 });
  assert.equal(await b.page.getByTestId('predict-toggle').isChecked(), true);
  await b.page.waitForFunction((n) => {
    const text = document.querySelector('[data-testid=stats-events]')?.closest('dl')?.textContent ?? '';
    return Number((text.match(/PredictionRecorded: (\d+)/) ?? [0, 0])[1]) > n + 500;
  }, before, { timeout: 120_000, polling: 200 });
  await b.page.getByTestId('sim-pause').click();
  // Everything landed: the engine and the views stand at the log's head.
  await b.page.waitForFunction(() => {
    const head = document.querySelector('[data-testid=event-count]')?.textContent;
    return document.querySelector('[data-testid=loop-status]')?.dataset.engineSeq === head &&
      document.querySelector('[data-testid=stats-events]')?.textContent === head;
  }, null, { timeout: 30_000, polling: 100 });

  await b.go('log');
  const [download] = await Promise.all([b.page.waitForEvent('download'), b.page.getByTestId('export-log').click()]);
  const file = join(await mkdtemp(join(tmpdir(), 'retrace-handover-')), 'log.ndjson');
  await download.saveAs(file);
  const events = (await readFile(file, 'utf8')).split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
  events.sort((x, y) => Number(x.sequence) - Number(y.sequence));
  assert.equal(events.length, Number(await b.page.getByTestId('event-count').textContent()), 'the export holds every event counted');
  events.forEach((e, i) => assert.equal(Number(e.sequence), i + 1, 'the log is contiguous'));
  const ids = new Set(events.map((e) => e.id));
  assert.equal(ids.size, events.length, 'no event written twice');

  // Served predictions by the event that caused them (id `<cause>-p<model>`).
  const served = new Map();
  for (const e of events.filter((e) => e.type === 'PredictionRecorded' && !e.data.shadow)) {
    const cause = e.id.slice(0, e.id.lastIndexOf('-p'));
    served.set(cause, (served.get(cause) ?? 0) + 1);
  }
  for (const [cause, n] of served) assert.equal(n, 1, `${cause} predicted ${n} times`);
  // From the first model on, each event is predicted once — except those
  // of the handover itself: committed after the closed tab's engine last
  // read the log and before the new engine had read it (a new engine
  // predicts from where it starts, never what its predecessor may have).
  const promoted = events.find((e) => e.type === 'ModelPromoted');
  const sources = events.filter((e) => Number(e.sequence) > Number(promoted.sequence) &&
    (e.type === 'CaseOpened' || e.type === 'ActivityRecorded'));
  const unpredicted = sources.map((e, i) => [i, e]).filter(([, e]) => !served.has(e.id));
  console.log(`handover: ${unpredicted.length} of ${sources.length} events after the first model unpredicted (the gap), ${sources.length - 1 - (unpredicted.at(-1)?.[0] ?? 0)} predicted by the new leader`);
  assert.ok(unpredicted.length < 2_000, `a short gap at the handover: ${unpredicted.length} events`);
  // Where the gap is (or would be): the first tab's last served event.
  const [from, to] = unpredicted.length
    ? [unpredicted[0][0], unpredicted.at(-1)[0]]
    : [sources.findIndex((e) => Number(e.sequence) > Number(closedSeq)), sources.findIndex((e) => Number(e.sequence) > Number(closedSeq)) - 1];
  assert.equal(to - from + 1, unpredicted.length, 'the unpredicted events are one run, the handover');
  assert.ok(from > 100, `the first tab predicted before it closed (${from} events)`);
  assert.ok(sources.length - 1 - to > 300, `the second tab's engine predicted after it (${sources.length - 1 - to} events)`);

  assert.match(await b.verify(), /^\d+ events/, 'the log checks out');
  assert.deepEqual(b.errors, []);
  await context.close();
});
