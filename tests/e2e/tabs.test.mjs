// Several tabs writing at once: four simulators started within moments of
// each other on one log, and a fifth tab importing helpdesk.csv meanwhile.
// Every event id is unique, no two runs share a case, every stream's
// versions run 1, 2, 3, …, the import is whole — read from an export, and by
// the app's own integrity check.
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

test('four tabs run simulators while a fifth imports: no duplicate id, no merged case, every stream contiguous, every writer complete', async () => {
  const context = await env.browser.newContext({ acceptDownloads: true });
  const tabs = [];
  for (let i = 0; i < 4; i += 1) tabs.push(await new LivePage(await context.newPage()).open(env.url));
  for (const t of tabs) {
    await t.go('live');
    await t.page.getByTestId('sim-rate').fill('2000');
  }
  // A fifth tab imports helpdesk.csv (one staged commit) while they run.
  const importer = await new LivePage(await context.newPage()).open(env.url);
  await importer.choose('../shared/data/helpdesk.csv');
  // Start all four within moments of each other, on the same (empty) head.
  await Promise.all(tabs.map((t) => t.page.getByTestId('sim-start').click()));
  await importer.page.waitForTimeout(1_000);
  assert.match(await importer.importAndWait(), /Imported 3804 cases/);
  await tabs[0].page.waitForTimeout(8_000);
  await Promise.all(tabs.map((t) => t.page.getByTestId('sim-pause').click()));
  // Let every commit land and every tab see the same head.
  await tabs[0].page.waitForFunction(() => {
    const n = Number(document.querySelector('[data-testid=event-count]')?.textContent);
    const seen = window.lastSeen;
    window.lastSeen = n;
    return n > 0 && n === seen;
  }, null, { polling: 1_000, timeout: 60_000 });
  const head = await tabs[0].count();
  for (const t of tabs) await t.countIs(head);
  // Commits announced out of order never read as a recovery elsewhere: no tab shows an error.
  for (const t of [...tabs, importer]) {
    if (await t.page.getByTestId('error').count() > 0) assert.fail(`a tab shows: ${await t.page.getByTestId('error').textContent()}`);
  }

  const a = tabs[0];
  await a.go('log');
  const [download] = await Promise.all([a.page.waitForEvent('download'), a.page.getByTestId('export-log').click()]);
  const dir = await mkdtemp(join(tmpdir(), 'retrace-tabs-'));
  const file = join(dir, 'log.ndjson');
  await download.saveAs(file);
  const events = (await readFile(file, 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(events.length, head);
  const ids = new Set(events.map((e) => e.id));
  assert.equal(ids.size, events.length, `${events.length - ids.size} event ids occur more than once`);
  const versions = new Map();
  const runsOfCase = new Map();
  for (const e of events.sort((x, y) => Number(x.sequence) - Number(y.sequence))) {
    const v = (versions.get(e.subject) ?? 0) + 1;
    assert.equal(e.streamversion, v, `${e.subject}: version ${e.streamversion} where ${v} was due`);
    versions.set(e.subject, v);
    if (e.type === 'CaseOpened') {
      assert.ok(!runsOfCase.has(e.data.case), `case ${e.data.case} was opened twice: two runs merged into it`);
      runsOfCase.set(e.data.case, e.subject);
    }
  }
  // The import is whole: every event of its cases, and its record, once.
  const records = events.filter((e) => e.type === 'ImportCompleted');
  assert.equal(records.length, 1);
  const imported = events.filter((e) => e.data?.case?.startsWith(`${records[0].data.label}-`)).length;
  assert.equal(imported, records[0].data.events, 'the import wrote every event of its file');
  assert.equal(imported, 21318);
  const runs = new Set([...runsOfCase.keys()].filter((c) => !c.startsWith(`${records[0].data.label}-`)).map((c) => c.split('-').slice(0, 2).join('-')));
  assert.equal(runs.size, 4, `four runs wrote cases: ${[...runs].join(', ')}`);
  assert.match(await a.verify(), new RegExp(`^${head} events in \\d+ streams; seq and versions contiguous`));
  await context.close();
});
