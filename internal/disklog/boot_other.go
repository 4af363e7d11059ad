//go:build !linux

package disklog

import "errors"

// errNoBoot: the machine's boot id is not known here.
var errNoBoot = errors.New("no boot id")

// machineBootID is not known here: a crash of the machine is not told
// from a crash of the process.
func machineBootID() (string, error) { return "", errNoBoot }
