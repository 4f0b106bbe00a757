// The team's server configuration as shipped (`tools/nats/team.conf`), least
// privilege: the admin's browser creates the log, a writer and a viewer join
// it; then each is tried the way an attacker would, with a raw NATS client
// and the same credentials. The writer can delete, purge, write packs, or
// read another user's replies — none of it; the viewer cannot write; even
// the admin cannot delete a message of the log, whose stream denies it.
// The browsers' copies stay equal throughout.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { LivePage } from './support.mjs';
import {
  openShared, closeShared, natsServerFrom, writer, connectTo, linkIs, countsUntil, settled, exportLog,
} from './nats.mjs';

let env;
before(async () => {
  ({ env } = await openShared());
});
after(closeShared);

const PASSWORDS = { admin: 'admin-pw', writer: 'ana-pw', viewer: 'viewer-pw' };

async function browser(url, token) {
  const context = await env.browser.newContext({ acceptDownloads: true });
  const page = await new LivePage(await context.newPage()).open(env.url);
  await connectTo(page, url, { log: 'team', token });
  await linkIs(page, 'connected');
  return { context, page };
}

test('the shipped team configuration: each role may do its part and nothing more, tried with a raw client', { timeout: 180_000 }, async (t) => {
  const server = await natsServerFrom('tools/nats/team.conf', PASSWORDS);
  const admin = await browser(server.url, `admin:${PASSWORDS.admin}`);
  t.after(() => admin.context.close());
  await admin.page.appendDemo();
  await settled([admin.page], 1);
  const ana = await browser(server.url, `ana:${PASSWORDS.writer}`);
  t.after(() => ana.context.close());
  await ana.page.appendDemo();
  await settled([admin.page, ana.page], 2);
  const viewer = await browser(server.url, `viewer:${PASSWORDS.viewer}`);
  t.after(() => viewer.context.close());
  await settled([viewer.page], 2);
  await viewer.page.appendDemo();
  assert.match((await countsUntil(viewer.page, (c) => c.readOnly, 'read only')).said, /may only read/);

  // The writer, with a raw client: every step outside its part is refused.
  const raw = await writer(server.port, { user: 'ana', pass: PASSWORDS.writer });
  t.after(() => raw.close());
  const refusedBefore = raw.errors.length;
  assert.equal(await raw.request('$JS.API.STREAM.MSG.DELETE.RETRACE_TEAM', { seq: 1 }, '_INBOX_ana'), null, 'no answer to a delete');
  assert.equal(await raw.request('$JS.API.STREAM.PURGE.RETRACE_TEAM', {}, '_INBOX_ana'), null, 'no answer to a purge');
  assert.equal(await raw.request('$JS.API.STREAM.DELETE.RETRACE_TEAM', {}, '_INBOX_ana'), null, 'no answer to deleting the stream');
  await raw.raw('$O.retrace_packs_team.C.forged', 'not a pack');
  await raw.subscribe('_INBOX_admin.>');
  await raw.subscribe('_INBOX.>');
  const violations = raw.errors.slice(refusedBefore);
  console.log(`roles: the writer's raw client was refused ${violations.length} times: ${violations.join(' | ')}`);
  for (const what of ['STREAM.MSG.DELETE', 'STREAM.PURGE', 'STREAM.DELETE', 'retrace_packs_team', '_INBOX_admin', '_INBOX.>']) {
    assert.ok(violations.some((v) => /Permissions Violation/.test(v) && v.includes(what)), `refused: ${what} (${violations.join(' | ')})`);
  }
  // Its own part works: an event it publishes reaches everyone.
  await raw.publish('team', [{ stream: 'case-raw', event: { id: 'raw-1', event_type: 'CaseOpened', schema: 2, occurred_at: Date.UTC(2025, 0, 6), correlation: 'raw', causation: null, data: JSON.stringify({ case: 'raw', attributes: {} }), recorded_at: null } }]);
  await settled([admin.page, ana.page], 3);
  // The viewer follows (its refused write stays in its outbox, unsent).
  await viewer.page.until('event-count', 'n === 3');

  // The viewer, raw: it may not publish to the log at all.
  const rawViewer = await writer(server.port, { user: 'viewer', pass: PASSWORDS.viewer });
  t.after(() => rawViewer.close());
  await rawViewer.raw('retrace.team.case-x', '{}', 'x');
  assert.ok(rawViewer.errors.some((v) => /Permissions Violation/.test(v) && v.includes('retrace.team.case-x')), rawViewer.errors.join(' | '));

  // Even the admin cannot delete a message or purge the log: the stream denies it.
  const rawAdmin = await writer(server.port, { user: 'admin', pass: PASSWORDS.admin });
  t.after(() => rawAdmin.close());
  const deleted = await rawAdmin.request('$JS.API.STREAM.MSG.DELETE.RETRACE_TEAM', { seq: 1 }, '_INBOX_admin');
  assert.ok(deleted && deleted.success !== true && deleted.error, `the stream refuses a delete: ${JSON.stringify(deleted)}`);
  const purged = await rawAdmin.request('$JS.API.STREAM.PURGE.RETRACE_TEAM', {}, '_INBOX_admin');
  assert.ok(purged && purged.success !== true && purged.error, `the stream refuses a purge: ${JSON.stringify(purged)}`);

  const exported = await exportLog(admin.page, 'roles-admin.ndjson');
  assert.equal(await exportLog(ana.page, 'roles-ana.ndjson'), exported);
  assert.equal(await exportLog(viewer.page, 'roles-viewer.ndjson'), exported);
  for (const x of [admin, ana, viewer]) assert.deepEqual(x.page.errors, []);
});
