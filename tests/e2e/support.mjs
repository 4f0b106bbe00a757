// Shared setup for the end-to-end specs: serve the release build from a
// sub-path (as a static host would) and drive Debian's chromium.
import { chromium } from 'playwright-core';
import { serve } from '../../tools/serve.mjs';

export const CHROMIUM_ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-quic',
  '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run',
];

/** Serve dist/ under /retrace/ and launch chromium. */
export async function start() {
  const { server, url } = await serve('dist', { base: '/retrace/' });
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: CHROMIUM_ARGS,
  });
  return {
    url,
    browser,
    async stop() {
      await browser.close();
      server.close();
    },
  };
}

/** The keys of one of the log's object stores, read straight from IndexedDB (behind the app's back). */
/** The page's log engine: its dedicated worker (it says it is an engine
 * once it has opened the log). */
export async function engineWorker(page, timeout = 30_000) {
  const until = Date.now() + timeout;
  for (;;) {
    for (const w of page.workers()) {
      if (await w.evaluate(() => self.retraceEngine === true).catch(() => false)) return w;
    }
    if (Date.now() > until) throw new Error('the page has no log engine worker');
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The size of the linear memory of the page's log engine (its worker, where
 * imports run): it only grows, so it is the engine's peak so far. */
export async function engineWasmBytes(page) {
  return (await engineWorker(page)).evaluate(() => self.retraceMemory.buffer.byteLength);
}

export function storedKeys(page, store, database = 'retrace') {
  return page.evaluate(([name, database]) => new Promise((ok, fail) => {
    const open = indexedDB.open(database);
    open.onerror = () => fail(open.error);
    open.onsuccess = () => {
      const db = open.result;
      const req = db.transaction(name).objectStore(name).getAllKeys();
      req.onsuccess = () => { db.close(); ok(req.result); };
      req.onerror = () => fail(req.error);
    };
  }), [store, database]);
}

/** The page object for the log panel. */
export class LogPage {
  constructor(page) {
    this.page = page;
  }

  async open(url) {
    this.errors = [];
    this.page.on('pageerror', (e) => this.errors.push(e.message));
    await this.page.goto(url);
    await this.page.getByTestId('event-count').waitFor();
    return this;
  }

  /** Go to a view (live, models, log, settings) through the navigation, as a person would. */
  async go(view) {
    const title = view[0].toUpperCase() + view.slice(1);
    await this.page.getByRole('navigation', { name: 'Views' }).getByRole('link', { name: title, exact: true }).click();
    await this.page.locator(`[data-view=${view}]:not([hidden])`).waitFor();
  }

  async count() {
    return Number(await this.page.getByTestId('event-count').textContent());
  }

  /** Wait until the event count reads `n`. */
  async countIs(n, timeout = 30_000) {
    try {
      await this.page.waitForFunction(
        (want) => document.querySelector('[data-testid=event-count]')?.textContent === String(want),
        n,
        { timeout },
      );
    } catch (e) {
      const shown = await this.page.getByTestId('event-count').textContent().catch(() => '?');
      throw new Error(`the page shows ${shown} events, not ${n}: ${e.message}`);
    }
  }

  async appendDemo() {
    await this.go('settings');
    await this.page.getByTestId('append-demo').click();
  }

  async verify() {
    await this.go('settings');
    await this.page.getByTestId('verify').click();
    await this.page.waitForFunction(() => {
      const t = document.querySelector('[data-testid=verify-result]')?.textContent ?? '';
      return t !== '' && !t.includes('checking');
    });
    return this.page.getByTestId('verify-result').textContent();
  }
}

/** The live dashboard: simulator, stream, statistics and time travel. */
export class LivePage extends LogPage {
  async number(testid) {
    return Number(await this.page.getByTestId(testid).textContent());
  }

  /**
   * Wait until the number shown under `testid` satisfies `predicate`, written
   * `n > 0`, `n === 150`, `n >= 6000`… (parsed here: the app's CSP rightly
   * forbids evaluating strings in the page).
   */
  async until(testid, predicate, timeout = 60_000) {
    const m = predicate.match(/^n\s*(===|>=|<=|>|<)\s*(-?\d+(?:\.\d+)?)$/);
    if (!m) throw new Error(`until: cannot read ${predicate}`);
    await this.page.waitForFunction(
      ([id, op, want]) => {
        const n = Number(document.querySelector(`[data-testid=${id}]`)?.textContent);
        switch (op) {
          case '===': return n === want;
          case '>=': return n >= want;
          case '<=': return n <= want;
          case '>': return n > want;
          default: return n < want;
        }
      },
      [testid, m[1], Number(m[2])],
      { timeout, polling: 100 },
    );
  }

  /**
   * Switch the loop on (first model after 100 closed cases) and play the
   * bundled helpdesk sample into the live views at 30 days per second.
   */
  async playSampleWithLoop() {
    const p = this.page;
    await p.locator('summary', { hasText: 'Policy' }).click();
    await p.getByTestId('policy-first').fill('100');
    await p.getByTestId('policy-first').press('Tab');
    await p.getByTestId('predict-toggle').check();
    await this.go('log');
    await p.getByTestId('import-file').setInputFiles('public/sample/helpdesk-1000.csv');
    await p.waitForFunction(() => !document.querySelector('[data-testid=import-start]').disabled);
    await p.getByTestId('stream-it').check();
    await p.getByTestId('stream-speed').selectOption('2592000');
    await p.getByTestId('import-start').click();
  }

  /** Choose a file to import (Log view) and wait until Import can be pressed. */
  async choose(path) {
    await this.go('log');
    await this.page.getByTestId('import-file').setInputFiles(path);
    await this.page.waitForFunction(() => !document.querySelector('[data-testid=import-start]').disabled);
  }

  /** Press Import and wait for its outcome; returns the status text. */
  async importAndWait() {
    await this.page.getByTestId('import-start').click();
    await this.page.waitForFunction(() => {
      const s = document.querySelector('[data-testid=import-status]');
      return s?.querySelector('.ok, [data-testid=import-error]');
    }, null, { timeout: 120_000 });
    return this.page.getByTestId('import-status').textContent();
  }

  /** Hold the simulator and the loop still — whether or not the demo
   * already stopped by itself once its story was told (a click on a
   * disabled button does nothing and waits for nothing). */
  async holdStill() {
    await this.go('live');
    await this.page.evaluate(() => document.querySelector('[data-testid=sim-pause]').click());
    await this.page.waitForFunction(() => document.querySelector('[data-testid=sim-status]')?.textContent !== 'running');
    await this.page.getByTestId('predict-toggle').uncheck();
  }

  async runSimulator({ rate = 200, until }) {
    await this.go('live');
    await this.page.getByTestId('sim-rate').fill(String(rate));
    await this.page.getByTestId('sim-start').click();
    await this.until('stats-events', `n >= ${until}`);
    await this.page.getByTestId('sim-pause').click();
    // Let the last commits land and the projections follow them.
    await this.page.waitForFunction(
      () => document.querySelector('[data-testid=stats-events]')?.textContent ===
        document.querySelector('[data-testid=event-count]')?.textContent,
    );
  }
}
