package bench

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Latency summarises a Histogram, in milliseconds.
type Latency struct {
	Count uint64  `json:"count"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p999_ms"`
	Max   float64 `json:"max_ms"`
	Mean  float64 `json:"mean_ms"`
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

// summarize reads the percentiles of h; nil when h is empty.
func summarize(h *Histogram) *Latency {
	if h == nil || h.Count() == 0 {
		return nil
	}
	return &Latency{
		Count: h.Count(),
		P50:   ms(h.Quantile(0.50)),
		P90:   ms(h.Quantile(0.90)),
		P99:   ms(h.Quantile(0.99)),
		P999:  ms(h.Quantile(0.999)),
		Max:   ms(h.Max()),
		Mean:  ms(h.Mean()),
	}
}

// ServerUsage is what /proc said about the server under test.
type ServerUsage struct {
	PID int `json:"pid"`
	// RSS before any stream, once all were connected (after the settle
	// time), at the end, and the highest sampled.
	RSSBefore    int64 `json:"rss_before_bytes"`
	RSSConnected int64 `json:"rss_connected_bytes"`
	RSSEnd       int64 `json:"rss_end_bytes"`
	RSSPeak      int64 `json:"rss_peak_bytes"`
	// RSSPerStream is (RSSConnected − RSSBefore) / streams connected.
	// RSSConnected is read after the settle time, and in the idle scenario
	// again at the end of the hold, which is the figure kept.
	RSSPerStream float64 `json:"rss_per_stream_bytes"`
	CPUSeconds   float64 `json:"cpu_seconds"` // utime+stime over the whole run
	// IdleCPU is the CPU used while the streams were held idle, in cores
	// (0.01 = 1% of one core); 0 when the scenario held none.
	IdleCPU float64 `json:"idle_cpu_cores"`
	// CPUPerDelivery is the CPU used from the first publish until every
	// delivery arrived, divided by the deliveries.
	CPUPerDelivery float64 `json:"cpu_per_delivery_us"`
}

// HubUsage is one hub process of a cluster.
type HubUsage struct {
	PID  int  `json:"pid"`
	NATS bool `json:"nats"` // it runs an embedded NATS server (a node of the cluster's)
	// Streams it held once all were connected (eventhub_streams_active on
	// its admin address); -1 if unknown.
	Streams      int64   `json:"streams"`
	RSSBefore    int64   `json:"rss_before_bytes"`
	RSSConnected int64   `json:"rss_connected_bytes"`
	RSSPerStream float64 `json:"rss_per_stream_bytes"`
	// CPUCores is its CPU while events were published and delivered, in
	// cores.
	CPUCores float64 `json:"cpu_cores"`
}

// CPUSplit is the CPU used while events were published and delivered, in
// cores (1 = one core busy for the whole window), by part.
type CPUSplit struct {
	Seconds float64 `json:"seconds"` // the window: first publish to last delivery (or the drain's end)
	Hubs    float64 `json:"hubs_cores"`
	// HubsSys is the part of Hubs spent in the kernel (stime): write()
	// and, on loopback, much of the receiving side's TCP work.
	HubsSys float64 `json:"hubs_sys_cores"`
	// Clients is the processes that hold the streams (the workers, or this
	// process when it holds them itself); Controller this process when it
	// does not: the publisher and the bookkeeping.
	Clients    float64 `json:"clients_cores"`
	ClientsSys float64 `json:"clients_sys_cores"` // the part of Clients in the kernel
	Controller float64 `json:"controller_cores"`
	// Machine is every CPU's busy time (/proc/stat), whoever it was for;
	// SoftIRQ the part of it in softirq, which on loopback is mostly TCP
	// receive work, charged to the process that was running or, when
	// ksoftirqd does it, to KernelThreads (ksoftirqd's own CPU). Machine
	// minus the parts above is everything else on the machine: processes
	// the run does not measure.
	Machine       float64 `json:"machine_cores"`
	SoftIRQ       float64 `json:"softirq_cores"`
	KernelThreads float64 `json:"kernel_threads_cores"`
}

// Other is the machine's busy CPU that none of the measured parts account
// for, in cores.
func (s *CPUSplit) Other() float64 {
	return s.Machine - s.Hubs - s.Clients - s.Controller - s.KernelThreads
}

// Phase is one measurement window of a run: a ramp step, the baseline or
// stalled half of the slow scenario.
type Phase struct {
	Name             string   `json:"name"`
	Rate             float64  `json:"rate"` // events/s published
	Seconds          float64  `json:"seconds"`
	Published        int64    `json:"published"`
	Delivered        int64    `json:"delivered"`
	DeliveriesPerSec float64  `json:"deliveries_per_sec"`
	Latency          *Latency `json:"latency"`
}

// Point is one second of a run.
type Point struct {
	T       int      `json:"t"` // seconds since the run began
	Latency *Latency `json:"latency,omitempty"`
	RSS     int64    `json:"rss_bytes,omitempty"`
	CPU     float64  `json:"cpu_cores,omitempty"` // server CPU in that second
}

// Result is what one scenario measured against one server.
type Result struct {
	Scenario string    `json:"scenario"`
	Target   string    `json:"target"` // eventhub, floor or server
	URL      string    `json:"url"`
	Began    time.Time `json:"began"`
	Seconds  float64   `json:"seconds"`

	Streams int `json:"streams"`
	// Users is how many users the streams were spread over, Tabs the
	// streams each opened in a row; zero users: one admin user for every
	// stream (Config.OneAdmin).
	Users int `json:"users"`
	Tabs  int `json:"tabs"`
	// Assets is how many assets the users and events were spread over
	// (Config.Assets); zero: every event to every stream.
	Assets int `json:"assets,omitempty"`
	// Conflate says every stream asked for conflation (Config.Conflate).
	Conflate bool `json:"conflate,omitempty"`
	// UsersActive is the server's eventhub_users_active once the streams
	// were connected (summed over a cluster's hubs); zero if unknown.
	UsersActive int64          `json:"users_active,omitempty"`
	Connected   int64          `json:"connected"`
	Failed      int64          `json:"failed"`
	FailReasons map[string]int `json:"fail_reasons,omitempty"`
	// ConnectSeconds is the time to open every stream; ConnectRate the
	// streams opened per second.
	ConnectSeconds float64 `json:"connect_seconds"`
	ConnectRate    float64 `json:"connect_rate"`

	Server *ServerUsage `json:"server,omitempty"`
	// ClientCPUSeconds is the harness's own CPU (workers included).
	ClientCPUSeconds float64 `json:"client_cpu_seconds"`
	// ClientRSS is the harness's own VmRSS (workers included) once the
	// streams were connected.
	ClientRSS int64 `json:"client_rss_bytes"`

	Published      int64    `json:"published"`
	PublishErrors  int64    `json:"publish_errors"`
	PublishError   string   `json:"publish_error,omitempty"`
	PublishLagMax  float64  `json:"publish_lag_max_ms"`
	PublishLatency *Latency `json:"publish_latency,omitempty"`

	Delivered        int64   `json:"delivered"`
	DeliveriesPerSec float64 `json:"deliveries_per_sec"`
	// Lost is deliveries expected (each event to every counted stream, or
	// with Assets to the counted streams of its asset) but not received;
	// Duplicates those received twice.
	Lost           int64 `json:"lost"`
	Duplicates     int64 `json:"duplicates"`
	ClosedByServer int64 `json:"closed_by_server"`
	Reconnects     int64 `json:"reconnects"`
	NoTimestamp    int64 `json:"events_without_ts"`
	// Audience is the deliveries expected per event published, on
	// average: the counted streams, or with Assets those of an asset.
	Audience float64 `json:"audience_mean,omitempty"`

	// Latency is receive time − ts over every delivery; FanOut the
	// completion (last delivery − send time) over every event that reached
	// every counted stream it was for, FanOutIncomplete the events that did
	// not.
	Latency          *Latency `json:"latency,omitempty"`
	FanOut           *Latency `json:"fan_out,omitempty"`
	FanOutIncomplete int      `json:"fan_out_incomplete"`

	// Hubs is each hub process of a cluster (Config.Hubs > 1), in start
	// order; the first NATSReplicas run NATS.
	Hubs []HubUsage `json:"hubs,omitempty"`
	// NATSReplicas is, for a cluster, how many NATS nodes it ran and so
	// how many replicas the log and the job queue were kept with
	// (Config.NATSReplicas); zero for one hub.
	NATSReplicas int `json:"nats_replicas,omitempty"`
	// CPU is where the CPU went while events were published and delivered
	// (broadcast).
	CPU *CPUSplit `json:"cpu,omitempty"`

	Phases []Phase `json:"phases,omitempty"`
	Ramp   *Ramp   `json:"ramp,omitempty"`
	Slow   *Slow   `json:"slow,omitempty"`
	Storm  *Storm  `json:"storm,omitempty"`

	Series    []Point    `json:"series,omitempty"`
	Histogram *Histogram `json:"histogram,omitempty"`
}

// Ramp is the outcome of the ramp scenario.
type Ramp struct {
	BoundMs float64 `json:"p99_bound_ms"`
	// Best is the highest deliveries/s of a step whose p99 stayed within
	// the bound and that lost nothing; BestRate its events/s.
	Best      float64 `json:"best_deliveries_per_sec"`
	BestRate  float64 `json:"best_rate"`
	StoppedBy string  `json:"stopped_by"`
}

// Slow is the outcome of the slow scenario.
type Slow struct {
	SlowStreams int      `json:"slow_streams"`
	Baseline    *Latency `json:"baseline"` // the others, everyone reading
	Stalled     *Latency `json:"stalled"`  // the others, slow ones stalled
	// Overflow and SlowCloses are read from the server's /metrics (deltas
	// over the run); -1 when it has none. So are WriteTimeouts (streams
	// closed because one write did not complete within the server's write
	// timeout), FramesConflated (eventhub_frames_conflated_total) and
	// ReplaysRefused (resumes whose replay was over the mailbox's byte
	// budget, which then start with a reset, "expired").
	Overflow        float64 `json:"overflow"`
	SlowCloses      float64 `json:"slow_closes"`
	WriteTimeouts   float64 `json:"write_timeouts"`
	FramesConflated float64 `json:"frames_conflated"`
	ReplaysRefused  float64 `json:"replays_refused"`

	// The rest is measured when the slow streams read again after a stall
	// (Config.Stall, or progress): StallSeconds is how long they were
	// stalled, ProgressJobs the jobs whose progress was published.
	StallSeconds float64 `json:"stall_seconds,omitempty"`
	ProgressJobs int     `json:"progress_jobs,omitempty"`
	// StayedConnected is the slow streams the server never closed, Closed
	// those it closed at least once (each resumed with Last-Event-ID once
	// it read again).
	StayedConnected int64 `json:"stayed_connected"`
	Closed          int64 `json:"closed"`
	// CatchUp is the staleness of the slow streams once they read again:
	// for each, the time from the resume until it read an event at least
	// as new as the newest published at the resume (reconnecting first if
	// the server had closed it). CaughtUp is how many did, CatchUpEvents
	// the mean events they read until then.
	CatchUp       *Latency `json:"catch_up,omitempty"`
	CaughtUp      int64    `json:"caught_up"`
	CatchUpEvents float64  `json:"catch_up_events_mean"`
	// AllCompleted is the slow streams that read every job's completed
	// event (with progress); OthersDoneMissing the completed events that
	// did not reach one of the others (which, conflating, may lose
	// progress frames, as "lost" counts, but never a completed event).
	AllCompleted      int64 `json:"all_completed"`
	OthersDoneMissing int64 `json:"others_completed_missing"`
}

// Storm is the outcome of the storm scenario.
type Storm struct {
	Streams int64 `json:"streams"` // connected when the storm began
	Back    int64 `json:"back"`    // reconnected
	// AllBackMs is the time from the storm until the last stream was back;
	// Reconnect the distribution of that time over the streams.
	AllBackMs float64  `json:"all_back_ms"`
	Reconnect *Latency `json:"reconnect"`
}

// Ratio is one figure of a run against eventhub over the same figure
// against the floor, measured in the same invocation.
type Ratio struct {
	Figure string  `json:"figure"`
	Unit   string  `json:"unit"`
	Target float64 `json:"target"`
	Floor  float64 `json:"floor"`
	Ratio  float64 `json:"ratio"`
}

// Comparison is one scenario against the target and, when asked, the floor;
// or, for the selective scenario, its broadcast and selective runs; for the
// conflate scenario, its runs without and with conflation.
type Comparison struct {
	Scenario   string      `json:"scenario"`
	Runs       []*Result   `json:"runs"`
	Ratios     []Ratio     `json:"ratios,omitempty"`
	Selective  *Selective  `json:"selective,omitempty"`
	Conflation *Conflation `json:"conflation,omitempty"`
}

// Conflation compares the conflate scenario's runs: the slow scenario with
// progress on the same hub binary, first without conflation (Off), then
// with every stream asking for it (On). What conflation must not do is
// cost the streams that keep up: their latency p99 and the server's CPU
// per delivery (to them) on / off should be 1 within the noise.
type Conflation struct {
	P99Off float64 `json:"p99_off_ms"`
	P99On  float64 `json:"p99_on_ms"`
	// P99Ratio is P99On / P99Off, CPURatio the same of the server CPU per
	// delivery; zero if either was not measured.
	P99Ratio float64 `json:"p99_ratio"`
	CPUOff   float64 `json:"cpu_per_delivery_off_us"`
	CPUOn    float64 `json:"cpu_per_delivery_on_us"`
	CPURatio float64 `json:"cpu_per_delivery_ratio"`
}

// compareConflation compares the conflate scenario's two runs, without
// conflation and with it.
func compareConflation(runs []*Result) *Conflation {
	c := &Conflation{}
	if len(runs) != 2 {
		return c
	}
	div := func(a, b float64) float64 {
		if a > 0 && b > 0 {
			return a / b
		}
		return 0
	}
	if l := runs[0].Latency; l != nil {
		c.P99Off = l.P99
	}
	if l := runs[1].Latency; l != nil {
		c.P99On = l.P99
	}
	if s := runs[0].Server; s != nil {
		c.CPUOff = s.CPUPerDelivery
	}
	if s := runs[1].Server; s != nil {
		c.CPUOn = s.CPUPerDelivery
	}
	c.P99Ratio, c.CPURatio = div(c.P99On, c.P99Off), div(c.CPUOn, c.CPUOff)
	return c
}

// SelectiveCPUTarget is the most the selective run's server CPU per
// delivery may be, as a multiple of the floor's in the same selective run.
// Routing should cost in proportion to an event's audience, not to the
// users connected: what a scattered audience costs the kernel (sockets
// cold in its caches, a burst per event rather than one sweep) the floor
// pays too, so it is not measured against eventhub's own broadcast.
const SelectiveCPUTarget = 1.15

// Selective compares the runs of the selective scenario: the same streams
// and users on the same hub binary, first with every event for every
// stream, then with each event for the streams of one of Assets assets,
// published Assets times as often; and, when the floor ran, the same two
// against the floor, which routes by asset as the users are allowed.
type Selective struct {
	Assets                  int     `json:"assets"`
	BroadcastCPUPerDelivery float64 `json:"broadcast_cpu_per_delivery_us"`
	SelectiveCPUPerDelivery float64 `json:"selective_cpu_per_delivery_us"`
	// CPURatio is selective / broadcast server CPU per delivery; zero if
	// either was not measured.
	CPURatio float64 `json:"cpu_per_delivery_ratio"`
	// The floor's, when it ran; zero if not.
	FloorBroadcastCPUPerDelivery float64 `json:"floor_broadcast_cpu_per_delivery_us,omitempty"`
	FloorSelectiveCPUPerDelivery float64 `json:"floor_selective_cpu_per_delivery_us,omitempty"`
	FloorCPURatio                float64 `json:"floor_cpu_per_delivery_ratio,omitempty"`
	// VsFloor is the selective run's server CPU per delivery over the
	// floor's selective run's; zero without the floor. Its target is at
	// most Target (SelectiveCPUTarget).
	VsFloor float64 `json:"selective_vs_floor"`
	Target  float64 `json:"selective_vs_floor_target"`
}

// compareSelective compares the selective scenario's runs: broadcast and
// selective against the hub, then, if they ran, against the floor.
func compareSelective(runs []*Result) *Selective {
	cpu := func(i int) float64 {
		if i < len(runs) && runs[i].Server != nil {
			return runs[i].Server.CPUPerDelivery
		}
		return 0
	}
	div := func(a, b float64) float64 {
		if a > 0 && b > 0 {
			return a / b
		}
		return 0
	}
	c := &Selective{Target: SelectiveCPUTarget}
	if len(runs) > 1 {
		c.Assets = runs[1].Assets
	}
	c.BroadcastCPUPerDelivery, c.SelectiveCPUPerDelivery = cpu(0), cpu(1)
	c.CPURatio = div(c.SelectiveCPUPerDelivery, c.BroadcastCPUPerDelivery)
	c.FloorBroadcastCPUPerDelivery, c.FloorSelectiveCPUPerDelivery = cpu(2), cpu(3)
	c.FloorCPURatio = div(c.FloorSelectiveCPUPerDelivery, c.FloorBroadcastCPUPerDelivery)
	c.VsFloor = div(c.SelectiveCPUPerDelivery, c.FloorSelectiveCPUPerDelivery)
	return c
}

// Machine describes where a report was measured.
type Machine struct {
	CPUs      int     `json:"cpus"`
	CPUModel  string  `json:"cpu_model"`
	MemoryGiB float64 `json:"memory_gib"`
	Kernel    string  `json:"kernel"`
	Go        string  `json:"go"`
	OpenFiles string  `json:"open_files_limit"`
}

// Report is everything one invocation of the harness measured.
type Report struct {
	Command     string        `json:"command"`
	Machine     Machine       `json:"machine"`
	Comparisons []*Comparison `json:"comparisons"`
}

// ThisMachine describes the machine the harness runs on.
func ThisMachine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), Go: runtime.Version()}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				f := strings.Fields(v)
				if len(f) > 0 {
					kb, _ := strconv.ParseFloat(f[0], 64)
					m.MemoryGiB = kb / (1 << 20)
				}
			}
		}
	}
	if b, err := os.ReadFile("/proc/self/limits"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "Max open files") {
				f := strings.Fields(line)
				if len(f) >= 5 {
					m.OpenFiles = f[3] + "/" + f[4]
				}
			}
		}
	}
	return m
}

// ratios compares a run against eventhub with the same run against the floor.
func ratios(t, f *Result) []Ratio {
	var out []Ratio
	add := func(name, unit string, tv, fv float64) {
		if tv == 0 && fv == 0 {
			return
		}
		r := Ratio{Figure: name, Unit: unit, Target: tv, Floor: fv}
		if fv != 0 {
			r.Ratio = tv / fv
		}
		out = append(out, r)
	}
	if t.Server != nil && f.Server != nil {
		add("RSS per stream", "KiB", t.Server.RSSPerStream/1024, f.Server.RSSPerStream/1024)
		add("server CPU per delivery", "µs", t.Server.CPUPerDelivery, f.Server.CPUPerDelivery)
		add("idle server CPU", "% of a core", 100*t.Server.IdleCPU, 100*f.Server.IdleCPU)
	}
	add("connect rate", "streams/s", t.ConnectRate, f.ConnectRate)
	if t.FanOut != nil && f.FanOut != nil {
		add("fan-out completion, median", "ms", t.FanOut.P50, f.FanOut.P50)
	}
	if t.Latency != nil && f.Latency != nil {
		add("latency p50", "ms", t.Latency.P50, f.Latency.P50)
		add("latency p99", "ms", t.Latency.P99, f.Latency.P99)
		add("latency p99.9", "ms", t.Latency.P999, f.Latency.P999)
	}
	if t.Ramp != nil && f.Ramp != nil {
		add("highest deliveries/s within p99 bound", "/s", t.Ramp.Best, f.Ramp.Best)
	}
	if t.Slow != nil && f.Slow != nil && t.Slow.Stalled != nil && f.Slow.Stalled != nil {
		add("others' p99 with slow clients stalled", "ms", t.Slow.Stalled.P99, f.Slow.Stalled.P99)
	}
	if t.Storm != nil && f.Storm != nil {
		add("storm: all back after", "ms", t.Storm.AllBackMs, f.Storm.AllBackMs)
	}
	add("events lost", "", float64(t.Lost), float64(f.Lost))
	return out
}
