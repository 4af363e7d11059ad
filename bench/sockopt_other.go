//go:build !linux

package bench

import "syscall"

// socketControl sets nothing outside Linux: source addresses are bound
// without IP_BIND_ADDRESS_NO_PORT and slow streams keep the default buffer.
func socketControl(bool, int) func(network, address string, c syscall.RawConn) error { return nil }
