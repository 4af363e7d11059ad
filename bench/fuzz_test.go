package bench

import (
	"bufio"
	"bytes"
	"testing"
)

// FuzzSSEReader feeds arbitrary bytes to the stream parser and response
// head reader: they must never panic, and every event they return must
// carry data.
func FuzzSSEReader(f *testing.F) {
	f.Add([]byte("id: 1\nevent: job\ndata: {\"ts\":1,\"seq\":2}\n\n"))
	f.Add([]byte(":ping\n\nretry: 3000\n\ndata: {\"ts\": 99999999999999999999}\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		readResponseHead(bufio.NewReaderSize(bytes.NewReader(in), 16))
		r := sseReader{br: bufio.NewReaderSize(bytes.NewReader(in), 16)}
		for range 1000 {
			ev, err := r.next()
			if err != nil {
				return
			}
			if !ev.hasData {
				t.Fatalf("event without data: %+v", ev)
			}
			if ev.hasTS && ev.ts < 0 || ev.hasSeq && ev.seq < 0 {
				t.Fatalf("negative integer: %+v", ev)
			}
		}
	})
}
