package disklog

import (
	"bufio"
	"bytes"
	"errors"
	"testing"
)

// FuzzDecodeRecord: the record decoder, which reads whatever a damaged
// disk hands back, never panics, never reads past its input, refuses with
// errTorn or errCorrupt only, and agrees with the streaming reader that
// recovery and reads use. Seeds are in testdata/fuzz/FuzzDecodeRecord.
func FuzzDecodeRecord(f *testing.F) {
	ev := event(f, "j-1", "completed")
	f.Add(appendRecord(nil, 42, false, &ev))
	f.Fuzz(func(t *testing.T, b []byte) {
		in := bytes.Clone(b)
		rec, n, err := decodeRecord(b)
		if !bytes.Equal(in, b) {
			t.Fatal("decodeRecord changed its input")
		}
		var buf []byte
		rec2, err2 := readRecord(bufio.NewReader(bytes.NewReader(b)), &buf)
		if err != nil {
			if !errors.Is(err, errTorn) && !errors.Is(err, errCorrupt) {
				t.Fatalf("error %v: want errTorn or errCorrupt", err)
			}
			if err2 == nil {
				t.Fatalf("readRecord took a record decodeRecord refused (%v)", err)
			}
			return
		}
		if n > len(b) || n != rec.size() || len(rec.payload) == 0 || len(rec.payload) > maxPayload {
			t.Fatalf("decoded %d bytes of %d, payload %d", n, len(b), len(rec.payload))
		}
		if err2 != nil || rec2.id != rec.id || rec2.more != rec.more || !bytes.Equal(rec2.payload, rec.payload) {
			t.Fatalf("readRecord: %+v %v; decodeRecord: %+v", rec2, err2, rec)
		}
		// A record that decodes as an event encodes back to itself when
		// its JSON is canonical: the format round-trips.
		if e, err := decodeEvent(rec.payload); err == nil && bytes.Equal(e.AppendJSON(nil), rec.payload) {
			if again := appendRecord(nil, rec.id, rec.more, e); !bytes.Equal(again, b[:n]) {
				t.Fatalf("re-encoded %x, want %x", again, b[:n])
			}
		}
	})
}
