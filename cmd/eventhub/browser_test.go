package main

// The browser tests: the dashboard and its client library
// (transport/web/) in real headless Chromium, driven over the DevTools
// protocol with chromedp, against the real eventhub binary on loopback, so
// that a stop and restart is a real process exit and start.
//
// Chromium is Debian's, installed by .ci/install-deps. Without it these tests
// fail when CI is set and skip otherwise. Each test saves screenshots of what
// a user sees under its artifact directory and prints their paths; run
// `go test -run Browser -artifacts -outputdir DIR ./cmd/eventhub/` to keep them.

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	jose "github.com/go-jose/go-jose/v3"
)

// TestMain removes the hub binary the browser tests built, if they did.
func TestMain(m *testing.M) {
	code := m.Run()
	if builtHub.dir != "" {
		os.RemoveAll(builtHub.dir)
	}
	os.Exit(code)
}

// builtHub is the eventhub binary, built once for all the browser tests.
var builtHub struct {
	once      sync.Once
	dir, path string
	err       error
}

func hubBinary(t *testing.T) string {
	t.Helper()
	builtHub.once.Do(func() {
		dir, err := os.MkdirTemp("", "eventhub-browser-test-")
		if err != nil {
			builtHub.err = err
			return
		}
		builtHub.dir, builtHub.path = dir, filepath.Join(dir, "eventhub")
		if out, err := exec.Command("go", "build", "-o", builtHub.path, ".").CombinedOutput(); err != nil {
			builtHub.err = fmt.Errorf("build: %v\n%s", err, out)
		}
	})
	if builtHub.err != nil {
		t.Fatal(builtHub.err)
	}
	return builtHub.path
}

// chromiumPath finds the browser, or fails (CI) or skips (elsewhere).
func chromiumPath(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("browser test: starts Chromium")
	}
	if p := os.Getenv("EVENTHUB_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	const msg = "Chromium not found: run .ci/install-deps (Debian's chromium), or set EVENTHUB_CHROMIUM to a Chromium binary"
	if ci := os.Getenv("CI"); ci != "" && ci != "0" && ci != "false" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// ---- the hub, a real process ----

// hubProc is one run of the eventhub binary.
type hubProc struct {
	t    *testing.T
	addr string
	cmd  *exec.Cmd
	done chan struct{} // closed once the process has exited and err is set
	err  error

	mu   sync.Mutex
	tail []string // its last stderr lines, for failure messages
}

// startHub runs `eventhub serve --listen listen args…` with env (and none
// of the caller's EVENTHUB_ or CLERK_ variables), and returns once it
// listens.
func startHub(t *testing.T, listen string, env []string, args ...string) *hubProc {
	t.Helper()
	cmd := exec.Command(hubBinary(t), append([]string{"serve", "--listen", listen}, args...)...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "EVENTHUB_") && !strings.HasPrefix(kv, "CLERK_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &hubProc{t: t, cmd: cmd, done: make(chan struct{})}
	listening := make(chan string, 1)
	readDone := make(chan struct{})
	go func() { // ends at EOF, when the process exits
		defer close(readDone)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			h.mu.Lock()
			h.tail = append(h.tail, sc.Text())
			if len(h.tail) > 100 {
				h.tail = h.tail[1:]
			}
			h.mu.Unlock()
			var line struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "eventhub listening" {
				listening <- line.Addr // capacity 1: it listens once
			}
		}
	}()
	go func() { // StderrPipe: Wait only after the reads are done
		<-readDone
		h.err = cmd.Wait()
		close(h.done)
	}()
	t.Cleanup(func() {
		select {
		case <-h.done:
		default:
			cmd.Process.Kill()
			<-h.done
		}
	})
	select {
	case h.addr = <-listening:
	case <-h.done:
		t.Fatalf("hub exited before listening: %v\n%s", h.err, h.logTail())
	case <-time.After(15 * time.Second):
		t.Fatalf("hub did not listen within 15s\n%s", h.logTail())
	}
	return h
}

func (h *hubProc) logTail() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return strings.Join(h.tail, "\n")
}

func (h *hubProc) url(path string) string { return "http://" + h.addr + path }

// stop sends SIGTERM and waits for a clean exit.
func (h *hubProc) stop() {
	h.t.Helper()
	if err := h.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		h.t.Fatal(err)
	}
	select {
	case <-h.done:
		if h.err != nil {
			h.t.Fatalf("hub exit: %v\n%s", h.err, h.logTail())
		}
	case <-time.After(20 * time.Second):
		h.t.Fatalf("hub did not exit within 20s of SIGTERM\n%s", h.logTail())
	}
}

// metric reads one series from GET /metrics, e.g. eventhub_streams_active.
func (h *hubProc) metric(series string) float64 {
	h.t.Helper()
	resp, err := http.Get(h.url("/metrics"))
	if err != nil {
		h.t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 {
		h.t.Fatalf("metrics: %d %v", resp.StatusCode, err)
	}
	for line := range strings.SplitSeq(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				h.t.Fatal(err)
			}
			return f
		}
	}
	h.t.Fatalf("no series %s in /metrics", series)
	return 0
}

// request sends a request with a Bearer token and returns status and body.
func (h *hubProc) request(method, path, token, body string) (int, string) {
	h.t.Helper()
	req, err := http.NewRequest(method, h.url(path), strings.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// publish posts events with the publish key and returns their ids.
func (h *hubProc) publish(key string, events ...string) []uint64 {
	h.t.Helper()
	status, body := h.request("POST", "/api/events", key, "["+strings.Join(events, ",")+"]")
	if status != http.StatusAccepted {
		h.t.Fatalf("publish: %d %s", status, body)
	}
	var ids struct{ IDs []uint64 }
	if err := json.Unmarshal([]byte(body), &ids); err != nil || len(ids.IDs) != len(events) {
		h.t.Fatalf("publish answer %s: %v", body, err)
	}
	return ids.IDs
}

const devPublishKey = "dev-publish-key"

// jobEvent is a JobEvent as JSON; asset and scenario may be empty.
func jobEvent(typ, jobID, status, asset, scenario string) string {
	data := map[string]string{}
	if asset != "" {
		data["assetId"] = asset
	}
	if scenario != "" {
		data["scenarioId"] = scenario
	}
	b, _ := json.Marshal(map[string]any{
		"type": typ, "jobId": jobID, "status": status,
		"timestamp": time.Now().UTC().Format(time.RFC3339Nano), "data": data,
	})
	return string(b)
}

// publisher publishes one event every interval, each for a new job, until
// stopped, riding out a hub that is down or shutting down: an event the hub
// refused is sent again, so every event is eventually published. An
// attempt whose fate is unknown (the connection broke after the request
// went out) is not sent again: the next attempt is a new job, and the
// unknown one is remembered so the test can allow for it.
type publisher struct {
	prefix string
	stop   chan struct{}
	done   chan struct{}

	mu      sync.Mutex
	ids     []uint64 // acknowledged, in the order published
	jobs    []string // the job of each id
	unknown []string // jobs whose publication may or may not have happened
	refused int      // attempts that the hub refused or that found it down
}

func startPublisher(t *testing.T, base func() string, prefix string, interval time.Duration) *publisher {
	p := &publisher{prefix: prefix, stop: make(chan struct{}), done: make(chan struct{})}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	go func() {
		defer close(p.done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for n := 0; ; {
			select {
			case <-p.stop:
				return
			case <-tick.C:
			}
			job := fmt.Sprintf("%s-%d", prefix, n)
			req, _ := http.NewRequest("POST", base()+"/api/events", strings.NewReader(jobEvent("growth", job, "completed", "a1", "")))
			req.Header.Set("Authorization", "Bearer "+devPublishKey)
			resp, err := client.Do(req)
			switch {
			case err != nil && errors.Is(err, syscall.ECONNREFUSED):
				p.mu.Lock()
				p.refused++ // never sent: try this job again
				p.mu.Unlock()
			case err != nil:
				p.mu.Lock()
				p.unknown = append(p.unknown, job)
				p.mu.Unlock()
				n++
			default:
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				var ans struct{ IDs []uint64 }
				if resp.StatusCode == http.StatusAccepted && json.Unmarshal(body, &ans) == nil && len(ans.IDs) == 1 {
					p.mu.Lock()
					p.ids = append(p.ids, ans.IDs[0])
					p.jobs = append(p.jobs, job)
					p.mu.Unlock()
					n++
				} else {
					p.mu.Lock()
					p.refused++ // refused, e.g. 503 while shutting down: try again
					p.mu.Unlock()
				}
			}
		}
	}()
	t.Cleanup(p.halt)
	return p
}

// halt stops the publisher and waits for it; idempotent.
func (p *publisher) halt() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	<-p.done
}

func (p *publisher) published() (ids []uint64, jobs, unknown []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.ids), slices.Clone(p.jobs), slices.Clone(p.unknown)
}

func (p *publisher) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.ids)
}

// ---- the browser ----

// browser is one headless Chromium with a fresh profile. Its first tab
// stays blank: closing it would close the browser.
type browser struct {
	t   *testing.T
	ctx context.Context
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	path := chromiumPath(t)
	// chromedp's defaults are headless, no first run, and no background
	// networking, sync or throttling of background tabs; it gives each
	// browser a new, empty --user-data-dir and removes it at the end. The
	// rest keeps Chromium off the closed network, and working as root.
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.WindowSize(1280, 900),
	)
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, bcancel := chromedp.NewContext(actx)
	if err := chromedp.Do(bctx); err != nil { // starts the browser
		bcancel()
		acancel()
		t.Fatalf("start Chromium (%s): %v", path, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(bctx, 10*time.Second)
		defer cancel()
		chromedp.Cancel(ctx)
		bcancel()
		acancel()
	})
	return &browser{t: t, ctx: bctx}
}

// tab is one page of the browser. Its JavaScript exceptions and CSP
// violations fail the test; its console is printed when the test fails.
type tab struct {
	t     *testing.T
	name  string
	ctx   context.Context
	close context.CancelFunc

	mu       sync.Mutex
	console  []string
	problems []string
}

func (b *browser) newTab(name string) *tab {
	b.t.Helper()
	tb := &tab{t: b.t, name: name}
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithListener(tb.listen))
	if err := chromedp.Do(ctx); err != nil {
		cancel()
		b.t.Fatalf("open tab %s: %v", name, err)
	}
	tb.ctx, tb.close = ctx, cancel
	b.t.Cleanup(func() {
		cancel()
		tb.mu.Lock()
		defer tb.mu.Unlock()
		for _, p := range tb.problems {
			b.t.Errorf("tab %s: %s", name, p)
		}
		if b.t.Failed() && len(tb.console) > 0 {
			b.t.Logf("tab %s console:\n  %s", name, strings.Join(tb.console, "\n  "))
		}
	})
	return tb
}

// listen runs on chromedp's reading goroutine: it only records.
func (tb *tab) listen(ev any) {
	var line string
	problem := false
	switch ev := ev.(type) {
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		line, problem = "exception: "+d.Text, true
		if d.Exception != nil && d.Exception.Description != "" {
			line += " " + d.Exception.Description
		}
		line += fmt.Sprintf(" (%s:%d)", d.URL, d.LineNumber+1)
	case *runtime.EventConsoleAPICalled:
		var args []string
		for _, a := range ev.Args {
			if len(a.Value) > 0 {
				args = append(args, string(a.Value))
			} else {
				args = append(args, a.Description)
			}
		}
		line = "console." + string(ev.Type) + ": " + strings.Join(args, " ")
	case *cdplog.EventEntryAdded:
		e := ev.Entry
		line = fmt.Sprintf("%s %s: %s %s", e.Level, e.Source, e.Text, e.URL)
		problem = strings.Contains(e.Text, "Content Security Policy") || strings.Contains(e.Text, "status of 404")
	default:
		return
	}
	tb.mu.Lock()
	defer tb.mu.Unlock()
	tb.console = append(tb.console, time.Now().Format("15:04:05.000 ")+line)
	if problem {
		tb.problems = append(tb.problems, line)
	}
}

func (tb *tab) do(steps ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		tb.t.Fatalf("tab %s: %v", tb.name, err)
	}
}

// eval evaluates a JavaScript expression in the page and returns its value.
func eval[T any](tb *tab, expr string) T {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		tb.t.Fatalf("tab %s: eval %s: %v", tb.name, expr, err)
	}
	return v
}

// waitFor polls the JavaScript condition until it is true, or fails the
// test after d with a screenshot and the page's state.
func (tb *tab) waitFor(what string, d time.Duration, cond string) {
	tb.t.Helper()
	deadline := time.Now().Add(d)
	for !eval[bool](tb, "!!("+cond+")") {
		if time.Now().After(deadline) {
			path := tb.screenshot("timeout")
			tb.t.Fatalf("tab %s: timed out after %v waiting for %s\nstate: %+v\nevents shown: %v\nscreenshot: %s",
				tb.name, d, what, tb.state(), tb.shownEvents(), path)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// screenshot saves the whole page as <test artifacts>/<tab>-<name>.png.
func (tb *tab) screenshot(name string) string {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		tb.t.Errorf("screenshot %s: %v", name, err)
		return ""
	}
	path := filepath.Join(tb.t.ArtifactDir(), tb.name+"-"+name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		tb.t.Fatal(err)
	}
	tb.t.Logf("screenshot: %s", path)
	return path
}

// connState is what the page shows of its connection.
type connState struct {
	Status, Role, Text, LastID string
	Retry                      bool // the "Retry now" button is shown
}

func (tb *tab) state() connState {
	return eval[connState](tb, `(() => {
		const c = document.getElementById('conn');
		return {
			Status: c.dataset.status || '', Role: c.dataset.role || '',
			Text: (document.getElementById('conn-status').textContent + ' ' + document.getElementById('conn-detail').textContent).trim(),
			LastID: document.getElementById('last-id').textContent,
			Retry: !document.getElementById('retry').hidden,
		};
	})()`)
}

// shown is one event as the page's event log shows it.
type shown struct{ ID, Job, Status string }

// shownEvents is the page's event log, oldest first.
func (tb *tab) shownEvents() []shown {
	return eval[[]shown](tb, `[...document.querySelectorAll('#log li[data-kind="event"]')].reverse()
		.map(li => ({ID: li.dataset.id, Job: li.dataset.job, Status: li.dataset.status}))`)
}

// shownIDs is the ids of the events shown for jobs with the prefix, oldest
// first, and any repeated id.
func (tb *tab) shownIDs(prefix string) []uint64 {
	tb.t.Helper()
	var ids []uint64
	for _, e := range tb.shownEvents() {
		if strings.HasPrefix(e.Job, prefix) {
			id, err := strconv.ParseUint(e.ID, 10, 64)
			if err != nil {
				tb.t.Fatalf("event id %q on screen: %v", e.ID, err)
			}
			ids = append(ids, id)
		}
	}
	return ids
}

// waitLive waits until the page shows its connection live.
func (tb *tab) waitLive(d time.Duration) {
	tb.t.Helper()
	tb.waitFor("the page to be live", d, `document.getElementById('conn').dataset.status === 'live'`)
}

// setCookie sets the __session cookie for the hub's origin, as a site's
// sign-in would.
func (tb *tab) setCookie(h *hubProc, value string) {
	tb.t.Helper()
	tb.do(chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, network.SetCookie, network.SetCookieParams{
			Name: "__session", Value: value, URL: h.url("/"), SameSite: network.CookieSameSiteLax,
		})
		return err
	}))
}

// ---- the tests ----

// TestBrowserSubmitJob: the page loads, and a job submitted with the form
// goes queued → started → completed on screen.
func TestBrowserSubmitJob(t *testing.T) {
	b := newBrowser(t)
	h := startHub(t, "127.0.0.1:0", nil)
	page := b.newTab("dashboard")
	page.do(chromedp.Navigate(h.url("/")))
	page.waitLive(15 * time.Second)
	if st := page.state(); st.Role != "leader" || !strings.HasPrefix(st.Text, "Live") {
		t.Errorf("state %+v: want a live leader", st)
	}
	if user := eval[string](page, `(u => u.checkVisibility() ? u.value : '(hidden)')(document.getElementById('user'))`); user != "alice" {
		t.Errorf("dev user picker shows %q, want alice by default", user)
	}

	// Watch the job's row: every status it shows, in order.
	page.do(chromedp.Evaluate[chromedp.Void](`window.rowStatuses = {};
		new MutationObserver(() => {
			for (const tr of document.querySelectorAll('#rows tr')) {
				const seen = (window.rowStatuses[tr.dataset.job] ||= []);
				if (seen.at(-1) !== tr.dataset.status) seen.push(tr.dataset.status);
			}
		}).observe(document.getElementById('rows'), {subtree: true, childList: true, attributes: true})`))

	// Fill the form as a user would, with the keyboard where it can.
	page.do(
		chromedp.SetValue(chromedp.ID("job-type"), "probability"),
		chromedp.Evaluate[chromedp.Void](`document.getElementById('job-type').dispatchEvent(new Event('change'))`),
		chromedp.WaitVisible(chromedp.ID("job-scenario")),
		chromedp.WaitNotVisible(chromedp.ID("job-asset")),
		chromedp.SendKeys(chromedp.ID("job-scenario"), "s1"),
		chromedp.SendKeys(chromedp.ID("job-params"), `{"trials": 200000, "years": 10}`),
		chromedp.Click(chromedp.CSS(`#job-form button[type="submit"]`)),
	)
	page.waitFor("the submission's answer", 10*time.Second, `document.getElementById('submit-result').dataset.jobId`)
	job := eval[string](page, `document.getElementById('submit-result').dataset.jobId`)
	if !regexp.MustCompile(`^j-[0-9a-f]{16}$`).MatchString(job) {
		t.Fatalf("submitted job id %q", job)
	}
	page.waitFor("the job to complete on screen", 20*time.Second,
		fmt.Sprintf(`document.querySelector('#rows tr[data-job=%q]')?.dataset.status === 'completed'`, job))

	var statuses []string
	for _, e := range page.shownEvents() {
		if e.Job == job {
			statuses = append(statuses, e.Status)
		}
	}
	if want := []string{"queued", "started", "completed"}; !slices.Equal(statuses, want) {
		t.Errorf("event log for %s: %v, want %v", job, statuses, want)
	}
	rowSeen := eval[[]string](page, fmt.Sprintf(`window.rowStatuses[%q] || []`, job))
	if want := []string{"queued", "started", "completed"}; !slices.Equal(rowSeen, want) {
		t.Errorf("the job's row showed %v, want %v", rowSeen, want)
	}
	row := eval[map[string]string](page, fmt.Sprintf(`(() => {
		const tr = document.querySelector('#rows tr[data-job=%q]');
		return Object.fromEntries([...tr.cells].map(td => [td.dataset.label, td.textContent]));
	})()`, job))
	if row["Type"] != "probability" || row["Asset / scenario"] != "s1" || row["Status"] != "completed" ||
		!regexp.MustCompile(`^\d+(\.\d)? m?s$`).MatchString(row["Duration"]) || row["Time"] == "" {
		t.Errorf("the job's row: %v", row)
	}
	if n := eval[string](page, `document.getElementById('count-completed').textContent`); n != "1" {
		t.Errorf("completed counter %q, want 1", n)
	}
	page.screenshot("desktop")

	// Readable on a phone: one column, each job a card.
	page.do(chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile))
	if width := eval[float64](page, `document.documentElement.scrollWidth`); width > 390 {
		t.Errorf("on a 390px phone the page is %vpx wide: it scrolls sideways", width)
	}
	page.screenshot("phone")
}

// TestBrowserResumesAcrossRestart: the hub stops and starts again (with
// --history-file) while a publisher keeps publishing; after it reconnects
// the page has shown every event, once, in order.
func TestBrowserResumesAcrossRestart(t *testing.T) {
	b := newBrowser(t)
	history := filepath.Join(t.TempDir(), "history.jsonl")
	args := []string{"--history-file", history, "--drain", "1s"}
	h := startHub(t, "127.0.0.1:0", nil, args...)
	addr := h.addr
	page := b.newTab("restart")
	page.do(chromedp.Navigate(h.url("/")))
	page.waitLive(15 * time.Second)
	page.do(chromedp.Evaluate[chromedp.Void](`window.connStatuses = [];
		new MutationObserver(() => {
			const s = document.getElementById('conn').dataset.status;
			if (window.connStatuses.at(-1) !== s) window.connStatuses.push(s);
		}).observe(document.getElementById('conn'), {attributes: true})`))

	pub := startPublisher(t, func() string { return "http://" + addr }, "r", 40*time.Millisecond)
	waitUntil(t, "the first events", 10*time.Second, func() bool { return pub.count() >= 15 })
	page.waitFor("the first events on screen", 10*time.Second, `document.querySelector('#log li[data-job="r-10"]')`)

	h.stop()
	before := pub.count()
	startHub(t, addr, nil, args...) // the same address: the page reconnects to it
	waitUntil(t, "events after the restart", 15*time.Second, func() bool { return pub.count() >= before+15 })
	pub.halt()
	ids, jobs, unknown := pub.published()
	last := ids[len(ids)-1]
	page.waitFor("the last event on screen", 30*time.Second,
		fmt.Sprintf(`document.querySelector('#log li[data-id="%d"]')`, last))
	page.waitLive(10 * time.Second)

	// What the page shows for the publisher's jobs is exactly what was
	// published, in order; an attempt of unknown fate may show too.
	shown := page.shownEvents()
	var got []uint64
	for _, e := range shown {
		if strings.HasPrefix(e.Job, "r-") && !slices.Contains(unknown, e.Job) {
			id, _ := strconv.ParseUint(e.ID, 10, 64)
			got = append(got, id)
		}
	}
	if !slices.Equal(got, ids) {
		t.Errorf("page shows %d events, published %d:\nshown     %v\npublished %v (jobs %v)", len(got), len(ids), got, ids, jobs)
	}
	for i := 1; i < len(shown); i++ {
		a, _ := strconv.ParseUint(shown[i-1].ID, 10, 64)
		c, _ := strconv.ParseUint(shown[i].ID, 10, 64)
		if c <= a {
			t.Errorf("event log out of order or repeated at %d: #%d then #%d", i, a, c)
		}
	}
	if n := eval[int](page, `document.querySelectorAll('#log li[data-kind="reset"]').length`); n != 0 {
		t.Errorf("the page got %d resets: the history file should have let it resume", n)
	}
	seen := eval[[]string](page, `window.connStatuses`)
	if !slices.Contains(seen, "reconnecting") || seen[len(seen)-1] != "live" {
		t.Errorf("connection states shown %v: want reconnecting, then live", seen)
	}
	t.Logf("published %d events (%d attempts refused while the hub was down or draining, %d of unknown fate); states shown %v",
		len(ids), pub.refused, len(unknown), seen)
	page.screenshot("after-restart")
}

// TestBrowserResetReloadsSnapshot: a hub restarted without its history
// cannot replay what the page missed; it says reset, and the page reloads the
// job table from the snapshot, then goes on live.
func TestBrowserResetReloadsSnapshot(t *testing.T) {
	b := newBrowser(t)
	h := startHub(t, "127.0.0.1:0", nil, "--drain", "1s")
	page := b.newTab("reset")
	page.do(chromedp.Navigate(h.url("/")))
	page.waitLive(15 * time.Second)
	before := h.publish(devPublishKey, jobEvent("growth", "z-before", "completed", "a1", ""))[0]
	page.waitFor("the first event", 10*time.Second, fmt.Sprintf(`document.querySelector('#log li[data-id="%d"]')`, before))

	addr := h.addr
	h.stop()
	h = startHub(t, addr, nil, "--drain", "1s") // no history: ids start again from the clock
	missed := h.publish(devPublishKey, jobEvent("growth", "z-missed", "started", "a1", ""))[0]
	page.waitFor("the reset", 30*time.Second, `document.querySelector('#log li[data-kind="reset"]')`)
	page.waitFor("the reloaded table", 10*time.Second,
		`document.querySelector('#rows tr[data-job="z-missed"]') && !document.querySelector('#rows tr[data-job="z-before"]')`)
	page.waitLive(10 * time.Second)
	after := h.publish(devPublishKey, jobEvent("growth", "z-missed", "completed", "a1", ""))[0]
	page.waitFor("the next event", 10*time.Second, fmt.Sprintf(`document.querySelector('#log li[data-id="%d"]')`, after))
	rows := eval[[]string](page, `[...document.querySelectorAll('#rows tr')].map(tr => tr.dataset.job + ' ' + tr.dataset.status)`)
	if want := []string{"z-missed completed"}; !slices.Equal(rows, want) {
		t.Errorf("rows %v, want %v", rows, want)
	}
	// The missed event came through the snapshot, not the stream.
	if got := page.shownIDs("z-"); !slices.Equal(got, []uint64{before, after}) {
		t.Errorf("events shown %v, want %v (and %d only in the table)", got, []uint64{before, after}, missed)
	}
	page.screenshot("after-reset")
}

// TestBrowserTabsShareOneStream: two tabs hold one stream between them, both
// show every event, and when the leader's tab closes the other takes over
// without a gap.
func TestBrowserTabsShareOneStream(t *testing.T) {
	b := newBrowser(t)
	h := startHub(t, "127.0.0.1:0", nil)
	first := b.newTab("first")
	first.do(chromedp.Navigate(h.url("/")))
	first.waitLive(15 * time.Second)
	second := b.newTab("second")
	second.do(chromedp.Navigate(h.url("/")))
	second.waitFor("the second tab to follow the first", 15*time.Second,
		`document.getElementById('conn').dataset.role === 'follower' && document.getElementById('conn').dataset.status === 'live'`)
	if st := first.state(); st.Role != "leader" {
		t.Fatalf("first tab: %+v, want the leader", st)
	}
	if n := h.metric("eventhub_streams_active"); n != 1 {
		t.Fatalf("eventhub_streams_active = %v with two tabs open, want 1", n)
	}

	var events []string
	for i := range 10 {
		events = append(events, jobEvent("growth", fmt.Sprintf("t-%d", i), "completed", "a1", ""))
	}
	ids := h.publish(devPublishKey, events...)
	for _, tb := range []*tab{first, second} {
		tb.waitFor("the first ten events", 10*time.Second, fmt.Sprintf(`document.querySelector('#log li[data-id="%d"]')`, ids[len(ids)-1]))
		if got := tb.shownIDs("t-"); !slices.Equal(got, ids) {
			t.Errorf("tab %s shows %v, want %v", tb.name, got, ids)
		}
	}
	if n := h.metric("eventhub_streams_active"); n != 1 {
		t.Errorf("eventhub_streams_active = %v after the events, want 1", n)
	}
	first.screenshot("leader")
	second.screenshot("follower")

	// Close the leader's tab while events keep coming.
	pub := startPublisher(t, func() string { return h.url("") }, "u", 30*time.Millisecond)
	waitUntil(t, "events before the handover", 10*time.Second, func() bool { return pub.count() >= 10 })
	first.close()
	second.waitFor("the second tab to take over", 15*time.Second,
		`document.getElementById('conn').dataset.role === 'leader' && document.getElementById('conn').dataset.status === 'live'`)
	handedOver := pub.count()
	waitUntil(t, "events after the handover", 10*time.Second, func() bool { return pub.count() >= handedOver+10 })
	pub.halt()
	published, _, unknown := pub.published()
	if len(unknown) > 0 {
		t.Fatalf("publications of unknown fate on a steady hub: %v", unknown)
	}
	second.waitFor("the last event", 15*time.Second, fmt.Sprintf(`document.querySelector('#log li[data-id="%d"]')`, published[len(published)-1]))
	if got := second.shownIDs("u-"); !slices.Equal(got, published) {
		t.Errorf("after the handover the second tab shows\n%v\nwant\n%v", got, published)
	}
	if got := second.shownIDs("t-"); !slices.Equal(got, ids) {
		t.Errorf("the second tab's first events changed: %v, want %v", got, ids)
	}
	waitUntil(t, "one stream again", 10*time.Second, func() bool { return h.metric("eventhub_streams_active") == 1 })
	t.Logf("handover at event %d of %d", handedOver, len(published))
	second.screenshot("after-handover")
}

// TestBrowserRBACHidesJobs: a user without access to an asset or scenario
// never sees its jobs on screen: not live, not in the snapshot, not through
// the form.
func TestBrowserRBACHidesJobs(t *testing.T) {
	b := newBrowser(t)
	h := startHub(t, "127.0.0.1:0", nil)
	page := b.newTab("carol")
	page.do(chromedp.Navigate(h.url("/")))
	page.waitLive(15 * time.Second)
	// Switch to carol (asset a1, scenario s3) with the keyboard.
	page.do(
		chromedp.Focus(chromedp.ID("user")),
		chromedp.Evaluate[chromedp.Void](`document.getElementById('user').select()`),
		chromedp.KeyEvent("carol"+kb.Enter),
	)
	page.waitFor("carol's stream", 15*time.Second,
		`document.cookie.includes('__session=dev:carol') && document.getElementById('conn').dataset.status === 'live'`)

	visible := []string{
		jobEvent("growth", "v-growth-a1", "completed", "a1", ""),
		jobEvent("probability", "v-prob-s3", "started", "", "s3"),
		jobEvent("matrix", "v-matrix-a1-s3", "failed", "a1", "s3"),
	}
	hidden := []string{
		jobEvent("growth", "x-growth-a2", "completed", "a2", ""),
		jobEvent("growth", "x-growth-a3", "queued", "a3", ""),
		jobEvent("matrix", "x-matrix-a1-s1", "completed", "a1", "s1"), // carol has a1 but not s1
		jobEvent("matrix", "x-matrix-a2-s3", "completed", "a2", "s3"), // s3 but not a2
		jobEvent("probability", "x-prob-s1", "completed", "", "s1"),
		jobEvent("probability", "x-prob-s2", "failed", "", "s2"),
	}
	var mixed []string
	for i := range max(len(visible), len(hidden)) {
		if i < len(hidden) {
			mixed = append(mixed, hidden[i])
		}
		if i < len(visible) {
			mixed = append(mixed, visible[i])
		}
	}
	h.publish(devPublishKey, mixed...)
	// A real job of bob's on a2, run by the workers to the end.
	status, body := h.request("POST", "/api/jobs", "dev:bob", `{"type":"growth","assetId":"a2"}`)
	if status != http.StatusAccepted {
		t.Fatalf("bob's job: %d %s", status, body)
	}
	var bobs struct{ JobID string }
	json.Unmarshal([]byte(body), &bobs)
	waitUntil(t, "bob's job to complete", 10*time.Second, func() bool {
		_, snap := h.request("GET", "/api/jobs?jobs="+bobs.JobID, "dev:ops", "")
		return strings.Contains(snap, `"status":"completed"`)
	})
	// Streams see events in id order: once this one shows, so would have
	// everything before it.
	marker := h.publish(devPublishKey, jobEvent("growth", "v-marker", "completed", "a1", ""))[0]
	page.waitFor("the marker", 10*time.Second, fmt.Sprintf(`document.querySelector('#log li[data-id="%d"]')`, marker))

	check := func(when string) {
		t.Helper()
		text := eval[string](page, `document.body.innerText + ' ' + [...document.querySelectorAll('[data-job]')].map(e => e.dataset.job).join(' ')`)
		forbidden := regexp.MustCompile(`\bx-[a-z0-9-]+|\b(a2|a3|s1|s2)\b|` + regexp.QuoteMeta(bobs.JobID))
		if bad := forbidden.FindAllString(text, -1); len(bad) > 0 {
			t.Errorf("%s: carol's page shows %q", when, bad)
		}
		rows := eval[[]string](page, `[...document.querySelectorAll('#rows tr')].map(tr => tr.dataset.job)`)
		want := []string{"v-marker", "v-matrix-a1-s3", "v-prob-s3", "v-growth-a1"}
		if !slices.Equal(rows, want) {
			t.Errorf("%s: carol's rows %v, want %v", when, rows, want)
		}
	}
	check("live")
	page.screenshot("live")

	// The snapshot after a reload holds the same.
	page.do(chromedp.Reload())
	page.waitLive(15 * time.Second)
	page.waitFor("the snapshot", 10*time.Second, `document.querySelectorAll('#rows tr').length >= 4`)
	check("after a reload")

	// The form refuses a job on an asset carol may not see.
	page.do(
		chromedp.SetValue(chromedp.ID("job-type"), "growth"),
		chromedp.Evaluate[chromedp.Void](`document.getElementById('job-type').dispatchEvent(new Event('change'))`),
		chromedp.SendKeys(chromedp.ID("job-asset"), "a2"+kb.Enter),
	)
	page.waitFor("the refusal", 10*time.Second, `document.getElementById('submit-result').textContent.includes('403')`)
	page.screenshot("refused")
	if n := eval[int](page, `document.querySelectorAll('#rows tr').length`); n != 4 {
		t.Errorf("after the refused job carol has %d rows, want 4", n)
	}
}

// TestBrowserExpiredSessionBacksOff: a session that expires (Clerk auth, a
// real token with a real exp) ends the stream; the hub answers each
// reconnection 401, and an EventSource would give up. The page retries with
// backoff, not in a tight loop, shows it is reconnecting, and is live again
// once the session is fresh, having missed nothing.
func TestBrowserExpiredSessionBacksOff(t *testing.T) {
	b := newBrowser(t)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	pemKey := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	const publishKey = "browser-test-key"
	h := startHub(t, "127.0.0.1:0", []string{"CLERK_JWT_KEY=" + pemKey},
		"--auth", "clerk", "--publish-key", publishKey, "--clerk-leeway", "0s", "--reauth-grace", "1ms")
	token := func(ttl time.Duration) string {
		t.Helper()
		now := time.Now()
		claims, _ := json.Marshal(map[string]any{
			"iss": "https://clerk.example.test", "sub": "alice", "sid": "sess_1",
			"iat": now.Add(-time.Second).Unix(), "nbf": now.Add(-time.Second).Unix(), "exp": now.Add(ttl).Unix(),
		})
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key},
			(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "ins_1"))
		if err != nil {
			t.Fatal(err)
		}
		sig, err := signer.Sign(claims)
		if err != nil {
			t.Fatal(err)
		}
		s, _ := sig.CompactSerialize()
		return s
	}

	page := b.newTab("session")
	page.setCookie(h, token(4*time.Second))
	page.do(chromedp.Navigate(h.url("/")))
	page.waitLive(10 * time.Second)
	if !eval[bool](page, `!document.getElementById('user-form').checkVisibility() && document.getElementById('session-note').checkVisibility()`) {
		t.Error("with Clerk auth the page should rely on the session cookie, with no dev user picker")
	}
	first := h.publish(publishKey, jobEvent("growth", "s-before", "completed", "a1", ""))[0]
	page.waitFor("the first event", 10*time.Second, fmt.Sprintf(`document.querySelector('#log li[data-id="%d"]')`, first))

	// The token expires: the hub ends the stream, and refuses the next ones.
	const expired = `eventhub_auth_failures_total{reason="expired"}`
	waitUntil(t, "a first 401", 15*time.Second, func() bool { return h.metric(expired) >= 1 })
	start := time.Now()
	statuses := map[string]bool{}
	retryShown := false
	for time.Since(start) < 4*time.Second {
		st := page.state()
		statuses[st.Status] = true
		retryShown = retryShown || (st.Retry && regexp.MustCompile(`^Reconnecting in \d+ s$`).MatchString(st.Text))
		time.Sleep(100 * time.Millisecond)
	}
	refused := h.metric(expired)
	// Full jitter over 1 s, 2 s, 4 s…: the 2nd attempt surely comes within
	// 2 s of the 1st; a tight loop would make hundreds, a dead page none.
	if refused < 2 || refused > 7 {
		t.Errorf("%v refused reconnections in the 4 s after the first: want 2 to 7 (backoff, neither a dead page nor a loop)", refused)
	}
	if !statuses["reconnecting"] || !retryShown || statuses["closed"] {
		t.Errorf("states shown while the session was expired: %v (retry shown: %v): want reconnecting, with a countdown and a retry button", statuses, retryShown)
	}
	page.screenshot("expired")

	// The site refreshes the session; an event is published meanwhile.
	missed := h.publish(publishKey, jobEvent("growth", "s-missed", "completed", "a1", ""))[0]
	page.setCookie(h, token(10*time.Minute))
	refreshed := time.Now()
	page.waitFor("the page to be live again", 40*time.Second, fmt.Sprintf(`document.querySelector('#log li[data-id="%d"]')`, missed))
	page.waitLive(5 * time.Second)
	if got := page.shownIDs("s-"); !slices.Equal(got, []uint64{first, missed}) {
		t.Errorf("events shown %v, want %v", got, []uint64{first, missed})
	}
	t.Logf("%v reconnections refused in 4 s; live again %v after the session was refreshed", refused, time.Since(refreshed).Round(10*time.Millisecond))
	page.screenshot("recovered")
}

// waitUntil polls cond until it holds, or fails the test after d.
func waitUntil(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
