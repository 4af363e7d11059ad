// Package layering has no code of its own: its test keeps eventhub's
// package layering what docs/architecture.md says it is.
//
// The test runs "go list" from the module root and checks every package's
// imports against one table of allowed edges (allowed, in layering_test.go).
// docs/architecture.md carries the same table between the markers
// "<!-- layering:begin -->" and "<!-- layering:end -->", and the test
// checks that the two are equal, so the document and the code cannot drift
// apart: a new edge is a change to both, in one commit.
//
// It also checks that syscall and unsafe stay in files built for one
// operating system (outside internal/sock, which owns socket I/O), and
// that nothing reaches NATS except through internal/natsjs.
package layering
