// The detail panel: a booking's timeline (its events, their jobs in their current state,
// and every arrival and attempt across connectors in time order) or one job with its
// attempts. Dead jobs get a Replay button; the panel is redrawn on every refresh, so a
// replayed job is seen going back to pending and then delivered.
'use strict';
let shown = null; // {booking, tenant} or {job}
let drawn = 0; // the latest drawing wins when two overlap

function replayButton(id) {
  return el('button', { class: 'btn replay', 'data-job': id, onclick: async (e) => {
    e.stopPropagation();
    const r = await post(`dead-letters/${id}/replay`);
    note(r.count ? `Job ${id} replayed: pending again, delivery follows.` : `Job ${id} was not dead: left alone.`);
    refreshAll();
  } }, 'Replay');
}
const bookingButton = (booking, tenant) => booking
  ? el('button', { class: 'link booking', 'data-booking': booking, onclick: (e) => { e.stopPropagation(); showTimeline(booking, tenant); } }, booking)
  : '';
const jobRow = (j, extra) => el('tr', { class: 'row', 'data-job': j.id, onclick: () => showJob(j.id) },
  td(j.id), td(j.tenant), td(j.connector), td(j.event_type), el('td', {}, bookingButton(j.booking_id, j.tenant)),
  statusTd(j.status), td(j.attempts), td(when(j.run_at)), td(j.last_error, 'err'), extra || null,
  el('td', {}, j.status === 'dead' ? replayButton(j.id) : ''));
const JOB_HEADS = ['job', 'tenant', 'connector', 'event', 'booking', 'status', 'attempts', 'next / last run', 'last error'];

function showTimeline(booking, tenant) { shown = { booking, tenant }; return drawDetail(); }
function showJob(id) { shown = { job: id }; return drawDetail(); }
function closeDetail() { shown = null; $('detail').hidden = true; }

async function drawDetail() {
  if (!shown) return;
  const d = $('detail');
  const seq = ++drawn;
  const body = shown.job ? await jobDetail(shown.job) : await timeline(shown.booking, shown.tenant);
  if (seq !== drawn || !shown) return;
  d.replaceChildren(el('button', { class: 'btn close', onclick: closeDetail }, 'Close'), ...body.flat().filter(Boolean));
  d.hidden = false;
}

async function timeline(booking, tenant) {
  const t = await api(`bookings/${encodeURIComponent(booking)}/timeline`, { tenant });
  const entry = (e) => {
    const a = e.attempt || {};
    return el('tr', { class: 'entry ' + e.kind },
      td(when(e.at)), td(e.kind === 'received' ? 'event received' : 'attempt'), td(e.tenant), td(e.event_type),
      td(e.connector), td(e.job_id), td(a.attempt), a.outcome ? statusTd(a.outcome) : td(''),
      td(a.step == null ? '' : a.step + 1), td(a.error, 'err'));
  };
  return [
    el('h3', { id: 'timeline' }, `Booking ${t.booking_id}`, t.tenant ? ` (${t.tenant})` : ''),
    el('p', {}, `${t.events.length} event(s), ${t.jobs.length} job(s)`, t.truncated ? ' — cut short: the oldest are shown' : ''),
    el('h4', {}, 'Jobs'),
    table('timeline-jobs', [...JOB_HEADS, ''], t.jobs.map((j) => jobRow(j))),
    el('h4', {}, 'Every event and attempt, in time order'),
    table('timeline-entries', ['at', 'what', 'tenant', 'event', 'connector', 'job', 'attempt', 'outcome', 'step', 'error'], t.entries.map(entry)),
  ];
}

async function jobDetail(id) {
  const j = await api('jobs/' + id);
  const json = (v) => el('pre', {}, JSON.stringify(v, null, 2));
  return [
    el('h3', {}, `Job ${j.id} — ${j.tenant} / ${j.connector} — `, el('span', { class: 's-' + j.status }, LABEL[j.status]), ' ',
      j.status === 'dead' ? replayButton(j.id) : '', ' ', bookingButton(j.booking_id, j.tenant)),
    el('p', {}, `${j.event_type} for booking ${j.booking_id ?? '—'}, event ${j.event_id}; ${j.steps_done} step(s) done`),
    j.last_error ? el('p', { class: 'err' }, el('b', {}, 'Last error: '), j.last_error) : null,
    el('h4', {}, 'Attempts'),
    table('job-attempts', ['#', 'started', 'outcome', 'step', 'error', 'retry at'], j.attempts_log.map((a) =>
      el('tr', {}, td(a.attempt), td(when(a.started_at)), statusTd(a.outcome), td(a.step == null ? '' : a.step + 1), td(a.error, 'err'), td(when(a.retry_at))))),
    j.dry_run ? [el('h4', {}, 'Dry run: requests it would send'), json(j.dry_run)] : null,
    el('h4', {}, 'Step results'), json(j.step_results),
    el('h4', {}, 'Event'), json(j.event),
  ];
}
