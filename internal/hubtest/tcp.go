package hubtest

import (
	"net"
	"testing"
)

// TCPPair returns the two ends of a connected loopback TCP connection: the
// server's (accepted, the end a hub or a sock.Conn writes to) and the
// client's (dialed). Both are *net.TCPConn, for a test that sets socket
// options. Both are closed when the test ends; a server end handed to
// something that closes it itself is closed twice, which is harmless.
func TCPPair(t testing.TB) (server, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1) // capacity 1: the test may fail before receiving
	go func() {
		c, _ := ln.Accept() // nil on an error: the listener is closed when TCPPair returns
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	server = <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { server.Close() })
	return server, client
}
