package bench

import (
	"context"
	"time"
)

// storm publishes for Duration; a third of the way in, every stream drops
// and reconnects at once with its Last-Event-ID.
func (r *runner) storm(ctx context.Context) error {
	c := r.cfg
	st, err := r.stats()
	if err != nil {
		return err
	}
	storm := &Storm{Streams: st.Connected}
	r.res.Storm = storm
	var stormErr error
	stormed := false
	_, _, _, err = r.publish(ctx, "storm", c.Rate, c.Duration, func(el time.Duration) {
		if stormed || el < c.Duration/3 {
			return
		}
		stormed = true
		for _, w := range r.workers {
			if err := w.storm(); err != nil {
				stormErr = err
			}
		}
	})
	if err != nil {
		return err
	}
	return stormErr
}
