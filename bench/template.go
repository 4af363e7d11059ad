package bench

import (
	"fmt"
	"strconv"
	"strings"
)

// Template is a publish body with placeholders filled in per event:
// {ts} the send time in unix nanoseconds, {seq} the event's sequence number,
// {asset} the event's asset (the publisher's choice), {job} the number of
// the event's job and {progress} how far that job got (Values), {pad} a run
// of 'x' of the configured length (to grow the frame). A Template is
// immutable and safe for concurrent use.
type Template struct {
	parts []tmplPart
}

type tmplKind uint8

const (
	tmplText tmplKind = iota
	tmplTS
	tmplSeq
	tmplPad
	tmplAsset
	tmplJob
	tmplProgress
)

type tmplPart struct {
	kind tmplKind
	text string // the literal text, or the padding
}

// ParseTemplate parses s; pad is the length of {pad}. An unknown
// {placeholder} is an error, so a typo does not go out verbatim.
func ParseTemplate(s string, pad int) (*Template, error) {
	if pad < 0 {
		return nil, fmt.Errorf("%w: pad %d is negative", ErrBadTemplate, pad)
	}
	t := &Template{}
	for len(s) > 0 {
		i := strings.IndexByte(s, '{')
		if i < 0 {
			t.parts = append(t.parts, tmplPart{tmplText, s})
			break
		}
		j := strings.IndexByte(s[i:], '}')
		name := ""
		if j > 0 {
			name = s[i+1 : i+j]
		}
		var k tmplKind
		switch name {
		case "ts":
			k = tmplTS
		case "seq":
			k = tmplSeq
		case "pad":
			k = tmplPad
		case "asset":
			k = tmplAsset
		case "job":
			k = tmplJob
		case "progress":
			k = tmplProgress
		default:
			// A brace that opens no placeholder (JSON) is literal text.
			if j > 0 && isIdent(name) {
				return nil, fmt.Errorf("%w: unknown placeholder {%s}", ErrBadTemplate, name)
			}
			t.parts = append(t.parts, tmplPart{tmplText, s[:i+1]})
			s = s[i+1:]
			continue
		}
		if i > 0 {
			t.parts = append(t.parts, tmplPart{tmplText, s[:i]})
		}
		p := tmplPart{kind: k}
		if k == tmplPad {
			p.text = strings.Repeat("x", pad)
		}
		t.parts = append(t.parts, p)
		s = s[i+j+1:]
	}
	t.merge()
	return t, nil
}

// merge joins adjacent literal parts.
func (t *Template) merge() {
	out := t.parts[:0]
	for _, p := range t.parts {
		if n := len(out); n > 0 && p.kind == tmplText && out[n-1].kind == tmplText {
			out[n-1].text += p.text
			continue
		}
		out = append(out, p)
	}
	t.parts = out
}

// isIdent reports whether s looks like a placeholder name: [a-z_]+.
func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if (c < 'a' || c > 'z') && c != '_' {
			return false
		}
	}
	return true
}

// Values are what one event's placeholders are filled with.
type Values struct {
	TS    int64  // {ts}: unix nanoseconds
	Seq   uint64 // {seq}
	Asset string // {asset}
	// Job is {job}: the publisher's progress mode (publisher.progressOf)
	// numbers its jobs from 0; without it, each event is a job of its own,
	// its seq.
	Job int
	// Progress is {progress}, written with four decimals: 0 to 1.
	Progress float64
}

// Append appends the body for one event to dst.
func (t *Template) Append(dst []byte, v Values) []byte {
	for _, p := range t.parts {
		switch p.kind {
		case tmplTS:
			dst = strconv.AppendInt(dst, v.TS, 10)
		case tmplSeq:
			dst = strconv.AppendUint(dst, v.Seq, 10)
		case tmplAsset:
			dst = append(dst, v.Asset...)
		case tmplJob:
			dst = strconv.AppendInt(dst, int64(v.Job), 10)
		case tmplProgress:
			dst = strconv.AppendFloat(dst, v.Progress, 'f', 4, 64)
		default:
			dst = append(dst, p.text...)
		}
	}
	return dst
}

// Has reports whether the template carries {ts} and {seq}: latency needs
// the first, loss and fan-out completion the second.
func (t *Template) Has() (ts, seq bool) {
	for _, p := range t.parts {
		ts = ts || p.kind == tmplTS
		seq = seq || p.kind == tmplSeq
	}
	return ts, seq
}

// HasAsset reports whether the template carries {asset}: without it, the
// publisher cannot choose who an event is for.
func (t *Template) HasAsset() bool { return t.has(tmplAsset) }

// HasJob reports whether the template carries {job}: without it, every
// event of the progress mode would be of one job, or of a job of its own.
func (t *Template) HasJob() bool { return t.has(tmplJob) }

func (t *Template) has(k tmplKind) bool {
	for _, p := range t.parts {
		if p.kind == k {
			return true
		}
	}
	return false
}
