package authz

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/clerk/clerk-sdk-go/v2"
	"github.com/clerk/clerk-sdk-go/v2/jwks"
	clerkjwt "github.com/clerk/clerk-sdk-go/v2/jwt"
	josejwt "github.com/go-jose/go-jose/v3/jwt"
)

// ClerkConfig configures verification of Clerk session tokens. One of
// JWTKey and SecretKey is required.
type ClerkConfig struct {
	// JWTKey is the instance's PEM public key (Clerk dashboard, "JWT public
	// key"): verification then never touches the network.
	JWTKey string
	// SecretKey is the Clerk secret key. Without JWTKey, the signing keys
	// come from Clerk's JWKS endpoint: fetched once, cached, refetched only
	// for a key id not seen before, at most once per JWKSRefreshInterval.
	SecretKey string
	// APIURL is the Clerk Backend API. Empty means Clerk's own.
	APIURL string
	// HTTPClient makes the JWKS requests. Nil means a client with a 5s timeout.
	HTTPClient *http.Client
	// AuthorizedParties, when not empty, are the only origins whose tokens
	// are accepted (the "azp" claim, which must then be present).
	AuthorizedParties []string
	// Issuer, when set, is the only accepted "iss". Empty means Clerk's own
	// rule: https://clerk.… or …clerk.accounts….
	Issuer string
	// Leeway absorbs clock skew on exp, nbf and iat. Zero means none.
	Leeway time.Duration
	// JWKSRefreshInterval bounds JWKS refetches. Zero means 30s.
	JWKSRefreshInterval time.Duration

	now func() time.Time // test seam; nil means time.Now
}

// maxTokenSize bounds a session token: Clerk's are about 1 KB.
const maxTokenSize = 8 << 10

// Clerk verifies Clerk session tokens. Its methods are safe for concurrent use.
type Clerk struct {
	cfg     ClerkConfig
	jwk     *clerk.JSONWebKey // from JWTKey; nil means the JWKS
	jwks    *jwks.Client
	parties map[string]bool

	// mu guards the fields below. It is never held across the network: a
	// JWKS fetch runs outside it, so a token whose key is known is verified
	// while a fetch for another key id is in flight.
	mu        sync.Mutex
	keys      map[string]*clerk.JSONWebKey // replaced whole by a fetch, never modified
	fetchedAt time.Time                    // when the last fetch began
	fetchErr  bool                         // whether the last fetch failed
	// fetching is closed when the fetch in flight ends; nil when none is.
	// Callers who miss a key while a fetch is in flight wait for it rather
	// than start another (one fetch at a time, whatever the load).
	fetching chan struct{}
}

// NewClerk checks cfg and, with JWTKey, parses the key.
func NewClerk(cfg ClerkConfig) (*Clerk, error) {
	if cfg.now == nil {
		cfg.now = time.Now
	}
	if cfg.JWKSRefreshInterval <= 0 {
		cfg.JWKSRefreshInterval = 30 * time.Second
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 5 * time.Second}
	}
	c := &Clerk{cfg: cfg, keys: map[string]*clerk.JSONWebKey{}}
	if len(cfg.AuthorizedParties) > 0 {
		c.parties = map[string]bool{}
		for _, p := range cfg.AuthorizedParties {
			c.parties[p] = true
		}
	}
	switch {
	case cfg.JWTKey != "":
		jwk, err := clerk.JSONWebKeyFromPEM(strings.ReplaceAll(cfg.JWTKey, `\n`, "\n"))
		if err != nil {
			return nil, fmt.Errorf("CLERK_JWT_KEY: %w", err)
		}
		c.jwk = jwk
	case cfg.SecretKey != "":
		bc := clerk.BackendConfig{Key: clerk.String(cfg.SecretKey), HTTPClient: cfg.HTTPClient}
		if cfg.APIURL != "" {
			bc.URL = clerk.String(cfg.APIURL)
		}
		c.jwks = jwks.NewClient(&clerk.ClientConfig{BackendConfig: bc})
	default:
		return nil, errors.New("clerk auth needs CLERK_JWT_KEY (networkless) or CLERK_SECRET_KEY")
	}
	return c, nil
}

// AuthError is why a token was refused. Reason is a small fixed word, safe
// as a metric label and in a response; it never holds token content.
type AuthError struct {
	Reason string
}

func (e *AuthError) Error() string { return ErrBadToken.Error() + ": " + e.Reason }

// Is makes every AuthError an ErrBadToken.
func (e *AuthError) Is(target error) bool { return target == ErrBadToken }

var _ error = (*AuthError)(nil)

func refused(reason string) error { return &AuthError{Reason: reason} }

// Authenticate verifies a session token: signature and algorithm (RS256
// only), exp (required), nbf, iat, issuer, authorized party; the user is
// "sub". Every refusal is an *AuthError.
func (c *Clerk) Authenticate(token string) (Identity, error) {
	if len(token) > maxTokenSize {
		return Identity{}, refused("oversized")
	}
	unverified, err := clerkjwt.Decode(context.Background(), &clerkjwt.DecodeParams{Token: token})
	if err != nil {
		return Identity{}, refused("malformed")
	}
	key := c.jwk
	if key == nil {
		if key, err = c.keyFor(unverified.KeyID); err != nil {
			return Identity{}, err
		}
	}
	params := &clerkjwt.VerifyParams{
		Token:  token,
		JWK:    key,
		Clock:  clock{c.cfg.now},
		Leeway: c.cfg.Leeway,
	}
	if c.cfg.Issuer != "" {
		params.ProxyURL = &c.cfg.Issuer // Clerk's exact-issuer check
	}
	if c.parties != nil {
		params.AuthorizedPartyHandler = func(azp string) bool { return c.parties[azp] }
	}
	claims, err := clerkjwt.Verify(context.Background(), params)
	if err != nil {
		return Identity{}, refused(verifyReason(err))
	}
	if claims.Expiry == nil {
		return Identity{}, refused("no_exp") // jwt.Verify accepts a token that never expires: we do not
	}
	if err := CheckUserID(claims.Subject); err != nil {
		return Identity{}, refused("bad_subject")
	}
	return Identity{User: claims.Subject, Expires: time.Unix(*claims.Expiry, 0)}, nil
}

// verifyReason names a jwt.Verify failure for a metric label.
func verifyReason(err error) string {
	msg := err.Error()
	switch {
	case errors.Is(err, josejwt.ErrExpired):
		return "expired"
	case errors.Is(err, josejwt.ErrNotValidYet):
		return "not_yet_valid"
	case errors.Is(err, josejwt.ErrIssuedInTheFuture):
		return "issued_in_future"
	case strings.HasPrefix(msg, "invalid signing algorithm"):
		return "algorithm"
	case strings.HasPrefix(msg, "invalid issuer"):
		return "issuer"
	case strings.HasPrefix(msg, "invalid authorized party"):
		return "authorized_party"
	case strings.Contains(msg, "error in cryptographic primitive") || strings.Contains(msg, "verification"):
		return "signature"
	default:
		return "invalid"
	}
}

// keyFor returns the JWKS key with id kid, fetching the key set on a miss,
// at most once per JWKSRefreshInterval, so a flood of tokens with made-up
// key ids cannot make us hammer Clerk. The fetch runs without the lock:
// tokens with a known key id never wait for it, and callers who miss
// while it runs wait for its result instead of fetching again.
func (c *Clerk) keyFor(kid string) (*clerk.JSONWebKey, error) {
	if kid == "" {
		return nil, refused("no_key_id")
	}
	c.mu.Lock()
	for c.fetching != nil && c.keys[kid] == nil {
		done := c.fetching
		c.mu.Unlock()
		<-done
		c.mu.Lock()
	}
	if k := c.keys[kid]; k != nil {
		c.mu.Unlock()
		return k, nil
	}
	now := c.cfg.now()
	if !c.fetchedAt.IsZero() && now.Sub(c.fetchedAt) < c.cfg.JWKSRefreshInterval {
		failed := c.fetchErr
		c.mu.Unlock()
		if failed {
			return nil, refused("jwks_unavailable")
		}
		return nil, refused("unknown_key")
	}
	c.fetchedAt = now
	done := make(chan struct{})
	c.fetching = done
	c.mu.Unlock()

	keys, err := c.fetchKeys()

	c.mu.Lock()
	defer c.mu.Unlock()
	c.fetching = nil
	close(done)
	c.fetchErr = err != nil
	if err != nil {
		return nil, refused("jwks_unavailable")
	}
	c.keys = keys
	if k := keys[kid]; k != nil {
		return k, nil
	}
	return nil, refused("unknown_key")
}

// fetchKeys reads the JWKS: the RS256 keys by key id. It takes no lock.
func (c *Clerk) fetchKeys() (map[string]*clerk.JSONWebKey, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	set, err := c.jwks.Get(ctx, &jwks.GetParams{})
	if err != nil {
		return nil, err
	}
	keys := map[string]*clerk.JSONWebKey{}
	for _, k := range set.Keys {
		if k != nil && k.KeyID != "" && k.Algorithm == "RS256" {
			keys[k.KeyID] = k
		}
	}
	return keys, nil
}

// clock adapts a func to clerk.Clock.
type clock struct{ now func() time.Time }

func (c clock) Now() time.Time { return c.now() }

// AuthFailureReasons lists every AuthError reason, for metrics to resolve
// their labels up front, plus "no_token" and "invalid" (anything else).
var AuthFailureReasons = []string{"no_token", "oversized", "malformed", "no_key_id", "unknown_key", "jwks_unavailable",
	"expired", "not_yet_valid", "issued_in_future", "algorithm", "issuer", "authorized_party", "signature",
	"no_exp", "bad_subject", "invalid"}

// FailureReason is the metric label for an authentication error.
func FailureReason(err error) string {
	var ae *AuthError
	switch {
	case errors.As(err, &ae) && slices.Contains(AuthFailureReasons, ae.Reason):
		return ae.Reason
	case errors.Is(err, ErrNoToken):
		return "no_token"
	default:
		return "invalid"
	}
}
