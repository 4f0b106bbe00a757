// A damaged log, recovered through the page: the damage is shown at boot
// with its place; Settings → Recover downloads every readable event, keeps
// the log up to the last good one and records the cut; after a reload every
// view equals the kept log and the log takes new events.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { start, LivePage, storedKeys } from './support.mjs';
import { parseExport, expectedViews, shownViews, compare } from './oracle.mjs';

let env;
let dir;
before(async () => {
  env = await start();
  dir = await mkdtemp(join(tmpdir(), 'retrace-recovery-'));
});
after(async () => {
  await env?.stop();
});

/** The keys of the log's segments (each the seq of its last event). */
const segmentKeys = (page) => storedKeys(page, 'segments');

/** Replace one segment with a string, behind the app's back (a damaged record). */
function damage(page, key) {
  return page.evaluate((k) => new Promise((ok, fail) => {
    const open = indexedDB.open('retrace');
    open.onsuccess = () => {
      const db = open.result;
      const tx = db.transaction('segments', 'readwrite');
      tx.objectStore('segments').put('this is not a segment', k);
      tx.oncomplete = () => { db.close(); ok(); };
      tx.onabort = () => fail(tx.error);
    };
  }), key);
}

test('a damaged segment is shown at boot, and Recover keeps everything before it', async () => {
  const context = await env.browser.newContext({ acceptDownloads: true });
  const page = await new LivePage(await context.newPage()).open(env.url);
  const p = page.page;
  // Events 1–1001 (a sample import: several cases, one commit) and three single appends.
  await page.choose('public/sample/helpdesk-1000.csv');
  assert.match(await page.importAndWait(), /Imported/);
  const imported = await page.count();
  for (let i = 1; i <= 3; i += 1) {
    await page.appendDemo();
    await page.countIs(imported + i);
  }
  const keys = await segmentKeys(p);
  assert.deepEqual(keys.slice(-3), [imported + 1, imported + 2, imported + 3], 'each append is a segment of its own');
  const broken = imported + 2;

  // Damage the second append's segment with no tab open, then open the app.
  const blank = await context.newPage();
  await p.close();
  await blank.goto(env.url);
  await damage(blank, broken);
  const again = await new LivePage(blank).open(env.url);
  await blank.getByTestId('error').waitFor();
  const banner = await blank.getByTestId('error').textContent();
  assert.match(banner, new RegExp(`record of event ${broken} is damaged`), banner);
  assert.match(banner, /Settings → Recover/);
  assert.match(await again.verify(), new RegExp(`^good up to event ${broken - 1}; then: the record of event ${broken} is damaged`));

  // A second tab is open on the same log while the first recovers it.
  const other = await new LivePage(await context.newPage()).open(env.url);

  // Recover: the question names the place, the download holds every readable event.
  let question = '';
  blank.once('dialog', (d) => { question = d.message(); d.accept(); });
  const [download] = await Promise.all([blank.waitForEvent('download'), blank.getByTestId('recover').click()]);
  const file = join(dir, 'recovered.ndjson');
  await download.saveAs(file);
  assert.match(question, new RegExp(`good up to event ${broken - 1}`));
  assert.match(question, new RegExp(`keep events 1–${broken - 1}, drop the rest \\(2 events\\)`));
  const saved = (await readFile(file, 'utf8')).trim().split('\n').map((l) => Number(JSON.parse(l).sequence));
  const readable = Array.from({ length: imported + 3 }, (_, i) => i + 1).filter((s) => s !== broken);
  assert.deepEqual(saved, readable, 'the export holds every event that still reads, the one after the damage too');
  await blank.getByTestId('recover-status').filter({ hasText: 'Recovered' }).waitFor();
  assert.match(await blank.getByTestId('recover-status').textContent(), new RegExp(`kept events 1–${broken - 1} and recorded the cut as event ${broken}`));

  // The other tab is told its views show events that are gone.
  await other.page.getByTestId('error').filter({ hasText: 'Another tab recovered the log' }).waitFor();
  assert.match(await other.page.getByTestId('error').textContent(), new RegExp(`kept events 1–${broken - 1}; this page still shows ${imported + 3}\\. Reload`));
  await other.page.close();

  // After a reload: no banner, the cut is the newest event, every view equals the kept log.
  await blank.getByTestId('recover-reload').click();
  await blank.getByTestId('event-count').waitFor();
  await again.countIs(broken);
  await blank.waitForFunction((h) => Number(document.querySelector('main')?.dataset.seq) === h, broken, { timeout: 30_000 });
  assert.equal(await blank.getByTestId('error').count(), 0, 'no damage is reported any more');
  assert.match(await again.verify(), new RegExp(`^${broken} events in \\d+ streams; seq and versions contiguous`));
  await again.go('log');
  const [kept] = await Promise.all([blank.waitForEvent('download'), blank.getByTestId('export-log').click()]);
  await kept.saveAs(join(dir, 'kept.ndjson'));
  const events = parseExport(await readFile(join(dir, 'kept.ndjson'), 'utf8'));
  assert.equal(events.length, broken);
  assert.equal(events.at(-1).type, 'LogRecovered');
  assert.equal(events.at(-1).data.kept_to, broken - 1);
  assert.equal(events.at(-1).data.old_head, imported + 3);
  const diffs = compare(await shownViews(blank), expectedViews(events));
  assert.deepEqual(diffs, [], diffs.join('\n'));

  // The log takes new events again.
  await again.appendDemo();
  await again.countIs(broken + 1);
  assert.match(await again.verify(), new RegExp(`^${broken + 1} events in \\d+ streams; seq and versions contiguous`));
  assert.deepEqual(again.errors, []);
  await context.close();
});

test('Recover on a healthy log changes nothing', async () => {
  const context = await env.browser.newContext();
  const page = await new LivePage(await context.newPage()).open(env.url);
  await page.appendDemo();
  await page.countIs(1);
  await page.page.getByTestId('recover').click();
  await page.page.getByTestId('recover-status').filter({ hasText: 'Nothing to recover' }).waitFor();
  assert.equal(await page.count(), 1);
  await context.close();
});

test('damage behind the newest snapshot is found by the check at start', async () => {
  const context = await env.browser.newContext();
  const page = await new LivePage(await context.newPage()).open(env.url);
  const p = page.page;
  // Event 1 on its own, then a sample import: the views snapshot past 5,000
  // events, and a reload starts from that snapshot, never reading event 1.
  await page.appendDemo();
  await page.countIs(1);
  await page.choose('public/sample/helpdesk-1000.csv');
  assert.match(await page.importAndWait(), /Imported/);
  const head = await page.count();
  const snapshots = async () => (await storedKeys(p, 'snapshots')).map((k) => k[1]);
  await p.waitForFunction((h) => Number(document.querySelector('main')?.dataset.seq) === h, head);
  assert.ok((await snapshots()).some((s) => s > 1), 'a snapshot past event 1');
  assert.equal((await segmentKeys(p))[0], 1, 'event 1 is a record of its own');
  const blank = await context.newPage();
  await p.close();
  await blank.goto(env.url);
  await damage(blank, 1);
  const again = await new LivePage(blank).open(env.url);
  await blank.getByTestId('error').waitFor();
  const banner = await blank.getByTestId('error').textContent();
  assert.match(banner, /check of the log at start: good up to event 0; then: the record of event 1 is damaged/, banner);
  assert.equal(await again.count(), head, 'the views still open from the snapshot');
  await context.close();
});
