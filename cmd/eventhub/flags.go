package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	neturl "net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/finexbot/eventhub/internal/disklog"
	"github.com/finexbot/eventhub/internal/natsjs"
)

// serveConfig is what "eventhub serve" was asked to do.
type serveConfig struct {
	listen            string
	adminListen       string
	auth              string
	permissions       string
	publishKey        string
	publishKeyFile    string
	heartbeat         time.Duration
	history           int
	historyBytes      byteSize
	historyFile       string
	dataDir           string
	sync              string
	dataMaxEvents     int
	dataMaxBytes      byteSize
	dataMaxAge        time.Duration
	jobs              int
	jobsBytes         byteSize
	snapshotBytes     byteSize
	maxSnapshots      int
	streamLifetime    time.Duration
	mailbox           int
	mailboxBytes      byteSize
	backfillBytes     byteSize
	maxBackfills      int
	maxBackfillsUser  int
	maxStreams        int
	maxStreamsPerUser int
	maxConns          int
	maxConnsPerIP     int
	demo              bool
	jobQueue          int
	jobsPerUser       int
	jobRate           float64
	jobBurst          int
	writeTimeout      time.Duration
	drain             time.Duration
	logLevel          slog.Level

	permissionsTTL time.Duration
	reauthGrace    time.Duration
	clerkParties   string
	clerkLeeway    time.Duration
	clerkIssuer    string
	clerkAPIURL    string
	nats           string
	natsEmbed      string
	natsStore      string
	natsStream     string
	natsMaxEvents  int64
	natsMaxAge     time.Duration
	reusePort      bool
	natsUser       string
	natsPassFile   string
	natsTokenFile  string
	natsAuth       natsjs.Credentials // from the files or EVENTHUB_NATS_PASSWORD / EVENTHUB_NATS_TOKEN

	natsReplicas        int
	natsStartTimeout    time.Duration
	jobLease            time.Duration
	natsCluster         string
	natsRoutes          string
	natsRouteURLs       []string // natsRoutes, split and checked
	natsClusterName     string
	natsName            string
	natsClusterUser     string
	natsClusterPassFile string
	natsClusterAuth     natsjs.Credentials // --nats-cluster-user, the password from the file or EVENTHUB_NATS_CLUSTER_PASSWORD

	clerkJWTKey    string // CLERK_JWT_KEY
	clerkSecretKey string // CLERK_SECRET_KEY

	set map[string]bool // the flags set, on the command line or by their variable
}

func parseServeFlags(args []string, getenv func(string) string, stderr io.Writer) (serveConfig, error) {
	var c serveConfig
	fs := flag.NewFlagSet("eventhub serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.listen, "listen", "127.0.0.1:8080", "address to listen on")
	fs.StringVar(&c.adminListen, "admin-listen", "", "a second, private address for /metrics, /debug/pprof/, /healthz and /readyz; when set, /metrics leaves --listen; empty means none (and no pprof)")
	fs.StringVar(&c.auth, "auth", "dev", "authentication: dev (Bearer dev:<user>, loopback only) or clerk")
	fs.StringVar(&c.permissions, "permissions", "", "where permissions come from: a JSON file (reloaded on change and SIGHUP), an http(s):// URL of your backend (GET <url>?userId=<id>), or clerk (public_metadata.eventhub); empty means the built-in demo file")
	fs.DurationVar(&c.permissionsTTL, "permissions-ttl", 60*time.Second, "how long a user's permissions are cached before a background refresh")
	fs.DurationVar(&c.reauthGrace, "reauth-grace", 10*time.Minute, "with clerk auth, a stream ends this long (±10%) after its token expires")
	fs.StringVar(&c.clerkParties, "clerk-authorized-parties", "", "comma-separated origins whose session tokens are accepted (azp); empty accepts any")
	fs.DurationVar(&c.clerkLeeway, "clerk-leeway", 5*time.Second, "clock skew allowed on token exp, nbf and iat")
	fs.StringVar(&c.clerkIssuer, "clerk-issuer", "", "the only accepted token issuer; empty means Clerk's own rule")
	fs.StringVar(&c.clerkAPIURL, "clerk-api-url", "", "Clerk Backend API base URL; empty means Clerk's")
	fs.StringVar(&c.publishKey, "publish-key", "", "key for POST /api/events (dev default: dev-publish-key; required with clerk); prefer --publish-key-file or EVENTHUB_PUBLISH_KEY, which no process listing shows")
	fs.StringVar(&c.publishKeyFile, "publish-key-file", "", "read the publish key from this file (trailing newline dropped)")
	fs.DurationVar(&c.heartbeat, "heartbeat", 30*time.Second, "interval of :ping comments on quiet streams")
	fs.IntVar(&c.history, "history", 10000, "events kept for resume with Last-Event-ID")
	c.historyBytes = 64 << 20
	fs.Var(&c.historyBytes, "history-bytes", "the `size` those events may take in memory (in the hub's history, and again in a single node's log); the oldest go first")
	fs.IntVar(&c.jobs, "jobs", 10000, "jobs whose latest status the job table keeps for GET /api/jobs (and, with --data-dir, keeps on disk when their events are dropped); the job updated longest ago goes first")
	c.jobsBytes = 32 << 20
	fs.Var(&c.jobsBytes, "jobs-bytes", "the `size` the job table for GET /api/jobs may take in memory; the job updated longest ago goes first")
	c.snapshotBytes = 4 << 20
	fs.Var(&c.snapshotBytes, "snapshot-bytes", "the largest `size` of one GET /api/jobs answer; the jobs past it are left out and the answer says \"truncated\":true")
	fs.IntVar(&c.maxSnapshots, "max-snapshots", 16, "GET /api/jobs answers being written at once (a quarter of them for one user); past it, 429")
	fs.StringVar(&c.historyFile, "history-file", "", "retired: refused; --data-dir DIR keeps the event log on disk and survives a crash too")
	fs.StringVar(&c.dataDir, "data-dir", "", "keep the event log and the job table on disk in DIR (a single node): an event is acknowledged once it is durable by --sync, and a restart, after a crash too, recovers the log, the id counter and the job table; empty means in memory")
	fs.StringVar(&c.sync, "sync", "batch", "with --data-dir, when a publish is acknowledged: batch (once written; fsynced within 2ms, for many publishes at once: a crash of the process loses nothing acknowledged, a crash of the machine at most the last 2ms) or always (once fsynced: nothing acknowledged is lost by any crash; each publish waits for the disk)")
	fs.IntVar(&c.dataMaxEvents, "data-max-events", 1_000_000, "with --data-dir, the events the log keeps for resumes; older ones are dropped a segment at a time")
	c.dataMaxBytes = 1 << 30
	fs.Var(&c.dataMaxBytes, "data-max-bytes", "with --data-dir, the `size` the log's segments may take on disk; the oldest segment goes first")
	fs.DurationVar(&c.dataMaxAge, "data-max-age", 24*time.Hour, "with --data-dir, how long the log keeps an event at least (at most a quarter longer); a segment goes once its newest event is older")
	fs.DurationVar(&c.streamLifetime, "stream-lifetime", 0, "end each stream after this long (±10%) with a retry hint; 0 means unlimited")
	fs.IntVar(&c.mailbox, "mailbox", 64, "frames queued per stream before it is closed as slow")
	c.mailboxBytes = 1 << 20
	fs.Var(&c.mailboxBytes, "mailbox-bytes", "the `size` of frames queued per stream before it is closed as slow; a resume whose replay is larger gets a reset")
	c.backfillBytes = 16 << 20
	fs.Var(&c.backfillBytes, "backfill-bytes", "the largest `size` of one read of the log for a resume that history no longer covers; past it the client gets a reset")
	fs.IntVar(&c.maxBackfills, "max-backfills", 8, "reads of the log for resumes at once in this process; past it a resume gets a reset")
	fs.IntVar(&c.maxBackfillsUser, "max-backfills-per-user", 2, "reads of the log for one user's resumes at once; past it a resume gets a reset")
	fs.IntVar(&c.maxStreams, "max-streams", 0, "streams this process holds; 0 means as many as open files allow")
	fs.IntVar(&c.maxStreamsPerUser, "max-streams-per-user", 16, "streams one user may hold; 0 means no limit")
	fs.IntVar(&c.maxConns, "max-conns", 0, "client connections (streams and requests) held at once; at it a new one evicts the longest-idle request connection or gets 503; 0 means the open-file limit less 50")
	fs.IntVar(&c.maxConnsPerIP, "max-conns-per-ip", 1000, "connections (streams included) one client address may hold; past it, 429; loopback peers are not counted; 0 means no limit")
	fs.BoolVar(&c.demo, "demo", false, "keep submitting demo jobs, so a dashboard shows life at once")
	fs.IntVar(&c.jobQueue, "job-queue", 1000, "jobs of one kind waiting for a worker (in a cluster, in the work queue) before a submission gets 429")
	fs.IntVar(&c.jobsPerUser, "jobs-per-user", 50, "jobs one user may have queued or running, counted on the node they submit to; past it, 429; 0 means no limit")
	fs.Float64Var(&c.jobRate, "job-rate", 5, "jobs one user may submit a second, on the node they submit to, in bursts of --job-burst; past it, 429; 0 means no limit")
	fs.IntVar(&c.jobBurst, "job-burst", 20, "jobs one user may submit at once before --job-rate applies")
	fs.DurationVar(&c.writeTimeout, "write-timeout", 10*time.Second, "bound on one write to a stream")
	fs.DurationVar(&c.drain, "drain", 10*time.Second, "on SIGTERM, streams are closed spread over the first half of this, and cut at its end")
	fs.StringVar(&c.nats, "nats", "", "join a cluster through these NATS servers (URL[,URL…]) with JetStream; empty means a single node")
	fs.StringVar(&c.natsEmbed, "nats-embed", "", "run a NATS server with JetStream in this process on ADDR (host:port) and use it")
	fs.StringVar(&c.natsStore, "nats-store", "", "with --nats-embed, where JetStream keeps its data; empty means a directory under the system temp dir")
	fs.StringVar(&c.natsStream, "nats-stream", "EVENTHUB", "the JetStream stream that is the event log (subjects eventhub.events.<type>)")
	fs.Int64Var(&c.natsMaxEvents, "nats-max-events", 1_000_000, "events the log keeps at most")
	fs.DurationVar(&c.natsMaxAge, "nats-max-age", 24*time.Hour, "how long the log keeps an event at most")
	fs.BoolVar(&c.reusePort, "reuse-port", false, "share --listen with other hub processes (SO_REUSEPORT); needs --nats or --nats-embed")
	fs.StringVar(&c.natsUser, "nats-user", "", "NATS user name, with the password from --nats-password-file or EVENTHUB_NATS_PASSWORD, for --nats and --nats-embed")
	fs.StringVar(&c.natsPassFile, "nats-password-file", "", "read the NATS password from this file")
	fs.StringVar(&c.natsTokenFile, "nats-token-file", "", "read a NATS token from this file (or set EVENTHUB_NATS_TOKEN), for --nats and --nats-embed")
	fs.IntVar(&c.natsReplicas, "nats-replicas", 1, "NATS servers that keep the event log and the job queue, 1 to 5 (3 in a three-node cluster); more than 1 needs a NATS cluster: --nats with its servers, or --nats-cluster")
	fs.DurationVar(&c.natsStartTimeout, "nats-start-timeout", 60*time.Second, "at start, how long to wait for NATS JetStream (a cluster electing its leader, its servers joining) to take the log and the job queue before giving up")
	fs.DurationVar(&c.jobLease, "job-lease", natsjs.DefaultLease, "in a cluster, how long a job stays with a hub that has gone quiet (died, cut off from NATS) before another hub runs it again; a live hub renews it every third of this, however long the job waits or runs")
	fs.StringVar(&c.natsCluster, "nats-cluster", "", "make the --nats-embed server a node of a NATS cluster, listening for routes from the other nodes on ADDR (host:port); needs --nats-store, and route credentials beyond loopback")
	fs.StringVar(&c.natsRoutes, "nats-routes", "", "with --nats-cluster, the other nodes' route URLs (nats-route://host:port[,…]), without credentials")
	fs.StringVar(&c.natsClusterName, "nats-cluster-name", natsjs.DefaultClusterName, "with --nats-cluster, the cluster's name, the same on every node")
	fs.StringVar(&c.natsName, "nats-name", "", "the --nats-embed server's name, unique in its cluster and the same across restarts (JetStream knows its peers by name); empty means the host name and the route port, e.g. web-1-6222 (the client port without --nats-cluster)")
	fs.StringVar(&c.natsClusterUser, "nats-cluster-user", "", "the user the nodes of a --nats-cluster present to each other, with the password from --nats-cluster-password-file or EVENTHUB_NATS_CLUSTER_PASSWORD")
	fs.StringVar(&c.natsClusterPassFile, "nats-cluster-password-file", "", "read the route password of --nats-cluster-user from this file")
	fs.TextVar(&c.logLevel, "log-level", slog.LevelInfo, "log level: debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	// The environment fills in what the command line did not set.
	c.set = map[string]bool{}
	fs.Visit(func(f *flag.Flag) { c.set[f.Name] = true })
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		if c.set[f.Name] || envErr != nil {
			return
		}
		if v := getenv(envName(f.Name)); v != "" {
			if err := fs.Set(f.Name, v); err != nil {
				envErr = fmt.Errorf("%s: %w", envName(f.Name), err)
			}
			c.set[f.Name] = true
		}
	})
	if envErr != nil {
		return c, envErr
	}
	c.clerkJWTKey, c.clerkSecretKey = getenv("CLERK_JWT_KEY"), getenv("CLERK_SECRET_KEY")
	if err := c.readSecrets(getenv("EVENTHUB_NATS_PASSWORD"), getenv("EVENTHUB_NATS_TOKEN"), getenv("EVENTHUB_NATS_CLUSTER_PASSWORD")); err != nil {
		return c, err
	}
	return c, c.validate()
}

// readSecrets reads the keys given as files, and takes the NATS password
// or token, and the route password, from the environment when no file
// names it. A secret is taken from a file or the environment so that no
// process listing shows it.
func (c *serveConfig) readSecrets(natsPassword, natsToken, routePassword string) error {
	if c.publishKeyFile != "" {
		if c.publishKey != "" {
			return errors.New("--publish-key and --publish-key-file: give the key once")
		}
		key, err := readSecret("--publish-key-file", c.publishKeyFile)
		if err != nil {
			return err
		}
		c.publishKey = key
	}
	if c.natsPassFile != "" {
		p, err := readSecret("--nats-password-file", c.natsPassFile)
		if err != nil {
			return err
		}
		natsPassword = p
	}
	if c.natsTokenFile != "" {
		tok, err := readSecret("--nats-token-file", c.natsTokenFile)
		if err != nil {
			return err
		}
		natsToken = tok
	}
	switch {
	case natsToken != "" && (c.natsUser != "" || natsPassword != ""):
		return errors.New("NATS credentials: a token or a user and password, not both")
	case c.natsUser != "" && natsPassword == "":
		return errors.New("--nats-user needs a password: --nats-password-file or EVENTHUB_NATS_PASSWORD")
	case c.natsUser == "" && natsPassword != "":
		return errors.New("a NATS password needs --nats-user")
	}
	c.natsAuth = natsjs.Credentials{User: c.natsUser, Password: natsPassword, Token: natsToken}
	if c.natsClusterPassFile != "" {
		p, err := readSecret("--nats-cluster-password-file", c.natsClusterPassFile)
		if err != nil {
			return err
		}
		routePassword = p
	}
	switch {
	case c.natsClusterUser != "" && routePassword == "":
		return errors.New("--nats-cluster-user needs a password: --nats-cluster-password-file or EVENTHUB_NATS_CLUSTER_PASSWORD")
	case c.natsClusterUser == "" && routePassword != "":
		return errors.New("a NATS route password needs --nats-cluster-user")
	}
	c.natsClusterAuth = natsjs.Credentials{User: c.natsClusterUser, Password: routePassword}
	return nil
}

// readSecret reads a secret from a file: its content less the trailing
// line end and spaces, which must leave something.
func readSecret(flagName, path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", flagName, err)
	}
	secret := strings.TrimRight(string(b), " \t\r\n")
	if secret == "" {
		return "", fmt.Errorf("%s %s: the file is empty", flagName, path)
	}
	return secret, nil
}

func (c *serveConfig) validate() error {
	switch c.auth {
	case "dev":
		if c.publishKey == "" {
			c.publishKey = "dev-publish-key"
		}
		if !loopback(c.listen) {
			return fmt.Errorf("--auth dev proves nothing about who is asking: it listens on loopback only, not %q", c.listen)
		}
	case "clerk":
		if c.clerkJWTKey == "" && c.clerkSecretKey == "" {
			return errors.New("--auth clerk needs CLERK_JWT_KEY (networkless verification) or CLERK_SECRET_KEY")
		}
		if c.publishKey == "" {
			return errors.New("--auth clerk needs a publish key: --publish-key-file, EVENTHUB_PUBLISH_KEY or --publish-key")
		}
	default:
		return fmt.Errorf("--auth %q: want dev or clerk", c.auth)
	}
	if c.heartbeat <= 0 {
		return fmt.Errorf("--heartbeat %v: must be positive", c.heartbeat)
	}
	for name, v := range map[string]int{"history": c.history, "jobs": c.jobs, "mailbox": c.mailbox, "max-backfills": c.maxBackfills,
		"max-backfills-per-user": c.maxBackfillsUser, "history-bytes": int(c.historyBytes), "jobs-bytes": int(c.jobsBytes),
		"snapshot-bytes": int(c.snapshotBytes), "mailbox-bytes": int(c.mailboxBytes), "backfill-bytes": int(c.backfillBytes)} {
		if v <= 0 {
			return fmt.Errorf("--%s %d: must be positive", name, v)
		}
	}
	if c.streamLifetime < 0 || c.drain <= 0 || c.permissionsTTL <= 0 || c.reauthGrace < 0 || c.clerkLeeway < 0 {
		return errors.New("--stream-lifetime, --reauth-grace and --clerk-leeway must not be negative; --drain and --permissions-ttl must be positive")
	}
	if c.historyFile != "" {
		return errors.New("--history-file is replaced by --data-dir DIR, which also survives a crash")
	}
	if c.natsStore != "" && c.natsEmbed == "" {
		return errors.New("--nats-store is where an embedded NATS server keeps its data: it needs --nats-embed")
	}
	if c.natsMaxEvents <= 0 || c.natsMaxAge <= 0 {
		return errors.New("--nats-max-events and --nats-max-age must be positive")
	}
	if c.permissions == "clerk" && c.clerkSecretKey == "" {
		return errors.New("--permissions clerk needs CLERK_SECRET_KEY")
	}
	if c.jobQueue <= 0 || c.jobBurst <= 0 {
		return errors.New("--job-queue and --job-burst must be positive")
	}
	if c.jobsPerUser < 0 || c.jobRate < 0 {
		return errors.New("--jobs-per-user and --job-rate must not be negative")
	}
	if c.maxSnapshots <= 0 {
		return fmt.Errorf("--max-snapshots %d: must be positive", c.maxSnapshots)
	}
	if c.maxStreams < 0 || c.maxStreamsPerUser < 0 || c.maxConns < 0 || c.maxConnsPerIP < 0 {
		return errors.New("--max-streams, --max-streams-per-user, --max-conns and --max-conns-per-ip must not be negative")
	}
	cluster := c.nats != "" || c.natsEmbed != ""
	if err := c.validateDataDir(cluster); err != nil {
		return err
	}
	if c.reusePort && !cluster {
		// Each process would number and route only the events it took in:
		// a stream would see some of them, silently.
		return errors.New("--reuse-port shares the address between hub processes, which must share one event log: it needs --nats or --nats-embed")
	}
	if !c.natsAuth.IsZero() && !cluster {
		return errors.New("NATS credentials are for --nats or --nats-embed")
	}
	if c.natsEmbed != "" && !loopback(c.natsEmbed) && c.natsAuth.IsZero() {
		// Anyone who reaches it could publish events to every user, past
		// the publish key and the checks on who publishes.
		return fmt.Errorf("--nats-embed %q listens beyond loopback: it needs credentials (--nats-token-file or EVENTHUB_NATS_TOKEN, or --nats-user with a password)", c.natsEmbed)
	}
	return c.validateNATSCluster()
}

// validateDataDir checks the disk log's flags.
func (c *serveConfig) validateDataDir(cluster bool) error {
	if c.dataDir != "" && cluster {
		// Two logs would number events each their own way.
		return errors.New("--data-dir keeps a single node's event log on disk: with --nats or --nats-embed the log is JetStream, which keeps itself (--nats-store)")
	}
	if _, err := disklog.ParseSync(c.sync); err != nil {
		return fmt.Errorf("--sync %q: want batch or always", c.sync)
	}
	if c.dataDir == "" {
		for _, name := range []string{"sync", "data-max-events", "data-max-bytes", "data-max-age"} {
			if c.set[name] {
				return fmt.Errorf("--%s is for the event log on disk: it needs --data-dir", name)
			}
		}
	}
	if c.dataMaxEvents <= 0 || c.dataMaxBytes <= 0 || c.dataMaxAge <= 0 {
		return errors.New("--data-max-events, --data-max-bytes and --data-max-age must be positive")
	}
	return nil
}

// validateNATSCluster checks the replicas and the embedded cluster's
// flags: what they ask for must be possible, and safe.
func (c *serveConfig) validateNATSCluster() error {
	if c.natsReplicas < 1 || c.natsReplicas > natsjs.MaxReplicas {
		return fmt.Errorf("--nats-replicas %d: JetStream keeps 1 to %d replicas", c.natsReplicas, natsjs.MaxReplicas)
	}
	if c.natsStartTimeout <= 0 {
		return fmt.Errorf("--nats-start-timeout %v: must be positive", c.natsStartTimeout)
	}
	if c.jobLease < time.Second {
		return fmt.Errorf("--job-lease %v: must be at least 1s (a hub renews it every third of it)", c.jobLease)
	}
	if c.natsName != "" && c.natsEmbed == "" {
		return errors.New("--nats-name names the embedded NATS server: it needs --nats-embed")
	}
	if !c.natsClusterAuth.IsZero() && c.natsCluster == "" {
		return errors.New("route credentials (--nats-cluster-user) are for the nodes of an embedded cluster: they need --nats-cluster")
	}
	if c.natsRoutes != "" && c.natsCluster == "" {
		return errors.New("--nats-routes are the other nodes of an embedded cluster: it needs --nats-cluster")
	}
	if c.natsCluster == "" {
		if c.natsReplicas > 1 && c.nats == "" {
			// One server keeps one copy, whatever the stream asks for.
			return fmt.Errorf("--nats-replicas %d needs a NATS cluster of at least %d servers: --nats with its servers' URLs, or an embedded cluster (--nats-cluster)", c.natsReplicas, c.natsReplicas)
		}
		return nil
	}
	if c.natsEmbed == "" {
		return errors.New("--nats-cluster makes the embedded NATS server a node of a cluster: it needs --nats-embed")
	}
	if c.natsStore == "" {
		// Its peers know it by its store: a node that starts with an empty
		// one is a stranger that claims a known name.
		return errors.New("--nats-cluster needs --nats-store: a node of a cluster keeps its JetStream store across restarts")
	}
	if _, port, err := net.SplitHostPort(c.natsCluster); err != nil {
		return fmt.Errorf("--nats-cluster %q: want host:port", c.natsCluster)
	} else if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("--nats-cluster %q: the route port must be a fixed port, which the other nodes name in --nats-routes", c.natsCluster)
	}
	if !loopback(c.natsCluster) && c.natsClusterAuth.IsZero() {
		// Anyone who reaches it could join the cluster, and read and
		// write every stream.
		return fmt.Errorf("--nats-cluster %q listens beyond loopback: it needs route credentials (--nats-cluster-user with --nats-cluster-password-file or EVENTHUB_NATS_CLUSTER_PASSWORD)", c.natsCluster)
	}
	c.natsRouteURLs = nil
	for r := range strings.SplitSeq(c.natsRoutes, ",") {
		if r = strings.TrimSpace(r); r == "" {
			continue
		}
		if strings.Contains(r, "@") {
			// A command line is seen by every user of the machine (and
			// the URL is not echoed: it may hold a password).
			return errors.New("--nats-routes: a route URL holds no credentials: give them with --nats-cluster-user and --nats-cluster-password-file or EVENTHUB_NATS_CLUSTER_PASSWORD")
		}
		u, err := neturl.Parse(r)
		if err != nil || u.Scheme != "nats-route" || u.Port() == "" || u.Hostname() == "" {
			return fmt.Errorf("--nats-routes: %q is not nats-route://host:port", r)
		}
		c.natsRouteURLs = append(c.natsRouteURLs, r)
	}
	if len(c.natsRouteURLs) == 0 {
		// JetStream does not run clustered without them.
		return errors.New("--nats-cluster needs --nats-routes: the route URLs of the cluster's other nodes")
	}
	return nil
}

// byteSize is a flag of a number of bytes: 1048576, 1024KiB, 1MiB, 1GiB.
type byteSize int64

var byteUnits = []struct {
	suffix string
	size   int64
}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}}

func (b *byteSize) String() string {
	for _, u := range byteUnits {
		if *b != 0 && int64(*b)%u.size == 0 {
			return strconv.FormatInt(int64(*b)/u.size, 10) + u.suffix
		}
	}
	return "0"
}

func (b *byteSize) Set(s string) error {
	num, unit := s, int64(1)
	for _, u := range byteUnits {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			num, unit = n, u.size
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
	if err != nil || n < 0 || n > (1<<46)/unit {
		return fmt.Errorf("%q: want a size such as 1048576, 512KiB, 64MiB or 1GiB", s)
	}
	*b = byteSize(n * unit)
	return nil
}

// loopback reports whether addr's host is a loopback address or localhost.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
