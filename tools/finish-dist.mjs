// Trunk post-build step, after the worker: make the build strict-CSP clean
// and offline-capable.
// 1. Trunk writes its wasm loader as an inline <script type="module">; move
//    it into a content-hashed file so the CSP needs no 'unsafe-inline'.
// 2. Write sw.js: the service worker with this build's version and the list
//    of every file it needs, so one visit caches the whole app.
import { readFile, writeFile, readdir, stat } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import path from 'node:path';

const dir = process.argv[2] ?? 'dist';
const hash = (data) => createHash('sha256').update(data).digest('hex').slice(0, 16);

let html = await readFile(path.join(dir, 'index.html'), 'utf8');
const inline = /<script type="module">([\s\S]*?)<\/script>/;
const found = html.match(inline);
if (found) {
  const code = found[1].trim() + '\n';
  const name = `boot-${hash(code)}.js`;
  await writeFile(path.join(dir, name), code);
  html = html.replace(inline, `<script type="module" src="./${name}"></script>`);
}
if (/<script(?![^>]*\bsrc=)[^>]*>/.test(html)) {
  throw new Error('index.html still has an inline script: the CSP would block it');
}
await writeFile(path.join(dir, 'index.html'), html);

async function files(d, prefix = '') {
  const out = [];
  for (const entry of await readdir(d)) {
    const full = path.join(d, entry);
    const rel = prefix + entry;
    if ((await stat(full)).isDirectory()) out.push(...(await files(full, rel + '/')));
    else if (entry !== 'sw.js' && !entry.endsWith('.md')) out.push(rel);
  }
  return out.sort();
}
const list = await files(dir);
const digest = createHash('sha256');
for (const f of list) digest.update(f).update(await readFile(path.join(dir, f)));
const version = digest.digest('hex').slice(0, 16);
const sw = (await readFile(new URL('sw.template.js', import.meta.url), 'utf8'))
  .replace("'__VERSION__'", JSON.stringify(version))
  .replace("['__FILES__']", JSON.stringify(['./', ...list], null, 2));
await writeFile(path.join(dir, 'sw.js'), sw);
console.log(`finish-dist: ${list.length} files cached as version ${version}`);
