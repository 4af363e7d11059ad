package natsjs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// MaxReplicas is the most replicas JetStream keeps of a stream.
const MaxReplicas = 5

// DefaultStartTimeout is how long OpenLog and StartQueue wait for JetStream
// to take their streams when LogConfig.StartTimeout or
// QueueConfig.StartTimeout is zero.
const DefaultStartTimeout = 60 * time.Second

// ReplicasError is JetStream saying it cannot keep a stream (or a
// consumer) with the replicas asked for: the server is not clustered, or
// the cluster has not placed them within the start timeout (too few
// JetStream servers up and routed to each other).
type ReplicasError struct {
	// What is the stream or consumer ("stream EVENTHUB"), Replicas the
	// replicas asked for.
	What     string
	Replicas int
	// Clustered is false when the server is a JetStream server on its own.
	Clustered bool
	// Waited is how long the cluster was given to place them.
	Waited time.Duration
	// Reason is what JetStream said.
	Reason string
}

func (e *ReplicasError) Error() string {
	if !e.Clustered {
		return fmt.Sprintf("the NATS cluster has only 1 JetStream server: %s cannot have %d replicas (JetStream: %s)", e.What, e.Replicas, e.Reason)
	}
	return fmt.Sprintf("the NATS cluster did not place %d replicas of %s within %v: each needs a JetStream server of its own, up and routed to the others (JetStream: %s)", e.Replicas, e.What, e.Waited, e.Reason)
}

// JetStream's error codes that ensureStream tells apart.
const (
	errCodeClusterNoPeers        jetstream.ErrorCode = 10005 // no suitable peers for placement
	errCodeClusterNotAvail       jetstream.ErrorCode = 10008 // no meta leader (yet)
	errCodeClusterNotLeader      jetstream.ErrorCode = 10009
	errCodeInsufficientResources jetstream.ErrorCode = 10023
	errCodeReplicasNotSupported  jetstream.ErrorCode = 10074 // replicas > 1 on a server not clustered
)

// apiError is JetStream's API error in err, or nil.
func apiError(err error) *jetstream.APIError {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return apiErr
	}
	var jsErr jetstream.JetStreamError
	if errors.As(err, &jsErr) {
		return jsErr.APIError()
	}
	return nil
}

// placement reports whether err is JetStream unable to place a stream's
// replicas on its servers.
func placement(err error) bool {
	a := apiError(err)
	return a != nil && (a.ErrorCode == errCodeClusterNoPeers || a.ErrorCode == errCodeInsufficientResources)
}

// errSettling marks an error of a stream that exists but is not yet known
// to every server of a forming cluster.
var errSettling = errors.New("the stream is being made")

// notFound reports whether err is JetStream saying the stream does not
// exist.
func notFound(err error) bool {
	a := apiError(err)
	return errors.Is(err, jetstream.ErrStreamNotFound) || (a != nil && a.ErrorCode == jetstream.JSErrCodeStreamNotFound)
}

// transient reports whether err may go away while a JetStream cluster
// forms: no meta leader elected yet, not every server joined, a stream
// just made not yet known everywhere, no server answering yet (the
// connection still connecting, or JetStream starting).
func transient(err error) bool {
	if errors.Is(err, errSettling) {
		return true
	}
	if a := apiError(err); a != nil {
		switch a.ErrorCode {
		case errCodeClusterNotAvail, errCodeClusterNotLeader, errCodeClusterNoPeers, errCodeInsufficientResources:
			return true
		}
		return false
	}
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) || errors.Is(err, nats.ErrNoResponders)
}

// startWait is how long, and with whom reporting it, the hub waits for
// JetStream to take a stream at start.
type startWait struct {
	timeout time.Duration
	log     *slog.Logger
}

// Pauses between attempts grow from firstPause to maxPause; one attempt
// waits at most attemptTimeout for an answer, and at least minAttempt. An
// attempt that gets no answer in time is simply made again: a server
// without a leader to forward to does not answer, and making a stream
// with the config it has is idempotent (one JetStream made after the last
// attempt gave up is found by the next).
const (
	firstPause     = 100 * time.Millisecond
	maxPause       = 2 * time.Second
	attemptTimeout = 3 * time.Second
	minAttempt     = 500 * time.Millisecond
)

// retry runs op until it succeeds, fails for good, or w.timeout has
// passed, pausing longer each time and logging that it waits for what; or
// until ctx is done. It returns whether it gave up for the timeout, and
// op's last error; when it gives up, JetStream's last answer rather than
// a last request that timed out, which says less.
func (w startWait) retry(ctx context.Context, what string, replicas int, op func(context.Context) error) (timedOut bool, err error) {
	start := time.Now()
	deadline := start.Add(w.timeout)
	pause := firstPause
	var answer error // JetStream's last answer that was an error
	for {
		// The last attempt may run past the deadline by minAttempt.
		actx, cancel := context.WithTimeout(ctx, min(attemptTimeout, max(time.Until(deadline), minAttempt)))
		err := op(actx)
		cancel()
		if err == nil || !transient(err) {
			return false, err
		}
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		if apiError(err) != nil {
			answer = err
		}
		left := time.Until(deadline)
		if left <= 0 {
			if answer != nil {
				return true, answer
			}
			return true, err
		}
		w.log.Info("nats: waiting for the JetStream cluster", "for", what, "replicas", replicas,
			"waited", time.Since(start).Round(time.Millisecond).String(), "timeout", w.timeout.String(), "err", err)
		t := time.NewTimer(min(pause, left))
		select {
		case <-ctx.Done():
			t.Stop()
			return false, ctx.Err()
		case <-t.C:
		}
		pause = min(2*pause, maxPause)
	}
}

// failed is the error of what, which failed with err (after w.timeout, if
// timedOut): a *ReplicasError when it is JetStream unable to keep
// replicas.
func (w startWait) failed(what string, replicas int, err error, timedOut bool) error {
	a := apiError(err)
	switch {
	case a != nil && replicas > 1 && a.ErrorCode == errCodeReplicasNotSupported:
		return &ReplicasError{What: what, Replicas: replicas, Reason: a.Description}
	case a != nil && replicas > 1 && placement(err):
		return &ReplicasError{What: what, Replicas: replicas, Clustered: true, Waited: w.timeout, Reason: a.Description}
	case timedOut:
		return fmt.Errorf("nats: %s: JetStream did not take it within %v (are the NATS servers up, and routed to each other?): %w", what, w.timeout, err)
	}
	return fmt.Errorf("nats: %s: %w", what, err)
}

// ensureStream makes sure the stream cfg describes exists with cfg, while
// a JetStream cluster forms if need be (w), until ctx is done: it creates it, or updates it
// (its replicas among the rest, which JetStream copies to the new servers
// in the background, and says so in the log). JetStream unable to keep
// cfg.Replicas is a *ReplicasError.
func ensureStream(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig, w startWait) (jetstream.Stream, error) {
	var stream jetstream.Stream
	before := 0 // replicas of the stream as it was; 0 when it was new
	what := "stream " + cfg.Name
	timedOut, err := w.retry(ctx, what, cfg.Replicas, func(ctx context.Context) error {
		if s, err := js.Stream(ctx, cfg.Name); err == nil {
			before = s.CachedInfo().Config.Replicas
		} else if !errors.Is(err, jetstream.ErrStreamNotFound) {
			return err
		}
		s, err := js.CreateOrUpdateStream(ctx, cfg)
		if err == nil {
			// Its leader answers: the stream is ready for what comes next
			// (the hub asks for its bounds at once).
			_, err = s.Info(ctx)
		}
		if notFound(err) {
			// Made just now (here, or by another hub starting with this
			// one), on servers that have not all applied it yet.
			return fmt.Errorf("%w: %w", errSettling, err)
		}
		stream = s
		return err
	})
	if err != nil {
		return nil, w.failed(what, cfg.Replicas, err, timedOut)
	}
	if before != 0 && before != cfg.Replicas {
		w.log.Info("nats: stream replicas changed; JetStream copies the stream to its new replicas in the background",
			"stream", cfg.Name, "from", before, "to", cfg.Replicas)
	}
	return stream, nil
}

// checkReplicas refuses a replica count JetStream cannot keep.
func checkReplicas(n int) error {
	if n < 1 || n > MaxReplicas {
		return fmt.Errorf("nats: %d replicas: JetStream keeps 1 to %d", n, MaxReplicas)
	}
	return nil
}
