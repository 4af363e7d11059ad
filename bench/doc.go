// Package bench is eventhub's load harness. It drives many SSE streams over
// real TCP against eventhub or any SSE server, publishes timestamped events,
// and reports latency percentiles, fan-out completion, deliveries per
// second, events lost, and the server's memory and CPU read from /proc. It
// speaks HTTP to the server like any client and imports none of eventhub's
// packages.
//
// # Model
//
// A run (Run, one scenario against one or two servers) is driven by a
// controller: it starts the server under test if asked (eventhub with
// Config.HubBinary, or the Floor, a lean SSE server that is the physical
// floor eventhub is measured against), opens the streams, publishes, and
// collects. Streams live in pools, one goroutine per stream reading with a
// small bufio.Reader and looking only at what it needs: the "ts" and "seq"
// integers in data lines (a byte search, not a JSON decoder) and the id
// line (for Last-Event-ID). Latency is receive time − ts; fan-out
// completion of an event is its last delivery − its send time.
//
// A process may hold 20,000 open files here, so past Config.PerProcess
// streams the controller re-executes its own program as worker processes
// (the "worker" subcommand, ServeWorker) speaking JSON lines on stdin and
// stdout, and merges their Histograms exactly by adding bucket counts.
// Streams are spread over source addresses 127.0.X.Y so that no address
// runs out of ephemeral ports. With Config.Epoll each process reads its
// live streams from one epoll loop (poller) rather than a goroutine each,
// which costs the client less CPU per delivery on cores it shares with the
// server.
//
// The server's side of the same limit is a cluster (Config.Hubs): several
// eventhub processes listening on one address with --reuse-port, the first
// running NATS JetStream embedded and the others joined to it, each with a
// private admin address for its own /readyz and /metrics. Their memory and
// CPU are measured summed and one by one, and the CPU while publishing is
// split between hubs, clients, kernel threads and the rest of the machine.
//
// # Concurrency and lifetime
//
// Run is synchronous and bounded in time: every phase has a deadline and
// every goroutine and child process it starts is stopped and waited for
// before it returns (children also die with the harness, by Pdeathsig).
// A Histogram may be recorded into concurrently. Floor's Serve and Close
// may be called from different goroutines.
package bench
