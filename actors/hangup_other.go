//go:build !linux

package actors

// hangups is Linux-only (epoll): elsewhere each stream has a reader
// goroutine (stream.read) to see its client go away.
type hangups struct{}

func newHangups() (*hangups, error) { return nil, nil }
func (*hangups) watch(*stream) bool { return false }
func (*hangups) forget(*stream)     {}
func (*hangups) stop()              {}
