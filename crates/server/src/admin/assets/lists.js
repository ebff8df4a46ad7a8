// The lists under the tabs — jobs, dead letters, events, and search results (events whose
// booking id or attendee email is the search box's `q`) — cursor-paged: "More" appends
// the next page; a refresh reloads the list only while its first page alone is shown.
'use strict';
const list = { view: 'jobs', params: {}, cursor: null, pages: 0 };
const VIEWS = {
  jobs: { path: 'jobs', key: 'jobs', heads: [...JOB_HEADS, ''], row: (j) => jobRow(j) },
  dead: { path: 'dead-letters', key: 'jobs', heads: [...JOB_HEADS, 'dead since', ''], row: (j) => jobRow(j, td(when(j.dead_since))) },
  events: { path: 'events', key: 'events', heads: ['received', 'tenant', 'event', 'booking', 'email', 'jobs', 'id'], row: (v) =>
    el('tr', { class: 'row', onclick: () => v.booking_id && showTimeline(v.booking_id, v.tenant) },
      td(when(v.received_at)), td(v.tenant), td(v.event_type), el('td', {}, bookingButton(v.booking_id, v.tenant)),
      td(v.attendee_email), td(v.jobs), td(v.id)) },
};

async function loadPage(more) {
  const v = VIEWS[list.view === 'search' ? 'events' : list.view];
  const r = await api(v.path, Object.assign({ limit: 50 }, list.params, more ? { cursor: list.cursor } : {}));
  const items = r[v.key];
  const rows = items.map(v.row);
  if (more) { $('rows').append(...rows); list.pages += 1; } else {
    $('head').replaceChildren(el('tr', {}, v.heads.map((h) => el('th', {}, h))));
    $('rows').replaceChildren(...rows);
    list.pages = 1;
  }
  list.cursor = r.next_cursor;
  $('more').hidden = !list.cursor;
  if (list.view === 'search' && !more) $('list-title').textContent = `${items.length}${r.next_cursor ? '+' : ''} event(s) for “${list.params.q}”`;
}

function showList(view, params) {
  list.view = view;
  list.params = params || {};
  document.querySelectorAll('nav button[data-view]').forEach((b) => b.classList.toggle('on', b.dataset.view === view));
  if (view !== 'search') $('list-title').textContent = '';
  return loadPage(false);
}
const refreshList = () => (list.pages <= 1 ? loadPage(false) : Promise.resolve());
