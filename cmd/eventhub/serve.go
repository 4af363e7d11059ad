package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/finexbot/eventhub/actors"
	"github.com/finexbot/eventhub/authz"
	"github.com/finexbot/eventhub/jobs"
	"github.com/finexbot/eventhub/transport"
)

// fileReserve is how many open files streams may not take when
// --max-streams is 0: of them, internalFiles are the hub's own (listeners,
// logs, NATS, outgoing connections), which no client connection takes
// when --max-conns is 0, and the rest are for requests (publishing,
// signing in, snapshots) when streams hold all they may.
const (
	fileReserve   = 100
	internalFiles = 50
)

func serve(ctx context.Context, cfg serveConfig, log *slog.Logger, stderr io.Writer) error {
	source, file, err := permissionSource(cfg)
	if err != nil {
		return err
	}
	authenticate, err := authenticator(cfg)
	if err != nil {
		return err
	}
	openFiles := raiseOpenFiles()
	maxStreams, maxConns := cfg.maxStreams, cfg.maxConns
	if maxStreams == 0 && openFiles > 0 {
		maxStreams = max(openFiles-fileReserve, 1)
	}
	if maxConns == 0 && openFiles > 0 {
		maxConns = max(openFiles-internalFiles, 2)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), buildInfo())

	be, err := openBackend(ctx, cfg, reg, log)
	if err != nil {
		return err
	}
	// After the hub and the workers have stopped (defers run last-in
	// first-out): nothing appends to the log any more.
	defer func() {
		if err := be.close(); err != nil {
			log.Error("close", "err", err)
		}
	}()

	// protoactor logs through our handler, quietly: its Info lines (dead
	// letters, system start) are noise at our scale.
	actorLog := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With("lib", "protoactor")
	system := actors.NewSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return actorLog }))
	defer system.Shutdown()

	hub, err := actors.NewHub(system, actors.Config{
		History:             cfg.history,
		HistoryBytes:        int(cfg.historyBytes),
		Jobs:                cfg.jobs,
		JobsBytes:           int(cfg.jobsBytes),
		SnapshotBytes:       int(cfg.snapshotBytes),
		Log:                 be.log,
		StreamLifetime:      cfg.streamLifetime,
		Mailbox:             cfg.mailbox,
		MailboxBytes:        int(cfg.mailboxBytes),
		BackfillBytes:       int(cfg.backfillBytes),
		MaxBackfills:        cfg.maxBackfills,
		MaxBackfillsPerUser: cfg.maxBackfillsUser,
		Heartbeat:           cfg.heartbeat,
		WriteTimeout:        cfg.writeTimeout,
		MaxStreams:          maxStreams,
		MaxStreamsPerUser:   cfg.maxStreamsPerUser,
		Permissions:         source,
		PermissionsTTL:      cfg.permissionsTTL,
		ReauthGrace:         cfg.reauthGrace,
		Logger:              log,
		Registerer:          reg,
	})
	if err != nil {
		return err
	}
	if be.durable {
		// Before the workers start and anyone can submit: only jobs of
		// the node that died are unfinished now.
		if err := endInterrupted(ctx, hub, log); err != nil {
			hub.Shutdown(context.Background())
			return err
		}
	}
	workers, err := jobs.StartWorkers(system.Root, jobs.WorkersConfig{
		Publish: hub.PublishWithKey, Logger: log, Registerer: reg,
		QueueSize: cfg.jobQueue, PerUser: noLimit(cfg.jobsPerUser), Rate: noLimit(cfg.jobRate), Burst: cfg.jobBurst,
	})
	if err != nil {
		return err
	}
	defer workers.Stop() // on an early return; idempotent
	queue, err := be.queue(ctx, workers, hub, cfg.jobQueue, cfg.jobLease, log)
	if err != nil {
		return err
	}
	defer queue.Stop() // on an early return, before workers.Stop; idempotent
	submit := queue.Submit

	// With an admin listener, /metrics is served there only.
	var publicMetrics prometheus.Gatherer = reg
	if cfg.adminListen != "" {
		publicMetrics = nil
	}
	srv, err := transport.New(transport.Config{
		Hub:           hub,
		Authenticate:  authenticate,
		PublishKey:    cfg.publishKey,
		Submit:        submit,
		Gatherer:      publicMetrics,
		Registerer:    reg,
		Logger:        log,
		MaxConns:      maxConns,
		MaxConnsPerIP: cfg.maxConnsPerIP,
		MaxSnapshots:  cfg.maxSnapshots,
		// A user's share: one answer a tab, a few tabs.
		MaxSnapshotsPerUser: max(1, cfg.maxSnapshots/4),
	})
	if err != nil {
		return err
	}
	ln, err := listen(cfg)
	if err != nil {
		return err
	}
	var admin *http.Server
	var adminLn net.Listener
	if cfg.adminListen != "" {
		adminLn, err = net.Listen("tcp", cfg.adminListen)
		if err != nil {
			ln.Close()
			return err
		}
		admin = adminServer(reg, hub)
		log.Info("eventhub admin listening", "addr", adminLn.Addr().String())
	}
	log.Info("eventhub listening", "addr", ln.Addr().String(), "auth", cfg.auth, "max_streams", maxStreams, "max_conns", maxConns, "demo", cfg.demo)

	var wg sync.WaitGroup // the goroutines below; serve waits for them before it returns
	serveErr := make(chan error, 1)
	wg.Go(func() { serveErr <- srv.Serve(ln) })
	if admin != nil {
		wg.Go(func() { admin.Serve(adminLn) }) // returns when admin is closed, below
	}
	demoCtx, stopDemo := context.WithCancel(ctx)
	if cfg.demo {
		wg.Go(func() { runDemo(demoCtx, submit) })
	}
	if file != nil {
		// A changed permissions file takes effect for every connected user
		// at once; a broken one is logged and the last good one stays.
		reload := func() { hub.InvalidateAll(); log.Info("permissions reloaded", "file", cfg.permissions) }
		reloadFailed := func(err error) { log.Error("permissions not reloaded", "err", err) }
		wg.Go(func() { file.Watch(demoCtx, time.Second, reload, reloadFailed) })
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		wg.Go(func() {
			defer signal.Stop(hup)
			for {
				select {
				case <-demoCtx.Done():
					return
				case <-hup:
					if changed, err := file.Reload(); err != nil {
						reloadFailed(err)
					} else if changed {
						reload()
					}
				}
			}
		})
	}

	select {
	case <-ctx.Done():
	case err = <-serveErr:
		err = fmt.Errorf("serve: %w", err)
	}
	stopDemo()
	log.Info("eventhub shutting down", "streams_drain", cfg.drain.String())
	drainCtx, cancel := context.WithTimeout(context.Background(), cfg.drain)
	defer cancel()
	var shutdown sync.WaitGroup
	shutdown.Go(func() {
		if err := srv.Shutdown(drainCtx); err != nil {
			log.Warn("http shutdown", "err", err)
		}
	})
	// Workers first: the jobs they cut short end failed (or, in a cluster,
	// go back to the queue for another node), and those events still reach
	// the streams that the hub is about to close.
	queue.Stop()
	workers.Stop()
	if err := hub.Shutdown(drainCtx); err != nil {
		log.Warn("hub shutdown", "err", err)
	}
	shutdown.Wait()
	if admin != nil {
		admin.Close()
	}
	wg.Wait()
	log.Info("eventhub stopped")
	return err
}

// maxProfile bounds the seconds of a CPU profile or trace on the admin
// server; its WriteTimeout leaves room for one.
const maxProfile = 60 * time.Second

// adminServer serves /metrics, pprof and the health checks on the admin
// listener: what operators and Prometheus need, away from the public port.
// Not /debug/pprof/cmdline: the command line may hold a key.
func adminServer(reg *prometheus.Registry, hub *actors.Hub) *http.Server {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/debug/pprof/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/debug/pprof/cmdline" { // pprof.Index would serve nothing for it; say so plainly
			http.NotFound(w, r)
			return
		}
		pprof.Index(w, r)
	})
	mux.HandleFunc("/debug/pprof/profile", boundedProfile(pprof.Profile))
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", boundedProfile(pprof.Trace))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"status":"ok"}`+"\n")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if !hub.Ready() {
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, `{"error":"shutting down"}`+"\n")
			return
		}
		io.WriteString(w, `{"status":"ready"}`+"\n")
	})
	return &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      maxProfile + 15*time.Second,
		IdleTimeout:       90 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}
}

// boundedProfile refuses a profile or trace longer than maxProfile.
func boundedProfile(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if raw := r.FormValue("seconds"); raw != "" {
			sec, err := strconv.ParseFloat(raw, 64)
			if err != nil || sec <= 0 || sec > maxProfile.Seconds() {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusBadRequest)
				fmt.Fprintf(w, `{"error":"seconds: want more than 0 and at most %d"}`+"\n", int(maxProfile.Seconds()))
				return
			}
		}
		h(w, r)
	}
}

// buildInfo is eventhub_build_info{version,go} 1.
func buildInfo() prometheus.Collector {
	version := "devel"
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		version = bi.Main.Version
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "eventhub_build_info",
		Help:        "Always 1; its labels say which eventhub and which Go built this process.",
		ConstLabels: prometheus.Labels{"version": version, "go": runtime.Version()},
	})
	g.Set(1)
	return g
}

// permissionSource builds the source --permissions names; file is set when
// it is a file, to be watched.
func permissionSource(cfg serveConfig) (source authz.Source, file *authz.FileSource, err error) {
	switch p := cfg.permissions; {
	case p == "clerk":
		source, err = authz.NewClerkSource(cfg.clerkSecretKey, cfg.clerkAPIURL, nil, 0)
	case strings.HasPrefix(p, "http://") || strings.HasPrefix(p, "https://"):
		source, err = authz.NewHTTPSource(p, nil, 0)
	default:
		file, err = authz.NewFileSource(p)
		source = file
	}
	return source, file, err
}

// authenticator is the token check --auth names.
func authenticator(cfg serveConfig) (func(string) (authz.Identity, error), error) {
	if cfg.auth == "dev" {
		return authz.DevAuthenticate, nil
	}
	var parties []string
	for _, p := range strings.Split(cfg.clerkParties, ",") {
		if p = strings.TrimSpace(p); p != "" {
			parties = append(parties, p)
		}
	}
	c, err := authz.NewClerk(authz.ClerkConfig{
		JWTKey:            cfg.clerkJWTKey,
		SecretKey:         cfg.clerkSecretKey,
		APIURL:            cfg.clerkAPIURL,
		AuthorizedParties: parties,
		Issuer:            cfg.clerkIssuer,
		Leeway:            cfg.clerkLeeway,
	})
	if err != nil {
		return nil, err
	}
	return c.Authenticate, nil
}

// noLimit turns a flag's 0, no limit, into the config's: negative.
func noLimit[N int | float64](v N) N {
	if v == 0 {
		return -1
	}
	return v
}

// runDemo submits a few demo jobs every second until ctx is done.
func runDemo(ctx context.Context, submit func(context.Context, jobs.Job) error) {
	rng := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	assets, scenarios := authz.DemoScopes()
	users := []string{"alice", "bob", "carol"}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			for range 1 + rng.IntN(3) {
				user := users[rng.IntN(len(users))]
				job := jobs.DemoJob(rng, user, assets, scenarios)
				job = jobs.WithDelay(job, time.Duration(200+rng.IntN(1800))*time.Millisecond) // visibly running
				job.ID = jobs.NewJobID()
				submit(ctx, job) // a demo job lost in an outage is no loss
			}
		}
	}
}
