package bench

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
)

// sseEvent is what the client keeps of one SSE event: the integers it found
// in the data, and whether it found them.
type sseEvent struct {
	ts, seq       int64
	hasTS, hasSeq bool
	hasData       bool
}

// sseReader reads SSE events from a stream, looking only at what the
// harness needs: the data lines (for the "ts" and "seq" numbers) and the id
// line (for Last-Event-ID). It is owned by one stream goroutine.
type sseReader struct {
	br    *bufio.Reader
	spill []byte // a line longer than br's buffer, allocated on first need
	// lastID is the id of the last event dispatched, for Last-Event-ID;
	// curID the id: field of the event being read. As in a browser, an id
	// counts only once its event is complete: a stream cut in the middle
	// of an event resumes before it.
	lastID, curID []byte
	curHasID      bool
	cur           sseEvent
}

var (
	keyTS  = []byte(`"ts":`)
	keySeq = []byte(`"seq":`)
)

// readLine returns the next line without its line terminator. The slice is
// valid until the next call.
func (r *sseReader) readLine() ([]byte, error) {
	line, err := r.br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		r.spill = append(r.spill[:0], line...)
		for errors.Is(err, bufio.ErrBufferFull) {
			line, err = r.br.ReadSlice('\n')
			r.spill = append(r.spill, line...)
		}
		line = r.spill
	}
	if err != nil {
		if errors.Is(err, io.EOF) && len(line) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// cut forgets the event a connection ended in the middle of: the next
// connection starts a new one.
func (r *sseReader) cut() {
	r.cur, r.curHasID = sseEvent{}, false
}

// next returns the next event that carried data. Comments (":ping"), retry
// and event fields are skipped.
func (r *sseReader) next() (sseEvent, error) {
	for {
		line, err := r.readLine()
		if err != nil {
			return sseEvent{}, err
		}
		if ev, ok := r.line(line); ok {
			return ev, nil
		}
	}
}

// line takes one line of the stream, without its terminator, and returns
// the event it completes, if it completes one that carried data.
func (r *sseReader) line(line []byte) (sseEvent, bool) {
	switch {
	case len(line) == 0:
		if r.curHasID {
			r.lastID = append(r.lastID[:0], r.curID...)
		}
		ev := r.cur
		r.cur, r.curHasID = sseEvent{}, false
		return ev, ev.hasData
	case line[0] == ':':
	case bytes.HasPrefix(line, []byte("data:")):
		r.cur.hasData = true
		if v, ok := findInt(line, keyTS); ok && !r.cur.hasTS {
			r.cur.ts, r.cur.hasTS = v, true
		}
		if v, ok := findInt(line, keySeq); ok && !r.cur.hasSeq {
			r.cur.seq, r.cur.hasSeq = v, true
		}
	case bytes.HasPrefix(line, []byte("id:")):
		v := bytes.TrimPrefix(line[3:], []byte(" "))
		r.curID, r.curHasID = append(r.curID[:0], v...), true
	}
	return sseEvent{}, false
}

// findInt finds the first `"key":` in b and parses the non-negative integer
// that follows it (spaces allowed before it). It is a byte search, not a
// JSON decoder: it is meant for data the harness itself wrote.
func findInt(b, key []byte) (int64, bool) {
	i := bytes.Index(b, key)
	if i < 0 {
		return 0, false
	}
	b = b[i+len(key):]
	for len(b) > 0 && b[0] == ' ' {
		b = b[1:]
	}
	var v uint64
	n := 0
	for ; n < len(b) && b[n] >= '0' && b[n] <= '9'; n++ {
		if n == 19 { // more than an int64 holds
			return 0, false
		}
		v = v*10 + uint64(b[n]-'0')
	}
	if n == 0 || v > math.MaxInt64 {
		return 0, false
	}
	return int64(v), true
}

// readResponseHead reads an HTTP/1.x response head from br and returns its
// status code and whether the body is chunked.
func readResponseHead(br *bufio.Reader) (status int, chunked bool, err error) {
	r := sseReader{br: br}
	line, err := r.readLine()
	if err != nil {
		return 0, false, fmt.Errorf("reading status line: %w", err)
	}
	// "HTTP/1.1 200 OK"
	sp := bytes.IndexByte(line, ' ')
	if !bytes.HasPrefix(line, []byte("HTTP/1.")) || sp < 0 || len(line) < sp+4 {
		return 0, false, fmt.Errorf("%w: status line %q", ErrBadResponse, line)
	}
	for _, c := range line[sp+1 : sp+4] {
		if c < '0' || c > '9' {
			return 0, false, fmt.Errorf("%w: status line %q", ErrBadResponse, line)
		}
		status = status*10 + int(c-'0')
	}
	for {
		line, err := r.readLine()
		if err != nil {
			return 0, false, fmt.Errorf("reading response head: %w", err)
		}
		if len(line) == 0 {
			return status, chunked, nil
		}
		if k, v, ok := bytes.Cut(line, []byte(":")); ok &&
			bytes.EqualFold(bytes.TrimSpace(k), []byte("Transfer-Encoding")) &&
			bytes.Contains(bytes.ToLower(v), []byte("chunked")) {
			chunked = true
		}
	}
}
