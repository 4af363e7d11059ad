package bench

import (
	"context"
	"fmt"
	"time"
)

// The phases of the slow scenario, by name (the pools' phases and
// Result.Phases).
const (
	phaseBaseline = "baseline" // everyone reading
	phaseStalled  = "stalled"  // the slow streams stalled
	phaseResumed  = "resumed"  // everyone reading again (Config.Stall)
	phaseDone     = "done"     // each job's completed event (Config.ProgressJobs)
)

// slow publishes with every stream reading, then with the slow streams
// stalled, and compares the others' latency. With a Stall the slow streams
// read again after it and their catch-up is measured; with progress, each
// job's completed event ends the run.
func (r *runner) slow(ctx context.Context) error {
	c := r.cfg
	m0 := r.metrics(ctx)
	u0 := r.usage()
	st0, err := r.stats()
	if err != nil {
		return err
	}
	s := &Slow{Overflow: -1, SlowCloses: -1, WriteTimeouts: -1, FramesConflated: -1, ReplaysRefused: -1, ProgressJobs: c.ProgressJobs}
	if c.Stall > 0 {
		err = r.slowResume(ctx, s)
	} else {
		err = r.slowForGood(ctx)
	}
	if err != nil {
		return err
	}
	u1 := r.usage()
	st1, err := r.stats()
	if err != nil {
		return err
	}
	// Of the deliveries to the streams that count: what the slow ones cost
	// the server is part of the price.
	r.cpuPerDelivery(u0, u1, st1.Delivered-st0.Delivered)
	m1 := r.metrics(ctx)
	s.SlowStreams = int(r.res.Connected - r.counted())
	if m0 != nil && m1 != nil {
		s.Overflow = m1.overflow - m0.overflow
		s.SlowCloses = m1.slowCloses - m0.slowCloses
		s.WriteTimeouts = m1.writeTimeouts - m0.writeTimeouts
		s.FramesConflated = m1.conflated - m0.conflated
		s.ReplaysRefused = m1.replaysRefused - m0.replaysRefused
	}
	r.res.Slow = s
	return nil
}

// slowForGood publishes half of Duration with every stream reading, then
// stalls the slow ones for good and publishes as much again. The filler
// runs beside the publisher for the whole scenario, so that the baseline
// and the stalled half differ only by the stall.
func (r *runner) slowForGood(ctx context.Context) error {
	c := r.cfg
	stopFill, err := r.startFiller(ctx, c.Duration)
	if err != nil {
		return err
	}
	half := c.Duration / 2
	err = r.slowPhase(ctx, phaseBaseline, half)
	if err == nil {
		err = r.stall()
	}
	if err == nil {
		err = r.slowPhase(ctx, phaseStalled, c.Duration-half)
	}
	if ferr := stopFill(); err == nil {
		err = ferr
	}
	return err
}

// slowResume publishes (Duration − Stall) / 2 with every stream reading,
// then Stall with the slow ones stalled and the filler filling their
// buffers, then tells them to read again and publishes the rest of
// Duration; with progress, then each job's completed event.
func (r *runner) slowResume(ctx context.Context, s *Slow) error {
	c := r.cfg
	base := (c.Duration - c.Stall) / 2
	if err := r.slowPhase(ctx, phaseBaseline, base); err != nil {
		return err
	}
	if err := r.stall(); err != nil {
		return err
	}
	stalled := time.Now()
	stopFill, err := r.startFiller(ctx, c.Stall)
	if err != nil {
		return err
	}
	err = r.slowPhase(ctx, phaseStalled, c.Stall)
	if ferr := stopFill(); err == nil {
		err = ferr
	}
	if err != nil {
		return err
	}
	for _, w := range r.workers {
		if err := w.resume(r.pub.seq); err != nil {
			return err
		}
	}
	s.StallSeconds = time.Since(stalled).Seconds()
	if err := r.slowPhase(ctx, phaseResumed, c.Duration-c.Stall-base); err != nil {
		return err
	}
	if c.ProgressJobs == 0 {
		return nil
	}
	r.pub.finishJobs()
	// At the publisher's pace, exactly one event a job fits in this.
	interval := time.Duration(float64(time.Second) / c.Rate)
	from := r.pub.seq + 1
	if err := r.slowPhase(ctx, phaseDone, time.Duration(c.ProgressJobs)*interval); err != nil {
		return err
	}
	return r.slowDrain(ctx, r.pub.seq-from+1)
}

// slowDrain waits until every slow stream has read the done events
// (Slow.AllCompleted), or Drain passes: they may still be catching up.
func (r *runner) slowDrain(ctx context.Context, done int64) error {
	slow := r.res.Connected - r.counted()
	deadline := time.Now().Add(r.cfg.Drain)
	for {
		st, err := r.stats()
		if err != nil {
			return err
		}
		if st.SlowDone >= slow*done || time.Now().After(deadline) {
			return nil
		}
		r.progressf("%s against %s: slow streams reading the completed events, %d/%d", r.cfg.Scenario, r.res.Target, st.SlowDone, slow*done)
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
}

// stall makes the slow streams stop reading after their next event.
func (r *runner) stall() error {
	for _, w := range r.workers {
		if err := w.stall(); err != nil {
			return err
		}
	}
	return nil
}

// slowPhase publishes at Rate for d as the phase name and records it.
func (r *runner) slowPhase(ctx context.Context, name string, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	if err := r.setPhase(name, r.pub.seq+1); err != nil {
		return err
	}
	st0, err := r.stats()
	if err != nil {
		return err
	}
	first, last, took, err := r.publish(ctx, name, r.cfg.Rate, d, nil)
	if err != nil {
		return err
	}
	st1, err := r.stats()
	if err != nil {
		return err
	}
	ph := Phase{Name: name, Rate: r.cfg.Rate, Seconds: took.Seconds(), Published: max(last-first+1, 0),
		Delivered: st1.Delivered - st0.Delivered}
	if took > 0 {
		ph.DeliveriesPerSec = float64(ph.Delivered) / took.Seconds()
	}
	r.res.Phases = append(r.res.Phases, ph)
	return nil
}

// startFiller publishes the filler (FillerBody, FillerRate times a
// second, for at most d) in the background, when there is one. stop ends
// it, waits for it and returns its error.
func (r *runner) startFiller(ctx context.Context, d time.Duration) (stop func() error, err error) {
	c := r.cfg
	if c.FillerRate <= 0 {
		return func() error { return nil }, nil
	}
	tmpl, err := ParseTemplate(c.FillerBody, c.FillerPad)
	if err != nil {
		return nil, err
	}
	fill, err := newPublisher(c.PubURL, c.PubHeaders, tmpl, int(c.FillerRate*d.Seconds())+16, 0)
	if err != nil {
		return nil, err
	}
	if c.ProgressJobs > 0 {
		fill.progressOf(FillerJobs, nil)
	}
	fillCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1) // capacity 1: read once, by stop
	go func() {
		defer fill.close()
		fill.run(fillCtx, c.FillerRate, d, nil)
		if fill.errors > 0 {
			done <- fmt.Errorf("filler: %d publish errors, last: %s", fill.errors, fill.lastErr)
			return
		}
		done <- nil
	}()
	return func() error {
		cancel()
		return <-done
	}, nil
}
