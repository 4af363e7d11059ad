package hubtest

import (
	"testing"
	"time"
)

// maxPollInterval bounds the pause between two looks at a condition: short
// enough that a test goes on soon after the condition holds, long enough
// that a condition that asks a server (an HTTP request, a page evaluation)
// does not load the machine that runs it.
const maxPollInterval = 20 * time.Millisecond

// Poll calls cond until it returns true, and reports whether it did within
// d. It looks at once, then after pauses that grow from 1ms to 20ms. Use it
// where a timeout needs its own report (a metric's last value, a page's
// screenshot); WaitFor is Poll that fails the test.
func Poll(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	pause := time.Millisecond
	for !cond() {
		if !time.Now().Before(deadline) {
			return false
		}
		time.Sleep(min(pause, time.Until(deadline)))
		pause = min(2*pause, maxPollInterval)
	}
	return true
}

// WaitFor polls cond until it holds, or fails the test after d saying it
// timed out waiting for what (nats-server's checkFor).
func WaitFor(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	if !Poll(d, cond) {
		t.Fatalf("timed out after %v waiting for %s", d, what)
	}
}
