package bench

import (
	"context"
	"os"
	"time"
)

// sample reads the server's usage once a second until ctx ends.
func (r *runner) sample(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		if u, err := r.readUsage(); err == nil {
			r.mu.Lock()
			r.samples = append(r.samples, u)
			r.mu.Unlock()
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
	}
}

// readUsage reads the server's usage now, summed over its processes.
func (r *runner) readUsage() (procUsage, error) {
	sum := procUsage{At: time.Now()}
	for _, pid := range r.pids {
		u, err := readProc(pid)
		if err != nil {
			return sum, err
		}
		sum.RSS += u.RSS
		sum.CPU += u.CPU
	}
	return sum, nil
}

// usage reads the server's usage now (zero without a process).
func (r *runner) usage() procUsage {
	u, _ := r.readUsage()
	return u
}

// hubUsages reads each hub's usage now (zero for one it cannot read).
func (r *runner) hubUsages() []procUsage {
	us := make([]procUsage, len(r.pids))
	for i, pid := range r.pids {
		us[i], _ = readProc(pid)
	}
	return us
}

// selfCPU is the CPU time of this process and its workers.
func (r *runner) selfCPU() time.Duration {
	return r.controllerCPU() + r.workersCPU()
}

// controllerCPU is the CPU time of this process (the publisher, and the
// streams too when they need no worker process).
func (r *runner) controllerCPU() time.Duration {
	u, _ := readProc(os.Getpid())
	return u.CPU
}

// workersCPU is the CPU time of the worker processes (0 without any).
func (r *runner) workersCPU() time.Duration { return r.workersUsage().CPU }

// workersUsage is the worker processes' usage, summed.
func (r *runner) workersUsage() procUsage {
	var sum procUsage
	for _, w := range r.workers {
		if pid := w.pid(); pid != 0 {
			if u, err := readProc(pid); err == nil {
				sum.RSS += u.RSS
				sum.CPU += u.CPU
				sum.Sys += u.Sys
			}
		}
	}
	return sum
}

func (r *runner) cpuPerDelivery(u0, u1 procUsage, delivered int64) {
	if s := r.res.Server; s != nil && delivered > 0 {
		s.CPUPerDelivery = float64((u1.CPU - u0.CPU).Microseconds()) / float64(delivered)
	}
}

// finishUsage fills in the figures that need the whole run's samples.
func (r *runner) finishUsage() {
	s := r.res.Server
	if s == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, u := range r.samples {
		s.RSSPeak = max(s.RSSPeak, u.RSS)
	}
	if n := len(r.samples); n > 1 {
		s.CPUSeconds = (r.samples[n-1].CPU - r.samples[0].CPU).Seconds()
	}
}

// cpuReading is the CPU time used so far by each part of a run.
type cpuReading struct {
	at         time.Time
	hubs       []time.Duration // each server process
	hubsSys    time.Duration   // all server processes, in the kernel
	workers    time.Duration   // the worker processes
	workersSys time.Duration   // the worker processes, in the kernel
	self       procUsage       // this process
	machine    time.Duration   // every CPU, busy
	softirq    time.Duration   // every CPU, in softirq
	kernel     time.Duration   // ksoftirqd threads
}

func (r *runner) cpuNow() cpuReading {
	w := r.workersUsage()
	self, _ := readProc(os.Getpid())
	c := cpuReading{at: time.Now(), workers: w.CPU, workersSys: w.Sys, self: self}
	c.machine, c.softirq, _ = machineCPU()
	c.kernel = kernelThreadsCPU()
	for _, u := range r.hubUsages() {
		c.hubs = append(c.hubs, u.CPU)
		c.hubsSys += u.Sys
	}
	return c
}

// cpuSplit says where the CPU went between two readings, in cores, and
// fills in each hub's share.
func (r *runner) cpuSplit(a, b cpuReading) *CPUSplit {
	wall := b.at.Sub(a.at).Seconds()
	if wall <= 0 {
		return nil
	}
	cores := func(d time.Duration) float64 { return d.Seconds() / wall }
	s := &CPUSplit{
		Seconds:       wall,
		HubsSys:       cores(b.hubsSys - a.hubsSys),
		Clients:       cores(b.workers - a.workers),
		ClientsSys:    cores(b.workersSys - a.workersSys),
		Controller:    cores(b.self.CPU - a.self.CPU),
		Machine:       cores(b.machine - a.machine),
		SoftIRQ:       cores(b.softirq - a.softirq),
		KernelThreads: cores(b.kernel - a.kernel),
	}
	if len(r.workers) == 1 && r.workers[0].pid() == 0 {
		// The streams live in this process: it is the client.
		s.Clients, s.ClientsSys, s.Controller = s.Controller, cores(b.self.Sys-a.self.Sys), 0
	}
	for i := range b.hubs {
		if i < len(a.hubs) {
			c := cores(b.hubs[i] - a.hubs[i])
			s.Hubs += c
			if i < len(r.res.Hubs) {
				r.res.Hubs[i].CPUCores = c
			}
		}
	}
	return s
}
