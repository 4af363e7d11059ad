package actors

import (
	"reflect"
	"strings"
	"testing"
)

// sseEvent is one event as an EventSource dispatches it.
type sseEvent struct {
	id, typ, data string
}

// sseResult is everything a browser's EventSource would make of a stream.
type sseResult struct {
	events   []sseEvent
	comments []string
	retry    string // last valid retry value, "" if none
	lastID   string // the EventSource's last event ID string at the end
}

// parseSSE decodes a whole stream the way the WHATWG "event stream
// interpretation" does (HTML Living Standard, 9.2.6): a leading BOM is
// dropped; lines end with CRLF, LF or CR; a blank line dispatches; a line
// starting with ':' is a comment; "field: value" loses one leading space of
// value; data lines join with LF; an id containing NUL is ignored; retry is
// honoured only when all ASCII digits; an event with empty data is not
// dispatched; whatever follows the last line end is discarded.
//
// It is written from the specification, not from the hub's encoder, so it
// judges the encoder rather than mirroring it.
func parseSSE(stream string) sseResult {
	var r sseResult
	stream = strings.TrimPrefix(stream, "\uFEFF")
	var data strings.Builder
	var typ, idBuf string
	for {
		i := strings.IndexAny(stream, "\r\n")
		if i < 0 {
			break // an incomplete line, and the event it belongs to, are dropped
		}
		line := stream[:i]
		if stream[i] == '\r' && i+1 < len(stream) && stream[i+1] == '\n' {
			stream = stream[i+2:]
		} else {
			stream = stream[i+1:]
		}
		if line == "" {
			r.lastID = idBuf
			if data.Len() == 0 {
				typ = ""
				continue
			}
			d := strings.TrimSuffix(data.String(), "\n")
			t := typ
			if t == "" {
				t = "message"
			}
			r.events = append(r.events, sseEvent{id: idBuf, typ: t, data: d})
			data.Reset()
			typ = ""
			continue
		}
		if line[0] == ':' {
			r.comments = append(r.comments, line[1:])
			continue
		}
		field, value, ok := strings.Cut(line, ":")
		if ok {
			value = strings.TrimPrefix(value, " ")
		}
		switch field {
		case "event":
			typ = value
		case "data":
			data.WriteString(value)
			data.WriteByte('\n')
		case "id":
			if !strings.Contains(value, "\x00") {
				idBuf = value
			}
		case "retry":
			if value != "" && strings.Trim(value, "0123456789") == "" {
				r.retry = value
			}
		}
	}
	return r
}

// TestParseSSE checks the test's own decoder against the specification's
// examples and corner cases, so that the tests built on it mean something.
func TestParseSSE(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		stream string
		want   sseResult
	}{
		{"empty", "", sseResult{}},
		{"one event LF", "id: 1\nevent: job\ndata: {}\n\n",
			sseResult{events: []sseEvent{{"1", "job", "{}"}}, lastID: "1"}},
		{"CRLF and CR line ends", "id: 2\r\nevent: job\rdata: x\r\n\r",
			sseResult{events: []sseEvent{{"2", "job", "x"}}, lastID: "2"}},
		{"CR inside a value splits the line", "data: a\rb\n\n",
			sseResult{events: []sseEvent{{"", "message", "a"}}}},
		{"multi-line data joins with LF", "data: a\ndata:b\ndata\n\n",
			sseResult{events: []sseEvent{{"", "message", "a\nb\n"}}}},
		{"only one leading space is removed", "data:  two\n\n",
			sseResult{events: []sseEvent{{"", "message", " two"}}}},
		{"BOM dropped once", "\uFEFFdata: x\n\n",
			sseResult{events: []sseEvent{{"", "message", "x"}}}},
		{"comment and retry", ":ping\nretry: 3000\n\n",
			sseResult{comments: []string{"ping"}, retry: "3000"}},
		{"invalid retry ignored", "retry: -5\nretry: 1x\n\n", sseResult{}},
		{"id with NUL ignored", "id: 7\n\nid: 8\x00\ndata: x\n\n",
			sseResult{events: []sseEvent{{"7", "message", "x"}}, lastID: "7"}},
		{"id persists to later events", "id: 9\ndata: a\n\ndata: b\n\n",
			sseResult{events: []sseEvent{{"9", "message", "a"}, {"9", "message", "b"}}, lastID: "9"}},
		{"event without data is not dispatched", "id: 3\nevent: job\n\n",
			sseResult{lastID: "3"}},
		{"incomplete event at the end is dropped", "data: a\n\ndata: b\n",
			sseResult{events: []sseEvent{{"", "message", "a"}}}},
		{"unknown fields ignored", "foo: bar\ndata: x\n\n",
			sseResult{events: []sseEvent{{"", "message", "x"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parseSSE(tt.stream)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("parseSSE(%q)\n got %+v\nwant %+v", tt.stream, got, tt.want)
			}
		})
	}
}
