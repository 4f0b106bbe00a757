// make bench: drives headless Chromium through bench/page.html, prints a
// table and writes target/bench/results.json as a list of
// {case, value, unit, vs, ratio} (ratio = value / the value of `vs`,
// oriented so that higher is better).
import { writeFile, mkdir } from 'node:fs/promises';
import { chromium } from 'playwright-core';
import { serve } from '../tools/serve.mjs';
import { CHROMIUM_ARGS, engineWasmBytes, engineWorker } from '../tests/e2e/support.mjs';

const N = Number(process.env.BENCH_EVENTS ?? 100_000);
const SINGLE = Number(process.env.BENCH_SINGLE ?? 2_000);
const LIVE = Number(process.env.BENCH_LIVE ?? 20_000);

const { server, url } = await serve('target/bench/site');
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', args: CHROMIUM_ARGS });
const page = await browser.newPage();
page.setDefaultTimeout(0);
await page.goto(url + 'page.html');
await page.waitForFunction(() => document.getElementById('status').textContent === 'ready');

const results = [];
const byCase = new Map();
// Rows are recorded as measured; ratios are filled in once every baseline is.
function record(name, value, unit, vs) {
  const row = { case: name, value: Number(value.toPrecision(4)), unit, vs: vs ?? null, ratio: null };
  byCase.set(name, row);
  results.push(row);
  console.log(`  measured ${name}: ${row.value} ${unit}`);
}
function finish() {
  for (const row of results) {
    if (!row.vs) continue;
    const base = byCase.get(row.vs)?.value;
    if (base === undefined) continue;
    // Rates: higher is better. Sizes and times: smaller is better, so invert.
    const smallerIsBetter = ['bytes/event', 'ms', 's', 'MB', 'days'].includes(row.unit);
    row.ratio = Math.round((smallerIsBetter ? base / row.value : row.value / base) * 100) / 100;
  }
  console.log('');
  console.log(`${'case'.padEnd(50)} ${'value'.padStart(12)} ${'unit'.padEnd(12)} ratio vs`);
  for (const r of results) {
    const ratio = r.ratio == null ? '' : `${r.ratio}× ${r.vs}`;
    console.log(`${r.case.padEnd(50)} ${String(r.value).padStart(12)} ${r.unit.padEnd(12)} ${ratio}`);
  }
}

// BENCH_ONLY=size|store|import|training|loop|projections|vast|shared runs those sections (comma-separated).
const only = process.env.BENCH_ONLY;
// Runs of the cases whose longest main-thread task has a target (#12).
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const want = (section) => !only || only.split(',').includes(section);

// --- What a first visit downloads ----------------------------------------
if (want('size')) {
  const { readdir, readFile } = await import('node:fs/promises');
  const { gzipSync } = await import('node:zlib');
  const kb = (b) => b / 1000;
  const sizeOf = async (file) => {
    const body = await readFile(file);
    return [body.length, gzipSync(body, { level: 9 }).length];
  };
  const top = await readdir('dist');
  const worker = await readdir('dist/worker');
  const ui = top.find((f) => f.endsWith('_bg.wasm'));
  const glue = top.find((f) => /^retrace-[0-9a-f]+\.js$/.test(f));
  const workerWasm = worker.find((f) => f.endsWith('_bg.wasm'));
  for (const [label, file] of [['UI wasm', `dist/${ui}`], ['UI JavaScript glue', `dist/${glue}`], ['worker wasm (the log engine and training, started at boot)', `dist/worker/${workerWasm}`]]) {
    const [raw, gz] = await sizeOf(file);
    record(`${label}, gzipped`, kb(gz), 'KB', null);
    console.log(`    (${label}: ${kb(raw).toFixed(0)} KB raw)`);
  }
}

if (want('store')) {
await page.evaluate(async ({ N }) => {
  window.events = window.baselines.workload(window.retrace, N);
  window.jsonSize = window.baselines.jsonBytes(window.events.slice(0, 5000));
}, { N });
const jsonSize = await page.evaluate(() => window.jsonSize);

const stores = {
  retrace: {
    append: (db, n, batch) => `retrace.retrace_append('${db}', ${n}, ${batch})`,
    read: (db) => `retrace.retrace_read('${db}', 4096)`,
  },
  'raw IndexedDB': {
    append: (db, n, batch) => `baselines.rawAppend('${db}', events.slice(0, ${n}), ${batch})`,
    read: (db) => `baselines.rawRead('${db}', 4096)`,
  },
  'dexie bulkAdd': {
    append: (db, n, batch) => `baselines.dexieAppend('${db}', events.slice(0, ${n}), ${batch})`,
    read: (db) => `baselines.dexieRead('${db}', 4096)`,
  },
};
const js = (expr) => page.evaluate(`(async () => await ${expr})()`);

console.log(`\nRetrace event store vs JavaScript baselines — headless Chromium, ${N} events, JSON size ${jsonSize.toFixed(0)} B/event\n`);
for (const batch of [10_000, 100, 1]) {
  const n = batch === 1 ? SINGLE : N;
  for (const [name, s] of Object.entries(stores)) {
    const db = `bench-${name.replace(/\W/g, '')}-${batch}`;
    await js(`baselines.deleteDb('${db}')`);
    const before = await js('baselines.usage()');
    const ms = await js(s.append(db, n, batch));
    const rate = n / (ms / 1000);
    const label = name === 'retrace' ? 'retrace' : name;
    record(`append batch ${batch} / ${label}`, rate, 'events/s', label === 'dexie bulkAdd' ? null : `append batch ${batch} / dexie bulkAdd`);
    if (batch === 10_000) {
      const after = await js('baselines.usage()');
      record(`disk bytes per event / ${label}`, (after - before) / n, 'bytes/event', null);
      const [readMs, count] = await js(s.read(db));
      if (count !== n) throw new Error(`${name} read ${count} events, wrote ${n}`);
      record(`read all in order / ${label}`, n / (readMs / 1000), 'events/s', label === 'raw IndexedDB' ? null : 'read all in order / raw IndexedDB');
    }
    await js(`baselines.deleteDb('${db}')`);
  }
}
{
  // IndexedDB's floor: records of a segment's size (155 bytes an event,
  // examples/store_cpu), nothing encoded or decoded.
  await js(`baselines.deleteDb('bench-floor')`);
  const FLOOR_BYTES = Number(process.env.BENCH_FLOOR_BYTES ?? 155);
  const durability = process.env.BENCH_FLOOR_DURABILITY ?? 'default';
  const [appendMs, readMs, count] = await js(`baselines.floor('bench-floor', events.slice(0, ${N}), 10000, ${FLOOR_BYTES}, '${durability}')`);
  if (count !== N) throw new Error(`the floor read ${count} events, wrote ${N}`);
  record(`append batch 10000 / IndexedDB floor (one ${FLOOR_BYTES} B/event record a batch, nothing encoded, durability ${durability})`, N / (appendMs / 1000), 'events/s', null);
  record('read all in order / IndexedDB floor (the same records, nothing decoded)', N / (readMs / 1000), 'events/s', null);
  await js(`baselines.deleteDb('bench-floor')`);
}
{
  await js(`baselines.deleteDb('bench-live')`);
  const ms = await js(`retrace.retrace_append_live('bench-live', ${LIVE})`);
  record('live one-event appends (group commit) / retrace', LIVE / (ms / 1000), 'events/s', 'append batch 1 / retrace');
  await js(`baselines.deleteDb('bench-live')`);
}
record('JSON size of an event', jsonSize, 'bytes/event', null);
for (const row of results) if (row.case.startsWith('disk bytes per event')) row.vs = 'JSON size of an event';
}

// --- Import: helpdesk.csv and simulated CSVs, through the app's file input
if (want('import')) {
console.log('\nImport through the page (run by the tab\'s engine worker): read + stage, then one commit; peak memory');
  const { execFileSync } = await import('node:child_process');
  const { stat } = await import('node:fs/promises');
  const sizes = (process.env.BENCH_IMPORT ?? '100000,1000000').split(',').map(Number);
  const files = [['helpdesk.csv', '../shared/data/helpdesk.csv']];
  for (const rows of sizes) {
    const path = `target/bench/sim-${rows}.csv`;
    if (!(await stat(path).catch(() => null))) {
      execFileSync('cargo', ['run', '--release', '--quiet', '--example', 'simulated_csv', '--', String(rows), path], { stdio: 'inherit' });
    }
    files.push([`${rows.toLocaleString('en')}-row simulated CSV`, path]);
  }
  // The biggest file three times (the main-thread target is judged on each run).
  const biggest = files[files.length - 1];
  for (let r = 2; r <= RUNS; r += 1) files.push([`${biggest[0]}, run ${r}`, biggest[1]]);
  for (const [label, path] of files) {
    const megabytes = (await stat(path)).size / 1048576;
    const ctx = await browser.newContext();
    const p = await ctx.newPage();
    p.setDefaultTimeout(0);
    // The app's wasm exports (its memory among them), as Trunk's loader hands them out.
    await p.addInitScript(() => addEventListener('TrunkApplicationStarted', (e) => { window.appWasm = e.detail.wasm; }));
    await p.goto(url + 'app/index.html#/log');
    await p.waitForFunction(() => window.appWasm && document.querySelector('[data-testid=stats-events]'));
    const cdp = await ctx.newCDPSession(p);
    await cdp.send('Performance.enable');
    await p.evaluate(() => {
      window.longTasks = [];
      new PerformanceObserver((list) => window.longTasks.push(...list.getEntries().map((e) => e.duration))).observe({ type: 'longtask' });
    });
    await p.getByTestId('import-file').setInputFiles(path);
    await p.waitForFunction(() => !document.querySelector('[data-testid=import-start]').disabled);
    // The import runs in the tab's engine worker: its linear memory is what the import costs.
    const engineMemory = () => engineWasmBytes(p);
    const wasmBefore = await engineMemory();
    const pageBefore = await p.evaluate(() => window.appWasm.memory.buffer.byteLength);
    let peakHeap = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const { metrics } = await cdp.send('Performance.getMetrics');
        peakHeap = Math.max(peakHeap, metrics.find((m) => m.name === 'JSHeapUsedSize').value);
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    await p.getByTestId('import-start').click();
    await p.waitForFunction(() => document.querySelector('[data-testid=import-status]')?.querySelector('.ok, [data-testid=import-error]'));
    sampling = false;
    await sampler;
    const status = await p.getByTestId('import-status').textContent();
    const m = status.match(/\((\d+) events, .* in ([\d.]+) s \(read ([\d.]+) s, write ([\d.]+) s\)/);
    if (!m) throw new Error(`import of ${label} did not finish: ${status}`);
    const [events, total, read, write] = [Number(m[1]) + 1, Number(m[2]), Number(m[3]), Number(m[4])];
    // Linear memory only grows, so its size afterwards is its peak.
    const wasmAfter = await engineMemory();
    const pageAfter = await p.evaluate(() => window.appWasm.memory.buffer.byteLength);
    // Then the engine's projections fold the new events (state per case).
    await p.waitForFunction((n) => Number(document.querySelector('[data-testid=stats-events]').textContent.replace(/\D/g, '')) >= n, events);
    const wasmFolded = await engineMemory();
    const tasks = await p.evaluate(() => window.longTasks);
    record(`import ${label} (${megabytes.toFixed(1)} MB, ${events} events): read, check, stage`, events / read, 'events/s', null);
    record(`import ${label}: write (one commit)`, events / write, 'events/s', null);
    record(`import ${label}: total`, total, 's', null);
    record(`import ${label}: engine worker's wasm memory, peak`, wasmAfter / 1048576, 'MB', null);
    console.log(`    (engine worker's wasm memory before the import: ${(wasmBefore / 1048576).toFixed(1)} MB; the page's: ${(pageBefore / 1048576).toFixed(1)} → ${(pageAfter / 1048576).toFixed(1)} MB)`);
    record(`import ${label}: engine worker's wasm memory once its projections hold it`, wasmFolded / 1048576, 'MB', null);
    record(`import ${label}: peak JS heap`, peakHeap / 1048576, 'MB', null);
    record(`import ${label}: longest main-thread task`, Math.max(0, ...tasks), 'ms', null);
    // For comparison: the same page opening this log afresh (what it needs to show the log at all).
    await p.reload();
    await p.waitForFunction((n) => window.appWasm && Number(document.querySelector('[data-testid=stats-events]')?.textContent.replace(/\D/g, '')) >= n, events);
    record(`import ${label}: wasm memory of a fresh page holding the imported log`, (await p.evaluate(() => window.appWasm.memory.buffer.byteLength)) / 1048576, 'MB', null);
    // The integrity check of the whole log runs in the worker: its time, and what the page's thread felt.
    await p.evaluate(() => {
      window.longTasks = [];
      new PerformanceObserver((list) => window.longTasks.push(...list.getEntries().map((e) => e.duration))).observe({ type: 'longtask' });
    });
    await p.getByRole('navigation', { name: 'Views' }).getByRole('link', { name: 'Settings', exact: true }).click();
    const t0 = Date.now();
    await p.getByTestId('verify').click();
    await p.waitForFunction(() => /events in \d+ streams|good up to/.test(document.querySelector('[data-testid=verify-result]')?.textContent ?? ''));
    const checked = await p.getByTestId('verify-result').textContent();
    if (!checked.startsWith(`${events} events`)) throw new Error(`the check of ${label} says: ${checked}`);
    record(`check the log ${label} (${events} events, in the worker)`, events / ((Date.now() - t0) / 1000), 'events/s', null);
    record(`check the log ${label}: longest main-thread task`, Math.max(0, ...(await p.evaluate(() => window.longTasks))), 'ms', null);
    await ctx.close();
  }
}

// --- Training: Retrace's models in its worker vs scikit-learn vs ml-random-forest
if (want('training')) {
  console.log('\nTraining on backtest rows (log target): helpdesk.csv, and 25,000 rows of a simulated log');
  const { readFile } = await import('node:fs/promises');
  const { execFileSync } = await import('node:child_process');
  const helpdesk = [...(await readFile('../shared/data/helpdesk.csv'))];
  // [label, source, rows, algorithm, trees, depth, scikit-learn script, also ml-random-forest]
  const runs = [
    ['forest (full)', helpdesk, 1e9, 'forest', 100, 20, 'bench/sklearn_rf.py', false],
    ['forest (2k rows, 20 trees, depth 8)', helpdesk, 2000, 'forest', 20, 8, 'bench/sklearn_rf.py', true],
    ['boosting (25k simulated rows)', [], 25000, 'boosted', 200, 6, 'bench/sklearn_hgb.py', false],
  ];
  for (const [size, csv, limit, algorithm, trees, depth, script, withJs] of runs) {
    const r = await page.evaluate(async ([csv, limit, algorithm, trees, depth]) => {
      const bytes = new Uint8Array(csv);
      const request = window.retrace.forest_request(bytes, limit, algorithm, trees, depth);
      const loader = (await (await fetch('app/worker/manifest.json')).json()).loader;
      const worker = new Worker('app/worker/' + loader, { type: 'module' });
      await new Promise((ok) => (worker.onmessage = () => ok()));
      const t0 = performance.now();
      const reply = await new Promise((ok) => {
        worker.onmessage = (ev) => {
          const b = new Uint8Array(ev.data);
          if (window.retrace.is_trained_reply(b)) ok(b);
        };
        worker.postMessage(request);
      });
      const wall = performance.now() - t0;
      worker.terminate();
      const [seconds, mae, perCase, modelBytes] = window.retrace.forest_score(reply, bytes, limit, algorithm, trees, depth);
      return { wall, seconds, mae, perCase, modelBytes };
    }, [csv, limit, algorithm, trees, depth]);
    const rows = await page.evaluate(([csv, l, a, t, d]) => window.retrace.forest_rows_json(new Uint8Array(csv), l, a, t, d), [csv, limit, algorithm, trees, depth]);
    const n = JSON.parse(rows).rows;
    const sk = JSON.parse(execFileSync('python3', [script], { input: rows, maxBuffer: 1 << 30, env: { ...process.env, OMP_NUM_THREADS: '1' } }).toString());
    const reference = script.includes('hgb') ? 'scikit-learn HistGradientBoosting' : 'scikit-learn';
    record(`${size} training / retrace worker`, r.seconds, 's', `${size} training / ${reference}`);
    record(`${size} training / ${reference}`, sk.seconds, 's', null);
    record(`${size} MAE / retrace`, r.mae, 'days', null);
    record(`${size} MAE / ${reference}`, sk.mae_days, 'days', null);
    record(`prediction per case (${size}) / retrace`, r.perCase, 'ms', `prediction per case (${size}) / ${reference}`);
    record(`prediction per case (${size}) / ${reference}`, sk.per_case_ms, 'ms', null);
    console.log(`    (${n} training rows; worker round trip ${(r.wall / 1000).toFixed(2)} s, model ${(r.modelBytes / 1e6).toFixed(1)} MB)`);
    if (withJs) {
      const js = JSON.parse(execFileSync('node', ['bench/ml_rf.mjs'], { input: rows, maxBuffer: 1 << 30 }).toString());
      record(`${size} training / ml-random-forest`, js.seconds, 's', null);
      record(`${size} MAE / ml-random-forest`, js.mae_days, 'days', null);
      record(`prediction per case (${size}) / ml-random-forest`, js.per_case_ms, 'ms', null);
    }
  }
}

// --- The page while the worker trains: longest main-thread task ---------
if (want('training')) {
  const ctx = await browser.newContext();
  const app = await ctx.newPage();
  app.setDefaultTimeout(0);
  await app.goto(url + 'app/index.html#/log');
  await app.getByTestId('import-file').setInputFiles('../shared/data/helpdesk.csv');
  await app.waitForFunction(() => !document.querySelector('[data-testid=import-start]').disabled);
  await app.getByTestId('import-start').click();
  await app.waitForFunction(() => document.querySelector('[data-testid=stats-closed]')?.textContent === '3804');
  await app.evaluate(() => {
    // The browser reports every main-thread task over 50 ms as a long task.
    window.longTasks = [];
    new PerformanceObserver((list) => window.longTasks.push(...list.getEntries().map((e) => e.duration))).observe({ type: 'longtask' });
  });
  await app.evaluate(() => { location.hash = '#/models'; });
  await app.getByTestId('train-run').click();
  await app.waitForFunction(() => /predict the same/.test(document.querySelector('[data-testid=train-status]')?.textContent));
  const tasks = await app.evaluate(() => window.longTasks);
  record('main-thread tasks over 50 ms while a model trains (helpdesk, in the worker)', tasks.length, 'tasks', null);
  if (tasks.length) record('longest of them', Math.max(...tasks), 'ms', null);
  await ctx.close();
}

// --- The whole loop: simulator → log → projections → predictions → scores --
if (want('loop')) {
  console.log('\nThe feedback loop, live (the simulator at a high rate, the loop on, a drift injected)');
  const RATE = Number(process.env.BENCH_LOOP_RATE ?? 2500);
  const SECONDS = Number(process.env.BENCH_LOOP_SECONDS ?? 60);
  for (let run = 1; run <= RUNS; run += 1) {
  const tag = RUNS > 1 ? `, run ${run}` : '';
  const ctx = await browser.newContext();
  const app = await ctx.newPage();
  app.setDefaultTimeout(0);
  await app.goto(url + 'app/index.html');
  await app.getByTestId('event-count').waitFor();
  // The demo's loop in the app's own log (the demo itself stops once its
  // story is told): the first model once 150 cases have closed, then a
  // drift for the loop to find and retrain for.
  await app.locator('summary', { hasText: 'Policy' }).click();
  await app.getByTestId('policy-first').fill('150');
  await app.getByTestId('policy-first').press('Tab');
  await app.getByTestId('predict-toggle').check();
  await app.getByTestId('sim-rate').fill(String(RATE));
  await app.getByTestId('sim-start').click();
  await app.waitForFunction(() => document.querySelector('[data-testid=loop-champion]')?.textContent === 'champion: model-1');
  await app.getByTestId('drift-inject').click();
  const counts = () => app.evaluate(() => {
    const text = document.querySelector('[data-testid=stats-events]').closest('dl').textContent;
    const n = (t) => Number((text.match(new RegExp(`${t}: (\\d+)`)) ?? [0, 0])[1]);
    return {
      source: n('CaseOpened') + n('ActivityRecorded') + n('CaseClosed'),
      predictions: n('PredictionRecorded'),
      all: Number(document.querySelector('[data-testid=stats-events]').textContent),
      head: Number(document.querySelector('[data-testid=event-count]').textContent),
      at: performance.now(),
    };
  });
  await app.evaluate(() => {
    window.longTasks = [];
    new PerformanceObserver((list) => window.longTasks.push(...list.getEntries().map((e) => e.duration))).observe({ type: 'longtask' });
  });
  // The observer must see a long task when there is one: make one, check, reset.
  await app.evaluate(() => new Promise((done) => setTimeout(() => {
    const t = performance.now();
    while (performance.now() - t < 80);
    setTimeout(done, 50);
  }, 0)));
  await app.waitForFunction(() => window.longTasks.length > 0);
  await app.evaluate(() => { window.longTasks = []; });
  // When each model's training message shows, and when its registry row does.
  await app.evaluate(() => {
    window.statusAt = {};
    window.rowAt = {};
    new MutationObserver(() => {
      const now = performance.now();
      const m = (document.querySelector('[data-testid=loop-status]')?.textContent ?? '').match(/^(model-\d+) trained/);
      if (m && !(m[1] in window.statusAt)) window.statusAt[m[1]] = now;
      for (const tr of document.querySelectorAll('[data-testid=model-row]')) {
        if (!(tr.dataset.model in window.rowAt)) window.rowAt[tr.dataset.model] = now;
      }
    }).observe(document.body, { subtree: true, childList: true, characterData: true });
  });
  const engine = await engineWorker(app);
  const posted = () => engine.evaluate(() => [self.retracePosted ?? 0, self.retracePostedViews ?? 0]);
  const a = await counts();
  const postedBefore = await posted();
  await app.waitForTimeout(SECONDS * 1000);
  const b = await counts();
  const postedAfter = await posted();
  const seconds = (b.at - a.at) / 1000;
  const tasks = await app.evaluate(() => window.longTasks);
  const latency = await app.getByTestId('latency').textContent();
  const [p50, p99] = [...latency.matchAll(/p\d+ (\d+) ms/g)].map((m) => Number(m[1]));
  record(`loop: source events projected (simulator at ${RATE}/s)${tag}`, (b.source - a.source) / seconds, 'events/s', null);
  record(`loop: predictions recorded and scored${tag}`, (b.predictions - a.predictions) / seconds, 'events/s', null);
  record(`loop: all events appended and projected${tag}`, (b.all - a.all) / seconds, 'events/s', null);
  record(`loop: projections behind the head at the end${tag}`, b.head - b.all, 'events', null);
  record(`loop: projections behind the head at the end, in time${tag}`, (b.head - b.all) / ((b.all - a.all) / seconds), 's', null);
  const listing = await app.evaluate(() => Object.keys(window.statusAt).filter((m) => m in window.rowAt).map((m) => Math.max(0, window.rowAt[m] - window.statusAt[m])));
  if (listing.length) record(`loop: registry row after its model was trained (worst)${tag}`, Math.max(...listing), 'ms', null);
  record(`loop: bytes the engine posted to the page${tag}`, (postedAfter[0] - postedBefore[0]) / 1000 / seconds, 'KB/s', null);
  record(`loop: bytes of views the engine posted to the page${tag}`, (postedAfter[1] - postedBefore[1]) / 1000 / seconds, 'KB/s', null);
  record(`loop: prediction latency p50${tag}`, p50, 'ms', null);
  record(`loop: prediction latency p99${tag}`, p99, 'ms', null);
  record(`loop: main-thread tasks over 50 ms${tag}`, tasks.length, 'tasks', null);
  record(`loop: longest main-thread task${tag}`, tasks.length ? Math.max(...tasks) : 0, 'ms', null);
  console.log(`    (${latency}; ${await app.getByTestId('loop-champion').textContent()})`);
  // What the run left on disk: the bytes of every record, store by store
  // (what IndexedDB is handed; it may compress them), and its usage.
  await app.getByTestId('sim-pause').click();
  await app.getByTestId('predict-toggle').uncheck();
  const stored = await app.evaluate(async () => {
    const db = await new Promise((ok, fail) => { const r = indexedDB.open('retrace'); r.onsuccess = () => ok(r.result); r.onerror = () => fail(r.error); });
    const size = (v) => v == null ? 0 : ArrayBuffer.isView(v) || v instanceof ArrayBuffer ? v.byteLength : typeof v === 'string' ? v.length
      : Array.isArray(v) ? v.reduce((a, x) => a + size(x), 0) : typeof v === 'object' ? Object.values(v).reduce((a, x) => a + size(x), 0) : 8;
    const per = {};
    for (const name of db.objectStoreNames) {
      const values = await new Promise((ok) => { const r = db.transaction(name).objectStore(name).getAll(); r.onsuccess = () => ok(r.result); });
      per[name] = [values.length, values.reduce((a, v) => a + size(v), 0)];
    }
    // Snapshots by projection: how many, and the newest one's size.
    const snaps = {};
    await new Promise((ok) => {
      const r = db.transaction('snapshots').objectStore('snapshots').openCursor();
      r.onsuccess = () => {
        const c = r.result;
        if (!c) return ok();
        const [name] = c.key;
        snaps[name] = [(snaps[name]?.[0] ?? 0) + 1, c.value.byteLength];
        c.continue();
      };
    });
    per.snapshotsByName = snaps;
    db.close();
    const { usageDetails } = await navigator.storage.estimate();
    return { per, indexedDB: usageDetails?.indexedDB ?? null, head: Number(document.querySelector('[data-testid=event-count]').textContent) };
  });
  const snaps = stored.per.snapshotsByName;
  delete stored.per.snapshotsByName;
  console.log(`    (snapshots by projection, count and newest size: ${Object.entries(snaps).map(([k, [n, b]]) => `${k} ${n} × ${(b / 1e6).toFixed(2)} MB`).join(', ')})`);
  const segments = stored.per.segments?.[1] ?? 0;
  const beside = Object.entries(stored.per).filter(([n]) => n !== 'segments').reduce((a, [, [, b]]) => a + b, 0);
  console.log(`    (stored after the run, ${stored.head} events: ${Object.entries(stored.per).filter(([, [n]]) => n).map(([k, [n, b]]) => `${k} ${n} records ${(b / 1e6).toFixed(2)} MB`).join(', ')})`);
  record(`loop: stored beside the log's segments after the run, share of the segments${tag}`, beside / segments, '×', null);
  record(`loop: model bytes kept after the run${tag}`, (stored.per.model_bytes?.[1] ?? 0) / 1e6, 'MB', null);
  if (stored.indexedDB) record(`loop: IndexedDB usage per event after the run${tag}`, stored.indexedDB / stored.head, 'bytes/event', null);
  await ctx.close();
  }
}

// --- Projections: fold throughput and boot time -------------------------
if (want('projections')) {
console.log('\nProjections: fold throughput and boot time of the app');
{
  const n = Number(process.env.BENCH_FOLD ?? 200_000);
  // One warm-up run (allocator growth, JIT tiers), then the median of three.
  const runs = await page.evaluate((n) => [0, 1, 2, 3].map(() => window.retrace.fold_throughput(n)).slice(1), n);
  runs.sort((a, b) => a[0] - b[0]);
  const [foldMs, decodeMs] = runs[1];
  record('fold all projections, from memory (decoded)', n / (foldMs / 1000), 'events/s', null);
  record('decode + fold all projections, from memory', n / ((foldMs + decodeMs) / 1000), 'events/s', null);
}
const BOOT_SIZES = (process.env.BENCH_BOOT ?? '10000,100000,1000000').split(',').map(Number);
for (const snapshots of [true, false]) {
  for (const [n, run] of BOOT_SIZES.flatMap((n, i) => (i === BOOT_SIZES.length - 1 ? Array.from({ length: RUNS }, (_, r) => [n, r + 1]) : [[n, 1]]))) {
    // A fresh profile per run: the app's own database, filled as a long run leaves it.
    const ctx = await browser.newContext();
    const p = await ctx.newPage();
    p.setDefaultTimeout(0);
    // Every main-thread task over 50 ms from the first script on.
    await p.addInitScript(() => {
      window.longTasks = [];
      new PerformanceObserver((list) => window.longTasks.push(...list.getEntries().map((e) => e.duration))).observe({ type: 'longtask', buffered: true });
    });
    await p.goto(url + 'page.html');
    await p.waitForFunction(() => document.getElementById('status').textContent === 'ready');
    await p.evaluate(([n, s]) => window.retrace.prefill('retrace', n, s), [n, snapshots]);
    await p.goto(url + 'app/index.html');
    await p.waitForFunction(() => /replayed \d+ events/.test(document.querySelector('[data-testid=boot-line]')?.textContent ?? ''), null, { polling: 'raf' });
    const ms = await p.evaluate(() => performance.now());
    const line = await p.getByTestId('boot-line').textContent();
    const label = `boot ${n / 1000}k events, ${snapshots ? 'with' : 'without'} snapshots`;
    // Then the views show the whole log, drawn (two frames later).
    await p.waitForFunction((n) => Number(document.querySelector('main')?.dataset.seq) === n, n);
    await p.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
    const longest = Math.max(0, ...(await p.evaluate(() => window.longTasks)));
    if (run === 1) record(label, ms, 'ms', null);
    else console.log(`  ${label}, run ${run}: ${ms.toFixed(0)} ms`);
    record(`${label}: longest main-thread task${n === BOOT_SIZES[BOOT_SIZES.length - 1] ? `, run ${run}` : ''}`, longest, 'ms', null);
    console.log(`    (${line})`);
    await ctx.close();
  }
}
{
  const big = BOOT_SIZES[BOOT_SIZES.length - 1];
  const small = BOOT_SIZES[0];
  const row = byCase.get(`boot ${big / 1000}k events, with snapshots`);
  row.vs = `boot ${small / 1000}k events, with snapshots`;
}
}

// --- A vast log: ten million events in one browser (#31) ----------------
// The simulator's events written by the bench page (speed profile), the
// projections replayed and snapshotted there, then the app opened on it.
if (want('vast')) {
  const n = Number(process.env.BENCH_VAST ?? 10_000_000);
  const tag = n % 1_000_000 === 0 ? `${n / 1_000_000}M` : `${n / 1000}k`;
  console.log(`\nA vast log: ${n.toLocaleString('en')} simulated events`);
  const ctx = await browser.newContext();
  const p = await ctx.newPage();
  p.setDefaultTimeout(0);
  await p.goto(url + 'page.html');
  await p.waitForFunction(() => document.getElementById('status').textContent === 'ready');
  const [, appendMs, replayMs, saveMs, appendedBytes] = await p.evaluate((n) => window.retrace.prefill('retrace', n, true), n);
  const appendedMb = appendedBytes / 1048576;
  record(`append at ${tag} events, batches of 10,000`, n / (appendMs / 1000), 'events/s', null);
  record(`replay ${tag} events from the store into all projections (read, decode, fold)`, n / (replayMs / 1000), 'events/s', null);
  record(`save the projections' snapshots at ${tag} events`, saveMs, 'ms', null);
  record(`memory at ${tag} events, the bench page once it has appended them (its stream table)`, appendedMb, 'MB', null);
  record(`memory at ${tag} events, the bench page once it has also folded every projection`, (await p.evaluate(() => window.retrace.memory_bytes())) / 1048576, 'MB', null);
  const [readMs, read] = await p.evaluate(() => window.retrace.retrace_read('retrace', 4096));
  if (read !== n) throw new Error(`read ${read} events back, not ${n}`);
  record(`read all ${tag} events in order, decoded`, n / (readMs / 1000), 'events/s', null);
  // A store opened afresh appends: it loads the stream table (its checkpoint and the tail past it) first.
  record(`first append of 10,000 events to the ${tag} log, opened afresh`, await p.evaluate(() => window.retrace.retrace_append('retrace', 10000, 10000)), 'ms', null);
  const head = n + 10_000;
  // The app on that log, as a returning user opens it (the same tab, as the
  // boot cases above do).
  const app = p;
  await app.addInitScript(() => {
    addEventListener('TrunkApplicationStarted', (e) => { window.appWasm = e.detail.wasm; });
    window.longTasks = [];
    new PerformanceObserver((list) => window.longTasks.push(...list.getEntries().map((e) => e.duration))).observe({ type: 'longtask', buffered: true });
  });
  await app.goto(url + 'app/index.html');
  await app.waitForFunction(() => /replayed \d+ events/.test(document.querySelector('[data-testid=boot-line]')?.textContent ?? ''), null, { polling: 'raf' });
  record(`boot ${tag} events, with snapshots`, await app.evaluate(() => performance.now()), 'ms', null);
  // The longest main-thread task in each phase, to say where one was.
  const phases = [];
  const phase = async (name) => {
    const tasks = await app.evaluate(() => window.longTasks.splice(0));
    phases.push(`${name} ${Math.max(0, ...tasks).toFixed(0)} ms`);
    return tasks;
  };
  const all = [...(await phase('boot'))];
  console.log(`    (${await app.getByTestId('boot-line').textContent()})`);
  const shown = Date.now();
  await app.waitForFunction((h) => Number(document.querySelector('main')?.dataset.seq) === h, head);
  await app.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
  console.log(`    (the views show all ${head.toLocaleString('en')} events ${Date.now() - shown} ms after the boot line)`);
  all.push(...(await phase('the views drawn')));
  record(`memory at ${tag} events, page`, (await app.evaluate(() => window.appWasm.memory.buffer.byteLength)) / 1048576, 'MB', null);
  record(`memory at ${tag} events, engine worker`, (await engineWasmBytes(app)) / 1048576, 'MB', null);
  // Time travel to the middle: the views at seq n/2, rebuilt from the nearest snapshot.
  await app.evaluate(() => { location.hash = '#/log'; });
  await app.waitForSelector('[data-testid=travel-slider]');
  let t = Date.now();
  await app.getByTestId('travel-slider').fill(String(n / 2));
  await app.waitForFunction((m) => Number(document.querySelector('[data-testid=stats-events]')?.textContent.replace(/\D/g, '')) === m, n / 2);
  record(`time travel to the middle of ${tag} events`, Date.now() - t, 'ms', null);
  await app.getByTestId('travel-live').click();
  await app.waitForFunction((m) => Number(document.querySelector('[data-testid=stats-events]')?.textContent.replace(/\D/g, '')) === m, head);
  all.push(...(await phase('time travel and back')));
  // The integrity check over the whole log.
  await app.evaluate(() => { location.hash = '#/settings'; });
  t = Date.now();
  await app.getByTestId('verify').click();
  await app.waitForFunction(() => {
    const v = document.querySelector('[data-testid=verify-result]')?.textContent ?? '';
    return v !== '' && !v.includes('checking');
  });
  record(`integrity check of ${tag} events`, Date.now() - t, 'ms', null);
  console.log(`    (${await app.getByTestId('verify-result').textContent()})`);
  all.push(...(await phase('integrity check')));
  // Disk, everything counted: what the browser says IndexedDB holds for this origin.
  const disk = await app.evaluate(async () => (await navigator.storage.estimate()).usageDetails?.indexedDB ?? null);
  if (disk) record(`disk bytes per event at ${tag} events`, disk / head, 'bytes/event', null);
  // The engine appends to the log (one demo event): it loads the stream
  // table, which holds every stream's version — what a 10M log costs once
  // the tab writes to it.
  await app.getByTestId('append-demo').click();
  await app.waitForFunction((h) => Number(document.querySelector('[data-testid=event-count]')?.textContent.replace(/\D/g, '')) > h, head);
  record(`memory at ${tag} events, engine worker, once it has appended`, (await engineWasmBytes(app)) / 1048576, 'MB', null);
  all.push(...(await phase('an append')));
  record(`${tag} events: longest main-thread task`, Math.max(0, ...all), 'ms', null);
  console.log(`    (by phase: ${phases.join(', ')})`);
  await ctx.close();
}

// --- A shared log: push from one browser, join from another --------------
if (want('shared')) {
  const { spawn } = await import('node:child_process');
  const { mkdtemp, readFile } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const net = await import('node:net');
  const CASES = Number(process.env.BENCH_SHARED_CASES ?? 20_000);
  console.log(`\nShared log: nats-server (JetStream, WebSocket) on loopback; a CSV of ${CASES} cases imported in one browser, then joined by another`);
  const freePort = () => new Promise((ok) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => ok(port)); });
  });
  const dir = await mkdtemp(join(tmpdir(), 'retrace-bench-nats-'));
  const [port, ws] = [await freePort(), await freePort()];
  await writeFile(join(dir, 'nats.conf'), `listen: 127.0.0.1:${port}\njetstream { store_dir: "${dir}" }\nwebsocket { listen: "127.0.0.1:${ws}", no_tls: true, compression: true }\n`);
  const nats = spawn(process.env.NATS_SERVER ?? 'target/tools/nats/bin/nats-server', ['-c', join(dir, 'nats.conf')], { stdio: 'ignore' });
  for (let up = false; !up;) {
    up = await new Promise((ok) => { const c = net.connect(ws, '127.0.0.1', () => { c.end(); ok(true); }); c.on('error', () => ok(false)); });
    if (!up) await new Promise((r) => setTimeout(r, 50));
  }
  const lines = ['case,activity,timestamp,resource'];
  for (let c = 0; c < CASES; c++) {
    const start = Date.UTC(2024, 0, 1) + c * 60_000;
    for (let k = 0; k < 5; k++) lines.push(`case ${c},step ${k},${new Date(start + k * 3_600_000).toISOString()},r${(c + k) % 17}`);
  }
  const csv = join(dir, 'shared.csv');
  await writeFile(csv, lines.join('\n') + '\n');
  const status = (p) => p.getByTestId('sync-status').textContent();
  // BENCH_PASSPHRASE: the same runs on encrypted logs (but the writers'
  // log, which plain NATS clients write).
  const joinLog = async (log = 'bench', init, passphrase = process.env.BENCH_PASSPHRASE ?? '') => {
    const ctx = await browser.newContext();
    if (init) await ctx.addInitScript(init);
    const p = await ctx.newPage();
    p.setDefaultTimeout(0);
    await p.goto(url + 'app/index.html#/settings');
    await p.getByTestId('shared-server').fill(`ws://127.0.0.1:${ws}`);
    await p.getByTestId('shared-log').fill(log);
    if (passphrase) await p.getByTestId('shared-passphrase').fill(passphrase);
    const t0 = Date.now();
    await Promise.all([p.waitForEvent('load'), p.getByTestId('shared-connect').click()]);
    await p.waitForFunction(() => /^connected/.test(document.querySelector('[data-testid=sync-status]')?.textContent ?? ''));
    await p.evaluate(() => {
      window.longTasks = [];
      new PerformanceObserver((list) => window.longTasks.push(...list.getEntries().map((e) => e.duration))).observe({ type: 'longtask' });
    });
    return { ctx, p, t0 };
  };
  // A browser packs what it received (share::packs) once it has it: wait
  // until its packs reach `n` events.
  const packed = (p, n) => p.waitForFunction((n) => Number(document.querySelector('[data-testid=sync-status]')?.textContent.match(/(\d+) events packed on the server/)?.[1]) >= n, n);
  const settled = (p, n) => p.waitForFunction((n) => {
    const t = document.querySelector('[data-testid=sync-status]')?.textContent ?? '';
    return t.includes(`${n} events on the server;`) && / 0 waiting, 0 in the outbox/.test(t)
      && Number(document.querySelector('[data-testid=event-count]')?.textContent) === n;
  }, n);
  // Push: one browser imports (the import waits in its outbox as one unit)
  // and sends it; timed until the server holds all of it and this browser
  // has it back in its log.
  const A = await joinLog();
  await A.p.getByRole('navigation', { name: 'Views' }).getByRole('link', { name: 'Log', exact: true }).click();
  await A.p.getByTestId('import-file').setInputFiles(csv);
  await A.p.waitForFunction(() => !document.querySelector('[data-testid=import-start]').disabled);
  await A.p.getByTestId('import-start').click();
  await A.p.waitForFunction(() => document.querySelector('[data-testid=import-status]')?.querySelector('.ok, [data-testid=import-error]'));
  const imported = (await A.p.getByTestId('import-status').textContent()).match(/\((\d+) events/);
  if (!imported) throw new Error(`the shared import failed: ${await A.p.getByTestId('import-status').textContent()}`);
  const events = Number(imported[1]) + 1;
  record('shared log: import into the outbox, longest main-thread task', Math.max(0, ...(await A.p.evaluate(() => window.longTasks))), 'ms', null);
  await A.p.evaluate(() => { window.longTasks.length = 0; });
  const t0 = Date.now();
  await settled(A.p, events);
  const pushS = (Date.now() - t0) / 1000;
  record(`shared log: push ${events} events from one browser`, events / pushS, 'events/s', null);
  record('shared log: push, longest main-thread task', Math.max(0, ...(await A.p.evaluate(() => window.longTasks))), 'ms', null);
  console.log(`    (${await status(A.p)})`);
  // Join: a second browser downloads the whole log into IndexedDB — from
  // the pack the first made of it (the import is one unit, so one pack).
  const tp = Date.now();
  await packed(A.p, events);
  console.log(`    (the pushing browser packed the log on the server in ${((Date.now() - tp) / 1000).toFixed(1)} s more)`);
  const B = await joinLog();
  await settled(B.p, events);
  const joinS = (Date.now() - B.t0) / 1000;
  if (!/read from packs here/.test(await status(B.p))) throw new Error(`the join read no pack: ${await status(B.p)}`);
  record(`shared log: join from packs (download ${events} events into IndexedDB)`, events / joinS, 'events/s', null);
  record('shared log: join, longest main-thread task', Math.max(0, ...(await B.p.evaluate(() => window.longTasks))), 'ms', null);
  await A.ctx.close();
  await B.ctx.close();

  /** The log of `p` as exported (Log → Export), in seq order. */
  const exported = async (p) => {
    await p.getByRole('navigation', { name: 'Views' }).getByRole('link', { name: 'Log', exact: true }).click();
    const [download] = await Promise.all([p.waitForEvent('download'), p.getByTestId('export-log').click()]);
    const text = await readFile(await download.path(), 'utf8');
    return text.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l)).sort((x, y) => Number(x.sequence) - Number(y.sequence));
  };
  const percentile = (xs, q) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(q * s.length))]; };

  // Visibility: browser A runs the simulator on a shared log at 1,000
  // events/s; browser B shows the count of its log. An event's latency is
  // from the moment A put it in its outbox (IDBObjectStore.add, read by a
  // hook in A's engine worker, which writes it) to the moment B's header counted it (a
  // MutationObserver in B's page), on one machine's clock.
  const SECONDS = Number(process.env.BENCH_VISIBLE_S ?? 20);
  const RATE = 1_000;
  const V = await joinLog('visible');
  // The simulator writes from A's engine worker: the hook goes there.
  const engineV = await engineWorker(V.p);
  await engineV.evaluate(() => {
    self.appendedAt = new Map();
    const add = IDBObjectStore.prototype.add;
    IDBObjectStore.prototype.add = function (value, key) {
      if (this.name === 'outbox' && typeof value?.events === 'string') {
        const t = Date.now();
        for (const w of JSON.parse(value.events)) self.appendedAt.set(w.event.id, t);
      }
      return add.call(this, value, key);
    };
  });
  const W = await joinLog('visible');
  await W.p.evaluate(() => {
    window.seen = [];
    const count = document.querySelector('[data-testid=event-count]');
    new MutationObserver(() => window.seen.push([Date.now(), Number(count.textContent)])).observe(count, { childList: true, characterData: true, subtree: true });
  });
  await V.p.getByRole('navigation', { name: 'Views' }).getByRole('link', { name: 'Live', exact: true }).click();
  await V.p.getByTestId('sim-rate').fill(String(RATE));
  await V.p.getByTestId('sim-start').click();
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  await V.p.getByTestId('sim-pause').click();
  const written = await V.p.evaluate(() => Number(document.querySelector('[data-testid=event-count]')?.textContent));
  const total = await engineV.evaluate(() => self.appendedAt.size);
  if (total === 0) throw new Error('no event seen going into the outbox: has its record format changed?');
  await settled(W.p, total);
  const appendedAt = new Map(await engineV.evaluate(() => [...self.appendedAt]));
  const seen = await W.p.evaluate(() => window.seen);
  const latencies = [];
  let at = 0;
  for (const e of await exported(W.p)) {
    const t0 = appendedAt.get(e.id);
    while (at < seen.length && seen[at][1] < Number(e.sequence)) at++;
    if (t0 !== undefined && at < seen.length) latencies.push(seen[at][0] - t0);
  }
  console.log(`    (${total} events appended by A in ${SECONDS} s, ${latencies.length} timed as B showed them; A's own count ${written})`);
  record(`shared log: another browser sees an event, p50 (simulator at ${RATE} ev/s)`, percentile(latencies, 0.5), 'ms', null);
  record(`shared log: another browser sees an event, p99 (simulator at ${RATE} ev/s)`, percentile(latencies, 0.99), 'ms', null);
  record('shared log: another browser sees an event, longest', Math.max(...latencies), 'ms', null);
  await V.ctx.close();
  await W.ctx.close();

  // Ten writers at once on one stream: headless clients speaking the
  // protocol as the outbox does (per-case expected sequences, ids), each
  // with 64 cases under way; then a browser joins and the log it got is
  // checked: every event once.
  const { natsWriter, caseEvents } = await import('./nats_writer.mjs');
  const WRITERS = 10;
  const PER_WRITER = Number(process.env.BENCH_WRITER_CASES ?? 10_000);
  const admin = await natsWriter(port, 'admin');
  await admin.request('$JS.API.STREAM.CREATE.RETRACE_WRITERS', {
    name: 'RETRACE_WRITERS', subjects: ['retrace.writers.*'], storage: 'file', num_replicas: 1,
    duplicate_window: 86_400_000_000_000, allow_direct: true,
  });
  const acks = [];
  let refused = 0;
  const tw = Date.now();
  await Promise.all(Array.from({ length: WRITERS }, async (_, w) => {
    const client = await natsWriter(port, `w${w}`);
    let c = 0;
    const lane = async () => {
      while (c < PER_WRITER) {
        let expected = 0;
        for (const { stream, event } of caseEvents(`w${w}`, c++, Date.UTC(2025, 0, 6))) {
          const t = performance.now();
          const ack = await client.publish(`retrace.writers.${stream}`, event.id, expected, { stream, event });
          acks.push(performance.now() - t);
          if (ack.error) { refused++; break; }
          expected = ack.seq;
        }
      }
    };
    await Promise.all(Array.from({ length: 64 }, lane));
    client.close();
  }));
  const writersS = (Date.now() - tw) / 1000;
  const sent = WRITERS * PER_WRITER * 3;
  record(`shared log: ${WRITERS} writers on one stream, sustained`, sent / writersS, 'events/s', null);
  record(`shared log: ${WRITERS} writers, p99 publish → stored`, percentile(acks, 0.99), 'ms', null);
  // The first browser to join reads the stream, event by event (no
  // browser wrote this log: nobody packed it yet), and packs it.
  const J = await joinLog('writers', undefined, '');
  await settled(J.p, sent);
  record(`shared log: join the writers' log by its stream (${sent} events into IndexedDB)`, sent / ((Date.now() - J.t0) / 1000), 'events/s', null);
  record('shared log: that join, longest main-thread task', Math.max(0, ...(await J.p.evaluate(() => window.longTasks))), 'ms', null);
  // Packs end where a commit of received events ended (at most 8,000
  // apart), at least 50,000 events on from the last: the rest stays in the
  // stream.
  const tw2 = Date.now();
  await packed(J.p, sent - 58_000);
  console.log(`    (packed on the server by the joining browser in ${((Date.now() - tw2) / 1000).toFixed(1)} s: ${(await status(J.p)).match(/\d+ events packed on the server/)[0]})`);
  // The join target is for a log of a million events: BENCH_WRITER_CASES=33334.
  const K = await joinLog('writers', undefined, '');
  await settled(K.p, sent);
  record(`shared log: join the writers' log from packs (${sent} events into IndexedDB)`, sent / ((Date.now() - K.t0) / 1000), 'events/s', null);
  record('shared log: that join, longest main-thread task', Math.max(0, ...(await K.p.evaluate(() => window.longTasks))), 'ms', null);
  console.log(`    (${(await status(K.p)).match(/\d+ read from packs here/)?.[0] ?? 'nothing read from packs'})`);
  await K.ctx.close();
  const log = await exported(J.p);
  const ids = new Set(log.map((e) => e.id));
  let lost = 0;
  for (let w = 0; w < WRITERS; w++) {
    for (let c = 0; c < PER_WRITER; c++) for (let n = 0; n < 3; n++) if (!ids.has(`w${w}-${c}-${n}`)) lost++;
  }
  record(`shared log: ${WRITERS} writers, events lost`, lost, 'events', null);
  record(`shared log: ${WRITERS} writers, events stored twice`, log.length - ids.size, 'events', null);
  console.log(`    (${sent} events by ${WRITERS} writers in ${writersS.toFixed(1)} s, ${refused} refused; the joining browser holds ${log.length})`);
  admin.close();
  await J.ctx.close();
  nats.kill();
}
finish();

await mkdir('target/bench', { recursive: true });
await writeFile('target/bench/results.json', JSON.stringify(results, null, 2) + '\n');
console.log('\nwrote target/bench/results.json');
await browser.close();
server.close();
