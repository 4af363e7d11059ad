package jobs

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync"
)

// The JSON Schema of a JobEvent as the hub sends it: the data line of an
// SSE `event: job` frame, and each job's event in GET /api/jobs. It is the
// one description of the wire format that clients in other languages are
// built from (clients/js generates its TypeScript types from it), so it is
// not written by hand: it is built by reflection over the Go types that
// make the JSON (wireEvent, eventData, each kind's result type), with the
// constraints the validation code enforces (the kinds, the statuses, the id
// charset, which scope each kind needs). A field added to or removed from
// one of those types changes the schema, and jobs/schema_test.go fails
// until the field is described here.
//
// `eventhub schema` prints it; clients/js/schema/jobevent.schema.json is a
// copy that cmd/eventhub's tests keep equal to it.

// resultTypes is the Go type of what each kind's job computes: the
// data.result of its completed event. TestResultTypes checks that each
// kind's job returns exactly this type.
var resultTypes = [...]reflect.Type{
	Matrix:      reflect.TypeFor[matrixResult](),
	Growth:      reflect.TypeFor[growthResult](),
	Probability: reflect.TypeFor[probabilityResult](),
}

// kindDocs says what each kind computes, for its schema definitions.
var kindDocs = [...]string{
	Matrix:      "a value grid for an asset under a scenario: rows horizon steps by cols stress levels",
	Growth:      "the compound growth of an asset's value, year by year",
	Probability: "the probability, by Monte Carlo, that a scenario's value reaches a target",
}

// fieldDocs describes each field of the types the schema is built from, by
// Go type and JSON name. Every field must have one, and each entry must
// name a field (TestSchemaFieldDocs).
var fieldDocs = map[string]string{
	"wireEvent.type":      "The kind of job.",
	"wireEvent.jobId":     "The job's id.",
	"wireEvent.status":    "The step of the job this event reports.",
	"wireEvent.timestamp": "When the step happened, in UTC with milliseconds.",
	"wireEvent.data":      "The event's scope, and what the step adds.",

	"eventData.assetId":    "The asset the job is about: part of the event's scope.",
	"eventData.scenarioId": "The scenario the job is about: part of the event's scope.",
	"eventData.durationMs": "On completed and failed: how long the job ran, in milliseconds.",
	"eventData.result":     "On completed: what the job computed.",
	"eventData.error":      "On failed: why the job failed.",
	"eventData.attempt":    "On started, when the job runs again because the node that had it went away: which attempt this is (2 for the second).",
	"eventData.progress":   "On started only, published again as the job runs: how far it got, from 0 to 1.",
	"eventData.message":    "On started, with progress: what the job is doing, for people; at most 200 bytes in UTF-8.",

	"matrixResult.rows": "Rows of the grid: horizon steps.",
	"matrixResult.cols": "Columns of the grid: stress levels.",
	"matrixResult.min":  "The smallest value of the grid.",
	"matrixResult.max":  "The largest value of the grid.",
	"matrixResult.mean": "The mean value of the grid.",
	"matrixResult.grid": "The whole grid, rows of cols values, when it has at most 400 cells; larger grids are summarised only.",

	"growthResult.values":      "The value at the start (index 0) and at the end of each year, rounded to cents.",
	"growthResult.final":       "The value at the end of the last year.",
	"growthResult.contributed": "The principal plus the contributions.",
	"growthResult.gain":        "final minus contributed.",

	"probabilityResult.probability": "The Monte Carlo estimate of the probability that the value after years is at least target.",
	"probabilityResult.ci95":        "The estimate's 95% Wilson score interval: [low, high].",
	"probabilityResult.hits":        "Trials that reached the target.",
	"probabilityResult.trials":      "Trials run.",
	"probabilityResult.analytic":    "The closed-form probability, for comparison.",
}

// fieldLimits are the bounds the validation code puts on a field beyond its
// JSON type (Event.checkProgress); TestSchemaLimits checks each against
// DecodeEvents.
var fieldLimits = map[string]object{
	"eventData.progress": object{}.set("minimum", 0).set("maximum", 1),
}

const (
	schemaDialect = "https://json-schema.org/draft/2020-12/schema"
	// idPattern is what CheckID accepts (TestSchemaIDPattern).
	idPattern = `^[A-Za-z0-9._:-]{1,128}$`
	// timestampPattern is what AppendJSON writes with timeLayout, in UTC.
	timestampPattern = `^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$`
)

// Schema returns the JSON Schema (draft 2020-12) of a JobEvent as the hub
// sends it, indented, ending with a newline. The bytes are built once and
// shared: the caller must not modify them. It is safe for concurrent use.
func Schema() []byte { return schemaOnce() }

var schemaOnce = sync.OnceValue(func() []byte {
	b, err := json.MarshalIndent(buildSchema(), "", "  ")
	if err != nil {
		panic("BUG: jobs: schema does not encode: " + err.Error())
	}
	return append(b, '\n')
})

// object is a JSON object that keeps its keys in the order they were set,
// so the schema reads in the order of the Go fields.
type object []member

type member struct {
	key   string
	value any
}

func (o object) set(key string, value any) object { return append(o, member{key, value}) }

func (o object) MarshalJSON() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, m := range o {
		if i > 0 {
			buf.WriteByte(',')
		}
		k, _ := json.Marshal(m.key)
		buf.Write(k)
		buf.WriteByte(':')
		v, err := json.Marshal(m.value)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", m.key, err)
		}
		buf.Write(v)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

func ref(def string) object { return object{}.set("$ref", "#/$defs/"+def) }

// kindName is a kind's name as it starts its definitions: "Matrix".
func kindName(t Type) string { return strings.ToUpper(t.String()[:1]) + t.String()[1:] }

func buildSchema() object {
	var typeNames, statusNames, variants []any
	for _, t := range Types {
		typeNames = append(typeNames, t.String())
		variants = append(variants, ref(kindName(t)+"Event"))
	}
	for _, s := range Statuses {
		statusNames = append(statusNames, s.String())
	}
	defs := object{}.
		set("JobType", object{}.
			set("description", "The kind of a job: what it computes, and which scope its events carry.").
			set("enum", typeNames)).
		set("JobStatus", object{}.
			set("description", "A step in a job's life, in the order a job goes through them: queued, started, then completed or failed.").
			set("enum", statusNames)).
		set("Id", object{}.
			set("description", fmt.Sprintf("A job, asset or scenario id: 1 to %d characters of [A-Za-z0-9._:-], so it needs no escaping in a filter, a URL or JSON.", MaxIDLen)).
			set("type", "string").
			set("pattern", idPattern)).
		set("Timestamp", object{}.
			set("description", "An RFC 3339 time in UTC with milliseconds: 2026-11-27T10:00:00.000Z.").
			set("type", "string").
			set("format", "date-time").
			set("pattern", timestampPattern))
	for _, t := range Types {
		name := kindName(t)
		defs = defs.
			set(name+"Event", eventSchema(t)).
			set(name+"Data", dataSchema(t)).
			set(name+"Result", structSchema(resultTypes[t], object{}.
				set("description", fmt.Sprintf("What a %s job computed (%s): the data.result of its completed event.", t, kindDocs[t])), false, nil))
	}
	return object{}.
		set("$schema", schemaDialect).
		set("title", "JobEvent").
		set("description", "One step of one job, as eventhub sends it: the data of an SSE `event: job` frame, and each job's `event` in GET /api/jobs. "+
			"Its event id is not part of it: the frame's `id:` field, or the job's `eventId` in GET /api/jobs, carries it (a uint64, in decimal). "+
			"The hub checks the envelope and each kind's scope; the other fields of data are what the hub's own workers write, and other publishers should write them the same way.").
		set("$comment", "Generated from eventhub's Go types by `eventhub schema` (package jobs); do not edit.").
		set("oneOf", variants).
		set("$defs", defs)
}

// eventSchema is the schema of a kind's events: the fields of wireEvent.
func eventSchema(t Type) object {
	scoped := t.NeedsAsset() || t.NeedsScenario()
	return structSchema(reflect.TypeFor[wireEvent](), object{}.
		set("description", fmt.Sprintf("An event of a %s job (%s).", t, kindDocs[t])), false,
		func(name string) (object, bool, bool) {
			switch name {
			case "type":
				return object{}.set("const", t.String()), true, true
			case "jobId":
				return ref("Id"), true, true
			case "status":
				return ref("JobStatus"), true, true
			case "timestamp":
				return ref("Timestamp"), true, true
			case "data":
				// Optional in general, but every kind needs a scope, and
				// the scope is in data.
				return ref(kindName(t) + "Data"), scoped, true
			}
			return nil, false, false
		})
}

// dataSchema is the schema of a kind's event data: the fields of eventData,
// with the scope the kind needs required and its result type. Publishers
// may add fields of their own.
func dataSchema(t Type) object {
	var scope []string
	if t.NeedsAsset() {
		scope = append(scope, "assetId")
	}
	if t.NeedsScenario() {
		scope = append(scope, "scenarioId")
	}
	return structSchema(reflect.TypeFor[eventData](), object{}.
		set("description", fmt.Sprintf("The data of a %s job's events: its scope (%s, required), then what each step adds. Publishers may add fields of their own.",
			t, strings.Join(scope, " and "))), true,
		func(name string) (object, bool, bool) {
			switch name {
			case "assetId":
				return ref("Id"), t.NeedsAsset(), true
			case "scenarioId":
				return ref("Id"), t.NeedsScenario(), true
			case "result":
				return ref(kindName(t) + "Result"), false, true
			}
			return nil, false, false
		})
}

// structSchema describes struct type st as a JSON object: head, then a
// property per field, in field order, as encoding/json writes it, described
// by fieldDocs; required unless omitempty; other properties allowed only
// when open. override, if not nil, gives the schema of a field instead (ok)
// and whether it is required.
func structSchema(st reflect.Type, head object, open bool, override func(name string) (s object, required, ok bool)) object {
	props := object{}
	var required []string
	for i := range st.NumField() {
		f := st.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if f.Anonymous || name == "" || name == "-" {
			panic(fmt.Sprintf("BUG: jobs: schema: %s.%s needs a json name", st.Name(), f.Name))
		}
		var s object
		var req, ok bool
		if override != nil {
			s, req, ok = override(name)
		}
		if !ok {
			s = valueSchema(f.Type, st.Name()+"."+name)
			s = append(s, fieldLimits[st.Name()+"."+name]...)
			req = !strings.Contains(","+opts+",", ",omitempty,")
		}
		if doc := fieldDocs[st.Name()+"."+name]; doc != "" {
			s = append(object{}.set("description", doc), s...)
		}
		props = props.set(name, s)
		if req {
			required = append(required, name)
		}
	}
	out := append(object{}, head...).set("type", "object").set("properties", props)
	if len(required) > 0 {
		out = out.set("required", required)
	}
	return out.set("additionalProperties", open)
}

// valueSchema describes what encoding/json writes for a value of type t.
// where names the field, for the panic on a type it cannot describe.
func valueSchema(t reflect.Type, where string) object {
	switch t.Kind() {
	case reflect.Pointer: // a field that may be absent: with omitempty, nil is left out
		return valueSchema(t.Elem(), where)
	case reflect.String:
		return object{}.set("type", "string")
	case reflect.Bool:
		return object{}.set("type", "boolean")
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return object{}.set("type", "integer")
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return object{}.set("type", "integer").set("minimum", 0)
	case reflect.Float32, reflect.Float64:
		return object{}.set("type", "number")
	case reflect.Slice:
		return object{}.set("type", "array").set("items", valueSchema(t.Elem(), where))
	case reflect.Array:
		return object{}.set("type", "array").set("items", valueSchema(t.Elem(), where)).
			set("minItems", t.Len()).set("maxItems", t.Len())
	}
	panic(fmt.Sprintf("BUG: jobs: schema: %s is a %v, which the schema cannot describe: add an override", where, t))
}
