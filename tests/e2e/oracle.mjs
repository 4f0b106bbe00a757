// The oracle: what every view should show, computed from the log itself
// (a CloudEvents export read line by line here), never from the app's
// projections. `expectedViews(events)` folds the events in plain JS;
// `shownViews(page)` reads what a person sees on the page, in one task so
// that every panel is read at the same moment; `compare` says where the two
// differ.

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** Upper bounds (hours) of the duration histogram's buckets (the app's DURATION_BUCKETS_H). */
const DURATION_BUCKETS_H = [1, 4, 8, 24, 48, 96, 168, 336, 720, 1440];
/** Rows the event stream and the open-cases table show. */
const STREAM_ROWS = 40;
const OPEN_ROWS = 15;

/** Parse an NDJSON export into events in log order. */
export function parseExport(text) {
  const events = text.split('\n').filter((l) => l.trim() !== '').map((l) => {
    const e = JSON.parse(l);
    return {
      seq: Number(e.sequence),
      type: e.type,
      stream: e.subject,
      at: Date.parse(e.time),
      data: e.data,
    };
  });
  events.sort((a, b) => a.seq - b.seq);
  events.forEach((e, i) => {
    if (e.seq !== i + 1) throw new Error(`the export is not contiguous at ${i + 1} (found ${e.seq})`);
  });
  return events;
}

function bucketLabel(i) {
  const h = DURATION_BUCKETS_H[i];
  if (h === undefined) return 'more';
  return h < 48 ? `≤${h.toFixed(0)}h` : `≤${(h / 24).toFixed(0)}d`;
}

/** MM-DD of a UTC day. */
function dayLabel(ms) {
  return new Date(ms).toISOString().slice(5, 10);
}

/** The case an event row names (the stream panel's "case" column). */
function caseOf(e) {
  switch (e.type) {
    case 'CaseOpened': case 'ActivityRecorded': case 'CaseClosed': case 'PredictionRecorded':
      return e.data.case;
    default:
      return '';
  }
}

/** Fold the events into what each view must show. */
export function expectedViews(events) {
  const byType = {};
  const opened = new Map(); // case → { at, steps, last }
  const openAt = new Map(); // for durations (stats)
  const perDay = new Map(); // day → [opened, closed]
  const durations = new Array(DURATION_BUCKETS_H.length + 1).fill(0);
  const holder = new Map();
  const wip = new Map();
  const release = (r) => { if (wip.has(r)) wip.set(r, Math.max(0, wip.get(r) - 1)); };
  // Feedback: predictions scored when their case closes.
  const closedAt = new Map();
  const pending = new Map(); // case → [{ p, at }]
  const models = new Map(); // id → score
  const served = { outcomes: 0, abs: 0, base: 0, pending: 0 };
  const score = (id) => {
    if (!models.has(id)) models.set(id, { outcomes: 0, abs: 0, base: 0, pending: 0, drifts: 0 });
    return models.get(id);
  };
  const settle = (w, closed, wasPending) => {
    const actual = (closed - w.at) / HOUR;
    const abs = Math.abs(w.p.predicted_h - actual) / 24;
    const base = Math.abs(w.p.baseline_h - actual) / 24;
    for (const s of w.p.shadow ? [score(w.p.model)] : [score(w.p.model), served]) {
      s.outcomes += 1; s.abs += abs; s.base += base;
      if (wasPending) s.pending -= 1;
    }
  };
  // Models: registered, and their part in the loop.
  const registered = [];
  const entered = new Set();
  // Why each retired model left: its retirement or the promotion that replaced it.
  const why = new Map();
  let champion = null;
  let challenger = null;

  for (const e of events) {
    byType[e.type] = (byType[e.type] ?? 0) + 1;
    const day = Math.floor(e.at / DAY) * DAY;
    const bump = (i) => { const d = perDay.get(day) ?? [0, 0]; d[i] += 1; perDay.set(day, d); };
    switch (e.type) {
      case 'CaseOpened':
        opened.set(e.data.case, { at: e.at, steps: 0, last: 'opened' });
        openAt.set(e.data.case, e.at);
        bump(0);
        break;
      case 'ActivityRecorded': {
        const c = opened.get(e.data.case);
        if (c) { c.steps += 1; c.last = e.data.activity; }
        const r = e.data.resource;
        if (r != null) {
          const h = holder.get(e.data.case);
          if (h !== r) {
            if (h !== undefined) release(h);
            holder.set(e.data.case, r);
            wip.set(r, (wip.get(r) ?? 0) + 1);
          }
        }
        break;
      }
      case 'CaseClosed': {
        opened.delete(e.data.case);
        bump(1);
        if (openAt.has(e.data.case)) {
          const hours = (e.at - openAt.get(e.data.case)) / HOUR;
          let b = DURATION_BUCKETS_H.findIndex((x) => hours <= x);
          if (b < 0) b = DURATION_BUCKETS_H.length;
          durations[b] += 1;
          openAt.delete(e.data.case);
        }
        if (holder.has(e.data.case)) { release(holder.get(e.data.case)); holder.delete(e.data.case); }
        closedAt.set(e.data.case, e.at);
        for (const w of pending.get(e.data.case) ?? []) settle(w, e.at, true);
        pending.delete(e.data.case);
        break;
      }
      case 'PredictionRecorded': {
        const w = { p: e.data, at: e.at };
        if (closedAt.has(e.data.case)) { settle(w, closedAt.get(e.data.case), false); break; }
        score(e.data.model).pending += 1;
        if (!e.data.shadow) served.pending += 1;
        if (!pending.has(e.data.case)) pending.set(e.data.case, []);
        pending.get(e.data.case).push(w);
        break;
      }
      case 'DriftDetected':
        score(e.data.model).drifts += 1;
        break;
      case 'ModelTrained':
        registered.push(e.data.id);
        break;
      case 'ChallengerStarted':
        challenger = e.data.model;
        entered.add(e.data.model);
        break;
      case 'ModelPromoted':
        if (challenger === e.data.model) challenger = null;
        if (e.data.replaced) why.set(e.data.replaced, `replaced by ${e.data.model}`);
        champion = e.data.model;
        entered.add(e.data.model);
        score(e.data.model);
        break;
      case 'ModelRetired':
        if (challenger === e.data.model) challenger = null;
        why.set(e.data.model, e.data.reason);
        break;
      default:
    }
  }
  const role = (id) => (id === champion ? 'champion' : id === challenger ? 'challenger' : entered.has(id) ? 'retired' : 'registered');
  // The loop table says why a retired model left.
  const loopRole = (id) => (role(id) === 'retired' ? `retired: ${why.get(id)}` : role(id));
  // The last 30 calendar days up to the newest day with cases (from the
  // first day with any, if the log is younger), quiet days as zero.
  const known = [...perDay.keys()].sort((a, b) => a - b);
  const days = [];
  if (known.length) {
    const last = known[known.length - 1];
    for (let d = Math.max(known[0], last - 29 * DAY); d <= last; d += DAY) days.push(d);
  }
  const open = [...opened.entries()].map(([c, v]) => ({ case: c, ...v }));
  const loop = new Map();
  if (served.outcomes > 0) loop.set('served', { ...served, role: 'what the loop served' });
  for (const [id, s] of models) loop.set(id, { ...s, role: loopRole(id) });
  return {
    head: events.length,
    byType,
    stream: events.slice(-STREAM_ROWS).reverse().map((e) => ({ seq: e.seq, type: e.type, case: caseOf(e) })),
    openCount: open.length,
    open: new Map(open.map((o) => [o.case, o])),
    openOldest: open.map((o) => o.at).sort((a, b) => a - b).slice(0, OPEN_ROWS),
    workload: new Map([...wip.entries()]),
    perDay: days.map((d) => { const [o, c] = perDay.get(d) ?? [0, 0]; return `${dayLabel(d)}: opened ${o} cases|${dayLabel(d)}: closed ${c} cases`; }).join('|'),
    durations: durations.map((n, i) => `${bucketLabel(i)}: closed cases ${n} cases`).join('|'),
    registry: registered.slice().reverse().map((id) => `${id}:${role(id)}`),
    loop,
  };
}

/** Everything the views show now, read in one task. */
export async function shownViews(page) {
  return page.evaluate(() => {
    const $ = (s) => document.querySelector(s);
    const $$ = (s) => [...document.querySelectorAll(s)];
    const titles = (id) => $$(`[data-testid=${id}] rect title`).map((t) => t.textContent).join('|');
    const cells = (tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent.trim());
    const byType = {};
    for (const part of ($('[data-testid=stats-by-type]')?.textContent ?? '').split(' · ')) {
      const m = part.match(/^(\w+): (\d+)$/);
      if (m) byType[m[1]] = Number(m[2]);
    }
    return {
      seq: Number($('main')?.dataset.seq),
      head: Number($('[data-testid=event-count]')?.textContent),
      behind: $('[data-testid=views-behind]')?.textContent ?? '',
      statsEvents: Number($('[data-testid=stats-events]')?.textContent),
      byType,
      stream: $$('[data-testid=stream-row]').map((tr) => { const c = cells(tr); return { seq: Number(c[0]), type: c[2], case: c[3] }; }),
      openCount: Number($('[data-testid=open-count]')?.textContent),
      open: $$('[data-testid=open-row]').map((tr) => { const c = cells(tr); return { case: c[0], last: c[3], steps: Number(c[4]) }; }),
      workload: $$('[data-testid=workload-chart] rect title').map((t) => t.textContent),
      perDay: titles('per-day-chart'),
      durations: titles('duration-chart'),
      registry: $$('[data-testid=model-row]').map((tr) => `${tr.dataset.model}:${tr.querySelector('[data-testid=model-role]')?.textContent}`),
      loop: $$('[data-testid=feedback-row]').map(cells),
    };
  });
}

/** The ways `shown` disagrees with `want` (the log up to the views' position). */
export function compare(shown, want) {
  const out = [];
  const canon = (v) => JSON.stringify(v, (k, x) => (x && typeof x === 'object' && !Array.isArray(x) ? Object.fromEntries(Object.entries(x).sort()) : x));
  const same = (what, a, b) => {
    if (canon(a) !== canon(b)) out.push(`${what}: the page shows ${JSON.stringify(a)}, the log says ${JSON.stringify(b)}`);
  };
  same('statistics: events', shown.statsEvents, want.head);
  same('statistics: events by type', shown.byType, want.byType);
  same('event stream (newest rows)', shown.stream, want.stream);
  same('open cases: count', shown.openCount, want.openCount);
  same('open cases: rows shown', shown.open.length, Math.min(want.openCount, OPEN_ROWS));
  for (const row of shown.open) {
    const truth = want.open.get(row.case);
    if (!truth) { out.push(`open cases: ${row.case} is shown open, the log has it closed or never opened`); continue; }
    same(`open cases: ${row.case} (last step, steps)`, [row.last, row.steps], [truth.last, truth.steps]);
  }
  const shownOldest = shown.open.map((r) => want.open.get(r.case)?.at ?? 0).sort((a, b) => a - b);
  same('open cases: the oldest are listed', shownOldest, want.openOldest);
  const workload = new Map();
  for (const t of shown.workload) {
    const m = t.match(/^(.*): open cases (\d+) cases$/);
    if (m) workload.set(m[1], Number(m[2]));
  }
  for (const r of new Set([...workload.keys(), ...want.workload.keys()])) {
    same(`workload: ${r}`, workload.get(r) ?? 0, want.workload.get(r) ?? 0);
  }
  same('cases per day (last 30 days)', shown.perDay, want.perDay);
  same('how long cases take', shown.durations, want.durations);
  same('registry: models and roles', shown.registry, want.registry);
  // The loop table: id, role, outcomes, MAE, …, median MAE (col 6), …, waiting (col 9), drifts (col 11).
  const rows = new Map(shown.loop.map((c) => [c[0], c]));
  same('loop table: models', [...rows.keys()].sort(), [...want.loop.keys()].sort());
  for (const [id, s] of want.loop) {
    const c = rows.get(id);
    if (!c) continue;
    same(`loop table: ${id} role`, c[1], s.role);
    same(`loop table: ${id} outcomes`, Number(c[2]), s.outcomes);
    const close = (what, text, value) => {
      if (value === null) { if (text !== '—') out.push(`loop table: ${id} ${what} shows ${text}, expected —`); return; }
      if (!(Math.abs(Number(text) - value) <= 0.006)) out.push(`loop table: ${id} ${what} shows ${text}, the log gives ${value.toFixed(4)}`);
    };
    close('MAE', c[3], s.outcomes ? s.abs / s.outcomes : null);
    close('median MAE', c[6], s.outcomes ? s.base / s.outcomes : null);
    same(`loop table: ${id} waiting`, Number(c[9].split(' ')[0]), s.pending);
    if (id !== 'served') same(`loop table: ${id} drift alarms`, Number(c[11]), s.drifts);
    if (s.role.startsWith('retired')) same(`loop table: ${id} recent error (retired)`, [c[4], c[5]], ['retired', 'retired']);
  }
  return out;
}
