// Command eventhub-bench is eventhub's load harness: it holds many SSE
// streams over real TCP against eventhub (or any SSE server), publishes
// timestamped events and reports latency, fan-out completion, throughput and
// the server's memory and CPU, side by side with a lean floor server.
//
//	eventhub-bench idle|broadcast|ramp|slow|storm|selective|conflate [flags]   one scenario
//	eventhub-bench suite [flags]                                      several scenarios
//	eventhub-bench floor --listen ADDR                                the floor server
//
// Run "eventhub-bench help" for the flags.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/finexbot/eventhub/bench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "eventhub-bench:", err)
		}
		os.Exit(1)
	}
}

const usage = `usage:
  eventhub-bench idle|broadcast|ramp|slow|storm|selective|conflate [flags]   run one scenario
  eventhub-bench suite [--scenarios a,b,…] [flags]                  run several, one report
  eventhub-bench floor [--listen ADDR]                              serve the floor SSE server

Scenarios (each bounded in time; it ends by itself):
  idle       hold N streams for D: server RSS per stream, idle CPU, connect rate
  broadcast  N streams, R events/s for D: latency percentiles, fan-out completion,
             deliveries/s, events lost, server CPU per delivery
  ramp       raise R step by step until p99 passes --ramp-p99: highest deliveries/s
  slow       a fraction of the clients stop reading halfway: the others' latency
             before and after, overflow and slow closes from /metrics; with
             --stall they read again after it (catch-up time), with
             --progress-jobs J the events are the progress of J jobs, then each
             job's completed
  conflate   slow with the progress of --progress-jobs jobs (default 50) and a
             --stall (default a third of --duration), without conflation, then
             with every stream asking for it (conflate=1), each on a hub of the
             same binary: slow clients kept or closed, their catch-up, and the
             others' p99 and server CPU per delivery with / without
  storm      every client drops and reconnects at once with Last-Event-ID a third
             of the way in: time until all are back, events lost
  selective  broadcast, then each event only for the users of one of --assets
             assets (default 200) at R × assets events/s, on a hub of the same
             binary: server CPU per delivery selective / broadcast (target ≤ 1.15)

With --hubs H (and --hub-binary) any scenario runs against a cluster: H hubs on
one address (--reuse-port) sharing NATS JetStream embedded in the first, e.g.
  eventhub-bench broadcast --hub-binary bin/eventhub --hubs 7 --streams 100000 --duration 60s
--nats-replicas N makes the first N hubs a NATS cluster that keeps the log with N
replicas (JetStream acknowledges a publish once a majority has stored it).

Run "eventhub-bench broadcast -h" for the flags.
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return flag.ErrHelp
	}
	switch cmd := args[0]; cmd {
	case "floor":
		return runFloor(ctx, args[1:], stdout, stderr)
	case "worker":
		return bench.ServeWorker(os.Stdin, os.Stdout)
	case "suite":
		return runScenarios(ctx, cmd, args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		for _, s := range bench.Scenarios {
			if s == cmd {
				return runScenarios(ctx, cmd, args[1:], stdout, stderr)
			}
		}
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", cmd)
	}
}

// headers is a repeatable "Name: value" flag. Set once, it replaces the
// default; an empty value adds nothing (so --sub-header ” sends none).
type headers struct {
	set    bool
	values []string
}

func (h *headers) String() string { return strings.Join(h.values, ", ") }
func (h *headers) Set(v string) error {
	if !h.set {
		h.set, h.values = true, []string{}
	}
	if v == "" {
		return nil
	}
	if !strings.Contains(v, ":") {
		return fmt.Errorf("want \"Name: value\", got %q", v)
	}
	h.values = append(h.values, v)
	return nil
}

// list returns the values, or nil (the default) if the flag was not set.
func (h *headers) list() []string {
	if !h.set {
		return nil
	}
	return h.values
}

// options are a scenario command's flags.
type options struct {
	cfg          bench.Config
	scenarios    []string // suite: in order; else the command's one
	jsonOut      string
	htmlOut      string
	quiet        bool
	idleDuration time.Duration
	rampDuration time.Duration
	rampStreams  int
	cpuProfile   string
	set          map[string]bool // the flags given
}

// parseFlags reads a scenario command's flags (cmd is the scenario, or
// suite) into a Config and the command's own options.
func parseFlags(cmd string, args []string, stderr io.Writer) (*options, error) {
	var (
		o          options
		cfg        = &o.cfg
		subH, pubH headers
		hubArgs    string
		users      int
		scenarios  string
	)
	fs := flag.NewFlagSet("eventhub-bench "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.SubURL, "sub-url", "http://127.0.0.1:8080/api/events", "stream URL (GET)")
	fs.Var(&subH, "sub-header", "header for each stream request, \"Name: value\", repeatable (default with --users 0 \"Authorization: Bearer dev:bench\"; else none, each stream sends its user's token)")
	fs.StringVar(&cfg.PubURL, "pub-url", "", "publish URL (POST); empty means /api/events on the stream URL's host")
	fs.Var(&pubH, "pub-header", "header for each publish request, repeatable (default \"Authorization: Bearer dev-publish-key\")")
	fs.StringVar(&cfg.PubBody, "pub-body", bench.DefaultPubBody, "publish body template: {ts} send time in unix ns, {seq} sequence number, {asset} the event's asset, {job} its job's number (with --progress-jobs; else the seq), {progress} the job's progress, {pad} --pad bytes of x (with --progress-jobs the default is the progress body, a started event of job bench-job-{job})")
	fs.IntVar(&cfg.Pad, "pad", 0, "length of {pad} in the publish body")
	fs.StringVar(&cfg.MetricsURL, "metrics-url", "", "Prometheus metrics of the server (slow scenario); empty means /metrics on the stream URL's host")
	fs.BoolVar(&cfg.AllowRemote, "allow-remote", false, "allow URLs that are not loopback addresses")
	fs.IntVar(&cfg.Streams, "streams", 1000, "streams to hold (with --users N > 0 and no --streams: N × --tabs)")
	fs.IntVar(&users, "users", -1, "users the streams belong to, bench-u0, bench-u1, …, each with its own token and permissions: -1 one per --tabs streams, N > 0 N users, 0 every stream on one admin user, bench")
	fs.IntVar(&cfg.Tabs, "tabs", 1, "streams each user opens")
	fs.IntVar(&cfg.Assets, "assets", 0, "selective events: user i may see only asset a<i mod K>, each event is on one of the K at random ({asset}), so ~1/K of the streams get it (the floor routes them so too); 0: every event for every stream (selective scenario: 0 means 200)")
	fs.Float64Var(&cfg.Rate, "rate", 0, "events per second (ramp: the first step's rate; selective: the broadcast's, then × --assets); 0 means 1 (ramp: 20,000 deliveries/s)")
	fs.DurationVar(&cfg.Duration, "duration", 20*time.Second, "how long to hold or publish")
	fs.DurationVar(&o.idleDuration, "idle-duration", 35*time.Second, "suite: duration of the idle scenario (longer than the heartbeat)")
	fs.DurationVar(&o.rampDuration, "ramp-duration", 90*time.Second, "ramp: bound on the ramp scenario (its steps, a repeat of a step over the bound, then up to two steps between the last rate that held and the first that did not)")
	fs.IntVar(&o.rampStreams, "ramp-streams", 10000, "suite: streams of the ramp scenario (its target is set at 10,000); 0 means --streams")
	fs.StringVar(&cfg.HubBinary, "hub-binary", "", "start this server for each run and measure it (e.g. bin/eventhub)")
	fs.StringVar(&hubArgs, "hub-args", strings.Join(bench.DefaultHubArgs, " "), "arguments for --hub-binary; {listen} is the stream URL's host:port, {permissions} the permissions file the harness writes (the users, and bench as an admin); with --hubs > 1 the default adds --max-streams 19000, and the harness adds --reuse-port, --admin-listen and the NATS flags")
	fs.IntVar(&cfg.Hubs, "hubs", 1, "with --hub-binary: hub processes sharing the stream URL's address (--reuse-port), the first with NATS JetStream embedded (see --nats-replicas), the others joined to it; -1 means one per 15,000 streams")
	fs.IntVar(&cfg.NATSReplicas, "nats-replicas", 1, "with --hubs: NATS nodes, 1 to 5 and at most --hubs; more than 1 runs one embedded in each of the first N hubs, routed to each other as one NATS cluster, keeps the log and the job queue with N replicas, and joins the other hubs through all N")
	fs.IntVar(&cfg.HubPID, "hub-pid", 0, "measure the RSS and CPU of this already running server")
	fs.BoolVar(&cfg.Floor, "floor", false, "run against the floor server (started by the harness) instead")
	fs.BoolVar(&cfg.CompareFloor, "vs-floor", false, "then run the same against the floor and report the ratios")
	fs.IntVar(&cfg.PerProcess, "per-process", 15000, "streams per harness process; more streams re-execute this program as workers")
	fs.BoolVar(&cfg.Epoll, "epoll", true, "read the streams of each harness process from one epoll loop that polls every millisecond, instead of a goroutine each (Linux): a third less harness CPU per delivery, and no reader to wake for the server's write() to pay for; --epoll=false for a goroutine a stream")
	fs.IntVar(&cfg.PerAddr, "per-addr", 10000, "streams per source address 127.0.X.Y")
	fs.IntVar(&cfg.DialConcurrency, "dial-concurrency", 128, "connections opened at once")
	fs.DurationVar(&cfg.Settle, "settle", 2*time.Second, "wait after connecting, before the server's RSS is read")
	fs.DurationVar(&cfg.Drain, "drain", 5*time.Second, "longest wait for deliveries after the last publish")
	fs.DurationVar(&cfg.RampMaxP99, "ramp-p99", 250*time.Millisecond, "ramp: p99 bound of a sustainable step")
	fs.DurationVar(&cfg.RampStep, "ramp-step", 5*time.Second, "ramp: length of a step")
	fs.Float64Var(&cfg.RampFactor, "ramp-factor", 1.4, "ramp: rate multiplier between steps")
	fs.Float64Var(&cfg.SlowFraction, "slow-fraction", 0.01, "slow: fraction of the clients that stop reading")
	fs.IntVar(&cfg.SlowReaders, "slow-readers", 0, "slow: how many clients stop reading, spread evenly (instead of --slow-fraction)")
	fs.DurationVar(&cfg.Stall, "stall", 0, "slow: how long the slow clients stop reading before they read again, measuring their catch-up; 0: halfway to the end (with --progress-jobs: a third of --duration)")
	fs.BoolVar(&cfg.Conflate, "conflate", false, "every stream asks for conflation (conflate=1): the server keeps, among the frames not yet written, each job's latest progress (the conflate scenario runs without, then with)")
	fs.IntVar(&cfg.ProgressJobs, "progress-jobs", 0, "slow: the events are the progress of this many jobs, rounds of one started event a job with data.progress at --rate, then each job's completed; the filler is progress too, and runs only during the stall (conflate: 0 means 50)")
	fs.StringVar(&cfg.DoneBody, "done-body", bench.DefaultDoneBody, "slow with --progress-jobs: body template of each job's completed event")
	fs.IntVar(&cfg.SlowRcvBuf, "slow-rcvbuf", 4096, "slow: receive buffer of the slow clients, bytes")
	fs.Float64Var(&cfg.FillerRate, "filler-rate", 50, "slow: filler events/s that only the stalled clients receive, to fill their buffers (with a --stall, only during it); 0 for a server that cannot filter")
	fs.IntVar(&cfg.FillerPad, "filler-pad", 16384, "slow: length of {pad} in the filler body")
	fs.StringVar(&cfg.FillerBody, "filler-body", bench.DefaultFillerBody, "slow: filler body template (with --progress-jobs the default is the progress of 4 probability jobs)")
	fs.StringVar(&cfg.OthersQuery, "others-query", "types=growth", "slow: query the other streams add to --sub-url so that the filler misses them")
	fs.StringVar(&o.jsonOut, "json", "", "write the results as JSON to this file")
	fs.StringVar(&o.htmlOut, "report", "", "write a self-contained HTML report to this file")
	fs.BoolVar(&o.quiet, "quiet", false, "no progress line")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of this process (not of its workers) to this file")
	if cmd == "suite" {
		fs.StringVar(&scenarios, "scenarios", strings.Join(bench.SuiteScenarios, ","), "scenarios to run, in order (any of "+strings.Join(bench.Scenarios, ", ")+")")
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	o.set = map[string]bool{}
	fs.Visit(func(f *flag.Flag) { o.set[f.Name] = true })
	cfg.SubHeaders, cfg.PubHeaders = subH.list(), pubH.list()
	// Bodies not given are left to the scenario: with progress jobs, its
	// own.
	if !o.set["pub-body"] {
		cfg.PubBody = ""
	}
	if !o.set["filler-body"] {
		cfg.FillerBody = ""
	}
	switch {
	case users < -1:
		return nil, fmt.Errorf("--users %d: want -1 (one per --tabs streams), 0 (one admin user) or more", users)
	case users == 0:
		cfg.OneAdmin = true
	case users > 0:
		cfg.Users = users
		if !o.set["streams"] {
			cfg.Streams = users * max(cfg.Tabs, 1)
		}
	}
	if cfg.NATSReplicas == 0 {
		// The Config's zero means 1; on the command line it is a mistake.
		return nil, fmt.Errorf("%w: --nats-replicas 0: JetStream keeps 1 to %d replicas", bench.ErrConfig, bench.MaxNATSReplicas)
	}
	if o.set["hub-args"] {
		cfg.HubArgs = strings.Fields(hubArgs)
	}
	o.scenarios = []string{cmd}
	if cmd == "suite" {
		o.scenarios = strings.Split(scenarios, ",")
	}
	return &o, nil
}

func runScenarios(ctx context.Context, cmd string, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(cmd, args, stderr)
	if err != nil {
		return err
	}
	cfg, set := o.cfg, o.set
	if !o.quiet {
		cfg.Progress = stderr
		f, ok := stderr.(*os.File)
		st, err := os.Stderr.Stat()
		cfg.ProgressLines = !ok || f != os.Stderr || err != nil || st.Mode()&os.ModeCharDevice == 0
	}
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}

	rep := &bench.Report{Command: "eventhub-bench " + strings.Join(append([]string{cmd}, args...), " "), Machine: bench.ThisMachine()}
	var runErr error
	for _, s := range o.scenarios {
		c := cfg
		c.Scenario = strings.TrimSpace(s)
		switch c.Scenario {
		case "idle":
			if cmd == "suite" {
				c.Duration = o.idleDuration
			}
		case "ramp":
			if cmd == "suite" || !set["duration"] {
				c.Duration = o.rampDuration
			}
			if cmd == "suite" {
				c.Rate = 0 // the ramp's own first step
				if o.rampStreams > 0 {
					c.Streams = o.rampStreams
				}
			}
		}
		// A safety net: the scenario bounds itself well within this.
		runs := 1
		if c.CompareFloor {
			runs = 2
		}
		if c.Scenario == "selective" || c.Scenario == "conflate" {
			runs *= 2 // a broadcast and a selective run; without and with conflation
		}
		bound := time.Duration(runs) * (2*c.Duration + 3*time.Minute + time.Duration(c.Streams)*2*time.Millisecond)
		sctx, cancel := context.WithTimeout(ctx, bound)
		cmp, err := bench.Run(sctx, c)
		cancel()
		if cmp != nil {
			rep.Comparisons = append(rep.Comparisons, cmp)
		}
		if err != nil {
			runErr = fmt.Errorf("%s: %w", c.Scenario, err)
			break
		}
	}
	if err := bench.WriteText(stdout, rep); err != nil {
		return err
	}
	if o.jsonOut != "" {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return fmt.Errorf("encoding results: %w", err)
		}
		if err := os.WriteFile(o.jsonOut, append(b, '\n'), 0o644); err != nil {
			return fmt.Errorf("writing results: %w", err)
		}
	}
	if o.htmlOut != "" {
		f, err := os.Create(o.htmlOut)
		if err != nil {
			return fmt.Errorf("writing report: %w", err)
		}
		err = bench.WriteHTML(f, rep)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("writing report: %w", err)
		}
	}
	return runErr
}

// runFloor serves the floor until a signal. Its first line of output is
// "listening on ADDR", which the harness reads when it starts one.
func runFloor(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("eventhub-bench floor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8090", "address to listen on (loopback unless --allow-remote)")
	writeTimeout := fs.Duration("write-timeout", 10*time.Second, "bound on one write to a stream")
	allowRemote := fs.Bool("allow-remote", false, "allow a non-loopback listen address")
	assets := fs.Int("assets", 0, "selective: the stream of user bench-u<i> gets only the events whose assetId is a<i mod N> (as the harness's --assets)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *assets < 0 {
		return fmt.Errorf("--assets %d: %w", *assets, bench.ErrConfig)
	}
	if host, _, err := net.SplitHostPort(*listen); err != nil {
		return fmt.Errorf("--listen %q: %w", *listen, err)
	} else if ip := net.ParseIP(host); !*allowRemote && host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("--listen %q: %w", *listen, bench.ErrRemote)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("floor: %w", err)
	}
	fmt.Fprintf(stdout, "listening on %s\n", ln.Addr())
	f := &bench.Floor{WriteTimeout: *writeTimeout, Assets: *assets}
	return f.ServeUntil(ctx, ln)
}
