// Package clerktest stands in for Clerk, the one outside service eventhub's
// tests may fake: a Kit mints Clerk-like session tokens with the test's own
// RSA keys, so a hub verifies them offline with Kit.PEM (as with
// CLERK_JWT_KEY), or with the keys a Kit's API serves from GET /v1/jwks
// (as with only CLERK_SECRET_KEY).
//
// It offers:
//
//   - keys: Key signs valid tokens and Other is a key Clerk never
//     published; PEM is Key's public half.
//   - claims and tokens: Claims are a session's claims for a user, computed
//     from the kit's clock (Now; time.Now unless the test sets one), and
//     changed by a function the test passes; Sign signs any claims with any
//     algorithm, key and key id; Token is a valid token for a user.
//   - BadTokens: the table of bad tokens, each with the reason
//     authz.FailureReason gives for it. Both authz's verifier tests and
//     transport's handshake tests run it, so a kind of bad token is added
//     once and refused everywhere.
//   - API: Clerk's Backend API on a loopback server, serving the kit's key
//     set at /v1/jwks to a caller with SecretKey, and counting the fetches.
//
// It imports nothing of the module (it is a test harness, which only tests
// import), so the internal tests of authz can use it without an import
// cycle.
//
// Concurrency: the methods that take or hold a testing.TB fail the test with
// it, so they are called from the test's goroutine, like t.Fatal. A Kit's
// fields are set before its first token and not changed after. An API is
// safe to serve and count concurrently.
package clerktest
