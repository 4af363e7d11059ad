package transport

import (
	"bytes"
	"strconv"
	"sync"

	"github.com/valyala/fasthttp"

	"github.com/finexbot/eventhub/actors"
	"github.com/finexbot/eventhub/jobs"
)

// Snapshot limits for GET /api/jobs.
const (
	defaultSnapshotLimit = 100
	maxSnapshotLimit     = 1000
)

// jobSnapshot is GET /api/jobs: the latest status of the most recent jobs
// the user may see, newest first, and the id of the newest event, to open
// the stream from with ?lastEventId= so that nothing falls in between:
//
//	{"lastEventId":1042,"jobs":[{"eventId":1040,"event":{…JobEvent…}},…]}
//
// Each "event" is exactly what the stream's data line carries. The hub
// bounds the answer's size (--snapshot-bytes): when jobs were left out for
// it, the answer ends with "truncated":true. At most MaxSnapshots answers
// (MaxSnapshotsPerUser of one user) are being written at once; past that,
// 429 with Retry-After.
func (s *Server) jobSnapshot(ctx *fasthttp.RequestCtx) {
	id, perms, ok := s.authenticate(ctx)
	if !ok {
		return
	}
	filter, err := parseFilter(ctx)
	if err != nil {
		writeError(ctx, fasthttp.StatusBadRequest, err.Error())
		return
	}
	limit := defaultSnapshotLimit
	if raw := ctx.QueryArgs().Peek("limit"); raw != nil {
		n, err := strconv.Atoi(string(raw))
		if err != nil || n < 1 || n > maxSnapshotLimit {
			writeError(ctx, fasthttp.StatusBadRequest, "limit: want a whole number from 1 to "+strconv.Itoa(maxSnapshotLimit))
			return
		}
		limit = n
	}
	if !s.snapshots.take(id.User) {
		ctx.Response.Header.Set("Retry-After", "1")
		writeError(ctx, fasthttp.StatusTooManyRequests, "too many job lists are being sent at once; try again")
		return
	}
	snap, err := s.cfg.Hub.Snapshot(ctx, perms, filter, limit)
	if err != nil {
		s.snapshots.give(id.User)
		writeError(ctx, fasthttp.StatusServiceUnavailable, err.Error())
		return
	}
	ctx.SetStatusCode(fasthttp.StatusOK)
	ctx.SetContentType("application/json")
	ctx.Response.Header.Set("Cache-Control", "no-store")
	size := 96
	for _, js := range snap.Jobs {
		size += 32 + len(js.Event)
	}
	// The answer is held until written, within --snapshot-bytes, and its
	// slot with it: fasthttp closes a body stream once it is written, or
	// when the response is dropped (its connection failed or timed out).
	body := appendSnapshot(make([]byte, 0, size), snap)
	user := id.User
	ctx.Response.SetBodyStream(&heldAnswer{Reader: bytes.NewReader(body), release: func() { s.snapshots.give(user) }}, len(body))
}

// heldAnswer is an answer's body that gives its slot back when fasthttp
// closes it, once.
type heldAnswer struct {
	*bytes.Reader
	release func()
	once    sync.Once
}

func (a *heldAnswer) Close() error {
	a.once.Do(a.release)
	return nil
}

func appendSnapshot(dst []byte, snap actors.Snapshot) []byte {
	dst = append(dst, `{"lastEventId":`...)
	dst = strconv.AppendUint(dst, snap.LastEventID, 10)
	dst = append(dst, `,"jobs":[`...)
	for i, js := range snap.Jobs {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"eventId":`...)
		dst = strconv.AppendUint(dst, js.ID, 10)
		dst = append(dst, `,"event":`...)
		dst = append(dst, js.Event...)
		dst = append(dst, '}')
	}
	dst = append(dst, ']')
	if snap.Truncated {
		dst = append(dst, `,"truncated":true`...)
	}
	return append(dst, "}\n"...)
}

// parseFilter reads the stream filters (types, statuses, jobs, assets,
// scenarios) from the query string.
func parseFilter(ctx *fasthttp.RequestCtx) (jobs.Filter, error) {
	args := ctx.QueryArgs()
	return jobs.ParseFilter(func(key string) (string, bool) {
		if !args.Has(key) {
			return "", false
		}
		return string(args.Peek(key)), true
	})
}
