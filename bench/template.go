package bench

import (
	"fmt"
	"strconv"
	"strings"
)

// Template is a publish body with placeholders filled in per event:
// {ts} the send time in unix nanoseconds, {seq} the event's sequence number,
// {asset} the event's asset (the publisher's choice), {pad} a run of 'x' of
// the configured length (to grow the frame). A Template is immutable and
// safe for concurrent use.
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

// Append appends the body for one event to dst.
func (t *Template) Append(dst []byte, ts int64, seq uint64, asset string) []byte {
	for _, p := range t.parts {
		switch p.kind {
		case tmplTS:
			dst = strconv.AppendInt(dst, ts, 10)
		case tmplSeq:
			dst = strconv.AppendUint(dst, seq, 10)
		case tmplAsset:
			dst = append(dst, asset...)
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
func (t *Template) HasAsset() bool {
	for _, p := range t.parts {
		if p.kind == tmplAsset {
			return true
		}
	}
	return false
}
