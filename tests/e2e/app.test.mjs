// The app as a whole: views in the URL, the first-run card and the bundled
// sample, offline after one visit, updates offered and applied whole, no
// request leaving the origin and no CSP violation, the axe-core audit,
// keyboard-only use of the demo, and screenshots of every view at laptop
// and phone sizes (kept in target/e2e-screenshots/).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cp, mkdtemp, mkdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';
import { start, LivePage, CHROMIUM_ARGS } from './support.mjs';
import { serve } from '../../tools/serve.mjs';

const SHOTS = 'target/e2e-screenshots';
const VIEWS = ['live', 'models', 'log', 'settings'];
let env;
before(async () => {
  env = await start();
  await mkdir(SHOTS, { recursive: true });
});
after(async () => {
  await env?.stop();
});

/** Record CSP violations from the first script on. */
async function watchCsp(context) {
  await context.addInitScript(() => {
    window.cspViolations = [];
    document.addEventListener('securitypolicyviolation', (e) => window.cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`));
  });
}

test('every view has its own address: a reload or a bookmark opens it', async () => {
  const context = await env.browser.newContext();
  const page = await new LivePage(await context.newPage()).open(env.url + '#/models');
  await page.page.locator('[data-view=models]:not([hidden])').waitFor();
  assert.equal(await page.page.locator('[data-view=models]').isVisible(), true);
  assert.equal(await page.page.locator('[data-view=live]').isVisible(), false);
  await page.go('log');
  assert.match(page.page.url(), /\/retrace\/#\/log$/);
  await page.page.reload();
  await page.page.locator('[data-view=log]:not([hidden])').waitFor();
  assert.equal(await page.page.title(), 'Retrace · Log');
  assert.equal(await page.page.getByRole('link', { name: 'Log', exact: true }).getAttribute('aria-current'), 'page');
  await context.close();
});

test("the loop's policy outlives a reload", async () => {
  const context = await env.browser.newContext();
  const page = await new LivePage(await context.newPage()).open(env.url);
  const p = page.page;
  await p.locator('summary', { hasText: 'Policy' }).click();
  await p.getByTestId('policy-every').fill('123');
  await p.getByTestId('policy-every').press('Tab');
  await p.getByTestId('policy-drift').uncheck();
  await p.reload();
  await p.locator('summary', { hasText: 'Policy' }).click();
  assert.equal(await p.getByTestId('policy-every').inputValue(), '123');
  assert.equal(await p.getByTestId('policy-drift').isChecked(), false);
  await context.close();
});

test('an empty browser is welcomed, and the bundled sample loads with one click', async () => {
  const context = await env.browser.newContext();
  const page = await new LivePage(await context.newPage()).open(env.url);
  const p = page.page;
  await p.getByTestId('welcome').waitFor();
  await p.getByTestId('welcome-sample').click();
  await page.until('stats-closed', 'n === 1000', 60_000);
  assert.match(await p.getByTestId('import-status').textContent(), /Imported 1000 cases/);
  assert.equal(await p.getByTestId('welcome').count(), 0, 'the welcome card is gone once the log has events');
  assert.deepEqual(page.errors, []);
  await context.close();
});

test('after one visit the app loads and works with the network off', async () => {
  const context = await env.browser.newContext();
  const page = await new LivePage(await context.newPage()).open(env.url);
  const p = page.page;
  await page.go('settings');
  await p.waitForFunction(() => /^ready/.test(document.querySelector('[data-testid=offline-ready]')?.textContent ?? ''));
  await context.setOffline(true);
  await p.reload();
  await p.getByTestId('event-count').waitFor();
  await page.appendDemo();
  await page.countIs(1);
  // The worker module comes from the cache too: train needs it.
  const worker = await p.evaluate(async () => (await fetch('worker/manifest.json')).ok);
  assert.equal(worker, true, 'the training worker is available offline');
  assert.deepEqual(page.errors, []);
  await context.close();
});

test('a new version is detected, offered, and loaded whole', { timeout: 120_000 }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'retrace-dist-'));
  await cp('dist', dir, { recursive: true });
  const { server, url } = await serve(dir, { base: '/retrace/' });
  const context = await env.browser.newContext();
  // Released whatever happens, so a failure cannot leave the file hanging.
  t.after(async () => {
    await context.close();
    server.close();
  });
  const page = await new LivePage(await context.newPage()).open(url);
  const p = page.page;
  await page.go('settings');
  await p.waitForFunction(() => /^ready/.test(document.querySelector('[data-testid=offline-ready]')?.textContent ?? ''));
  // Publish a "new version": the service worker's version changes.
  const sw = await readFile(join(dir, 'sw.js'), 'utf8');
  const next = sw.replace(/const VERSION = "([0-9a-f]+)"/, 'const VERSION = "$1-next"');
  assert.notEqual(next, sw);
  await writeFile(join(dir, 'sw.js'), next);
  await p.getByTestId('update-check').click();
  await p.getByTestId('update-banner').waitFor();
  // The listener is set before the click that reloads the page.
  const loaded = p.waitForEvent('load');
  await p.getByTestId('update-apply').click();
  await loaded;
  await p.getByTestId('event-count').waitFor();
  const keys = await p.evaluate(() => caches.keys());
  assert.ok(keys.length === 1 && keys[0].endsWith('-next'), `only the new version's cache remains: ${keys}`);
  assert.equal(await p.getByTestId('update-banner').count(), 0);
});

test('no request leaves the origin and nothing violates the CSP', async () => {
  const context = await env.browser.newContext();
  await watchCsp(context);
  const origin = new URL(env.url).origin;
  const requests = [];
  context.on('request', (r) => requests.push(r.url()));
  const page = await new LivePage(await context.newPage()).open(env.url);
  const p = page.page;
  await p.getByTestId('demo-start').click();
  await p.waitForFunction(() => document.querySelector('[data-testid=loop-champion]')?.textContent === 'champion: model-1', null, { timeout: 120_000 });
  for (const v of VIEWS) await page.go(v);
  const foreign = requests.filter((u) => !u.startsWith(origin) && !u.startsWith('blob:') && !u.startsWith('data:'));
  assert.deepEqual(foreign, [], 'every request stays on the origin');
  assert.ok(requests.some((u) => u.includes('/worker/')), 'the worker was loaded (from the origin)');
  assert.deepEqual(await p.evaluate(() => window.cspViolations), []);
  const csp = await p.evaluate(() => document.querySelector('meta[http-equiv=Content-Security-Policy]').content);
  const scriptSrc = csp.split(';').map((d) => d.trim()).find((d) => d.startsWith('script-src'));
  assert.equal(scriptSrc, "script-src 'self' 'wasm-unsafe-eval'", 'scripts only from the origin; wasm compiled, nothing evaluated');
  assert.equal(await p.locator('script:not([src])').count(), 0, 'no inline script');
  assert.deepEqual(page.errors, []);
  await context.close();
});

test('one tab drives the loop; another is told so, and takes it over when it stops', async () => {
  const context = await env.browser.newContext();
  const a = await new LivePage(await context.newPage()).open(env.url);
  const b = await new LivePage(await context.newPage()).open(env.url);
  await a.page.getByTestId('demo-start').click();
  await a.until('stats-events', 'n > 0');
  // A click, not check(): the box is meant to spring back.
  await b.page.getByTestId('predict-toggle').click();
  await b.page.waitForFunction(() => /Another tab runs the loop/.test(document.querySelector('[data-testid=loop-status]')?.textContent ?? ''));
  assert.equal(await b.page.getByTestId('predict-toggle').isChecked(), false, 'the second tab does not run the loop');
  assert.equal(await a.page.getByTestId('predict-toggle').isChecked(), true, 'the first still does');
  await a.page.getByTestId('sim-pause').click();
  await a.page.getByTestId('predict-toggle').uncheck();
  // The second tab waited in line: it takes the loop as soon as it is let go.
  await b.page.waitForFunction(() => /took the loop over/.test(document.querySelector('[data-testid=loop-status]')?.textContent ?? ''));
  assert.equal(await b.page.getByTestId('predict-toggle').isChecked(), true);
  await b.page.waitForFunction(async () => (await navigator.locks.query()).held.some((l) => l.name === 'retrace-loop'));
  assert.equal(await a.page.getByTestId('predict-toggle').isChecked(), false);
  assert.deepEqual([...a.errors, ...b.errors], []);
  await context.close();
});

test('keyboard only: the demo starts from the welcome card', async () => {
  const context = await env.browser.newContext();
  const page = await new LivePage(await context.newPage()).open(env.url);
  const p = page.page;
  await p.getByTestId('welcome').waitFor();
  let reached = false;
  for (let i = 0; i < 20 && !reached; i++) {
    await p.keyboard.press('Tab');
    reached = await p.evaluate(() => document.activeElement?.dataset?.testid === 'welcome-demo');
  }
  assert.ok(reached, 'Tab reaches the demo button');
  const visible = await p.evaluate(() => getComputedStyle(document.activeElement).outlineStyle !== 'none');
  assert.ok(visible, 'the focused button shows a focus ring');
  await p.keyboard.press('Enter');
  await page.until('stats-events', 'n > 100', 60_000);
  assert.equal(await p.getByTestId('predict-toggle').isChecked(), true, 'the loop runs');
  assert.equal(await p.evaluate(() => document.activeElement?.closest('main')?.id), 'main', 'the keyboard goes on from the content after the demo opens its log');
  // The views are reachable by keyboard too.
  await p.getByRole('link', { name: 'Models', exact: true }).focus();
  await p.keyboard.press('Enter');
  await p.locator('[data-view=models]:not([hidden])').waitFor();
  await context.close();
});

test('axe-core finds no serious or critical problem on any view; screenshots at laptop and phone size', async () => {
  const axe = await readFile(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
  // A populated log: the demo until a challenger has been judged.
  const context = await env.browser.newContext({ bypassCSP: true, viewport: { width: 1280, height: 800 } });
  const page = await new LivePage(await context.newPage()).open(env.url);
  const p = page.page;
  await p.getByTestId('demo-start').click();
  await p.waitForFunction(() => /ModelPromoted: [2-9]/.test(document.querySelector('[data-testid=stats-events]')?.closest('dl')?.textContent ?? ''), null, { timeout: 240_000, polling: 500 });
  await page.holdStill();
  await page.go('models');
  await p.getByTestId('backtest-run').click();
  await p.getByTestId('backtest-table').waitFor({ timeout: 300_000 });
  await p.evaluate(axe);
  for (const size of [{ width: 1280, height: 800 }, { width: 390, height: 844 }]) {
    await p.setViewportSize(size);
    for (const v of VIEWS) {
      await page.go(v);
      const result = await p.evaluate(() => window.axe.run(document, { runOnly: ['wcag2a', 'wcag2aa', 'best-practice'] }));
      const bad = result.violations.filter((x) => x.impact === 'serious' || x.impact === 'critical');
      assert.deepEqual(bad.map((x) => `${x.id}: ${x.nodes.map((n) => n.target.join(' ')).slice(0, 3).join(', ')}`), [], `${v} at ${size.width}px`);
      const overflow = await p.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `${v} at ${size.width}px fits the width (overflow ${overflow}px)`);
      await p.screenshot({ path: `${SHOTS}/${v}-${size.width}.png`, fullPage: true });
      const charts = await p.evaluate((view) => [...document.querySelectorAll(`[data-view=${view}] figure.chart`)]
        .map((f) => f.querySelectorAll('path, rect, circle').length), v);
      assert.ok(charts.every((n) => n > 0), `${v}: every chart has marks (${charts})`);
      if (v !== 'settings') assert.ok(charts.length > 0, `${v} shows charts`);
    }
  }
  await context.close();
});
