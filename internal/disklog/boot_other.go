//go:build !linux

package disklog

// machineBootID is not known here: a crash of the machine is not told
// from a crash of the process.
func machineBootID() (string, error) { return "", errNoBoot }
