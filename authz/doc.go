// Package authz answers two questions for eventhub: who is asking
// (authentication: a session token to an Identity) and what they may see
// (authorization: a user's Permissions and the RBAC rule that matches them
// against an event's scope).
//
// The RBAC rule lives in one place, (*Permissions).Allows. A nil *Permissions
// means "not known": every check on it answers deny, so a failure to load
// permissions can never widen what a user sees (fail closed).
//
// Permissions and Tables are immutable once built and may be shared by any
// number of goroutines; a change of permissions is a new value.
package authz
