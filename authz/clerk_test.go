package authz

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v3"

	"github.com/finexbot/eventhub/internal/clerktest"
	"github.com/finexbot/eventhub/internal/hubtest"
)

// clerkUser is the subject of the kit's valid tokens.
const clerkUser = "user_2abc"

// newKit is a clerktest kit whose clock stands still at now, the clock the
// tests give the verifier too.
func newKit(t *testing.T) (k *clerktest.Kit, now time.Time) {
	k = clerktest.New(t)
	now = time.Unix(1_800_000_000, 0)
	k.Now = func() time.Time { return now }
	return k, now
}

func TestClerkNetworkless(t *testing.T) {
	k, now := newKit(t)
	if clerktest.MaxTokenSize != maxTokenSize {
		t.Fatalf("clerktest.MaxTokenSize = %d, authz bounds a token at %d", clerktest.MaxTokenSize, maxTokenSize)
	}
	c, err := NewClerk(ClerkConfig{JWTKey: k.PEM, AuthorizedParties: []string{clerktest.AuthorizedParty}, now: k.Now})
	if err != nil {
		t.Fatal(err)
	}
	id, err := c.Authenticate(k.Token(clerkUser, time.Minute, nil))
	if err != nil {
		t.Fatalf("valid token refused: %v", err)
	}
	if id.User != clerkUser || !id.Expires.Equal(now.Add(time.Minute)) {
		t.Fatalf("identity %+v", id)
	}
	for _, tc := range k.BadTokens(clerkUser) {
		t.Run(tc.Name, func(t *testing.T) {
			_, err := c.Authenticate(tc.Token)
			if !errors.Is(err, ErrBadToken) {
				t.Fatalf("err %v, want ErrBadToken", err)
			}
			if got := FailureReason(err); got != tc.Reason {
				t.Fatalf("reason %q (%v), want %q", got, err, tc.Reason)
			}
		})
	}
}

func TestClerkLeewayAndIssuer(t *testing.T) {
	k, now := newKit(t)
	c, err := NewClerk(ClerkConfig{JWTKey: k.PEM, Leeway: 5 * time.Second, Issuer: "https://auth.example.test", now: k.Now})
	if err != nil {
		t.Fatal(err)
	}
	justExpired := k.Token(clerkUser, time.Minute, func(c map[string]any) {
		c["exp"] = now.Add(-2 * time.Second).Unix()
		c["iss"] = "https://auth.example.test"
	})
	if _, err := c.Authenticate(justExpired); err != nil {
		t.Errorf("token 2s past exp refused with 5s leeway: %v", err)
	}
	if _, err := c.Authenticate(k.Token(clerkUser, time.Minute, nil)); FailureReason(err) != "issuer" {
		t.Errorf("Clerk's default issuer accepted when another is configured: %v", err)
	}
}

// TestClerkJWKS: with only the secret key, the keys come from the JWKS
// endpoint, fetched once and cached, refetched for an unknown key id at most
// once per interval.
func TestClerkJWKS(t *testing.T) {
	k, now := newKit(t)
	api := k.API(t)
	c, err := NewClerk(ClerkConfig{SecretKey: clerktest.SecretKey, APIURL: api.URL, AuthorizedParties: []string{clerktest.AuthorizedParty},
		now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		if _, err := c.Authenticate(k.Token(clerkUser, time.Minute, nil)); err != nil {
			t.Fatalf("valid token: %v", err)
		}
	}
	if n := api.JWKSFetches(); n != 1 {
		t.Fatalf("%d JWKS fetches for 20 tokens, want 1", n)
	}
	for _, tc := range k.BadTokens(clerkUser) {
		if _, err := c.Authenticate(tc.Token); FailureReason(err) != tc.Reason {
			t.Errorf("%s: %v, want %s", tc.Name, err, tc.Reason)
		}
	}
	unknown := k.Sign(jose.RS256, k.Key, "ins_2", k.Claims(clerkUser, time.Minute, nil))
	for range 10 {
		if _, err := c.Authenticate(unknown); FailureReason(err) != "unknown_key" {
			t.Fatalf("unknown kid: %v", err)
		}
	}
	if n := api.JWKSFetches(); n != 1 {
		t.Fatalf("%d JWKS fetches: an unknown kid refetched within the interval", n)
	}
	now = now.Add(time.Minute) // the verifier's clock only: the tokens were made before
	c.Authenticate(unknown)
	if n := api.JWKSFetches(); n != 2 {
		t.Fatalf("%d JWKS fetches: an unknown kid after the interval must refetch once", n)
	}
}

func TestNewClerkNeedsAKey(t *testing.T) {
	if _, err := NewClerk(ClerkConfig{}); err == nil {
		t.Error("no key accepted")
	}
	if _, err := NewClerk(ClerkConfig{JWTKey: "not pem"}); err == nil {
		t.Error("bad PEM accepted")
	}
}

// TestClerkJWKSRefetchBlocksNoKnownKey: while a refetch for an unknown key
// id waits on a slow JWKS endpoint, a token with a known key id is verified
// at once, and the callers who miss the same key wait for that one fetch
// instead of starting their own.
func TestClerkJWKSRefetchBlocksNoKnownKey(t *testing.T) {
	k, now := newKit(t)
	var fetches atomic.Int32
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		keys := []jose.JSONWebKey{{Key: &k.Key.PublicKey, KeyID: clerktest.KeyID, Algorithm: "RS256", Use: "sig"}}
		if fetches.Add(1) > 1 {
			<-release // the slow refetch; it brings the rotated key
			keys = append(keys, jose.JSONWebKey{Key: &k.Key.PublicKey, KeyID: "ins_2", Algorithm: "RS256", Use: "sig"})
		}
		json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: keys})
	}))
	defer srv.Close()
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()
	var later atomic.Bool
	c, err := NewClerk(ClerkConfig{SecretKey: "sk_test_1", APIURL: srv.URL + "/v1", now: func() time.Time {
		if later.Load() {
			return now.Add(time.Minute)
		}
		return now
	}})
	if err != nil {
		t.Fatal(err)
	}
	known := k.Token(clerkUser, time.Minute, nil)
	if _, err := c.Authenticate(known); err != nil {
		t.Fatalf("first token: %v", err)
	}
	later.Store(true) // past the refetch interval
	rotated := k.Sign(jose.RS256, k.Key, "ins_2", k.Claims(clerkUser, time.Minute, nil))
	const missing = 8
	results := make(chan error, missing)
	for range missing {
		go func() { _, err := c.Authenticate(rotated); results <- err }()
	}
	hubtest.WaitFor(t, "the refetch to reach the JWKS endpoint", 5*time.Second, func() bool { return fetches.Load() == 2 })

	verified := make(chan error, 1)
	go func() { _, err := c.Authenticate(known); verified <- err }()
	select {
	case err := <-verified:
		if err != nil {
			t.Fatalf("known key during a refetch: %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("a token with a known key waited for a JWKS refetch in progress")
	}

	close(release)
	for range missing {
		if err := <-results; err != nil {
			t.Errorf("rotated key after the refetch: %v", err)
		}
	}
	if n := fetches.Load(); n != 2 {
		t.Errorf("%d JWKS fetches, want 2: concurrent misses of one key must share one fetch", n)
	}
}
