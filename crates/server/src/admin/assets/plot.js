// The last-hour plot: one inline SVG (no library) of received / delivered / failed per
// minute, from a `Minute[]` of the admin API (sixty entries, the current minute last).
'use strict';
const SVG_NS = 'http://www.w3.org/2000/svg';
const SERIES = ['received', 'delivered', 'failed'];
function svg(tag, attrs, text) {
  const e = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text != null) e.textContent = String(text);
  return e;
}
function plot(minutes, title) {
  const W = 600, H = 120, L = 30, B = 16;
  const max = Math.max(1, ...minutes.flatMap((m) => SERIES.map((s) => m[s])));
  const x = (i) => L + (i * (W - L)) / Math.max(1, minutes.length - 1);
  const y = (v) => H - (v * (H - 8)) / max;
  const sum = (s) => minutes.reduce((a, m) => a + m[s], 0);
  const s = svg('svg', { viewBox: `0 0 ${W} ${H + B}`, class: 'plot', role: 'img' });
  s.append(svg('title', {}, `${title}: ` + SERIES.map((k) => `${sum(k)} ${k}`).join(', ')));
  s.append(svg('line', { x1: L, y1: H, x2: W, y2: H, class: 'axis' }));
  s.append(svg('text', { x: L - 4, y: 10, class: 'tick', 'text-anchor': 'end' }, max));
  s.append(svg('text', { x: L - 4, y: H, class: 'tick', 'text-anchor': 'end' }, 0));
  s.append(svg('text', { x: L, y: H + B - 2, class: 'tick' }, '−60 min'));
  s.append(svg('text', { x: W, y: H + B - 2, class: 'tick', 'text-anchor': 'end' }, 'now'));
  for (const k of [...SERIES].reverse()) { // received on top, dashed: overlaps stay visible
    const pts = minutes.map((m, i) => `${x(i).toFixed(1)},${y(m[k]).toFixed(1)}`).join(' ');
    s.append(svg('polyline', { points: pts, class: 'line ' + k }));
  }
  return s;
}
// The legend under a plot, with the hour's totals.
function legend(minutes) {
  return el('p', { class: 'legend' }, SERIES.map((k) => el('span', { class: 'key ' + k }, `${minutes.reduce((a, m) => a + m[k], 0)} ${k}`)));
}
