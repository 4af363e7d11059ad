package jobs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Type is a job kind.
type Type uint8

// The job kinds. The zero Type is invalid, so a forgotten field never passes
// for a real kind.
const (
	Matrix Type = iota + 1
	Growth
	Probability
)

var typeNames = [...]string{Matrix: "matrix", Growth: "growth", Probability: "probability"}

// Types lists every valid Type, in a stable order.
var Types = [...]Type{Matrix, Growth, Probability}

func (t Type) String() string {
	if t.Valid() {
		return typeNames[t]
	}
	return fmt.Sprintf("Type(%d)", uint8(t))
}

// Valid reports whether t is one of the job kinds.
func (t Type) Valid() bool { return t >= Matrix && t <= Probability }

// ParseType returns the Type named s, or false.
func ParseType(s string) (Type, bool) {
	for _, t := range Types {
		if typeNames[t] == s {
			return t, true
		}
	}
	return 0, false
}

// NeedsAsset reports whether events of this kind must carry data.assetId.
func (t Type) NeedsAsset() bool { return t == Matrix || t == Growth }

// NeedsScenario reports whether events of this kind must carry data.scenarioId.
func (t Type) NeedsScenario() bool { return t == Matrix || t == Probability }

// Status is a step in a job's life.
type Status uint8

// The job statuses; the zero Status is invalid.
const (
	Queued Status = iota + 1
	Started
	Completed
	Failed
)

var statusNames = [...]string{Queued: "queued", Started: "started", Completed: "completed", Failed: "failed"}

// Statuses lists every valid Status, in the order a job goes through them.
var Statuses = [...]Status{Queued, Started, Completed, Failed}

func (s Status) String() string {
	if s.Valid() {
		return statusNames[s]
	}
	return fmt.Sprintf("Status(%d)", uint8(s))
}

// Valid reports whether s is one of the statuses.
func (s Status) Valid() bool { return s >= Queued && s <= Failed }

// ParseStatus returns the Status named s, or false.
func ParseStatus(s string) (Status, bool) {
	for _, st := range Statuses {
		if statusNames[st] == s {
			return st, true
		}
	}
	return 0, false
}

// Limits of an event, as docs/architecture.md states them to clients.
const (
	MaxIDLen    = 128      // jobId, assetId, scenarioId
	MaxDataSize = 64 << 10 // data, encoded compactly
	MaxBatch    = 1000     // events in one POST /api/events
	timeLayout  = "2006-01-02T15:04:05.000Z07:00"
)

// Event is one step of one job. A decoded or constructed-and-validated Event
// is immutable: it is shared by every actor that routes it.
type Event struct {
	Type      Type
	JobID     string
	Status    Status
	Timestamp time.Time // UTC
	// Data is a compact JSON object (no insignificant white space, so never a
	// raw CR or LF), or nil.
	Data json.RawMessage
	// AssetID and ScenarioID are the event's scope, copied from Data. Empty
	// means the event does not carry that scope.
	AssetID    string
	ScenarioID string
}

// wireEvent is the JSON shape of an event as clients send it.
type wireEvent struct {
	Type      string          `json:"type"`
	JobID     string          `json:"jobId"`
	Status    string          `json:"status"`
	Timestamp string          `json:"timestamp"`
	Data      json.RawMessage `json:"data"`
}

// DecodeEvents decodes a body holding one JobEvent object or a JSON array of
// them, and validates every event. It returns ErrMalformed (wrapped) when the
// body is not such JSON, ErrTooManyEvents for a batch over MaxBatch, and a
// *ValidationError naming the first invalid field. On any error no event is
// returned: a batch is all-or-nothing.
func DecodeEvents(body []byte) ([]Event, error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil, fmt.Errorf("%w: empty body", ErrMalformed)
	}
	if !utf8.Valid(body) {
		// encoding/json would pass invalid bytes through to every stream,
		// which announces charset=utf-8.
		return nil, fmt.Errorf("%w: not UTF-8", ErrMalformed)
	}
	var raws []json.RawMessage
	switch body[0] {
	case '{':
		raws = []json.RawMessage{body}
	case '[':
		if err := json.Unmarshal(body, &raws); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		if len(raws) == 0 {
			return nil, fmt.Errorf("%w: empty array", ErrMalformed)
		}
		if len(raws) > MaxBatch {
			return nil, fmt.Errorf("%w: %d > %d", ErrTooManyEvents, len(raws), MaxBatch)
		}
	default:
		return nil, fmt.Errorf("%w: want an object or an array of objects", ErrMalformed)
	}
	events := make([]Event, len(raws))
	for i, raw := range raws {
		if err := decodeOne(raw, i, &events[i]); err != nil {
			return nil, err
		}
	}
	return events, nil
}

func decodeOne(raw []byte, i int, ev *Event) error {
	var w wireEvent
	if err := decodeObject(raw, i, "event", &w); err != nil {
		return err
	}
	return w.validate(i, ev)
}

// decodeObject decodes raw, which must hold exactly one JSON object and
// nothing after it, into dst with unknown fields rejected. what names the
// object in ErrMalformed messages. A field of the wrong JSON type or an
// unknown field is a *ValidationError; anything else is ErrMalformed.
func decodeObject(raw []byte, i int, what string, dst any) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return fmt.Errorf("%w: %s %d is not an object", ErrMalformed, what, i)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			return &ValidationError{Index: i, Field: typeErr.Field, Msg: "must be a " + typeErr.Type.String()}
		}
		if strings.HasPrefix(err.Error(), "json: unknown field ") {
			return &ValidationError{Index: i, Field: strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`), Msg: "unknown field"}
		}
		return fmt.Errorf("%w: %s %d: %v", ErrMalformed, what, i, err)
	}
	// A Decoder stops after the first value: without this check a single
	// object followed by anything ("{…}{…}", "{…}]") would be accepted.
	if dec.InputOffset() != int64(len(raw)) {
		return fmt.Errorf("%w: %s %d: data after the object", ErrMalformed, what, i)
	}
	return nil
}

func (w *wireEvent) validate(i int, ev *Event) error {
	bad := func(field, msg string) error { return &ValidationError{Index: i, Field: field, Msg: msg} }
	t, ok := ParseType(w.Type)
	if !ok {
		return bad("type", fmt.Sprintf("unknown type %q (want matrix, growth or probability)", clip(w.Type)))
	}
	st, ok := ParseStatus(w.Status)
	if !ok {
		return bad("status", fmt.Sprintf("unknown status %q (want queued, started, completed or failed)", clip(w.Status)))
	}
	if err := CheckID(w.JobID); err != nil {
		return bad("jobId", err.Error())
	}
	ts, err := time.Parse(time.RFC3339Nano, w.Timestamp)
	if err != nil {
		return bad("timestamp", fmt.Sprintf("not an RFC 3339 time: %q", clip(w.Timestamp)))
	}
	// An offset can move a time at either end of RFC 3339's four-digit
	// years out of them once in UTC ("0000-01-01T00:00:00+01:00" is year
	// -1), and AppendJSON could not write it back as RFC 3339.
	if y := ts.UTC().Year(); y < 0 || y > 9999 {
		return bad("timestamp", fmt.Sprintf("year %d in UTC is outside 0000-9999", y))
	}
	*ev = Event{Type: t, JobID: w.JobID, Status: st, Timestamp: ts.UTC()}
	if len(w.Data) > 0 && !bytes.Equal(w.Data, []byte("null")) {
		if err := ev.setData(w.Data); err != nil {
			err.Index = i
			return err
		}
	}
	if err := ev.checkScope(); err != nil {
		err.Index = i
		return err
	}
	return nil
}

// setData compacts data into ev.Data and copies its scope ids out.
func (ev *Event) setData(data []byte) *ValidationError {
	if data[0] != '{' {
		return &ValidationError{Field: "data", Msg: "must be an object"}
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, data); err != nil {
		return &ValidationError{Field: "data", Msg: "invalid json"}
	}
	if buf.Len() > MaxDataSize {
		return &ValidationError{Field: "data", Msg: fmt.Sprintf("%d bytes encoded, over the %d limit", buf.Len(), MaxDataSize)}
	}
	// A map, not a struct: encoding/json matches struct fields without
	// regard to case, so {"AssetId":"a2"} would scope the event to a2 while
	// a browser reading data.assetId sees nothing (and {"assetId":"a1",
	// "ASSETID":"a2"} would route by a2 and display a1). Map keys match
	// exactly, and a repeated key keeps its last value, as JSON.parse does.
	var top map[string]json.RawMessage
	if err := json.Unmarshal(buf.Bytes(), &top); err != nil {
		return &ValidationError{Field: "data", Msg: "invalid json"}
	}
	var err *ValidationError
	if ev.AssetID, err = scopeID("data.assetId", top["assetId"]); err != nil {
		return err
	}
	if ev.ScenarioID, err = scopeID("data.scenarioId", top["scenarioId"]); err != nil {
		return err
	}
	if err := ev.checkProgress(top["progress"], top["message"]); err != nil {
		return err
	}
	ev.Data = buf.Bytes()
	return nil
}

// MaxMessageLen bounds data.message of a progress event, in bytes.
const MaxMessageLen = 200

// checkProgress checks data.progress, a number from 0 to 1 that only a
// started event may carry (a job reports how far it got by publishing
// started again), and, on a started event, data.message: a string of at
// most MaxMessageLen bytes. ev.Status must be set.
func (ev *Event) checkProgress(progress, message json.RawMessage) *ValidationError {
	if progress != nil && string(progress) != "null" {
		if ev.Status != Started {
			return &ValidationError{Field: "data.progress", Msg: "only a started event reports progress"}
		}
		var p float64
		if err := json.Unmarshal(progress, &p); err != nil || p < 0 || p > 1 {
			return &ValidationError{Field: "data.progress", Msg: "must be a number from 0 to 1"}
		}
	}
	if ev.Status == Started && message != nil && string(message) != "null" {
		var m string
		if err := json.Unmarshal(message, &m); err != nil {
			return &ValidationError{Field: "data.message", Msg: "must be a string"}
		}
		if len(m) > MaxMessageLen {
			return &ValidationError{Field: "data.message", Msg: fmt.Sprintf("longer than %d bytes", MaxMessageLen)}
		}
	}
	return nil
}

func scopeID(field string, raw json.RawMessage) (string, *ValidationError) {
	if raw == nil || string(raw) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", &ValidationError{Field: field, Msg: "must be a string"}
	}
	if err := CheckID(s); err != nil {
		return "", &ValidationError{Field: field, Msg: err.Error()}
	}
	return s, nil
}

// checkScope rejects at ingest an event missing a scope its type needs, so
// the RBAC rule (authz.Permissions.Allows) can rely on every scope being there.
func (ev *Event) checkScope() *ValidationError {
	if ev.Type.NeedsAsset() && ev.AssetID == "" {
		return &ValidationError{Field: "data.assetId", Msg: ev.Type.String() + " events need an assetId"}
	}
	if ev.Type.NeedsScenario() && ev.ScenarioID == "" {
		return &ValidationError{Field: "data.scenarioId", Msg: ev.Type.String() + " events need a scenarioId"}
	}
	return nil
}

// Validate checks an Event built in process (by a worker) against the same
// rules DecodeEvents applies to outside input. Data, if set, must already be
// a compact JSON object whose scope ids match AssetID and ScenarioID.
func (ev *Event) Validate() error {
	if !ev.Type.Valid() {
		return &ValidationError{Field: "type", Msg: "unknown type"}
	}
	if !ev.Status.Valid() {
		return &ValidationError{Field: "status", Msg: "unknown status"}
	}
	if err := CheckID(ev.JobID); err != nil {
		return &ValidationError{Field: "jobId", Msg: err.Error()}
	}
	if len(ev.Data) > MaxDataSize {
		return &ValidationError{Field: "data", Msg: "over the size limit"}
	}
	if len(ev.Data) > 0 && (ev.Data[0] != '{' || ev.Data[len(ev.Data)-1] != '}') {
		return &ValidationError{Field: "data", Msg: "must be an object"}
	}
	if bytes.ContainsAny(ev.Data, "\r\n") {
		return &ValidationError{Field: "data", Msg: "not compact"}
	}
	if err := ev.checkScope(); err != nil {
		return err
	}
	return nil
}

// AppendJSON appends the event's canonical single-line JSON encoding to dst.
// Ids are restricted to a charset that needs no escaping, and Data is compact
// JSON, so the result never holds a raw CR or LF.
func (ev *Event) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"type":"`...)
	dst = append(dst, ev.Type.String()...)
	dst = append(dst, `","jobId":"`...)
	dst = append(dst, ev.JobID...)
	dst = append(dst, `","status":"`...)
	dst = append(dst, ev.Status.String()...)
	dst = append(dst, `","timestamp":"`...)
	dst = ev.Timestamp.UTC().AppendFormat(dst, timeLayout)
	dst = append(dst, '"')
	if len(ev.Data) > 0 {
		dst = append(dst, `,"data":`...)
		dst = append(dst, ev.Data...)
	}
	return append(dst, '}')
}

// MarshalJSON implements json.Marshaler with the canonical encoding.
func (ev *Event) MarshalJSON() ([]byte, error) { return ev.AppendJSON(nil), nil }

// CheckID checks a job, asset or scenario id: 1–128 characters of
// [A-Za-z0-9._:-]. The charset keeps ids safe in a comma-separated filter, in
// a metric-free log line and in JSON without escaping.
func CheckID(s string) error {
	if len(s) == 0 {
		return errors.New("must not be empty")
	}
	if len(s) > MaxIDLen {
		return fmt.Errorf("longer than %d characters", MaxIDLen)
	}
	for i := 0; i < len(s); i++ {
		if !idChar(s[i]) {
			return fmt.Errorf("character %q at %d is not one of [A-Za-z0-9._:-]", s[i], i)
		}
	}
	return nil
}

func idChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '.' || c == '_' || c == ':' || c == '-'
}

// clip shortens an echoed input so an error message stays small.
func clip(s string) string { return clipTo(s, 40) }

// clipTo cuts s to at most n bytes and an ellipsis. It cuts on a rune
// boundary, so a valid UTF-8 input gives a valid UTF-8 result.
func clipTo(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
