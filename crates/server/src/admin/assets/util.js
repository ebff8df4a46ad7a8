// The dashboard's shared helpers (loaded first; the admin CSP allows no inline script).
// DOM: every value goes in as text (el() appends strings as text nodes; no HTML is parsed).
// API: same-origin calls with the session cookie; state-changing ones carry the CSRF token.
'use strict';
const $ = (id) => document.getElementById(id);
const csrf = document.querySelector('meta[name="csrf-token"]').content;

// el('td', {class: 'x', onclick: f}, 'text', child, [more]): null/false kids and attrs are skipped.
function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, String(v));
  }
  for (const k of kids.flat()) if (k != null && k !== false) e.append(k instanceof Node ? k : String(k));
  return e;
}
const td = (v, cls) => el('td', { class: cls }, v);
const when = (t) => (t ? new Date(t).toLocaleString() : '');
// Job states and attempt outcomes as an operator reads them.
const LABEL = { done: 'delivered', pending: 'pending', running: 'running', dead: 'dead', retry: 'failed, retrying', rate_limited: 'rate limited', released: 'released' };
const statusTd = (s) => el('td', { class: 's-' + s, 'data-status': s }, LABEL[s] || s);
function table(id, heads, rows) {
  return el('table', { id }, el('thead', {}, el('tr', {}, heads.map((h) => el('th', {}, h)))), el('tbody', {}, rows));
}
// One line of news for the operator (never alert(): it would block the page).
function note(text, bad) { const n = $('note'); n.textContent = text; n.className = bad ? 'note bad' : 'note'; }

async function call(url, opts) {
  const r = await fetch(url, Object.assign({ credentials: 'same-origin' }, opts));
  if (r.status === 401) { location.reload(); throw new Error('signed out'); }
  if (!r.ok) {
    const msg = (await r.json().catch(() => ({}))).error || r.statusText;
    note('Refused: ' + msg, true);
    throw new Error(msg);
  }
  return r;
}
// api('events', {q: 'x'}): empty params are left out.
async function api(path, params) {
  const q = new URLSearchParams(Object.entries(params || {}).filter(([, v]) => v != null && v !== ''));
  return (await call('/admin/api/' + path + (q.size ? '?' + q : ''))).json();
}
async function post(path) {
  return (await call(path.startsWith('/') ? path : '/admin/api/' + path, { method: 'POST', headers: { 'X-CSRF-Token': csrf } })).json().catch(() => ({}));
}
