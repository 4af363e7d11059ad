package jobs

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// schemaTypes are the Go types the schema is built from.
func schemaTypes() []reflect.Type {
	ts := []reflect.Type{reflect.TypeFor[wireEvent](), reflect.TypeFor[eventData]()}
	for _, t := range Types {
		ts = append(ts, resultTypes[t])
	}
	return ts
}

// TestSchemaFieldDocs: every field of the types the schema is built from
// is described, and every description names a field: a field added,
// renamed or removed fails here until fieldDocs says what it is.
func TestSchemaFieldDocs(t *testing.T) {
	t.Parallel()
	fields := map[string]bool{}
	for _, st := range schemaTypes() {
		for i := range st.NumField() {
			name, _, _ := strings.Cut(st.Field(i).Tag.Get("json"), ",")
			key := st.Name() + "." + name
			fields[key] = true
			if fieldDocs[key] == "" {
				t.Errorf("%s (Go field %s) has no description in fieldDocs", key, st.Field(i).Name)
			}
		}
	}
	for key := range fieldDocs {
		if !fields[key] {
			t.Errorf("fieldDocs describes %s, which is no field", key)
		}
	}
	for _, kind := range Types {
		if kindDocs[kind] == "" {
			t.Errorf("%v has no kindDocs", kind)
		}
	}
}

// TestResultTypes: each kind's job returns the type the schema describes
// for its data.result.
func TestResultTypes(t *testing.T) {
	t.Parallel()
	for _, kind := range Types {
		job := Job{ID: "j-1", Type: kind, AssetID: "a1", ScenarioID: "s1"}
		res, err := compute(context.Background(), job, noProgress)
		if err != nil {
			t.Fatalf("%v: %v", kind, err)
		}
		if got := reflect.TypeOf(res); got != resultTypes[kind] {
			t.Errorf("%v computes a %v; the schema describes a %v", kind, got, resultTypes[kind])
		}
	}
}

// TestSchemaIDPattern: the schema's id pattern accepts exactly what
// CheckID accepts.
func TestSchemaIDPattern(t *testing.T) {
	t.Parallel()
	re := regexp.MustCompile(idPattern)
	ids := []string{"", "a", strings.Repeat("x", MaxIDLen), strings.Repeat("x", MaxIDLen+1), "é", "a b", "a,b"}
	for c := range 256 {
		ids = append(ids, string([]byte{byte(c)}), "id"+string([]byte{byte(c)}))
	}
	for _, id := range ids {
		if want, got := CheckID(id) == nil, re.MatchString(id); got != want {
			t.Errorf("id %q: the schema's pattern says %v, CheckID %v", id, got, want)
		}
	}
}

// TestSchemaLimits: the schema's bounds on a field accept what the hub
// accepts, and no more.
func TestSchemaLimits(t *testing.T) {
	t.Parallel()
	schema := decodeJSON(t, Schema())
	for _, progress := range []string{"-0.0001", "0", "0.5", "1", "1.0001", "-1", "2", "1e-9"} {
		body := `{"type":"growth","jobId":"j-1","status":"started","timestamp":"2026-11-27T10:00:00.000Z","data":{"assetId":"a1","progress":` + progress + `}}`
		_, err := DecodeEvents([]byte(body))
		hub := err == nil
		inSchema := validate(schema, schema, decodeJSON(t, []byte(body)), "$") == nil
		if hub != inSchema {
			t.Errorf("progress %s: the hub accepts it %v, the schema %v (%v)", progress, hub, inSchema, err)
		}
	}
}

// TestSchemaDescribesWhatTheHubSends: every event a worker sends, of each
// kind at each step, encoded as the hub sends it, is valid under the
// schema; so is the envelope and scope of every event the hub accepts from
// a publisher (the fuzz seeds). Events the hub would not send are not.
func TestSchemaDescribesWhatTheHubSends(t *testing.T) {
	t.Parallel()
	schema := decodeJSON(t, Schema())
	env := &workerEnv{}
	ts := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	wire := func(ev *Event) any { return decodeJSON(t, ev.AppendJSON(nil)) }

	valid := map[string]any{}
	for _, kind := range Types {
		job := Job{ID: "j-" + kind.String(), Type: kind}
		if kind.NeedsAsset() {
			job.AssetID = "a1"
		}
		if kind.NeedsScenario() {
			job.ScenarioID = "s1"
		}
		var progress []eventData // as the job reports it
		result, err := compute(context.Background(), job, func(fraction float64, message string) {
			progress = append(progress, eventData{Progress: &fraction, Message: message})
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(progress) == 0 {
			t.Fatalf("%v reported no progress", kind)
		}
		ms := int64(42)
		for name, step := range map[string]struct {
			st Status
			d  eventData
		}{
			"queued":            {Queued, eventData{}},
			"started":           {Started, eventData{}},
			"started again":     {Started, eventData{Attempt: 2}},
			"progress":          {Started, progress[len(progress)-1]},
			"completed":         {Completed, eventData{DurationMs: &ms, Result: result}},
			"failed":            {Failed, eventData{DurationMs: &ms, Error: "bad params: rows: 0 is not in [1, 50]"}},
			"failed, no result": {Failed, eventData{DurationMs: new(int64(0)), Error: "workers stopped"}},
		} {
			ev, err := env.tryEvent(job, step.st, ts, step.d)
			if err != nil {
				t.Fatal(err)
			}
			valid[kind.String()+" "+name] = wire(ev)
		}
	}
	// The fuzz seeds the hub accepts, with their data cut to the scope: a
	// publisher's own data fields are its business, the scope the hub's.
	seeds, _ := filepath.Glob("testdata/fuzz/FuzzDecodeEvents/*")
	accepted := 0
	for _, seed := range seeds {
		b, err := os.ReadFile(seed)
		if err != nil {
			t.Fatal(err)
		}
		_, lit, _ := strings.Cut(string(b), "[]byte(")
		body, err := strconv.Unquote(strings.TrimSuffix(strings.TrimSpace(lit), ")"))
		if err != nil {
			t.Fatalf("%s: %v", seed, err)
		}
		events, err := DecodeEvents([]byte(body))
		if err != nil {
			continue
		}
		for i, ev := range events {
			ev.Data, _ = json.Marshal(eventData{AssetID: ev.AssetID, ScenarioID: ev.ScenarioID})
			valid[fmt.Sprintf("seed %s #%d", filepath.Base(seed), i)] = wire(&ev)
			accepted++
		}
	}
	if accepted < 5 {
		t.Fatalf("only %d events from the fuzz seeds: are they still where this test looks?", accepted)
	}
	for name, v := range valid {
		if err := validate(schema, schema, v, "$"); err != nil {
			t.Errorf("%s: %v\n%s", name, err, encodeJSON(v))
		}
	}

	// What the hub never sends.
	base := valid["matrix completed"]
	for _, tc := range []struct {
		name   string
		change func(ev map[string]any)
	}{
		{"an unknown type", func(ev map[string]any) { ev["type"] = "forecast" }},
		{"an unknown status", func(ev map[string]any) { ev["status"] = "running" }},
		{"an id field", func(ev map[string]any) { ev["id"] = "7" }},
		{"no timestamp", func(ev map[string]any) { delete(ev, "timestamp") }},
		{"a timestamp with an offset", func(ev map[string]any) { ev["timestamp"] = "2026-11-27T10:00:00.000+01:00" }},
		{"a job id with a space", func(ev map[string]any) { ev["jobId"] = "j 1" }},
		{"no data", func(ev map[string]any) { delete(ev, "data") }},
		{"a matrix event without its scenario", func(ev map[string]any) { delete(data(ev), "scenarioId") }},
		{"a growth result on a matrix event", func(ev map[string]any) { data(ev)["result"] = data(valid["growth completed"])["result"] }},
		{"a result with a field more", func(ev map[string]any) { data(ev)["result"].(map[string]any)["median"] = 1 }},
		{"a result with a field less", func(ev map[string]any) { delete(data(ev)["result"].(map[string]any), "mean") }},
		{"a fractional duration", func(ev map[string]any) { data(ev)["durationMs"] = json.Number("1.5") }},
		{"a progress over 1", func(ev map[string]any) { data(ev)["progress"] = json.Number("1.5") }},
	} {
		ev := decodeJSON(t, []byte(encodeJSON(base))).(map[string]any)
		tc.change(ev)
		if err := validate(schema, schema, ev, "$"); err == nil {
			t.Errorf("%s: valid under the schema", tc.name)
		}
	}
	growth := decodeJSON(t, []byte(encodeJSON(valid["growth completed"]))).(map[string]any)
	growth["data"].(map[string]any)["result"].(map[string]any)["values"] = []any{json.Number("1"), "2"}
	if validate(schema, schema, growth, "$") == nil {
		t.Error("growth values holding a string: valid under the schema")
	}
	probability := decodeJSON(t, []byte(encodeJSON(valid["probability completed"]))).(map[string]any)
	probability["data"].(map[string]any)["result"].(map[string]any)["ci95"] = []any{json.Number("0.1")}
	if validate(schema, schema, probability, "$") == nil {
		t.Error("a ci95 of one number: valid under the schema")
	}
}

func data(ev any) map[string]any { return ev.(map[string]any)["data"].(map[string]any) }

func decodeJSON(t *testing.T, b []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	return v
}

func encodeJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// validate checks v against schema s, for the part of JSON Schema 2020-12
// that Schema uses. A keyword it does not know is an error, so the schema
// cannot grow a constraint this test silently ignores.
func validate(root, s, v any, path string) error {
	obj, ok := s.(map[string]any)
	if !ok {
		return fmt.Errorf("%s: schema %v is not an object", path, s)
	}
	for key, want := range obj {
		var err error
		switch key {
		case "$schema", "title", "description", "$comment", "$defs", "format":
		case "$ref":
			name, ok := strings.CutPrefix(want.(string), "#/$defs/")
			def := root.(map[string]any)["$defs"].(map[string]any)[name]
			if !ok || def == nil {
				return fmt.Errorf("%s: unresolved $ref %v", path, want)
			}
			err = validate(root, def, v, path)
		case "oneOf":
			n := 0
			for _, sub := range want.([]any) {
				if validate(root, sub, v, path) == nil {
					n++
				}
			}
			if n != 1 {
				err = fmt.Errorf("%s: matches %d of oneOf, want 1", path, n)
			}
		case "const":
			if !reflect.DeepEqual(v, want) {
				err = fmt.Errorf("%s: %v, want %v", path, v, want)
			}
		case "enum":
			found := false
			for _, e := range want.([]any) {
				found = found || reflect.DeepEqual(v, e)
			}
			if !found {
				err = fmt.Errorf("%s: %v is not one of %v", path, v, want)
			}
		case "type":
			err = checkType(want.(string), v, path)
		case "pattern":
			if s, ok := v.(string); ok && !regexp.MustCompile(want.(string)).MatchString(s) {
				err = fmt.Errorf("%s: %q does not match %s", path, s, want)
			}
		case "minimum", "maximum":
			if n, ok := v.(json.Number); ok {
				x, _ := new(big.Float).SetString(n.String())
				m, _ := new(big.Float).SetString(fmt.Sprint(want))
				if key == "minimum" && x.Cmp(m) < 0 || key == "maximum" && x.Cmp(m) > 0 {
					err = fmt.Errorf("%s: %v is out of %s %v", path, n, key, want)
				}
			}
		case "properties":
			m, ok := v.(map[string]any)
			if !ok {
				break
			}
			for name, sub := range want.(map[string]any) {
				if pv, ok := m[name]; ok {
					if err := validate(root, sub, pv, path+"."+name); err != nil {
						return err
					}
				}
			}
		case "required":
			m, ok := v.(map[string]any)
			if !ok {
				break
			}
			for _, name := range want.([]any) {
				if _, ok := m[name.(string)]; !ok {
					err = fmt.Errorf("%s: no %s", path, name)
				}
			}
		case "additionalProperties":
			m, ok := v.(map[string]any)
			if !ok || want == true {
				break
			}
			props, _ := obj["properties"].(map[string]any)
			for name := range m {
				if _, ok := props[name]; !ok {
					err = fmt.Errorf("%s: unexpected %s", path, name)
				}
			}
		case "items":
			a, ok := v.([]any)
			if !ok {
				break
			}
			for i, item := range a {
				if err := validate(root, want, item, fmt.Sprintf("%s[%d]", path, i)); err != nil {
					return err
				}
			}
		case "minItems", "maxItems":
			a, ok := v.([]any)
			n, _ := strconv.Atoi(fmt.Sprint(want))
			if ok && (key == "minItems" && len(a) < n || key == "maxItems" && len(a) > n) {
				err = fmt.Errorf("%s: %d items, %s %d", path, len(a), key, n)
			}
		default:
			return fmt.Errorf("%s: the test's validator does not know the keyword %q", path, key)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func checkType(want string, v any, path string) error {
	ok := false
	switch want {
	case "object":
		_, ok = v.(map[string]any)
	case "array":
		_, ok = v.([]any)
	case "string":
		_, ok = v.(string)
	case "boolean":
		_, ok = v.(bool)
	case "number":
		_, ok = v.(json.Number)
	case "integer":
		if n, isNum := v.(json.Number); isNum {
			_, err := strconv.ParseInt(n.String(), 10, 64)
			_, uerr := strconv.ParseUint(n.String(), 10, 64)
			ok = err == nil || uerr == nil
		}
	}
	if !ok {
		return fmt.Errorf("%s: %s is not a %s", path, encodeJSON(v), want)
	}
	return nil
}
