package bench

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"time"
)

// ramp raises the rate step by step until a step's p99 passes the bound
// twice in a row at one rate, a step loses events, or the time is up. A
// step over the bound is run once more before it ends the ramp: on a
// shared machine one noisy step should not decide the figure. Then, while
// there is time, it narrows the gap between the last rate that held and the
// one that did not (up to rampRefinements steps, each at their geometric
// mean), since the steps grow by RampFactor (40% by default).
func (r *runner) ramp(ctx context.Context) error {
	c := r.cfg
	ramp := &Ramp{BoundMs: ms(c.RampMaxP99), StoppedBy: "time"}
	r.res.Ramp = ramp
	deadline := time.Now().Add(c.Duration)
	rate := c.Rate
	again := false // this step repeats the previous one's rate
	step := 1
	for ; time.Until(deadline) >= c.RampStep; step++ {
		name := "step " + strconv.Itoa(step)
		if again {
			name += " (again)"
		}
		held, lost, p99, err := r.rampStep(ctx, name, rate)
		if err != nil {
			return err
		}
		if lost > 0 {
			ramp.StoppedBy = fmt.Sprintf("%d deliveries lost at %.1f events/s", lost, rate)
			return nil
		}
		if !held {
			if again {
				ramp.StoppedBy = fmt.Sprintf("p99 %.0f ms at %.1f events/s, twice", ms(p99), rate)
				step++
				break
			}
			again = true // the same rate once more
			continue
		}
		again = false
		rate *= c.RampFactor
	}
	if ramp.StoppedBy == "time" || ramp.BestRate == 0 {
		return nil
	}
	lo, hi := ramp.BestRate, rate
	for range rampRefinements {
		if time.Until(deadline) < c.RampStep {
			break
		}
		mid := math.Sqrt(lo * hi)
		held, lost, _, err := r.rampStep(ctx, "step "+strconv.Itoa(step)+" (between)", mid)
		if err != nil {
			return err
		}
		step++
		if lost > 0 {
			ramp.StoppedBy += fmt.Sprintf("; %d deliveries lost at %.1f events/s", lost, mid)
			return nil
		}
		if held {
			lo = mid
		} else {
			hi = mid
		}
	}
	return nil
}

// rampRefinements is how many steps a ramp spends between the last rate
// that held and the first that did not.
const rampRefinements = 2

// rampStep publishes at rate for one RampStep as phase name and reports
// whether it held (p99 within the bound, nothing lost), what it lost and
// its p99; a step that held and beat the best so far becomes the best.
func (r *runner) rampStep(ctx context.Context, name string, rate float64) (held bool, lost int64, p99 time.Duration, err error) {
	c, ramp := r.cfg, r.res.Ramp
	if err := r.setPhase(name, r.pub.seq+1); err != nil {
		return false, 0, 0, err
	}
	u0 := r.usage()
	st0, err := r.stats()
	if err != nil {
		return false, 0, 0, err
	}
	first, last, took, err := r.publish(ctx, name, rate, c.RampStep, nil)
	if err != nil {
		return false, 0, 0, err
	}
	u1 := r.usage()
	st1, err := r.stats()
	if err != nil {
		return false, 0, 0, err
	}
	h, err := r.phaseHist(name)
	if err != nil {
		return false, 0, 0, err
	}
	delivered := st1.Delivered - st0.Delivered
	ph := Phase{Name: name, Rate: rate, Seconds: took.Seconds(), Published: last - first + 1,
		Delivered: delivered, DeliveriesPerSec: float64(delivered) / c.RampStep.Seconds(), Latency: summarize(h)}
	r.res.Phases = append(r.res.Phases, ph)
	lost = r.expected(st1, first, last) - delivered
	p99 = h.Quantile(0.99)
	held = p99 <= c.RampMaxP99 && lost <= 0
	if held && ph.DeliveriesPerSec > ramp.Best {
		ramp.Best, ramp.BestRate = ph.DeliveriesPerSec, rate
		r.cpuPerDelivery(u0, u1, delivered)
	}
	return held, lost, p99, nil
}
