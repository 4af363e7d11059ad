package bench

import (
	"context"
	"time"
)

// idle holds the streams for Duration and measures the server's CPU.
func (r *runner) idle(ctx context.Context) error {
	u0 := r.usage()
	deadline := time.Now().Add(r.cfg.Duration)
	for time.Now().Before(deadline) {
		st, err := r.stats()
		if err != nil {
			return err
		}
		r.progressf("idle against %s: %d streams open, %.0fs left", r.res.Target, st.Connected, time.Until(deadline).Seconds())
		if err := sleep(ctx, min(time.Second, time.Until(deadline))); err != nil {
			return err
		}
	}
	u1 := r.usage()
	if s := r.res.Server; s != nil && u1.At.After(u0.At) {
		s.IdleCPU = (u1.CPU - u0.CPU).Seconds() / u1.At.Sub(u0.At).Seconds()
		// After the hold the server has had time to collect the garbage of
		// the connection phase: this is the idle cost of a stream.
		s.RSSConnected = u1.RSS
		if r.res.Connected > 0 {
			s.RSSPerStream = float64(u1.RSS-s.RSSBefore) / float64(r.res.Connected)
		}
	}
	return nil
}
