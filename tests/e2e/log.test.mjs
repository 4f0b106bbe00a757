// The event log through the real app: appends survive a reload, and two tabs
// appending at once end with one contiguous log.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { start, LogPage } from './support.mjs';

let env;
before(async () => {
  env = await start();
});
after(async () => {
  await env?.stop();
});

test('appended events survive a reload', async () => {
  const context = await env.browser.newContext();
  const log = await new LogPage(await context.newPage()).open(env.url);
  assert.equal(await log.count(), 0, 'a new browser starts with an empty log');
  for (let i = 0; i < 3; i++) await log.appendDemo();
  await log.countIs(3);
  await log.page.reload();
  await log.page.getByTestId('event-count').waitFor();
  await log.countIs(3);
  assert.deepEqual(log.errors, [], 'no uncaught errors on the page');
  await context.close();
});

test('two tabs appending at once keep seq contiguous and see each other', async () => {
  const context = await env.browser.newContext();
  const a = await new LogPage(await context.newPage()).open(env.url);
  const b = await new LogPage(await context.newPage()).open(env.url);
  // Each tab clicks in turn (a click while its own last one is being
  // handled can be lost under load); the two tabs' appends still overlap.
  const clicks = async (tab, n) => {
    for (let i = 0; i < n; i += 1) await tab.appendDemo();
  };
  await Promise.all([clicks(a, 15), clicks(b, 12)]);
  // Each tab learns of the other's commits through the BroadcastChannel.
  await a.countIs(27);
  await b.countIs(27);
  assert.match(await a.verify(), /^27 events in 27 streams; seq and versions contiguous/);
  await context.close();
});
