// A program that uses the package as an application would, through its
// published entry points. `npm run typecheck` compiles it in strict mode
// and emits nothing: it must compile, and each @ts-expect-error must meet
// an error, so the types are as narrow as they claim to be.
import {
  connect,
  type ClientState,
  type GrowthResult,
  type JobEvent,
  type JobEventOf,
  type JobStatus,
  type JobType,
  type MatrixResult,
  type ProbabilityResult,
  type Snapshot,
} from '@finexbot/eventhub-client';
import { useJobs, type UseJobsResult } from '@finexbot/eventhub-client/react';

const hub = connect({
  filters: { types: ['matrix', 'growth'], statuses: 'completed,failed', assets: ['a1'] },
  key: 'alice',
  conflate: true,
  backoff: { initialMs: 500 },
  beforeConnect: async () => {},
});

// @ts-expect-error: not a job type
connect({ filters: { types: ['forecast'] } });
// @ts-expect-error: not a filter
connect({ filters: { colour: 'red' } });
// @ts-expect-error: not an option
connect({ retries: 3 });

const kinds: Record<JobType, string> = { matrix: 'matrix (asset × scenario)', growth: 'growth (asset)', probability: 'probability (scenario)' };
const order: Record<JobStatus, number> = { queued: 0, started: 1, completed: 2, failed: 3 };

hub.on('completed', (event, meta) => {
  const status: 'completed' = event.status;
  const id: string = meta.id;
  const ms: number | undefined = event.data.durationMs;
  switch (event.type) {
    case 'matrix': {
      const result: MatrixResult | undefined = event.data.result;
      const grid: number[][] | undefined = result?.grid;
      const scope: [string, string] = [event.data.assetId, event.data.scenarioId];
      return [status, id, ms, grid, scope];
    }
    case 'growth': {
      const result: GrowthResult | undefined = event.data.result;
      // @ts-expect-error: a growth result has no grid
      const grid = event.data.result?.grid;
      const asset: string = event.data.assetId;
      // @ts-expect-error: a growth event need not carry a scenario
      const scenario: string = event.data.scenarioId;
      return [result?.final, result?.values.at(-1), grid, asset, scenario];
    }
    case 'probability': {
      const result: ProbabilityResult | undefined = event.data.result;
      const interval: [number, number] | undefined = result?.ci95;
      // @ts-expect-error: a probability event need not carry an asset
      const asset: string = event.data.assetId;
      return [interval, asset];
    }
    default: {
      const unreachable: never = event;
      return unreachable;
    }
  }
});

hub.on('failed', (event: JobEventOf<'failed'>) => {
  const why: string | undefined = event.data.error;
  // @ts-expect-error: a failed event's status is failed
  const status: 'completed' = event.status;
  return [why, status];
});

hub.on('*', (event) => describe(event));
hub.on('snapshot', (snapshot: Snapshot) => snapshot.jobs.map((job) => `${job.eventId}: ${job.event.jobId}`));
hub.on('reset', ({ reason, lastEventId }) => `${reason} at ${lastEventId}`);
const off = hub.on('state', (state: ClientState) => state.status === 'reconnecting' && state.retryAt !== null && state.retryAt - Date.now());
off();
// @ts-expect-error: not a name on() accepts
hub.on('running', () => {});
// @ts-expect-error: a status's callback gets events, not snapshots
hub.on('failed', (snapshot: Snapshot) => snapshot.lastEventId);

const lastId: string | null = hub.lastEventId;
const role: 'leader' | 'follower' | 'solo' = hub.state.role;
hub.retryNow();
hub.close();

function describe(event: JobEvent): string {
  const data = event.data;
  switch (event.status) {
    case 'queued':
      return `${kinds[event.type]} ${event.jobId} queued`;
    case 'started':
      return `started, attempt ${data.attempt ?? 1}`;
    case 'completed':
      return `done in ${data.durationMs ?? '?'} ms`;
    case 'failed':
      return `failed: ${data.error ?? 'no reason'} (${order[event.status]})`;
    default: {
      const unreachable: never = event.status;
      return unreachable;
    }
  }
}

// A component's body, without JSX.
function GrowthJobs(user: string): string[] {
  const { jobs, state, lastEventId }: UseJobsResult = useJobs({ types: ['growth'] }, { key: user, maxJobs: 50, beforeConnect: () => {} });
  // @ts-expect-error: jobs are read-only
  jobs.push(jobs[0]!);
  return [state.status, lastEventId ?? 'none', ...jobs.map(({ eventId, event }) => `${eventId} ${event.type === 'growth' ? event.data.assetId : ''}`)];
}
// @ts-expect-error: not a job type
useJobs({ types: ['forecast'] });

export { GrowthJobs, lastId, role };
