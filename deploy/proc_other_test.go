//go:build !linux

package deploy

import "syscall"

// dieWithParent is a no-op where there is no parent-death signal: a test
// that times out may leave its hub or nginx running.
func dieWithParent() *syscall.SysProcAttr { return nil }
