package sock

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/finexbot/eventhub/internal/hubtest"
)

// waitTimeout bounds every wait of these tests.
const waitTimeout = 10 * time.Second

// opaque hides a net.Conn's descriptor, so a Conn made from it writes
// through the net.Conn: the path of other systems, tested here too.
type opaque struct{ net.Conn }

// writePaths are the two ways a Conn writes to a TCP socket: straight on
// its descriptor (on Linux), and through the net.Conn under a deadline.
var writePaths = []struct {
	name string
	wrap func(net.Conn) net.Conn
}{
	{"descriptor", func(c net.Conn) net.Conn { return c }},
	{"net.Conn", func(c net.Conn) net.Conn { return opaque{c} }},
}

// smallPair is a hubtest.TCPPair with socket buffers small enough that a
// few MiB fill them, and large enough (about a loopback segment) that a
// reading client drains them without stalling on delayed acknowledgements.
func smallPair(t *testing.T) (server, client net.Conn) {
	server, client = hubtest.TCPPair(t)
	if err := server.(*net.TCPConn).SetWriteBuffer(64 << 10); err != nil {
		t.Fatal(err)
	}
	if err := client.(*net.TCPConn).SetReadBuffer(64 << 10); err != nil {
		t.Fatal(err)
	}
	return server, client
}

// eachWritePath runs test, in parallel, on a Conn of each of writePaths
// over a smallPair, with the pair's client end.
func eachWritePath(t *testing.T, test func(t *testing.T, c *Conn, client net.Conn)) {
	for _, p := range writePaths {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			server, client := smallPair(t)
			c := Wrap(p.wrap(server))
			test(t, &c, client)
		})
	}
}

// payload is n bytes that tell their offset apart, in chunks of size.
func payload(n, size int) (whole []byte, chunks net.Buffers) {
	whole = make([]byte, n)
	for i := range whole {
		whole[i] = byte('a' + i%26 + i/4096%7)
	}
	for b := whole; len(b) > 0; b = b[min(size, len(b)):] {
		chunks = append(chunks, b[:min(size, len(b))])
	}
	return whole, chunks
}

// TestTryWriteFullSocket: TryWrite on a socket whose client does not read
// returns ErrWouldBlock at once, leaves exactly what the socket did not
// take at the front of the caller's array, and Write then delivers the
// rest: the client reads every byte once, in order.
func TestTryWriteFullSocket(t *testing.T) {
	eachWritePath(t, func(t *testing.T, c *Conn, client net.Conn) {
		whole, chunks := payload(4<<20, 1000) // far more than the buffers hold
		bufs := chunks
		array := &bufs[0]
		start := time.Now()
		err := c.TryWrite(&bufs)
		if took := time.Since(start); took > time.Second {
			t.Errorf("TryWrite on a full socket took %v: it must not wait", took)
		}
		if err != ErrWouldBlock {
			t.Fatalf("TryWrite of %d bytes to a socket nobody reads: %v, want ErrWouldBlock", len(whole), err)
		}
		if len(bufs) == 0 || &bufs[0] != array {
			t.Fatalf("TryWrite left %d buffers, not at the front of the caller's array", len(bufs))
		}
		left := 0
		for _, b := range bufs {
			left += len(b)
		}
		written := len(whole) - left
		if written == 0 || !bytes.Equal(bytes.Join(bufs, nil), whole[written:]) {
			t.Fatalf("TryWrite wrote %d bytes and left buffers that are not the rest of the payload", written)
		}

		got := make(chan []byte, 1) // capacity 1: the test may fail before receiving
		go func() {
			b, _ := io.ReadAll(client)
			got <- b
		}()
		if err := c.Write(&bufs, time.Minute); err != nil {
			t.Fatalf("Write with a reading client: %v", err)
		}
		if len(bufs) != 0 {
			t.Fatalf("Write returned nil and left %d buffers", len(bufs))
		}
		c.Shutdown()
		select {
		case b := <-got:
			if !bytes.Equal(b, whole) {
				t.Fatalf("client read %d bytes, want the %d written, in order", len(b), len(whole))
			}
		case <-time.After(waitTimeout):
			t.Fatal("client saw no EOF after Shutdown")
		}
	})
}

// TestWriteTimeout: Write to a socket nobody reads fails with a deadline
// error after its timeout, and leaves the rest in the buffers.
func TestWriteTimeout(t *testing.T) {
	eachWritePath(t, func(t *testing.T, c *Conn, _ net.Conn) {
		_, bufs := payload(8<<20, 64<<10)
		err := c.Write(&bufs, 50*time.Millisecond)
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("Write to a full socket: %v, want a deadline error", err)
		}
		if len(bufs) == 0 {
			t.Fatal("Write timed out and left nothing to write")
		}
	})
}

// TestShutdownWakesWriter: Shutdown, from another goroutine, ends a Write
// blocked on a full socket, the client reads what was written and then
// EOF, and a later write fails rather than going anywhere.
func TestShutdownWakesWriter(t *testing.T) {
	eachWritePath(t, func(t *testing.T, c *Conn, client net.Conn) {
		_, bufs := payload(8<<20, 64<<10)
		done := make(chan error, 1) // capacity 1: the test may fail before receiving
		go func() { done <- c.Write(&bufs, time.Minute) }()
		// Blocked: the socket is full and the client does not read.
		select {
		case err := <-done:
			t.Fatalf("Write to a full socket returned %v before Shutdown", err)
		case <-time.After(50 * time.Millisecond):
		}
		c.Shutdown()
		select {
		case err := <-done:
			if err == nil {
				t.Fatal("Write returned nil after Shutdown with data left")
			}
		case <-time.After(waitTimeout):
			t.Fatal("Shutdown did not wake a blocked Write")
		}
		client.SetReadDeadline(time.Now().Add(waitTimeout))
		if _, err := io.Copy(io.Discard, client); err != nil {
			t.Fatalf("client read after Shutdown: %v, want EOF", err)
		}
		one := net.Buffers{[]byte("x")}
		if err := c.TryWrite(&one); err == nil || err == ErrWouldBlock {
			t.Fatalf("TryWrite after Shutdown: %v, want an error", err)
		}
		c.Shutdown() // again: a no-op
		if err := c.Close(); err != nil {
			t.Fatalf("Close after Shutdown: %v", err)
		}
	})
}

// TestAwaitHangUp: the reader of an unwatched connection returns when the
// client hangs up, after reading and dropping what it sent, and when the
// connection is shut down.
func TestAwaitHangUp(t *testing.T) {
	cases := []struct {
		name string
		end  func(c *Conn, client net.Conn)
	}{
		{"client closes", func(_ *Conn, client net.Conn) {
			client.Write([]byte("chatter"))
			client.Close()
		}},
		{"shutdown", func(c *Conn, _ net.Conn) { c.Shutdown() }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			server, client := hubtest.TCPPair(t)
			c := Wrap(server)
			done := make(chan struct{})
			go func() {
				c.AwaitHangUp()
				close(done)
			}()
			tc.end(&c, client)
			select {
			case <-done:
			case <-time.After(waitTimeout):
				t.Fatal("AwaitHangUp did not return")
			}
		})
	}
}

// TestTryWriteAllocs: the hot path, one frame or a few in one write to a
// socket with room, allocates nothing.
func TestTryWriteAllocs(t *testing.T) {
	server, client := hubtest.TCPPair(t)
	go io.Copy(io.Discard, client)
	c := Wrap(server)
	frame := []byte("id: 7\nevent: job\ndata: {\"job\":\"j1\",\"state\":\"started\"}\n\n")
	bufs := make(net.Buffers, 0, 64)
	for _, n := range []int{1, 16, 64} {
		allocs := testing.AllocsPerRun(200, func() {
			for range n {
				bufs = append(bufs, frame)
			}
			for len(bufs) > 0 {
				if err := c.TryWrite(&bufs); err != nil && err != ErrWouldBlock {
					t.Fatal(err)
				}
			}
		})
		if allocs != 0 && runtime.GOOS == "linux" {
			t.Errorf("TryWrite of %d frames: %v allocations, want 0", n, allocs)
		}
	}
}

// BenchmarkTryWrite: frames written to a loopback socket whose client
// drains it, the conn actor's hot path.
func BenchmarkTryWrite(b *testing.B) {
	for _, n := range []int{1, 16} {
		b.Run(map[int]string{1: "frames=1", 16: "frames=16"}[n], func(b *testing.B) {
			server, client := hubtest.TCPPair(b)
			go io.Copy(io.Discard, client)
			c := Wrap(server)
			frame := []byte("id: 12345\nevent: job\ndata: {\"job\":\"j-1\",\"state\":\"completed\",\"asset\":\"a1\"}\n\n")
			bufs := make(net.Buffers, 0, 64)
			b.ReportAllocs()
			b.SetBytes(int64(n * len(frame)))
			for b.Loop() {
				for range n {
					bufs = append(bufs, frame)
				}
				for len(bufs) > 0 {
					if err := c.TryWrite(&bufs); err != nil && err != ErrWouldBlock {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
