package disklog

import (
	"io"
	"os"
)

// file is what the log does with one of its files: an *os.File, or in
// tests one that fails its writes on demand (a full disk, a failing
// device). It is the log's only seam on the file system's data path.
type file interface {
	io.ReaderAt
	io.WriterAt
	Truncate(size int64) error
	Sync() error
	Close() error
}

// openFunc opens a file of the data dir.
type openFunc func(name string, flag int, perm os.FileMode) (file, error)

// openOS is openFunc on the operating system's files.
func openOS(name string, flag int, perm os.FileMode) (file, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err // not a typed nil in an interface
	}
	return f, nil
}
