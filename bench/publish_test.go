package bench

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestPublisherProgress: with progress, events go round the jobs, one
// each a round, {progress} growing round by round within 1; after
// finishJobs, one done event a job, then nothing more, without an error.
func TestPublisherProgress(t *testing.T) {
	t.Parallel()
	srv := newBodyRecorder(t)
	progress, err := ParseTemplate(`s {seq} j{job} {progress}`, 0)
	if err != nil {
		t.Fatal(err)
	}
	done, err := ParseTemplate(`c {seq} j{job}`, 0)
	if err != nil {
		t.Fatal(err)
	}
	pb, err := newPublisher(srv.URL, nil, progress, 11, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer pb.close()
	pb.progressOf(3, done) // 11 events allow 3 rounds: {progress} is 1/4, 2/4, 3/4
	for range 7 {
		pb.publishOne(context.Background())
	}
	pb.finishJobs()
	for range 5 {
		pb.publishOne(context.Background())
	}
	want := []string{
		"s 1 j0 0.2500", "s 2 j1 0.2500", "s 3 j2 0.2500",
		"s 4 j0 0.5000", "s 5 j1 0.5000", "s 6 j2 0.5000",
		"s 7 j0 0.7500",
		"c 8 j0", "c 9 j1", "c 10 j2",
	}
	if bodies := srv.got(); pb.errors != 0 || pb.seq != 10 || strings.Join(bodies, "|") != strings.Join(want, "|") {
		t.Errorf("%d errors (%s), seq %d, bodies\n%q\nwant\n%q", pb.errors, pb.lastErr, pb.seq, bodies, want)
	}
}

// bodyRecorder is an HTTP server that answers 202 and keeps the bodies it
// is sent, in order; it is closed at the test's cleanup.
type bodyRecorder struct {
	*httptest.Server
	mu     sync.Mutex
	bodies []string
}

func newBodyRecorder(t *testing.T) *bodyRecorder {
	r := &bodyRecorder{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.bodies = append(r.bodies, string(b))
		r.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(r.Close)
	return r
}

// got returns the bodies received so far.
func (r *bodyRecorder) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.bodies...)
}

// TestPublisherStoppedIsNoError: a publish cut short because the run was
// stopped (the filler, at the resume) is not a publish error.
func TestPublisherStoppedIsNoError(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
	}))
	defer srv.Close()
	defer close(release) // before Close, which waits for the handler
	tmpl, _ := ParseTemplate(`{seq}`, 0)
	pb, err := newPublisher(srv.URL, nil, tmpl, 10, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer pb.close()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	pb.publishOne(ctx)
	if pb.errors != 0 {
		t.Errorf("%d errors (%s), want none", pb.errors, pb.lastErr)
	}
}
