//go:build unix

package main

import "golang.org/x/sys/unix"

// streamsOpenFilesAllow raises the soft open-file limit to the hard one and
// returns how many streams fit in it.
func streamsOpenFilesAllow() int {
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
	if lim.Cur <= fileReserve*2 {
		return 1
	}
	return int(lim.Cur) - fileReserve
}
