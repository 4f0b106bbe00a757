// The live dashboard: the simulator's events flow through the projections,
// a reload rebuilds the same state, and time travel shows the past.
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

test('simulated events flow into the stream, and a reload shows the same state', async () => {
  const context = await env.browser.newContext();
  const live = await new LivePage(await context.newPage()).open(env.url);
  await live.runSimulator({ until: 600 });
  const rows = await live.page.getByTestId('stream-row').count();
  assert.ok(rows > 10, `the stream table shows the newest events (${rows} rows)`);
  const firstRow = await live.page.getByTestId('stream-row').first().textContent();
  const events = await live.number('stats-events');
  const open = await live.number('open-count');
  assert.equal(events, await live.count(), 'projections caught up with the log');

  await live.page.reload();
  await live.until('stats-events', `n === ${events}`);
  assert.equal(await live.number('open-count'), open, 'the same open cases after a reload');
  assert.equal(await live.page.getByTestId('stream-row').first().textContent(), firstRow, 'the same newest event');
  assert.match(await live.page.getByTestId('boot-line').textContent(), /replayed \d+ events in \d+ ms/);
  assert.deepEqual(live.errors, []);
  await context.close();
});

test('the time-travel slider shows an earlier state and Live returns to the present', async () => {
  const context = await env.browser.newContext();
  const live = await new LivePage(await context.newPage()).open(env.url);
  await live.runSimulator({ until: 400 });
  const head = await live.number('stats-events');
  await live.go('log');
  await live.page.getByTestId('travel-slider').fill('150');
  await live.until('stats-events', 'n === 150');
  assert.match(await live.page.getByTestId('travel-position').textContent(), /viewing seq 150 of \d+/);
  assert.equal(await live.page.getByTestId('views-behind').textContent(), 'viewing the past at event 150', 'the header says the views show the past');
  await live.page.getByTestId('travel-live').click();
  await live.until('stats-events', `n === ${head}`);
  await live.page.waitForFunction(() => document.querySelector('[data-testid=views-behind]')?.textContent === 'views current');
  assert.match(await live.page.getByTestId('travel-position').textContent(), /^live at seq \d+/);
  await context.close();
});
