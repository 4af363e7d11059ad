package bench

import (
	"errors"
	"time"
)

// collect finishes the workers and merges what they recorded.
func (r *runner) collect() error {
	upTo := 0
	if r.pub != nil {
		upTo = int(r.pub.seq)
	}
	var results []*poolResult
	var errs []error
	for _, w := range r.workers {
		pr, err := w.finish(upTo)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		results = append(results, pr)
	}
	r.workers = nil
	if err := errors.Join(errs...); err != nil {
		return err
	}
	res := r.res
	var st poolStats
	all := NewHistogram()
	storm := NewHistogram()
	phases := map[string]*Histogram{}
	var series []*Histogram
	seqMax := make([]int64, upTo+1)
	seqCount := make([]int64, upTo+1)
	counted := int64(0)
	doneFrom := int64(0) // the first seq of the slow scenario's done phase
	var slow *slowResult
	for _, pr := range results {
		st.add(pr.Stats)
		if pr.Slow != nil {
			if slow == nil {
				slow = &slowResult{CatchUp: NewHistogram()}
			}
			slow.add(pr.Slow)
		}
		counted += pr.Counted
		storm.Merge(pr.Storm)
		for _, ph := range pr.Phases {
			if ph.Name == phaseDone {
				doneFrom = ph.FromSeq
			}
			all.Merge(ph.Latency)
			if phases[ph.Name] == nil {
				phases[ph.Name] = NewHistogram()
			}
			phases[ph.Name].Merge(ph.Latency)
		}
		for i, h := range pr.Series {
			for len(series) <= i {
				series = append(series, nil)
			}
			if h != nil {
				if series[i] == nil {
					series[i] = NewHistogram()
				}
				series[i].Merge(h)
			}
		}
		for i := range pr.SeqMax {
			if i <= upTo {
				seqMax[i] = max(seqMax[i], pr.SeqMax[i])
				seqCount[i] += int64(pr.SeqCount[i])
			}
		}
	}
	if res.DeliveriesPerSec == 0 && r.pubTime > 0 {
		res.DeliveriesPerSec = float64(st.Delivered) / r.pubTime.Seconds()
	}
	res.Histogram = all
	res.Latency = summarize(all)
	res.Delivered = st.Delivered
	res.Duplicates = st.Duplicates
	res.ClosedByServer = st.ClosedByServer
	res.Reconnects = st.Reconnects
	res.NoTimestamp = st.NoTS
	for i := range res.Phases {
		if res.Phases[i].Latency == nil {
			res.Phases[i].Latency = summarize(phases[res.Phases[i].Name])
		}
	}
	if res.Slow != nil {
		res.Slow.Baseline = summarize(phases[phaseBaseline])
		res.Slow.Stalled = summarize(phases[phaseStalled])
		if s := res.Slow; slow != nil {
			s.StayedConnected, s.Closed = slow.Streams-slow.Closed, slow.Closed
			s.CatchUp, s.CaughtUp = summarize(slow.CatchUp), slow.CaughtUp
			if slow.CaughtUp > 0 {
				s.CatchUpEvents = float64(slow.CatchUpEvents) / float64(slow.CaughtUp)
			}
			s.AllCompleted = slow.AllDone
		}
	}
	if res.Storm != nil {
		res.Storm.Back = st.StormBack
		res.Storm.Reconnect = summarize(storm)
		if storm.Count() > 0 {
			res.Storm.AllBackMs = ms(storm.Max())
		}
	}
	if r.pub != nil {
		pb := r.pub
		res.Published = pb.seq
		res.PublishErrors, res.PublishError = pb.errors, pb.lastErr
		res.PublishLagMax = ms(pb.lagMax)
		res.PublishLatency = summarize(pb.post)
		// Each event is for every counted stream or, with Assets, for the
		// counted streams of its asset.
		want := int64(0)
		fan := NewHistogram()
		for seq := int64(1); seq <= pb.seq; seq++ {
			audience := counted
			if r.cfg.Assets > 0 {
				audience = pb.audience(st.Audience, seq)
			}
			want += audience
			if seq >= int64(len(seqMax)) {
				continue
			}
			if seqCount[seq] >= audience && audience > 0 && seqMax[seq] > 0 {
				fan.Record(time.Duration(seqMax[seq] - pb.sent[seq]))
			} else {
				res.FanOutIncomplete++
			}
		}
		res.Lost = max(want-st.Delivered, 0)
		if res.Slow != nil && doneFrom > 0 {
			// With conflation, a stream that fell a round behind may lose
			// progress frames, never a job's completed event.
			for seq := doneFrom; seq <= pb.seq && seq < int64(len(seqCount)); seq++ {
				res.Slow.OthersDoneMissing += max(counted-seqCount[seq], 0)
			}
		}
		if pb.seq > 0 {
			res.Audience = float64(want) / float64(pb.seq)
		}
		res.FanOut = summarize(fan)
	}
	r.mu.Lock()
	samples := append([]procUsage(nil), r.samples...)
	r.mu.Unlock()
	n := len(series)
	if len(samples) > 0 {
		n = max(n, int(samples[len(samples)-1].At.Sub(r.start).Seconds())+1)
	}
	res.Series = make([]Point, n)
	for i := range res.Series {
		res.Series[i].T = i
		if i < len(series) {
			res.Series[i].Latency = summarize(series[i])
		}
	}
	for i, u := range samples {
		t := int(u.At.Sub(r.start).Seconds())
		if t < 0 || t >= n {
			continue
		}
		res.Series[t].RSS = u.RSS
		if i > 0 {
			if dt := u.At.Sub(samples[i-1].At).Seconds(); dt > 0 {
				res.Series[t].CPU = (u.CPU - samples[i-1].CPU).Seconds() / dt
			}
		}
	}
	return nil
}
