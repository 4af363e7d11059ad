package bench

import (
	"context"
	"fmt"
)

// slow publishes with every stream reading, then with the slow fraction
// stalled, and compares the others' latency.
func (r *runner) slow(ctx context.Context) error {
	c := r.cfg
	m0 := r.metrics(ctx)
	// The filler runs beside the publisher for the whole scenario, so that
	// the baseline and the stalled half differ only by the stall. It is
	// stopped and waited for before the figures are read.
	fillCtx, stopFill := context.WithCancel(ctx)
	defer stopFill()
	fillDone := make(chan error, 1) // capacity 1: read once, after stopFill
	if c.FillerRate > 0 {
		tmpl, err := ParseTemplate(c.FillerBody, c.FillerPad)
		if err != nil {
			return err
		}
		fill, err := newPublisher(c.PubURL, c.PubHeaders, tmpl, int(c.FillerRate*c.Duration.Seconds())+16, 0)
		if err != nil {
			return err
		}
		go func() {
			defer fill.close()
			fill.run(fillCtx, c.FillerRate, c.Duration, nil)
			if fill.errors > 0 {
				fillDone <- fmt.Errorf("filler: %d publish errors, last: %s", fill.errors, fill.lastErr)
				return
			}
			fillDone <- nil
		}()
	} else {
		fillDone <- nil
	}
	err := r.slowPhases(ctx)
	stopFill()
	if ferr := <-fillDone; err == nil {
		err = ferr
	}
	if err != nil {
		return err
	}
	m1 := r.metrics(ctx)
	s := &Slow{SlowStreams: int(r.res.Connected - r.counted()), Overflow: -1, SlowCloses: -1}
	if m0 != nil && m1 != nil {
		s.Overflow = m1.overflow - m0.overflow
		s.SlowCloses = m1.slowCloses - m0.slowCloses
	}
	r.res.Slow = s
	return nil
}

// slowPhases publishes with every stream reading, then stalls the slow
// ones and publishes as much again.
func (r *runner) slowPhases(ctx context.Context) error {
	c := r.cfg
	half := c.Duration / 2
	if err := r.setPhase("baseline", 1); err != nil {
		return err
	}
	if _, _, _, err := r.publish(ctx, "baseline", c.Rate, half, nil); err != nil {
		return err
	}
	for _, w := range r.workers {
		if err := w.stall(); err != nil {
			return err
		}
	}
	if err := r.setPhase("stalled", r.pub.seq+1); err != nil {
		return err
	}
	_, _, _, err := r.publish(ctx, "stalled", c.Rate, c.Duration-half, nil)
	return err
}
