package bench

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"time"
)

// clockTick is USER_HZ, the unit of utime and stime in /proc/PID/stat; it is
// 100 on every Linux this harness targets.
const clockTick = 10 * time.Millisecond

// procUsage is one reading of a process's resident memory and CPU time.
type procUsage struct {
	At  time.Time
	RSS int64         // bytes (VmRSS)
	CPU time.Duration // utime + stime
	Sys time.Duration // stime alone: in the kernel (write(), read(), TCP)
}

// readProc reads /proc/PID/status and /proc/PID/stat.
func readProc(pid int) (procUsage, error) {
	u := procUsage{At: time.Now()}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return u, fmt.Errorf("reading process %d: %w", pid, err)
	}
	for line := range bytes.Lines(status) {
		if v, ok := bytes.CutPrefix(line, []byte("VmRSS:")); ok {
			f := bytes.Fields(v) // "12345 kB"
			if len(f) >= 1 {
				kb, err := strconv.ParseInt(string(f[0]), 10, 64)
				if err != nil {
					return u, fmt.Errorf("process %d VmRSS %q: %w", pid, v, err)
				}
				u.RSS = kb << 10
			}
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return u, fmt.Errorf("reading process %d: %w", pid, err)
	}
	// The command name (field 2) may hold spaces: count fields after its ')'.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return u, fmt.Errorf("process %d: malformed stat", pid)
	}
	f := bytes.Fields(stat[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return u, fmt.Errorf("process %d: short stat", pid)
	}
	ut, err1 := strconv.ParseInt(string(f[11]), 10, 64)
	st, err2 := strconv.ParseInt(string(f[12]), 10, 64)
	if err1 != nil || err2 != nil {
		return u, fmt.Errorf("process %d: bad utime/stime %q %q", pid, f[11], f[12])
	}
	u.CPU = time.Duration(ut+st) * clockTick
	u.Sys = time.Duration(st) * clockTick
	return u, nil
}

// machineCPU reads /proc/stat's first line: the CPU time all CPUs spent
// busy (anything but idle and iowait), and in softirq alone (on loopback,
// TCP receive work that no process is charged for when ksoftirqd does it).
func machineCPU() (busy, softirq time.Duration, err error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, fmt.Errorf("reading /proc/stat: %w", err)
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := bytes.Fields(line)
	// cpu user nice system idle iowait irq softirq steal …
	if len(f) < 8 || string(f[0]) != "cpu" {
		return 0, 0, fmt.Errorf("/proc/stat: unexpected first line %q", line)
	}
	for i := 1; i < len(f) && i <= 8; i++ {
		v, err := strconv.ParseInt(string(f[i]), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/stat: %q: %w", line, err)
		}
		switch i {
		case 4, 5: // idle, iowait
		case 7:
			softirq = time.Duration(v) * clockTick
			busy += softirq
		default:
			busy += time.Duration(v) * clockTick
		}
	}
	return busy, softirq, nil
}

// kernelThreadsCPU is the CPU time of the ksoftirqd/N kernel threads:
// softirq work (TCP receive, on loopback) deferred under load, which no
// process is charged for.
func kernelThreadsCPU() time.Duration {
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	var total time.Duration
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if err != nil || !bytes.HasPrefix(comm, []byte("ksoftirqd/")) {
			continue
		}
		if u, err := readProc(pid); err == nil {
			total += u.CPU
		}
	}
	return total
}
