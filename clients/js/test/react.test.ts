// useJobs in a component rendered by react-test-renderer, against the fake
// browser: the snapshot, then each event, the state, the cap on jobs, and
// the client's life following the component's and its filters.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { act, createElement, StrictMode, type ReactElement } from 'react';
import TestRenderer from 'react-test-renderer';

import type { Filters } from '@finexbot/eventhub-client';
import { useJobs, type UseJobsOptions, type UseJobsResult } from '@finexbot/eventhub-client/react';

import { Browser, jobEvent } from './fakes.js';

// React warns when an update happens outside act() unless told it runs
// in a test.
(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;

interface ProbeProps {
  filters?: Filters;
  options?: UseJobsOptions;
  seen: UseJobsResult[];
}

// render mounts element in a test renderer, unmounted at the end of the
// test. react-test-renderer says on each create that it is deprecated; it
// is still the React renderer that needs no DOM, so that line is left out.
async function render(b: Browser, element: ReactElement): Promise<TestRenderer.ReactTestRenderer> {
  const consoleError = console.error;
  console.error = (...args: unknown[]) => {
    if (!String(args[0]).startsWith('react-test-renderer is deprecated')) consoleError(...args);
  };
  let renderer!: TestRenderer.ReactTestRenderer;
  try {
    await act(async () => { renderer = TestRenderer.create(element); });
  } finally {
    console.error = consoleError;
  }
  b.defer(() => act(() => renderer.unmount()));
  return renderer;
}

// Probe renders nothing and records what useJobs returned at each render.
function Probe({ filters, options, seen }: ProbeProps): null {
  seen.push(useJobs(filters, options));
  return null;
}

function ids(r: UseJobsResult): string[] {
  return r.jobs.map((j) => `${j.eventId} ${j.event.jobId} ${j.event.status}`);
}

test('useJobs: the snapshot, then each event on top, capped, with the state and the last id', async (t) => {
  const b = new Browser().start(t);
  const seen: UseJobsResult[] = [];
  const last = () => seen[seen.length - 1]!;
  const props: ProbeProps = { filters: { types: ['growth'] }, options: { key: 'alice', maxJobs: 3 }, seen };
  const renderer = await render(b, createElement(StrictMode, null, createElement(Probe, props)));
  assert.equal(last().state.status, 'connecting');
  assert.deepEqual(last().jobs, []);
  assert.equal(last().lastEventId, null);

  // StrictMode mounts, unmounts and mounts again: the first client is
  // closed before it loads anything, and one stream remains.
  const f = await b.fetches.next();
  assert.equal(f.url, '/api/jobs?types=growth');
  let es = await act(async () => {
    f.snapshot(10, [
      { eventId: 10, event: jobEvent('j-1', 'completed') },
      { eventId: 8, event: jobEvent('j-2', 'started') },
      { eventId: 7, event: jobEvent('j-5', 'queued') },
      { eventId: 6, event: jobEvent('j-6', 'queued') },
    ]);
    return b.eventSources.next();
  });
  assert.deepEqual(ids(last()), ['10 j-1 completed', '8 j-2 started', '7 j-5 queued'], 'the newest maxJobs of the snapshot');
  assert.equal(last().lastEventId, '10');
  assert.equal(es.lastEventId, '10');

  await act(async () => es.open());
  assert.equal(last().state.status, 'live');
  assert.equal(last().state.role, 'leader');

  await act(async () => {
    es.send('job', jobEvent('j-2', 'completed'), '11');
    es.send('job', jobEvent('j-3', 'queued'), '12');
    es.send('job', jobEvent('j-4', 'queued'), '13');
  });
  assert.deepEqual(ids(last()), ['13 j-4 queued', '12 j-3 queued', '11 j-2 completed'], 'newest first, j-1 dropped by maxJobs');
  assert.equal(last().lastEventId, '13');

  // Equal filters and options on a new render keep the client.
  const renders = seen.length;
  await act(async () => {
    renderer.update(createElement(StrictMode, null, createElement(Probe, { ...props, filters: { types: ['growth'] }, options: { key: 'alice', maxJobs: 3, beforeConnect: () => {} } })));
  });
  assert.ok(seen.length > renders);
  assert.equal(es.closed, false);
  assert.equal(b.fetches.all.length, 1);
  assert.equal(b.eventSources.all.length, 1);

  // Other filters: a new client, from a new snapshot.
  await act(async () => {
    renderer.update(createElement(StrictMode, null, createElement(Probe, { ...props, filters: { types: ['matrix'] } })));
  });
  assert.ok(es.closed, 'the old stream is closed');
  assert.deepEqual(last().jobs, []);
  const f2 = await b.fetches.next();
  assert.equal(f2.url, '/api/jobs?types=matrix');
  es = await act(async () => {
    f2.snapshot(13);
    return b.eventSources.next();
  });
  assert.equal(es.url.searchParams.get('types'), 'matrix');

  await act(async () => renderer.unmount());
  assert.ok(es.closed, 'unmounting closes the client');
  const closedAt = seen.length;
  b.clock.advance(60_000);
  assert.equal(seen.length, closedAt, 'nothing renders after unmount');
});

test('useJobs: beforeConnect is the one of the latest render', async (t) => {
  const b = new Browser().start(t);
  b.locks = null;
  const seen: UseJobsResult[] = [];
  const calls: string[] = [];
  const element = (name: string) => createElement(Probe, { options: { beforeConnect: () => { calls.push(name); } }, seen });
  const renderer = await render(b, element('first'));
  await act(async () => { renderer.update(element('second')); });
  const f = await b.fetches.next();
  await act(async () => {
    f.snapshot(1);
    await b.eventSources.next();
  });
  assert.deepEqual(calls, ['first', 'second']);
});
