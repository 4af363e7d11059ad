package bench

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
)

// WriteText writes the comparisons as human-readable tables.
func WriteText(w io.Writer, rep *Report) error {
	m := rep.Machine
	fmt.Fprintf(w, "machine: %d CPUs (%s), %.1f GiB, Linux %s, %s, open files %s\n",
		m.CPUs, m.CPUModel, m.MemoryGiB, m.Kernel, m.Go, m.OpenFiles)
	for _, c := range rep.Comparisons {
		if err := writeComparison(w, c); err != nil {
			return err
		}
	}
	return nil
}

// summaryRows returns the comparison's main table: a header row of
// targets, then one row per figure, the figure's name first.
func summaryRows(c *Comparison) [][]string {
	var rows [][]string
	row := func(name string, f func(r *Result) string) {
		cells := []string{name}
		for _, r := range c.Runs {
			cells = append(cells, f(r))
		}
		rows = append(rows, cells)
	}
	row("", func(r *Result) string { return runName(c, r) })
	row("streams connected", func(r *Result) string {
		s := fmt.Sprintf("%d/%d", r.Connected, r.Streams)
		if r.Failed > 0 {
			s += fmt.Sprintf(" (%d failed: %s)", r.Failed, reasons(r.FailReasons))
		}
		return s
	})
	row("connect rate", func(r *Result) string { return fmt.Sprintf("%.0f/s", r.ConnectRate) })
	row("server RSS per stream", func(r *Result) string {
		if r.Server == nil {
			return "-"
		}
		return fmt.Sprintf("%.2f KiB", r.Server.RSSPerStream/1024)
	})
	row("server RSS connected/peak", func(r *Result) string {
		if r.Server == nil {
			return "-"
		}
		return fmt.Sprintf("%.0f/%.0f MiB", float64(r.Server.RSSConnected)/(1<<20), float64(r.Server.RSSPeak)/(1<<20))
	})
	if c.Scenario == "idle" {
		row("idle server CPU", func(r *Result) string {
			if r.Server == nil {
				return "-"
			}
			return fmt.Sprintf("%.2f%% of a core", 100*r.Server.IdleCPU)
		})
	} else {
		row("events published", func(r *Result) string {
			s := fmt.Sprintf("%d", r.Published)
			if r.PublishErrors > 0 {
				s += fmt.Sprintf(" (%d errors: %s)", r.PublishErrors, r.PublishError)
			}
			return s
		})
		row("deliveries", func(r *Result) string { return fmt.Sprintf("%d (%.0f/s)", r.Delivered, r.DeliveriesPerSec) })
		if maxAssets(c) > 0 {
			row("streams per event (mean)", func(r *Result) string { return fmt.Sprintf("%.1f", r.Audience) })
		}
		row("lost / duplicates", func(r *Result) string { return fmt.Sprintf("%d / %d", r.Lost, r.Duplicates) })
		row("closed by server", func(r *Result) string { return fmt.Sprintf("%d", r.ClosedByServer) })
		row("server CPU per delivery", func(r *Result) string {
			if r.Server == nil || r.Server.CPUPerDelivery == 0 {
				return "-"
			}
			return fmt.Sprintf("%.2f µs", r.Server.CPUPerDelivery)
		})
		lat := func(name string, f func(l *Latency) float64) {
			row(name, func(r *Result) string {
				if r.Latency == nil {
					return "-"
				}
				return fmtMs(f(r.Latency))
			})
		}
		lat("latency p50", func(l *Latency) float64 { return l.P50 })
		lat("latency p90", func(l *Latency) float64 { return l.P90 })
		lat("latency p99", func(l *Latency) float64 { return l.P99 })
		lat("latency p99.9", func(l *Latency) float64 { return l.P999 })
		lat("latency max", func(l *Latency) float64 { return l.Max })
		row("fan-out completion p50/max", func(r *Result) string {
			if r.FanOut == nil {
				return "-"
			}
			s := fmtMs(r.FanOut.P50) + " / " + fmtMs(r.FanOut.Max)
			if r.FanOutIncomplete > 0 {
				s += fmt.Sprintf(" (%d incomplete)", r.FanOutIncomplete)
			}
			return s
		})
		row("publish request p99", func(r *Result) string {
			if r.PublishLatency == nil {
				return "-"
			}
			return fmtMs(r.PublishLatency.P99)
		})
	}
	row("harness CPU / RSS connected", func(r *Result) string {
		return fmt.Sprintf("%.1f s / %.0f MiB", r.ClientCPUSeconds, float64(r.ClientRSS)/(1<<20))
	})
	if c.Runs[0].CPU != nil {
		row("CPU publishing: hubs (kernel) / clients (kernel) / publisher", func(r *Result) string {
			if r.CPU == nil {
				return "-"
			}
			return fmt.Sprintf("%.2f (%.2f) / %.2f (%.2f) / %.2f cores over %.0f s",
				r.CPU.Hubs, r.CPU.HubsSys, r.CPU.Clients, r.CPU.ClientsSys, r.CPU.Controller, r.CPU.Seconds)
		})
		row("CPU publishing: machine busy (softirq) / ksoftirqd / other", func(r *Result) string {
			if r.CPU == nil || r.CPU.Machine == 0 {
				return "-"
			}
			return fmt.Sprintf("%.2f (%.2f) / %.2f / %.2f cores", r.CPU.Machine, r.CPU.SoftIRQ, r.CPU.KernelThreads, r.CPU.Other())
		})
	}
	for i := range c.Runs[0].Hubs {
		name := fmt.Sprintf("hub %d", i+1)
		if c.Runs[0].Hubs[i].NATS {
			name += " (with NATS)"
		}
		row(name+": streams, RSS/stream, CPU", func(r *Result) string {
			if i >= len(r.Hubs) {
				return "-"
			}
			h := r.Hubs[i]
			return fmt.Sprintf("%d, %.2f KiB, %.2f cores", h.Streams, h.RSSPerStream/1024, h.CPUCores)
		})
	}
	if c.Runs[0].Ramp != nil {
		row("ramp: best deliveries/s", func(r *Result) string {
			if r.Ramp == nil {
				return "-"
			}
			return fmt.Sprintf("%.0f/s at %.1f ev/s", r.Ramp.Best, r.Ramp.BestRate)
		})
		row("ramp: stopped by", func(r *Result) string {
			if r.Ramp == nil {
				return "-"
			}
			return r.Ramp.StoppedBy
		})
	}
	if c.Runs[0].Slow != nil {
		row("slow streams", func(r *Result) string { return fmt.Sprintf("%d", r.Slow.SlowStreams) })
		row("others' p99: baseline → stalled", func(r *Result) string {
			if r.Slow.Baseline == nil || r.Slow.Stalled == nil {
				return "-"
			}
			return fmtMs(r.Slow.Baseline.P99) + " → " + fmtMs(r.Slow.Stalled.P99)
		})
		row("overflow / slow closes", func(r *Result) string {
			if r.Slow.Overflow < 0 {
				return "n/a"
			}
			return fmt.Sprintf("%.0f / %.0f", r.Slow.Overflow, r.Slow.SlowCloses)
		})
		if resumed(c) {
			resumedRows(c, row)
		}
	}
	if c.Runs[0].Storm != nil {
		row("storm: back / dropped", func(r *Result) string { return fmt.Sprintf("%d / %d", r.Storm.Back, r.Storm.Streams) })
		row("storm: all back after", func(r *Result) string { return fmtMs(r.Storm.AllBackMs) })
	}
	return rows
}

// resumed reports whether the slow streams of a run of c read again after
// their stall, so that their catch-up was measured.
func resumed(c *Comparison) bool {
	for _, r := range c.Runs {
		if r.Slow != nil && r.Slow.StallSeconds > 0 {
			return true
		}
	}
	return false
}

// resumedRows adds, with row, the rows of what the slow streams saw once
// they read again.
func resumedRows(c *Comparison, row func(string, func(*Result) string)) {
	slow := func(f func(s *Slow) string) func(*Result) string {
		return func(r *Result) string {
			if r.Slow == nil || r.Slow.StallSeconds == 0 {
				return "-"
			}
			return f(r.Slow)
		}
	}
	row("slow: stalled for", slow(func(s *Slow) string { return fmt.Sprintf("%.1f s", s.StallSeconds) }))
	row("slow: stayed connected / closed", slow(func(s *Slow) string { return fmt.Sprintf("%d / %d", s.StayedConnected, s.Closed) }))
	row("write timeouts", slow(func(s *Slow) string {
		if s.WriteTimeouts < 0 {
			return "n/a"
		}
		return fmt.Sprintf("%.0f", s.WriteTimeouts)
	}))
	row("frames conflated / replays refused", slow(func(s *Slow) string {
		if s.FramesConflated < 0 {
			return "n/a"
		}
		return fmt.Sprintf("%.0f / %.0f", s.FramesConflated, s.ReplaysRefused)
	}))
	row("slow: catch-up p50 / p99 / max", slow(func(s *Slow) string {
		if s.CatchUp == nil {
			return "-"
		}
		return fmtMs(s.CatchUp.P50) + " / " + fmtMs(s.CatchUp.P99) + " / " + fmtMs(s.CatchUp.Max)
	}))
	row("slow: caught up, events read to catch up (mean)", slow(func(s *Slow) string {
		return fmt.Sprintf("%d, %.1f", s.CaughtUp, s.CatchUpEvents)
	}))
	for _, r := range c.Runs {
		if r.Slow != nil && r.Slow.ProgressJobs > 0 {
			row("slow: read every job's completed", slow(func(s *Slow) string {
				return fmt.Sprintf("%d of %d (%d jobs)", s.AllCompleted, s.StayedConnected+s.Closed, s.ProgressJobs)
			}))
			row("others: completed events missing", slow(func(s *Slow) string { return fmt.Sprintf("%d", s.OthersDoneMissing) }))
			break
		}
	}
}

// phaseRows returns the table of a run's phases, header first; nil when
// the run had a single phase.
func phaseRows(r *Result) [][]string {
	if len(r.Phases) < 2 {
		return nil
	}
	rows := [][]string{{"phase", "ev/s", "deliveries/s", "p50", "p99", "max"}}
	for _, p := range r.Phases {
		l := p.Latency
		if l == nil {
			l = &Latency{}
		}
		rows = append(rows, []string{p.Name, fmt.Sprintf("%.1f", p.Rate), fmt.Sprintf("%.0f", p.DeliveriesPerSec),
			fmtMs(l.P50), fmtMs(l.P99), fmtMs(l.Max)})
	}
	return rows
}

// ratioRows returns the eventhub/floor table, header first; nil without
// a floor run.
func ratioRows(c *Comparison) [][]string {
	if len(c.Ratios) == 0 {
		return nil
	}
	rows := [][]string{{"figure", "eventhub", "floor", "ratio"}}
	for _, r := range c.Ratios {
		ratio := "-"
		if r.Floor != 0 {
			ratio = fmt.Sprintf("%.2f×", r.Ratio)
		}
		rows = append(rows, []string{r.Figure, fmtNum(r.Target, r.Unit), fmtNum(r.Floor, r.Unit), ratio})
	}
	return rows
}

func writeTable(w io.Writer, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	for _, cells := range rows {
		fmt.Fprintln(tw, strings.Join(cells, "\t")+"\t")
	}
	return tw.Flush()
}

func writeComparison(w io.Writer, c *Comparison) error {
	fmt.Fprintf(w, "\n== %s%s ==\n", c.Scenario, usersHeader(c))
	if err := writeTable(w, summaryRows(c)); err != nil {
		return err
	}
	for _, r := range c.Runs {
		if rows := phaseRows(r); rows != nil {
			fmt.Fprintf(w, "\n%s phases (%s):\n", c.Scenario, runName(c, r))
			if err := writeTable(w, rows); err != nil {
				return err
			}
		}
	}
	if rows := ratioRows(c); rows != nil {
		fmt.Fprintf(w, "\n%s: eventhub / floor, measured in the same run:\n", c.Scenario)
		return writeTable(w, rows)
	}
	if rows := selectiveRows(c); rows != nil {
		fmt.Fprintf(w, "\n%s: selective / broadcast, same hub binary and floor, measured in the same run:\n", c.Scenario)
		return writeTable(w, rows)
	}
	if rows := conflationRows(c); rows != nil {
		fmt.Fprintf(w, "\n%s: with conflation / without, same hub binary, measured in the same run:\n", c.Scenario)
		return writeTable(w, rows)
	}
	return nil
}

// conflationRows returns the conflate scenario's table, with conflation
// against without, header first; nil for any other comparison.
func conflationRows(c *Comparison) [][]string {
	cf := c.Conflation
	if cf == nil || len(c.Runs) != 2 {
		return nil
	}
	rows := [][]string{{"figure", "conflate=0", "conflate=1", "on / off"}}
	add := func(name, unit string, off, on float64) {
		ratio := "-"
		if off > 0 && on > 0 {
			ratio = fmt.Sprintf("%.2f×", on/off)
		}
		rows = append(rows, []string{name, fmtNum(off, unit), fmtNum(on, unit), ratio})
	}
	slow := func(i int) *Slow {
		if s := c.Runs[i].Slow; s != nil {
			return s
		}
		return &Slow{}
	}
	p99 := func(l *Latency) float64 {
		if l == nil {
			return 0
		}
		return l.P99
	}
	add("the others' latency p99", "ms", cf.P99Off, cf.P99On)
	add("the others' latency p99, slow ones stalled", "ms", p99(slow(0).Stalled), p99(slow(1).Stalled))
	add("server CPU per delivery", "µs", cf.CPUOff, cf.CPUOn)
	rows = append(rows, []string{"the others: lost (conflated) / completed missing",
		fmt.Sprintf("%d / %d", c.Runs[0].Lost, slow(0).OthersDoneMissing),
		fmt.Sprintf("%d / %d", c.Runs[1].Lost, slow(1).OthersDoneMissing), ""})
	rows = append(rows, []string{"slow: stayed connected / closed",
		fmt.Sprintf("%d / %d", slow(0).StayedConnected, slow(0).Closed),
		fmt.Sprintf("%d / %d", slow(1).StayedConnected, slow(1).Closed), ""})
	rows = append(rows, []string{"closes: slow / write timeout",
		fmt.Sprintf("%.0f / %.0f", slow(0).SlowCloses, slow(0).WriteTimeouts),
		fmt.Sprintf("%.0f / %.0f", slow(1).SlowCloses, slow(1).WriteTimeouts), ""})
	catchUp := func(s *Slow) float64 {
		if s.CatchUp == nil {
			return 0
		}
		return s.CatchUp.P50
	}
	add("slow: catch-up p50", "ms", catchUp(slow(0)), catchUp(slow(1)))
	add("slow: events read to catch up (mean)", "", slow(0).CatchUpEvents, slow(1).CatchUpEvents)
	return rows
}

// selectiveRows returns the selective / broadcast table of the selective
// scenario, header first, with the floor's columns when it ran; nil for
// any other comparison.
func selectiveRows(c *Comparison) [][]string {
	s := c.Selective
	if s == nil || len(c.Runs) != 2 && len(c.Runs) != 4 {
		return nil
	}
	pairs := [][2]*Result{{c.Runs[0], c.Runs[1]}}
	head := []string{"figure", "broadcast", "selective", "ratio"}
	if len(c.Runs) == 4 {
		pairs = append(pairs, [2]*Result{c.Runs[2], c.Runs[3]})
		head = append(head, "floor broadcast", "floor selective", "floor ratio")
	}
	rows := [][]string{head}
	add := func(name, unit string, v func(*Result) float64) {
		row := []string{name}
		for _, p := range pairs {
			bv, sv := v(p[0]), v(p[1])
			ratio := "-"
			if bv != 0 && sv != 0 {
				ratio = fmt.Sprintf("%.2f×", sv/bv)
			}
			row = append(row, fmtNum(bv, unit), fmtNum(sv, unit), ratio)
		}
		rows = append(rows, row)
	}
	add("server CPU per delivery", "µs", func(r *Result) float64 {
		if r.Server == nil {
			return 0
		}
		return r.Server.CPUPerDelivery
	})
	add("events/s published", "", func(r *Result) float64 {
		if len(r.Phases) == 0 {
			return 0
		}
		return r.Phases[0].Rate
	})
	add("streams per event", "", func(r *Result) float64 { return r.Audience })
	add("deliveries/s", "", func(r *Result) float64 { return r.DeliveriesPerSec })
	add("latency p99", "ms", func(r *Result) float64 {
		if r.Latency == nil {
			return 0
		}
		return r.Latency.P99
	})
	if len(c.Runs) == 4 {
		vs := func(a, b float64) string {
			if a > 0 && b > 0 {
				return fmt.Sprintf("%.2f×", a/b)
			}
			return "-"
		}
		row := []string{"server CPU per delivery / floor's",
			vs(s.BroadcastCPUPerDelivery, s.FloorBroadcastCPUPerDelivery),
			vs(s.SelectiveCPUPerDelivery, s.FloorSelectiveCPUPerDelivery) + fmt.Sprintf(" (target ≤ %.2f×)", s.Target), "", "", "", ""}
		rows = append(rows, row)
	}
	return rows
}

// runName names a run in a comparison's tables: its target, and its
// scenario when the comparison's runs differ by scenario (selective), or
// whether it conflated when they differ by that (conflate).
func runName(c *Comparison, r *Result) string {
	for _, o := range c.Runs {
		switch {
		case o.Scenario != r.Scenario:
			return r.Target + " " + r.Scenario
		case o.Conflate != r.Conflate && r.Conflate:
			return r.Target + " conflate=1"
		case o.Conflate != r.Conflate:
			return r.Target + " conflate=0"
		}
	}
	return r.Target
}

// usersHeader describes the users the streams were spread over, for the
// header.
func usersHeader(c *Comparison) string {
	if len(c.Runs) == 0 {
		return ""
	}
	r := c.Runs[0]
	if r.Users == 0 {
		return fmt.Sprintf(": %d streams, one admin user", r.Streams)
	}
	s := fmt.Sprintf(": %d streams, %d users × %d tabs", r.Streams, r.Users, r.Tabs)
	if n := maxAssets(c); n > 0 {
		s += fmt.Sprintf(", %d assets", n)
	}
	return s
}

// maxAssets is the most assets a run of the comparison spread its events
// over; zero if every event went to every stream.
func maxAssets(c *Comparison) int {
	n := 0
	for _, r := range c.Runs {
		n = max(n, r.Assets)
	}
	return n
}

func fmtMs(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f ms", v)
	case v >= 10:
		return fmt.Sprintf("%.1f ms", v)
	default:
		return fmt.Sprintf("%.2f ms", v)
	}
}

func fmtNum(v float64, unit string) string {
	s := fmt.Sprintf("%.2f", v)
	if v >= 100 {
		s = fmt.Sprintf("%.0f", v)
	}
	if unit != "" {
		s += " " + unit
	}
	return s
}

func reasons(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s ×%d", k, m[k])
	}
	return b.String()
}
