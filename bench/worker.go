package bench

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"time"
)

// A worker holds one pool of streams, in this process (localWorker) or in
// a child process running ServeWorker (remoteWorker), which is how the
// harness goes past one process's open-file limit. The controller calls a
// worker's methods from one goroutine at a time.
type worker interface {
	start(poolSpec) error
	stats() (poolStats, error)
	setPhase(name string, fromSeq int64) error
	phaseHist(name string) (*Histogram, error)
	stall() error
	resume(newest int64) error
	storm() error
	finish(upTo int) (*poolResult, error)
	pid() int // 0 for this process
	kill()
}

// workerReq is one request line of the worker protocol (JSON, one object
// per line on the worker's stdin); each is answered by one workerResp line
// on its stdout.
type workerReq struct {
	Op      string    `json:"op"` // start, stats, phase, phaseHist, stall, resume, storm, finish
	Spec    *poolSpec `json:"spec,omitempty"`
	Name    string    `json:"name,omitempty"`
	FromSeq int64     `json:"fromSeq,omitempty"` // phase: where it begins; resume: the newest seq published
	UpTo    int       `json:"upTo,omitempty"`
}

type workerResp struct {
	Err    string      `json:"err,omitempty"`
	Stats  *poolStats  `json:"stats,omitempty"`
	Hist   *Histogram  `json:"hist,omitempty"`
	Result *poolResult `json:"result,omitempty"`
}

// localWorker runs a pool in this process.
type localWorker struct{ p *pool }

func (w *localWorker) start(spec poolSpec) error {
	p, err := newPool(spec)
	if err != nil {
		return err
	}
	w.p = p
	p.start()
	return nil
}
func (w *localWorker) stats() (poolStats, error) { return w.p.stats(), nil }
func (w *localWorker) setPhase(name string, from int64) error {
	w.p.setPhase(name, from)
	return nil
}
func (w *localWorker) phaseHist(name string) (*Histogram, error) {
	if h := w.p.phaseHist(name); h != nil {
		return h, nil
	}
	return nil, fmt.Errorf("%w: no phase %q", ErrWorker, name)
}
func (w *localWorker) stall() error { w.p.stall(); return nil }
func (w *localWorker) resume(newest int64) error {
	w.p.resume(newest)
	return nil
}
func (w *localWorker) storm() error { w.p.storm(); return nil }
func (w *localWorker) finish(upTo int) (*poolResult, error) {
	r := w.p.finish(upTo)
	return r, nil
}
func (w *localWorker) pid() int { return 0 }
func (w *localWorker) kill() {
	if w.p != nil {
		w.p.finish(0)
	}
}

// ServeWorker answers the worker protocol on r and w until a finish
// request or the end of r (the controller went away), then closes every
// stream it opened. It is what the hidden "worker" subcommand runs.
func ServeWorker(r io.Reader, w io.Writer) error {
	dec := json.NewDecoder(bufio.NewReader(r))
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	var p *pool
	defer func() {
		if p != nil {
			p.finish(0)
		}
	}()
	for {
		var req workerReq
		if err := dec.Decode(&req); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("worker: reading request: %w", err)
		}
		var resp workerResp
		if p == nil && req.Op != "start" {
			resp.Err = "no pool: start first"
		} else {
			switch req.Op {
			case "start":
				if p != nil || req.Spec == nil {
					resp.Err = "start: already started or no spec"
					break
				}
				np, err := newPool(*req.Spec)
				if err != nil {
					resp.Err = err.Error()
					break
				}
				p = np
				p.start()
			case "stats":
				st := p.stats()
				resp.Stats = &st
			case "phase":
				p.setPhase(req.Name, req.FromSeq)
			case "phaseHist":
				if resp.Hist = p.phaseHist(req.Name); resp.Hist == nil {
					resp.Err = fmt.Sprintf("no phase %q", req.Name)
				}
			case "stall":
				p.stall()
			case "resume":
				p.resume(req.FromSeq)
			case "storm":
				p.storm()
			case "finish":
				resp.Result = p.finish(req.UpTo)
				p = nil
			default:
				resp.Err = fmt.Sprintf("unknown op %q", req.Op)
			}
		}
		if err := enc.Encode(&resp); err != nil {
			return fmt.Errorf("worker: writing response: %w", err)
		}
		if err := bw.Flush(); err != nil {
			return fmt.Errorf("worker: writing response: %w", err)
		}
		if req.Op == "finish" && resp.Err == "" {
			return nil
		}
	}
}

// remoteWorker is a child process running ServeWorker.
type remoteWorker struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	dec   *json.Decoder
	mu    sync.Mutex
	dead  error
}

// callTimeout bounds every request to a worker; finish may take longer
// (closing thousands of sockets, encoding the result).
const callTimeout = 30 * time.Second

// startRemoteWorker starts command (this program's "worker" subcommand).
func startRemoteWorker(command []string) (*remoteWorker, error) {
	cmd := exec.Command(command[0], command[1:]...)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = childAttr()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrWorker, err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrWorker, err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%w: starting %q: %w", ErrWorker, command, err)
	}
	return &remoteWorker{cmd: cmd, stdin: stdin, dec: json.NewDecoder(bufio.NewReader(stdout))}, nil
}

func (w *remoteWorker) call(req workerReq) (workerResp, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var resp workerResp
	if w.dead != nil {
		return resp, w.dead
	}
	// A worker that does not answer in time is killed, which ends the
	// Decode below with an error.
	t := time.AfterFunc(callTimeout, func() { w.cmd.Process.Kill() })
	defer t.Stop()
	b, err := json.Marshal(req)
	if err == nil {
		_, err = w.stdin.Write(append(b, '\n'))
	}
	if err == nil {
		err = w.dec.Decode(&resp)
	}
	if err != nil {
		w.dead = fmt.Errorf("%w: pid %d, %s: %w", ErrWorker, w.cmd.Process.Pid, req.Op, err)
		return resp, w.dead
	}
	if resp.Err != "" {
		return resp, fmt.Errorf("%w: pid %d, %s: %s", ErrWorker, w.cmd.Process.Pid, req.Op, resp.Err)
	}
	return resp, nil
}

func (w *remoteWorker) start(spec poolSpec) error {
	_, err := w.call(workerReq{Op: "start", Spec: &spec})
	return err
}
func (w *remoteWorker) stats() (poolStats, error) {
	r, err := w.call(workerReq{Op: "stats"})
	if err != nil || r.Stats == nil {
		return poolStats{}, err
	}
	return *r.Stats, nil
}
func (w *remoteWorker) setPhase(name string, from int64) error {
	_, err := w.call(workerReq{Op: "phase", Name: name, FromSeq: from})
	return err
}
func (w *remoteWorker) phaseHist(name string) (*Histogram, error) {
	r, err := w.call(workerReq{Op: "phaseHist", Name: name})
	return r.Hist, err
}
func (w *remoteWorker) stall() error { _, err := w.call(workerReq{Op: "stall"}); return err }
func (w *remoteWorker) resume(newest int64) error {
	_, err := w.call(workerReq{Op: "resume", FromSeq: newest})
	return err
}
func (w *remoteWorker) storm() error { _, err := w.call(workerReq{Op: "storm"}); return err }
func (w *remoteWorker) finish(upTo int) (*poolResult, error) {
	r, err := w.call(workerReq{Op: "finish", UpTo: upTo})
	w.kill()
	return r.Result, err
}
func (w *remoteWorker) pid() int { return w.cmd.Process.Pid }

// kill ends the worker: closing its stdin asks it to stop; it is killed if
// it has not exited shortly after.
func (w *remoteWorker) kill() {
	w.stdin.Close()
	done := make(chan struct{})
	go func() { w.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		w.cmd.Process.Kill()
		<-done
	}
}

// startWorkers splits the streams over processes of at most PerProcess
// streams each (this one when they all fit) and starts them.
func (r *runner) startWorkers() error {
	c := r.cfg
	n := c.Streams
	procs := (n + c.PerProcess - 1) / c.PerProcess
	seriesLen := int((c.Duration + c.Settle + c.Drain).Seconds()) + int(time.Since(r.start).Seconds()) + 120 + n/1000
	for i, first := 0, 0; i < procs; i++ {
		share := n / procs
		if i < n%procs {
			share++
		}
		spec := poolSpec{
			URL: c.SubURL, Headers: c.SubHeaders, Streams: share, FirstIndex: first,
			PerAddr: c.PerAddr, DialConcurrency: c.DialConcurrency, ReadBuffer: c.ReadBuffer,
			MaxSeq: r.maxSeq, Start: r.start.UnixNano(), SeriesLen: seriesLen,
			ReconnectDelay: 500 * time.Millisecond, Epoll: c.Epoll,
		}
		if n := c.userCount(); n > 0 {
			spec.Users, spec.Tabs, spec.Assets = n, c.Tabs, c.Assets
		}
		if c.Scenario == "slow" {
			spec.SlowFraction, spec.SlowRcvBuf = c.SlowFraction, c.SlowRcvBuf
			spec.SlowReaders, spec.AllStreams = c.SlowReaders, c.Streams
			if c.FillerRate > 0 {
				spec.SlowURL, spec.URL = c.SubURL, withQuery(c.SubURL, c.OthersQuery)
			}
		}
		if c.Conflate {
			spec.URL = withQuery(spec.URL, "conflate=1")
			if spec.SlowURL != "" {
				spec.SlowURL = withQuery(spec.SlowURL, "conflate=1")
			}
		}
		first += share
		var w worker
		if procs == 1 {
			w = &localWorker{}
		} else {
			rw, err := startRemoteWorker(append(append([]string{}, c.Self...), "worker"))
			if err != nil {
				return err
			}
			w = rw
		}
		r.workers = append(r.workers, w)
		if err := w.start(spec); err != nil {
			return err
		}
	}
	return nil
}

func (r *runner) killWorkers() {
	for _, w := range r.workers {
		w.kill()
	}
}

// stats adds up the workers' counters.
func (r *runner) stats() (poolStats, error) {
	var total poolStats
	for _, w := range r.workers {
		st, err := w.stats()
		if err != nil {
			return total, err
		}
		total.add(st)
	}
	return total, nil
}

func (r *runner) setPhase(name string, from int64) error {
	for _, w := range r.workers {
		if err := w.setPhase(name, from); err != nil {
			return err
		}
	}
	return nil
}

func (r *runner) phaseHist(name string) (*Histogram, error) {
	h := NewHistogram()
	for _, w := range r.workers {
		wh, err := w.phaseHist(name)
		if err != nil {
			return nil, err
		}
		h.Merge(wh)
	}
	return h, nil
}
