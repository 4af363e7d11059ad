package authz

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/clerk/clerk-sdk-go/v2"
	"github.com/clerk/clerk-sdk-go/v2/user"
)

// Source is where users' permissions come from: a file (*FileSource), the
// application's backend over HTTP (*HTTPSource) or Clerk user metadata
// (*ClerkSource). Implementations are safe for concurrent use.
type Source interface {
	// Permissions returns what user may see: an empty, non-nil value for a
	// user the source does not know, and an error only when the source could
	// not answer (the caller then keeps what it knew for a while, then denies).
	Permissions(ctx context.Context, user string) (*Permissions, error)
}

var (
	_ Source = (*FileSource)(nil)
	_ Source = (*HTTPSource)(nil)
	_ Source = (*ClerkSource)(nil)
)

// ErrSourceUnavailable wraps every failure of a source to answer.
var ErrSourceUnavailable = errors.New("permissions source unavailable")

// none is the permissions of a user a source does not know.
func none() *Permissions { return &Permissions{} }

// FileSource serves permissions from a JSON file (the Table format), kept in
// memory and reloaded when the file changes (Watch) or on demand (Reload,
// e.g. on SIGHUP). A file that fails to parse leaves the last good table in
// force.
type FileSource struct {
	path  string // empty for the built-in demo table
	table atomic.Pointer[Table]

	mu   sync.Mutex        // guards last and seen; serializes reloads
	last [sha256.Size]byte // digest of the contents the table was built from
	// seen is the size and modification time of the file last read: a
	// reload that finds both unchanged does not read it again (see
	// remember).
	seen struct {
		size int64
		mod  time.Time
	}
}

// NewFileSource loads path. An empty path means the built-in demo table.
func NewFileSource(path string) (*FileSource, error) {
	s := &FileSource{path: path}
	if path == "" {
		s.table.Store(DemoTable())
		return s, nil
	}
	if _, err := s.Reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// Permissions implements Source; it never fails.
func (s *FileSource) Permissions(_ context.Context, user string) (*Permissions, error) {
	if p, ok := s.table.Load().Lookup(user); ok {
		return p, nil
	}
	return none(), nil
}

// Table is the table in force.
func (s *FileSource) Table() *Table { return s.table.Load() }

// Reload rereads the file and reports whether the table changed. On error
// the table in force stays.
func (s *FileSource) Reload() (changed bool, err error) {
	if s.path == "" {
		return false, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	fi, err := os.Stat(s.path)
	if err != nil {
		return false, fmt.Errorf("read permissions: %w", err)
	}
	if fi.Size() == s.seen.size && fi.ModTime().Equal(s.seen.mod) {
		return false, nil
	}
	data, err := os.ReadFile(s.path)
	if err != nil {
		return false, fmt.Errorf("read permissions: %w", err)
	}
	sum := sha256.Sum256(data)
	if sum == s.last {
		s.remember(fi)
		return false, nil
	}
	t, err := ParseTable(data)
	if err != nil {
		return false, fmt.Errorf("%s: %w", s.path, err)
	}
	s.table.Store(t)
	s.last = sum
	s.remember(fi)
	return true, nil
}

// remember keeps the size and modification time of the file just read, so
// that the next reloads skip reading it while they stay the same; unless it
// changed in the last two seconds: a file system may keep modification
// times coarser than that, and a file written twice within one tick, at the
// same size, would look unchanged.
func (s *FileSource) remember(fi os.FileInfo) {
	s.seen.size, s.seen.mod = -1, time.Time{}
	if time.Since(fi.ModTime()) > 2*time.Second {
		s.seen.size, s.seen.mod = fi.Size(), fi.ModTime()
	}
}

// Watch reloads the file every interval until ctx is done, calling
// onChange after each reload that changed the table and onError for a file
// that could not be loaded. It returns when ctx is done; the caller owns the
// goroutine it runs on.
func (s *FileSource) Watch(ctx context.Context, interval time.Duration, onChange func(), onError func(error)) {
	if s.path == "" {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			changed, err := s.Reload()
			switch {
			case err != nil:
				onError(err)
			case changed:
				onChange()
			}
		}
	}
}

// HTTPSource asks the application's backend: GET <url>?userId=<id>, answered
// with one user's permissions, {"assets":[…],"scenarios":[…],"admin":…}. A
// 404 means the user has none. Requests time out and are bounded in number;
// a failure is returned, not retried: the caller decides when to ask again.
type HTTPSource struct {
	url    *url.URL
	client *http.Client
	sem    chan struct{} // one slot per request in flight
}

// NewHTTPSource builds a source on rawURL. client nil means a 5s timeout;
// concurrency ≤ 0 means 16 requests at once.
func NewHTTPSource(rawURL string, client *http.Client, concurrency int) (*HTTPSource, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("permissions url %q: want http(s)://host/…", rawURL)
	}
	if client == nil {
		client = &http.Client{Timeout: 5 * time.Second}
	}
	if concurrency <= 0 {
		concurrency = 16
	}
	return &HTTPSource{url: u, client: client, sem: make(chan struct{}, concurrency)}, nil
}

// maxPermissionsBody bounds one user's permissions document.
const maxPermissionsBody = 1 << 20

// Permissions implements Source.
func (s *HTTPSource) Permissions(ctx context.Context, user string) (*Permissions, error) {
	select {
	case s.sem <- struct{}{}:
		defer func() { <-s.sem }()
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %v", ErrSourceUnavailable, ctx.Err())
	}
	u := *s.url
	q := u.Query()
	q.Set("userId", user)
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSourceUnavailable, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSourceUnavailable, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxPermissionsBody+1))
	switch {
	case err != nil:
		return nil, fmt.Errorf("%w: %v", ErrSourceUnavailable, err)
	case resp.StatusCode == http.StatusNotFound:
		return none(), nil
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("%w: status %d", ErrSourceUnavailable, resp.StatusCode)
	case len(body) > maxPermissionsBody:
		return nil, fmt.Errorf("%w: answer over %d bytes", ErrSourceUnavailable, maxPermissionsBody)
	}
	p, err := parseUser(body)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSourceUnavailable, err)
	}
	return p, nil
}

// ClerkSource reads permissions from the user's public metadata in Clerk,
// under "eventhub": {"assets":[…],"scenarios":[…],"admin":…}, through the
// Backend API. A user without it, or unknown to Clerk, has none.
type ClerkSource struct {
	users *user.Client
	sem   chan struct{}
}

// NewClerkSource builds a source on the Backend API with secretKey. apiURL
// empty means Clerk's; client nil means a 5s timeout; concurrency ≤ 0 means 16.
func NewClerkSource(secretKey, apiURL string, client *http.Client, concurrency int) (*ClerkSource, error) {
	if secretKey == "" {
		return nil, errors.New("permissions from clerk need CLERK_SECRET_KEY")
	}
	if client == nil {
		client = &http.Client{Timeout: 5 * time.Second}
	}
	if concurrency <= 0 {
		concurrency = 16
	}
	bc := clerk.BackendConfig{Key: clerk.String(secretKey), HTTPClient: client}
	if apiURL != "" {
		bc.URL = clerk.String(apiURL)
	}
	return &ClerkSource{users: user.NewClient(&clerk.ClientConfig{BackendConfig: bc}), sem: make(chan struct{}, concurrency)}, nil
}

// Permissions implements Source.
func (s *ClerkSource) Permissions(ctx context.Context, userID string) (*Permissions, error) {
	select {
	case s.sem <- struct{}{}:
		defer func() { <-s.sem }()
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %v", ErrSourceUnavailable, ctx.Err())
	}
	u, err := s.users.Get(ctx, userID)
	var apiErr *clerk.APIErrorResponse
	switch {
	case errors.As(err, &apiErr) && apiErr.HTTPStatusCode == http.StatusNotFound:
		return none(), nil
	case err != nil:
		return nil, fmt.Errorf("%w: clerk: %v", ErrSourceUnavailable, err)
	}
	var meta struct {
		Eventhub json.RawMessage `json:"eventhub"`
	}
	if len(u.PublicMetadata) > 0 {
		if err := json.Unmarshal(u.PublicMetadata, &meta); err != nil {
			return nil, fmt.Errorf("%w: clerk public_metadata: %v", ErrSourceUnavailable, err)
		}
	}
	if len(meta.Eventhub) == 0 || string(meta.Eventhub) == "null" {
		return none(), nil
	}
	p, err := parseUser(meta.Eventhub)
	if err != nil {
		return nil, fmt.Errorf("%w: clerk public_metadata.eventhub: %v", ErrSourceUnavailable, err)
	}
	return p, nil
}
