//go:build !linux

package bench

import "net"

// poller is Linux-only (epoll): elsewhere every stream reads in its own
// goroutine, whatever poolSpec.Epoll says.
type poller struct{}

func newPoller(*pool) (*poller, error)       { return nil, nil }
func (*poller) run()                         {}
func (*poller) close()                       {}
func (*poller) wait(*stream, net.Conn) error { return nil }
func (*stream) unpoll(error)                 {}
