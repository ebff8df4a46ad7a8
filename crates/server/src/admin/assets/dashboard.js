// The dashboard's start (loaded last): queue counts, the tenants' table with the last
// hour's plot (all tenants, or the one picked), the tabs and the search box, and the
// refresh every few seconds (counts, plot, the list's first page, the detail panel).
'use strict';
let plotTenant = ''; // '' = all tenants
const TENANT_ROWS = 50; // past this, the tenants most in trouble, then the busiest

function tenantRow(name, c, cls) {
  return el('tr', { class: 'row tenant' + (name === plotTenant ? ' on' : '') + (cls ? ' ' + cls : ''), 'data-tenant': name,
    onclick: () => { plotTenant = name; refreshStats(); } },
  td(name || 'all tenants'), td(c.received), td(c.delivered), td(c.retrying), td(c.dead, c.dead ? 's-dead' : ''),
  td(c.queued + c.running));
}

async function refreshStats() {
  const s = await api('stats');
  for (const k of ['pending', 'running', 'done', 'dead']) $('c-' + k).textContent = s.queue[k];
  $('c-age').textContent = Math.round(s.queue.oldest_due_seconds || 0) + 's';
  const total = { received: 0, delivered: 0, retrying: 0, dead: 0, queued: 0, running: 0 };
  for (const t of s.tenants) for (const k of Object.keys(total)) total[k] += t.counts[k];
  const rank = (c) => [c.dead, c.retrying, c.received];
  const shown = s.tenants.length <= TENANT_ROWS ? s.tenants : [...s.tenants]
    .sort((a, b) => { const x = rank(a.counts), y = rank(b.counts); return y[0] - x[0] || y[1] - x[1] || y[2] - x[2]; })
    .slice(0, TENANT_ROWS);
  $('tenant-rows').replaceChildren(tenantRow('', total, 'total'), ...shown.map((t) => tenantRow(t.name, t.counts)),
    ...(shown.length < s.tenants.length ? [el('tr', {}, el('td', { colspan: 6, class: 'hint' }, `… and ${s.tenants.length - shown.length} more tenants (most dead letters, retries and events first)`))] : []));
  $('tenant-config').replaceChildren(...shown.map((t) => el('li', {}, el('b', {}, t.name), ': ',
    t.connectors.map((c) => `${c.name} (${c.type}${c.dry_run ? ', dry run' : ''})`).join(', '),
    t.routes.length ? ` — routes ${t.routes.join(', ')}` : '')),
  ...s.other_tenants.map((t) => el('li', {}, el('b', {}, t), ': no longer configured (stored events or jobs)')));
  const minutes = plotTenant ? (await api('stats/last-hour', { tenant: plotTenant })).minutes : s.last_hour;
  const title = 'Last hour — ' + (plotTenant || 'all tenants');
  $('plot').replaceChildren(el('h3', {}, title), plot(minutes, title), legend(minutes));
  $('updated').textContent = 'updated ' + new Date().toLocaleTimeString();
}

function refreshAll() {
  return Promise.all([refreshStats(), refreshList(), drawDetail()]).catch((e) => console.warn(e));
}

document.querySelectorAll('nav button[data-view]').forEach((b) => b.addEventListener('click', () => showList(b.dataset.view)));
$('more').addEventListener('click', () => loadPage(true));
$('search').addEventListener('submit', (e) => {
  e.preventDefault();
  const q = $('q').value.trim();
  if (q) showList('search', { q }); else showList('events');
});
$('replay-all').addEventListener('click', async () => {
  const r = await post('dead-letters/replay');
  note(`Replayed ${r.count} dead letter(s).`);
  refreshAll();
});
$('sign-out').addEventListener('click', async () => {
  await post('/admin/logout');
  location.reload();
});
refreshStats();
showList('jobs');
setInterval(refreshAll, 2000);
