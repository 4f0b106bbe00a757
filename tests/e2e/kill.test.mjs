// The browser killed at random moments: during imports (reading and the one
// commit), group commits of the simulator at 5,000 ev/s, snapshot writes
// (every 5,000 events) and the loop's model training and saves. Chromium
// runs on a persistent profile as a process of its own and is killed with
// SIGKILL (its whole process group), then the profile is opened again and
// held against what was acknowledged before the kill:
//   - every event the page had counted as committed is there;
//   - the log keeps its rules (the app's own check: seq and versions
//     contiguous, ids unique);
//   - every import is all or nothing (its cases' events equal the count its
//     ImportCompleted record gives, or there are none), and every import
//     the page had said "Imported" for is there;
//   - every model the log names has its bytes stored;
//   - after boot, every view equals the log read independently (oracle).
// KILLS sets the number of kills (make test: a few; make faults: 50);
// FAULT_SEED replays a run.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { readFile, writeFile, mkdtemp, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { serve } from '../../tools/serve.mjs';
import { CHROMIUM_ARGS, LivePage, storedKeys } from './support.mjs';
import { parseExport, expectedViews, shownViews, compare } from './oracle.mjs';

const KILLS = Number(process.env.KILLS ?? 6);
const SEED = Number(process.env.FAULT_SEED ?? Date.now() % 1_000_000);
/** A fresh profile after this many kills keeps each check's log small. */
const KILLS_PER_PROFILE = 10;
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

/** A small seeded generator (mulberry32), so a failing run can be replayed. */
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

let server;
let url;
let dir;
let helpdesk;
before(async () => {
  ({ server, url } = await serve('dist', { base: '/retrace/' }));
  dir = await mkdtemp(join(tmpdir(), 'retrace-kill-'));
  helpdesk = (await readFile('../shared/data/helpdesk.csv', 'utf8')).trim().split('\n');
});
after(async () => {
  server?.close();
});

/** Chromium on `profile` as a process group of its own, reached over CDP. */
async function launchKillable(profile) {
  const port = join(profile, 'DevToolsActivePort');
  await rm(port, { force: true });
  const child = spawn(CHROMIUM, [
    '--headless=new', ...CHROMIUM_ARGS, `--user-data-dir=${profile}`, '--remote-debugging-port=0', 'about:blank',
  ], { detached: true, stdio: 'ignore' });
  const exited = new Promise((ok) => child.once('exit', ok));
  const t0 = Date.now();
  while (!existsSync(port) || !(await readFile(port, 'utf8')).includes('\n')) {
    if (Date.now() - t0 > 30_000) throw new Error('chromium did not open its debugging port');
    await new Promise((ok) => setTimeout(ok, 50));
  }
  const number = (await readFile(port, 'utf8')).split('\n')[0];
  const browser = await chromium.connectOverCDP(`http://127.0.0.1:${number}`);
  const context = browser.contexts()[0];
  const page = context.pages()[0] ?? await context.newPage();
  return {
    page,
    async kill() {
      process.kill(-child.pid, 'SIGKILL');
      await exited;
      // Whatever chromium started outside the group goes too.
      try { execFileSync('pkill', ['-9', '-f', '--', `--user-data-dir=${profile}`]); } catch { /* none left */ }
    },
  };
}

/** A slice of helpdesk.csv as a file of its own (its own hash and label). */
async function importFile(round, random) {
  const rows = 3_000 + Math.floor(random() * 9_000);
  const start = 1 + Math.floor(random() * (helpdesk.length - rows - 1));
  const file = join(dir, `kill${round}.csv`);
  await writeFile(file, [helpdesk[0], ...helpdesk.slice(start, start + rows)].join('\n') + '\n');
  return { file, label: `kill${round}` };
}

/** One workload, killed at a random moment; returns what was acknowledged. */
async function killDuring(kind, profile, round, random) {
  const chrome = await launchKillable(profile);
  const page = await new LivePage(chrome.page).open(url);
  await page.page.waitForFunction(() => document.querySelector('main')?.dataset.seq === document.querySelector('[data-testid=event-count]')?.textContent, null, { timeout: 60_000 });
  const acknowledged = { kind, events: 0, imported: null, label: null };
  let wait;
  if (kind === 'import') {
    const { file, label } = await importFile(round, random);
    acknowledged.label = label;
    await page.choose(file);
    await page.page.getByTestId('import-start').click();
    wait = random() * 1_500;
  } else if (kind === 'simulator') {
    await page.go('live');
    await page.page.getByTestId('sim-rate').fill('5000');
    await page.page.getByTestId('sim-start').click();
    wait = 500 + random() * 4_000;
  } else {
    // The loop on the simulator's cases (the demo runs in a log of its
    // own): killed while it predicts, trains and saves models.
    await page.go('live');
    await page.page.getByTestId('sim-rate').fill('1000');
    await page.page.getByTestId('predict-toggle').check();
    await page.page.getByTestId('sim-start').click();
    wait = 2_000 + random() * 18_000;
  }
  await page.page.waitForTimeout(wait);
  // What the page has said is done: the committed count, an import's outcome.
  const said = await page.page.evaluate(() => ({
    events: Number(document.querySelector('[data-testid=event-count]')?.textContent),
    status: document.querySelector('[data-testid=import-status]')?.textContent ?? '',
  }));
  await chrome.kill();
  acknowledged.events = said.events;
  acknowledged.imported = /Imported \d+ cases/.test(said.status);
  acknowledged.wait = Math.round(wait);
  return acknowledged;
}

/** Open the profile again (a normal launch) and hold it to what was acknowledged. */
async function check(profile, acknowledged, labels, where) {
  const t0 = Date.now();
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM, args: CHROMIUM_ARGS, acceptDownloads: true,
  });
  const mark = (what) => process.env.KILL_TRACE && console.log(`# ${what} ${Date.now() - t0} ms`);
  mark('launched');
  try {
    const page = await new LivePage(context.pages()[0] ?? await context.newPage()).open(url);
    const p = page.page;
    await p.waitForFunction(() => {
      const seq = document.querySelector('main')?.dataset.seq;
      return seq !== undefined && seq === document.querySelector('[data-testid=event-count]')?.textContent;
    }, null, { timeout: 120_000 });
    const head = await page.count();
    mark('booted');
    assert.ok(head >= acknowledged.events, `${where}: ${acknowledged.events} events were acknowledged, ${head} are in the log`);
    if (await p.getByTestId('error').count() > 0) assert.fail(`${where}: the app reports an error: ${await p.getByTestId('error').textContent()}`);
    assert.match(await page.verify(), new RegExp(`^${head} events in \\d+ streams; seq and versions contiguous`), where);

    mark('verified');
    await page.go('log');
    const [download] = await Promise.all([p.waitForEvent('download'), p.getByTestId('export-log').click()]);
    const file = join(dir, 'check.ndjson');
    await download.saveAs(file);
    const events = parseExport(await readFile(file, 'utf8'));
    mark('exported');
    assert.equal(events.length, head, `${where}: the export holds the whole log`);

    // Imports: all or nothing; an acknowledged one is there.
    for (const label of labels) {
      const records = events.filter((e) => e.type === 'ImportCompleted' && e.data.label === label);
      const written = events.filter((e) => typeof e.data?.case === 'string' && e.data.case.startsWith(`${label}-`)).length;
      assert.ok(records.length <= 1, `${where}: ${label} was recorded ${records.length} times`);
      assert.equal(written, records[0]?.data.events ?? 0, `${where}: import ${label} is partial (${written} events, its record says ${records[0]?.data.events ?? 'nothing'})`);
      if (label === acknowledged.label && acknowledged.imported) assert.equal(records.length, 1, `${where}: ${label} was said imported and is gone`);
    }
    // Models named by the log have their bytes.
    const stored = await storedKeys(p, 'model_bytes');
    for (const e of events.filter((x) => x.type === 'ModelTrained')) {
      assert.ok(stored.includes(e.data.id), `${where}: ${e.data.id} is in the log but its bytes are not stored`);
    }
    // Every view equals the log (snapshots written while killed included).
    const diffs = compare(await shownViews(p), expectedViews(events));
    assert.deepEqual(diffs, [], `${where}:\n${diffs.join('\n')}`);
    assert.deepEqual(page.errors, [], where);
    mark('compared');
    return { head, models: stored.length };
  } finally {
    await context.close();
    mark('closed');
  }
}

test(`the browser killed ${KILLS} times at random moments loses nothing acknowledged (seed ${SEED})`, { timeout: 3_600_000 }, async () => {
  const random = rng(SEED);
  const kinds = ['import', 'simulator', 'loop'];
  const tally = { import: 0, simulator: 0, loop: 0, imported: 0, models: 0 };
  let profile;
  let labels = [];
  for (let round = 0; round < KILLS; round += 1) {
    if (round % KILLS_PER_PROFILE === 0) {
      if (profile) await rm(profile, { recursive: true, force: true });
      profile = await mkdtemp(join(dir, 'profile-'));
      labels = [];
    }
    // Each kind once, then at random.
    const kind = round < kinds.length ? kinds[round] : kinds[Math.floor(random() * kinds.length)];
    const t0 = Date.now();
    const acknowledged = await killDuring(kind, profile, round, random);
    const t1 = Date.now();
    if (acknowledged.label) labels.push(acknowledged.label);
    const where = `kill ${round + 1} (${kind}, ${acknowledged.wait} ms in, seed ${SEED})`;
    const { head, models } = await check(profile, acknowledged, labels, where);
    tally[kind] += 1;
    tally.imported += acknowledged.imported ? 1 : 0;
    tally.models = Math.max(tally.models, models);
    console.log(`# ${where}: ${acknowledged.events} acknowledged, ${head} after reopening (${t1 - t0} ms to the kill, ${Date.now() - t1} ms to check)${acknowledged.label ? `, import ${acknowledged.imported ? 'acknowledged' : 'not acknowledged'}` : ''}`);
  }
  console.log(`# ${KILLS} kills (${tally.import} imports, ${tally.imported} of them acknowledged; ${tally.simulator} simulator; ${tally.loop} loop, up to ${tally.models} models stored): 0 lost acknowledged events, 0 partial imports, every view equal to the log`);
  await rm(profile, { recursive: true, force: true });
});
