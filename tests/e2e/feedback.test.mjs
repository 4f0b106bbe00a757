// The live loop: a model trained on the simulated log predicts every new
// event of open cases; predictions are events, scored as cases close.
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

test('predictions are recorded live and scored when cases close', async () => {
  const context = await env.browser.newContext();
  const page = await new LivePage(await context.newPage()).open(env.url);
  const p = page.page;
  await page.runSimulator({ rate: 2000, until: 6000 });
  await p.getByTestId('train-run').click();
  await p.waitForFunction(() => /predict the same as the worker/.test(document.querySelector('[data-testid=train-status]')?.textContent), null, { timeout: 300_000 });
  await p.waitForFunction(() => /with model-1/.test(document.querySelector('label:has([data-testid=predict-toggle])')?.textContent));
  await p.getByTestId('predict-toggle').check();
  const closedBefore = await page.number('stats-closed');
  await page.runSimulator({ rate: 500, until: (await page.number('stats-events')) + 3000 });
  assert.ok((await page.number('stats-closed')) > closedBefore + 50, 'more cases closed while predicting');
  await page.until('feedback-outcomes', 'n > 0');
  const cells = await p.evaluate(() => [...document.querySelector('[data-testid=feedback-row]').cells].map((c) => c.textContent));
  assert.equal(cells[0], 'model-1');
  assert.ok(Number(cells[2]) > 0 && Number(cells[4]) > 0, `MAE and the median's MAE are shown: ${cells}`);
  assert.match(cells[5], /^[+-]\d+\.\d %$/, 'skill against the median');
  const byType = await p.evaluate(() => document.querySelector('[data-testid=stats-events]').closest('dl').textContent);
  assert.match(byType, /PredictionRecorded: \d+/, 'predictions are events in the log');
  assert.deepEqual(page.errors, []);
  await context.close();
});
