package jobs

import (
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestNewJobID(t *testing.T) {
	t.Parallel()
	re := regexp.MustCompile(`^j-[0-9a-f]{16}$`)
	seen := map[string]bool{}
	for range 100 {
		id := NewJobID()
		if !re.MatchString(id) {
			t.Fatalf("NewJobID() = %q, want j- and 16 hex digits", id)
		}
		if err := CheckID(id); err != nil {
			t.Fatalf("CheckID(%q) = %v", id, err)
		}
		if seen[id] {
			t.Fatalf("NewJobID repeated %q", id)
		}
		seen[id] = true
	}
}

func TestDecodeJob(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body string
		want Job
	}{
		{
			name: "matrix",
			body: `{"type":"matrix","assetId":"a1","scenarioId":"s1","params":{"rows": 3, "cols": 4}}`,
			want: Job{Type: Matrix, AssetID: "a1", ScenarioID: "s1", Params: []byte(`{"rows":3,"cols":4}`)},
		},
		{
			name: "growth without params",
			body: `{"type":"growth","assetId":"a1"}`,
			want: Job{Type: Growth, AssetID: "a1"},
		},
		{
			name: "probability with null params",
			body: ` {"type":"probability","scenarioId":"s-2","params":null} `,
			want: Job{Type: Probability, ScenarioID: "s-2"},
		},
		{
			name: "empty params",
			body: `{"type":"growth","assetId":"a1","params":{ }}`,
			want: Job{Type: Growth, AssetID: "a1", Params: []byte(`{}`)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := DecodeJob([]byte(tt.body))
			if err != nil {
				t.Fatalf("DecodeJob: %v", err)
			}
			if got.ID != "" || got.User != "" || got.Type != tt.want.Type || got.AssetID != tt.want.AssetID ||
				got.ScenarioID != tt.want.ScenarioID || string(got.Params) != string(tt.want.Params) {
				t.Errorf("DecodeJob = %+v (params %s), want %+v (params %s)", got, got.Params, tt.want, tt.want.Params)
			}
		})
	}
}

func TestDecodeJobInvalid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		body  string
		field string // "" for ErrMalformed
	}{
		{name: "empty", body: ""},
		{name: "not json", body: "type=growth"},
		{name: "array", body: `[{"type":"growth","assetId":"a1"}]`},
		{name: "truncated", body: `{"type":"growth"`},
		{name: "trailing data", body: `{"type":"growth","assetId":"a1"}{}`},
		{name: "missing type", body: `{"assetId":"a1"}`, field: "type"},
		{name: "unknown type", body: `{"type":"cube","assetId":"a1"}`, field: "type"},
		{name: "type not a string", body: `{"type":1,"assetId":"a1"}`, field: "type"},
		{name: "unknown field", body: `{"type":"growth","assetId":"a1","user":"mallory"}`, field: "user"},
		{name: "id field refused", body: `{"type":"growth","assetId":"a1","id":"j-1"}`, field: "id"},
		{name: "growth without asset", body: `{"type":"growth"}`, field: "assetId"},
		{name: "matrix without scenario", body: `{"type":"matrix","assetId":"a1"}`, field: "scenarioId"},
		{name: "matrix without asset", body: `{"type":"matrix","scenarioId":"s1"}`, field: "assetId"},
		{name: "probability without scenario", body: `{"type":"probability"}`, field: "scenarioId"},
		{name: "growth with a scenario", body: `{"type":"growth","assetId":"a1","scenarioId":"s1"}`, field: "scenarioId"},
		{name: "probability with an asset", body: `{"type":"probability","assetId":"a1","scenarioId":"s1"}`, field: "assetId"},
		{name: "assetId not a string", body: `{"type":"growth","assetId":7}`, field: "assetId"},
		{name: "assetId charset", body: `{"type":"growth","assetId":"a 1"}`, field: "assetId"},
		{name: "scenarioId too long", body: `{"type":"probability","scenarioId":"` + strings.Repeat("s", MaxIDLen+1) + `"}`, field: "scenarioId"},
		{name: "params an array", body: `{"type":"growth","assetId":"a1","params":[1]}`, field: "params"},
		{name: "params a number", body: `{"type":"growth","assetId":"a1","params":1}`, field: "params"},
		{name: "params too large", body: `{"type":"growth","assetId":"a1","params":{"x":"` + strings.Repeat("x", MaxDataSize) + `"}}`, field: "params"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := DecodeJob([]byte(tt.body))
			if err == nil {
				t.Fatalf("DecodeJob = %+v, want an error", got)
			}
			var verr *ValidationError
			if tt.field == "" {
				if !errors.Is(err, ErrMalformed) || errors.As(err, &verr) {
					t.Fatalf("err = %v (%T), want ErrMalformed", err, err)
				}
				return
			}
			if !errors.As(err, &verr) || verr.Field != tt.field {
				t.Fatalf("err = %v (%T), want a *ValidationError on %s", err, err, tt.field)
			}
		})
	}
}

func TestWithDelay(t *testing.T) {
	job := WithDelay(Job{Type: Growth, Params: json.RawMessage(`{"years":3}`)}, 1500*time.Millisecond)
	var p map[string]int
	if err := json.Unmarshal(job.Params, &p); err != nil || p["years"] != 3 || p["delayMs"] != 1500 {
		t.Fatalf("params %s: %v", job.Params, err)
	}
	if job := WithDelay(Job{Type: Growth}, time.Hour); !strings.Contains(string(job.Params), `"delayMs":10000`) {
		t.Fatalf("uncapped: %s", job.Params)
	}
}
