// Importing real logs through the page, errors with places, and a round
// trip through the CloudEvents export.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile, readFile, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { start, LivePage } from './support.mjs';

const HELPDESK = '../shared/data/helpdesk.csv';
let env;
before(async () => {
  env = await start();
});
after(async () => {
  await env?.stop();
});

const ImportPage = LivePage;

test('helpdesk.csv imports through the file input: 3,804 cases', async () => {
  const context = await env.browser.newContext();
  const page = await new ImportPage(await context.newPage()).open(env.url);
  await page.choose(HELPDESK);
  const status = await page.importAndWait();
  assert.match(status, /Imported 3804 cases \(21318 events, 9 activities\) from helpdesk\.csv/);
  await page.until('stats-events', 'n === 21319');
  assert.equal(await page.count(), 21319, '21,318 events and the ImportCompleted record');
  assert.equal(await page.number('stats-closed'), 3804);

  // The same file again is recognised by its hash and asked about.
  await page.choose(HELPDESK);
  await page.page.getByTestId('import-start').click();
  await page.page.getByTestId('import-again').waitFor();
  assert.deepEqual(page.errors, []);
  await context.close();
});

test('a malformed CSV shows its line and leaves the log unchanged', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'retrace-'));
  const bad = join(dir, 'bad.csv');
  await writeFile(bad, 'case,activity,timestamp\nc1,A,2020-01-01 10:00:00\nc1,B,2020-13-45 99:00\nc2,A,2020-01-02 10:00:00\n');
  const context = await env.browser.newContext();
  const page = await new ImportPage(await context.newPage()).open(env.url);
  await page.appendDemo();
  await page.countIs(1);
  await page.choose(bad);
  const status = await page.importAndWait();
  assert.match(status, /1 rows could not be read \(first at line 3: cannot read the timestamp "2020-13-45 99:00"/);
  assert.equal(await page.count(), 1, 'nothing was written');
  await page.page.getByTestId('import-skip-bad').click();
  await page.page.waitForFunction(() => /Imported 2 cases/.test(document.querySelector('[data-testid=import-status]')?.textContent));
  assert.match(await page.page.getByTestId('import-status').textContent(), /skipped 1 unreadable rows/);
  await context.close();
});

test('export, then import into a fresh browser: the same counts', async () => {
  const context = await env.browser.newContext({ acceptDownloads: true });
  const page = await new ImportPage(await context.newPage()).open(env.url);
  await page.runSimulator({ until: 500 });
  const events = await page.number('stats-events');
  const open = await page.number('open-count');
  await page.go('log');
  const [download] = await Promise.all([page.page.waitForEvent('download'), page.page.getByTestId('export-log').click()]);
  assert.equal(download.suggestedFilename(), 'retrace-log.ndjson');
  const dir = await mkdtemp(join(tmpdir(), 'retrace-'));
  const saved = join(dir, 'retrace-log.ndjson');
  await download.saveAs(saved);
  await context.close();

  const fresh = await env.browser.newContext();
  const again = await new ImportPage(await fresh.newPage()).open(env.url);
  await again.choose(saved);
  assert.match(await again.importAndWait(), new RegExp(`Restored ${events} events`));
  await again.until('stats-events', `n === ${events}`);
  assert.equal(await again.number('open-count'), open);
  assert.match(await again.verify(), new RegExp(`^${events} events in \\d+ streams; seq and versions contiguous`));
  await fresh.close();
});

test('a file of many slices: cancel while it is read leaves the log unchanged; then it imports whole, in time order', async () => {
  // 100,000 rows (about 5 MB: five of the page's 1 MB slices, two sorted
  // runs), grouped by case as many exports are, so time order needs the merge.
  const dir = await mkdtemp(join(tmpdir(), 'retrace-'));
  const big = join(dir, 'big.csv');
  const CASES = 20_000;
  const ROWS = 5 * CASES;
  const lines = ['case,activity,timestamp,resource'];
  for (let c = 0; c < CASES; c++) {
    const start = Date.UTC(2024, 0, 1) + ((c * 7919) % CASES) * 60_000;
    for (let k = 0; k < 5; k++) {
      lines.push(`case ${c},step ${k},${new Date(start + k * 3_600_000).toISOString()},r${(c + k) % 17}`);
    }
  }
  await writeFile(big, lines.join('\n') + '\n');
  const context = await env.browser.newContext({ acceptDownloads: true });
  const page = await new ImportPage(await context.newPage()).open(env.url);
  await page.appendDemo();
  await page.countIs(1);
  await page.choose(big);
  await page.page.getByTestId('import-start').click();
  await page.page.waitForFunction(() => /^read \d+ rows/.test(document.querySelector('[data-testid=import-status]')?.textContent.trim()));
  assert.ok(await page.page.getByTestId('import-progress').isVisible(), 'a progress bar shows');
  await page.page.getByTestId('import-cancel').click();
  await page.page.waitForFunction(() => /Import cancelled; the log is unchanged/.test(document.querySelector('[data-testid=import-status]')?.textContent));
  assert.equal(await page.count(), 1, 'nothing of the cancelled import was written');

  const status = await page.importAndWait();
  const events = ROWS + 2 * CASES;
  assert.match(status, new RegExp(`Imported ${CASES} cases \\(${events} events, 5 activities\\)`));
  await page.until('stats-events', `n === ${1 + events + 1}`);
  assert.equal(await page.number('stats-closed'), CASES);
  assert.match(await page.verify(), /seq and versions contiguous/);

  // The export shows every imported event in time order, each case opened first.
  await page.go('log');
  const [download] = await Promise.all([page.page.waitForEvent('download'), page.page.getByTestId('export-log').click()]);
  const saved = join(dir, 'out.ndjson');
  await download.saveAs(saved);
  const exported = (await readFile(saved, 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(exported.length, 1 + events + 1);
  const imported = exported.slice(1, -1);
  const opened = new Set();
  for (let i = 0; i < imported.length; i++) {
    if (i > 0) assert.ok(imported[i - 1].time <= imported[i].time, `time order at ${imported[i].sequence}`);
    if (imported[i].type === 'CaseOpened') opened.add(imported[i].subject);
    else assert.ok(opened.has(imported[i].subject), `${imported[i].subject} opened before its ${imported[i].type}`);
  }
  assert.equal(exported.at(-1).type, 'ImportCompleted');
  assert.deepEqual(page.errors, []);
  await context.close();
});

test('an XES file imports through the page: traces become cases', async () => {
  const context = await env.browser.newContext();
  const page = await new ImportPage(await context.newPage()).open(env.url);
  await page.choose('tests/fixtures/import/small.xes');
  // One event has no name: reported with its line, nothing written.
  assert.match(await page.importAndWait(), /1 events could not be read \(first at line 39: the event has no concept:name/);
  assert.equal(await page.count(), 0);
  await page.page.getByTestId('import-skip-bad').click();
  await page.page.waitForFunction(() => /Imported/.test(document.querySelector('[data-testid=import-status]')?.textContent));
  // Three completed events of two traces; the "start" of Repair is left out.
  const status = await page.page.getByTestId('import-status').textContent();
  assert.match(status, /Imported 2 cases \(7 events, 2 activities\) from small\.xes; skipped 1 unreadable rows and left out 1 events not marked complete/);
  await page.until('stats-events', 'n === 8');
  assert.equal(await page.number('stats-closed'), 2);
  assert.deepEqual(page.errors, []);
  await context.close();
});

test('a file that is refused leaves nothing to import: not even the file chosen before it', async () => {
  const context = await env.browser.newContext();
  const page = await new ImportPage(await context.newPage()).open(env.url);
  await page.choose('tests/fixtures/import/small.xes');
  const dir = await mkdtemp(join(tmpdir(), 'retrace-'));
  const empty = join(dir, 'empty.csv');
  await writeFile(empty, '');
  await page.page.getByTestId('import-file').setInputFiles(empty);
  await page.page.waitForFunction(() => /the file is empty/.test(document.querySelector('[data-testid=import-status]')?.textContent));
  assert.equal(await page.page.getByTestId('import-start').isDisabled(), true, 'Import is off: there is nothing to import');
  assert.equal(await page.count(), 0, 'nothing was written');
  assert.deepEqual(page.errors, []);
  await context.close();
});
