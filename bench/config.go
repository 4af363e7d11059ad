package bench

import (
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"
)

// Scenarios are the names Run accepts.
var Scenarios = []string{"idle", "broadcast", "ramp", "slow", "storm", "selective", "conflate"}

// SuiteScenarios are the scenarios a suite runs unless told otherwise:
// all but conflate, whose progress-shaped events take longer at the
// suite's rate of one event a second than the suite can spare.
var SuiteScenarios = []string{"idle", "broadcast", "ramp", "slow", "storm", "selective"}

// DefaultPubBody is a growth JobEvent on the asset {asset}, carrying the
// send time and sequence number in its data. The publisher's {asset} is
// BroadcastAsset, which an admin and every bench user may see, unless
// Config.Assets spreads the events over assets.
const DefaultPubBody = `{"type":"growth","jobId":"bench-{seq}","status":"completed","timestamp":"2026-01-01T00:00:00Z","data":{"assetId":"{asset}","ts":{ts},"seq":{seq},"pad":"{pad}"}}`

// BroadcastAsset is the {asset} of every event when Config.Assets is zero:
// every bench user may see it.
const BroadcastAsset = "a1"

// SelectiveAssets is how many assets the selective scenario spreads the
// users and events over when Config.Assets is zero.
const SelectiveAssets = 200

// DefaultFillerBody is a probability JobEvent: streams that asked for
// types=growth do not receive it.
const DefaultFillerBody = `{"type":"probability","jobId":"filler-{seq}","status":"completed","timestamp":"2026-01-01T00:00:00Z","data":{"scenarioId":"s1","pad":"{pad}"}}`

// DefaultProgressBody is a job's progress, a started event with
// data.progress, as the slow scenario publishes it with ProgressJobs: the
// jobs are bench-job-0, bench-job-1, …, on the asset {asset}, carrying the
// send time and sequence number like DefaultPubBody.
const DefaultProgressBody = `{"type":"growth","jobId":"bench-job-{job}","status":"started","timestamp":"2026-01-01T00:00:00Z","data":{"assetId":"{asset}","progress":{progress},"ts":{ts},"seq":{seq},"pad":"{pad}"}}`

// DefaultDoneBody is a job's end, its completed event, which a stream
// never conflates (data.progress is only for started events).
const DefaultDoneBody = `{"type":"growth","jobId":"bench-job-{job}","status":"completed","timestamp":"2026-01-01T00:00:00Z","data":{"assetId":"{asset}","ts":{ts},"seq":{seq},"pad":"{pad}"}}`

// DefaultFillerProgressBody is the filler of the slow scenario with
// ProgressJobs: the progress of FillerJobs probability jobs, so that it
// conflates as the events do, and streams that asked for types=growth
// do not receive it.
const DefaultFillerProgressBody = `{"type":"probability","jobId":"filler-{job}","status":"started","timestamp":"2026-01-01T00:00:00Z","data":{"scenarioId":"s1","progress":{progress},"pad":"{pad}"}}`

// FillerJobs is how many jobs the progress-shaped filler reports on.
const FillerJobs = 4

// DefaultProgressJobs is the conflate scenario's ProgressJobs when none is
// set.
const DefaultProgressJobs = 50

// Config is one scenario run. Every zero value means the default in its
// comment, which aims at a local eventhub with development auth.
type Config struct {
	Scenario string // one of Scenarios; zero: broadcast

	SubURL string // zero: http://127.0.0.1:8080/api/events
	// SubHeaders are added to each stream request; zero: none, each stream
	// sending its own user's token (with OneAdmin: "Authorization: Bearer
	// dev:bench").
	SubHeaders []string
	PubURL     string   // zero: /api/events on the stream URL's host
	PubHeaders []string // zero: "Authorization: Bearer dev-publish-key"
	PubBody    string   // zero: DefaultPubBody
	Pad        int      // length of {pad}
	MetricsURL string   // zero: /metrics on the stream URL's host
	// AllowRemote lets the URLs point off loopback.
	AllowRemote bool

	Streams  int           // zero: 1,000 (with Users: Users × Tabs)
	Rate     float64       // events/s; zero: 1 (ramp: the first step's rate, zero: 20,000 deliveries/s; selective: the broadcast's, see Assets)
	Duration time.Duration // zero: 20 s (ramp: the bound on all its steps, zero: 90 s)

	// Users is how many users the streams belong to, bench-u0, bench-u1,
	// …, each with its own token and its own permissions in the file the
	// harness writes for {permissions} (userPermissions); zero: one user per
	// Tabs streams. Stream i is user (i / Tabs) mod Users'. Each user may
	// see its own asset and BroadcastAsset, so that every stream receives
	// every event. The floor has no auth: it ignores users.
	Users int
	Tabs  int // streams each user opens in a row; zero: 1
	// OneAdmin puts every stream on one admin user instead, bench, whose
	// token is SubHeaders' (the command's --users 0).
	OneAdmin bool
	// Assets, when set, makes the events selective: user u may see only
	// asset a<u mod Assets> (not BroadcastAsset), and the publisher puts
	// each event on one of a0 … a<Assets-1> at random ({asset} in
	// PubBody), so it reaches the streams of about one user in Assets.
	// Each event's expected deliveries are the streams of its asset: loss
	// and fan-out completion are counted against those (CPU per delivery
	// divides by the deliveries made). It needs users (not OneAdmin), at
	// least as many as assets. The floor routes the events so too (see
	// Floor.Assets). Zero: every user may see BroadcastAsset too, and every
	// event is on it.
	//
	// The selective scenario runs a broadcast with Assets zero, then the
	// same with Assets (zero: SelectiveAssets, or one per user when there
	// are fewer users) at Rate × Assets events/s, so that both offer about
	// the same deliveries a second, each with a hub of its own started from
	// HubBinary, and with CompareFloor the same two against the floor; its
	// Comparison.Selective compares them.
	Assets int

	// HubBinary, when set, is started for the run with HubArgs (zero:
	// DefaultHubArgs) and stopped after it; its RSS and CPU are measured.
	HubBinary string
	HubArgs   []string
	// Hubs, when more than 1, starts that many HubBinary processes on the
	// stream URL's address with --reuse-port, the first with NATS JetStream
	// embedded and the others joined to it, each with its own admin address
	// (clusterArgs); they are measured together and one by one. Negative
	// means ceil(Streams / StreamsPerHub). Zero and 1 mean one hub, as
	// above. HubArgs' zero value is then DefaultClusterHubArgs.
	Hubs int
	// NATSReplicas, when more than 1, makes the first NATSReplicas hubs of
	// a cluster each run a NATS JetStream node embedded (a store and ports
	// of its own), the nodes routed to each other as one NATS cluster, and
	// every hub keep the log and the job queue with that many replicas; the
	// other hubs join through all the nodes (clusterArgs). 1 to
	// MaxNATSReplicas, and at most Hubs; zero means 1, one node in the
	// first hub as above.
	NATSReplicas int
	// HubPID is an already running server to measure, when HubBinary is not
	// set.
	HubPID int
	// Floor runs against the floor server (started by the harness) instead.
	Floor bool
	// CompareFloor runs the same scenario against the floor afterwards and
	// reports the ratios.
	CompareFloor bool
	// Self is the command that runs this program, used to start the floor
	// ("floor") and worker processes ("worker"); zero: os.Executable().
	Self []string
	// WorkDir holds the hub's log and permissions; zero: a temp dir.
	WorkDir string

	PerProcess      int // streams per process; zero: 15,000
	PerAddr         int // streams per source address 127.0.X.Y; zero: 10,000
	DialConcurrency int // connections opened at once; zero: 128
	// Epoll reads each harness process's streams from one epoll loop
	// instead of a goroutine each (Linux only; poolSpec.Epoll).
	Epoll      bool
	ReadBuffer int           // bytes per stream reader; zero: 1 KiB
	Settle     time.Duration // wait after connecting before RSS is read; zero: 2 s
	Drain      time.Duration // wait for deliveries after the last publish; zero: 5 s

	RampMaxP99 time.Duration // zero: 250 ms
	RampStep   time.Duration // zero: 5 s
	RampFactor float64       // zero: 1.4

	SlowFraction float64 // zero: 0.01
	// SlowReaders, when set, is how many streams are slow, spread evenly
	// over them, instead of SlowFraction.
	SlowReaders int
	SlowRcvBuf  int // zero: 4096 bytes
	// Stall, when set, is how long the slow scenario's slow streams stop
	// reading before they read again: the others publish (Duration −
	// Stall) / 2 with everyone reading, then Stall with the slow ones
	// stalled, then the rest with everyone reading, and the slow streams'
	// catch-up is measured (Slow). Zero: they stall halfway and never read
	// again, or with ProgressJobs for a third of Duration.
	Stall time.Duration
	// Conflate makes every stream ask for conflation (conflate=1 in its
	// query): among the frames not yet written, the server keeps each
	// job's latest progress. The conflate scenario runs the slow scenario
	// without it, then with it, each against a hub of its own, and
	// compares the two (Comparison.Conflation).
	Conflate bool
	// ProgressJobs, when set, makes the slow scenario's events the
	// progress of that many jobs: rounds of one started event a job with
	// data.progress growing (PubBody, zero: DefaultProgressBody, with
	// {job} and {progress}) at Rate, and at the end each job's completed
	// event (DoneBody, zero: DefaultDoneBody), also at Rate. Its filler
	// (FillerBody, zero: DefaultFillerProgressBody) is then progress too,
	// of FillerJobs jobs, and runs only while the slow streams are
	// stalled. The conflate scenario's zero is DefaultProgressJobs.
	ProgressJobs int
	DoneBody     string
	// FillerRate, when set, makes the slow scenario fill the stalled
	// clients' buffers quickly without loading the others: while they are
	// stalled, FillerBody (zero: DefaultFillerBody) is published FillerRate
	// times a second with FillerPad bytes of {pad}; the slow streams use the
	// stream URL as is, the others add OthersQuery (zero: "types=growth") so
	// that the filler does not reach them. A server that cannot filter (the
	// floor) cannot run this; Run then skips the floor comparison. With a
	// Stall the filler runs only during the stall.
	FillerRate  float64
	FillerBody  string
	FillerPad   int
	OthersQuery string

	// Progress, when set, receives a live progress line during long phases,
	// redrawn in place with \r; with ProgressLines, one line every 5 s
	// instead (for a log or a pipe).
	Progress      io.Writer
	ProgressLines bool
}

func (c *Config) defaults() error {
	if c.Scenario == "" {
		c.Scenario = "broadcast"
	}
	if !slices.Contains(Scenarios, c.Scenario) {
		return fmt.Errorf("%w: unknown scenario %q (want one of %s)", ErrConfig, c.Scenario, strings.Join(Scenarios, ", "))
	}
	if c.SubURL == "" {
		c.SubURL = "http://127.0.0.1:8080/api/events"
	}
	if c.Tabs <= 0 {
		c.Tabs = 1
	}
	switch {
	case c.Users < 0:
		return fmt.Errorf("%w: %d users (want 0, one per Tabs streams, or more)", ErrConfig, c.Users)
	case c.OneAdmin && c.Users > 0:
		return fmt.Errorf("%w: %d users and one admin user for every stream: choose one", ErrConfig, c.Users)
	}
	if c.Users > 0 && c.Streams <= 0 {
		c.Streams = c.Users * c.Tabs
	}
	if c.Streams <= 0 {
		c.Streams = 1000
	}
	if c.SubHeaders == nil {
		c.SubHeaders = []string{}
		if c.OneAdmin {
			c.SubHeaders = []string{"Authorization: Bearer dev:bench"}
		}
	}
	if !c.OneAdmin {
		for _, h := range c.SubHeaders {
			if name, _, _ := strings.Cut(h, ":"); strings.EqualFold(strings.TrimSpace(name), "Authorization") {
				return fmt.Errorf("%w: each stream carries its own user's token: drop the Authorization stream header, or put every stream on one admin user (OneAdmin, --users 0)", ErrConfig)
			}
		}
	}
	if c.PubURL == "" {
		c.PubURL = withPath(c.SubURL, "/api/events")
	}
	if c.PubHeaders == nil {
		c.PubHeaders = []string{"Authorization: Bearer dev-publish-key"}
	}
	if c.Scenario == "conflate" && c.ProgressJobs == 0 {
		c.ProgressJobs = DefaultProgressJobs
	}
	if err := c.checkProgress(); err != nil {
		return err
	}
	if c.PubBody == "" {
		c.PubBody = DefaultPubBody
		if c.ProgressJobs > 0 {
			c.PubBody = DefaultProgressBody
		}
	}
	if c.DoneBody == "" {
		c.DoneBody = DefaultDoneBody
	}
	if c.MetricsURL == "" {
		c.MetricsURL = withPath(c.SubURL, "/metrics")
	}
	if c.Scenario == "selective" && c.Assets == 0 {
		c.Assets = min(SelectiveAssets, max(c.userCount(), 1))
	}
	if err := c.checkAssets(); err != nil {
		return err
	}
	if c.Rate <= 0 {
		c.Rate = 1
		if c.Scenario == "ramp" {
			// The first step offers ~20,000 deliveries/s.
			c.Rate = max(0.1, 20000/float64(c.Streams))
		}
	}
	if c.Duration <= 0 {
		c.Duration = 20 * time.Second
		if c.Scenario == "ramp" {
			c.Duration = 90 * time.Second
		}
	}
	if c.Hubs < 0 {
		c.Hubs = hubsFor(c.Streams)
	}
	if c.NATSReplicas == 0 {
		c.NATSReplicas = 1
	}
	switch {
	case c.NATSReplicas < 1 || c.NATSReplicas > MaxNATSReplicas:
		return fmt.Errorf("%w: %d NATS replicas: JetStream keeps 1 to %d", ErrConfig, c.NATSReplicas, MaxNATSReplicas)
	case c.NATSReplicas > max(c.Hubs, 1):
		return fmt.Errorf("%w: %d NATS replicas need at least as many hubs (--hubs %d): each replica is a NATS node in a hub of its own", ErrConfig, c.NATSReplicas, c.Hubs)
	}
	if c.Hubs > 1 {
		if c.HubBinary == "" {
			return fmt.Errorf("%w: %d hubs need a hub binary to start", ErrConfig, c.Hubs)
		}
		if c.Floor || c.CompareFloor {
			return fmt.Errorf("%w: the floor is one process: it cannot be compared with %d hubs", ErrConfig, c.Hubs)
		}
	}
	if c.HubArgs == nil {
		c.HubArgs = DefaultHubArgs
		if c.Hubs > 1 {
			c.HubArgs = DefaultClusterHubArgs
		}
	}
	if c.PerProcess <= 0 {
		c.PerProcess = 15000
	}
	if c.PerAddr <= 0 {
		c.PerAddr = 10000
	}
	if c.Settle <= 0 {
		c.Settle = 2 * time.Second
	}
	if c.Drain <= 0 {
		c.Drain = 5 * time.Second
	}
	if c.RampMaxP99 <= 0 {
		c.RampMaxP99 = 250 * time.Millisecond
	}
	if c.RampStep <= 0 {
		c.RampStep = 5 * time.Second
	}
	if c.RampFactor <= 1 {
		c.RampFactor = 1.4
	}
	if c.SlowFraction <= 0 {
		c.SlowFraction = 0.01
	}
	if c.SlowReaders > c.Streams {
		return fmt.Errorf("%w: %d slow readers of %d streams", ErrConfig, c.SlowReaders, c.Streams)
	}
	if c.ProgressJobs > 0 && c.Stall == 0 {
		c.Stall = c.Duration / 3
	}
	if c.Stall >= c.Duration && (c.Scenario == "slow" || c.Scenario == "conflate") {
		return fmt.Errorf("%w: a stall of %v in %v of publishing leaves no time to read again", ErrConfig, c.Stall, c.Duration)
	}
	if c.SlowRcvBuf <= 0 {
		c.SlowRcvBuf = 4096
	}
	if c.FillerBody == "" {
		c.FillerBody = DefaultFillerBody
		if c.ProgressJobs > 0 {
			c.FillerBody = DefaultFillerProgressBody
		}
	}
	if c.OthersQuery == "" {
		c.OthersQuery = "types=growth"
	}
	if c.Self == nil {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("%w: finding this program for workers: %w", ErrConfig, err)
		}
		c.Self = []string{exe}
	}
	if !c.AllowRemote {
		for _, u := range []string{c.SubURL, c.PubURL, c.MetricsURL} {
			if err := checkLoopback(u); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkProgress checks the slow scenario's own settings: the slow readers,
// the stall and the progress, and that the templates of the progress
// carry {job}.
func (c *Config) checkProgress() error {
	slow := c.Scenario == "slow" || c.Scenario == "conflate"
	switch {
	case c.SlowReaders < 0:
		return fmt.Errorf("%w: %d slow readers", ErrConfig, c.SlowReaders)
	case c.Stall < 0:
		return fmt.Errorf("%w: a stall of %v", ErrConfig, c.Stall)
	case c.ProgressJobs < 0:
		return fmt.Errorf("%w: %d progress jobs", ErrConfig, c.ProgressJobs)
	case c.ProgressJobs > 0 && !slow:
		return fmt.Errorf("%w: progress jobs are for the slow and conflate scenarios, not %s", ErrConfig, c.Scenario)
	case c.ProgressJobs == 0:
		return nil
	}
	for _, b := range []struct{ name, body string }{{"publish body", c.PubBody}, {"done body", c.DoneBody}} {
		if b.body == "" {
			continue // the default
		}
		t, err := ParseTemplate(b.body, c.Pad)
		if err != nil {
			return err
		}
		if !t.HasJob() {
			return fmt.Errorf("%w: with %d progress jobs the %s needs {job}", ErrConfig, c.ProgressJobs, b.name)
		}
	}
	return nil
}

// isSlowStream reports whether the stream of global index i is one of the
// slow scenario's slow streams (poolSpec.isSlow).
func (c *Config) isSlowStream(i int) bool {
	if c.Scenario != "slow" {
		return false
	}
	if c.SlowReaders > 0 {
		return isSlowOf(i, c.SlowReaders, c.Streams)
	}
	return isSlow(i, c.SlowFraction)
}

// checkAssets checks that Assets can be honoured.
func (c *Config) checkAssets() error {
	switch {
	case c.Assets < 0:
		return fmt.Errorf("%w: %d assets", ErrConfig, c.Assets)
	case c.Assets == 0:
		return nil
	case c.OneAdmin:
		return fmt.Errorf("%w: %d assets need users: the admin sees every asset", ErrConfig, c.Assets)
	case c.Assets > c.userCount():
		return fmt.Errorf("%w: %d assets for %d users: some events would be for no one", ErrConfig, c.Assets, c.userCount())
	}
	if c.Scenario == "idle" {
		return nil
	}
	t, err := ParseTemplate(c.PubBody, c.Pad)
	if err != nil {
		return err
	}
	if !t.HasAsset() {
		return fmt.Errorf("%w: with %d assets the publish body needs {asset}", ErrConfig, c.Assets)
	}
	return nil
}

// userCount is the number of distinct users the streams are spread over;
// zero for the one admin user of every stream. It needs defaults' Streams
// and Tabs.
func (c *Config) userCount() int {
	switch {
	case c.OneAdmin:
		return 0
	case c.Users == 0:
		return (c.Streams + c.Tabs - 1) / c.Tabs
	}
	return c.Users
}

// withPath returns raw with its path and query replaced by path.
func withPath(raw, path string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	u.Path, u.RawQuery = path, ""
	return u.String()
}

// withQuery returns raw with query added to its query string.
func withQuery(raw, query string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	if u.RawQuery != "" {
		u.RawQuery += "&"
	}
	u.RawQuery += query
	return u.String()
}
