package disklog

import (
	"os"
	"strings"
)

// machineBootID is the kernel's id of this boot: it changes when the
// machine restarts, not when a process does.
func machineBootID() (string, error) {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}
