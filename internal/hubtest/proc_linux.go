package hubtest

import "syscall"

// DieWithParent is the SysProcAttr for a process a test starts (a hub,
// nginx): it gets SIGKILL when the test binary dies, so that a test that
// times out (a panic, which runs no cleanup) leaves nothing running.
func DieWithParent() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
