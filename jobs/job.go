package jobs

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"
)

// Job is a submitted job: what POST /api/jobs asks the in-process workers to
// run. A Job is a plain value; once handed to Workers.Submit it is not
// modified, so its Params bytes may be shared.
type Job struct {
	ID         string // set by the caller, e.g. with NewJobID
	Type       Type
	AssetID    string // set when Type.NeedsAsset
	ScenarioID string // set when Type.NeedsScenario
	// Params is the kind's input as a compact JSON object, or nil for the
	// kind's defaults.
	Params json.RawMessage
	User   string // who submitted it; set by the caller
}

// NewJobID returns a fresh random job id, "j-" and 16 hex digits, that passes
// CheckID. It is safe for concurrent use.
func NewJobID() string {
	var b [8]byte
	rand.Read(b[:]) // never fails (crypto/rand since Go 1.24)
	return "j-" + hex.EncodeToString(b[:])
}

// wireJob is the JSON shape of a job as POST /api/jobs receives it.
type wireJob struct {
	Type       string          `json:"type"`
	AssetID    string          `json:"assetId"`
	ScenarioID string          `json:"scenarioId"`
	Params     json.RawMessage `json:"params"`
}

// DecodeJob decodes and validates the body of POST /api/jobs:
//
//	{"type":"growth","assetId":"a1","params":{"rate":0.05}}
//
// Unknown fields are rejected; the type must be known; the scope ids its type
// needs must be present and valid, and ids it does not use must be absent (a
// scope the kind ignores would still narrow who may see the job's events);
// params, if present and not null, must be a JSON object of at most
// MaxDataSize bytes once compacted. Whether the params suit the kind is found
// out when the job runs: a job with bad params ends failed.
//
// It returns ErrMalformed (wrapped) when the body is not a JSON object, and a
// *ValidationError naming the field otherwise. The returned Job has no ID and
// no User: the caller sets them. DecodeJob is safe for concurrent use.
func DecodeJob(body []byte) (Job, error) {
	if !utf8.Valid(body) {
		return Job{}, fmt.Errorf("%w: not UTF-8", ErrMalformed)
	}
	var w wireJob
	if err := decodeObject(body, 0, "job", &w); err != nil {
		return Job{}, err
	}
	bad := func(field, msg string) error { return &ValidationError{Field: field, Msg: msg} }
	t, ok := ParseType(w.Type)
	if !ok {
		return Job{}, bad("type", fmt.Sprintf("unknown type %q (want matrix, growth or probability)", clip(w.Type)))
	}
	job := Job{Type: t, AssetID: w.AssetID, ScenarioID: w.ScenarioID}
	if err := checkJobScope(t, "assetId", job.AssetID, t.NeedsAsset()); err != nil {
		return Job{}, err
	}
	if err := checkJobScope(t, "scenarioId", job.ScenarioID, t.NeedsScenario()); err != nil {
		return Job{}, err
	}
	if len(w.Params) > 0 && !bytes.Equal(w.Params, []byte("null")) {
		if w.Params[0] != '{' {
			return Job{}, bad("params", "must be an object")
		}
		var buf bytes.Buffer
		if err := json.Compact(&buf, w.Params); err != nil {
			return Job{}, bad("params", "invalid json")
		}
		if buf.Len() > MaxDataSize {
			return Job{}, bad("params", fmt.Sprintf("%d bytes encoded, over the %d limit", buf.Len(), MaxDataSize))
		}
		job.Params = buf.Bytes()
	}
	return job, nil
}

// checkJobScope checks one scope id of a job of type t: present and valid when
// the type needs it, absent otherwise.
func checkJobScope(t Type, field, id string, needed bool) *ValidationError {
	switch {
	case needed && id == "":
		return &ValidationError{Field: field, Msg: t.String() + " jobs need " + article(field) + field}
	case !needed && id != "":
		return &ValidationError{Field: field, Msg: t.String() + " jobs take no " + field}
	case needed:
		if err := CheckID(id); err != nil {
			return &ValidationError{Field: field, Msg: err.Error()}
		}
	}
	return nil
}

func article(field string) string {
	if field == "assetId" {
		return "an "
	}
	return "a "
}

// check reports whether a job is fit for Submit: the invariants DecodeJob and
// DemoJob establish, plus an id.
func (j *Job) check() error {
	if err := CheckID(j.ID); err != nil {
		return fmt.Errorf("id %q: %v", clip(j.ID), err)
	}
	if !j.Type.Valid() {
		return fmt.Errorf("job %s: unknown type %v", j.ID, j.Type)
	}
	if err := checkJobScope(j.Type, "assetId", j.AssetID, j.Type.NeedsAsset()); err != nil {
		return fmt.Errorf("job %s: %v: %s", j.ID, err.Field, err.Msg)
	}
	if err := checkJobScope(j.Type, "scenarioId", j.ScenarioID, j.Type.NeedsScenario()); err != nil {
		return fmt.Errorf("job %s: %v: %s", j.ID, err.Field, err.Msg)
	}
	return nil
}

// WithDelay returns job with its common param delayMs set to d (capped at
// 10 s): the job then takes at least that long before it computes. Demo
// mode uses it so a dashboard shows jobs running.
func WithDelay(job Job, d time.Duration) Job {
	params := map[string]json.RawMessage{}
	if len(job.Params) > 0 {
		if err := json.Unmarshal(job.Params, &params); err != nil {
			return job
		}
	}
	ms := min(d.Milliseconds(), maxDelayMs)
	params["delayMs"] = json.RawMessage(strconv.FormatInt(ms, 10))
	job.Params, _ = json.Marshal(params) // a map of raw JSON values: never fails
	return job
}
