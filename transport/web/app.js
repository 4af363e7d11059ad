// The eventhub dashboard: a live table of the jobs this user may see, built
// on the client library the hub serves at /eventhub-client.js.
//
// Everything from the hub is put on the page with textContent, never as
// HTML: job ids, scopes and errors are data, not markup.
import { connect } from '/eventhub-client.js';

const STATUSES = ['queued', 'started', 'completed', 'failed'];
const MAX_ROWS = 300; // jobs kept in the table
const MAX_LOG = 500; // lines kept in the event log
const PARAMS_HINT = {
  matrix: '{"rows": 10, "cols": 10, "shock": 0.2}',
  growth: '{"principal": 1000, "rate": 0.05, "years": 10}',
  probability: '{"start": 100, "target": 120, "years": 5, "trials": 20000}',
};
const NEEDS = { matrix: ['asset', 'scenario'], growth: ['asset'], probability: ['scenario'] };

const $ = (id) => document.getElementById(id);
const devAuth = document.querySelector('meta[name="eventhub-auth"]')?.content === 'dev';

// jobs by id: {eventId (BigInt), event, tr}; the table shows them most
// recently updated first.
const jobs = new Map();
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
  $('log').textContent = '';
  $('last-id').textContent = 'none yet';
  logNote('connecting' + (user ? ` as ${user}` : ''));
  client = connect({ key: devAuth ? user : sessionKey() });
  client.on('snapshot', onSnapshot);
  client.on('*', onEvent);
  client.on('reset', (r) => logNote(`reset (${r.reason || 'unknown'}) at #${r.lastEventId}: reloading the jobs`, 'reset'));
  client.on('state', showState);
  showState(client.state);
  window.eventhubClient = client; // for the console, and for the browser tests
}

function onSnapshot(snap) {
  clearJobs();
  // Oldest first, so the newest ends on top.
  for (let i = snap.jobs.length - 1; i >= 0; i--) upsert(snap.jobs[i].event, BigInt(snap.jobs[i].eventId), false);
  $('last-id').textContent = '#' + snap.lastEventId;
  logNote(`loaded ${snap.jobs.length} job${snap.jobs.length === 1 ? '' : 's'} up to #${snap.lastEventId}`, 'snapshot');
  refreshCounts();
}

function onEvent(event, meta) {
  upsert(event, BigInt(meta.id), true);
  $('last-id').textContent = '#' + meta.id;
  logEvent(event, meta.id);
  refreshCounts();
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
// has a newer one.
function upsert(event, id, fresh) {
  let job = jobs.get(event.jobId);
  if (job && job.eventId >= id) return;
  if (!job) {
    job = { tr: document.createElement('tr') };
    job.tr.setAttribute('role', 'row');
    jobs.set(event.jobId, job);
  }
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
  cell(tr, 'Job', (td) => { td.className = 'job'; td.textContent = event.jobId; });
  cell(tr, 'Asset / scenario', (td) => { td.textContent = [d.assetId, d.scenarioId].filter(Boolean).join(' / ') || '—'; });
  cell(tr, 'Status', (td) => {
    const b = document.createElement('span');
    b.className = `badge st-${event.status}`;
    b.textContent = event.status;
    td.append(b);
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
  const li = document.createElement('li');
  li.dataset.kind = 'event';
  li.dataset.id = id;
  li.dataset.job = event.jobId;
  li.dataset.status = event.status;
  const idSpan = document.createElement('span');
  idSpan.className = 'id';
  idSpan.textContent = '#' + id;
  const what = document.createElement('span');
  what.className = 'what';
  what.textContent = `${event.type} ${event.jobId}`;
  const badge = document.createElement('span');
  badge.className = `badge st-${event.status}`;
  badge.textContent = event.status;
  li.append(idSpan, what, badge);
  logLine(li);
}

function logNote(text, kind = 'note') {
  const li = document.createElement('li');
  li.className = 'note';
  li.dataset.kind = kind;
  li.textContent = `${new Date().toLocaleTimeString()} ${text}`;
  logLine(li);
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
      out.textContent = `Submitted ${type} job ${answer.jobId}.`;
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
