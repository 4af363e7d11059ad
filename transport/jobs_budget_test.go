package transport

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/finexbot/eventhub/actors"
)

// TestJobFloodDoesNotDelayAnotherUser: alice floods 1,500 growth jobs of
// 30 KB that each take seconds; bob then submits one. Alice's flood is
// refused with 429 and Retry-After once past her budgets, the hub's heap
// does not hold the flood, and bob's job starts next: no further job of
// alice's starts before it, but for one a second worker may take at the
// same moment.
func TestJobFloodDoesNotDelayAnotherUser(t *testing.T) {
	ts := newTestServer(t, actors.Config{}, testPermissions)
	const (
		flood   = 1500
		delayMs = 2000
		workers = 2 // WorkersConfig.PerType's default
		burst   = 20
	)
	// 30 KB of params the kind accepts (the last of a key counts).
	body := []byte(`{"type":"growth","assetId":"a2","params":{` +
		strings.Repeat(`"delayMs":`+strconv.Itoa(delayMs)+`,`, 30<<10/15) + `"years":3}}`)

	before := heapInuse()
	start := time.Now()
	// Four clients at once, as fast as the hub answers.
	type reply struct {
		status     int
		body       string
		retryAfter string
		err        error
	}
	answers := make(chan reply, flood)
	for range 4 {
		go func() {
			for range flood / 4 {
				req, _ := http.NewRequest("POST", ts.url("/api/jobs"), bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer dev:alice")
				req.Header.Set("Content-Type", "application/json")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					answers <- reply{err: err}
					continue
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				answers <- reply{status: resp.StatusCode, body: string(b), retryAfter: resp.Header.Get("Retry-After"), err: err}
			}
		}()
	}
	alice := map[string]bool{}
	var refused int
	for range flood {
		a := <-answers
		switch {
		case a.err != nil:
			t.Fatal(a.err)
		case a.status == http.StatusAccepted:
			var r struct{ JobID string }
			if err := json.Unmarshal([]byte(a.body), &r); err != nil || r.JobID == "" {
				t.Fatalf("202 %s", a.body)
			}
			alice[r.JobID] = true
		case a.status == http.StatusTooManyRequests:
			refused++
			var e struct{ Error string }
			if err := json.Unmarshal([]byte(a.body), &e); err != nil || !strings.Contains(e.Error, "too fast") && !strings.Contains(e.Error, "queued or running") {
				t.Fatalf("429 body %q", a.body)
			}
			if s, err := strconv.Atoi(a.retryAfter); err != nil || s < 1 {
				t.Fatalf("429 Retry-After %q", a.retryAfter)
			}
		default:
			t.Fatalf("submission: %d %s", a.status, a.body)
		}
	}
	elapsed := time.Since(start)
	grew := int64(heapInuse()) - int64(before)
	t.Logf("flood of %d in %v: %d accepted, %d refused; heap in use grew %.1f MB", flood, elapsed.Round(time.Millisecond), len(alice), refused, float64(grew)/(1<<20))
	if maxAccepted := burst + int(5*elapsed.Seconds()) + 1; len(alice) < burst || len(alice) > maxAccepted {
		t.Errorf("%d of alice's jobs accepted in %v: want from %d (the burst) to %d", len(alice), elapsed, burst, maxAccepted)
	}
	if got := ts.metric(`eventhub_jobs_refused_total{reason="user_rate"}`) + ts.metric(`eventhub_jobs_refused_total{reason="user_in_flight"}`); got != float64(refused) {
		t.Errorf("refusals counted: %v, want %d", got, refused)
	}
	if grew > 16<<20 {
		t.Errorf("the heap grew by %d MB holding alice's flood", grew>>20)
	}

	watch := ts.openStream("dev:ops", "?types=growth&statuses=queued,started")
	status, answer := ts.do("POST", "/api/jobs", "dev:bob", []byte(`{"type":"growth","assetId":"a2"}`))
	if status != http.StatusAccepted {
		t.Fatalf("bob's job: %d %s", status, answer)
	}
	var r struct{ JobID string }
	json.Unmarshal([]byte(answer), &r)
	bob := r.JobID

	// From bob's queued event (what came before it is history) to his
	// started event, count alice's jobs that start.
	deadline := time.Now().Add(3*delayMs*time.Millisecond + 5*time.Second)
	queued, aliceStarted := false, 0
	for {
		left := time.Until(deadline)
		if left <= 0 {
			t.Fatalf("bob's job did not start within %v of alice's flood; %d of hers started meanwhile", 3*delayMs*time.Millisecond+5*time.Second, aliceStarted)
		}
		f, err := watch.next(left)
		if err != nil {
			t.Fatalf("bob's job did not start (%v); %d of alice's started meanwhile", err, aliceStarted)
		}
		if f.event != "job" {
			continue
		}
		var ev struct {
			JobID, Status string
			Data          struct{ Progress *float64 }
		}
		if err := json.Unmarshal([]byte(f.data), &ev); err != nil {
			t.Fatal(err)
		}
		switch {
		case ev.Data.Progress != nil && (alice[ev.JobID] || ev.JobID == bob):
			// a running job's progress: it started before
		case ev.JobID == bob && ev.Status == "queued":
			queued = true
		case ev.JobID == bob && ev.Status == "started":
			if !queued {
				t.Fatal("bob's job started before it was queued")
			}
			if aliceStarted > workers-1 {
				t.Errorf("%d of alice's jobs started between bob's queued and started events; want at most %d", aliceStarted, workers-1)
			}
			t.Logf("%d of alice's jobs started before bob's", aliceStarted)
			return
		case queued && alice[ev.JobID] && ev.Status == "started":
			aliceStarted++
		case !alice[ev.JobID] && ev.JobID != bob:
			t.Fatalf("unexpected event %s", fmt.Sprint(f.data))
		}
	}
}
