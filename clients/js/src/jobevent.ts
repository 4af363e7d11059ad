// Code generated from schema/jobevent.schema.json by scripts/schema-to-ts.mjs; DO NOT EDIT.
// The schema is written by eventhub (`eventhub schema`) from its Go types;
// `make client` at the repository root writes both again.

/** One step of one job, as eventhub sends it: the data of an SSE `event: job` frame, and each job's `event` in GET /api/jobs. Its event id is not part of it: the frame's `id:` field, or the job's `eventId` in GET /api/jobs, carries it (a uint64, in decimal). The hub checks the envelope and each kind's scope; the other fields of data are what the hub's own workers write, and other publishers should write them the same way. */
export type JobEvent = MatrixEvent | GrowthEvent | ProbabilityEvent;

/** The kind of a job: what it computes, and which scope its events carry. */
export type JobType = 'matrix' | 'growth' | 'probability';

/** A step in a job's life, in the order a job goes through them: queued, started, then completed or failed. */
export type JobStatus = 'queued' | 'started' | 'completed' | 'failed';

/**
 * A job, asset or scenario id: 1 to 128 characters of [A-Za-z0-9._:-], so it needs no escaping in a filter, a URL or JSON.
 *
 * Pattern: `^[A-Za-z0-9._:-]{1,128}$`.
 */
export type Id = string;

/**
 * An RFC 3339 time in UTC with milliseconds: 2026-11-27T10:00:00.000Z.
 *
 * Format: date-time. Pattern: `^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$`.
 */
export type Timestamp = string;

/** An event of a matrix job (a value grid for an asset under a scenario: rows horizon steps by cols stress levels). */
export interface MatrixEvent {
  /** The kind of job. */
  type: 'matrix';
  /** The job's id. */
  jobId: Id;
  /** The step of the job this event reports. */
  status: JobStatus;
  /** When the step happened, in UTC with milliseconds. */
  timestamp: Timestamp;
  /** The event's scope, and what the step adds. */
  data: MatrixData;
}

/** The data of a matrix job's events: its scope (assetId and scenarioId, required), then what each step adds. Publishers may add fields of their own. */
export interface MatrixData {
  /** The asset the job is about: part of the event's scope. */
  assetId: Id;
  /** The scenario the job is about: part of the event's scope. */
  scenarioId: Id;
  /**
   * On completed and failed: how long the job ran, in milliseconds.
   *
   * An integer.
   */
  durationMs?: number;
  /** On completed: what the job computed. */
  result?: MatrixResult;
  /** On failed: why the job failed. */
  error?: string;
  /**
   * On started, when the job runs again because the node that had it went away: which attempt this is (2 for the second).
   *
   * An integer. At least 0.
   */
  attempt?: number;
  /**
   * On started only, published again as the job runs: how far it got, from 0 to 1.
   *
   * At least 0. At most 1.
   */
  progress?: number;
  /** On started, with progress: what the job is doing, for people; at most 200 bytes in UTF-8. */
  message?: string;
  /** Fields of the publisher's own. */
  [field: string]: unknown;
}

/** What a matrix job computed (a value grid for an asset under a scenario: rows horizon steps by cols stress levels): the data.result of its completed event. */
export interface MatrixResult {
  /**
   * Rows of the grid: horizon steps.
   *
   * An integer.
   */
  rows: number;
  /**
   * Columns of the grid: stress levels.
   *
   * An integer.
   */
  cols: number;
  /** The smallest value of the grid. */
  min: number;
  /** The largest value of the grid. */
  max: number;
  /** The mean value of the grid. */
  mean: number;
  /** The whole grid, rows of cols values, when it has at most 400 cells; larger grids are summarised only. */
  grid?: number[][];
}

/** An event of a growth job (the compound growth of an asset's value, year by year). */
export interface GrowthEvent {
  /** The kind of job. */
  type: 'growth';
  /** The job's id. */
  jobId: Id;
  /** The step of the job this event reports. */
  status: JobStatus;
  /** When the step happened, in UTC with milliseconds. */
  timestamp: Timestamp;
  /** The event's scope, and what the step adds. */
  data: GrowthData;
}

/** The data of a growth job's events: its scope (assetId, required), then what each step adds. Publishers may add fields of their own. */
export interface GrowthData {
  /** The asset the job is about: part of the event's scope. */
  assetId: Id;
  /** The scenario the job is about: part of the event's scope. */
  scenarioId?: Id;
  /**
   * On completed and failed: how long the job ran, in milliseconds.
   *
   * An integer.
   */
  durationMs?: number;
  /** On completed: what the job computed. */
  result?: GrowthResult;
  /** On failed: why the job failed. */
  error?: string;
  /**
   * On started, when the job runs again because the node that had it went away: which attempt this is (2 for the second).
   *
   * An integer. At least 0.
   */
  attempt?: number;
  /**
   * On started only, published again as the job runs: how far it got, from 0 to 1.
   *
   * At least 0. At most 1.
   */
  progress?: number;
  /** On started, with progress: what the job is doing, for people; at most 200 bytes in UTF-8. */
  message?: string;
  /** Fields of the publisher's own. */
  [field: string]: unknown;
}

/** What a growth job computed (the compound growth of an asset's value, year by year): the data.result of its completed event. */
export interface GrowthResult {
  /** The value at the start (index 0) and at the end of each year, rounded to cents. */
  values: number[];
  /** The value at the end of the last year. */
  final: number;
  /** The principal plus the contributions. */
  contributed: number;
  /** final minus contributed. */
  gain: number;
}

/** An event of a probability job (the probability, by Monte Carlo, that a scenario's value reaches a target). */
export interface ProbabilityEvent {
  /** The kind of job. */
  type: 'probability';
  /** The job's id. */
  jobId: Id;
  /** The step of the job this event reports. */
  status: JobStatus;
  /** When the step happened, in UTC with milliseconds. */
  timestamp: Timestamp;
  /** The event's scope, and what the step adds. */
  data: ProbabilityData;
}

/** The data of a probability job's events: its scope (scenarioId, required), then what each step adds. Publishers may add fields of their own. */
export interface ProbabilityData {
  /** The asset the job is about: part of the event's scope. */
  assetId?: Id;
  /** The scenario the job is about: part of the event's scope. */
  scenarioId: Id;
  /**
   * On completed and failed: how long the job ran, in milliseconds.
   *
   * An integer.
   */
  durationMs?: number;
  /** On completed: what the job computed. */
  result?: ProbabilityResult;
  /** On failed: why the job failed. */
  error?: string;
  /**
   * On started, when the job runs again because the node that had it went away: which attempt this is (2 for the second).
   *
   * An integer. At least 0.
   */
  attempt?: number;
  /**
   * On started only, published again as the job runs: how far it got, from 0 to 1.
   *
   * At least 0. At most 1.
   */
  progress?: number;
  /** On started, with progress: what the job is doing, for people; at most 200 bytes in UTF-8. */
  message?: string;
  /** Fields of the publisher's own. */
  [field: string]: unknown;
}

/** What a probability job computed (the probability, by Monte Carlo, that a scenario's value reaches a target): the data.result of its completed event. */
export interface ProbabilityResult {
  /** The Monte Carlo estimate of the probability that the value after years is at least target. */
  probability: number;
  /** The estimate's 95% Wilson score interval: [low, high]. */
  ci95: [number, number];
  /**
   * Trials that reached the target.
   *
   * An integer.
   */
  hits: number;
  /**
   * Trials run.
   *
   * An integer.
   */
  trials: number;
  /** The closed-form probability, for comparison. */
  analytic: number;
}
