package bench

import "syscall"

// ipBindAddressNoPort is IP_BIND_ADDRESS_NO_PORT (linux/in.h): with it, a
// socket bound to a source address gets its port at connect time, chosen
// per destination, so one source address serves ~28,000 streams to each
// server port instead of ~28,000 in all.
const ipBindAddressNoPort = 24

// socketControl returns a net.Dialer Control function that sets
// IP_BIND_ADDRESS_NO_PORT when the dialer binds a source address, and a
// small receive buffer when rcvbuf > 0.
func socketControl(bound bool, rcvbuf int) func(network, address string, c syscall.RawConn) error {
	if !bound && rcvbuf <= 0 {
		return nil
	}
	return func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			if bound {
				serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, ipBindAddressNoPort, 1)
			}
			if serr == nil && rcvbuf > 0 {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf)
			}
		})
		if err != nil {
			return err
		}
		return serr
	}
}
