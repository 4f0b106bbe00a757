// A shared log encrypted with a team passphrase: the server stores, orders
// and relays what it cannot read. The test reads the server's own files for
// what the browsers wrote, joins a second browser from the (sealed) packs,
// tries a wrong passphrase and none, and has a raw client publish a plain
// event into the sealed log.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  openShared, closeShared, natsServer, writer, events, exportLog, joined, settled, leave, parse,
  counts, countsUntil, HELPDESK, quiet,
} from './nats.mjs';

before(openShared);
after(closeShared);

const PASSPHRASE = 'correct horse battery staple';

/** Every byte the server keeps on disk, as one buffer. */
async function storedBytes(dir) {
  const parts = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) parts.push(await readFile(join(entry.parentPath ?? entry.path, entry.name)));
  }
  return Buffer.concat(parts);
}

test('with a team passphrase the server holds only sealed payloads; the team reads them, a wrong passphrase writes nothing, a plain message is refused', { timeout: 300_000 }, async () => {
  const server = await natsServer();
  const A = await joined(server.url, 'vault', { packEvents: 2000, passphrase: PASSPHRASE });
  const a = A.page;
  // The simulator's named activities and resources, then helpdesk.csv.
  await a.go('live');
  await a.page.getByTestId('sim-rate').fill('500');
  await a.page.getByTestId('sim-start').click();
  await a.until('event-count', 'n >= 300');
  await a.page.getByTestId('sim-stop').click();
  await a.choose(HELPDESK);
  const imported = await a.importAndWait();
  const m = imported.match(/Imported (\d+) cases \((\d+) events/);
  assert.ok(m, imported);
  // Everything sent and back, and nothing more under way.
  const total = await quiet(a);
  await settled([a], total);
  const lines = parse(await exportLog(a, 'vault-a.ndjson'));
  const importEnd = Math.max(...lines.filter((e) => /^case-helpdesk-\d+$/.test(e.subject)).map((e) => Number(e.sequence)));
  await countsUntil(a, (c) => c.packed >= importEnd, `the import (to ${importEnd}) packed`, 120_000);

  // What the browsers wrote, as words that must not be on the server.
  const secrets = new Set(['ActivityRecorded', 'CaseOpened', 'CaseClosed', 'ImportCompleted', '"occurred_at"']);
  for (const e of lines) {
    if (e.type !== 'ActivityRecorded') continue;
    const data = typeof e.data === 'string' ? JSON.parse(e.data) : e.data;
    for (const word of [data.activity, data.resource]) if (word && word.length >= 5) secrets.add(word);
  }
  assert.ok(secrets.size > 8, `the simulator's activities and resources: ${[...secrets]}`);
  const disk = await storedBytes(server.store);
  assert.ok(disk.length > 1_000_000, `${disk.length} bytes stored`);
  assert.ok(disk.includes('retrace.vault.case-'), 'subjects stay readable, so the server still orders and refuses conflicts');
  assert.ok(disk.includes('RTS1'), 'sealed payloads are there');
  for (const word of secrets) assert.ok(!disk.includes(word), `"${word}" is on the server in plain text`);

  // A teammate with the passphrase joins from the sealed packs: the same log.
  const B = await joined(server.url, 'vault', { passphrase: PASSPHRASE });
  await settled([B.page], total);
  const { fromPacks } = await counts(B.page);
  assert.ok(fromPacks >= importEnd, `${fromPacks} events read from packs, the import ends at ${importEnd}`);
  const exportA = await exportLog(a, 'vault-a2.ndjson');
  assert.equal(await exportLog(B.page, 'vault-b.ndjson'), exportA, 'one log, byte for byte');

  // A wrong passphrase, and none: told so, and nothing read or written.
  const C = await joined(server.url, 'vault', { passphrase: 'wrong horse', link: 'stopped', expect: /does not open this shared log/ });
  const D = await joined(server.url, 'vault', { link: 'stopped', expect: /this shared log is encrypted: enter the team's passphrase/ });
  for (const x of [C, D]) assert.equal(await x.page.number('event-count'), 0);

  // A raw client without the key publishes a plain event: refused by both
  // team members, named on the card, and the log goes on.
  const w = await writer(server.port);
  await w.publish('vault', events(0, 1));
  await a.appendDemo();
  await settled([a, B.page], total + 2);
  for (const x of [a, B.page]) {
    await x.page.waitForFunction(() => document.querySelectorAll('[data-testid=sync-refused]').length >= 1, null, { timeout: 30_000 });
    const said = await x.page.locator('[data-testid=sync-refused]').first().textContent();
    assert.match(said, /not encrypted/);
  }
  assert.equal(await exportLog(B.page, 'vault-b2.ndjson'), await exportLog(a, 'vault-a3.ndjson'));
  w.close();
  await leave(A, B, C, D);
});
