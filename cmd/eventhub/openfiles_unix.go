//go:build unix

package main

import "golang.org/x/sys/unix"

// raiseOpenFiles raises the soft open-file limit to the hard one and
// returns it; 0 if it cannot be read.
func raiseOpenFiles() int {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return 0
	}
	if lim.Cur < lim.Max {
		raised := lim
		raised.Cur = raised.Max
		if unix.Setrlimit(unix.RLIMIT_NOFILE, &raised) == nil {
			lim = raised
		}
	}
	if lim.Cur > 1<<40 { // RLIM_INFINITY
		return 1 << 40
	}
	return int(lim.Cur)
}
