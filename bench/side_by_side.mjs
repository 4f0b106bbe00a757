// The fold and the store of an older commit's bench page (target/bench/old-site)
// beside this tree's (target/bench/site), in one browser, taking turns so a
// busy machine slows both alike. Run through bench/side_by_side.sh.
import { chromium } from 'playwright-core';
import { serve } from '../tools/serve.mjs';
import { CHROMIUM_ARGS } from '../tests/e2e/support.mjs';

const N = 100_000;
const FOLD = 200_000;
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const { server, url } = await serve('target/bench');
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', args: CHROMIUM_ARGS });
const sites = { [process.env.REV ?? 'old']: 'old-site', 'this tree': 'site' };
const pages = {};
const figures = {};
for (const [label, dir] of Object.entries(sites)) {
  const page = await browser.newPage();
  page.setDefaultTimeout(0);
  await page.goto(`${url}${dir}/page.html`);
  await page.waitForFunction(() => document.getElementById('status').textContent === 'ready');
  await page.evaluate(({ N, FOLD }) => {
    window.events = window.baselines.workload(window.retrace, N);
    window.retrace.fold_throughput(FOLD); // warm-up
  }, { N, FOLD });
  pages[label] = page;
  figures[label] = {};
}
const add = (label, name, value) => (figures[label][name] ??= []).push(value);
for (let round = 0; round < ROUNDS; round += 1) {
  for (const [label, page] of Object.entries(pages)) {
    const js = (expr) => page.evaluate(`(async () => await ${expr})()`);
    const db = `side-${sites[label]}-${round}`;
    const [foldMs] = await page.evaluate((n) => window.retrace.fold_throughput(n), FOLD);
    add(label, 'fold of all projections, decoded', FOLD / (foldMs / 1000));
    for (const batch of [10_000, 100]) {
      await js(`baselines.deleteDb('${db}-${batch}')`);
      add(label, `append, batches of ${batch}`, N / ((await js(`retrace.retrace_append('${db}-${batch}', ${N}, ${batch})`)) / 1000));
      if (batch === 10_000) {
        const [ms, count] = await js(`retrace.retrace_read('${db}-${batch}', 4096)`);
        if (count !== N) throw new Error(`${label} read ${count} of ${N} events`);
        add(label, 'read all in order', N / (ms / 1000));
      }
      await js(`baselines.deleteDb('${db}-${batch}')`);
    }
    await js(`baselines.deleteDb('${db}-live')`);
    add(label, 'live one-event appends (group commit)', 20_000 / ((await js(`retrace.retrace_append_live('${db}-live', 20000)`)) / 1000));
    await js(`baselines.deleteDb('${db}-live')`);
  }
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const [a, b] = Object.keys(figures);
console.log(`\nmedians of ${ROUNDS} rounds, events/s\n`);
console.log(`${'case'.padEnd(40)} ${a.padStart(12)} ${b.padStart(12)}  ratio`);
for (const name of Object.keys(figures[a])) {
  const [x, y] = [median(figures[a][name]), median(figures[b][name])];
  console.log(`${name.padEnd(40)} ${Math.round(x).toString().padStart(12)} ${Math.round(y).toString().padStart(12)}  ${(y / x).toFixed(2)}×   (${figures[a][name].map(Math.round).join(" ")} / ${figures[b][name].map(Math.round).join(" ")})`);
}
await browser.close();
server.close();
