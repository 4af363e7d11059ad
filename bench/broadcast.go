package bench

import "context"

func (r *runner) broadcast(ctx context.Context) error {
	u0 := r.usage()
	split0 := r.cpuNow()
	st0, err := r.stats()
	if err != nil {
		return err
	}
	first, last, took, err := r.publish(ctx, "publishing", r.cfg.Rate, r.cfg.Duration, nil)
	if err != nil {
		return err
	}
	u1 := r.usage()
	r.res.CPU = r.cpuSplit(split0, r.cpuNow())
	st1, err := r.stats()
	if err != nil {
		return err
	}
	r.cpuPerDelivery(u0, u1, st1.Delivered-st0.Delivered)
	r.res.DeliveriesPerSec = float64(st1.Delivered-st0.Delivered) / took.Seconds()
	r.res.Phases = append(r.res.Phases, Phase{Name: r.cfg.Scenario, Rate: r.cfg.Rate, Seconds: took.Seconds(),
		Published: last - first + 1, Delivered: st1.Delivered - st0.Delivered, DeliveriesPerSec: r.res.DeliveriesPerSec})
	return nil
}
