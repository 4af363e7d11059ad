// Package hubtest is the test harness every package's tests share, the
// way nats-server's tests share test/test.go (RunServer, checkFor): the
// set-up is written once, so a test reads as its scenario.
//
// It offers:
//
//   - waiting: Poll and WaitFor poll a condition until a deadline. A test
//     never sleeps to let something happen; it waits for it to have
//     happened, or fails saying what it waited for.
//   - the hub as a process: Binary builds ./cmd/eventhub once per test
//     binary (Main, from TestMain, removes it), StartBinary runs it with
//     flags and returns once it listens and /readyz answers 200; the
//     Process stops (SIGTERM, exit 0 expected) or is killed, and its log is
//     shown when the test fails. ReadLog finds the addresses in a hub's log,
//     for a hub run in the test's process too. FreePort finds a loopback
//     port for a flag that cannot take port 0.
//   - HTTP: Request sends one request (a Bearer token, a JSON body) and
//     reads the answer; JobEvent is the JSON of an event to publish.
//   - SSE: OpenStream and DialStream open a stream on a raw loopback
//     socket (headers such as Authorization or Last-Event-ID are the
//     caller's); Stream.Next and Stream.NextEvent read frames with a
//     deadline, Stream.Rest reads the stream to its end. Decoder is the
//     one SSE frame decoder of the repository, strict about what the hub
//     writes: LF line endings and the fields id, event, data, retry and
//     comments, nothing else; a Stream fails the test on any other line.
//   - sockets: TCPPair is a connected pair of loopback TCP conns, for
//     tests that hand a hub or a sock.Conn a real socket.
//   - metrics: Metric reads one sample of a /metrics page through a
//     Prometheus-style selector (`name{label="value"}`); Scrape returns
//     the whole page.
//   - tools: Tool finds a program outside Go that a test runs (chromium,
//     nginx, promtool, node, npm, prlimit). Without it the test skips with
//     one line saying how to get it, or fails when CI is set (InCI).
//
// A hub in the test's own process is built by each package's own helpers
// (transport's test server, actors' test hub, cmd/eventhub's run): hubtest
// imports nothing of the module, so the internal tests of transport and
// actors can use it without an import cycle.
//
// Concurrency: the functions that take a testing.TB fail the test with it,
// so they are called from the test's goroutine, like t.Fatal. A Stream is
// read by one goroutine at a time. A Process may be stopped from the test
// while its log is being read. The browser sub-package drives the
// dashboard in headless Chromium; it is a package of its own so that only
// the tests that use Chromium link chromedp.
package hubtest
