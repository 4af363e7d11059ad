/**
 * useJobs: eventhub's job events in a React component.
 *
 *   import { useJobs } from '@finexbot/eventhub-client/react';
 *
 *   function Jobs({ user }) {
 *     const { jobs, state, lastEventId } = useJobs({ types: ['growth'] }, { key: user });
 *     return jobs.map(({ event }) => <Row key={event.jobId} event={event} />);
 *   }
 *
 * Each component that calls it has a client of its own ({@link connect}),
 * opened when it mounts and closed when it unmounts or when the filters or
 * the options that make its stream change; components and tabs with the
 * same stream share one connection to the hub.
 *
 * @packageDocumentation
 */

import { useEffect, useRef, useState } from 'react';

import { connect, type ClientState, type ConnectOptions, type Filters, type SnapshotJob } from './index.js';

/** The options of {@link useJobs}: those of {@link connect}, and how many jobs to keep. */
export interface UseJobsOptions extends Omit<ConnectOptions, 'filters'> {
  /** Jobs kept, most recently updated first; older ones are dropped. Default 300. */
  maxJobs?: number;
}

/** What {@link useJobs} returns; a new object whenever something in it changes. */
export interface UseJobsResult {
  /**
   * The latest event of each job, most recently updated first: the
   * snapshot's jobs, then each job's newer events as they come.
   */
  jobs: readonly SnapshotJob[];
  /** The client's state: connecting, live, reconnecting, offline. */
  state: ClientState;
  /** The id of the newest event, or of the snapshot, or null before the first snapshot. */
  lastEventId: string | null;
}

const DEFAULT_MAX_JOBS = 300;

// What useJobs returns before its client starts (and on a server).
const INITIAL: UseJobsResult = Object.freeze({
  jobs: Object.freeze([]),
  state: Object.freeze({ status: 'connecting', role: 'solo', lastEventId: null, retryAt: null, attempt: 0, error: null }),
  lastEventId: null,
});

/**
 * useJobs keeps a component up to date with the jobs the hub sends: it
 * loads the snapshot, then applies each event of the stream.
 *
 * @param filters - what the stream and the snapshot are narrowed to.
 * @param options - those of {@link connect}, and maxJobs. The client is
 *   opened again only when filters or options change in value (they are
 *   compared as JSON); beforeConnect may be a new function on each render.
 */
export function useJobs(filters?: Filters, options?: UseJobsOptions): UseJobsResult {
  const [result, setResult] = useState<UseJobsResult>(INITIAL);
  const beforeConnect = useRef(options?.beforeConnect);
  useEffect(() => { beforeConnect.current = options?.beforeConnect; });

  // What makes the stream, as one value for the effect to depend on: the
  // same filters and options on the next render keep the same client.
  const { beforeConnect: _, maxJobs = DEFAULT_MAX_JOBS, ...rest } = options ?? {};
  const stream = JSON.stringify({ filters: filters ?? {}, options: rest });

  useEffect(() => {
    const { filters, options } = JSON.parse(stream) as { filters: Filters; options: ConnectOptions };
    const client = connect({ ...options, filters, beforeConnect: () => beforeConnect.current?.() });
    let jobs: readonly SnapshotJob[] = [];
    const publish = () => setResult({ jobs, state: client.state, lastEventId: client.lastEventId });
    const off = [
      client.on('snapshot', (snap) => {
        jobs = snap.jobs.slice(0, maxJobs);
        publish();
      }),
      client.on('*', (event, meta) => {
        const rest = jobs.filter((job) => job.event.jobId !== event.jobId);
        jobs = [{ eventId: meta.id, event }, ...rest.slice(0, maxJobs - 1)];
        publish();
      }),
      client.on('state', publish),
    ];
    publish();
    return () => {
      for (const f of off) f();
      client.close();
    };
  }, [stream, maxJobs]);

  return result;
}
