// The dashboard's charts of a job's result: a line chart of a growth
// projection, a heat map of a matrix, a gauge of a probability. Each is
// inline SVG built with DOM calls, in a <figure> with:
//
// - role="img" and an aria-label that sums up what it shows,
// - a "Show data" table with every number the chart draws, for screen
//   readers and for anyone who wants the figures (each number a <data>
//   element whose value is the number as the hub sent it).
//
// A result is data from an event, so it is untrusted: each chart checks the
// shape it needs, and an unexpected one gives an error (the caller shows the
// raw data instead). Text goes in with textContent, geometry and colours as
// SVG attributes: the page's CSP allows no inline style.
//
// The functions own no state beyond a counter for unique ids; they build new
// elements on each call.

const SVG_NS = 'http://www.w3.org/2000/svg';

// Bounds on what a chart draws, over what the job kinds produce (101 values,
// a 20×20 grid), so that a publisher's odd result cannot build a huge page.
const MAX_VALUES = 1001;
const MAX_SIDE = 1000;
const MAX_CELLS = 2500;

// The heat map's colour scale, low to high: viridis, which reads in order
// for colour-blind eyes and in greyscale.
const SCALE = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];

let seq = 0; // makes the ids a chart needs (its gradient) unique in the page

// BadResult says a result does not have the shape its kind gives.
export class BadResult extends Error {}

function bad(msg) {
  throw new BadResult(msg);
}

const isNum = (v) => typeof v === 'number' && Number.isFinite(v);
const isInt = (v, lo, hi) => Number.isInteger(v) && v >= lo && v <= hi;

// ---- formatting ----

const numberFormats = new Map();

// fmt formats n for people: grouped digits, at most `digits` decimals.
export function fmt(n, digits = 2) {
  let f = numberFormats.get(digits);
  if (!f) numberFormats.set(digits, (f = new Intl.NumberFormat(undefined, { maximumFractionDigits: digits })));
  return f.format(n);
}

// compact formats n in few characters, for axis labels: 1.2K, 3.4M.
const compactFormat = new Intl.NumberFormat(undefined, { notation: 'compact', maximumFractionDigits: 1 });
const compact = (n) => compactFormat.format(n);

export function pct(p, digits = 1) {
  return fmt(p * 100, digits) + '%';
}

// ---- building blocks ----

function svg(name, attrs = {}, parent = null) {
  const el = document.createElementNS(SVG_NS, name);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  parent?.append(el);
  return el;
}

function text(parent, x, y, content, attrs = {}) {
  const t = svg('text', { x, y, ...attrs }, parent);
  t.textContent = content;
  return t;
}

function tooltip(el, content) {
  svg('title', {}, el).textContent = content;
}

function html(name, className, content) {
  const el = document.createElement(name);
  if (className) el.className = className;
  if (content !== undefined) el.textContent = content;
  return el;
}

// dataCell is a table cell holding one number: its value as sent, its text
// for people.
function dataCell(value, digits) {
  const td = document.createElement('td');
  const d = document.createElement('data');
  d.value = String(value);
  d.textContent = fmt(value, digits);
  td.append(d);
  return td;
}

// figure wraps a chart with its caption and its data table.
function figure(kind, chart, label, caption, table) {
  const fig = html('figure', `chart chart-${kind}`);
  chart.setAttribute('role', 'img');
  chart.setAttribute('aria-label', label);
  chart.classList.add(kind);
  fig.append(chart);
  fig.append(html('figcaption', '', caption));
  const details = html('details', 'data');
  details.append(html('summary', '', 'Show data'));
  const wrap = html('div', 'table-scroll');
  table.classList.add('data');
  wrap.append(table);
  details.append(wrap);
  fig.append(details);
  return fig;
}

function dataTable(caption, headers) {
  const table = document.createElement('table');
  table.append(html('caption', '', caption));
  const tr = document.createElement('tr');
  for (const h of headers) {
    const th = html('th', '', h);
    th.scope = 'col';
    tr.append(th);
  }
  const thead = document.createElement('thead');
  thead.append(tr);
  table.append(thead, document.createElement('tbody'));
  return table;
}

function rowHeader(content) {
  const th = html('th', '', content);
  th.scope = 'row';
  return th;
}

// ---- growth: a line chart ----

// growthChart draws a growth result's values (the value at the start, then
// at the end of each year) as a line over the years.
export function growthChart(result) {
  const values = result?.values;
  if (!Array.isArray(values) || values.length < 1 || values.length > MAX_VALUES || !values.every(isNum)) {
    bad(`values: want 1 to ${MAX_VALUES} numbers`);
  }
  const n = values.length;
  const W = 400, H = 220, L = 52, R = 14, T = 14, B = 34;
  let lo = Math.min(...values), hi = Math.max(...values);
  if (lo === hi) {
    const pad = Math.abs(lo) * 0.05 || 1;
    lo -= pad;
    hi += pad;
  }
  const x = (i) => L + (n === 1 ? (W - L - R) / 2 : (i * (W - L - R)) / (n - 1));
  const y = (v) => T + ((hi - v) * (H - T - B)) / (hi - lo);

  const root = svg('svg', { viewBox: `0 0 ${W} ${H}` });
  const grid = svg('g', { class: 'axis' }, root);
  for (const v of [lo, (lo + hi) / 2, hi]) {
    svg('line', { x1: L, x2: W - R, y1: y(v), y2: y(v), class: 'gridline' }, grid);
    text(grid, L - 6, y(v) + 4, compact(v), { 'text-anchor': 'end' });
  }
  const ticks = n === 1 ? [0] : [...new Set([0, Math.round((n - 1) / 2), n - 1])];
  for (const i of ticks) text(grid, x(i), H - B + 16, String(i), { 'text-anchor': 'middle' });
  text(grid, (L + W - R) / 2, H - 4, 'year', { 'text-anchor': 'middle', class: 'axis-title' });

  svg('polyline', { class: 'line', points: values.map((v, i) => `${x(i).toFixed(2)},${y(v).toFixed(2)}`).join(' ') }, root);
  const points = svg('g', { class: 'points' }, root);
  const r = n > 40 ? 1.6 : 3;
  values.forEach((v, i) => tooltip(svg('circle', { class: 'point', cx: x(i).toFixed(2), cy: y(v).toFixed(2), r }, points), `year ${i}: ${fmt(v)}`));

  const first = values[0], last = values[n - 1];
  const years = n - 1;
  let label = `Line chart of the value over ${years} year${years === 1 ? '' : 's'}: from ${fmt(first)} to ${fmt(last)}`;
  if (isNum(result.gain)) label += `, a gain of ${fmt(result.gain)}`;
  if (isNum(result.contributed)) label += ` on ${fmt(result.contributed)} put in`;
  label += '.';

  const table = dataTable('Value at the start (year 0) and at the end of each year', ['Year', 'Value']);
  const body = table.tBodies[0];
  values.forEach((v, i) => {
    const tr = document.createElement('tr');
    tr.append(rowHeader(String(i)), dataCell(v, 2));
    body.append(tr);
  });
  return figure('growth', root, label, `Value by year, ${fmt(first)} → ${fmt(last)}.`, table);
}

// ---- matrix: a heat map ----

// colour maps t in [0, 1] onto the scale.
function colour(t) {
  const s = Math.min(Math.max(t, 0), 1) * (SCALE.length - 1);
  const i = Math.min(Math.floor(s), SCALE.length - 2);
  const f = s - i;
  const [a, b] = [SCALE[i], SCALE[i + 1]];
  return `rgb(${a.map((c, k) => Math.round(c + (b[k] - c) * f)).join(' ')})`;
}

// heatMap draws a matrix result: rows (horizon steps) by cols (stress
// levels), each cell coloured by its value between the grid's min and max,
// with a legend. A grid too large to be sent whole (the result then has
// rows, cols and its summary only) is drawn as its legend and said so.
export function heatMap(result) {
  const { rows, cols, min: lo, max: hi, mean, grid } = result || {};
  if (!isInt(rows, 1, MAX_SIDE) || !isInt(cols, 1, MAX_SIDE)) bad(`rows, cols: want whole numbers from 1 to ${MAX_SIDE}`);
  if (![lo, hi].every(isNum) || lo > hi) bad('min, max: want numbers, min ≤ max');
  const hasGrid = grid !== undefined && grid !== null;
  if (hasGrid) {
    if (rows * cols > MAX_CELLS) bad(`grid: over ${MAX_CELLS} cells`);
    if (!Array.isArray(grid) || grid.length !== rows || !grid.every((r) => Array.isArray(r) && r.length === cols && r.every(isNum))) {
      bad(`grid: want ${rows} rows of ${cols} numbers`);
    }
  }

  const L = 44, T = hasGrid ? 34 : 8, R = 10;
  const side = hasGrid ? Math.min(340 / cols, 220 / rows, 40) : 0;
  const w = hasGrid ? cols * side : 340;
  const h = hasGrid ? rows * side : 0;
  const W = Math.max(L + w + R, 300);
  const legendY = T + h + (hasGrid ? 18 : 4);
  const H = legendY + 40;
  const root = svg('svg', { viewBox: `0 0 ${W.toFixed(2)} ${H.toFixed(2)}` });
  const gradID = `heat-scale-${++seq}`;
  const grad = svg('linearGradient', { id: gradID, x1: 0, x2: 1, y1: 0, y2: 0 }, svg('defs', {}, root));
  SCALE.forEach((_, i) => svg('stop', { offset: i / (SCALE.length - 1), 'stop-color': colour(i / (SCALE.length - 1)) }, grad));

  let top = null;
  if (hasGrid) {
    // Axes: the first and last index of each, and what it counts.
    const axis = svg('g', { class: 'axis' }, root);
    text(axis, L + w / 2, 12, 'stress level →', { 'text-anchor': 'middle', class: 'axis-title' });
    for (const j of new Set([0, cols - 1])) text(axis, L + (j + 0.5) * side, T - 6, String(j), { 'text-anchor': 'middle' });
    text(axis, 14, T + h / 2, 'step →', { 'text-anchor': 'middle', class: 'axis-title', transform: `rotate(90 14 ${T + h / 2})` });
    for (const i of new Set([0, rows - 1])) text(axis, L - 6, T + (i + 0.5) * side + 4, String(i), { 'text-anchor': 'end' });
    const cells = svg('g', { class: 'cells' }, root);
    const span = hi - lo || 1;
    grid.forEach((row, i) => row.forEach((v, j) => {
      const rect = svg('rect', {
        class: 'cell', x: (L + j * side).toFixed(2), y: (T + i * side).toFixed(2),
        width: side.toFixed(2), height: side.toFixed(2), fill: colour((v - lo) / span),
        'data-row': i, 'data-col': j,
      }, cells);
      tooltip(rect, `step ${i}, stress ${j}: ${fmt(v, 4)}`);
      if (!top || v > top.v) top = { v, i, j };
    }));
  }

  const legend = svg('g', { class: 'legend' }, root);
  const lw = Math.min(W - L - R, 240);
  svg('rect', { x: L, y: legendY, width: lw, height: 10, fill: `url(#${gradID})`, class: 'legend-bar' }, legend);
  text(legend, L, legendY + 24, `min ${fmt(lo, 2)}`, { class: 'legend-min' });
  text(legend, L + lw, legendY + 24, `max ${fmt(hi, 2)}`, { 'text-anchor': 'end', class: 'legend-max' });
  if (isNum(mean) && hi > lo) {
    const mx = L + ((mean - lo) / (hi - lo)) * lw;
    svg('line', { x1: mx, x2: mx, y1: legendY - 3, y2: legendY + 13, class: 'legend-mean' }, legend);
  }

  let label = `Heat map of ${rows} steps by ${cols} stress levels: values from ${fmt(lo, 2)} to ${fmt(hi, 2)}`;
  if (isNum(mean)) label += `, mean ${fmt(mean, 2)}`;
  if (top) label += `; highest at step ${top.i}, stress level ${top.j}`;
  if (!hasGrid) label += `; the ${fmt(rows * cols, 0)} cells were not sent, only their summary`;
  label += '.';

  let table;
  if (hasGrid) {
    table = dataTable('Value by horizon step (rows) and stress level (columns)', ['Step', ...Array.from({ length: cols }, (_, j) => `Stress ${j}`)]);
    const body = table.tBodies[0];
    grid.forEach((row, i) => {
      const tr = document.createElement('tr');
      tr.append(rowHeader(String(i)), ...row.map((v) => dataCell(v, 4)));
      body.append(tr);
    });
  } else {
    table = dataTable('Summary of the grid', ['', 'Value']);
    const body = table.tBodies[0];
    for (const [name, v] of [['Min', lo], ['Mean', mean], ['Max', hi]]) {
      if (!isNum(v)) continue;
      const tr = document.createElement('tr');
      tr.append(rowHeader(name), dataCell(v, 4));
      body.append(tr);
    }
  }
  const caption = hasGrid
    ? `${rows} × ${cols} cells; colour from min (dark) to max (bright), the mark on the scale is the mean.`
    : `A ${rows} × ${cols} grid is too large to be sent whole: only its range and mean are known.`;
  return figure('matrix', root, label, caption, table);
}

// ---- probability: a gauge ----

// probabilityGauge draws a probability result: one estimate, so a gauge
// from 0 to 100% (not a histogram: the result holds no distribution), with
// its 95% interval and the closed-form value for comparison.
export function probabilityGauge(result) {
  const { probability: p, ci95, hits, trials, analytic } = result || {};
  const unit = (v) => isNum(v) && v >= 0 && v <= 1;
  if (!unit(p)) bad('probability: want a number from 0 to 1');
  const ci = Array.isArray(ci95) && ci95.length === 2 && ci95.every(unit) && ci95[0] <= ci95[1] ? ci95 : null;

  const W = 400, H = 96, L = 16, R = 16, Y = 34, BAR = 22;
  const span = W - L - R;
  const x = (v) => L + v * span;
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}` });
  svg('rect', { class: 'gauge-track', x: L, y: Y, width: span, height: BAR, rx: 4 }, root);
  svg('rect', { class: 'gauge-fill', x: L, y: Y, width: (p * span).toFixed(3), height: BAR, rx: 4 }, root);
  text(root, Math.min(Math.max(x(p), L + 24), W - R - 24), Y - 8, pct(p), { 'text-anchor': 'middle', class: 'gauge-value' });
  if (ci) {
    const cy = Y + BAR / 2;
    const g = svg('g', { class: 'gauge-ci' }, root);
    svg('line', { x1: x(ci[0]), x2: x(ci[1]), y1: cy, y2: cy }, g);
    for (const v of ci) svg('line', { x1: x(v), x2: x(v), y1: cy - 6, y2: cy + 6 }, g);
    tooltip(g, `95% interval ${pct(ci[0], 2)} to ${pct(ci[1], 2)}`);
  }
  if (unit(analytic)) {
    const a = svg('line', { class: 'gauge-analytic', x1: x(analytic), x2: x(analytic), y1: Y - 4, y2: Y + BAR + 4 }, root);
    tooltip(a, `closed form ${pct(analytic, 2)}`);
  }
  const axis = svg('g', { class: 'axis' }, root);
  for (const v of [0, 0.5, 1]) text(axis, x(v), Y + BAR + 18, pct(v, 0), { 'text-anchor': v === 0 ? 'start' : v === 1 ? 'end' : 'middle' });

  let label = `Gauge: probability ${pct(p)}`;
  if (ci) label += ` (95% interval ${pct(ci[0])} to ${pct(ci[1])})`;
  if (isInt(hits, 0, Infinity) && isInt(trials, 1, Infinity)) label += `, ${fmt(hits, 0)} hits in ${fmt(trials, 0)} trials`;
  if (unit(analytic)) label += `; closed form ${pct(analytic)}`;
  label += '.';

  const table = dataTable('The estimate and how sure it is', ['', 'Value']);
  const body = table.tBodies[0];
  const rows = [['Probability', p, 6]];
  if (ci) rows.push(['95% interval, low', ci[0], 6], ['95% interval, high', ci[1], 6]);
  if (isNum(hits)) rows.push(['Hits', hits, 0]);
  if (isNum(trials)) rows.push(['Trials', trials, 0]);
  if (unit(analytic)) rows.push(['Closed form', analytic, 6]);
  for (const [name, v, digits] of rows) {
    const tr = document.createElement('tr');
    tr.append(rowHeader(name), dataCell(v, digits));
    body.append(tr);
  }
  const caption = 'Probability of reaching the target: the bar is the estimate, the whisker its 95% interval, the dashed mark the closed form.';
  return figure('probability', root, label, caption, table);
}

// chartFor draws result for a job of type; it throws BadResult when the
// result is not what that type gives, and returns null for an unknown type.
export function chartFor(type, result) {
  switch (type) {
    case 'growth': return growthChart(result);
    case 'matrix': return heatMap(result);
    case 'probability': return probabilityGauge(result);
  }
  return null;
}
