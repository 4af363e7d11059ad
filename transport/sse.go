package transport

import (
	"errors"
	"fmt"
	"net"
	"strconv"

	"github.com/valyala/fasthttp"

	"github.com/finexbot/eventhub/actors"
)

// streamHead is the response head of every stream, with the first retry
// hint. There is no Content-Length and no chunking: the body ends when the
// connection does, which every SSE client expects.
var streamHead = []byte("HTTP/1.1 200 OK\r\n" +
	"Content-Type: text/event-stream; charset=utf-8\r\n" +
	"Cache-Control: no-cache\r\n" +
	"Connection: keep-alive\r\n" +
	"X-Accel-Buffering: no\r\n" +
	"\r\n")

// stream is GET /api/events. Everything that can refuse the stream is
// checked and answered here, before the connection is hijacked.
func (s *Server) stream(ctx *fasthttp.RequestCtx) {
	hub := s.cfg.Hub
	id, _, ok := s.authenticate(ctx) // the hub routes with the user actor's own permissions
	if !ok {
		switch ctx.Response.StatusCode() {
		case fasthttp.StatusForbidden:
			hub.RecordStreamError(actors.StreamForbidden)
		case fasthttp.StatusServiceUnavailable:
			hub.RecordStreamError(actors.StreamUnavailable)
		default:
			hub.RecordStreamError(actors.StreamUnauthorized)
		}
		return
	}
	filter, err := parseFilter(ctx)
	if err != nil {
		hub.RecordStreamError(actors.StreamBadRequest)
		writeError(ctx, fasthttp.StatusBadRequest, err.Error())
		return
	}
	req := actors.StreamRequest{User: id.User, Filter: filter, Expires: id.Expires}
	req.Resume, req.LastEventID, err = lastEventID(ctx)
	if err == nil {
		req.Conflate, err = conflate(ctx)
	}
	if err != nil {
		hub.RecordStreamError(actors.StreamBadRequest)
		writeError(ctx, fasthttp.StatusBadRequest, err.Error())
		return
	}
	ticket, err := hub.Admit(id.User)
	switch {
	case errors.Is(err, actors.ErrClosed):
		hub.RecordStreamError(actors.StreamUnavailable)
		ctx.Response.Header.Set("Retry-After", "3")
		writeError(ctx, fasthttp.StatusServiceUnavailable, err.Error())
		return
	case err != nil:
		hub.RecordStreamError(actors.StreamTooMany)
		writeError(ctx, fasthttp.StatusTooManyRequests, err.Error())
		return
	}
	req.Head = s.head
	ctx.HijackSetNoResponse(true)
	ctx.Hijack(func(c net.Conn) {
		// Read from the socket itself, not through fasthttp's buffered
		// reader, so the request's read buffer goes back to the GC now.
		if u, ok := c.(interface{ UnsafeConn() net.Conn }); ok {
			c = u.UnsafeConn()
		}
		if tc, ok := c.(*trackedConn); ok {
			s.conns.toStream(tc) // counted until the hub closes it
		}
		_ = hub.Open(c, ticket, req) // on error the hub has closed c and released ticket
	})
}

// streamHeadFor is the bytes a stream starts with: the response head and
// the hub's retry hint.
func streamHeadFor(hub *actors.Hub) []byte {
	head := append([]byte(nil), streamHead...)
	head = append(head, "retry: "...)
	head = strconv.AppendInt(head, hub.RetryHint().Milliseconds(), 10)
	return append(head, "\n\n"...)
}

// conflate reads whether the stream asks for conflation: conflate=1 (or 0,
// the default).
func conflate(ctx *fasthttp.RequestCtx) (bool, error) {
	args := ctx.QueryArgs()
	if !args.Has("conflate") {
		return false, nil
	}
	switch v := string(args.Peek("conflate")); v {
	case "1":
		return true, nil
	case "0":
		return false, nil
	default:
		if len(v) > 8 {
			v = v[:8] + "…"
		}
		return false, fmt.Errorf("conflate: %q is not 1 or 0", v)
	}
}

// lastEventID reads where a stream resumes: the Last-Event-ID header a
// browser sends when it reconnects by itself, else the lastEventId query
// parameter of a client that rebuilt its EventSource. The header wins: on an
// automatic reconnect the browser reuses the old URL with its old query.
func lastEventID(ctx *fasthttp.RequestCtx) (resume bool, id uint64, err error) {
	raw := ctx.Request.Header.Peek("Last-Event-ID")
	source := "Last-Event-ID"
	if len(raw) == 0 {
		raw = ctx.QueryArgs().Peek("lastEventId")
		source = "lastEventId"
	}
	if len(raw) == 0 {
		return false, 0, nil
	}
	id, err = parseEventID(raw)
	if err != nil {
		return false, 0, fmt.Errorf("%s: %w", source, err)
	}
	return true, id, nil
}

// parseEventID accepts the decimal ids the hub gives: 1 to 20 digits that
// fit a uint64. Nothing else (no sign, no space, no hex).
func parseEventID(raw []byte) (uint64, error) {
	if len(raw) > 20 {
		return 0, errors.New("not an event id: too long")
	}
	for _, c := range raw {
		if c < '0' || c > '9' {
			return 0, errors.New("not an event id: want decimal digits")
		}
	}
	id, err := strconv.ParseUint(string(raw), 10, 64)
	if err != nil {
		return 0, errors.New("not an event id: out of range")
	}
	return id, nil
}
