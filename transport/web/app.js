// The eventhub dashboard: a live table of the jobs this user may see, built
// on the client library the hub serves at /eventhub-client.js, and each
// job's detail (its result drawn, its error, its timeline) in a dialog at
// #job=<id>.
//
// Everything from the hub is put on the page with textContent, never as
// HTML: job ids, scopes, results and errors are data, not markup.
import { connect } from '/eventhub-client.js';
import { chartFor, BadResult, fmt } from './charts.js?v={{v:charts.js}}';

const STATUSES = ['queued', 'started', 'completed', 'failed'];
const MAX_ROWS = 300; // jobs kept (in the table, with their latest event for the detail)
const MAX_SEEN = 8; // statuses kept per job for its timeline
const MAX_LOG = 500; // lines kept in the event log
const PARAMS_HINT = {
  matrix: '{"rows": 10, "cols": 10, "shock": 0.2}',
  growth: '{"principal": 1000, "rate": 0.05, "years": 10}',
  probability: '{"start": 100, "target": 120, "years": 5, "trials": 20000}',
};
const NEEDS = { matrix: ['asset', 'scenario'], growth: ['asset'], probability: ['scenario'] };

const $ = (id) => document.getElementById(id);
const devAuth = document.querySelector('meta[name="eventhub-auth"]')?.content === 'dev';

// jobs by id: {eventId (BigInt), event, tr, seen}; the table shows them
// most recently updated first. event is the job's latest event, whole (its
// data.result is what the detail draws); seen is the statuses this page
// has seen of it, oldest first: {id, status, timestamp, attempt, via}.
const jobs = new Map();
let loaded = false; // a snapshot has been shown since the last start
const seen = { assets: new Set(), scenarios: new Set() };
let client = null;
let user = '';

// ---- session ----

function cookie(name) {
  for (const part of document.cookie.split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === name) return v.join('=');
  }
  return '';
}

// sessionKey names whose stream this is, so tabs share a stream only with
// tabs of the same user: the dev user, or the subject of the session token.
function sessionKey() {
  const token = cookie('__session');
  if (token.startsWith('dev:')) return token.slice(4);
  try {
    const payload = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    return JSON.parse(atob(payload)).sub || '';
  } catch {
    return '';
  }
}

// setDevUser sets the development session cookie. The name needs no
// escaping: the user input's pattern allows only characters a cookie value
// may hold.
function setDevUser(name) {
  document.cookie = `__session=dev:${name}; Path=/; SameSite=Strict`;
  user = name;
  $('user').value = name;
}

// In dev mode every tab follows a user switch made in any of them: they all
// send the same cookie anyway.
const tabs = typeof BroadcastChannel === 'function' ? new BroadcastChannel('eventhub-dashboard') : null;
if (tabs) {
  tabs.onmessage = (m) => {
    if (m.data?.t === 'user' && devAuth && m.data.user !== user) {
      user = m.data.user;
      $('user').value = user;
      start();
    }
  };
}

// ---- the connection ----

// start (re)connects, for the current user: nothing of the previous user's
// stays on screen.
function start() {
  client?.close();
  clearJobs();
  loaded = false;
  renderDetail();
  $('log').textContent = '';
  $('last-id').textContent = 'none yet';
  $('last-id').title = '';
  logNote('connecting' + (user ? ` as ${user}` : ''));
  // conflate: a tab that falls behind keeps each job's latest progress
  // rather than being cut off; every other status still comes, in order.
  client = connect({ key: devAuth ? user : sessionKey(), conflate: true });
  client.on('snapshot', onSnapshot);
  client.on('*', onEvent);
  client.on('reset', (r) => logNote(`reset (${r.reason || 'unknown'}) at ${shortEventId(r.lastEventId)}: reloading the jobs`, 'reset'));
  client.on('state', showState);
  showState(client.state);
  window.eventhubClient = client; // for the console, and for the browser tests
}

function onSnapshot(snap) {
  // A snapshot reloaded for the same user (after a reset) replaces the
  // table, but what the timelines saw before stays true.
  const before = new Map(jobs);
  clearJobs();
  // Oldest first, so the newest ends on top.
  for (let i = snap.jobs.length - 1; i >= 0; i--) upsert(snap.jobs[i].event, BigInt(snap.jobs[i].eventId), false, 'snapshot');
  for (const [id, job] of jobs) for (const s of before.get(id)?.seen || []) addSeen(job, s);
  loaded = true;
  showLastId(snap.lastEventId);
  logNote(`loaded ${snap.jobs.length} job${snap.jobs.length === 1 ? '' : 's'} up to ${shortEventId(snap.lastEventId)}`, 'snapshot');
  refreshCounts();
  renderDetail();
}

function onEvent(event, meta) {
  upsert(event, BigInt(meta.id), true, 'stream');
  showLastId(meta.id);
  logEvent(event, meta.id);
  refreshCounts();
}

function showLastId(id) {
  $('last-id').textContent = shortEventId(id);
  $('last-id').title = `event ${id}`;
}

// ---- ids for people ----

// shortJob shortens an opaque job id (the workers' j-<16 hex digits>) to
// the first digits of its hex part; an id a publisher chose stays whole
// unless it is long. The full id goes in a title beside it.
function shortJob(id) {
  const m = /^(.*?)([0-9a-f]{12,})$/i.exec(id);
  if (m) return m[1] + m[2].slice(0, 6) + '…';
  return id.length > 24 ? id.slice(0, 20) + '…' : id;
}

// shortEventId shows an event id by its last digits: ids are numbers of up
// to 20 digits that differ from one event to the next only at the end.
function shortEventId(id) {
  const s = String(id);
  return s.length > 6 ? '#…' + s.slice(-4) : '#' + s;
}

// ---- connection state ----

let countdown = 0;

function showState(state) {
  const conn = $('conn');
  conn.dataset.status = state.status;
  conn.dataset.role = state.role;
  const words = { connecting: 'Connecting…', live: 'Live', reconnecting: 'Reconnecting', offline: 'Offline', closed: 'Closed' };
  $('conn-status').textContent = words[state.status] || state.status;
  $('conn-role').textContent = {
    leader: 'this tab holds the connection for every tab',
    follower: 'sharing the connection of another tab',
    solo: 'this tab has its own connection',
  }[state.role] || '';
  $('retry').hidden = !(state.status === 'reconnecting' || state.status === 'offline');
  clearInterval(countdown);
  tick(state);
  if (state.retryAt) countdown = setInterval(() => tick(state), 250);
}

function tick(state) {
  const detail = $('conn-detail');
  if (!state.retryAt) {
    detail.textContent = state.status === 'connecting' && state.error ? `(${state.error})` : '';
    detail.title = '';
    return;
  }
  const s = Math.max(0, Math.ceil((state.retryAt - Date.now()) / 1000));
  detail.textContent = `in ${s} s`;
  detail.title = state.error || '';
}

$('retry').addEventListener('click', () => client?.retryNow());

// ---- the job table ----

function clearJobs() {
  jobs.clear();
  $('rows').textContent = '';
  refreshCounts();
}

// upsert shows event as its job's latest status, unless the table already
// has a newer one, and adds it to the job's timeline. via says where it
// came from: 'snapshot' or 'stream'.
function upsert(event, id, fresh, via) {
  let job = jobs.get(event.jobId);
  const entry = { id, status: event.status, timestamp: event.timestamp, attempt: event.data?.attempt, via };
  // A job's progress moves its bar; its timeline keeps the statuses.
  const progress = isProgress(event) && job?.seen.some((s) => s.status === 'started');
  if (job && job.eventId >= id) {
    if (!progress) addSeen(job, entry);
    return;
  }
  if (!job) {
    job = { tr: document.createElement('tr'), seen: [] };
    job.tr.setAttribute('role', 'row');
    jobs.set(event.jobId, job);
  }
  if (!progress) addSeen(job, entry);
  job.eventId = id;
  job.event = event;
  renderRow(job);
  const rows = $('rows');
  rows.prepend(job.tr);
  if (fresh) {
    job.tr.classList.remove('fresh');
    void job.tr.offsetWidth; // restart the highlight
    job.tr.classList.add('fresh');
  }
  while (rows.children.length > MAX_ROWS) {
    const last = rows.lastElementChild;
    jobs.delete(last.dataset.job);
    last.remove();
  }
  const d = event.data || {};
  if (d.assetId) remember('assets', d.assetId);
  if (d.scenarioId) remember('scenarios', d.scenarioId);
  if (detailJob === event.jobId) renderDetail();
}

// addSeen adds a status to a job's timeline, once, in id order (seen on
// the stream wins over the same event in a snapshot). Past MAX_SEEN it
// keeps the first and the latest.
function addSeen(job, s) {
  const known = job.seen.find((x) => x.id === s.id);
  if (known) {
    if (s.via === 'stream') known.via = 'stream';
    return;
  }
  job.seen.push(s);
  job.seen.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  if (job.seen.length > MAX_SEEN) job.seen.splice(1, job.seen.length - MAX_SEEN);
}

function cell(tr, label, build) {
  const td = document.createElement('td');
  td.setAttribute('role', 'cell');
  td.dataset.label = label;
  build(td);
  tr.append(td);
  return td;
}

function renderRow(job) {
  const { event } = job;
  const d = event.data || {};
  const tr = job.tr;
  tr.textContent = '';
  tr.dataset.job = event.jobId;
  tr.dataset.status = event.status;
  tr.dataset.eventId = String(job.eventId);
  cell(tr, 'Type', (td) => { td.textContent = event.type; });
  cell(tr, 'Job', (td) => {
    td.className = 'job';
    const a = document.createElement('a');
    a.className = 'job-link';
    a.href = '#job=' + encodeURIComponent(event.jobId);
    a.textContent = shortJob(event.jobId);
    a.title = `${event.jobId}: show its result and timeline`;
    td.append(a);
  });
  cell(tr, 'Asset / scenario', (td) => { td.textContent = [d.assetId, d.scenarioId].filter(Boolean).join(' / ') || '—'; });
  cell(tr, 'Status', (td) => {
    const b = document.createElement('span');
    b.className = `badge st-${event.status}`;
    b.textContent = event.status;
    td.append(b);
    if (isProgress(event)) td.append(progressBar(event));
    if (event.status === 'failed' && d.error) td.title = d.error;
  });
  cell(tr, 'Time', (td) => {
    const t = document.createElement('time');
    t.dateTime = event.timestamp;
    const when = new Date(event.timestamp);
    t.textContent = isNaN(when) ? event.timestamp : when.toLocaleTimeString();
    t.title = event.timestamp;
    td.append(t);
  });
  cell(tr, 'Duration', (td) => { td.className = 'duration'; td.textContent = duration(event); });
}

// isProgress says whether event reports how far a running job got: a
// started event again, with data.progress from 0 to 1.
function isProgress(event) {
  const p = event.data?.progress;
  return event.status === 'started' && typeof p === 'number' && p >= 0 && p <= 1;
}

// progressBar is a running job's bar, its percentage and its message.
function progressBar(event) {
  const wrap = document.createElement('span');
  wrap.className = 'progress';
  const bar = document.createElement('progress');
  bar.max = 1;
  bar.value = event.data.progress;
  const pct = `${Math.round(event.data.progress * 100)}%`;
  const msg = typeof event.data.message === 'string' ? event.data.message : '';
  bar.setAttribute('aria-label', msg ? `${pct}: ${msg}` : pct);
  const text = document.createElement('span');
  text.className = 'progress-text';
  text.textContent = pct;
  if (msg) wrap.title = msg;
  wrap.append(bar, text);
  return wrap;
}

function duration(event) {
  const ms = event.data?.durationMs;
  if (typeof ms === 'number') return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(ms < 10000 ? 1 : 0)} s`;
  if (event.status === 'started') {
    const s = Math.max(0, Math.floor((Date.now() - Date.parse(event.timestamp)) / 1000));
    return `running ${s} s`;
  }
  return event.status === 'queued' ? 'waiting' : '—';
}

// Running jobs show their time so far.
setInterval(() => {
  for (const job of jobs.values()) {
    if (job.event.status === 'started') job.tr.querySelector('td.duration').textContent = duration(job.event);
  }
}, 1000);

function refreshCounts() {
  const counts = Object.fromEntries(STATUSES.map((s) => [s, 0]));
  for (const job of jobs.values()) counts[job.event.status]++;
  for (const s of STATUSES) $('count-' + s).textContent = String(counts[s]);
  $('empty').hidden = jobs.size > 0;
}

function remember(kind, id) {
  if (seen[kind].has(id) || seen[kind].size >= 50) return;
  seen[kind].add(id);
  const opt = document.createElement('option');
  opt.value = id;
  $(kind === 'assets' ? 'seen-assets' : 'seen-scenarios').append(opt);
}

// ---- the event log ----

function logLine(li) {
  const log = $('log');
  log.prepend(li);
  while (log.children.length > MAX_LOG) log.lastElementChild.remove();
}

function logEvent(event, id) {
  // A job's progress replaces its line just before, rather than filling
  // the log ten lines a second.
  const top = $('log').firstElementChild;
  if (isProgress(event) && top?.dataset.job === event.jobId && top.dataset.progress) top.remove();
  const li = document.createElement('li');
  if (isProgress(event)) li.dataset.progress = String(event.data.progress);
  li.dataset.kind = 'event';
  li.dataset.id = id;
  li.dataset.job = event.jobId;
  li.dataset.status = event.status;
  const idSpan = document.createElement('span');
  idSpan.className = 'id';
  idSpan.textContent = shortEventId(id);
  idSpan.title = `event ${id}`;
  const what = document.createElement('span');
  what.className = 'what';
  what.textContent = `${event.type} ${shortJob(event.jobId)}`;
  what.title = event.jobId;
  const badge = document.createElement('span');
  badge.className = `badge st-${event.status}`;
  badge.textContent = event.status;
  li.append(idSpan, what, badge);
  if (isProgress(event)) {
    const pct = document.createElement('span');
    pct.className = 'progress-text';
    pct.textContent = `${Math.round(event.data.progress * 100)}%`;
    li.append(pct);
  }
  logLine(li);
}

function logNote(text, kind = 'note') {
  const li = document.createElement('li');
  li.className = 'note';
  li.dataset.kind = kind;
  li.textContent = `${new Date().toLocaleTimeString()} ${text}`;
  logLine(li);
}

// ---- a job's detail ----
//
// The detail is a modal <dialog> whose state is the URL's hash, #job=<id>:
// a link to it opens it, Back closes it. Opening it from the table pushes
// a history entry (the row's link does); closing it goes back over that
// entry, or, when the page was opened at #job=<id>, replaces it.

const dialog = $('detail');
const RANK = { queued: 0, started: 1, completed: 2, failed: 2 };
let detailJob = null; // the id of the job the detail shows while it is open

function hashJob() {
  const m = /^#job=([^&]+)$/.exec(location.hash);
  if (!m) return null;
  try {
    return decodeURIComponent(m[1]);
  } catch {
    return null;
  }
}

function route() {
  const id = hashJob();
  if (id === null) {
    if (dialog.open) dialog.close();
    return;
  }
  const changed = id !== detailJob;
  detailJob = id;
  renderDetail();
  if (!dialog.open) dialog.showModal();
  if (changed) $('detail-h').focus();
}

window.addEventListener('hashchange', () => {
  // An entry this page navigated to: closing may go back over it.
  if (hashJob() !== null && !history.state?.detail) history.replaceState({ detail: true }, '');
  route();
});

function closeDetail() {
  if (hashJob() === null) return;
  if (history.state?.detail) {
    history.back();
  } else {
    history.replaceState(null, '', location.pathname + location.search);
    route();
  }
}

$('detail-close').addEventListener('click', closeDetail);

// Esc closes the dialog itself (and so does route): the hash follows, and
// focus goes back to the job's row.
dialog.addEventListener('close', () => {
  const id = detailJob;
  detailJob = null;
  delete dialog.dataset.job;
  $('detail-body').textContent = '';
  closeDetail();
  const link = id !== null && $('rows').querySelector(`tr[data-job="${CSS.escape(id)}"] a.job-link`);
  (link || $('jobs-h')).focus();
});

// A click anywhere on a row opens its job, as its link does; Space on the
// link too, as on a button.
$('rows').addEventListener('click', (e) => {
  if (e.target.closest('a, button') || String(getSelection() || '') !== '') return;
  e.target.closest('tr')?.querySelector('a.job-link')?.click();
});
$('rows').addEventListener('keydown', (e) => {
  if (e.key === ' ' && e.target.matches('a.job-link')) {
    e.preventDefault();
    e.target.click();
  }
});

function el(name, className, text) {
  const e = document.createElement(name);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

function badge(status) {
  return el('span', `badge st-${status}`, status);
}

function timeEl(ts) {
  const t = document.createElement('time');
  t.dateTime = ts;
  const when = new Date(ts);
  t.textContent = isNaN(when) ? ts : when.toLocaleTimeString();
  t.title = ts;
  return t;
}

// renderDetail (re)draws the open detail from what the page knows of its
// job; it is called again when the job changes.
function renderDetail() {
  if (detailJob === null) return;
  const id = detailJob;
  const job = jobs.get(id);
  const body = $('detail-body');
  const dataOpen = [...body.querySelectorAll('details')].map((d) => d.open);
  const refocus = body.contains(document.activeElement);
  body.textContent = '';
  dialog.dataset.job = id;
  const h = $('detail-h');
  h.textContent = `${job ? job.event.type + ' job' : 'Job'} ${shortJob(id)}`;
  h.title = id;

  if (!job) {
    dialog.dataset.status = '';
    body.append(el('p', 'notice', loaded
      ? `This page has no job ${id}: it is not one you may see, or it is older than the ${MAX_ROWS} most recent jobs the page keeps.`
      : 'Loading the jobs…'));
    return;
  }
  const { event } = job;
  const d = event.data || {};
  dialog.dataset.status = event.status;

  const facts = el('dl', 'facts');
  const fact = (name, value) => {
    facts.append(el('dt', '', name));
    const dd = el('dd');
    if (value instanceof Node) dd.append(value);
    else dd.textContent = value;
    facts.append(dd);
  };
  fact('Job', el('code', 'job-id', id));
  fact('Status', badge(event.status));
  if (isProgress(event)) {
    fact('Progress', progressBar(event));
    if (typeof d.message === 'string' && d.message) fact('Doing', d.message);
  }
  if (d.assetId) fact('Asset', d.assetId);
  if (d.scenarioId) fact('Scenario', d.scenarioId);
  if (typeof d.durationMs === 'number') fact('Ran for', duration(event));
  const latest = el('span', '', shortEventId(job.eventId));
  latest.title = `event ${job.eventId}`;
  fact('Latest event', latest);
  body.append(facts);

  const result = el('section', 'result');
  result.setAttribute('aria-labelledby', 'detail-result-h');
  const rh = el('h3', '', event.status === 'failed' ? 'Error' : 'Result');
  rh.id = 'detail-result-h';
  result.append(rh);
  if (event.status === 'completed' && (d.result === undefined || d.result === null)) {
    result.append(el('p', 'notice', 'This job\'s completed event carries no result.'));
  } else if (event.status === 'completed') {
    try {
      const chart = chartFor(event.type, d.result);
      result.append(chart || el('p', 'notice', `No chart for a ${event.type} job.`));
    } catch (err) {
      if (!(err instanceof BadResult)) throw err;
      result.append(el('p', 'notice', `This result cannot be drawn (${err.message}): its data is below.`));
    }
  } else if (event.status === 'failed') {
    result.append(el('p', 'job-error', d.error || 'The job failed without saying why.'));
  } else {
    result.append(el('p', 'notice', `No result yet: the job is ${event.status}. It shows here when the job completes.`));
  }
  body.append(result);

  const tl = el('section', 'timeline-section');
  tl.setAttribute('aria-labelledby', 'detail-timeline-h');
  const th = el('h3', '', 'Timeline');
  th.id = 'detail-timeline-h';
  tl.append(th, timeline(job));
  body.append(tl);

  const raw = el('details', 'raw');
  raw.append(el('summary', '', 'Event data (JSON)'), el('pre', '', JSON.stringify(d, null, 2)));
  body.append(raw);

  body.querySelectorAll('details').forEach((det, i) => { det.open = !!dataOpen[i]; });
  if (refocus) $('detail-h').focus();
}

// timeline lists queued, started and completed or failed, with the time of
// each this page has seen, and says which it has not.
function timeline(job) {
  const frag = document.createDocumentFragment();
  const known = job.seen;
  const first = known[0];
  if (first && first.status !== 'queued') {
    frag.append(el('p', 'note', first.via === 'snapshot'
      ? `This page loaded when the job was already ${first.status}: it knows the times of what it has seen since, not of what came before.`
      : `This page first saw the job ${first.status}: the times of what came before are not known here.`));
  }
  const ol = el('ol', 'timeline');
  const final = job.event.status === 'failed' ? 'failed' : 'completed';
  const t0 = Date.parse(first?.timestamp);
  for (const status of ['queued', 'started', final]) {
    const entries = known.filter((s) => s.status === status);
    if (entries.length === 0) {
      const li = el('li', 'unseen');
      li.dataset.status = status;
      li.dataset.seen = 'no';
      li.append(badge(status), el('span', 'when', RANK[job.event.status] > RANK[status] ? 'not seen by this page' : 'not yet'));
      ol.append(li);
      continue;
    }
    for (const s of entries) {
      const li = el('li');
      li.dataset.status = status;
      li.dataset.seen = 'yes';
      li.append(badge(status), timeEl(s.timestamp));
      const dt = Date.parse(s.timestamp) - t0;
      if (s !== first && Number.isFinite(dt)) li.append(el('span', 'delta', `+${dt < 1000 ? fmt(dt, 0) + ' ms' : fmt(dt / 1000, 1) + ' s'}`));
      if (typeof s.attempt === 'number' && s.attempt > 1) li.append(el('span', 'attempt', `attempt ${s.attempt} (redelivered)`));
      const idSpan = el('span', 'event-id', shortEventId(s.id));
      idSpan.title = `event ${s.id}`;
      li.append(idSpan);
      ol.append(li);
    }
  }
  frag.append(ol);
  return frag;
}

// ---- submitting a job ----

const form = $('job-form');

function showKindFields() {
  const type = $('job-type').value;
  for (const f of ['asset', 'scenario']) {
    const needed = NEEDS[type].includes(f);
    $('field-' + f).hidden = !needed;
    $('job-' + f).required = needed;
  }
  $('job-params').placeholder = PARAMS_HINT[type];
}
$('job-type').addEventListener('change', showKindFields);
showKindFields();

form.addEventListener('submit', async (e) => {
  e.preventDefault();
  const out = $('submit-result');
  out.classList.remove('error');
  const fail = (msg, focus) => {
    out.classList.add('error');
    out.textContent = msg;
    focus?.focus();
  };
  const type = $('job-type').value;
  const body = { type };
  for (const f of NEEDS[type]) {
    const input = $('job-' + f);
    if (!input.checkValidity() || !input.value) return fail(`${f === 'asset' ? 'Asset' : 'Scenario'}: 1 to 128 of A–Z a–z 0–9 . _ : -`, input);
    body[f + 'Id'] = input.value;
  }
  const raw = $('job-params').value.trim();
  if (raw) {
    try {
      body.params = JSON.parse(raw);
    } catch {
      return fail('Params: not valid JSON', $('job-params'));
    }
    if (typeof body.params !== 'object' || Array.isArray(body.params) || body.params === null) return fail('Params: want a JSON object', $('job-params'));
  }
  out.textContent = 'Submitting…';
  try {
    const res = await fetch('/api/jobs', {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify(body),
    });
    const answer = await res.json().catch(() => ({}));
    if (res.status === 202) {
      const link = document.createElement('a');
      link.href = '#job=' + encodeURIComponent(answer.jobId);
      link.textContent = shortJob(answer.jobId);
      link.title = answer.jobId;
      out.textContent = `Submitted ${type} job `;
      out.append(link, '.');
      out.dataset.jobId = answer.jobId;
    } else {
      fail(`Not submitted (HTTP ${res.status}): ${answer.error || res.statusText}`);
    }
  } catch (err) {
    fail(`Not submitted: ${err.message}`);
  }
});

// ---- start ----

if (devAuth) {
  const form = $('user-form');
  form.hidden = false;
  const current = cookie('__session');
  setDevUser(current.startsWith('dev:') ? current.slice(4) : 'alice');
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const name = $('user').value.trim();
    if (!$('user').checkValidity() || name === user) return;
    setDevUser(name);
    tabs?.postMessage({ t: 'user', user: name });
    start();
  });
} else {
  $('session-note').hidden = false;
}
start();
route(); // opened at #job=<id>: the detail shows once the job is loaded
