package actors

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/finexbot/eventhub/jobs"
)

// The seed corpus is in testdata/fuzz/FuzzEventFrame/. Run the fuzzer with
//
//	go test -run='^$' -fuzz=FuzzEventFrame -fuzztime=30s ./actors/

// FuzzEventFrame checks the SSE encoder on every event outside input can
// produce: for any body jobs.DecodeEvents accepts, each event's frame is
// exactly "id: <id>\nevent: job\ndata: <one line of JSON>\n\n", holds no CR,
// and an EventSource reads exactly one "job" event from it, with that id and
// data that decodes to the event's type, jobId, status and timestamp.
func FuzzEventFrame(f *testing.F) {
	f.Add([]byte(`{"type":"matrix","jobId":"j-81","status":"completed","timestamp":"2026-11-27T10:00:00.000Z","data":{"assetId":"a1","scenarioId":"s3"}}`), uint64(1042))
	f.Fuzz(func(t *testing.T, body []byte, id uint64) {
		evs, err := jobs.DecodeEvents(body)
		if err != nil {
			return // refused at the edge: never encoded
		}
		var stream []byte
		for i := range evs {
			ev := &evs[i]
			frame := appendEventFrame(nil, id, ev)
			checkFrame(t, frame, id, ev)
			stream = append(stream, frame...)
		}
		// Frames concatenate: each leaves an EventSource in its initial
		// state, so a stream of n frames is n events.
		if r := parseSSE(string(stream)); len(r.events) != len(evs) {
			t.Fatalf("%d frames read as %d events: %q", len(evs), len(r.events), stream)
		}
	})
}

func checkFrame(t *testing.T, frame []byte, id uint64, ev *jobs.Event) {
	t.Helper()
	if bytes.IndexByte(frame, '\r') >= 0 {
		t.Fatalf("frame holds a CR: %q", frame)
	}
	lines := strings.Split(string(frame), "\n")
	// Three field lines, the blank line, and nothing after its LF.
	if len(lines) != 5 || lines[3] != "" || lines[4] != "" {
		t.Fatalf("frame is not 3 LF-terminated lines and a blank line: %q", frame)
	}
	wantID := "id: " + strconv.FormatUint(id, 10)
	if lines[0] != wantID || lines[1] != "event: job" || !strings.HasPrefix(lines[2], "data: ") {
		t.Fatalf("frame fields: %q", lines[:3])
	}
	data := strings.TrimPrefix(lines[2], "data: ")
	if !json.Valid([]byte(data)) {
		t.Fatalf("data is not valid JSON: %q", data)
	}
	var got struct {
		Type      string          `json:"type"`
		JobID     string          `json:"jobId"`
		Status    string          `json:"status"`
		Timestamp string          `json:"timestamp"`
		Data      json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal([]byte(data), &got); err != nil {
		t.Fatalf("data does not decode: %v: %q", err, data)
	}
	if got.Type != ev.Type.String() || got.JobID != ev.JobID || got.Status != ev.Status.String() {
		t.Fatalf("data decodes to %s/%s/%s, want %s/%s/%s", got.Type, got.JobID, got.Status, ev.Type, ev.JobID, ev.Status)
	}
	if want := ev.Timestamp.UTC().Format("2006-01-02T15:04:05.000Z07:00"); got.Timestamp != want {
		t.Fatalf("timestamp %q, want %q", got.Timestamp, want)
	}
	if !bytes.Equal(got.Data, ev.Data) {
		t.Fatalf("data.data %q, want %q", got.Data, ev.Data)
	}

	// What a browser makes of it, by the specification's rules (which also
	// split lines on a lone CR).
	r := parseSSE(string(frame))
	if len(r.events) != 1 {
		t.Fatalf("an EventSource reads %d events from %q", len(r.events), frame)
	}
	e := r.events[0]
	if e.id != strconv.FormatUint(id, 10) || e.typ != "job" || e.data != data {
		t.Fatalf("an EventSource reads %+v from %q", e, frame)
	}
	if len(r.comments) != 0 || r.retry != "" {
		t.Fatalf("an EventSource reads comments %q, retry %q from %q", r.comments, r.retry, frame)
	}
}
