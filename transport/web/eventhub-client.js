/**
 * eventhub-client: the browser client of eventhub's job event stream.
 *
 * An ES module with no dependencies. The hub serves it at
 * /eventhub-client.js, compiled from clients/js/src/index.ts (the npm
 * package `@finexbot/eventhub-client`); docs/examples/sse-client.js is the
 * same file.
 *
 *   import { connect } from '/eventhub-client.js';
 *
 *   const hub = connect({ filters: { types: ['matrix', 'growth'] } });
 *   hub.on('snapshot', (snap) => replaceAll(snap.jobs)); // [{eventId, event}], newest first
 *   hub.on('completed', (event, meta) => done(event, meta.id));
 *   hub.on('*', (event, meta) => upsert(event, meta.id)); // every status
 *   hub.on('state', (state) => badge(state));
 *   // later
 *   hub.close();
 *
 * What it does for you:
 *
 * - No gap between the state and the stream. It loads the snapshot
 *   (GET /api/jobs), then opens the stream (GET /api/events) with
 *   ?lastEventId= the snapshot's lastEventId, so every event after the
 *   snapshot arrives, and none twice: it keeps the newest id it has handed
 *   you and drops anything not newer.
 * - Reconnection it controls. On any error or close it closes the
 *   EventSource and builds a new one after an exponential backoff with full
 *   jitter (a random delay between 0 and min(maxMs, initialMs·2^attempt)),
 *   passing ?lastEventId=, so the hub replays what was missed. A browser's
 *   own EventSource gives up for good after a 401 (an expired session);
 *   this client does not: it retries, slower and slower, and recovers as soon
 *   as the session cookie is valid again. A stream that stayed up for 5 s
 *   starts the backoff over.
 * - event: reset. When the hub no longer has what this client missed (or
 *   restarted without its history), it says so; the client reloads the
 *   snapshot, emits 'snapshot' again, and goes on from there.
 * - One connection for all tabs. Tabs of one origin that use the same
 *   stream (url, filters and key) elect a leader with the Web Locks API. Only
 *   the leader holds the stream; it shares each event over a
 *   BroadcastChannel. When the leader's tab closes, another tab takes the
 *   lock and opens the stream from the last id it saw: nothing is lost, and
 *   twenty dashboards use one of the browser's six HTTP/1.1 connections per
 *   host. Without Web Locks (an insecure context, an old browser), or with
 *   shared: false, each tab holds its own stream.
 *
 * connect(options) returns a Client. Options, all optional:
 *   url          the stream, default '/api/events'
 *   snapshotUrl  the snapshot, default '/api/jobs'
 *   filters      {types, statuses, jobs, assets, scenarios}: arrays or
 *                comma-separated strings; AND between keys, OR within one.
 *                They apply to the stream and to the snapshot.
 *   limit        jobs in the snapshot (1-1000); default the hub's (100)
 *   key          who this stream is for, e.g. the signed-in user's id: tabs
 *                share a stream only when their keys are equal
 *   conflate     true: ask the hub to conflate (?conflate=1): a stream
 *                that falls behind keeps each job's latest progress
 *                instead of being closed; every queued, completed and
 *                failed still comes, in order
 *   shared       false: never share the stream with other tabs
 *   backoff      {initialMs: 1000, maxMs: 30000}
 *   beforeConnect  async () => void, awaited before each snapshot load and
 *                stream (re)open: refresh the session cookie here
 *   withCredentials  for a hub on another origin (needs CORS there)
 *
 * Client:
 *   on(name, fn)  name is a status ('queued', 'started', 'completed',
 *                 'failed') or '*' for every event: fn(event, {id}), event
 *                 the JobEvent object, id its event id (a decimal string);
 *                 'snapshot': fn({lastEventId, jobs: [{eventId, event}]});
 *                 'reset': fn({reason, lastEventId}), before the snapshot
 *                 that follows it; 'state': fn(state) on each change.
 *                 Returns a function that removes fn.
 *   state         {status, role, lastEventId, retryAt, attempt, error}:
 *                 status 'connecting' | 'live' | 'reconnecting' | 'offline'
 *                 | 'closed'; role 'leader' (this tab holds the stream),
 *                 'follower' (another tab does) or 'solo'; retryAt the
 *                 time (ms since the epoch) of the next attempt while
 *                 reconnecting; error a short reason or null.
 *   lastEventId   the id of the newest event handed to you (a string), or null
 *   retryNow()    skip the current backoff wait
 *   close()       stop for good; another tab takes over the stream
 *
 * Ids are compared as BigInt: they are uint64 on the hub, beyond what a
 * JavaScript number holds exactly.
 *
 * @packageDocumentation
 */
// The names on() accepts. The type checks them against ClientEvents both
// ways: a status added to the schema does not compile until it is here.
const EVENT_NAMES = new Set(Object.keys({
    queued: true, started: true, completed: true, failed: true, '*': true, snapshot: true, reset: true, state: true,
}));
const FILTER_KEYS = Object.keys({
    types: true, statuses: true, jobs: true, assets: true, scenarios: true,
});
const STABLE_MS = 5000; // a stream up this long was healthy: the next failure starts the backoff over
const MAX_HELD = 10000; // events held while a snapshot loads; beyond, start over with a newer snapshot
/** connect starts a client; see the comment at the top of this file. */
export function connect(options = {}) {
    return new Client(options);
}
/** A connection to the hub's job events; see the comment at the top of this file. */
export class Client {
    #opts;
    #streamUrl;
    #snapshotUrl;
    #handlers = new Map(); // event name -> Set of callbacks
    #channel = null; // BroadcastChannel when sharing
    #lockAbort = new AbortController(); // cancels a lock request still waiting
    #closed = false;
    #high = null; // newest id delivered (or the snapshot's); null before the first snapshot
    #held = null; // events held back while a snapshot loads, else null
    #syncGen = 0; // the snapshot load in progress; a newer one supersedes it
    #synced; // resolves once the first snapshot is in
    #syncedResolve;
    #es = null; // the EventSource, leader or solo only
    #endStream = null; // ends the current stream wait
    #attempt = 0; // failures in a row, for the backoff
    #wakers = new Set(); // each cuts one backoff wait short
    #conn = { status: 'connecting', retryAt: null, error: null }; // this tab's stream (leader, solo)
    #leaderConn = { status: 'connecting', retryAt: null, error: null }; // the leader's, as it last said
    #snapFail = null; // while snapshot loads fail
    #role = 'solo';
    #state;
    constructor(options = {}) {
        this.#opts = {
            url: '/api/events',
            snapshotUrl: '/api/jobs',
            filters: {},
            key: '',
            shared: true,
            conflate: false,
            withCredentials: false,
            ...options,
            backoff: { initialMs: 1000, maxMs: 30000, ...(options.backoff || {}) },
        };
        const query = filterQuery(this.#opts.filters);
        const streamQuery = new URLSearchParams(query);
        if (this.#opts.conflate)
            streamQuery.set('conflate', '1');
        this.#streamUrl = withQuery(this.#opts.url, streamQuery);
        const snapQuery = new URLSearchParams(query);
        if (this.#opts.limit != null)
            snapQuery.set('limit', String(this.#opts.limit));
        this.#snapshotUrl = withQuery(this.#opts.snapshotUrl, snapQuery);
        this.#synced = new Promise((resolve) => { this.#syncedResolve = resolve; });
        this.#state = Object.freeze({ status: 'connecting', role: 'solo', lastEventId: null, retryAt: null, attempt: 0, error: null });
        addEventListener('online', this.#onOnline);
        const canShare = this.#opts.shared && typeof BroadcastChannel === 'function' && globalThis.navigator?.locks;
        if (canShare) {
            const name = 'eventhub ' + this.#streamUrl + ' ' + this.#opts.key;
            this.#channel = new BroadcastChannel(name);
            this.#channel.onmessage = (m) => this.#onChannel(m.data);
            this.#role = 'follower';
            this.#publishState();
            this.#channel.postMessage({ t: 'hello' });
            this.#resync();
            navigator.locks.request(name, { signal: this.#lockAbort.signal }, () => this.#lead())
                .catch((err) => { if (err?.name !== 'AbortError')
                reportError(err); });
        }
        else {
            this.#resync();
            this.#lead();
        }
    }
    /** on registers fn for name; it returns a function that removes it. */
    on(name, fn) {
        if (!EVENT_NAMES.has(name))
            throw new TypeError(`eventhub: unknown event name ${JSON.stringify(name)}`);
        if (typeof fn !== 'function')
            throw new TypeError('eventhub: on() needs a function');
        let set = this.#handlers.get(name);
        if (!set)
            this.#handlers.set(name, (set = new Set()));
        set.add(fn);
        return () => set.delete(fn);
    }
    /** The current state; a new frozen object on each change. */
    get state() { return this.#state; }
    /** The id of the newest event handed to you (a decimal string), or null. */
    get lastEventId() { return this.#high === null ? null : String(this.#high); }
    /** retryNow ends the current backoff wait: the next attempt starts now. */
    retryNow() {
        if (this.#role === 'follower')
            this.#channel?.postMessage({ t: 'retry' });
        this.#wakeAll();
    }
    /** close stops the client for good. Another tab, if any, takes over the stream. */
    close() {
        if (this.#closed)
            return;
        this.#closed = true;
        removeEventListener('online', this.#onOnline);
        this.#lockAbort.abort();
        this.#syncedResolve(); // a #lead still waiting for the first snapshot ends, releasing the lock
        this.#endStream?.();
        this.#wakeAll();
        this.#channel?.close();
        this.#channel = null;
        this.#publishState();
    }
    // #lead runs while this tab holds the stream: with the lock held when
    // sharing (returning releases it), for good when solo.
    async #lead() {
        if (this.#closed)
            return;
        if (this.#channel)
            this.#role = 'leader';
        this.#conn = { status: 'connecting', retryAt: null, error: null };
        this.#publishState();
        await this.#synced; // the stream starts where the snapshot ends
        while (!this.#closed) {
            const upFor = await this.#stream();
            if (this.#closed)
                break;
            if (upFor >= STABLE_MS)
                this.#attempt = 0;
            const error = upFor < 0 ? 'the stream was refused or the hub is unreachable' : 'the stream closed';
            const ms = this.#nextDelay();
            this.#conn = { status: this.#offline() ? 'offline' : 'reconnecting', retryAt: Date.now() + ms, error };
            this.#publishState();
            await this.#sleep(ms);
            if (this.#closed)
                break;
            this.#conn = { status: 'connecting', retryAt: null, error };
            this.#publishState();
        }
    }
    // #stream opens one EventSource and resolves when it ends: with how long
    // it was open in ms, or -1 when it never opened.
    async #stream() {
        try {
            await this.#opts.beforeConnect?.();
        }
        catch (err) {
            reportError(err);
        }
        if (this.#closed)
            return -1;
        return new Promise((resolve) => {
            const url = new URL(this.#streamUrl, location.href);
            if (this.#high !== null)
                url.searchParams.set('lastEventId', String(this.#high));
            const es = new EventSource(url, { withCredentials: this.#opts.withCredentials });
            let openedAt = 0;
            const end = () => {
                es.close();
                if (this.#es === es) {
                    this.#es = null;
                    this.#endStream = null;
                }
                resolve(openedAt ? Date.now() - openedAt : -1);
            };
            this.#es = es;
            this.#endStream = end;
            es.onopen = () => {
                openedAt = Date.now();
                this.#conn = { status: 'live', retryAt: null, error: null };
                this.#publishState();
            };
            es.addEventListener('job', (m) => this.#onStreamJob(m));
            es.addEventListener('reset', (m) => this.#onStreamReset(m));
            // Whatever the error, the browser would either give up (401, 403,
            // 429, …) or reconnect on its own with the URL's stale lastEventId
            // and no backoff of ours: take over instead.
            es.onerror = end;
        });
    }
    // #nextDelay is the wait before the next attempt: full jitter over an
    // exponential backoff, capped.
    #nextDelay() {
        const { initialMs, maxMs } = this.#opts.backoff;
        const ms = Math.random() * Math.min(maxMs, initialMs * 2 ** this.#attempt);
        this.#attempt = Math.min(this.#attempt + 1, 30);
        return ms;
    }
    // #sleep waits ms, or less when woken (retryNow, back online, close).
    #sleep(ms) {
        return new Promise((resolve) => {
            const wake = () => {
                clearTimeout(timer);
                this.#wakers.delete(wake);
                resolve();
            };
            const timer = setTimeout(wake, ms);
            this.#wakers.add(wake);
        });
    }
    #wakeAll() {
        for (const wake of [...this.#wakers])
            wake();
    }
    #offline() { return globalThis.navigator?.onLine === false; }
    #onOnline = () => { this.#attempt = 0; this.#wakeAll(); };
    #onStreamJob(m) {
        let event;
        try {
            event = JSON.parse(m.data);
        }
        catch (err) {
            reportError(err);
            return;
        }
        const id = parseID(m.lastEventId);
        if (id === null)
            return;
        this.#channel?.postMessage({ t: 'event', id: m.lastEventId, event });
        this.#deliver(id, event);
    }
    #onStreamReset(m) {
        let reason = '';
        try {
            reason = JSON.parse(m.data).reason || '';
        }
        catch { /* the reset itself is what matters */ }
        const id = parseID(m.lastEventId);
        if (id === null)
            return;
        this.#channel?.postMessage({ t: 'reset', id: m.lastEventId, reason });
        this.#reset(id, reason);
    }
    #onChannel(data) {
        if (this.#closed || !data || typeof data !== 'object')
            return;
        const msg = data;
        switch (msg.t) {
            case 'event': {
                const id = parseID(msg.id);
                if (this.#role === 'follower' && id !== null)
                    this.#deliver(id, msg.event);
                break;
            }
            case 'reset': {
                const id = parseID(msg.id);
                if (this.#role === 'follower' && id !== null)
                    this.#reset(id, msg.reason);
                break;
            }
            case 'state':
                if (this.#role === 'follower') {
                    this.#leaderConn = { status: msg.status, retryAt: msg.retryAt, error: msg.error };
                    this.#publishState();
                }
                break;
            case 'hello':
                if (this.#role === 'leader')
                    this.#announce();
                break;
            case 'retry':
                if (this.#role === 'leader') {
                    this.#attempt = 0;
                    this.#wakeAll();
                }
                break;
        }
    }
    // #deliver hands one event to the callbacks, unless it is not newer than
    // what was delivered (a replay after a reconnect, or an event the snapshot
    // already holds). While a snapshot loads, events wait for it.
    #deliver(id, event) {
        if (this.#closed)
            return;
        if (this.#held) {
            this.#held.push([id, event]);
            if (this.#held.length > MAX_HELD) {
                // The snapshot is taking too long. Drop what is held and load a
                // newer snapshot: asked for after the drop, it covers all of it.
                this.#held = [];
                this.#resync();
            }
            return;
        }
        if (this.#high !== null && id <= this.#high)
            return;
        this.#high = id;
        const meta = { id: String(id) };
        this.#emit(event.status, event, meta);
        this.#emit('*', event, meta);
        this.#publishState(false);
    }
    // #reset: the hub could not replay what this client missed (or its ids
    // went back, after a restart without history). Go on from id, after a new
    // snapshot.
    #reset(id, reason) {
        this.#high = id;
        // Whatever waits for a snapshot came before the reset: the new snapshot
        // supersedes it (and after a restart its ids may even be ahead).
        if (this.#held)
            this.#held = [];
        this.#emit('reset', { reason, lastEventId: String(id) });
        this.#resync();
    }
    // #resync loads the snapshot, holding back events that arrive meanwhile,
    // then delivers those newer than it. It retries with backoff until it
    // succeeds; a newer call supersedes it.
    async #resync() {
        const gen = ++this.#syncGen;
        this.#held ??= [];
        while (!this.#closed && gen === this.#syncGen) {
            try {
                await this.#opts.beforeConnect?.();
                if (this.#closed || gen !== this.#syncGen)
                    return;
                const snap = await this.#fetchSnapshot();
                if (this.#closed || gen !== this.#syncGen)
                    return;
                this.#high = BigInt(snap.lastEventId);
                this.#emit('snapshot', snap);
                const held = this.#held ?? [];
                this.#held = null;
                this.#snapFail = null;
                this.#attempt = 0; // the hub answered and took the session
                this.#publishState();
                for (const [id, event] of held)
                    this.#deliver(id, event);
                this.#syncedResolve();
                return;
            }
            catch (err) {
                if (this.#closed || gen !== this.#syncGen)
                    return;
                const ms = this.#nextDelay();
                this.#snapFail = { status: this.#offline() ? 'offline' : 'reconnecting', retryAt: Date.now() + ms, error: errorMessage(err) };
                this.#publishState();
                await this.#sleep(ms);
            }
        }
    }
    async #fetchSnapshot() {
        const res = await fetch(this.#snapshotUrl, {
            credentials: this.#opts.withCredentials ? 'include' : 'same-origin',
            cache: 'no-store',
            headers: { accept: 'application/json' },
        });
        const text = await res.text();
        if (!res.ok) {
            let detail = '';
            try {
                detail = JSON.parse(text).error || '';
            }
            catch { /* not JSON */ }
            throw new Error(`snapshot: HTTP ${res.status}${detail ? ': ' + detail : ''}`);
        }
        // Ids are uint64: keep their exact digits (JSON.parse's source text),
        // as strings.
        const snap = JSON.parse(text, function (key, value, ctx) {
            const isID = (key === 'lastEventId' && Object.hasOwn(this, 'jobs')) || (key === 'eventId' && Object.hasOwn(this, 'event'));
            if (isID && typeof value === 'number')
                return typeof ctx?.source === 'string' ? ctx.source : String(value);
            return value;
        });
        return { lastEventId: snap.lastEventId, jobs: snap.jobs || [] };
    }
    #emit(name, ...args) {
        const set = this.#handlers.get(name);
        if (!set)
            return;
        for (const fn of [...set]) {
            try {
                fn(...args);
            }
            catch (err) {
                reportError(err); // one broken callback must not stop the others, nor the stream
            }
        }
    }
    // #publishState recomputes the state; notify=false updates it quietly
    // (each event changes lastEventId: subscribe to '*' for that).
    #publishState(notify = true) {
        // A failing snapshot load shows first: until it succeeds, this tab
        // shows nothing new, whatever the stream does.
        const conn = this.#snapFail || (this.#role === 'follower' ? this.#leaderConn : this.#conn);
        const next = Object.freeze({
            status: this.#closed ? 'closed' : conn.status,
            role: this.#role,
            lastEventId: this.lastEventId,
            retryAt: this.#closed ? null : conn.retryAt,
            attempt: this.#attempt,
            error: this.#closed ? null : conn.error,
        });
        this.#state = next;
        if (!notify)
            return;
        if (this.#role === 'leader')
            this.#announce();
        this.#emit('state', next);
    }
    #announce() {
        this.#channel?.postMessage({ t: 'state', ...this.#conn });
    }
}
// parseID reads an event id (decimal digits), or returns null.
function parseID(s) {
    return typeof s === 'string' && /^[0-9]{1,20}$/.test(s) ? BigInt(s) : null;
}
// filterQuery turns {types: ['matrix'], …} into URLSearchParams.
function filterQuery(filters) {
    const q = new URLSearchParams();
    for (const [key, value] of Object.entries(filters || {})) {
        if (!FILTER_KEYS.includes(key))
            throw new TypeError(`eventhub: unknown filter ${JSON.stringify(key)} (want ${FILTER_KEYS.join(', ')})`);
        if (value == null)
            continue;
        const list = (Array.isArray(value) ? value : String(value).split(',')).map((s) => String(s).trim()).filter(Boolean);
        if (list.length)
            q.set(key, list.join(','));
    }
    q.sort(); // one stream, one name: tabs with the same filters share it
    return q;
}
function withQuery(url, query) {
    const s = query.toString();
    return s ? url + (url.includes('?') ? '&' : '?') + s : url;
}
// errorMessage is a thrown value's message, for the state.
function errorMessage(err) {
    const message = err?.message;
    return typeof message === 'string' ? message : String(err);
}
// reportError hands an error to the page (window.onerror, the console)
// without stopping what reports it.
function reportError(err) {
    if (typeof globalThis.reportError === 'function')
        globalThis.reportError(err);
    else
        console.error(err);
}
