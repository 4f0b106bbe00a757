// Hostile files through the page: each gets a clear message, writes
// nothing, keeps the app's memory bounded, and leaves the page usable (a
// good file imports right after).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile, mkdtemp, open } from 'node:fs/promises';
import { createGzip } from 'node:zlib';
import { createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { start, LivePage, engineWasmBytes } from './support.mjs';

let env;
let dir;
before(async () => {
  env = await start();
  dir = await mkdtemp(join(tmpdir(), 'retrace-hostile-'));
});
after(async () => {
  await env?.stop();
});

const MB = 1024 * 1024;

/** A file of `bytes` made by `fill(handle)`. */
async function make(name, fill) {
  const path = join(dir, name);
  const handle = await open(path, 'w');
  await fill(handle);
  await handle.close();
  return path;
}

/** 1 GiB of zeros as gzip (about 1 MB on disk), named like an XES log. */
async function gzipBomb() {
  const path = join(dir, 'bomb.xes.gz');
  const chunk = Buffer.alloc(MB, 0x20);
  let left = 1024;
  const source = new Readable({
    read() {
      this.push(left-- > 0 ? chunk : null);
    },
  });
  await pipeline(source, createGzip({ level: 9 }), createWriteStream(path));
  return path;
}

const header = 'case,activity,timestamp,resource\n';
/** What each refusal must say, beyond being an error (by the case's name). */
const SAYS = {
  'random bytes': /looks binary/,
  'a 5 MB line': /rows are longer than 64 KB/,
  'a 10 MB cell': /rows are longer than 64 KB/,
  'a gzip bomb (1 GiB unpacked)': /runs past 32 MB/,
  'XML entity expansion': /DTD/,
  'NDJSON with a broken line': /line 2/,
  'a CSV that is really a zip': /looks binary/,
};

const HOSTILE = [
  ['random bytes', async () => make('noise.csv', async (h) => {
    const b = Buffer.alloc(256 * 1024);
    for (let i = 0; i < b.length; i += 1) b[i] = (i * 2654435761) >>> 24;
    await h.write(b);
  })],
  ['a 5 MB line', async () => make('long-line.csv', async (h) => {
    await h.write(header);
    await h.write('c1,' + 'A'.repeat(5 * MB) + ',2020-01-01 10:00:00,r\n');
  })],
  ['100,000 columns', async () => make('wide.csv', async (h) => {
    const cols = Array.from({ length: 100_000 }, (_, i) => `col${i}`);
    await h.write(cols.join(',') + '\n' + cols.map(() => '1').join(',') + '\n');
  })],
  ['a 10 MB cell', async () => make('big-cell.csv', async (h) => {
    await h.write(header);
    await h.write('c1,Register,2020-01-01 10:00:00,"' + 'x'.repeat(10 * MB) + '"\n');
  })],
  ['a gzip bomb (1 GiB unpacked)', gzipBomb],
  ['XML entity expansion', async () => make('laughs.xes', async (h) => {
    let doctype = '<!DOCTYPE log [<!ENTITY a0 "ha">';
    for (let i = 1; i < 10; i += 1) doctype += `<!ENTITY a${i} "${`&a${i - 1};`.repeat(10)}">`;
    await h.write(`<?xml version="1.0"?>${doctype}]>\n<log><trace><string key="concept:name" value="&a9;"/>` +
      '<event><string key="concept:name" value="A"/><date key="time:timestamp" value="2020-01-01T10:00:00Z"/></event></trace></log>\n');
  })],
  ['NDJSON with a broken line', async () => make('broken.ndjson', async (h) => {
    await h.write('{"specversion":"1.0","id":"a","source":"urn:retrace","type":"CaseOpened","time":"2020-01-01T10:00:00.000Z","subject":"case-1","datacontenttype":"application/json","data":{"case":"1"},"sequence":"1","streamversion":1,"schemaversion":2,"recordedtime":"2020-01-01T10:00:00.000Z"}\n');
    await h.write('{"specversion":"1.0","id":"b", this is not json\n');
  })],
  ['a CSV that is really a zip', async () => make('archive.csv', async (h) => {
    await h.write(Buffer.from([0x50, 0x4b, 0x03, 0x04, 0x14, 0x00, 0x00, 0x00, 0x08, 0x00, ...Buffer.alloc(2000, 0x7f)]));
  })],
];

test('hostile files: a clear message each, nothing written, memory bounded, the page still works', async () => {
  const context = await env.browser.newContext();
  const page = new LivePage(await context.newPage());
  await page.page.addInitScript(() => addEventListener('TrunkApplicationStarted', (e) => { window.appWasm = e.detail.wasm; }));
  await page.open(env.url);
  await page.page.waitForFunction(() => window.appWasm);
  const p = page.page;
  await page.go('log');
  const seen = [];
  for (const [what, build] of HOSTILE) {
    const file = await build();
    await p.getByTestId('import-file').setInputFiles(file);
    // Either refused on sight, or refused when imported: never written.
    await p.waitForFunction(() => {
      const s = document.querySelector('[data-testid=import-status]')?.textContent ?? '';
      const ready = !document.querySelector('[data-testid=import-start]')?.disabled;
      return document.querySelector('[data-testid=import-error]') || (ready && !/looking at/.test(s));
    }, null, { timeout: 60_000 });
    if (!(await p.getByTestId('import-error').count())) {
      await p.getByTestId('import-start').click();
      await p.waitForFunction(() => {
        const s = document.querySelector('[data-testid=import-status]');
        return s?.querySelector('.ok, [data-testid=import-error]');
      }, null, { timeout: 120_000 });
    }
    const message = (await p.getByTestId('import-status').textContent()).trim();
    seen.push(`${what}: ${message.slice(0, 160)}`);
    assert.equal(await p.getByTestId('import-error').count(), 1, `${what}: refused with a message (${message})`);
    assert.doesNotMatch(message, /\uFFFD|panicked|RuntimeError|unreachable/, `${what}: the message is words, not a crash`);
    if (SAYS[what]) assert.match(message, SAYS[what], `${what}: the message says what is wrong`);
    assert.equal(await page.count(), 0, `${what}: nothing was written`);
    const mb = await p.evaluate(() => window.appWasm.memory.buffer.byteLength / 1048576);
    assert.ok(mb < 200, `${what}: the page's wasm memory ${mb.toFixed(0)} MB`);
    // The file was read by the tab's engine worker: it is alive and bounded too.
    const engineMb = (await engineWasmBytes(p)) / 1048576;
    assert.ok(engineMb < 200, `${what}: the engine worker's wasm memory ${engineMb.toFixed(0)} MB`);
  }
  console.log(seen.join('\n'));
  // Still usable: a good file imports right after.
  await p.getByTestId('import-file').setInputFiles('public/sample/helpdesk-1000.csv');
  await p.waitForFunction(() => !document.querySelector('[data-testid=import-start]').disabled);
  await p.getByTestId('import-start').click();
  await page.until('stats-closed', 'n === 1000', 120_000);
  assert.deepEqual(page.errors, []);
  await context.close();
});
