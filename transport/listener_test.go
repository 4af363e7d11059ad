package transport

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"syscall"
	"testing"
)

// failingListener fails its first n Accepts with err, then accepts on the
// real loopback listener inside it: the process being out of descriptors
// cannot be arranged for one test without starving the others.
type failingListener struct {
	net.Listener
	n   int
	err error
}

func (l *failingListener) Accept() (net.Conn, error) {
	if l.n > 0 {
		l.n--
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: l.err}
	}
	return l.Listener.Accept()
}

// TestPatientListener: out of descriptors, Accept waits and tries again
// (fasthttp would stop serving); any other error is returned at once.
func TestPatientListener(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))

	pl := &patientListener{Listener: &failingListener{Listener: ln, n: 3, err: syscall.EMFILE}, log: quiet}
	go func() {
		if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
			defer c.Close()
			fmt.Fprint(c, "x")
		}
	}()
	c, err := pl.Accept()
	if err != nil {
		t.Fatalf("Accept after three EMFILE: %v", err)
	}
	c.Close()

	pl = &patientListener{Listener: &failingListener{Listener: ln, n: 1, err: syscall.EINVAL}, log: quiet}
	if _, err := pl.Accept(); err == nil {
		t.Fatal("Accept hid a permanent error")
	}
}
