//go:build !linux

package sock

import "net"

// sysConn is empty here: every write goes through the net.Conn, under a
// deadline, and Go's locks on the descriptor make closing it safe at any
// time.
type sysConn struct{}

func newSysConn(net.Conn) sysConn { return sysConn{} }

func (*sysConn) direct() bool                { return false }
func (*sysConn) tryWrite(*net.Buffers) error { panic("BUG: sock: direct write without a descriptor") }
func (*sysConn) shutdown() bool              { return false }
