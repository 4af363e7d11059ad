package actors

import (
	"encoding/json"
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/finexbot/eventhub/jobs"
)

func TestAppendEventFrame(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		id   uint64
		ev   jobs.Event
		want string
	}{
		{
			name: "design example",
			id:   1042,
			ev: jobs.Event{Type: jobs.Matrix, JobID: "j-81", Status: jobs.Completed, Timestamp: testTime,
				Data: json.RawMessage(`{"assetId":"a1","scenarioId":"s3"}`), AssetID: "a1", ScenarioID: "s3"},
			want: "id: 1042\nevent: job\n" +
				`data: {"type":"matrix","jobId":"j-81","status":"completed","timestamp":"2026-11-27T10:00:00.000Z","data":{"assetId":"a1","scenarioId":"s3"}}` +
				"\n\n",
		},
		{
			name: "first id, milliseconds kept, other zone in UTC",
			id:   1,
			ev: jobs.Event{Type: jobs.Growth, JobID: "g.1", Status: jobs.Queued,
				Timestamp: time.Date(2026, 1, 2, 4, 4, 5, 678_900_000, time.FixedZone("", 2*3600)),
				Data:      json.RawMessage(`{"assetId":"a1"}`), AssetID: "a1"},
			want: "id: 1\nevent: job\n" +
				`data: {"type":"growth","jobId":"g.1","status":"queued","timestamp":"2026-01-02T02:04:05.678Z","data":{"assetId":"a1"}}` +
				"\n\n",
		},
		{
			name: "largest id, escapes in data kept as escapes",
			id:   math.MaxUint64,
			ev: jobs.Event{Type: jobs.Probability, JobID: "p:1_x", Status: jobs.Failed, Timestamp: testTime,
				Data: json.RawMessage(`{"scenarioId":"s1","msg":"a\r\nb\u2028\"q\""}`), ScenarioID: "s1"},
			want: "id: 18446744073709551615\nevent: job\n" +
				`data: {"type":"probability","jobId":"p:1_x","status":"failed","timestamp":"2026-11-27T10:00:00.000Z","data":{"scenarioId":"s1","msg":"a\r\nb\u2028\"q\""}}` +
				"\n\n",
		},
		{
			name: "no data",
			id:   7,
			ev:   jobs.Event{Type: jobs.Growth, JobID: "j", Status: jobs.Started, Timestamp: testTime},
			want: "id: 7\nevent: job\n" +
				`data: {"type":"growth","jobId":"j","status":"started","timestamp":"2026-11-27T10:00:00.000Z"}` +
				"\n\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(appendEventFrame(nil, tt.id, &tt.ev)); got != tt.want {
				t.Errorf("got\n%q\nwant\n%q", got, tt.want)
			}
			// It appends: what dst held stays, and the frame follows it.
			prefix := ":ping\n\n"
			if got := string(appendEventFrame([]byte(prefix), tt.id, &tt.ev)); got != prefix+tt.want {
				t.Errorf("appended to %q: got\n%q", prefix, got)
			}
			r := parseSSE(tt.want)
			want := sseEvent{id: strconv.FormatUint(tt.id, 10), typ: "job", data: string(tt.ev.AppendJSON(nil))}
			if len(r.events) != 1 || r.events[0] != want {
				t.Errorf("an EventSource reads %+v, want [%+v]", r.events, want)
			}
		})
	}
}

func TestAppendResetFrame(t *testing.T) {
	t.Parallel()
	tests := []struct {
		id     uint64
		reason string
		want   string
	}{
		{10, "expired", "id: 10\nevent: reset\ndata: {\"reason\":\"expired\"}\n\n"},
		{0, "ahead", "id: 0\nevent: reset\ndata: {\"reason\":\"ahead\"}\n\n"},
		{math.MaxUint64, "ahead", "id: 18446744073709551615\nevent: reset\ndata: {\"reason\":\"ahead\"}\n\n"},
	}
	for _, tt := range tests {
		got := string(appendResetFrame(nil, tt.id, tt.reason))
		if got != tt.want {
			t.Errorf("appendResetFrame(%d, %q) = %q, want %q", tt.id, tt.reason, got, tt.want)
		}
		r := parseSSE(got)
		if len(r.events) != 1 || r.events[0].typ != "reset" || r.lastID != strconv.FormatUint(tt.id, 10) {
			t.Errorf("an EventSource reads %+v", r)
		}
		var body struct{ Reason string }
		if err := json.Unmarshal([]byte(r.events[0].data), &body); err != nil || body.Reason != tt.reason {
			t.Errorf("reset data %q: %v, reason %q", r.events[0].data, err, body.Reason)
		}
	}
	if got := string(appendResetFrame([]byte("x"), 1, "expired")); got != "xid: 1\nevent: reset\ndata: {\"reason\":\"expired\"}\n\n" {
		t.Errorf("append to a prefix: %q", got)
	}
}

func TestAppendRetry(t *testing.T) {
	t.Parallel()
	tests := []struct {
		ms   int64
		want string
	}{
		{3000, "retry: 3000\n\n"},
		{0, "retry: 0\n\n"},
		{13_000, "retry: 13000\n\n"},
	}
	for _, tt := range tests {
		got := string(appendRetry(nil, tt.ms))
		if got != tt.want {
			t.Errorf("appendRetry(%d) = %q, want %q", tt.ms, got, tt.want)
		}
		// A retry hint is no event, and the browser takes its value.
		if r := parseSSE(got); len(r.events) != 0 || r.retry != strconv.FormatInt(tt.ms, 10) {
			t.Errorf("an EventSource reads %+v", r)
		}
	}
}

func TestPingFrame(t *testing.T) {
	t.Parallel()
	if string(pingFrame) != ":ping\n\n" {
		t.Fatalf("pingFrame = %q", pingFrame)
	}
	if r := parseSSE(string(pingFrame)); len(r.events) != 0 || len(r.comments) != 1 {
		t.Errorf("an EventSource reads %+v, want one comment and no event", r)
	}
}
