//go:build linux || darwin || freebsd

package disklog

import (
	"os"

	"golang.org/x/sys/unix"
)

// syncDir makes a directory's entries durable: a file created, renamed or
// removed in it survives a crash of the machine once this returns.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// diskSpace returns the bytes free (for an unprivileged process) and the
// size of the file system that holds dir.
func diskSpace(dir string) (free, size uint64, ok bool) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, 0, false
	}
	return uint64(st.Bavail) * uint64(st.Bsize), uint64(st.Blocks) * uint64(st.Bsize), true
}
