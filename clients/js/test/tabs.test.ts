// Tabs of one browser sharing one stream: the election with Web Locks, the
// events over a BroadcastChannel, the handover when the leader's tab
// closes. Each client is a tab; they share the fake browser's locks and
// channels, as tabs of one origin do.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import type { Client } from '@finexbot/eventhub-client';

import { Browser, jobEvent, next, record, until, type FakeEventSource } from './fakes.js';

// twoTabs opens two tabs on alice's stream, loads their snapshots at
// lastEventId, and waits until the first leads, the second follows, and
// what they told each other has arrived: from then on, a follower learns
// of the leader's stream only as it changes.
async function twoTabs(b: Browser, lastEventId = 10): Promise<{ leader: Client; follower: Client; es: FakeEventSource }> {
  const leader = b.connect({ key: 'alice' });
  const follower = b.connect({ key: 'alice' });
  (await b.fetches.next()).snapshot(lastEventId); // each tab loads its own snapshot
  (await b.fetches.next()).snapshot(lastEventId);
  await until(leader, (s) => s.role === 'leader');
  const es = await b.eventSources.next();
  await b.delivered();
  assert.equal(follower.state.role, 'follower');
  assert.equal(follower.state.status, 'connecting');
  return { leader, follower, es };
}

test('tabs with the same stream share one EventSource; the leader hands every tab each event', async (t) => {
  const b = new Browser().start(t);
  const { leader, follower, es } = await twoTabs(b);
  const inLeader = record(leader);
  const inFollower = record(follower);

  es.open();
  await until(follower, (s) => s.status === 'live'); // the leader's state, over the channel
  assert.equal(leader.state.status, 'live');

  const failed = next(follower, 'failed');
  es.send('job', jobEvent('j-1', 'completed'), '11');
  es.send('job', jobEvent('j-2', 'failed'), '12');
  const [event, meta] = await failed;
  assert.equal(event.jobId, 'j-2');
  assert.equal(meta.id, '12');
  assert.deepEqual(inLeader, [['11', 'j-1', 'completed'], ['12', 'j-2', 'failed']]);
  assert.deepEqual(inFollower, inLeader);
  assert.equal(follower.lastEventId, '12');
  assert.equal(b.eventSources.all.length, 1, 'one stream for both tabs');
});

test('a different key, other filters or conflation make a stream of their own', async (t) => {
  const b = new Browser().start(t);
  const alice = b.connect({ key: 'alice' });
  const bob = b.connect({ key: 'bob' });
  const aliceFailed = b.connect({ key: 'alice', filters: { statuses: ['failed'] } });
  const aliceConflated = b.connect({ key: 'alice', conflate: true });
  for (let i = 0; i < 4; i++) (await b.fetches.next()).snapshot(1);
  for (const tab of [alice, bob, aliceFailed, aliceConflated]) await until(tab, (s) => s.role === 'leader');
  const streams = [];
  for (let i = 0; i < 4; i++) streams.push((await b.eventSources.next()).url.search);
  assert.deepEqual(streams.sort(), ['?conflate=1&lastEventId=1', '?lastEventId=1', '?lastEventId=1', '?statuses=failed&lastEventId=1']);
});

test('when the leader closes, a follower takes the lock and resumes from the last id it saw', async (t) => {
  const b = new Browser().start(t);
  const { leader, follower, es } = await twoTabs(b);
  const inFollower = record(follower);
  es.open();
  const seen = next(follower, 'queued');
  es.send('job', jobEvent('j-1', 'started'), '11');
  es.send('job', jobEvent('j-2', 'queued'), '12');
  await seen;

  leader.close();
  assert.ok(es.closed);
  await until(follower, (s) => s.role === 'leader');
  const taken = await b.eventSources.next();
  assert.equal(taken.lastEventId, '12');
  taken.open();
  await until(follower, (s) => s.status === 'live');
  taken.send('job', jobEvent('j-2', 'queued'), '12'); // replayed: dropped
  taken.send('job', jobEvent('j-3', 'queued'), '13');
  assert.deepEqual(inFollower.map(([id]) => id), ['11', '12', '13']);
  assert.equal(leader.state.status, 'closed');
});

test('a tab that joins hears the leader\'s state at once', async (t) => {
  const b = new Browser().start(t);
  const { leader, es } = await twoTabs(b);
  es.open();
  await until(leader, (s) => s.status === 'live');
  await b.delivered();
  const late = b.connect({ key: 'alice' });
  assert.equal(late.state.role, 'follower');
  (await b.fetches.next()).snapshot(10);
  const s = await until(late, (s) => s.status === 'live');
  assert.equal(s.role, 'follower');
  assert.equal(b.eventSources.all.length, 1);
});

test('retryNow in a follower ends the leader\'s wait and starts its backoff over', async (t) => {
  const b = new Browser().start(t);
  const { leader, follower, es } = await twoTabs(b);
  es.fail();
  let s = await until(follower, (s) => s.status === 'reconnecting');
  assert.equal(s.retryAt! - b.clock.now, 500, "the follower shows the leader's wait");
  b.clock.advance(500);
  (await b.eventSources.next()).fail();
  s = await until(leader, (s) => s.status === 'reconnecting' && s.attempt === 2);
  assert.equal(s.retryAt! - b.clock.now, 1000);

  follower.retryNow();
  const again = await b.eventSources.next();
  assert.deepEqual(b.clock.timers, [], "the leader's wait was cut short");
  again.fail();
  s = await until(leader, (s) => s.status === 'reconnecting');
  assert.equal(s.retryAt! - b.clock.now, 500, 'the backoff started over');
});

test('event: reset reaches every tab, and each reloads its snapshot', async (t) => {
  const b = new Browser().start(t);
  const { leader, follower, es } = await twoTabs(b);
  es.open();
  const resets = [next(leader, 'reset'), next(follower, 'reset')];
  es.send('reset', { reason: 'expired' }, '40');
  for (const r of await Promise.all(resets)) assert.deepEqual(r[0], { reason: 'expired', lastEventId: '40' });
  const snapshots = [next(leader, 'snapshot'), next(follower, 'snapshot')];
  (await b.fetches.next()).snapshot(41);
  (await b.fetches.next()).snapshot(41);
  await Promise.all(snapshots);
  const inFollower = record(follower);
  const got = next(follower, '*');
  es.send('job', jobEvent('j-1'), '41'); // in the snapshots: dropped
  es.send('job', jobEvent('j-2'), '42');
  await got;
  assert.deepEqual(inFollower.map(([id]) => id), ['42']);
});

test('without Web Locks, or with shared: false, each tab holds its own stream', async (t) => {
  for (const [name, setup] of [
    ['no Web Locks', (b: Browser) => { b.locks = null; return { key: 'alice' }; }],
    ['shared: false', () => ({ key: 'alice', shared: false })],
  ] as const) {
    await t.test(name, async (t) => {
      const b = new Browser();
      const options = setup(b);
      b.start(t);
      const tabs = [b.connect(options), b.connect(options)];
      (await b.fetches.next()).snapshot(1);
      (await b.fetches.next()).snapshot(1);
      await b.eventSources.next();
      await b.eventSources.next();
      for (const tab of tabs) assert.equal(tab.state.role, 'solo');
      if (b.locks) assert.equal(b.locks.held('eventhub /api/events alice'), false);
    });
  }
});
