package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Floor is the lean SSE server eventhub is measured against: it does the
// least any SSE hub must do, so what eventhub costs above it is eventhub's
// own. Any GET (but /metrics) is a stream: a 200 text/event-stream head,
// then one small reader goroutine per connection that notices EOF. Any POST
// is a publish: its body (newlines turned into spaces) becomes one shared
// frame "data: <body>\n\n", written to every stream in turn by a single
// goroutine, each write with a deadline. GET /metrics answers a few
// counters in the Prometheus text format.
//
// With Assets set, the floor routes as the harness's users are allowed to
// see (Config.Assets): a stream whose request carries user bench-u<i>'s
// token gets only the events whose "assetId" is a<i mod Assets> (any
// other stream gets none), and the streams of an asset are written in the
// order they came. It looks up nothing else: it is the least a server that
// filters must do.
//
// Serve may be called once; Close stops it and waits for its goroutines.
type Floor struct {
	// WriteTimeout bounds each write of a frame to a stream; a stream that
	// misses it is closed and counted as slow. Zero means 10 s.
	WriteTimeout time.Duration
	// Assets, when set, makes the floor selective (see Floor).
	Assets int

	mu      sync.Mutex
	streams map[net.Conn]int // a stream's asset; -1 for every event
	byAsset [][]net.Conn     // with Assets, the streams of each asset in the order they came
	ln      net.Listener
	conns   map[net.Conn]struct{} // every open connection, for Close
	closed  bool

	frames chan floorFrame
	done   chan struct{}
	wg     sync.WaitGroup

	delivered, slow, published atomic.Int64
}

// floorFrame is a published frame and its asset (-1: for every stream).
type floorFrame struct {
	bytes []byte
	asset int
}

var floorHead = []byte("HTTP/1.1 200 OK\r\n" +
	"Content-Type: text/event-stream; charset=utf-8\r\n" +
	"Cache-Control: no-cache\r\n" +
	"Connection: keep-alive\r\n" +
	"X-Accel-Buffering: no\r\n\r\n")

// maxPublishBody bounds a publish body.
const maxPublishBody = 1 << 20

var headReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 8<<10) }}

// Serve accepts connections on ln until Close. It returns nil after Close.
func (f *Floor) Serve(ln net.Listener) error {
	f.mu.Lock()
	if f.ln != nil || f.closed {
		f.mu.Unlock()
		return errors.New("floor: Serve called twice or after Close")
	}
	f.ln = ln
	f.streams = map[net.Conn]int{}
	if f.Assets > 0 {
		f.byAsset = make([][]net.Conn, f.Assets)
	}
	f.conns = map[net.Conn]struct{}{}
	f.frames = make(chan floorFrame, 1024)
	f.done = make(chan struct{})
	f.wg.Add(1)
	f.mu.Unlock()
	go f.broadcast()
	for {
		c, err := ln.Accept()
		if err != nil {
			f.mu.Lock()
			closed := f.closed
			f.mu.Unlock()
			if closed {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() { // EMFILE and friends: back off
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return fmt.Errorf("floor: accept: %w", err)
		}
		f.mu.Lock()
		if f.closed {
			f.mu.Unlock()
			c.Close()
			return nil
		}
		f.conns[c] = struct{}{}
		f.wg.Add(1)
		f.mu.Unlock()
		go f.serveConn(c)
	}
}

// ServeUntil serves ln as Serve does until ctx is done, then closes the
// floor and returns Serve's result.
func (f *Floor) ServeUntil(ctx context.Context, ln net.Listener) error {
	served := make(chan error, 1) // capacity 1: Serve's result may go unread
	go func() { served <- f.Serve(ln) }()
	select {
	case <-ctx.Done():
		f.Close()
		return <-served
	case err := <-served:
		f.Close()
		return err
	}
}

// Close stops accepting, closes every connection and waits for the floor's
// goroutines. It is idempotent.
func (f *Floor) Close() error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil
	}
	f.closed = true
	if f.ln == nil {
		f.mu.Unlock()
		return nil
	}
	f.ln.Close()
	for c := range f.conns {
		c.Close()
	}
	close(f.done)
	f.mu.Unlock()
	f.wg.Wait()
	return nil
}

// serveConn reads requests from one connection: a GET turns it into a
// stream, a POST publishes and the connection stays open for the next.
func (f *Floor) serveConn(c net.Conn) {
	defer f.wg.Done()
	cleanup := true // false once a watcher owns the connection
	defer func() {
		if cleanup {
			f.forget(c)
		}
	}()
	br := headReaders.Get().(*bufio.Reader)
	br.Reset(c)
	defer func() {
		if br != nil {
			br.Reset(nil)
			headReaders.Put(br)
		}
	}()
	for {
		method, path, length, user, err := readRequestHead(br)
		if err != nil {
			return
		}
		switch {
		case method == "POST":
			if length < 0 || length > maxPublishBody {
				io.WriteString(c, "HTTP/1.1 413 Request Entity Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
				return
			}
			frame := make([]byte, 0, len("data: \n\n")+length)
			frame = append(frame, "data: "...)
			body := frame[len(frame) : len(frame)+length]
			if _, err := io.ReadFull(br, body); err != nil {
				return
			}
			for i, b := range body {
				if b == '\r' || b == '\n' {
					body[i] = ' '
				}
			}
			frame = append(frame[:len(frame)+length], "\n\n"...)
			asset := -1
			if f.Assets > 0 {
				asset = eventAsset(body, f.Assets)
			}
			select {
			case f.frames <- floorFrame{frame, asset}:
			case <-f.done:
				return
			}
			f.published.Add(1)
			if _, err := io.WriteString(c, "HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"); err != nil {
				return
			}
		case method == "GET" && path == "/metrics":
			f.mu.Lock()
			active := len(f.streams)
			f.mu.Unlock()
			body := fmt.Sprintf("floor_streams_active %d\nfloor_events_published_total %d\nfloor_events_delivered_total %d\nfloor_streams_closed_total{reason=\"slow\"} %d\n",
				active, f.published.Load(), f.delivered.Load(), f.slow.Load())
			if _, err := fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: %d\r\n\r\n%s", len(body), body); err != nil {
				return
			}
		case method == "GET":
			if _, err := c.Write(floorHead); err != nil {
				return
			}
			// The head reader goes back to the pool: a stream only needs to
			// notice EOF, and a small buffer does that.
			br.Reset(nil)
			headReaders.Put(br)
			br = nil
			asset := -1
			if f.Assets > 0 {
				asset = userAsset(user, f.Assets)
			}
			f.mu.Lock()
			f.streams[c] = asset
			if asset >= 0 {
				f.byAsset[asset] = append(f.byAsset[asset], c)
			}
			f.mu.Unlock()
			// A fresh goroutine watches for EOF: it starts with the smallest
			// stack, where this one may have grown parsing the request.
			f.wg.Add(1)
			go f.watch(c)
			cleanup = false
			return
		default:
			io.WriteString(c, "HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
			return
		}
	}
}

// forget closes c and drops it from the floor's sets.
func (f *Floor) forget(c net.Conn) {
	f.mu.Lock()
	delete(f.conns, c)
	if asset, ok := f.streams[c]; ok && asset >= 0 {
		list := f.byAsset[asset]
		if i := slices.Index(list, c); i >= 0 {
			f.byAsset[asset] = slices.Delete(list, i, i+1)
		}
	}
	delete(f.streams, c)
	f.mu.Unlock()
	c.Close()
}

// watch reads from a stream until it ends, so that a departed client is
// noticed at once, then forgets it.
func (f *Floor) watch(c net.Conn) {
	defer f.wg.Done()
	defer f.forget(c)
	var buf [16]byte
	for {
		if _, err := c.Read(buf[:]); err != nil {
			return
		}
	}
}

// broadcast writes each published frame to every stream it is for, one
// after the other, from this one goroutine.
func (f *Floor) broadcast() {
	defer f.wg.Done()
	timeout := f.WriteTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	var targets []net.Conn
	for {
		var fr floorFrame
		select {
		case fr = <-f.frames:
		case <-f.done:
			return
		}
		frame := fr.bytes
		f.mu.Lock()
		targets = targets[:0]
		switch {
		case fr.asset >= 0:
			targets = append(targets, f.byAsset[fr.asset]...)
		case f.Assets > 0:
			// Not one of the assets: for no stream.
		default:
			for c := range f.streams {
				targets = append(targets, c)
			}
		}
		f.mu.Unlock()
		for _, c := range targets {
			c.SetWriteDeadline(time.Now().Add(timeout))
			if _, err := c.Write(frame); err != nil {
				if errors.Is(err, net.ErrClosed) {
					continue
				}
				if errors.Is(err, os.ErrDeadlineExceeded) {
					f.slow.Add(1)
				}
				c.Close() // its reader sees the error and forgets it
				continue
			}
			f.delivered.Add(1)
		}
		clear(targets) // do not keep closed conns reachable
	}
}

// readRequestHead reads one HTTP/1.x request head and returns its method,
// path, Content-Length (-1 if absent or bad) and the user of its
// "Authorization: Bearer dev:<user>" header (empty without).
func readRequestHead(br *bufio.Reader) (method, path string, length int, user string, err error) {
	r := sseReader{br: br}
	line, err := r.readLine()
	if err != nil {
		return "", "", 0, "", err
	}
	m, rest, ok := bytes.Cut(line, []byte(" "))
	if !ok {
		return "", "", 0, "", fmt.Errorf("%w: request line %q", ErrBadResponse, line)
	}
	p, _, _ := bytes.Cut(rest, []byte(" "))
	if q := bytes.IndexByte(p, '?'); q >= 0 {
		p = p[:q]
	}
	method, path, length = string(m), string(p), -1
	for {
		line, err := r.readLine()
		if err != nil {
			return "", "", 0, "", err
		}
		if len(line) == 0 {
			return method, path, length, user, nil
		}
		k, v, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		k, v = bytes.TrimSpace(k), bytes.TrimSpace(v)
		switch {
		case bytes.EqualFold(k, []byte("Content-Length")):
			n, err := strconv.Atoi(string(v))
			if err == nil && n >= 0 {
				length = n
			}
		case bytes.EqualFold(k, []byte("Authorization")):
			if u, ok := bytes.CutPrefix(v, []byte("Bearer dev:")); ok {
				user = string(u)
			}
		}
	}
}

// userAsset is the asset index of the harness's user bench-u<i> among
// assets (userPermissions), or -1 for any other user.
func userAsset(user string, assets int) int {
	digits, ok := strings.CutPrefix(user, benchUser)
	if !ok {
		return -1
	}
	i, err := strconv.Atoi(digits)
	if err != nil || i < 0 {
		return -1
	}
	return i % assets
}

// eventAsset is the index of the asset a<n> that an event's body names in
// its "assetId", or -1 if it names none below assets.
func eventAsset(body []byte, assets int) int {
	const key = `"assetId":"a`
	i := bytes.Index(body, []byte(key))
	if i < 0 {
		return -1
	}
	rest := body[i+len(key):]
	end := bytes.IndexByte(rest, '"')
	if end < 0 {
		return -1
	}
	n, err := strconv.Atoi(string(rest[:end]))
	if err != nil || n < 0 || n >= assets {
		return -1
	}
	return n
}
