package authz

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestFileSourceReloads(t *testing.T) {
	path, write := permissionsFile(t)
	write(`{"users": {"alice": {"assets": ["a1"]}}}`)
	src, err := NewFileSource(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if p, _ := src.Permissions(ctx, "alice"); !p.AllowsScope("a1", "") {
		t.Fatalf("alice: %+v", p)
	}
	if p, err := src.Permissions(ctx, "mallory"); err != nil || !p.None() {
		t.Fatalf("unknown user: %+v, %v; want no permissions", p, err)
	}
	if changed, err := src.Reload(); changed || err != nil {
		t.Fatalf("reload of an unchanged file: %v, %v", changed, err)
	}

	changes := make(chan struct{}, 10)
	errs := make(chan error, 10)
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		src.Watch(wctx, 10*time.Millisecond, func() { changes <- struct{}{} }, func(err error) { errs <- err })
		close(done)
	}()
	t.Cleanup(func() { cancel(); <-done })

	write(`{"users": {"alice": {"assets": ["a2"]}}}`)
	select {
	case <-changes:
	case <-time.After(5 * time.Second):
		t.Fatal("no reload after the file changed")
	}
	if p, _ := src.Permissions(ctx, "alice"); p.AllowsScope("a1", "") || !p.AllowsScope("a2", "") {
		t.Fatalf("after reload alice has %+v", p)
	}
	write(`{"users": {"alice": {"asets": ["a3"]}}}`) // broken: the last good table stays
	select {
	case err := <-errs:
		if !errors.Is(err, ErrBadPermissions) {
			t.Fatalf("error %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a broken file was not reported")
	}
	if p, _ := src.Permissions(ctx, "alice"); !p.AllowsScope("a2", "") {
		t.Fatalf("a broken file replaced the table: %+v", p)
	}
}

func TestHTTPSource(t *testing.T) {
	var inFlight, maxInFlight atomic.Int32
	var down atomic.Bool
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for m := maxInFlight.Load(); n > m && !maxInFlight.CompareAndSwap(m, n); m = maxInFlight.Load() {
		}
		if down.Load() {
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		switch r.URL.Query().Get("userId") {
		case "alice":
			w.Write([]byte(`{"assets":["a1"],"scenarios":["s1"]}`))
		case "ops":
			w.Write([]byte(`{"admin":true}`))
		case "slow":
			<-release
			w.Write([]byte(`{}`))
		case "bad":
			w.Write([]byte(`{"assets":"a1"}`))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	src, err := NewHTTPSource(srv.URL+"/perms?tenant=x", &http.Client{Timeout: 2 * time.Second}, 2)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if p, err := src.Permissions(ctx, "alice"); err != nil || !p.AllowsScope("a1", "s1") || p.AllowsScope("a2", "") {
		t.Fatalf("alice: %+v, %v", p, err)
	}
	if p, err := src.Permissions(ctx, "ops"); err != nil || !p.Admin {
		t.Fatalf("ops: %+v, %v", p, err)
	}
	if p, err := src.Permissions(ctx, "mallory"); err != nil || !p.None() {
		t.Fatalf("404 user: %+v, %v", p, err)
	}
	if _, err := src.Permissions(ctx, "bad"); !errors.Is(err, ErrSourceUnavailable) {
		t.Fatalf("bad answer: %v", err)
	}
	down.Store(true)
	if _, err := src.Permissions(ctx, "alice"); !errors.Is(err, ErrSourceUnavailable) {
		t.Fatalf("502: %v", err)
	}
	down.Store(false)

	// Bounded concurrency: with 2 slow requests in flight, a third waits
	// and gives up with its context.
	done := make(chan error, 2)
	for range 2 {
		go func() { _, err := src.Permissions(ctx, "slow"); done <- err }()
	}
	waitCond(t, func() bool { return inFlight.Load() == 2 })
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := src.Permissions(short, "alice"); !errors.Is(err, ErrSourceUnavailable) {
		t.Fatalf("third request with two in flight: %v, want it to wait and time out", err)
	}
	close(release)
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if m := maxInFlight.Load(); m > 2 {
		t.Fatalf("%d requests in flight, bound is 2", m)
	}
	if _, err := NewHTTPSource("ftp://x", nil, 0); err == nil {
		t.Error("ftp URL accepted")
	}
}

func waitCond(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 5s")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestClerkSource runs against a local server speaking the Backend API's
// GET /v1/users/{id}.
func TestClerkSource(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer sk_test_1" {
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"errors":[{"code":"authentication_invalid","message":"bad key"}]}`))
			return
		}
		id := strings.TrimPrefix(r.URL.Path, "/v1/users/")
		w.Header().Set("Content-Type", "application/json")
		switch id {
		case "user_alice":
			w.Write([]byte(`{"object":"user","id":"user_alice","public_metadata":{"eventhub":{"assets":["a1"],"scenarios":["s1"]},"plan":"pro"}}`))
		case "user_plain":
			w.Write([]byte(`{"object":"user","id":"user_plain","public_metadata":{}}`))
		case "user_broken":
			w.Write([]byte(`{"object":"user","id":"user_broken","public_metadata":{"eventhub":{"admin":"yes"}}}`))
		case "user_500":
			w.WriteHeader(http.StatusInternalServerError)
			w.Write([]byte(`{"errors":[{"code":"internal"}]}`))
		default:
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"errors":[{"code":"resource_not_found","message":"not found"}]}`))
		}
	}))
	defer srv.Close()
	src, err := NewClerkSource("sk_test_1", srv.URL+"/v1", nil, 4)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if p, err := src.Permissions(ctx, "user_alice"); err != nil || !p.AllowsScope("a1", "s1") {
		t.Fatalf("alice: %+v, %v", p, err)
	}
	for _, id := range []string{"user_plain", "user_gone"} {
		if p, err := src.Permissions(ctx, id); err != nil || !p.None() {
			t.Errorf("%s: %+v, %v; want no permissions", id, p, err)
		}
	}
	for _, id := range []string{"user_broken", "user_500"} {
		if _, err := src.Permissions(ctx, id); !errors.Is(err, ErrSourceUnavailable) {
			t.Errorf("%s: %v, want ErrSourceUnavailable", id, err)
		}
	}
	wrongKey, _ := NewClerkSource("sk_wrong", srv.URL+"/v1", nil, 0)
	if _, err := wrongKey.Permissions(ctx, "user_alice"); !errors.Is(err, ErrSourceUnavailable) {
		t.Errorf("wrong secret key: %v", err)
	}
}

// TestFileSourceSameSizeRewrite: a file rewritten at once with a document
// of the same size (within one tick of the file system's clock, so maybe
// with the same modification time) is still seen to change; one untouched
// for longer is not read again, and a change to it still is.
func TestFileSourceSameSizeRewrite(t *testing.T) {
	path, write := permissionsFile(t)
	write(`{"users": {"alice": {"assets": ["a1"]}}}`)
	src, err := NewFileSource(path)
	if err != nil {
		t.Fatal(err)
	}
	write(`{"users": {"alice": {"assets": ["a2"]}}}`)
	if changed, err := src.Reload(); !changed || err != nil {
		t.Fatalf("reload after a same-size rewrite: %v, %v", changed, err)
	}
	if p, _ := src.Permissions(context.Background(), "alice"); !p.AllowsScope("a2", "") || p.AllowsScope("a1", "") {
		t.Fatalf("alice after the rewrite: %+v", p)
	}
	// An old file: remembered, then a rewrite (which moves its time) is seen.
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(path, old, old); err != nil {
		t.Fatal(err)
	}
	if changed, err := src.Reload(); changed || err != nil {
		t.Fatalf("reload of an unchanged old file: %v, %v", changed, err)
	}
	if src.seen.size <= 0 || !src.seen.mod.Equal(old) {
		t.Fatalf("an old unchanged file is not remembered: %+v", src.seen)
	}
	write(`{"users": {"alice": {"assets": ["a3"]}}}`)
	if changed, err := src.Reload(); !changed || err != nil {
		t.Fatalf("reload after rewriting an old file: %v, %v", changed, err)
	}
}

// permissionsFile is a path for a permissions file in a temporary folder,
// and a function that writes doc there.
func permissionsFile(t *testing.T) (string, func(doc string)) {
	path := filepath.Join(t.TempDir(), "perms.json")
	return path, func(doc string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}
