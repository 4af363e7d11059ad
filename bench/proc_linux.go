package bench

import "syscall"

// childAttr makes a child process (hub, floor, worker) die with the
// harness, so that no run leaves anything behind.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
