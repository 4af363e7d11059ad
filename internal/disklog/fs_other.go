//go:build !(linux || darwin || freebsd)

package disklog

// syncDir does nothing here: a directory cannot be synced on this system.
func syncDir(string) error { return nil }

// diskSpace is not known here.
func diskSpace(string) (free, size uint64, ok bool) { return 0, 0, false }
