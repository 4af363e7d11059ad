package jobs

import (
	"errors"
	"fmt"
)

// ErrMalformed is returned when a body is not the JSON shape expected (not
// JSON at all, or not an object or an array of objects). Clients get a 400.
var ErrMalformed = errors.New("malformed json")

// ErrTooManyEvents is returned when a batch holds more events than MaxBatch.
var ErrTooManyEvents = errors.New("too many events in one batch")

// ErrBadFilter is returned by ParseFilter for an unknown type or status, an
// empty or malformed value, or too many values. Clients get a 400.
var ErrBadFilter = errors.New("bad filter")

// ErrBadParams is returned when a job's params do not fit its kind: an
// unknown param, a value of the wrong JSON type, or one out of range. The job
// then ends failed, with the message in data.error.
var ErrBadParams = errors.New("bad params")

// ValidationError says which field of which event is invalid. Clients get a
// 422 with its message.
type ValidationError struct {
	Index int    // position in the batch; 0 for a single event
	Field string // JSON path of the field, e.g. "data.assetId"
	Msg   string
}

var _ error = (*ValidationError)(nil)

func (e *ValidationError) Error() string {
	return fmt.Sprintf("event %d: %s: %s", e.Index, e.Field, e.Msg)
}
