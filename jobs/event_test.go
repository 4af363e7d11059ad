package jobs

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestDecodeEventsValid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body string
		want []Event
	}{
		{
			name: "single matrix",
			body: `{"type":"matrix","jobId":"j-81","status":"completed","timestamp":"2026-11-27T10:00:00Z","data":{"assetId":"a1","scenarioId":"s3"}}`,
			want: []Event{{
				Type: Matrix, JobID: "j-81", Status: Completed,
				Timestamp: time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC),
				Data:      json.RawMessage(`{"assetId":"a1","scenarioId":"s3"}`),
				AssetID:   "a1", ScenarioID: "s3",
			}},
		},
		{
			name: "progress on a started event, and a message",
			body: `{"type":"growth","jobId":"j-82","status":"started","timestamp":"2026-11-27T10:00:00Z","data":{"assetId":"a1","progress":0.25,"message":"year 3 of 10"}}`,
			want: []Event{{
				Type: Growth, JobID: "j-82", Status: Started,
				Timestamp: time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC),
				Data:      json.RawMessage(`{"assetId":"a1","progress":0.25,"message":"year 3 of 10"}`),
				AssetID:   "a1",
			}},
		},
		{
			name: "offset normalised to UTC, data compacted",
			body: " \n{\"type\":\"growth\",\"jobId\":\"A.b_c:d-9\",\"status\":\"queued\",\"timestamp\":\"2026-11-27T12:30:00.5+02:00\",\n\"data\": { \"assetId\" : \"a1\",\n \"n\": [1, 2] } }\r\n",
			want: []Event{{
				Type: Growth, JobID: "A.b_c:d-9", Status: Queued,
				Timestamp: time.Date(2026, 11, 27, 10, 30, 0, 5e8, time.UTC),
				Data:      json.RawMessage(`{"assetId":"a1","n":[1,2]}`),
				AssetID:   "a1",
			}},
		},
		{
			name: "array of two",
			body: `[{"type":"probability","jobId":"p1","status":"started","timestamp":"2026-01-02T03:04:05.678Z","data":{"scenarioId":"s1"}},
			        {"type":"growth","jobId":"g1","status":"failed","timestamp":"2026-01-02T03:04:06Z","data":{"assetId":"a2","error":"boom"}}]`,
			want: []Event{
				{
					Type: Probability, JobID: "p1", Status: Started,
					Timestamp: time.Date(2026, 1, 2, 3, 4, 5, 678e6, time.UTC),
					Data:      json.RawMessage(`{"scenarioId":"s1"}`), ScenarioID: "s1",
				},
				{
					Type: Growth, JobID: "g1", Status: Failed,
					Timestamp: time.Date(2026, 1, 2, 3, 4, 6, 0, time.UTC),
					Data:      json.RawMessage(`{"assetId":"a2","error":"boom"}`), AssetID: "a2",
				},
			},
		},
		{
			name: "repeated scope key keeps the last, as JSON.parse does",
			body: `{"type":"growth","jobId":"g","status":"queued","timestamp":"2026-01-01T00:00:00Z","data":{"assetId":"a1","assetId":"a2"}}`,
			want: []Event{{
				Type: Growth, JobID: "g", Status: Queued, Timestamp: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
				Data: json.RawMessage(`{"assetId":"a1","assetId":"a2"}`), AssetID: "a2",
			}},
		},
		{
			name: "null scope of a kind that does not need it",
			body: `{"type":"growth","jobId":"g","status":"queued","timestamp":"2026-01-01T00:00:00Z","data":{"assetId":"a1","scenarioId":null}}`,
			want: []Event{{
				Type: Growth, JobID: "g", Status: Queued, Timestamp: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
				Data: json.RawMessage(`{"assetId":"a1","scenarioId":null}`), AssetID: "a1",
			}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := DecodeEvents([]byte(tt.body))
			if err != nil {
				t.Fatalf("DecodeEvents: %v", err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d events, want %d", len(got), len(tt.want))
			}
			for i := range got {
				g, w := got[i], tt.want[i]
				if g.Type != w.Type || g.JobID != w.JobID || g.Status != w.Status ||
					string(g.Data) != string(w.Data) || g.AssetID != w.AssetID || g.ScenarioID != w.ScenarioID {
					t.Errorf("event %d = %+v, want %+v", i, g, w)
				}
				if !g.Timestamp.Equal(w.Timestamp) || g.Timestamp.Location() != time.UTC {
					t.Errorf("event %d timestamp = %v, want %v in UTC", i, g.Timestamp, w.Timestamp)
				}
				if err := g.Validate(); err != nil {
					t.Errorf("event %d: Validate: %v", i, err)
				}
			}
		})
	}
}

// event returns a valid event body with fields overridden: a value of nil
// removes the field, a string is JSON-quoted, json.RawMessage goes in as is.
func event(overrides map[string]any) string {
	fields := map[string]any{
		"type":      "matrix",
		"jobId":     "j-1",
		"status":    "queued",
		"timestamp": "2026-11-27T10:00:00Z",
		"data":      json.RawMessage(`{"assetId":"a1","scenarioId":"s1"}`),
	}
	for k, v := range overrides {
		if v == nil {
			delete(fields, k)
		} else {
			fields[k] = v
		}
	}
	b, err := json.Marshal(fields)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func TestDecodeEventsInvalid(t *testing.T) {
	t.Parallel()
	bigData := json.RawMessage(`{"assetId":"a1","scenarioId":"s1","pad":"` + strings.Repeat("x", MaxDataSize) + `"}`)
	tests := []struct {
		name  string
		body  string
		kind  error  // ErrMalformed or ErrTooManyEvents; nil for a *ValidationError
		field string // the *ValidationError's Field
		index int
	}{
		{name: "empty body", body: "  ", kind: ErrMalformed},
		{name: "not json", body: "hello", kind: ErrMalformed},
		{name: "truncated", body: `{"type":"matrix"`, kind: ErrMalformed},
		{name: "number", body: `42`, kind: ErrMalformed},
		{name: "string", body: `"x"`, kind: ErrMalformed},
		{name: "empty array", body: `[]`, kind: ErrMalformed},
		{name: "array of a non-object", body: `[` + event(nil) + `,1]`, kind: ErrMalformed},
		{name: "array with trailing garbage", body: `[` + event(nil) + `]x`, kind: ErrMalformed},
		{name: "two objects", body: event(nil) + event(nil), kind: ErrMalformed},
		{name: "object then bracket", body: event(nil) + `]`, kind: ErrMalformed},
		{name: "too many", body: "[" + strings.Repeat(event(nil)+",", MaxBatch) + event(nil) + "]", kind: ErrTooManyEvents},
		{name: "unknown type", body: event(map[string]any{"type": "cube"}), field: "type"},
		{name: "missing type", body: event(map[string]any{"type": nil}), field: "type"},
		{name: "type not a string", body: event(map[string]any{"type": 3}), field: "type"},
		{name: "unknown status", body: event(map[string]any{"status": "done"}), field: "status"},
		{name: "jobId charset", body: event(map[string]any{"jobId": "j 1"}), field: "jobId"},
		{name: "jobId newline", body: event(map[string]any{"jobId": "j\n1"}), field: "jobId"},
		{name: "jobId empty", body: event(map[string]any{"jobId": ""}), field: "jobId"},
		{name: "jobId too long", body: event(map[string]any{"jobId": strings.Repeat("j", MaxIDLen+1)}), field: "jobId"},
		{name: "timestamp not RFC 3339", body: event(map[string]any{"timestamp": "27/11/2026"}), field: "timestamp"},
		{name: "timestamp without zone", body: event(map[string]any{"timestamp": "2026-11-27T10:00:00"}), field: "timestamp"},
		{name: "timestamp before year 0 in UTC", body: event(map[string]any{"timestamp": "0000-01-01T00:00:00+01:00"}), field: "timestamp"},
		{name: "timestamp after year 9999 in UTC", body: event(map[string]any{"timestamp": "9999-12-31T23:00:00-02:00"}), field: "timestamp"},
		{name: "data an array", body: event(map[string]any{"data": json.RawMessage(`[1]`)}), field: "data"},
		{name: "data a string", body: event(map[string]any{"data": "x"}), field: "data"},
		{name: "data over 64 KiB", body: event(map[string]any{"data": bigData}), field: "data"},
		{name: "matrix without scenario", body: event(map[string]any{"data": json.RawMessage(`{"assetId":"a1"}`)}), field: "data.scenarioId"},
		{name: "matrix without asset", body: event(map[string]any{"data": json.RawMessage(`{"scenarioId":"s1"}`)}), field: "data.assetId"},
		{name: "matrix without data", body: event(map[string]any{"data": nil}), field: "data.assetId"},
		{name: "growth without asset", body: event(map[string]any{"type": "growth", "data": json.RawMessage(`{"scenarioId":"s1"}`)}), field: "data.assetId"},
		{name: "probability without scenario", body: event(map[string]any{"type": "probability", "data": json.RawMessage(`{"assetId":"a1"}`)}), field: "data.scenarioId"},
		{name: "scope key of another case", body: event(map[string]any{"type": "growth", "data": json.RawMessage(`{"AssetId":"a1"}`)}), field: "data.assetId"},
		{name: "assetId not a string", body: event(map[string]any{"data": json.RawMessage(`{"assetId":1,"scenarioId":"s1"}`)}), field: "data.assetId"},
		{name: "scenarioId an object", body: event(map[string]any{"data": json.RawMessage(`{"assetId":"a1","scenarioId":{}}`)}), field: "data.scenarioId"},
		{name: "assetId charset", body: event(map[string]any{"data": json.RawMessage(`{"assetId":"a,1","scenarioId":"s1"}`)}), field: "data.assetId"},
		{name: "unknown field", body: event(map[string]any{"extra": 1}), field: "extra"},
		{name: "progress over 1", body: event(map[string]any{"status": "started", "data": json.RawMessage(`{"assetId":"a1","scenarioId":"s1","progress":1.01}`)}), field: "data.progress"},
		{name: "progress negative", body: event(map[string]any{"status": "started", "data": json.RawMessage(`{"assetId":"a1","scenarioId":"s1","progress":-0.1}`)}), field: "data.progress"},
		{name: "progress a string", body: event(map[string]any{"status": "started", "data": json.RawMessage(`{"assetId":"a1","scenarioId":"s1","progress":"50%"}`)}), field: "data.progress"},
		{name: "progress on a completed event", body: event(map[string]any{"status": "completed", "data": json.RawMessage(`{"assetId":"a1","scenarioId":"s1","progress":1}`)}), field: "data.progress"},
		{name: "progress message not a string", body: event(map[string]any{"status": "started", "data": json.RawMessage(`{"assetId":"a1","scenarioId":"s1","progress":0.5,"message":7}`)}), field: "data.message"},
		{name: "progress message too long", body: event(map[string]any{"status": "started", "data": json.RawMessage(`{"assetId":"a1","scenarioId":"s1","message":"` + strings.Repeat("m", MaxMessageLen+1) + `"}`)}), field: "data.message"},
		{name: "second of a batch", body: "[" + event(nil) + "," + event(map[string]any{"status": "x"}) + "]", field: "status", index: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := DecodeEvents([]byte(tt.body))
			if err == nil {
				t.Fatalf("DecodeEvents = %+v, want an error", got)
			}
			if got != nil {
				t.Errorf("DecodeEvents returned %d events with an error", len(got))
			}
			var verr *ValidationError
			isValidation := errors.As(err, &verr)
			if tt.kind != nil {
				if !errors.Is(err, tt.kind) || isValidation {
					t.Fatalf("err = %v (%T), want %v", err, err, tt.kind)
				}
				return
			}
			if !isValidation {
				t.Fatalf("err = %v (%T), want a *ValidationError", err, err)
			}
			if verr.Field != tt.field || verr.Index != tt.index {
				t.Errorf("err = %v: field %q index %d, want field %q index %d", err, verr.Field, verr.Index, tt.field, tt.index)
			}
			if errors.Is(err, ErrMalformed) {
				t.Errorf("a *ValidationError must not be ErrMalformed: %v", err)
			}
		})
	}
}

func TestDecodeEventsMaxBatch(t *testing.T) {
	t.Parallel()
	body := "[" + strings.Repeat(event(nil)+",", MaxBatch-1) + event(nil) + "]"
	got, err := DecodeEvents([]byte(body))
	if err != nil || len(got) != MaxBatch {
		t.Fatalf("DecodeEvents of %d events = %d, %v", MaxBatch, len(got), err)
	}
}

func TestAppendJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		ev   Event
		want string
	}{
		{
			name: "with data",
			ev: Event{
				Type: Matrix, JobID: "j-81", Status: Completed,
				Timestamp: time.Date(2026, 11, 27, 11, 0, 0, 123456789, time.FixedZone("CET", 3600)),
				Data:      json.RawMessage(`{"assetId":"a1","scenarioId":"s3"}`), AssetID: "a1", ScenarioID: "s3",
			},
			want: `{"type":"matrix","jobId":"j-81","status":"completed","timestamp":"2026-11-27T10:00:00.123Z","data":{"assetId":"a1","scenarioId":"s3"}}`,
		},
		{
			name: "without data",
			ev:   Event{Type: Growth, JobID: "g", Status: Queued, Timestamp: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)},
			want: `{"type":"growth","jobId":"g","status":"queued","timestamp":"2026-01-02T03:04:05.000Z"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			prefix := []byte("data: ")
			got := tt.ev.AppendJSON(prefix)
			if string(got) != "data: "+tt.want {
				t.Errorf("AppendJSON =\n%s\nwant\n%s", got, "data: "+tt.want)
			}
			m, err := tt.ev.MarshalJSON()
			if err != nil || string(m) != tt.want {
				t.Errorf("MarshalJSON = %s, %v", m, err)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	ok := Event{Type: Probability, JobID: "p", Status: Started, Data: json.RawMessage(`{"scenarioId":"s"}`), ScenarioID: "s"}
	tests := []struct {
		name  string
		edit  func(*Event)
		field string // "" for valid
	}{
		{name: "valid", edit: func(*Event) {}},
		{name: "zero type", edit: func(e *Event) { e.Type = 0 }, field: "type"},
		{name: "zero status", edit: func(e *Event) { e.Status = 0 }, field: "status"},
		{name: "bad id", edit: func(e *Event) { e.JobID = "a/b" }, field: "jobId"},
		{name: "data not an object", edit: func(e *Event) { e.Data = json.RawMessage(`[1]`) }, field: "data"},
		{name: "data with a newline", edit: func(e *Event) { e.Data = json.RawMessage("{\n}") }, field: "data"},
		{name: "missing scope", edit: func(e *Event) { e.ScenarioID = "" }, field: "data.scenarioId"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ev := ok
			tt.edit(&ev)
			err := ev.Validate()
			var verr *ValidationError
			switch {
			case tt.field == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tt.field != "" && (!errors.As(err, &verr) || verr.Field != tt.field):
				t.Fatalf("Validate = %v, want a *ValidationError on %s", err, tt.field)
			}
		})
	}
}

func TestCheckIDAndClip(t *testing.T) {
	t.Parallel()
	for _, id := range []string{"a", "A.b_c:d-9", strings.Repeat("x", MaxIDLen)} {
		if err := CheckID(id); err != nil {
			t.Errorf("CheckID(%q) = %v", id, err)
		}
	}
	for _, id := range []string{"", "a b", "a,b", "é", strings.Repeat("x", MaxIDLen+1)} {
		if CheckID(id) == nil {
			t.Errorf("CheckID(%q) = nil, want an error", id)
		}
	}
	// clip cuts on a rune boundary: 39 ASCII bytes then a 2-byte rune.
	s := strings.Repeat("a", 39) + "éé"
	if got := clip(s); got != strings.Repeat("a", 39)+"…" {
		t.Errorf("clip = %q", got)
	}
	err := (&ValidationError{Index: 2, Field: "data.assetId", Msg: "must be a string"}).Error()
	if want := "event 2: data.assetId: must be a string"; err != want {
		t.Errorf("Error() = %q, want %q", err, want)
	}
}

func TestTypeAndStatusNames(t *testing.T) {
	t.Parallel()
	for _, typ := range Types {
		if got, ok := ParseType(typ.String()); !ok || got != typ {
			t.Errorf("ParseType(%q) = %v, %v", typ.String(), got, ok)
		}
	}
	for _, st := range Statuses {
		if got, ok := ParseStatus(st.String()); !ok || got != st {
			t.Errorf("ParseStatus(%q) = %v, %v", st.String(), got, ok)
		}
	}
	if got := fmt.Sprint(Type(0), Status(9)); got != "Type(0) Status(9)" {
		t.Errorf("invalid names = %q", got)
	}
}

// TestDecodeRejectsInvalidUTF8: streams announce charset=utf-8, so bytes that
// are not UTF-8 never get into an event or a job.
func TestDecodeRejectsInvalidUTF8(t *testing.T) {
	body := []byte("{\"type\":\"growth\",\"jobId\":\"j-1\",\"status\":\"completed\",\"timestamp\":\"2026-11-27T10:00:00Z\",\"data\":{\"assetId\":\"a1\",\"x\":\"\xff\xfe\"}}")
	if _, err := DecodeEvents(body); !errors.Is(err, ErrMalformed) {
		t.Errorf("DecodeEvents: %v, want ErrMalformed", err)
	}
	if _, err := DecodeJob([]byte("{\"type\":\"growth\",\"assetId\":\"a1\",\"params\":{\"x\":\"\xc0\"}}")); !errors.Is(err, ErrMalformed) {
		t.Errorf("DecodeJob: %v, want ErrMalformed", err)
	}
}
