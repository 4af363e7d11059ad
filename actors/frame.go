package actors

import (
	"strconv"

	"github.com/finexbot/eventhub/jobs"
)

// frame is one event as it goes on the wire, encoded once by the hub and
// shared, read-only, by every stream it is delivered to.
type frame struct {
	id    uint64
	ev    *jobs.Event
	bytes []byte // "id: N\nevent: job\ndata: {…}\n\n"
	at    int64  // when the hub ingested it (unix ns), for eventhub_delivery_latency_seconds
}

// newFrame encodes the frame of event ev with id, once: its bytes are
// shared by every stream that gets it.
func newFrame(id uint64, ev *jobs.Event) *frame {
	return &frame{id: id, ev: ev, bytes: appendEventFrame(make([]byte, 0, frameSize(ev)), id, ev)}
}

// size is what a frame costs in history, roughly: its bytes and its event.
func (f *frame) size() int {
	n := len(f.bytes) + 64
	if f.ev != nil {
		n += len(f.ev.Data) + len(f.ev.JobID) + 96
	}
	return n
}

// appendEventFrame appends the SSE frame of ev with the given id. jobs.Event's
// canonical JSON never holds a raw CR or LF, and the id and event name are the
// hub's own, so the result is exactly one SSE event.
func appendEventFrame(dst []byte, id uint64, ev *jobs.Event) []byte {
	dst = append(dst, "id: "...)
	dst = strconv.AppendUint(dst, id, 10)
	dst = append(dst, "\nevent: job\ndata: "...)
	dst = ev.AppendJSON(dst)
	return append(dst, "\n\n"...)
}

// appendResetFrame appends the frame that tells a resuming client its
// Last-Event-ID can no longer be honored: refetch the snapshot, then go on
// from id. reason is one of the hub's fixed strings.
func appendResetFrame(dst []byte, id uint64, reason string) []byte {
	dst = append(dst, "id: "...)
	dst = strconv.AppendUint(dst, id, 10)
	dst = append(dst, "\nevent: reset\ndata: {\"reason\":\""...)
	dst = append(dst, reason...)
	return append(dst, "\"}\n\n"...)
}

// appendRetry appends a "retry:" field telling the browser how long to wait
// before it reconnects.
func appendRetry(dst []byte, ms int64) []byte {
	dst = append(dst, "retry: "...)
	dst = strconv.AppendInt(dst, ms, 10)
	return append(dst, "\n\n"...)
}

var pingFrame = []byte(":ping\n\n")

// frameSize is the exact upper bound of an event frame's length: its fixed
// text (with the longest type, status and id) plus the variable parts, so
// encoding never reallocates.
func frameSize(ev *jobs.Event) int {
	return 145 + len(ev.JobID) + len(ev.Data)
}
