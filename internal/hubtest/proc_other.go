//go:build !linux

package hubtest

import "syscall"

// DieWithParent is nil where there is no parent-death signal: a test that
// times out may leave the processes it started running.
func DieWithParent() *syscall.SysProcAttr { return nil }
