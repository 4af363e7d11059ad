package authz

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v3"

	"github.com/finexbot/eventhub/internal/hubtest"
)

// tokenKit mints Clerk-like session tokens with the test's own RSA key.
type tokenKit struct {
	t      *testing.T
	key    *rsa.PrivateKey
	other  *rsa.PrivateKey
	pemPub string
	now    time.Time
}

func newTokenKit(t *testing.T) *tokenKit {
	t.Helper()
	k := &tokenKit{t: t, now: time.Unix(1_800_000_000, 0)}
	var err error
	if k.key, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	if k.other, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&k.key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	k.pemPub = string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	return k
}

func (k *tokenKit) claims(mod func(map[string]any)) map[string]any {
	c := map[string]any{
		"iss": "https://clerk.example.test",
		"sub": "user_2abc",
		"azp": "https://app.example.test",
		"sid": "sess_1",
		"iat": k.now.Add(-time.Minute).Unix(),
		"nbf": k.now.Add(-time.Minute).Unix(),
		"exp": k.now.Add(time.Minute).Unix(),
	}
	if mod != nil {
		mod(c)
	}
	return c
}

func (k *tokenKit) sign(alg jose.SignatureAlgorithm, key any, kid string, claims map[string]any) string {
	k.t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if kid != "" {
		opts = opts.WithHeader("kid", kid)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		k.t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	sig, err := signer.Sign(payload)
	if err != nil {
		k.t.Fatal(err)
	}
	tok, err := sig.CompactSerialize()
	if err != nil {
		k.t.Fatal(err)
	}
	return tok
}

func (k *tokenKit) valid(mod func(map[string]any)) string {
	return k.sign(jose.RS256, k.key, "ins_1", k.claims(mod))
}

// tokenMatrix is every kind of bad token, and the reason each is refused.
func (k *tokenKit) tokenMatrix() []struct{ name, token, reason string } {
	good := k.valid(nil)
	parts := strings.Split(good, ".")
	tampered := func() string {
		payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
		payload = []byte(strings.Replace(string(payload), "user_2abc", "user_9evil", 1))
		return parts[0] + "." + base64.RawURLEncoding.EncodeToString(payload) + "." + parts[2]
	}()
	noneHeader := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","kid":"ins_1","typ":"JWT"}`))
	return []struct{ name, token, reason string }{
		{"expired", k.valid(func(c map[string]any) { c["exp"] = k.now.Add(-time.Second).Unix() }), "expired"},
		{"not yet valid", k.valid(func(c map[string]any) { c["nbf"] = k.now.Add(time.Minute).Unix() }), "not_yet_valid"},
		{"issued in the future", k.valid(func(c map[string]any) { c["iat"] = k.now.Add(time.Minute).Unix() }), "issued_in_future"},
		{"missing exp", k.valid(func(c map[string]any) { delete(c, "exp") }), "no_exp"},
		{"wrong key", k.sign(jose.RS256, k.other, "ins_1", k.claims(nil)), "signature"},
		{"tampered payload", tampered, "signature"},
		{"alg none", noneHeader + "." + parts[1] + ".", "algorithm"},
		{"HS256 with the public key as secret", k.sign(jose.HS256, []byte(k.pemPub), "ins_1", k.claims(nil)), "algorithm"},
		{"wrong issuer", k.valid(func(c map[string]any) { c["iss"] = "https://evil.example.test" }), "issuer"},
		{"wrong azp", k.valid(func(c map[string]any) { c["azp"] = "https://evil.example.test" }), "authorized_party"},
		{"missing azp", k.valid(func(c map[string]any) { delete(c, "azp") }), "authorized_party"},
		{"bad subject", k.valid(func(c map[string]any) { c["sub"] = "user 1\n" }), "bad_subject"},
		{"garbage", "not.a.token", "malformed"},
		{"empty", "", "malformed"},
		{"oversized", good + strings.Repeat("A", maxTokenSize), "oversized"},
	}
}

func TestClerkNetworkless(t *testing.T) {
	k := newTokenKit(t)
	c, err := NewClerk(ClerkConfig{JWTKey: k.pemPub, AuthorizedParties: []string{"https://app.example.test"}, now: func() time.Time { return k.now }})
	if err != nil {
		t.Fatal(err)
	}
	id, err := c.Authenticate(k.valid(nil))
	if err != nil {
		t.Fatalf("valid token refused: %v", err)
	}
	if id.User != "user_2abc" || !id.Expires.Equal(k.now.Add(time.Minute)) {
		t.Fatalf("identity %+v", id)
	}
	for _, tc := range k.tokenMatrix() {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Authenticate(tc.token)
			if !errors.Is(err, ErrBadToken) {
				t.Fatalf("err %v, want ErrBadToken", err)
			}
			if got := FailureReason(err); got != tc.reason {
				t.Fatalf("reason %q (%v), want %q", got, err, tc.reason)
			}
		})
	}
}

func TestClerkLeewayAndIssuer(t *testing.T) {
	k := newTokenKit(t)
	c, err := NewClerk(ClerkConfig{JWTKey: k.pemPub, Leeway: 5 * time.Second, Issuer: "https://auth.example.test", now: func() time.Time { return k.now }})
	if err != nil {
		t.Fatal(err)
	}
	justExpired := k.valid(func(c map[string]any) {
		c["exp"] = k.now.Add(-2 * time.Second).Unix()
		c["iss"] = "https://auth.example.test"
	})
	if _, err := c.Authenticate(justExpired); err != nil {
		t.Errorf("token 2s past exp refused with 5s leeway: %v", err)
	}
	if _, err := c.Authenticate(k.valid(nil)); FailureReason(err) != "issuer" {
		t.Errorf("Clerk's default issuer accepted when another is configured: %v", err)
	}
}

// TestClerkJWKS: with only the secret key, the keys come from the JWKS
// endpoint, fetched once and cached, refetched for an unknown key id at most
// once per interval.
func TestClerkJWKS(t *testing.T) {
	k := newTokenKit(t)
	var fetches atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/jwks" || r.Header.Get("Authorization") != "Bearer sk_test_1" {
			http.Error(w, `{"errors":[{"code":"not_found"}]}`, http.StatusNotFound)
			return
		}
		fetches.Add(1)
		set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &k.key.PublicKey, KeyID: "ins_1", Algorithm: "RS256", Use: "sig"}}}
		json.NewEncoder(w).Encode(set)
	}))
	defer srv.Close()
	now := k.now
	c, err := NewClerk(ClerkConfig{SecretKey: "sk_test_1", APIURL: srv.URL + "/v1", AuthorizedParties: []string{"https://app.example.test"},
		now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		if _, err := c.Authenticate(k.valid(nil)); err != nil {
			t.Fatalf("valid token: %v", err)
		}
	}
	if n := fetches.Load(); n != 1 {
		t.Fatalf("%d JWKS fetches for 20 tokens, want 1", n)
	}
	for _, tc := range k.tokenMatrix() {
		if _, err := c.Authenticate(tc.token); FailureReason(err) != tc.reason {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.reason)
		}
	}
	unknown := k.sign(jose.RS256, k.key, "ins_2", k.claims(nil))
	for range 10 {
		if _, err := c.Authenticate(unknown); FailureReason(err) != "unknown_key" {
			t.Fatalf("unknown kid: %v", err)
		}
	}
	if n := fetches.Load(); n != 1 {
		t.Fatalf("%d JWKS fetches: an unknown kid refetched within the interval", n)
	}
	now = now.Add(time.Minute)
	c.Authenticate(unknown)
	if n := fetches.Load(); n != 2 {
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
	k := newTokenKit(t)
	var fetches atomic.Int32
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		keys := []jose.JSONWebKey{{Key: &k.key.PublicKey, KeyID: "ins_1", Algorithm: "RS256", Use: "sig"}}
		if fetches.Add(1) > 1 {
			<-release // the slow refetch; it brings the rotated key
			keys = append(keys, jose.JSONWebKey{Key: &k.key.PublicKey, KeyID: "ins_2", Algorithm: "RS256", Use: "sig"})
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
			return k.now.Add(time.Minute)
		}
		return k.now
	}})
	if err != nil {
		t.Fatal(err)
	}
	known := k.valid(nil)
	if _, err := c.Authenticate(known); err != nil {
		t.Fatalf("first token: %v", err)
	}
	later.Store(true) // past the refetch interval
	rotated := k.sign(jose.RS256, k.key, "ins_2", k.claims(nil))
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
