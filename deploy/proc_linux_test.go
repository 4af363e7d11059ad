package deploy

import "syscall"

// dieWithParent makes a child process get SIGKILL when the test binary dies,
// so that a test that times out (a panic, which runs no cleanup) leaves no
// hub or nginx behind.
func dieWithParent() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
