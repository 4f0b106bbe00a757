// Every view tells the truth, live: while the demo (or a played import)
// runs, and after a reload, each panel is held against the log read
// independently (an export folded by tests/e2e/oracle.mjs), and none may be
// more than 2 s behind the head.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { start, LivePage } from './support.mjs';
import { parseExport, expectedViews, shownViews, compare } from './oracle.mjs';

let env;
let dir;
before(async () => {
  env = await start();
  dir = await mkdtemp(join(tmpdir(), 'retrace-oracle-'));
});
after(async () => {
  await env?.stop();
});

/**
 * The whole log, as the export button of a second tab hands it out (the
 * tab under test may be busy importing; both read the same IndexedDB).
 */
async function exportLog(page, n) {
  if (!page.reader) {
    page.reader = new LivePage(await page.page.context().newPage());
    await page.reader.open(page.page.url().replace(/#.*$/, ''));
  }
  await page.reader.go('log');
  const p = page.reader.page;
  await p.waitForFunction(() => !document.querySelector('[data-testid=export-log]')?.disabled);
  const [download] = await Promise.all([p.waitForEvent('download'), p.getByTestId('export-log').click()]);
  const file = join(dir, `log-${n}.ndjson`);
  await download.saveAs(file);
  return parseExport(await readFile(file, 'utf8'));
}

/**
 * One look: read every view at once, then the log; the views must equal the
 * log up to the position they show, and reach the log's head within 2 s.
 */
async function look(page, n, where) {
  const shown = await shownViews(page.page);
  assert.ok(Number.isInteger(shown.seq) && shown.seq >= 0, `${where}: the views say which position they show`);
  const events = await exportLog(page, n);
  assert.ok(events.length >= shown.seq, `${where}: the views show position ${shown.seq}, beyond the log's ${events.length}`);
  assert.ok(shown.head >= shown.seq && shown.head <= events.length, `${where}: the header's count ${shown.head} lies between the views (${shown.seq}) and the log (${events.length})`);
  const behind = shown.head - shown.seq;
  assert.equal(shown.behind, behind === 0 ? 'views current' : `views ${behind} events behind`, `${where}: the header says how far the views are behind`);
  const diffs = compare(shown, expectedViews(events.slice(0, shown.seq)));
  assert.deepEqual(diffs, [], `${where}, at seq ${shown.seq}:\n${diffs.join('\n')}`);
  // No view more than 2 s behind the head the export saw.
  const head = events.length;
  const t0 = Date.now();
  await page.page.waitForFunction((h) => Number(document.querySelector('main')?.dataset.seq) >= h, head, { timeout: 2_000, polling: 50 })
    .catch(() => assert.fail(`${where}: the views did not reach seq ${head} within 2 s (they show ${shown.seq})`));
  return { shown, events, caughtUpMs: Date.now() - t0 };
}

/** After a reload with nothing running: every view equals the whole log, and nothing is behind. */
async function lookAfterReload(page, where) {
  const p = page.page;
  const head = await page.count();
  await p.reload();
  await p.getByTestId('event-count').waitFor();
  await p.waitForFunction((h) => Number(document.querySelector('main')?.dataset.seq) === h, head, { timeout: 60_000 });
  const { shown, events } = await look(page, `${where}-reload`, where);
  assert.equal(shown.seq, events.length, `${where}: the views show the whole log`);
  assert.equal(shown.behind, 'views current', `${where}: the header says the views are current`);
}

test('the demo: every view agrees with the log while it runs and after a reload', async () => {
  const context = await env.browser.newContext({ acceptDownloads: true });
  const page = await new LivePage(await context.newPage()).open(env.url);
  const p = page.page;
  await p.getByTestId('demo-start').click();
  const started = Date.now();
  let looks = 0;
  let last;
  // Look every few seconds for a minute, then until the loop has promoted a challenger.
  while (Date.now() - started < 60_000 || (last?.shown.byType.ModelPromoted ?? 0) < 2) {
    assert.ok(Date.now() - started < 240_000, 'the demo promotes a challenger within 4 minutes');
    await p.waitForTimeout(3_000);
    last = await look(page, looks, `look ${looks + 1} of the demo`);
    looks += 1;
  }
  assert.ok(looks >= 10, `looked ${looks} times`);
  // The reader tab that exports the log shows the demo without running a
  // second simulator into it: the process changed once.
  assert.equal(last.shown.byType.ProcessChanged, 1, JSON.stringify(last.shown.byType));
  assert.ok(last.shown.registry.length >= 2 && last.shown.loop.length >= 2, 'models were trained and scored while we looked');
  // Stop everything, let it land, reload.
  await page.holdStill();
  await p.waitForFunction(() => document.querySelector('[data-testid=loop-status]')?.dataset.busy === 'false');
  await p.waitForFunction(() => document.querySelector('main')?.dataset.seq === document.querySelector('[data-testid=event-count]')?.textContent);
  await lookAfterReload(page, 'the demo');
  assert.deepEqual(page.errors, []);
  await context.close();
});

test('a played import: every view agrees with the log while it plays and after a reload', async () => {
  const context = await env.browser.newContext({ acceptDownloads: true });
  const page = await new LivePage(await context.newPage()).open(env.url);
  const p = page.page;
  await page.playSampleWithLoop();
  let looks = 0;
  let last;
  while (looks < 4 || (last?.shown.byType.PredictionRecorded ?? 0) < 200) {
    assert.ok(looks < 40, 'the played import records predictions');
    await p.waitForTimeout(2_000);
    last = await look(page, `import-${looks}`, `look ${looks + 1} of the played import`);
    looks += 1;
  }
  await p.getByTestId('import-cancel').click();
  await page.go('live');
  await p.getByTestId('predict-toggle').uncheck();
  await p.waitForFunction(() => document.querySelector('[data-testid=loop-status]')?.dataset.busy === 'false');
  await p.waitForFunction(() => document.querySelector('main')?.dataset.seq === document.querySelector('[data-testid=event-count]')?.textContent);
  await lookAfterReload(page, 'the played import');
  assert.deepEqual(page.errors, []);
  await context.close();
});
