// The slatis-sync dashboard: served from /admin/assets (the admin CSP allows no inline
// script or style). State-changing calls carry the session's CSRF token.
const $ = (id) => document.getElementById(id);
let view = 'jobs';
const csrf = document.querySelector('meta[name="csrf-token"]').content;
const esc = (s) => String(s ?? '').replace(/[&<>"]/g, (c) => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c]));
async function call(url, opts) {
  const r = await fetch(url, Object.assign({ credentials: 'same-origin' }, opts));
  if (r.status === 401) { location.reload(); throw new Error('signed out'); }
  if (r.status === 403) { alert('Refused: ' + (await r.json()).error); throw new Error('refused'); }
  return r;
}
async function api(path) { return (await call('/admin/api/' + path)).json(); }
async function post(path) {
  return (await call('/admin/api/' + path, { method: 'POST', headers: { 'X-CSRF-Token': csrf } })).json();
}
function when(t) { return t ? new Date(t).toLocaleString() : ''; }
async function refresh() {
  const s = await api('stats');
  for (const k of ['pending', 'running', 'done', 'dead']) $('c-' + k).textContent = s.queue[k];
  $('c-age').textContent = s.queue.oldest_due_seconds ? Math.round(s.queue.oldest_due_seconds) + 's' : '0s';
  $('tenants').innerHTML = s.tenants.map((t) => `<span>${esc(t.name)}: ${t.connectors.map((c) => esc(c.name) + ' (' + esc(c.type) + (c.dry_run ? ', dry run' : '') + ')').join(', ')}</span>`).join('');
  if (view === 'events') {
    const e = await api('events?limit=200');
    $('head').innerHTML = '<tr><th>received</th><th>tenant</th><th>event</th><th>booking</th><th>jobs</th><th>id</th></tr>';
    $('rows').innerHTML = e.events.map((v) => `<tr class="row" data-event="${esc(v.id)}"><td>${when(v.received_at)}</td><td>${esc(v.tenant)}</td><td>${esc(v.event_type)}</td><td>${esc(v.booking_id)}</td><td>${v.jobs}</td><td>${esc(v.id)}</td></tr>`).join('');
  } else {
    const j = await api(view === 'dead' ? 'dead-letters?limit=200' : 'jobs?limit=200');
    $('head').innerHTML = '<tr><th>job</th><th>tenant</th><th>connector</th><th>event</th><th>booking</th><th>status</th><th>attempts</th><th>next / last run</th><th>last error</th></tr>';
    $('rows').innerHTML = j.jobs.map((v) => `<tr class="row" data-job="${v.id}"><td>${v.id}</td><td>${esc(v.tenant)}</td><td>${esc(v.connector)}</td><td>${esc(v.event_type)}</td><td>${esc(v.booking_id)}</td><td class="s-${v.status}">${v.status}</td><td>${v.attempts}</td><td>${when(v.run_at)}</td><td class="err">${esc(v.last_error)}</td></tr>`).join('');
  }
  $('updated').textContent = 'updated ' + new Date().toLocaleTimeString();
}
async function showJob(id) {
  const j = await api('jobs/' + id);
  const d = $('detail');
  d.hidden = false;
  d.innerHTML = `<h3>Job ${j.id} — ${esc(j.tenant)} / ${esc(j.connector)} — <span class="s-${j.status}">${j.status}</span>
    ${j.status === 'dead' ? `<button class="btn" id="replay-one">Replay</button>` : ''}</h3>
    <p>${esc(j.event_type)} for booking ${esc(j.booking_id)}, event ${esc(j.event_id)}; ${j.steps_done} step(s) done</p>
    ${j.last_error ? `<p class="err"><b>Last error:</b> ${esc(j.last_error)}</p>` : ''}
    <h4>Attempts</h4><table><tr><th>#</th><th>started</th><th>outcome</th><th>step</th><th>error</th><th>retry at</th></tr>
    ${j.attempts_log.map((a) => `<tr><td>${a.attempt}</td><td>${when(a.started_at)}</td><td>${a.outcome}</td><td>${a.step == null ? '' : a.step + 1}</td><td class="err">${esc(a.error)}</td><td>${when(a.retry_at)}</td></tr>`).join('')}</table>
    ${j.dry_run ? `<h4>Dry run: requests it would send</h4><pre>${esc(JSON.stringify(j.dry_run, null, 2))}</pre>` : ''}
    <h4>Step results</h4><pre>${esc(JSON.stringify(j.step_results, null, 2))}</pre>
    <h4>Event</h4><pre>${esc(JSON.stringify(j.event, null, 2))}</pre>`;
  const b = $('replay-one');
  if (b) b.onclick = async () => { await post(`dead-letters/${j.id}/replay`); showJob(j.id); refresh(); };
}
document.querySelectorAll('nav button[data-view]').forEach((b) => b.onclick = () => {
  document.querySelectorAll('nav button[data-view]').forEach((x) => x.classList.toggle('on', x === b));
  view = b.dataset.view; refresh();
});
$('rows').onclick = (e) => {
  const tr = e.target.closest('tr');
  if (tr && tr.dataset.job) showJob(tr.dataset.job);
  if (tr && tr.dataset.event) { view = 'jobs'; api('jobs?event_id=' + tr.dataset.event).then((j) => j.jobs[0] && showJob(j.jobs[0].id)); }
};
$('replay-all').onclick = async () => { const r = await post('dead-letters/replay'); alert(`replayed ${r.count} job(s)`); refresh(); };
$('sign-out').onclick = async () => {
  await call('/admin/logout', { method: 'POST', headers: { 'X-CSRF-Token': csrf } });
  location.reload();
};
refresh();
setInterval(refresh, 3000);
