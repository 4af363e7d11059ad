//go:build !linux

package disklog

import "testing"

// dropCache cannot drop the page cache here: a cold open is timed warm.
func dropCache(*testing.B, string) {}
