package authz

import "errors"

// Authentication errors. Each is answered 401 with its message.
var (
	// ErrNoToken: the request carries neither a Bearer token nor a __session cookie.
	ErrNoToken = errors.New("no session token")
	// ErrBadToken: the token is not one this authenticator accepts.
	ErrBadToken = errors.New("invalid session token")
)

// ErrBadPermissions is returned (wrapped, with the reason) for a permissions
// document that is not of the documented shape.
var ErrBadPermissions = errors.New("invalid permissions")
