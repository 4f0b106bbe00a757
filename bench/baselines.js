// What a JavaScript developer would write: one IndexedDB record per event,
// with raw IndexedDB and with Dexie 4. Both keep an index on
// [stream, version] so that, like Retrace, they can read a stream by version.
import Dexie from './dexie.mjs';

const done = (req) =>
  new Promise((ok, fail) => {
    req.onsuccess = () => ok(req.result);
    req.onerror = () => fail(req.error);
  });
const committed = (tx) =>
  new Promise((ok, fail) => {
    tx.oncomplete = ok;
    tx.onabort = () => fail(tx.error);
  });

/** The benchmark's events as plain objects (payload parsed, as JS would keep it). */
export function workload(retrace, total) {
  const out = [];
  for (let from = 0; from < total; from += 10_000) {
    const chunk = JSON.parse(retrace.workload_json(from, Math.min(10_000, total - from)));
    for (const e of chunk) out.push({ ...e, data: JSON.parse(e.data) });
  }
  return out;
}

/** Average JSON size of an event, in bytes. */
export function jsonBytes(events) {
  let sum = 0;
  for (const e of events) sum += new TextEncoder().encode(JSON.stringify(e)).length;
  return sum / events.length;
}

function openRaw(name) {
  const req = indexedDB.open(name, 1);
  req.onupgradeneeded = () => {
    const store = req.result.createObjectStore('events', { keyPath: 'seq' });
    store.createIndex('stream_version', ['stream', 'version'], { unique: true });
  };
  return done(req);
}

/** Raw IndexedDB: one record per event, one transaction per batch. Returns ms. */
export async function rawAppend(name, events, batch) {
  const db = await openRaw(name);
  const t0 = performance.now();
  for (let i = 0; i < events.length; i += batch) {
    const tx = db.transaction('events', 'readwrite');
    const store = tx.objectStore('events');
    for (const e of events.slice(i, i + batch)) store.add(e);
    await committed(tx);
  }
  const ms = performance.now() - t0;
  db.close();
  return ms;
}

/** Raw IndexedDB: read everything in order with getAll pages. Returns [ms, count]. */
export async function rawRead(name, batch) {
  const db = await openRaw(name);
  const t0 = performance.now();
  let from = 1;
  let count = 0;
  for (;;) {
    const tx = db.transaction('events', 'readonly');
    const page = await done(tx.objectStore('events').getAll(IDBKeyRange.lowerBound(from), batch));
    if (page.length === 0) break;
    count += page.length;
    from = page[page.length - 1].seq + 1;
  }
  const ms = performance.now() - t0;
  db.close();
  return [ms, count];
}

function openDexie(name) {
  const db = new Dexie(name);
  db.version(1).stores({ events: 'seq, [stream+version]' });
  return db;
}

/** Dexie 4 bulkAdd, one call per batch. Returns ms. */
export async function dexieAppend(name, events, batch) {
  const db = openDexie(name);
  await db.open();
  const t0 = performance.now();
  for (let i = 0; i < events.length; i += batch) await db.events.bulkAdd(events.slice(i, i + batch));
  const ms = performance.now() - t0;
  db.close();
  return ms;
}

/** Dexie 4: read everything in order, in pages. Returns [ms, count]. */
export async function dexieRead(name, batch) {
  const db = openDexie(name);
  await db.open();
  const t0 = performance.now();
  let from = 1;
  let count = 0;
  for (;;) {
    const page = await db.events.where('seq').aboveOrEqual(from).limit(batch).toArray();
    if (page.length === 0) break;
    count += page.length;
    from = page[page.length - 1].seq + 1;
  }
  const ms = performance.now() - t0;
  db.close();
  return [ms, count];
}

export async function usage() {
  return (await navigator.storage.estimate()).usage;
}

export function deleteDb(name) {
  return new Promise((ok, fail) => {
    const req = indexedDB.deleteDatabase(name);
    req.onsuccess = ok;
    req.onerror = () => fail(req.error);
    req.onblocked = () => fail(new Error(`deleting ${name} is blocked`));
  });
}

/**
 * IndexedDB's own floor for a store like Retrace's: one record of
 * `bytesPerEvent × batch` bytes per transaction, its bytes made once (the
 * JSON text of real events, so the browser compresses it as it does a
 * segment), no encoding or decoding. No store that writes and reads such
 * records can beat it. `durability` as the transaction's option ('default',
 * what Retrace's store asks for, 'relaxed' or 'strict'). Returns [append
 * ms, read ms, events read].
 */
export async function floor(name, events, batch, bytesPerEvent, durability = 'default') {
  const db = await done(
    Object.assign(indexedDB.open(name, 1), {
      onupgradeneeded: (e) => e.target.result.createObjectStore('segments'),
    }),
  );
  const text = new TextEncoder().encode(events.slice(0, batch).map((e) => JSON.stringify(e)).join('\n'));
  const record = text.slice(0, Math.min(text.length, Math.round(bytesPerEvent * batch)));
  const n = events.length;
  let t0 = performance.now();
  for (let last = batch; last <= n; last += batch) {
    const tx = db.transaction('segments', 'readwrite', { durability });
    tx.objectStore('segments').put(record, last);
    await committed(tx);
  }
  const appendMs = performance.now() - t0;
  t0 = performance.now();
  let from = 0;
  let count = 0;
  for (;;) {
    const tx = db.transaction('segments', 'readonly');
    const page = await done(tx.objectStore('segments').getAll(IDBKeyRange.lowerBound(from, true), 4));
    if (page.length === 0) break;
    for (const bytes of page) count += bytes.byteLength >= 0 ? batch : 0;
    from += page.length * batch;
  }
  const readMs = performance.now() - t0;
  db.close();
  return [appendMs, readMs, count];
}
