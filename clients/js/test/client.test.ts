// The client alone in a tab (shared: false, or no Web Locks): the snapshot
// and the stream, reconnection and its backoff, event: reset, filters,
// callbacks, close.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { connect, type Client, type ConnectOptions } from '@finexbot/eventhub-client';

import { Browser, jobEvent, next, Queue, record, until, type FakeEventSource } from './fakes.js';

// solo starts a browser without Web Locks and a client in it; both end
// with the test.
function solo(t: { after(fn: () => void): void }, options: ConnectOptions = {}): { b: Browser; hub: Client } {
  const b = new Browser();
  b.locks = null;
  b.start(t);
  return { b, hub: b.connect(options) };
}

// live answers the first snapshot with lastEventId and opens the stream.
async function live(b: Browser, hub: Client, lastEventId = 10): Promise<FakeEventSource> {
  (await b.fetches.next()).snapshot(lastEventId);
  const es = await b.eventSources.next();
  es.open();
  await until(hub, (s) => s.status === 'live');
  return es;
}

test('the snapshot, then the stream from its lastEventId, with no event twice', async (t) => {
  const { b, hub } = solo(t, { filters: { types: ['growth', 'matrix'], statuses: 'failed, completed' }, limit: 50 });
  const got = record(hub);
  const completed: string[] = [];
  hub.on('completed', (event, meta) => completed.push(`${meta.id} ${event.jobId}`));
  assert.equal(hub.state.status, 'connecting');
  assert.equal(hub.state.role, 'solo');

  const f = await b.fetches.next();
  assert.equal(f.url, '/api/jobs?statuses=failed%2Ccompleted&types=growth%2Cmatrix&limit=50');
  assert.equal(f.init?.credentials, 'same-origin');
  assert.equal(f.init?.cache, 'no-store');
  assert.deepEqual(f.init?.headers, { accept: 'application/json' });
  assert.equal(b.eventSources.pending, 0, 'no stream before the snapshot');

  const snapshot = next(hub, 'snapshot');
  f.snapshot(10, [{ eventId: 10, event: jobEvent('j-1', 'completed') }, { eventId: 7, event: jobEvent('j-0', 'failed') }]);
  assert.deepEqual((await snapshot)[0], {
    lastEventId: '10',
    jobs: [{ eventId: '10', event: jobEvent('j-1', 'completed') }, { eventId: '7', event: jobEvent('j-0', 'failed') }],
  });
  assert.equal(hub.lastEventId, '10');

  const es = await b.eventSources.next();
  assert.equal(es.url.origin + es.url.pathname, 'http://hub.test/api/events');
  assert.equal(es.url.searchParams.get('types'), 'growth,matrix');
  assert.equal(es.url.searchParams.get('statuses'), 'failed,completed');
  assert.equal(es.lastEventId, '10');
  assert.equal(es.withCredentials, false);
  es.open();
  assert.equal(hub.state.status, 'live');
  assert.equal(hub.state.error, null);

  es.send('job', jobEvent('j-2', 'completed'), '11');
  es.send('job', jobEvent('j-2', 'completed'), '11'); // a replay: dropped
  es.send('job', jobEvent('j-9', 'queued'), '9'); // older than the snapshot: dropped
  es.send('job', jobEvent('j-3', 'failed'), '12');
  es.send('job', 'not json', '13'); // reported, not delivered
  es.send('job', jobEvent('j-4'), '14x'); // not an id: ignored
  assert.deepEqual(got, [['11', 'j-2', 'completed'], ['12', 'j-3', 'failed']]);
  assert.deepEqual(completed, ['11 j-2']);
  assert.equal(hub.lastEventId, '12');
  assert.equal(hub.state.lastEventId, '12');
  assert.equal(b.errors.length, 1);
  assert.ok(b.errors[0] instanceof SyntaxError);
});

test('a broken stream is opened again from the newest id, after a backoff', async (t) => {
  const { b, hub } = solo(t);
  const got = record(hub);
  const es = await live(b, hub);
  es.send('job', jobEvent('j-1'), '11');
  es.send('job', jobEvent('j-2'), '12');

  es.fail();
  const s = await until(hub, (s) => s.status === 'reconnecting');
  assert.ok(es.closed, 'the failed EventSource is closed, so the browser does not reconnect it by itself');
  assert.equal(s.error, 'the stream closed');
  assert.equal(s.retryAt, b.clock.now + 500); // random 0.5 of the first bound, 1000
  assert.deepEqual(b.clock.timers, [500]);
  b.clock.advance(499);
  assert.deepEqual(b.clock.timers, [1], 'still waiting');
  b.clock.advance(1);

  const again = await b.eventSources.next();
  assert.equal(again.lastEventId, '12');
  assert.equal(hub.state.status, 'connecting');
  again.open();
  again.send('job', jobEvent('j-2'), '12'); // the hub replays from 12: dropped
  again.send('job', jobEvent('j-3'), '13');
  assert.deepEqual(got.map(([id]) => id), ['11', '12', '13']);
  assert.equal(hub.state.status, 'live');
});

test('the backoff: full jitter over an exponential, capped, from the random and clock the test gives', async (t) => {
  const { b, hub } = solo(t, { backoff: { initialMs: 1000, maxMs: 8000 } });
  let es = await live(b, hub);
  const randoms = [0.5, 0.25, 0.75, 0, 0.5, 1 - 2 ** -10, 0.5]; // exact in binary
  const bounds = [1000, 2000, 4000, 8000, 8000, 8000, 8000];
  const delays: number[] = [];
  const attempts: number[] = [];
  for (const r of randoms) {
    b.random = () => r;
    es.fail(); // the first broke after it opened; the others were refused
    const s = await until(hub, (s) => s.status === 'reconnecting');
    const delay = s.retryAt! - b.clock.now;
    delays.push(delay);
    attempts.push(s.attempt);
    assert.deepEqual(b.clock.timers, [delay], 'one wait, of the delay the state announces');
    b.clock.advance(delay);
    es = await b.eventSources.next();
  }
  assert.deepEqual(delays, randoms.map((r, i) => r * bounds[i]!));
  assert.deepEqual(attempts, [1, 2, 3, 4, 5, 6, 7]);
});

test('a stream that stayed up 5 s starts the backoff over; one that did not goes on', async (t) => {
  const { b, hub } = solo(t);
  let es = await live(b, hub);
  const fail = async (upFor: number) => {
    b.clock.advance(upFor);
    es.fail();
    const s = await until(hub, (s) => s.status === 'reconnecting');
    const delay = s.retryAt! - b.clock.now;
    b.clock.advance(delay);
    es = await b.eventSources.next();
    es.open();
    return delay;
  };
  assert.equal(await fail(100), 500);
  assert.equal(await fail(4999), 1000);
  assert.equal(await fail(0), 2000);
  assert.equal(await fail(5000), 500);
});

test('retryNow and coming back online end the wait at once', async (t) => {
  const { b, hub } = solo(t);
  let es = await live(b, hub);
  for (let i = 0; i < 4; i++) {
    es.fail();
    await until(hub, (s) => s.status === 'reconnecting');
    b.clock.advance(hub.state.retryAt! - b.clock.now);
    es = await b.eventSources.next();
  }
  es.fail();
  let s = await until(hub, (s) => s.status === 'reconnecting');
  assert.equal(s.retryAt! - b.clock.now, 8000);
  hub.retryNow();
  es = await b.eventSources.next();
  assert.deepEqual(b.clock.timers, [], 'the wait was cut short, not left running');

  b.online = false;
  es.fail();
  s = await until(hub, (s) => s.status === 'offline');
  assert.equal(s.retryAt! - b.clock.now, 15000, 'retryNow does not start the backoff over');
  b.online = true;
  b.fire('online');
  es = await b.eventSources.next();
  es.fail();
  s = await until(hub, (s) => s.status === 'reconnecting');
  assert.equal(s.retryAt! - b.clock.now, 500, 'back online starts the backoff over');
});

test('event: reset reloads the snapshot; the events that come meanwhile wait for it', async (t) => {
  const { b, hub } = solo(t);
  const log: string[] = [];
  hub.on('*', (event, meta) => log.push(`event ${meta.id} ${event.jobId}`));
  hub.on('reset', (r) => log.push(`reset ${r.reason} ${r.lastEventId}`));
  hub.on('snapshot', (s) => log.push(`snapshot ${s.lastEventId} ${s.jobs.length}`));
  const es = await live(b, hub);
  es.send('job', jobEvent('j-1'), '11');

  es.send('reset', { reason: 'expired' }, '20');
  assert.equal(hub.lastEventId, '20');
  const f = await b.fetches.next();
  es.send('job', jobEvent('j-2'), '21');
  es.send('job', jobEvent('j-3'), '22');
  assert.deepEqual(log, ['snapshot 10 0', 'event 11 j-1', 'reset expired 20'], 'events wait for the snapshot');
  const snapshot = next(hub, 'snapshot');
  f.snapshot(21, [{ eventId: 21, event: jobEvent('j-2') }]);
  await snapshot;
  assert.deepEqual(log, ['snapshot 10 0', 'event 11 j-1', 'reset expired 20', 'snapshot 21 1', 'event 22 j-3']);
  assert.equal(hub.lastEventId, '22');
  assert.equal(b.eventSources.all.length, 1, 'the stream goes on: only the snapshot is reloaded');
});

test('a reset to an older id (a hub restarted without its history) goes on from there', async (t) => {
  const { b, hub } = solo(t);
  const got = record(hub);
  const es = await live(b, hub, 100);
  es.send('reset', { reason: 'ahead' }, '5');
  assert.equal(hub.lastEventId, '5');
  const snapshot = next(hub, 'snapshot');
  (await b.fetches.next()).snapshot(5);
  await snapshot;
  es.send('job', jobEvent('j-6'), '6');
  assert.deepEqual(got, [['6', 'j-6', 'queued']]);
});

test('a failing snapshot is retried with the backoff, and the state says why', async (t) => {
  const { b, hub } = solo(t);
  (await b.fetches.next()).respond(401, { error: 'invalid session token: expired' });
  let s = await until(hub, (s) => s.status === 'reconnecting');
  assert.equal(s.error, 'snapshot: HTTP 401: invalid session token: expired');
  assert.equal(s.retryAt! - b.clock.now, 500);
  b.clock.advance(500);
  (await b.fetches.next()).respond(502, '<html>bad gateway</html>');
  s = await until(hub, (s) => s.error === 'snapshot: HTTP 502');
  assert.equal(s.retryAt! - b.clock.now, 1000);
  b.clock.advance(1000);
  (await b.fetches.next()).fail();
  s = await until(hub, (s) => s.error === 'fetch failed');
  assert.equal(s.retryAt! - b.clock.now, 2000);
  assert.equal(b.eventSources.all.length, 0, 'no stream before a snapshot');
  b.clock.advance(2000);
  (await b.fetches.next()).snapshot(3);
  const es = await b.eventSources.next();
  assert.equal(es.lastEventId, '3');
  assert.equal(hub.state.error, null);
  assert.equal(hub.state.attempt, 0, 'a snapshot that loads starts the backoff over');
});

test('beforeConnect is awaited before each snapshot load and each stream', async (t) => {
  const calls = new Queue<() => void>();
  const { b, hub } = solo(t, { beforeConnect: () => new Promise<void>((resolve) => calls.push(resolve)) });
  const beforeSnapshot = await calls.next();
  assert.equal(b.fetches.all.length, 0, 'the snapshot waits for beforeConnect');
  beforeSnapshot();
  (await b.fetches.next()).snapshot(1);
  const beforeStream = await calls.next();
  assert.equal(b.eventSources.all.length, 0, 'the stream waits for beforeConnect');
  beforeStream();
  const es = await b.eventSources.next();
  es.fail();
  await until(hub, (s) => s.status === 'reconnecting');
  b.clock.advance(hub.state.retryAt! - b.clock.now);
  const beforeAgain = await calls.next();
  assert.equal(b.eventSources.all.length, 1, 'the next stream waits for beforeConnect too');
  beforeAgain();
  await b.eventSources.next();
  assert.equal(calls.all.length, 3);
});

test('withCredentials, for a hub on another origin', async (t) => {
  const { b } = solo(t, { url: 'https://hub.example/api/events', snapshotUrl: 'https://hub.example/api/jobs', withCredentials: true });
  const f = await b.fetches.next();
  assert.equal(f.url, 'https://hub.example/api/jobs');
  assert.equal(f.init?.credentials, 'include');
  f.snapshot(1);
  const es = await b.eventSources.next();
  assert.equal(es.withCredentials, true);
  assert.equal(es.url.origin, 'https://hub.example');
});

test('ids beyond 2^53 are compared exactly', async (t) => {
  const { b, hub } = solo(t);
  const got = record(hub);
  const es = await live(b, hub, 1);
  es.send('job', jobEvent('j-1'), '18446744073709551614');
  es.send('job', jobEvent('j-1'), '18446744073709551614');
  es.send('job', jobEvent('j-2'), '18446744073709551615');
  assert.deepEqual(got.map(([id]) => id), ['18446744073709551614', '18446744073709551615']);
  assert.equal(hub.lastEventId, '18446744073709551615');
  es.send('job', jobEvent('j-3'), '184467440737095516150'); // 21 digits: not an id
  assert.equal(got.length, 2);
});

test('snapshot ids keep their digits where JSON.parse gives the source text', async (t) => {
  let sourceText = false;
  JSON.parse('1', function (_key: string, value: unknown, ctx?: { source?: string }) {
    sourceText = ctx?.source === '1';
    return value;
  } as (key: string, value: unknown) => unknown);
  const { b, hub } = solo(t);
  const snapshot = next(hub, 'snapshot');
  (await b.fetches.next()).respond(200, '{"lastEventId":9007199254740993,"jobs":[{"eventId":9007199254740993,"event":{"type":"growth","jobId":"j","status":"queued","timestamp":"2026-11-27T10:00:00.000Z","data":{"assetId":"a1","eventId":5}}}]}');
  const [snap] = await snapshot;
  const want = sourceText ? '9007199254740993' : '9007199254740992'; // without it, a number's nearest
  assert.equal(snap.lastEventId, want);
  assert.equal(snap.jobs[0]!.eventId, want);
  assert.equal(snap.jobs[0]!.event.data['eventId'], 5, 'a field of the same name inside data stays a number');
  assert.equal(hub.lastEventId, want);
});

test('conflate asks the hub to conflate the stream, not the snapshot', async (t) => {
  const { b } = solo(t, { conflate: true, filters: { types: 'growth' } });
  const f = await b.fetches.next();
  assert.equal(f.url, '/api/jobs?types=growth');
  f.snapshot(1);
  const es = await b.eventSources.next();
  assert.equal(es.url.search, '?types=growth&conflate=1&lastEventId=1');
});

test('filters: arrays or comma-separated strings, sorted into one stream name; unknown keys refused', async (t) => {
  const { b } = solo(t, { filters: { scenarios: ' s2 , ,s1', assets: [], jobs: ['j-1'] } });
  const f = await b.fetches.next();
  assert.equal(f.url, '/api/jobs?jobs=j-1&scenarios=s2%2Cs1');
  assert.throws(() => connect({ filters: { colour: ['red'] } as never }), /unknown filter "colour"/);
});

test('on: unknown names refused; the function it returns removes the callback; a failing callback stops no other', async (t) => {
  const { b, hub } = solo(t);
  const untyped = hub.on.bind(hub) as (name: string, fn: unknown) => void; // as plain JavaScript calls it
  assert.throws(() => untyped('running', () => {}), /unknown event name "running"/);
  assert.throws(() => untyped('*', 'no'), /needs a function/);
  const a: string[] = [];
  const c: string[] = [];
  hub.on('*', () => { throw new Error('broken callback'); });
  const off = hub.on('*', (_e, meta) => a.push(meta.id));
  hub.on('*', (_e, meta) => c.push(meta.id));
  const es = await live(b, hub);
  es.send('job', jobEvent('j-1'), '11');
  off();
  es.send('job', jobEvent('j-2'), '12');
  assert.deepEqual(a, ['11']);
  assert.deepEqual(c, ['11', '12']);
  assert.equal(b.errors.length, 2);
  assert.match(String(b.errors[0]), /broken callback/);
});

test('close stops for good: the stream, the retries, the listeners', async (t) => {
  const { b, hub } = solo(t);
  const es = await live(b, hub);
  assert.equal(b.listeners('online'), 1);
  const states: string[] = [];
  hub.on('state', (s) => states.push(s.status));
  hub.close();
  hub.close();
  assert.ok(es.closed);
  assert.deepEqual(states, ['closed']);
  assert.equal(hub.state.status, 'closed');
  assert.equal(hub.state.retryAt, null);
  assert.equal(b.listeners('online'), 0);
  await new Promise<void>((resolve) => setImmediate(resolve));
  b.clock.advance(60_000);
  await new Promise<void>((resolve) => setImmediate(resolve));
  assert.equal(b.eventSources.all.length, 1);
  assert.equal(b.fetches.all.length, 1);
  assert.deepEqual(b.clock.timers, []);
});
