package jobs

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// The seed corpora are in testdata/fuzz/<FuzzName>/. Run a fuzzer with e.g.
//
//	go test -run='^$' -fuzz=FuzzDecodeEvents -fuzztime=30s ./jobs/

// FuzzDecodeEvents checks DecodeEvents on any body: it fails with one of its
// documented errors, or every event it returns is valid and encodes to one
// line of JSON that decodes back to the same event, byte for byte.
func FuzzDecodeEvents(f *testing.F) {
	f.Add([]byte(`{"type":"matrix","jobId":"j-81","status":"completed","timestamp":"2026-11-27T10:00:00.000Z","data":{"assetId":"a1","scenarioId":"s3"}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		evs, err := DecodeEvents(body)
		if err != nil {
			var verr *ValidationError
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooManyEvents) && !errors.As(err, &verr) {
				t.Fatalf("undocumented error %T: %v", err, err)
			}
			if evs != nil {
				t.Fatalf("%d events returned with an error", len(evs))
			}
			return
		}
		if len(evs) == 0 || len(evs) > MaxBatch {
			t.Fatalf("%d events and no error", len(evs))
		}
		for i := range evs {
			ev := &evs[i]
			if err := ev.Validate(); err != nil {
				t.Fatalf("event %d: decoded but invalid: %v", i, err)
			}
			line := ev.AppendJSON(nil)
			if !json.Valid(line) {
				t.Fatalf("event %d: AppendJSON is not valid JSON: %q", i, line)
			}
			if bytes.ContainsAny(line, "\r\n") {
				t.Fatalf("event %d: AppendJSON holds a line break: %q", i, line)
			}
			again, err := DecodeEvents(line)
			if err != nil {
				t.Fatalf("event %d: AppendJSON does not decode: %v\n%q", i, err, line)
			}
			if len(again) != 1 {
				t.Fatalf("event %d: AppendJSON decodes to %d events", i, len(again))
			}
			if line2 := again[0].AppendJSON(nil); !bytes.Equal(line, line2) {
				t.Fatalf("event %d: does not round-trip:\n%q\n%q", i, line, line2)
			}
			if again[0].AssetID != ev.AssetID || again[0].ScenarioID != ev.ScenarioID {
				t.Fatalf("event %d: scope %q/%q became %q/%q", i, ev.AssetID, ev.ScenarioID, again[0].AssetID, again[0].ScenarioID)
			}
			// The scope is what a browser reads from data, exactly. (Decode
			// data with UseNumber: JSON allows numbers, like 1e700, that a
			// float64 does not hold.)
			var top map[string]any
			if len(ev.Data) > 0 {
				dec := json.NewDecoder(bytes.NewReader(ev.Data))
				dec.UseNumber()
				if err := dec.Decode(&top); err != nil {
					t.Fatalf("event %d: data %q: %v", i, ev.Data, err)
				}
			}
			if s, _ := top["assetId"].(string); s != ev.AssetID {
				t.Fatalf("event %d: AssetID %q, data.assetId %v", i, ev.AssetID, top["assetId"])
			}
			if s, _ := top["scenarioId"].(string); s != ev.ScenarioID {
				t.Fatalf("event %d: ScenarioID %q, data.scenarioId %v", i, ev.ScenarioID, top["scenarioId"])
			}
		}
	})
}

// FuzzParseFilter checks ParseFilter on any query: it fails with
// ErrBadFilter and a one-line message, or the filter accepts an event built
// from the first value of each key present.
func FuzzParseFilter(f *testing.F) {
	f.Add(uint8(0b11111), "matrix,growth", "failed", "j-1", "a1,a2", "s1")
	f.Fuzz(func(t *testing.T, present uint8, types, statuses, jobs, assets, scenarios string) {
		values := [len(FilterKeys)]string{types, statuses, jobs, assets, scenarios}
		lookup := func(key string) (string, bool) {
			for i, k := range FilterKeys {
				if k == key {
					return values[i], present&(1<<i) != 0
				}
			}
			t.Fatalf("ParseFilter looked up %q", key)
			return "", false
		}
		flt, err := ParseFilter(lookup)
		if err != nil {
			if !errors.Is(err, ErrBadFilter) {
				t.Fatalf("error not ErrBadFilter: %v", err)
			}
			if strings.ContainsAny(err.Error(), "\r\n") {
				t.Fatalf("error holds a line break: %q", err)
			}
			if !flt.IsZero() {
				t.Fatalf("non-zero Filter with an error")
			}
			return
		}
		ev := Event{Type: Growth, Status: Queued, JobID: "none"}
		anyKey := false
		for i, key := range FilterKeys {
			if present&(1<<i) == 0 {
				continue
			}
			anyKey = true
			list := strings.Split(values[i], ",")
			if len(list) == 0 || len(list) > MaxFilterValues {
				t.Fatalf("%s: accepted %d values", key, len(list))
			}
			for _, v := range list {
				if err := checkFilterValue(key, v); err != nil {
					t.Fatalf("%s: accepted %q: %v", key, v, err)
				}
			}
			first := list[0]
			switch key {
			case "types":
				ev.Type, _ = ParseType(first)
			case "statuses":
				ev.Status, _ = ParseStatus(first)
			case "jobs":
				ev.JobID = first
			case "assets":
				ev.AssetID = first
			case "scenarios":
				ev.ScenarioID = first
			}
		}
		if flt.IsZero() == anyKey {
			t.Fatalf("IsZero = %v with keys present = %v", flt.IsZero(), anyKey)
		}
		if !flt.Match(&ev) {
			t.Fatalf("filter does not match %+v built from its own values", ev)
		}
	})
}

func checkFilterValue(key, v string) error {
	switch key {
	case "types":
		if _, ok := ParseType(v); !ok {
			return errors.New("not a type")
		}
	case "statuses":
		if _, ok := ParseStatus(v); !ok {
			return errors.New("not a status")
		}
	default:
		return CheckID(v)
	}
	return nil
}
