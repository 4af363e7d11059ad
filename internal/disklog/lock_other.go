//go:build !(linux || darwin || freebsd)

package disklog

import "os"

// lockDir opens the data dir's lock file. Elsewhere than Linux and the
// BSDs it takes no lock: nothing stops a second hub on the same dir.
func lockDir(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
}
