package bench

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestSSEReader(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("y", 300)
	stream := "retry: 3000\n\n" +
		"id: 1042\nevent: job\ndata: {\"type\":\"growth\",\"data\":{\"ts\":1700000000000000001,\"seq\":7}}\n\n" +
		":ping\n\n" +
		"data: {\"ts\": 5, \"seq\":8}\r\n\r\n" + // CRLF and a space after the colon
		"id: 9\ndata: {\"pad\":\"" + long + "\",\"ts\":6,\"seq\":9}\n\n" + // longer than the reader's buffer
		"event: reset\ndata: {\"reason\":\"gone\"}\n\n" + // no ts, no seq
		"data: {\"ts\":1}\n" // cut short
	want := []sseEvent{
		{ts: 1700000000000000001, seq: 7, hasTS: true, hasSeq: true, hasData: true},
		{ts: 5, seq: 8, hasTS: true, hasSeq: true, hasData: true},
		{ts: 6, seq: 9, hasTS: true, hasSeq: true, hasData: true},
		{hasData: true},
	}
	r := sseReader{br: bufio.NewReaderSize(strings.NewReader(stream), 64)}
	for i, w := range want {
		ev, err := r.next()
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if ev != w {
			t.Errorf("event %d = %+v, want %+v", i, ev, w)
		}
	}
	if string(r.lastID) != "9" {
		t.Errorf("last id = %q, want 9", r.lastID)
	}
	if _, err := r.next(); !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		t.Errorf("after the last event: %v, want EOF", err)
	}
}

func TestFindInt(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in   string
		want int64
		ok   bool
	}{
		{`data: {"ts":123}`, 123, true},
		{`data: {"timestamp":"x","ts":  45,"seq":1}`, 45, true},
		{`data: {"ts":"12"}`, 0, false},
		{`data: {"tsx":1}`, 0, false},
		{`data: {"ts":}`, 0, false},
		{`data: {"ts":9223372036854775807}`, 9223372036854775807, true},
		{`data: {"ts":9223372036854775808}`, 0, false},
		{`data: {"ts":99999999999999999999}`, 0, false},
	}
	for _, tc := range cases {
		got, ok := findInt([]byte(tc.in), keyTS)
		if got != tc.want || ok != tc.ok {
			t.Errorf("findInt(%q) = %d, %v; want %d, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestReadResponseHead(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, in string
		code     int
		chunked  bool
		bad      bool
	}{
		{"eventhub", "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\nCache-Control: no-cache\r\n\r\n", 200, false, false},
		{"chunked", "HTTP/1.1 200 OK\r\ntransfer-encoding: Chunked\r\n\r\n", 200, true, false},
		{"refused", "HTTP/1.1 429 Too Many Requests\r\nContent-Length: 2\r\n\r\n{}", 429, false, false},
		{"not http", "SSH-2.0-OpenSSH\r\n\r\n", 0, false, true},
		{"truncated", "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n", 0, false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			code, chunked, err := readResponseHead(bufio.NewReader(strings.NewReader(tc.in)))
			if (err != nil) != tc.bad || code != tc.code || chunked != tc.chunked {
				t.Errorf("= %d, %v, %v; want %d, %v, error %v", code, chunked, err, tc.code, tc.chunked, tc.bad)
			}
		})
	}
}

func TestIsSlowSpreadsEvenly(t *testing.T) {
	t.Parallel()
	n := 0
	for i := range 1000 {
		if isSlow(i, 0.1) {
			n++
		}
	}
	if n != 100 {
		t.Errorf("%d of 1000 slow at 0.1, want 100", n)
	}
	if isSlow(3, 0) {
		t.Error("slow with fraction 0")
	}
}

// TestFeedMatchesReader: the poller's push parser (pool.feed) finds the
// same events as the pull reader, wherever the reads cut the stream.
func TestFeedMatchesReader(t *testing.T) {
	t.Parallel()
	in := "retry: 3000\n\n" +
		"id: 1042\nevent: job\ndata: {\"type\":\"growth\",\"data\":{\"ts\":1700000000000000001,\"seq\":7}}\n\n" +
		":ping\n\n" +
		"data: {\"ts\": 5, \"seq\":8}\r\n\r\n" +
		"id: 9\ndata: {\"pad\":\"" + strings.Repeat("y", 300) + "\",\"ts\":6,\"seq\":9}\n\n" +
		"event: reset\ndata: {\"reason\":\"gone\"}\n\n" +
		"data: {\"ts\":1}\n"
	check := func(t *testing.T, chunks []string) {
		t.Helper()
		p, err := newPool(poolSpec{URL: "http://127.0.0.1:1/", Streams: 1, MaxSeq: 10, SeriesLen: 1})
		if err != nil {
			t.Fatal(err)
		}
		s := &stream{}
		for _, c := range chunks {
			p.feed(s, []byte(c), 1)
		}
		st := p.stats()
		if st.Events != 4 || st.Delivered != 3 || st.NoTS != 1 || s.lastSeq != 9 || string(s.rd.lastID) != "9" {
			t.Errorf("cut %q: events %d, delivered %d, no ts %d, last seq %d, last id %q; want 4, 3, 1, 9, 9",
				chunks[0], st.Events, st.Delivered, st.NoTS, s.lastSeq, s.rd.lastID)
		}
	}
	for i := range len(in) + 1 {
		check(t, []string{in[:i], in[i:]})
	}
	bytewise := make([]string, len(in))
	for i := range in {
		bytewise[i] = in[i : i+1]
	}
	check(t, bytewise)
}

// TestSSEReaderIDAtDispatch: an id counts for Last-Event-ID only once its
// event is complete, as in a browser; a connection cut in the middle of an
// event leaves the previous id, and the next connection starts afresh.
func TestSSEReaderIDAtDispatch(t *testing.T) {
	var r sseReader
	for _, l := range []string{"id: 7", `data: {"seq":7}`, ""} {
		r.line([]byte(l))
	}
	if string(r.lastID) != "7" {
		t.Fatalf("lastID = %q after a complete event, want 7", r.lastID)
	}
	r.line([]byte("id: 8"))
	r.line([]byte(`data: {"seq":8,"ts":1}`))
	if string(r.lastID) != "7" {
		t.Fatalf("lastID = %q in the middle of event 8, want 7", r.lastID)
	}
	r.cut()
	r.line([]byte("id: 8"))
	r.line([]byte(`data: {"seq":8,"ts":5}`))
	ev, ok := r.line(nil) // without the cut, ts would be the cut event's 1
	if !ok || ev.seq != 8 || !ev.hasTS || ev.ts != 5 || string(r.lastID) != "8" {
		t.Fatalf("after a cut: event %+v (%v), lastID %q; want seq 8 with ts 5, lastID 8", ev, ok, r.lastID)
	}
}
