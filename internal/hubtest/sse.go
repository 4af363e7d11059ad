package hubtest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Frame is one SSE frame: the fields of the lines up to a blank line. A
// comment line (": text") sets Comment; data lines are joined with "\n".
type Frame struct {
	ID, Event, Data, Retry string
	Comment                string
}

// ErrUnexpectedLine is what Decoder.Next returns for a line the hub never
// writes: one with a CR, or a field other than id, event, data and retry.
var ErrUnexpectedLine = errors.New("hubtest: unexpected SSE line")

// Decoder reads SSE frames from a stream's body. It is the one SSE decoder
// of the repository's tests. It is used by one goroutine at a time.
type Decoder struct {
	r *bufio.Reader
}

// NewDecoder reads frames from r. When r is a *bufio.Reader the decoder
// reads through it, so that a test may mix raw reads and frames.
func NewDecoder(r io.Reader) *Decoder {
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReader(r)
	}
	return &Decoder{r: br}
}

// Next returns the next frame. Blank lines before it are skipped. The error
// is the reader's (io.EOF once the stream has ended, a timeout past a read
// deadline), or ErrUnexpectedLine.
func (d *Decoder) Next() (Frame, error) {
	var f Frame
	seen, data := false, false
	for {
		line, err := d.r.ReadString('\n')
		if err != nil {
			return f, err
		}
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			if seen {
				return f, nil
			}
			continue
		}
		if strings.Contains(line, "\r") {
			return f, fmt.Errorf("%w %q: the hub ends lines with LF only", ErrUnexpectedLine, line)
		}
		seen = true
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "":
			f.Comment = value
		case "id":
			f.ID = value
		case "event":
			f.Event = value
		case "data":
			if data {
				f.Data += "\n"
			}
			f.Data += value
			data = true
		case "retry":
			f.Retry = value
		default:
			return f, fmt.Errorf("%w %q", ErrUnexpectedLine, line)
		}
	}
}

// Stream is one SSE stream on a raw loopback socket: the request is written
// by hand and the response read as bytes, so a test sees exactly what the
// hub wrote. R, Next and NextEvent read the same buffered bytes.
type Stream struct {
	Conn   net.Conn      // the socket: close it to hang up, set a deadline to read R
	R      *bufio.Reader // what the hub wrote after the response head
	Head   string        // the response head, from its status line to its blank line
	Status int           // the response status

	t   testing.TB
	dec *Decoder
}

// headTimeout bounds how long a hub may take to answer a stream request.
const headTimeout = 10 * time.Second

// OpenStream asks the hub at addr for a stream: GET path with the header
// pairs given ("Authorization", "Bearer dev:alice", "Last-Event-ID", "7").
// It fails the test unless the answer is 200. The socket is closed when the
// test ends.
func OpenStream(t testing.TB, addr, path string, header ...string) *Stream {
	t.Helper()
	s, status, body := DialStream(t, nil, addr, path, header...)
	if status != 200 {
		t.Fatalf("stream %s: %d %s", path, status, body)
	}
	return s
}

// DialStream is OpenStream that returns the status, and for an answer other
// than 200 no stream but the body (read by its Content-Length). dialer may
// set socket options, e.g. a small receive buffer; nil is a plain one.
func DialStream(t testing.TB, dialer *net.Dialer, addr, path string, header ...string) (s *Stream, status int, body string) {
	t.Helper()
	if dialer == nil {
		dialer = &net.Dialer{}
	}
	conn, err := dialer.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	var req strings.Builder
	fmt.Fprintf(&req, "GET %s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n", path, addr)
	for i := 0; i+1 < len(header); i += 2 {
		fmt.Fprintf(&req, "%s: %s\r\n", header[i], header[i+1])
	}
	req.WriteString("\r\n")
	if _, err := io.WriteString(conn, req.String()); err != nil {
		t.Fatal(err)
	}
	s = &Stream{Conn: conn, R: bufio.NewReader(conn), t: t}
	s.dec = NewDecoder(s.R)
	conn.SetReadDeadline(time.Now().Add(headTimeout))
	if s.Head, err = ReadHead(s.R); err != nil {
		t.Fatalf("read the response head: %v (got %q)", err, s.Head)
	}
	if f := strings.Fields(s.Head); len(f) > 1 {
		s.Status, _ = strconv.Atoi(f[1])
	}
	if s.Status != 200 {
		n := 0
		for line := range strings.SplitSeq(s.Head, "\r\n") {
			if v, ok := strings.CutPrefix(strings.ToLower(line), "content-length: "); ok {
				n, _ = strconv.Atoi(v)
			}
		}
		b := make([]byte, n)
		if _, err := io.ReadFull(s.R, b); err != nil {
			t.Fatalf("read the error body: %v", err)
		}
		conn.Close()
		return nil, s.Status, string(b)
	}
	conn.SetReadDeadline(time.Time{})
	return s, s.Status, ""
}

// ReadHead reads an HTTP response head, up to and including its blank line.
// It returns what it read, all of it also on an error.
func ReadHead(r *bufio.Reader) (string, error) {
	var b strings.Builder
	for {
		line, err := r.ReadString('\n')
		b.WriteString(line)
		if err != nil {
			return b.String(), err
		}
		if line == "\r\n" {
			return b.String(), nil
		}
	}
}

// Next reads one frame (an event, a retry hint or a comment) within d. The
// error is io.EOF once the hub has ended the stream, a timeout after d, or
// ErrUnexpectedLine, which also fails the test (without stopping it), so a
// loop that reads until the stream ends cannot pass over a bad line.
func (s *Stream) Next(d time.Duration) (Frame, error) {
	s.Conn.SetReadDeadline(time.Now().Add(d))
	defer s.Conn.SetReadDeadline(time.Time{})
	f, err := s.dec.Next()
	if errors.Is(err, ErrUnexpectedLine) {
		s.t.Errorf("stream: %v", err)
	}
	return f, err
}

// NextEvent skips comments and retry hints and returns the next frame with
// an event field, or fails the test if none comes within d.
func (s *Stream) NextEvent(t testing.TB, d time.Duration) Frame {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		f, err := s.Next(time.Until(deadline))
		if err != nil {
			t.Fatalf("waiting for an event: %v", err)
		}
		if f.Event != "" {
			return f
		}
	}
}

// Rest reads frames until the hub ends the stream and returns them; it
// fails the test if the stream does not end within d.
func (s *Stream) Rest(t testing.TB, d time.Duration) []Frame {
	t.Helper()
	deadline := time.Now().Add(d)
	var frames []Frame
	for {
		f, err := s.Next(time.Until(deadline))
		if errors.Is(err, io.EOF) {
			return frames
		}
		if err != nil {
			t.Fatalf("waiting for the stream to end: %v (after %d frames)", err, len(frames))
		}
		frames = append(frames, f)
	}
}
