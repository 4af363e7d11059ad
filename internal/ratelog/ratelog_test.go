package ratelog

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	var buf bytes.Buffer
	r := New(slog.New(slog.NewTextHandler(&buf, nil)), time.Hour)
	for range 100 {
		r.Warn("a", "source down")
	}
	r.Warn("b", "other trouble")
	if n := strings.Count(buf.String(), "source down"); n != 1 {
		t.Errorf("%d lines for one key within the interval, want 1", n)
	}
	if !strings.Contains(buf.String(), "other trouble") {
		t.Error("another key was held back")
	}
	r.every = 0
	r.Warn("a", "source down")
	if !strings.Contains(buf.String(), "suppressed=99") {
		t.Errorf("the next line does not count what was held back:\n%s", buf.String())
	}
}

// TestLimiterBoundsKeys: keys past maxKeys do not grow the memory it keeps.
func TestLimiterBoundsKeys(t *testing.T) {
	r := New(slog.New(slog.DiscardHandler), time.Hour)
	for i := range 10 * maxKeys {
		r.Allow(strings.Repeat("k", i%50) + string(rune('a'+i%26)) + string(rune(i)))
	}
	if n := len(r.seen); n > maxKeys {
		t.Errorf("%d keys remembered, want at most %d", n, maxKeys)
	}
}
