package transport

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/fasthttp/router"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"

	"github.com/finexbot/eventhub/actors"
	"github.com/finexbot/eventhub/authz"
	"github.com/finexbot/eventhub/jobs"
)

// Config configures a Server. Hub, Authenticate, Permissions and Submit are
// required; the rest has working zero values.
type Config struct {
	Hub *actors.Hub
	// Authenticate turns a session token (Bearer header or __session cookie)
	// into an identity, or returns an error wrapping authz.ErrBadToken.
	Authenticate func(token string) (authz.Identity, error)
	// PublishKey authorizes POST /api/events. Empty means publishing over
	// HTTP is refused.
	PublishKey string
	// Submit hands a job to the workers (or, in a cluster, to the work
	// queue). A *jobs.RefusedError is answered 429 with its Retry-After;
	// another error 503.
	Submit func(ctx context.Context, job jobs.Job) error
	// Gatherer is what GET /metrics serves. Nil means no /metrics route.
	Gatherer prometheus.Gatherer
	// Registerer takes the transport's own metrics. Nil means a private
	// registry.
	Registerer prometheus.Registerer
	// MaxBodySize bounds the body of POST /api/events. Zero means 1 MiB.
	// The other POST routes take at most maxSmallBody, and the rest no
	// body: each limit is chosen when the request's head arrives, so a
	// body over it is refused (413) before it is read.
	MaxBodySize int
	// MaxConns bounds the client connections held at once, streams and
	// requests together; at it, a new connection evicts the request
	// connection idle the longest, or gets 503. Zero means no limit.
	MaxConns int
	// MaxConnsPerIP bounds the connections, streams included, one address
	// holds at once; past it a new one gets 429. Loopback addresses are
	// not counted (a reverse proxy on the same host is every client's
	// address). Zero means no limit.
	MaxConnsPerIP int
	// MaxSnapshots bounds the GET /api/jobs answers being written at once
	// (each at most the hub's SnapshotBytes); past it, 429 with
	// Retry-After. Zero means 16.
	MaxSnapshots int
	// MaxSnapshotsPerUser is MaxSnapshots for one user. Zero means 4.
	MaxSnapshotsPerUser int
	// Logger receives request errors worth a look. Nil discards them.
	Logger *slog.Logger

	countLoopback bool // test seam: MaxConnsPerIP counts loopback peers too
}

// maxSmallBody bounds the body of POST /api/jobs and
// POST /api/permissions/invalidate.
const maxSmallBody = 64 << 10

// noBody is the body limit of every other route. fasthttp takes zero for
// "its default", so the smallest limit it can be told is one byte.
const noBody = 1

// Server is eventhub's HTTP server. Serve and Shutdown may be called from
// different goroutines.
type Server struct {
	cfg          Config
	log          *slog.Logger
	srv          *fasthttp.Server
	authFailures map[string]prometheus.Counter // by authz.FailureReason
	refused      map[string]prometheus.Counter // requests fasthttp could not take, by reason
	head         []byte                        // every stream's first bytes; see streamHeadFor
	conns        *connLimits
	snapshots    *snapshotSlots // GET /api/jobs answers being written
	// keyDigest is the SHA-256 of PublishKey: keys are compared by digest,
	// in constant time, so neither a key's bytes nor its length leak
	// through the time a refusal takes.
	keyDigest [sha256.Size]byte
}

// New builds a Server.
func New(cfg Config) (*Server, error) {
	if cfg.MaxBodySize <= 0 {
		cfg.MaxBodySize = 1 << 20
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Registerer == nil {
		cfg.Registerer = prometheus.NewRegistry()
	}
	if cfg.MaxSnapshots <= 0 {
		cfg.MaxSnapshots = 16
	}
	if cfg.MaxSnapshotsPerUser <= 0 {
		cfg.MaxSnapshotsPerUser = 4
	}
	s := &Server{cfg: cfg, log: cfg.Logger, authFailures: map[string]prometheus.Counter{}, refused: map[string]prometheus.Counter{},
		head: streamHeadFor(cfg.Hub), keyDigest: sha256.Sum256([]byte(cfg.PublishKey))}
	failures := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "eventhub_auth_failures_total", Help: "Requests refused for want of a valid session token, by reason.",
	}, []string{"reason"})
	for _, reason := range authz.AuthFailureReasons {
		s.authFailures[reason] = failures.WithLabelValues(reason)
	}
	refused := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "eventhub_http_refused_total", Help: "Requests refused before a handler ran, by reason: body_too_large, headers_too_large, timeout, malformed.",
	}, []string{"reason"})
	for _, reason := range []string{"body_too_large", "headers_too_large", "timeout", "malformed"} {
		s.refused[reason] = refused.WithLabelValues(reason)
	}
	for _, c := range []prometheus.Collector{failures, refused} {
		if err := cfg.Registerer.Register(c); err != nil {
			return nil, fmt.Errorf("register metrics: %w", err)
		}
	}
	var err error
	if s.snapshots, err = newSnapshotSlots(cfg.MaxSnapshots, cfg.MaxSnapshotsPerUser, cfg.Registerer); err != nil {
		return nil, fmt.Errorf("register metrics: %w", err)
	}
	if s.conns, err = newConnLimits(cfg.MaxConns, cfg.MaxConnsPerIP, cfg.countLoopback, cfg.Registerer); err != nil {
		return nil, fmt.Errorf("register metrics: %w", err)
	}
	r := router.New()
	r.GET("/api/events", s.stream)
	r.POST("/api/events", s.publish)
	r.POST("/api/jobs", s.submitJob)
	r.GET("/api/jobs", s.jobSnapshot)
	r.POST("/api/permissions/invalidate", s.invalidate)
	r.GET("/healthz", func(ctx *fasthttp.RequestCtx) { writeJSON(ctx, fasthttp.StatusOK, map[string]string{"status": "ok"}) })
	r.GET("/readyz", s.ready)
	r.GET("/", s.webIndex)
	r.GET("/eventhub-client.js", s.webClient)
	r.GET("/static/{name}", s.webStatic)
	if cfg.Gatherer != nil {
		r.GET("/metrics", fasthttpadaptor.NewFastHTTPHandler(promhttp.HandlerFor(cfg.Gatherer, promhttp.HandlerOpts{})))
	}
	r.NotFound = func(ctx *fasthttp.RequestCtx) { writeError(ctx, fasthttp.StatusNotFound, "not found") }
	r.MethodNotAllowed = func(ctx *fasthttp.RequestCtx) {
		writeError(ctx, fasthttp.StatusMethodNotAllowed, "method not allowed")
	}
	r.HandleMethodNotAllowed = true
	s.srv = &fasthttp.Server{
		Handler:        r.Handler,
		Name:           "eventhub",
		ReadBufferSize: 16 << 10, // a 4.5 KB Clerk cookie gets 431 with the 4 KiB default
		// Each route's body limit is chosen from the request's head, and a
		// body over it is answered 413 before it is read (requestError
		// then closes with a lingering close, so the client reads the
		// answer). This is the ceiling, for a route bodyLimit overlooks.
		HeaderReceived:     s.bodyLimit,
		MaxRequestBodySize: cfg.MaxBodySize,
		ReadTimeout:        30 * time.Second,
		WriteTimeout:       30 * time.Second,
		IdleTimeout:        90 * time.Second,
		KeepHijackedConns:  true, // streams belong to the hub, which closes them
		// A stream request has nothing buffered after its head, so this
		// returns the connection's read buffer (ReadBufferSize) to
		// fasthttp's pool before the handler hijacks it. Without it every
		// stream leaves its buffer to the GC, and a connect burst makes
		// 16 KiB of garbage a stream.
		ReduceMemoryUsage: true,
		CloseOnShutdown:   true,
		ErrorHandler:      s.requestError,
		ConnState:         s.conns.connState,
		// fasthttp's error lines must not quote the request: its head
		// holds session tokens, cookies and the publish key.
		SecureErrorLogMessage: true,
		Logger:                newRateLogger(s.log, time.Minute),
	}
	return s, nil
}

// Serve accepts connections on ln until Shutdown. Out of descriptors, it
// waits for some to be released (see patientListener).
func (s *Server) Serve(ln net.Listener) error {
	return s.srv.Serve(&limitedListener{Listener: &patientListener{Listener: ln, log: s.log}, l: s.conns})
}

// Shutdown stops accepting and waits, until ctx is done, for the HTTP
// connections that are not streams to finish. Streams are the hub's: shut
// it down too.
func (s *Server) Shutdown(ctx context.Context) error { return s.srv.ShutdownWithContext(ctx) }

// requestError answers what fasthttp could not take, as JSON, and counts it.
func (s *Server) requestError(ctx *fasthttp.RequestCtx, err error) {
	var smallBuf *fasthttp.ErrSmallBuffer
	var netErr net.Error
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		s.refused["body_too_large"].Inc()
		// The body is unread: let the client read this before the close.
		if c, ok := ctx.Conn().(*trackedConn); ok {
			c.linger.Store(true)
		}
		limit := s.bodyLimit(&ctx.Request.Header).MaxRequestBodySize
		msg := fmt.Sprintf("body over %d bytes", limit)
		if limit == noBody {
			msg = "this route takes no body"
		}
		writeError(ctx, fasthttp.StatusRequestEntityTooLarge, msg)
	case errors.As(err, &smallBuf):
		s.refused["headers_too_large"].Inc()
		writeError(ctx, fasthttp.StatusRequestHeaderFieldsTooLarge, "request headers too large")
	case errors.As(err, &netErr) && netErr.Timeout():
		s.refused["timeout"].Inc()
		writeError(ctx, fasthttp.StatusRequestTimeout, "request timeout")
	default:
		s.refused["malformed"].Inc()
		writeError(ctx, fasthttp.StatusBadRequest, "malformed request")
	}
}

// bodyLimit is fasthttp's HeaderReceived hook: the body limit of the
// request whose head just arrived, before its body is read.
func (s *Server) bodyLimit(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
	limit := noBody
	if h.IsPost() {
		path := h.RequestURI()
		if i := bytes.IndexByte(path, '?'); i >= 0 {
			path = path[:i]
		}
		switch string(path) {
		case "/api/events":
			limit = s.cfg.MaxBodySize
		case "/api/jobs", "/api/permissions/invalidate":
			limit = maxSmallBody
		}
	}
	return fasthttp.RequestConfig{MaxRequestBodySize: limit}
}

func (s *Server) ready(ctx *fasthttp.RequestCtx) {
	if !s.cfg.Hub.Ready() {
		writeError(ctx, fasthttp.StatusServiceUnavailable, "shutting down")
		return
	}
	writeJSON(ctx, fasthttp.StatusOK, map[string]string{"status": "ready"})
}

// publish is POST /api/events: one JobEvent or an array, all or nothing.
func (s *Server) publish(ctx *fasthttp.RequestCtx) {
	if !s.publisher(ctx) {
		return
	}
	key := ctx.Request.Header.Peek("Idempotency-Key")
	if !validIdempotencyKey(key) {
		writeError(ctx, fasthttp.StatusBadRequest, fmt.Sprintf("Idempotency-Key: 1 to %d letters, digits or - _ . ~", maxIdempotencyKey))
		return
	}
	events, err := jobs.DecodeEvents(ctx.PostBody())
	if err != nil {
		writeDecodeError(ctx, err)
		return
	}
	// An Idempotency-Key makes a retried POST safe in a cluster: the log
	// stores it once and answers the same ids.
	ids, err := s.cfg.Hub.PublishWithKey(ctx, string(key), events)
	if err != nil {
		writeError(ctx, fasthttp.StatusServiceUnavailable, err.Error())
		return
	}
	writeJSON(ctx, fasthttp.StatusAccepted, map[string][]uint64{"ids": ids})
}

// maxIdempotencyKey bounds an Idempotency-Key: a UUID or a base64url
// digest fits.
const maxIdempotencyKey = 128

// validIdempotencyKey reports whether key is absent or 1 to
// maxIdempotencyKey URL-safe characters (RFC 3986 unreserved). The hub's own
// keys (a job's end) use a ':', so a publisher's key never takes one of them.
func validIdempotencyKey(key []byte) bool {
	if len(key) > maxIdempotencyKey {
		return false
	}
	for _, c := range key {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_', c == '.', c == '~':
		default:
			return false
		}
	}
	return true
}

// submitJob is POST /api/jobs: a user submits a job on a scope they may see.
//
// The body must be declared application/json: a browser sends that type
// cross-site only after a CORS preflight, which the hub never grants, so a
// page elsewhere cannot submit jobs with the user's session cookie.
func (s *Server) submitJob(ctx *fasthttp.RequestCtx) {
	if ct := string(ctx.Request.Header.ContentType()); !strings.HasPrefix(strings.ToLower(ct), "application/json") {
		writeError(ctx, fasthttp.StatusUnsupportedMediaType, "Content-Type must be application/json")
		return
	}
	id, perms, ok := s.authenticate(ctx)
	if !ok {
		return
	}
	job, err := jobs.DecodeJob(ctx.PostBody())
	if err != nil {
		writeDecodeError(ctx, err)
		return
	}
	if !perms.AllowsScope(job.AssetID, job.ScenarioID) {
		writeError(ctx, fasthttp.StatusForbidden, "not allowed on this job's asset or scenario")
		return
	}
	if !s.cfg.Hub.Ready() {
		writeError(ctx, fasthttp.StatusServiceUnavailable, "shutting down")
		return
	}
	job.ID = jobs.NewJobID()
	job.User = id.User
	if err := s.cfg.Submit(ctx, job); err != nil {
		var refused *jobs.RefusedError
		if errors.As(err, &refused) {
			ctx.Response.Header.Set("Retry-After", strconv.Itoa(refused.RetrySeconds()))
			writeError(ctx, fasthttp.StatusTooManyRequests, refused.Error())
			return
		}
		writeError(ctx, fasthttp.StatusServiceUnavailable, "job not queued: "+err.Error())
		return
	}
	writeJSON(ctx, fasthttp.StatusAccepted, map[string]string{"jobId": job.ID})
}

func writeDecodeError(ctx *fasthttp.RequestCtx, err error) {
	var verr *jobs.ValidationError
	switch {
	case errors.As(err, &verr):
		writeError(ctx, fasthttp.StatusUnprocessableEntity, err.Error())
	case errors.Is(err, jobs.ErrTooManyEvents):
		writeError(ctx, fasthttp.StatusRequestEntityTooLarge, err.Error())
	default:
		writeError(ctx, fasthttp.StatusBadRequest, err.Error())
	}
}

// authenticate answers 401, 403 or 503 itself and reports false when the
// request may not go on. The permissions come from the user's actor: cached,
// or loaded from the source before this returns.
func (s *Server) authenticate(ctx *fasthttp.RequestCtx) (authz.Identity, *authz.Permissions, bool) {
	token, ok := sessionToken(ctx)
	if !ok {
		s.authFailures["no_token"].Inc()
		writeError(ctx, fasthttp.StatusUnauthorized, authz.ErrNoToken.Error())
		return authz.Identity{}, nil, false
	}
	id, err := s.cfg.Authenticate(token)
	if err != nil {
		s.authFailures[authz.FailureReason(err)].Inc()
		writeError(ctx, fasthttp.StatusUnauthorized, err.Error())
		return authz.Identity{}, nil, false
	}
	perms, err := s.cfg.Hub.Authorize(ctx, id.User)
	switch {
	case err != nil:
		ctx.Response.Header.Set("Retry-After", "5")
		writeError(ctx, fasthttp.StatusServiceUnavailable, err.Error())
		return authz.Identity{}, nil, false
	case perms.None():
		writeError(ctx, fasthttp.StatusForbidden, "no permissions for this user")
		return authz.Identity{}, nil, false
	}
	return id, perms, true
}

// invalidate is POST /api/permissions/invalidate {"userId":"…"}: the user's
// permissions are reloaded now, and in force when this answers.
func (s *Server) invalidate(ctx *fasthttp.RequestCtx) {
	if !s.publisher(ctx) {
		return
	}
	var body struct {
		UserID string `json:"userId"`
	}
	dec := json.NewDecoder(bytes.NewReader(ctx.PostBody()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		writeError(ctx, fasthttp.StatusBadRequest, "malformed json: want {\"userId\":\"…\"}")
		return
	}
	if err := authz.CheckUserID(body.UserID); err != nil {
		writeError(ctx, fasthttp.StatusUnprocessableEntity, "userId: "+err.Error())
		return
	}
	if err := s.cfg.Hub.Invalidate(ctx, body.UserID); err != nil {
		writeError(ctx, fasthttp.StatusServiceUnavailable, err.Error())
		return
	}
	writeJSON(ctx, fasthttp.StatusOK, map[string]string{"invalidated": body.UserID})
}

// publisher checks the publish key, answering 401 itself.
func (s *Server) publisher(ctx *fasthttp.RequestCtx) bool {
	key, ok := bearer(ctx)
	if ok {
		digest := sha256.Sum256([]byte(key))
		ok = subtle.ConstantTimeCompare(digest[:], s.keyDigest[:]) == 1
	}
	if !ok || s.cfg.PublishKey == "" {
		writeError(ctx, fasthttp.StatusUnauthorized, "invalid publish key")
		return false
	}
	return true
}

// sessionToken finds the caller's session: a Bearer token, or else Clerk's
// __session cookie (EventSource cannot set headers).
func sessionToken(ctx *fasthttp.RequestCtx) (string, bool) {
	if len(ctx.Request.Header.Peek(fasthttp.HeaderAuthorization)) > 0 {
		return bearer(ctx)
	}
	if c := ctx.Request.Header.Cookie("__session"); len(c) > 0 {
		return string(c), true
	}
	return "", false
}

func bearer(ctx *fasthttp.RequestCtx) (string, bool) {
	h := ctx.Request.Header.Peek(fasthttp.HeaderAuthorization)
	const prefix = "Bearer "
	if len(h) <= len(prefix) || !strings.EqualFold(string(h[:len(prefix)]), prefix) {
		return "", false
	}
	return string(h[len(prefix):]), true
}
