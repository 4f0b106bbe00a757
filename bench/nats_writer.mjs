// A headless writer of a shared log, speaking the NATS protocol over TCP
// the way the browser's outbox does: each event published to its stream's
// subject with its id as `Nats-Msg-Id` and the sequence of its stream's
// previous event as `Nats-Expected-Last-Subject-Sequence`, so that a case
// written by two writers conflicts instead of interleaving. Many cases at
// once, one event per case in flight (its successor needs its sequence).
import { connect } from 'node:net';

/** Connect to the server's client port. */
export async function natsWriter(port, name) {
  const socket = connect(port, '127.0.0.1');
  socket.setNoDelay(true);
  let buffered = Buffer.alloc(0);
  const waiting = new Map(); // reply subject → resolve
  const pongs = [];
  const inbox = `_INBOX.${name}`;
  let next = 0;
  socket.on('data', (d) => {
    buffered = Buffer.concat([buffered, d]);
    for (;;) {
      const end = buffered.indexOf('\r\n');
      if (end < 0) return;
      const line = buffered.subarray(0, end).toString('utf8');
      if (line.startsWith('MSG ')) {
        // MSG <subject> <sid> [reply] <bytes>
        const parts = line.split(' ');
        const size = Number(parts.at(-1));
        if (buffered.length < end + 2 + size + 2) return;
        const payload = buffered.subarray(end + 2, end + 2 + size).toString('utf8');
        buffered = buffered.subarray(end + 2 + size + 2);
        const done = waiting.get(parts[1]);
        waiting.delete(parts[1]);
        done?.(JSON.parse(payload));
        continue;
      }
      buffered = buffered.subarray(end + 2);
      if (line === 'PING') { if (!socket.writableEnded) socket.write('PONG\r\n'); }
      else if (line === 'PONG') pongs.shift()?.();
      else if (line.startsWith('-ERR')) throw new Error(`${name}: ${line}`);
    }
  });
  const ping = () => new Promise((ok) => { pongs.push(ok); socket.write('PING\r\n'); });
  socket.write('CONNECT {"verbose":false,"pedantic":false,"headers":true,"no_responders":true,"protocol":1,"lang":"node","version":"0"}\r\n');
  socket.write(`SUB ${inbox}.* 1\r\n`);
  await ping();
  return {
    /** Publish and wait for JetStream's answer (a PubAck or an error). */
    publish(subject, id, expected, body) {
      const reply = `${inbox}.${next++}`;
      const headers = `NATS/1.0\r\nNats-Msg-Id: ${id}\r\n${expected === null ? '' : `Nats-Expected-Last-Subject-Sequence: ${expected}\r\n`}\r\n`;
      const payload = JSON.stringify(body);
      const h = Buffer.byteLength(headers);
      socket.write(`HPUB ${subject} ${reply} ${h} ${h + Buffer.byteLength(payload)}\r\n${headers}${payload}\r\n`);
      return new Promise((ok) => waiting.set(reply, ok));
    },
    /** Ask JetStream's API and wait for the answer. */
    request(subject, body) {
      const reply = `${inbox}.${next++}`;
      const payload = JSON.stringify(body);
      socket.write(`PUB ${subject} ${reply} ${Buffer.byteLength(payload)}\r\n${payload}\r\n`);
      return new Promise((ok) => waiting.set(reply, ok));
    },
    close() { socket.end(); },
  };
}

/** The three events of service case `c` written by `writer`, as Retrace streams them. */
export function caseEvents(writer, c, t0) {
  const id = `${writer}-${c}`;
  const at = t0 + c * 60_000;
  const event = (n, type, schema, data, hours) => ({
    id: `${id}-${n}`, event_type: type, schema, occurred_at: at + hours * 3_600_000,
    correlation: id, causation: null, data: JSON.stringify(data), recorded_at: null,
  });
  return [
    event(0, 'CaseOpened', 2, { case: id, attributes: { category: 'repair' } }, 0),
    event(1, 'ActivityRecorded', 3, { case: id, activity: 'Repair', resource: writer, hours: 2, attributes: {} }, 1),
    event(2, 'CaseClosed', 2, { case: id, outcome: 'fixed' }, 3),
  ].map((e) => ({ stream: `case-${id}`, event: e }));
}
