// Fakes of the browser APIs the client uses, for its tests in Node:
// EventSource, fetch, BroadcastChannel, navigator.locks and onLine,
// location, the window's online event, reportError; and a clock (Date.now,
// setTimeout, clearTimeout) and a Math.random that the test drives. A
// Browser installs them as globals for one test, shared by every client
// (tab) the test makes, and puts the real ones back after.
//
// Nothing here sleeps: a test waits for what it expects (the next
// EventSource, fetch or callback) as a promise, and moves the clock itself.
import { connect, type Client, type ClientEventName, type ClientEvents, type ClientState, type ConnectOptions } from '@finexbot/eventhub-client';

/** Queue hands values to whoever waits for them, in order. */
export class Queue<T> {
  readonly all: T[] = [];
  #ready: T[] = [];
  #waiting: ((v: T) => void)[] = [];

  push(v: T): void {
    this.all.push(v);
    const w = this.#waiting.shift();
    if (w) w(v);
    else this.#ready.push(v);
  }

  /** next resolves with the oldest value not yet taken, as soon as there is one. */
  next(): Promise<T> {
    const v = this.#ready.shift();
    if (v !== undefined) return Promise.resolve(v);
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  /** pending is how many values wait to be taken. */
  get pending(): number { return this.#ready.length; }
}

/** FakeClock is Date.now, setTimeout and clearTimeout under the test's hand. */
export class FakeClock {
  now = Date.UTC(2026, 10, 27, 10, 0, 0);
  #timers: { id: number; at: number; fn: () => void }[] = [];
  #nextId = 1;

  setTimeout = (fn: () => void, ms = 0): number => {
    const id = this.#nextId++;
    this.#timers.push({ id, at: this.now + Math.max(0, ms), fn });
    return id;
  };

  clearTimeout = (id: number | undefined): void => {
    this.#timers = this.#timers.filter((t) => t.id !== id);
  };

  /** advance moves the clock ms on, running each timer that comes due, in order. */
  advance(ms: number): void {
    const until = this.now + ms;
    for (;;) {
      const due = this.#timers.filter((t) => t.at <= until).sort((a, b) => a.at - b.at || a.id - b.id)[0];
      if (!due) break;
      this.#timers = this.#timers.filter((t) => t !== due);
      this.now = due.at;
      due.fn();
    }
    this.now = until;
  }

  /** timers are the delays, from now, of the timers set. */
  get timers(): number[] { return this.#timers.map((t) => t.at - this.now); }
}

/** FakeEventSource is one stream the client opened; the test plays the hub. */
export class FakeEventSource {
  readonly url: URL;
  readonly withCredentials: boolean;
  closed = false;
  onopen: ((ev: Event) => void) | null = null;
  onerror: ((ev: Event) => void) | null = null;
  #listeners = new Map<string, Set<(ev: MessageEvent) => void>>();

  constructor(url: string | URL, init?: { withCredentials?: boolean }) {
    this.url = new URL(String(url));
    this.withCredentials = init?.withCredentials ?? false;
  }

  addEventListener(type: string, fn: (ev: MessageEvent) => void): void {
    let set = this.#listeners.get(type);
    if (!set) this.#listeners.set(type, (set = new Set()));
    set.add(fn);
  }

  close(): void { this.closed = true; }

  /** open: the hub answered with the stream's head. */
  open(): void {
    this.#check('open');
    this.onopen?.(new Event('open'));
  }

  /** send: a frame `id: id`, `event: event`, `data: data`. */
  send(event: string, data: unknown, id: string): void {
    this.#check('send on');
    const text = typeof data === 'string' ? data : JSON.stringify(data);
    for (const fn of this.#listeners.get(event) ?? []) fn(new MessageEvent(event, { data: text, lastEventId: id }));
  }

  /** fail: the request was refused or the stream broke. */
  fail(): void {
    this.#check('fail');
    this.onerror?.(new Event('error'));
  }

  /** lastEventId is the ?lastEventId= the stream was opened with, or null. */
  get lastEventId(): string | null { return this.url.searchParams.get('lastEventId'); }

  #check(what: string): void {
    if (this.closed) throw new Error(`test: ${what} a closed EventSource`);
  }
}

/** FetchCall is one request the client made; the test answers it. */
export interface FetchCall {
  url: string;
  init: RequestInit | undefined;
  /** respond answers with status and body (JSON unless a string). */
  respond(status: number, body: unknown): void;
  /** snapshot answers 200 with a snapshot. */
  snapshot(lastEventId: number | string, jobs?: { eventId: number; event: unknown }[]): void;
  /** fail makes fetch reject, as on a network error. */
  fail(): void;
}

/** FakeLocks is navigator.locks: exclusive locks, granted in the order asked. */
export class FakeLocks {
  #held = new Set<string>();
  #queues = new Map<string, { run: () => void }[]>();

  request(name: string, ...args: unknown[]): Promise<unknown> {
    const callback = args[args.length - 1] as () => unknown;
    const options = (args.length > 1 ? args[0] : {}) as { signal?: AbortSignal };
    return new Promise((resolve, reject) => {
      const queue = this.#queues.get(name) ?? [];
      this.#queues.set(name, queue);
      const aborted = () => new DOMException('the lock request was aborted', 'AbortError');
      if (options.signal?.aborted) return reject(aborted());
      const req = {
        run: () => {
          options.signal?.removeEventListener('abort', onAbort);
          this.#held.add(name);
          Promise.resolve().then(callback).then(
            (v) => { this.#release(name); resolve(v); },
            (e: unknown) => { this.#release(name); reject(e); },
          );
        },
      };
      const onAbort = () => {
        const i = queue.indexOf(req);
        if (i >= 0) {
          queue.splice(i, 1);
          reject(aborted());
        }
      };
      options.signal?.addEventListener('abort', onAbort);
      queue.push(req);
      this.#grant(name);
    });
  }

  /** held reports whether the lock name is held. */
  held(name: string): boolean { return this.#held.has(name); }

  #release(name: string): void {
    this.#held.delete(name);
    this.#grant(name);
  }

  #grant(name: string): void {
    if (this.#held.has(name)) return;
    this.#queues.get(name)?.shift()?.run();
  }
}

/** Browser is the fake browser of one test. */
export class Browser {
  readonly clock = new FakeClock();
  /** Every EventSource made, in order. */
  readonly eventSources = new Queue<FakeEventSource>();
  /** Every fetch made, in order. */
  readonly fetches = new Queue<FetchCall>();
  /** navigator.locks, or null for a browser without Web Locks. */
  locks: FakeLocks | null = new FakeLocks();
  /** navigator.onLine. */
  online = true;
  /** What Math.random returns next. */
  random: () => number = () => 0.5;
  /** What was given to reportError. */
  readonly errors: unknown[] = [];
  readonly href = 'http://hub.test/dashboard';

  #channels = new Set<{ name: string; closed: boolean; deliver(data: unknown): void }>();
  #windowListeners = new Map<string, Set<() => void>>();
  #clients: Client[] = [];
  #inFlight = 0; // BroadcastChannel messages posted, not yet delivered
  #quiet: (() => void)[] = [];
  #cleanups: (() => void)[] = [];

  /**
   * start installs the fakes for test t; when it ends, what was deferred
   * runs (last first), the clients made with connect are closed, then the
   * real globals are put back.
   */
  start(t: { after(fn: () => void): void }): this {
    const restore = this.install();
    t.after(() => {
      for (const fn of this.#cleanups.reverse()) fn();
      for (const c of this.#clients) c.close();
      restore();
    });
    return this;
  }

  /** defer runs fn when the test ends, while the fakes are still in place. */
  defer(fn: () => void): void {
    this.#cleanups.push(fn);
  }

  /** connect is the package's connect, in a tab of this browser; start closes the client at the end. */
  connect(options: ConnectOptions = {}): Client {
    const c = connect(options);
    this.#clients.push(c);
    return c;
  }

  /** install puts the fakes in place of the globals; the function it returns puts the real ones back. */
  install(): () => void {
    const browser = this;
    const g = globalThis as Record<string, unknown>;
    const saved: [string, PropertyDescriptor | undefined][] = [];
    const set = (name: string, value: unknown) => {
      saved.push([name, Object.getOwnPropertyDescriptor(g, name)]);
      Object.defineProperty(g, name, { value, configurable: true, writable: true });
    };
    set('EventSource', class extends FakeEventSource {
      constructor(url: string | URL, init?: { withCredentials?: boolean }) {
        super(url, init);
        browser.eventSources.push(this);
      }
    });
    set('fetch', (url: string, init?: RequestInit) => this.#fetch(url, init));
    set('BroadcastChannel', class {
      readonly name: string;
      closed = false;
      onmessage: ((m: { data: unknown }) => void) | null = null;
      constructor(name: string) {
        this.name = name;
        browser.#channels.add(this);
      }
      postMessage(data: unknown) {
        if (this.closed) throw new DOMException('the channel is closed', 'InvalidStateError');
        for (const other of browser.#channels) {
          if (other !== this && other.name === this.name) other.deliver(structuredClone(data));
        }
      }
      deliver(data: unknown) {
        // A task of its own, as a browser delivers it.
        browser.#inFlight++;
        setImmediate(() => {
          if (!this.closed) this.onmessage?.({ data });
          if (--browser.#inFlight === 0) for (const resolve of browser.#quiet.splice(0)) resolve();
        });
      }
      close() {
        this.closed = true;
        browser.#channels.delete(this);
      }
    });
    set('navigator', {
      get onLine() { return browser.online; },
      get locks() { return browser.locks ?? undefined; },
    });
    set('location', { href: this.href });
    set('addEventListener', (type: string, fn: () => void) => {
      let s = this.#windowListeners.get(type);
      if (!s) this.#windowListeners.set(type, (s = new Set()));
      s.add(fn);
    });
    set('removeEventListener', (type: string, fn: () => void) => { this.#windowListeners.get(type)?.delete(fn); });
    set('reportError', (err: unknown) => { this.errors.push(err); });
    set('setTimeout', this.clock.setTimeout);
    set('clearTimeout', this.clock.clearTimeout);
    const realNow = Date.now;
    const realRandom = Math.random;
    Date.now = () => this.clock.now;
    Math.random = () => this.random();
    return () => {
      Date.now = realNow;
      Math.random = realRandom;
      for (const [name, desc] of saved.reverse()) {
        if (desc) Object.defineProperty(g, name, desc);
        else delete g[name];
      }
    };
  }

  /**
   * delivered resolves once every message posted on a BroadcastChannel
   * has been delivered, with those posted in answer.
   */
  delivered(): Promise<void> {
    if (this.#inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.#quiet.push(resolve));
  }

  /** fire dispatches a window event, such as 'online'. */
  fire(type: string): void {
    for (const fn of [...(this.#windowListeners.get(type) ?? [])]) fn();
  }

  /** listeners counts the window's listeners of type. */
  listeners(type: string): number { return this.#windowListeners.get(type)?.size ?? 0; }

  #fetch(url: string, init: RequestInit | undefined): Promise<Response> {
    return new Promise((resolve, reject) => {
      const respond = (status: number, body: unknown) => {
        const text = typeof body === 'string' ? body : JSON.stringify(body);
        resolve(new Response(text, { status, headers: { 'content-type': 'application/json' } }));
      };
      this.fetches.push({
        url,
        init,
        respond,
        snapshot: (lastEventId, jobs = []) => respond(200, `{"lastEventId":${lastEventId},"jobs":${JSON.stringify(jobs)}}`),
        fail: () => reject(new TypeError('fetch failed')),
      });
    });
  }
}

/** next resolves with the arguments of the next call of name's callbacks on client. */
export function next<K extends ClientEventName>(client: Client, name: K): Promise<Parameters<ClientEvents[K]>> {
  return new Promise((resolve) => {
    const off = client.on(name, ((...args: Parameters<ClientEvents[K]>) => {
      off();
      resolve(args);
    }) as ClientEvents[K]);
  });
}

/** until resolves with client's state once pred holds for it: now, or at a later state change. */
export function until(client: Client, pred: (s: ClientState) => boolean): Promise<ClientState> {
  if (pred(client.state)) return Promise.resolve(client.state);
  return new Promise((resolve) => {
    const off = client.on('state', (s) => {
      if (pred(s)) {
        off();
        resolve(s);
      }
    });
  });
}

/** record collects the events client hands to '*', as [id, jobId, status]. */
export function record(client: Client): [string, string, string][] {
  const got: [string, string, string][] = [];
  client.on('*', (event, meta) => { got.push([meta.id, event.jobId, event.status]); });
  return got;
}

/** jobEvent is a growth event of job jobId at status. */
export function jobEvent(jobId: string, status = 'queued'): Record<string, unknown> {
  return { type: 'growth', jobId, status, timestamp: '2026-11-27T10:00:00.000Z', data: { assetId: 'a1' } };
}
