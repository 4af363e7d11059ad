package jobs

import (
	"errors"
	"fmt"
	"time"
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

// Why a job was refused: the reason label of eventhub_jobs_refused_total.
const (
	RefusedQueueFull    = "queue_full"     // its kind's queue holds its budget of waiting jobs
	RefusedUserInFlight = "user_in_flight" // its user has the budget of jobs queued or running
	RefusedUserRate     = "user_rate"      // its user submits faster than the budget
)

// RefusedError is a job that was not taken because a budget is spent:
// nothing of it was published and it will not run. Clients get a 429 with
// RetryAfter as its Retry-After.
type RefusedError struct {
	Reason     string        // RefusedQueueFull, RefusedUserInFlight or RefusedUserRate
	Type       Type          // the job's kind
	RetryAfter time.Duration // when trying again may succeed; at least a second
}

var _ error = (*RefusedError)(nil)

func (e *RefusedError) Error() string {
	var why string
	switch e.Reason {
	case RefusedQueueFull:
		why = "the " + e.Type.String() + " job queue is full"
	case RefusedUserInFlight:
		why = "too many of your jobs are queued or running"
	case RefusedUserRate:
		why = "jobs submitted too fast"
	default:
		why = e.Reason
	}
	return fmt.Sprintf("job refused: %s; try again in %ds", why, retrySeconds(e.RetryAfter))
}

// RetrySeconds is RetryAfter in whole seconds, rounded up: the value of a
// Retry-After header.
func (e *RefusedError) RetrySeconds() int { return retrySeconds(e.RetryAfter) }

func retrySeconds(d time.Duration) int {
	return max(1, int((d+time.Second-1)/time.Second))
}
