// The demo as a newcomer meets it: it runs in a log of its own (the
// user's log is left exactly as it was), a reload resumes it where it was,
// it tells its story and stops, and every view fits its cards at laptop
// and phone width while it shows.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { start, LivePage } from './support.mjs';

let env;
before(async () => {
  env = await start();
});
after(async () => {
  await env?.stop();
});

const VIEWS = ['live', 'models', 'log', 'settings'];

async function byType(p) {
  const text = await p.evaluate(() => document.querySelector('[data-testid=stats-events]').closest('dl').textContent);
  return Object.fromEntries([...text.matchAll(/(?:^|[^A-Za-z]|type)([A-Z][A-Za-z]+): (\d+)/g)].map((m) => [m[1], Number(m[2])]));
}

/** What does not fit on the view shown: cards wider than themselves,
 * tables and charts past their card's edge (a table may scroll inside its
 * own box), chart text under 11 px, a page wider than the window. */
function misfits(page) {
  return page.evaluate(() => {
    const out = [];
    for (const card of document.querySelectorAll('.card')) {
      if (card.closest('[hidden]') || card.offsetParent === null) continue;
      const name = card.querySelector('h2')?.textContent ?? '?';
      if (card.scrollWidth > card.clientWidth + 1) out.push(`${name}: content ${card.scrollWidth} px in a card of ${card.clientWidth}`);
      const edge = card.getBoundingClientRect().right;
      for (const el of card.querySelectorAll('svg, table')) {
        const box = el.closest('.scroll') ?? el;
        const r = box.getBoundingClientRect();
        if (r.width > 0 && r.right > edge + 1) out.push(`${name}: a ${el.tagName.toLowerCase()} reaches ${Math.round(r.right)} px, the card ends at ${Math.round(edge)}`);
      }
      for (const svg of card.querySelectorAll('svg')) {
        const shown = svg.getBoundingClientRect().width;
        const drawn = svg.viewBox.baseVal?.width || shown;
        for (const t of svg.querySelectorAll('text')) {
          const px = parseFloat(getComputedStyle(t).fontSize) * (shown / drawn);
          if (px < 10.9) {
            out.push(`${name}: chart text ${px.toFixed(1)} px`);
            break;
          }
        }
      }
    }
    if (document.documentElement.scrollWidth > innerWidth + 1) out.push(`the page is ${document.documentElement.scrollWidth} px wide in a window of ${innerWidth}`);
    return out;
  });
}

test('the demo runs in its own log, resumes after a reload, tells its story and stops; every view fits at 1280 and 390 px', { timeout: 600_000 }, async () => {
  const context = await env.browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await new LivePage(await context.newPage()).open(env.url);
  const p = page.page;
  assert.equal(await p.getByTestId('log-shown').textContent(), 'Your log');
  // The user's own log holds something first.
  await page.runSimulator({ until: 300 });
  const own = await page.count();
  const ownTypes = await byType(p);

  await p.getByTestId('demo-start').click();
  await p.waitForFunction(() => document.querySelector('[data-testid=log-shown]')?.textContent === 'Demo log', null, { timeout: 30_000 });
  await page.until('event-count', 'n > 1500', 60_000);
  assert.equal(await p.getByTestId('predict-toggle').isChecked(), true, 'the demo runs the loop');

  // A reload mid-demo: it goes on from where it was.
  const before = await page.count();
  await p.reload();
  await p.getByTestId('event-count').waitFor();
  assert.equal(await p.getByTestId('log-shown').textContent(), 'Demo log');
  await page.until('event-count', `n > ${before + 500}`, 60_000);
  assert.equal(await p.getByTestId('predict-toggle').isChecked(), true, 'the loop runs again after the reload');

  // The story: one change, an alarm, a challenger promoted; then it stops.
  await p.getByTestId('demo-note').waitFor({ timeout: 300_000 });
  assert.match(await p.getByTestId('demo-note').textContent(), /story is told: .*model-\d+ was trained on the new cases and took over/);
  assert.equal(await p.getByTestId('sim-status').textContent(), 'stopped');
  await p.waitForFunction(() => document.querySelector('main')?.dataset.seq === document.querySelector('[data-testid=event-count]')?.textContent);
  const told = await page.count();
  const types = await byType(p);
  assert.equal(types.ProcessChanged, 1, `the process changed once, though the run was resumed: ${JSON.stringify(types)}`);
  assert.ok(types.DriftDetected >= 1 && types.ModelPromoted >= 2, JSON.stringify(types));

  // The time left says what it means: a time and its interval, "any time
  // now" once the predicted time has passed, "overdue" once the interval
  // has — never "0.0 h" for a case that is still open.
  const left = await p.evaluate(() => [...document.querySelectorAll('[data-testid=open-row]')].map((r) => r.cells[1].textContent));
  assert.ok(left.length > 0, 'open cases are listed');
  for (const text of left) {
    assert.match(text, /^(—|overdue: its 80 % interval ended \d+(\.\d+)? [a-z]+ ago|any time now( \(at most \d+(\.\d+)? [a-z]+\))?|\d+(\.\d+)? [a-z]+ \(\d+(\.\d+)? [a-z]+–\d+(\.\d+)? [a-z]+\))$/, `open case: ${text}`);
    assert.ok(!/^0\.0 h/.test(text), `a case still open is not given 0.0 h: ${text}`);
  }

  // Every view fits, at laptop and phone width; the prediction comes
  // first in the open cases, visible without scrolling.
  for (const size of [{ width: 1280, height: 800 }, { width: 390, height: 844 }]) {
    await p.setViewportSize(size);
    for (const v of VIEWS) {
      await page.go(v);
      await p.waitForFunction(() => [...document.querySelectorAll('[data-view]:not([hidden]) figure.chart svg')]
        .every((s) => Math.abs(s.viewBox.baseVal.width - s.getBoundingClientRect().width) < 2));
      assert.deepEqual(await misfits(p), [], `${v} at ${size.width} px`);
    }
    await page.go('live');
    const seen = await p.evaluate(() => {
      const th = [...document.querySelectorAll('th')].find((t) => t.textContent.startsWith('predicted left'));
      const box = th.closest('.scroll').getBoundingClientRect();
      return th.getBoundingClientRect().right <= box.right + 1;
    });
    if (size.width === 1280) assert.ok(seen, 'the predicted time is visible in the open cases without scrolling');
  }

  // Told is told: a reload keeps it stopped, with the same line.
  await p.setViewportSize({ width: 1280, height: 800 });
  await p.reload();
  await p.getByTestId('demo-note').waitFor();
  await page.until('stats-events', `n === ${told}`);
  assert.equal(await page.count(), told, 'a told demo does not start again by itself');
  assert.equal(await p.getByTestId('sim-status').textContent(), 'stopped');

  // One click back: the user's log, exactly as it was.
  await p.getByTestId('header-leave-demo').click();
  await p.waitForFunction(() => document.querySelector('[data-testid=log-shown]')?.textContent === 'Your log', null, { timeout: 30_000 });
  await page.until('stats-events', `n === ${own}`);
  assert.equal(await page.count(), own, 'the demo added nothing to the user’s log');
  assert.deepEqual(await byType(p), ownTypes, 'the same events by type');
  assert.deepEqual(page.errors, []);
  await context.close();
});

test('a demo paused by the user stays paused across a reload, and runs on when asked', { timeout: 300_000 }, async () => {
  const context = await env.browser.newContext();
  const page = await new LivePage(await context.newPage()).open(env.url);
  const p = page.page;
  await p.getByTestId('welcome-demo').click();
  await p.waitForFunction(() => document.querySelector('[data-testid=log-shown]')?.textContent === 'Demo log', null, { timeout: 30_000 });
  await page.until('event-count', 'n > 800', 60_000);
  await p.getByTestId('sim-pause').click();
  await p.waitForFunction(() => document.querySelector('main')?.dataset.seq === document.querySelector('[data-testid=event-count]')?.textContent);
  const paused = await page.count();
  await p.reload();
  await p.getByTestId('demo-note').waitFor();
  assert.match(await p.getByTestId('demo-note').textContent(), /paused where you left it/);
  await page.until('stats-events', `n === ${paused}`);
  assert.equal(await page.count(), paused, 'nothing was added while it was paused');
  await p.getByTestId('demo-run-on').click();
  await page.until('event-count', `n > ${paused + 200}`, 60_000);
  assert.equal(await p.getByTestId('demo-note').count(), 0);
  assert.deepEqual(page.errors, []);
  await context.close();
});
