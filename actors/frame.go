package actors

import (
	"strconv"

	"github.com/finexbot/eventhub/jobs"
)

// frame is one event as it goes on the wire, encoded once by the hub and
// shared, read-only, by every stream it is delivered to.
//
// The event's data is held once, in bytes: ev is the frame's own copy of
// the event without its Data, which is all that routing, RBAC and filters
// read (type, status, job id, scope). Whoever needs the event's JSON (a
// snapshot) cuts it out of bytes (json).
type frame struct {
	id    uint64
	bytes []byte     // "id: N\nevent: job\ndata: {…}\n\n"
	at    int64      // when the hub ingested it (unix ns), for eventhub_delivery_latency_seconds
	ev    jobs.Event // the event without Data
}

// newFrame encodes the frame of event ev with id, once: its bytes are
// shared by every stream that gets it. The frame keeps no reference to ev.
func newFrame(id uint64, ev *jobs.Event) *frame {
	f := &frame{id: id, bytes: appendEventFrame(make([]byte, 0, frameSize(ev)), id, ev), ev: *ev}
	f.ev.Data = nil
	return f
}

// frameOverhead is what a frame costs besides its bytes and its event's
// strings: the struct, the bytes' slice header and allocation rounding.
const frameOverhead = 160

// size is what a frame costs in memory: its bytes (as allocated), its
// event's strings and the struct. History and the job table count it
// against their budgets.
func (f *frame) size() int {
	return cap(f.bytes) + len(f.ev.JobID) + len(f.ev.AssetID) + len(f.ev.ScenarioID) + frameOverhead
}

// json is the event's JSON as the frame's data line carries it, cut out of
// the frame's bytes: shared and read-only.
func (f *frame) json() []byte {
	// "id: " + the id's digits + "\nevent: job\ndata: " … "\n\n"
	start := len("id: ") + digits(f.id) + len("\nevent: job\ndata: ")
	return f.bytes[start : len(f.bytes)-2 : len(f.bytes)-2]
}

// digits is how many decimal digits id has.
func digits(id uint64) int {
	n := 1
	for id >= 10 {
		id /= 10
		n++
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
