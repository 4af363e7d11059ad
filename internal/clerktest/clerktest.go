package clerktest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v3"
)

// What a Kit's tokens claim, and what its API expects.
const (
	// Issuer is the iss of the kit's tokens: a Clerk frontend API.
	Issuer = "https://clerk.example.test"
	// AuthorizedParty is the azp of the kit's tokens: give it to the
	// verifier as its only authorized party.
	AuthorizedParty = "https://app.example.test"
	// KeyID is the kid of the kit's tokens and of Key in the API's key set.
	KeyID = "ins_1"
	// SecretKey is the Clerk secret key the API answers to.
	SecretKey = "sk_test_1"
	// MaxTokenSize is the largest token a verifier takes (authz bounds a
	// session token at 8 KiB: Clerk's are about 1 KB).
	MaxTokenSize = 8 << 10
)

// Kit mints Clerk-like session tokens for one test. Make it with New.
type Kit struct {
	// Key signs valid tokens; its public half is PEM and the API's key set.
	Key *rsa.PrivateKey
	// Other is a key Clerk never published: what it signs fails the
	// signature check.
	Other *rsa.PrivateKey
	// PEM is Key's public half as CLERK_JWT_KEY holds it.
	PEM string
	// Now is the clock claims are computed from. New sets time.Now; a test
	// whose verifier has a clock of its own gives the kit the same one.
	Now func() time.Time

	t testing.TB
}

// New makes a kit with fresh keys, failing t if it cannot.
func New(t testing.TB) *Kit {
	t.Helper()
	k := &Kit{t: t, Now: time.Now}
	var err error
	if k.Key, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	if k.Other, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&k.Key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	k.PEM = string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	return k
}

// Claims are the claims of a session of user that began a minute ago and
// expires ttl from now (by the kit's clock), changed by mod when it is not
// nil.
func (k *Kit) Claims(user string, ttl time.Duration, mod func(map[string]any)) map[string]any {
	now := k.Now()
	c := map[string]any{
		"iss": Issuer,
		"sub": user,
		"azp": AuthorizedParty,
		"sid": "sess_1",
		"iat": now.Add(-time.Minute).Unix(),
		"nbf": now.Add(-time.Minute).Unix(),
		"exp": now.Add(ttl).Unix(),
	}
	if mod != nil {
		mod(c)
	}
	return c
}

// Sign is claims signed as a JWT with alg and key, with kid in its header
// when kid is not empty.
func (k *Kit) Sign(alg jose.SignatureAlgorithm, key any, kid string, claims map[string]any) string {
	k.t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if kid != "" {
		opts = opts.WithHeader("kid", kid)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		k.t.Fatal(err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		k.t.Fatal(err)
	}
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

// Token is a valid session token for user, expiring ttl from now, signed
// with Key under KeyID; mod, when not nil, changes its claims first.
func (k *Kit) Token(user string, ttl time.Duration, mod func(map[string]any)) string {
	return k.Sign(jose.RS256, k.Key, KeyID, k.Claims(user, ttl, mod))
}

// BadToken is a token a verifier must refuse, and the reason it gives
// (authz.FailureReason).
type BadToken struct {
	Name, Token, Reason string
}

// BadTokens is every kind of bad token, made from tokens of user valid for
// a minute: a verifier that knows Key (by PEM or under KeyID), takes Issuer
// and only AuthorizedParty, with no leeway, refuses each for its Reason.
// An empty token is refused as malformed by the verifier; a server that
// reads it as no token at all says so instead.
func (k *Kit) BadTokens(user string) []BadToken {
	now := k.Now()
	good := k.Token(user, time.Minute, nil)
	parts := strings.Split(good, ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		k.t.Fatal(err)
	}
	tampered := parts[0] + "." +
		base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(payload), user, "user_mallory", 1))) + "." + parts[2]
	none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","kid":"`+KeyID+`","typ":"JWT"}`)) + "." + parts[1] + "."
	with := func(mod func(map[string]any)) string { return k.Token(user, time.Minute, mod) }
	return []BadToken{
		{"expired", with(func(c map[string]any) { c["exp"] = now.Add(-time.Second).Unix() }), "expired"},
		{"not yet valid", with(func(c map[string]any) { c["nbf"] = now.Add(time.Minute).Unix() }), "not_yet_valid"},
		{"issued in the future", with(func(c map[string]any) { c["iat"] = now.Add(time.Minute).Unix() }), "issued_in_future"},
		{"missing exp", with(func(c map[string]any) { delete(c, "exp") }), "no_exp"},
		{"wrong key", k.Sign(jose.RS256, k.Other, KeyID, k.Claims(user, time.Minute, nil)), "signature"},
		{"tampered payload", tampered, "signature"},
		{"alg none", none, "algorithm"},
		{"HS256 with the public key as secret", k.Sign(jose.HS256, []byte(k.PEM), KeyID, k.Claims(user, time.Minute, nil)), "algorithm"},
		{"wrong issuer", with(func(c map[string]any) { c["iss"] = "https://evil.example.test" }), "issuer"},
		{"wrong azp", with(func(c map[string]any) { c["azp"] = "https://evil.example.test" }), "authorized_party"},
		{"missing azp", with(func(c map[string]any) { delete(c, "azp") }), "authorized_party"},
		{"bad subject", with(func(c map[string]any) { c["sub"] = "user 1\n" }), "bad_subject"},
		{"garbage", "not.a.token", "malformed"},
		{"garbage without dots", "garbage", "malformed"},
		{"empty", "", "malformed"},
		{"oversized", good + strings.Repeat("A", MaxTokenSize), "oversized"},
	}
}

// API is Clerk's Backend API on a loopback server, as far as a verifier
// with only the secret key uses it: GET /v1/jwks answers the kit's key set
// (Key under KeyID) to a caller with SecretKey, and anything else is 404.
type API struct {
	// URL is the API's base, ".../v1", for ClerkConfig.APIURL.
	URL string

	jwksFetches atomic.Int32
}

// API starts the kit's Backend API; it is closed when the test ends.
func (k *Kit) API(t testing.TB) *API {
	t.Helper()
	a := &API{}
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &k.Key.PublicKey, KeyID: KeyID, Algorithm: "RS256", Use: "sig"}}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/jwks" || r.Header.Get("Authorization") != "Bearer "+SecretKey {
			http.Error(w, `{"errors":[{"code":"not_found"}]}`, http.StatusNotFound)
			return
		}
		a.jwksFetches.Add(1)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(set)
	}))
	t.Cleanup(srv.Close)
	a.URL = srv.URL + "/v1"
	return a
}

// JWKSFetches is how many times the key set has been served.
func (a *API) JWKSFetches() int { return int(a.jwksFetches.Load()) }
