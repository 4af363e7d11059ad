package main

// The browser tests: the dashboard and its client library
// (transport/web/) in real headless Chromium, driven over the DevTools
// protocol with chromedp, against the real eventhub binary on loopback, so
// that a stop and restart is a real process exit and start.
//
// The browser and the hub process come from the test harness
// (internal/hubtest/browser, internal/hubtest). Chromium is Debian's,
// installed by .ci/install-deps. Without it these tests fail when CI is set
// and skip otherwise. Each test saves screenshots of what a user sees under
// its artifact directory and prints their paths; run
// `go test -run Browser -artifacts -outputdir DIR ./cmd/eventhub/`, or set
// EVENTHUB_ARTIFACTS=DIR, to keep them.

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	jose "github.com/go-jose/go-jose/v3"

	"github.com/finexbot/eventhub/internal/hubtest"
	"github.com/finexbot/eventhub/internal/hubtest/browser"
)

// TestMain removes the hub binary the tests built, if they did.
func TestMain(m *testing.M) { hubtest.Main(m) }

// hub is one run of the eventhub binary for a browser test.
type hub struct {
	*hubtest.Process
	t *testing.T
}

// startHub runs `eventhub serve --listen listen args…` with env (and none
// of the caller's EVENTHUB_ or CLERK_ variables), and returns once it is
// ready.
func startHub(t *testing.T, listen string, env []string, args ...string) *hub {
	t.Helper()
	return &hub{hubtest.StartBinary(t, hubtest.Options{Listen: listen, Env: env, Args: args}), t}
}

// metric reads one series from GET /metrics, e.g. eventhub_streams_active.
func (h *hub) metric(series string) float64 {
	h.t.Helper()
	return hubtest.Metric(h.t, h.URL("/metrics"), series)
}

// request sends a request with a Bearer token and returns status and body.
func (h *hub) request(method, path, token, body string) (int, string) {
	h.t.Helper()
	resp, b := hubtest.Request(h.t, method, h.URL(path), token, []byte(body))
	return resp.StatusCode, b
}

// publish posts events with the publish key and returns their ids.
func (h *hub) publish(key string, events ...string) []uint64 {
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

// dashboard opens the hub's dashboard in a new tab of b named name, and
// returns once its stream is live.
func (h *hub) dashboard(b *browser.Browser, name string) *browser.Tab {
	h.t.Helper()
	page := b.NewTab(name)
	page.Do(chromedp.Navigate(h.URL("/")))
	page.WaitLive(15 * time.Second)
	return page
}

const devPublishKey = "dev-publish-key"

// jobEvent is a JobEvent as JSON, timestamped now; asset and scenario may
// be empty.
func jobEvent(typ, jobID, status, asset, scenario string) string {
	return hubtest.JobEvent(typ, jobID, status, asset, scenario, time.Now())
}

// TestBrowserSubmitJob: the page loads, and a job submitted with the form
// goes queued → started → completed on screen.
func TestBrowserSubmitJob(t *testing.T) {
	b := browser.New(t)
	h := startHub(t, "127.0.0.1:0", nil)
	page := h.dashboard(b, "dashboard")
	if st := page.State(); st.Role != "leader" || !strings.HasPrefix(st.Text, "Live") {
		t.Errorf("state %+v: want a live leader", st)
	}
	if user := browser.Eval[string](page, `(u => u.checkVisibility() ? u.value : '(hidden)')(document.getElementById('user'))`); user != "alice" {
		t.Errorf("dev user picker shows %q, want alice by default", user)
	}

	// Watch the job's row: every status it shows, in order.
	page.Do(chromedp.Evaluate[chromedp.Void](`window.rowStatuses = {};
		new MutationObserver(() => {
			for (const tr of document.querySelectorAll('#rows tr')) {
				const seen = (window.rowStatuses[tr.dataset.job] ||= []);
				if (seen.at(-1) !== tr.dataset.status) seen.push(tr.dataset.status);
			}
		}).observe(document.getElementById('rows'), {subtree: true, childList: true, attributes: true})`))

	// Fill the form as a user would, with the keyboard where it can.
	page.Do(
		chromedp.SetValue(chromedp.ID("job-type"), "probability"),
		chromedp.Evaluate[chromedp.Void](`document.getElementById('job-type').dispatchEvent(new Event('change'))`),
		chromedp.WaitVisible(chromedp.ID("job-scenario")),
		chromedp.WaitNotVisible(chromedp.ID("job-asset")),
		chromedp.SendKeys(chromedp.ID("job-scenario"), "s1"),
		chromedp.SendKeys(chromedp.ID("job-params"), `{"trials": 200000, "years": 10}`),
		chromedp.Click(chromedp.CSS(`#job-form button[type="submit"]`)),
	)
	page.WaitFor("the submission's answer", 10*time.Second, `document.getElementById('submit-result').dataset.jobId`)
	job := browser.Eval[string](page, `document.getElementById('submit-result').dataset.jobId`)
	if !regexp.MustCompile(`^j-[0-9a-f]{16}$`).MatchString(job) {
		t.Fatalf("submitted job id %q", job)
	}
	page.WaitFor("the job to complete on screen", 20*time.Second,
		fmt.Sprintf(`document.querySelector('#rows tr[data-job=%q]')?.dataset.status === 'completed'`, job))

	var statuses []string
	for _, e := range page.ShownEvents() {
		// A job's progress comes as started again: one step on the page.
		if e.Job == job && (len(statuses) == 0 || statuses[len(statuses)-1] != e.Status) {
			statuses = append(statuses, e.Status)
		}
	}
	if want := []string{"queued", "started", "completed"}; !slices.Equal(statuses, want) {
		t.Errorf("event log for %s: %v, want %v", job, statuses, want)
	}
	rowSeen := browser.Eval[[]string](page, fmt.Sprintf(`window.rowStatuses[%q] || []`, job))
	if want := []string{"queued", "started", "completed"}; !slices.Equal(rowSeen, want) {
		t.Errorf("the job's row showed %v, want %v", rowSeen, want)
	}
	row := browser.Eval[map[string]string](page, fmt.Sprintf(`(() => {
		const tr = document.querySelector('#rows tr[data-job=%q]');
		return Object.fromEntries([...tr.cells].map(td => [td.dataset.label, td.textContent]));
	})()`, job))
	if row["Type"] != "probability" || row["Asset / scenario"] != "s1" || row["Status"] != "completed" ||
		!regexp.MustCompile(`^\d+(\.\d)? m?s$`).MatchString(row["Duration"]) || row["Time"] == "" {
		t.Errorf("the job's row: %v", row)
	}
	if n := browser.Eval[string](page, `document.getElementById('count-completed').textContent`); n != "1" {
		t.Errorf("completed counter %q, want 1", n)
	}
	page.Screenshot("desktop")

	// Readable on a phone: one column, each job a card.
	page.Do(chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile))
	if width := browser.Eval[float64](page, `document.documentElement.scrollWidth`); width > 390 {
		t.Errorf("on a 390px phone the page is %vpx wide: it scrolls sideways", width)
	}
	page.Screenshot("phone")
}

// TestBrowserResumesAcrossRestart: the hub stops and starts again (with
// --data-dir) while a publisher keeps publishing; after it reconnects the
// page has shown every event, once, in order.
func TestBrowserResumesAcrossRestart(t *testing.T) {
	b := browser.New(t)
	args := []string{"--data-dir", t.TempDir(), "--drain", "1s"}
	h := startHub(t, "127.0.0.1:0", nil, args...)
	addr := h.Addr
	page := h.dashboard(b, "restart")
	page.Do(chromedp.Evaluate[chromedp.Void](`window.connStatuses = [];
		new MutationObserver(() => {
			const s = document.getElementById('conn').dataset.status;
			if (window.connStatuses.at(-1) !== s) window.connStatuses.push(s);
		}).observe(document.getElementById('conn'), {attributes: true})`))

	pub := startPublisher(t, func() string { return "http://" + addr }, "r", 40*time.Millisecond)
	hubtest.WaitFor(t, "the first events", 10*time.Second, func() bool { return pub.count() >= 15 })
	page.WaitFor("the first events on screen", 10*time.Second, `document.querySelector('#log li[data-job="r-10"]')`)

	h.Stop()
	before := pub.count()
	startHub(t, addr, nil, args...) // the same address: the page reconnects to it
	hubtest.WaitFor(t, "events after the restart", 15*time.Second, func() bool { return pub.count() >= before+15 })
	pub.halt()
	ids, jobs, unknown := pub.published()
	last := ids[len(ids)-1]
	page.WaitFor("the last event on screen", 30*time.Second,
		fmt.Sprintf(`document.querySelector('#log li[data-id="%d"]')`, last))
	page.WaitLive(10 * time.Second)

	// What the page shows for the publisher's jobs is exactly what was
	// published, in order; an attempt of unknown fate may show too.
	shown := page.ShownEvents()
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
	if n := browser.Eval[int](page, `document.querySelectorAll('#log li[data-kind="reset"]').length`); n != 0 {
		t.Errorf("the page got %d resets: the log on disk should have let it resume", n)
	}
	seen := browser.Eval[[]string](page, `window.connStatuses`)
	if !slices.Contains(seen, "reconnecting") || seen[len(seen)-1] != "live" {
		t.Errorf("connection states shown %v: want reconnecting, then live", seen)
	}
	t.Logf("published %d events (%d attempts refused while the hub was down or draining, %d of unknown fate); states shown %v",
		len(ids), pub.refused, len(unknown), seen)
	page.Screenshot("after-restart")
}

// TestBrowserResetReloadsSnapshot: a hub restarted without its history
// cannot replay what the page missed; it says reset, and the page reloads the
// job table from the snapshot, then goes on live.
func TestBrowserResetReloadsSnapshot(t *testing.T) {
	b := browser.New(t)
	h := startHub(t, "127.0.0.1:0", nil, "--drain", "1s")
	page := h.dashboard(b, "reset")
	before := h.publish(devPublishKey, jobEvent("growth", "z-before", "completed", "a1", ""))[0]
	page.WaitFor("the first event", 10*time.Second, fmt.Sprintf(`document.querySelector('#log li[data-id="%d"]')`, before))

	addr := h.Addr
	h.Stop()
	h = startHub(t, addr, nil, "--drain", "1s") // no history: ids start again from the clock
	missed := h.publish(devPublishKey, jobEvent("growth", "z-missed", "started", "a1", ""))[0]
	page.WaitFor("the reset", 30*time.Second, `document.querySelector('#log li[data-kind="reset"]')`)
	page.WaitFor("the reloaded table", 10*time.Second,
		`document.querySelector('#rows tr[data-job="z-missed"]') && !document.querySelector('#rows tr[data-job="z-before"]')`)
	page.WaitLive(10 * time.Second)
	after := h.publish(devPublishKey, jobEvent("growth", "z-missed", "completed", "a1", ""))[0]
	page.WaitFor("the next event", 10*time.Second, fmt.Sprintf(`document.querySelector('#log li[data-id="%d"]')`, after))
	rows := browser.Eval[[]string](page, `[...document.querySelectorAll('#rows tr')].map(tr => tr.dataset.job + ' ' + tr.dataset.status)`)
	if want := []string{"z-missed completed"}; !slices.Equal(rows, want) {
		t.Errorf("rows %v, want %v", rows, want)
	}
	// The missed event came through the snapshot, not the stream.
	if got := page.ShownIDs("z-"); !slices.Equal(got, []uint64{before, after}) {
		t.Errorf("events shown %v, want %v (and %d only in the table)", got, []uint64{before, after}, missed)
	}
	page.Screenshot("after-reset")
}

// TestBrowserTabsShareOneStream: two tabs hold one stream between them, both
// show every event, and when the leader's tab closes the other takes over
// without a gap.
func TestBrowserTabsShareOneStream(t *testing.T) {
	b := browser.New(t)
	h := startHub(t, "127.0.0.1:0", nil)
	first := b.NewTab("first")
	first.Do(chromedp.Navigate(h.URL("/")))
	first.WaitLive(15 * time.Second)
	second := b.NewTab("second")
	second.Do(chromedp.Navigate(h.URL("/")))
	second.WaitFor("the second tab to follow the first", 15*time.Second,
		`document.getElementById('conn').dataset.role === 'follower' && document.getElementById('conn').dataset.status === 'live'`)
	if st := first.State(); st.Role != "leader" {
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
	for _, tb := range []*browser.Tab{first, second} {
		tb.WaitFor("the first ten events", 10*time.Second, fmt.Sprintf(`document.querySelector('#log li[data-id="%d"]')`, ids[len(ids)-1]))
		if got := tb.ShownIDs("t-"); !slices.Equal(got, ids) {
			t.Errorf("tab %s shows %v, want %v", tb.Name, got, ids)
		}
	}
	if n := h.metric("eventhub_streams_active"); n != 1 {
		t.Errorf("eventhub_streams_active = %v after the events, want 1", n)
	}
	first.Screenshot("leader")
	second.Screenshot("follower")

	// Close the leader's tab while events keep coming.
	pub := startPublisher(t, func() string { return h.URL("") }, "u", 30*time.Millisecond)
	hubtest.WaitFor(t, "events before the handover", 10*time.Second, func() bool { return pub.count() >= 10 })
	first.Close()
	second.WaitFor("the second tab to take over", 15*time.Second,
		`document.getElementById('conn').dataset.role === 'leader' && document.getElementById('conn').dataset.status === 'live'`)
	handedOver := pub.count()
	hubtest.WaitFor(t, "events after the handover", 10*time.Second, func() bool { return pub.count() >= handedOver+10 })
	pub.halt()
	published, _, unknown := pub.published()
	if len(unknown) > 0 {
		t.Fatalf("publications of unknown fate on a steady hub: %v", unknown)
	}
	second.WaitFor("the last event", 15*time.Second, fmt.Sprintf(`document.querySelector('#log li[data-id="%d"]')`, published[len(published)-1]))
	if got := second.ShownIDs("u-"); !slices.Equal(got, published) {
		t.Errorf("after the handover the second tab shows\n%v\nwant\n%v", got, published)
	}
	if got := second.ShownIDs("t-"); !slices.Equal(got, ids) {
		t.Errorf("the second tab's first events changed: %v, want %v", got, ids)
	}
	hubtest.WaitFor(t, "one stream again", 10*time.Second, func() bool { return h.metric("eventhub_streams_active") == 1 })
	t.Logf("handover at event %d of %d", handedOver, len(published))
	second.Screenshot("after-handover")
}

// TestBrowserRBACHidesJobs: a user without access to an asset or scenario
// never sees its jobs on screen: not live, not in the snapshot, not through
// the form.
func TestBrowserRBACHidesJobs(t *testing.T) {
	b := browser.New(t)
	h := startHub(t, "127.0.0.1:0", nil)
	page := h.dashboard(b, "carol")
	// Switch to carol (asset a1, scenario s3) with the keyboard.
	page.Do(
		chromedp.Focus(chromedp.ID("user")),
		chromedp.Evaluate[chromedp.Void](`document.getElementById('user').select()`),
		chromedp.KeyEvent("carol"+kb.Enter),
	)
	page.WaitFor("carol's stream", 15*time.Second,
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
	hubtest.WaitFor(t, "bob's job to complete", 10*time.Second, func() bool {
		_, snap := h.request("GET", "/api/jobs?jobs="+bobs.JobID, "dev:ops", "")
		return strings.Contains(snap, `"status":"completed"`)
	})
	// Streams see events in id order: once this one shows, so would have
	// everything before it.
	marker := h.publish(devPublishKey, jobEvent("growth", "v-marker", "completed", "a1", ""))[0]
	page.WaitFor("the marker", 10*time.Second, fmt.Sprintf(`document.querySelector('#log li[data-id="%d"]')`, marker))

	check := func(when string) {
		t.Helper()
		text := browser.Eval[string](page, `document.body.innerText + ' ' + [...document.querySelectorAll('[data-job]')].map(e => e.dataset.job).join(' ')`)
		forbidden := regexp.MustCompile(`\bx-[a-z0-9-]+|\b(a2|a3|s1|s2)\b|` + regexp.QuoteMeta(bobs.JobID))
		if bad := forbidden.FindAllString(text, -1); len(bad) > 0 {
			t.Errorf("%s: carol's page shows %q", when, bad)
		}
		rows := browser.Eval[[]string](page, `[...document.querySelectorAll('#rows tr')].map(tr => tr.dataset.job)`)
		want := []string{"v-marker", "v-matrix-a1-s3", "v-prob-s3", "v-growth-a1"}
		if !slices.Equal(rows, want) {
			t.Errorf("%s: carol's rows %v, want %v", when, rows, want)
		}
	}
	check("live")
	page.Screenshot("live")

	// The snapshot after a reload holds the same.
	page.Do(chromedp.Reload())
	page.WaitLive(15 * time.Second)
	page.WaitFor("the snapshot", 10*time.Second, `document.querySelectorAll('#rows tr').length >= 4`)
	check("after a reload")

	// The form refuses a job on an asset carol may not see.
	page.Do(
		chromedp.SetValue(chromedp.ID("job-type"), "growth"),
		chromedp.Evaluate[chromedp.Void](`document.getElementById('job-type').dispatchEvent(new Event('change'))`),
		chromedp.SendKeys(chromedp.ID("job-asset"), "a2"+kb.Enter),
	)
	page.WaitFor("the refusal", 10*time.Second, `document.getElementById('submit-result').textContent.includes('403')`)
	page.Screenshot("refused")
	if n := browser.Eval[int](page, `document.querySelectorAll('#rows tr').length`); n != 4 {
		t.Errorf("after the refused job carol has %d rows, want 4", n)
	}
}

// TestBrowserExpiredSessionBacksOff: a session that expires (Clerk auth, a
// real token with a real exp) ends the stream; the hub answers each
// reconnection 401, and an EventSource would give up. The page retries with
// backoff, not in a tight loop, shows it is reconnecting, and is live again
// once the session is fresh, having missed nothing.
func TestBrowserExpiredSessionBacksOff(t *testing.T) {
	b := browser.New(t)
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

	page := b.NewTab("session")
	page.SetCookie(h.URL("/"), "__session", token(4*time.Second))
	page.Do(chromedp.Navigate(h.URL("/")))
	page.WaitLive(10 * time.Second)
	if !browser.Eval[bool](page, `!document.getElementById('user-form').checkVisibility() && document.getElementById('session-note').checkVisibility()`) {
		t.Error("with Clerk auth the page should rely on the session cookie, with no dev user picker")
	}
	first := h.publish(publishKey, jobEvent("growth", "s-before", "completed", "a1", ""))[0]
	page.WaitFor("the first event", 10*time.Second, fmt.Sprintf(`document.querySelector('#log li[data-id="%d"]')`, first))

	// The token expires: the hub ends the stream, and refuses the next ones.
	const expired = `eventhub_auth_failures_total{reason="expired"}`
	hubtest.WaitFor(t, "a first 401", 15*time.Second, func() bool { return h.metric(expired) >= 1 })
	start := time.Now()
	statuses := map[string]bool{}
	retryShown := false
	for time.Since(start) < 4*time.Second {
		st := page.State()
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
	page.Screenshot("expired")

	// The site refreshes the session; an event is published meanwhile.
	missed := h.publish(publishKey, jobEvent("growth", "s-missed", "completed", "a1", ""))[0]
	page.SetCookie(h.URL("/"), "__session", token(10*time.Minute))
	refreshed := time.Now()
	page.WaitFor("the page to be live again", 40*time.Second, fmt.Sprintf(`document.querySelector('#log li[data-id="%d"]')`, missed))
	page.WaitLive(5 * time.Second)
	if got := page.ShownIDs("s-"); !slices.Equal(got, []uint64{first, missed}) {
		t.Errorf("events shown %v, want %v", got, []uint64{first, missed})
	}
	t.Logf("%v reconnections refused in 4 s; live again %v after the session was refreshed", refused, time.Since(refreshed).Round(10*time.Millisecond))
	page.Screenshot("recovered")
}

// TestBrowserJobDetail: a job of each kind, and one that fails, run by the
// workers and opened from the table with the mouse and the keyboard. The
// detail draws what the result holds (as many points as the growth series,
// rows×cols cells, a gauge at the probability), its data table holds the
// same numbers, a failed job shows its error, the timeline the statuses the
// page saw; Esc, the close button and Back close it, and it fits a phone.
// Event data is shown as text, never run.
func TestBrowserJobDetail(t *testing.T) {
	b := browser.New(t)
	h := startHub(t, "127.0.0.1:0", nil)
	page := b.NewTab("detail")
	page.Do(chromedp.EmulateViewport(1100, 1400)) // tall enough for each detail's screenshot to show it whole
	page.Do(chromedp.Navigate(h.URL("/")))
	page.WaitLive(15 * time.Second)

	submit := func(body string) string {
		t.Helper()
		status, answer := h.request("POST", "/api/jobs", "dev:alice", body)
		var job struct{ JobID string }
		if status != http.StatusAccepted || json.Unmarshal([]byte(answer), &job) != nil {
			t.Fatalf("submit %s: %d %s", body, status, answer)
		}
		return job.JobID
	}
	growth := submit(`{"type":"growth","assetId":"a1","params":{"principal":1000,"rate":0.07,"years":12,"contribution":100}}`)
	matrix := submit(`{"type":"matrix","assetId":"a1","scenarioId":"s1","params":{"rows":6,"cols":8,"shock":0.3}}`)
	prob := submit(`{"type":"probability","scenarioId":"s1","params":{"trials":5000,"years":3}}`)
	failed := submit(`{"type":"growth","assetId":"a2","params":{"years":500}}`) // over the 100 a growth job takes
	// A publisher's events: an error that is markup, a result of the wrong shape.
	bad := h.publish(devPublishKey,
		detailEvent(t, "growth", "evil-1", "failed", map[string]any{"assetId": "a1", "error": `<img src=x onerror="window.pwned=1">bad`}),
		detailEvent(t, "growth", "odd-1", "completed", map[string]any{"assetId": "a1", "result": map[string]any{"values": "many"}}))
	page.WaitFor("the publisher's events", 10*time.Second, fmt.Sprintf(`document.querySelector('#log li[data-id="%d"]')`, bad[1]))
	ids := []string{growth, matrix, prob, failed}
	for _, id := range ids {
		page.WaitFor(id+" to end on screen", 20*time.Second,
			fmt.Sprintf(`['completed', 'failed'].includes(document.querySelector('#rows tr[data-job=%q]')?.dataset.status)`, id))
	}
	// What each job ended with, as the hub says.
	_, snap := h.request("GET", "/api/jobs?jobs="+strings.Join(ids, ","), "dev:alice", "")
	var jobs struct {
		Jobs []struct{ Event detailJobEvent }
	}
	if err := json.Unmarshal([]byte(snap), &jobs); err != nil {
		t.Fatalf("snapshot %s: %v", snap, err)
	}
	final := map[string]detailJobEvent{}
	for _, j := range jobs.Jobs {
		final[j.Event.JobID] = j.Event
	}
	if final[failed].Status != "failed" || final[growth].Status != "completed" || final[matrix].Status != "completed" || final[prob].Status != "completed" {
		t.Fatalf("jobs ended %+v", final)
	}

	// Short ids on screen, the full one in a title.
	link := browser.Eval[map[string]string](page, fmt.Sprintf(`(a => ({text: a.textContent, title: a.title}))(document.querySelector('#rows tr[data-job=%q] a.job-link'))`, growth))
	if link["text"] != growth[:8]+"…" || !strings.HasPrefix(link["title"], growth) {
		t.Errorf("the job's link shows %q (title %q), want %q with the full id in its title", link["text"], link["title"], growth[:8]+"…")
	}
	if last := browser.Eval[string](page, `document.getElementById('last-id').textContent`); !regexp.MustCompile(`^#(…\d{4}|\d{1,6})$`).MatchString(last) {
		t.Errorf("the last event id shows as %q: want a short form", last)
	}

	linkOf := func(id string) string { return fmt.Sprintf(`#rows tr[data-job=%q] a.job-link`, id) }
	open := func(id string, how ...chromedp.Action[chromedp.Void]) detailView {
		t.Helper()
		page.Do(how...)
		page.WaitFor("the detail of "+id, 10*time.Second, fmt.Sprintf(
			`(d => d.open && d.dataset.job === %q && location.hash === '#job=' + encodeURIComponent(%[1]q) && d.contains(document.activeElement))(document.getElementById('detail'))`, id))
		return browser.Eval[detailView](page, detailJS)
	}
	closeWith := func(id string, how ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		page.Do(how...)
		page.WaitFor("the detail of "+id+" to close", 10*time.Second, `(d => !d.open && !d.dataset.job && location.hash === '')(document.getElementById('detail'))`)
		if back := browser.Eval[string](page, `document.activeElement?.closest('tr')?.dataset.job || document.activeElement?.id || ''`); back != id {
			t.Errorf("after the detail of %s closed, focus is on %q: want its row", id, back)
		}
	}
	timeline := func(v detailView, ev detailJobEvent) {
		t.Helper()
		want := []string{"queued", "started", ev.Status}
		if !slices.Equal(v.Timeline, want) || slices.Contains(v.Seen, "no") {
			t.Errorf("%s: timeline %v (seen %v), want %v, all seen", ev.JobID, v.Timeline, v.Seen, want)
		}
		inOrder := len(v.Times) == 3 && v.Times[2] == ev.Timestamp
		for i := 1; inOrder && i < len(v.Times); i++ {
			a, err1 := time.Parse(time.RFC3339Nano, v.Times[i-1])
			c, err2 := time.Parse(time.RFC3339Nano, v.Times[i])
			inOrder = err1 == nil && err2 == nil && !c.Before(a)
		}
		if !inOrder {
			t.Errorf("%s: timeline times %v, want 3 in order, the last %s", ev.JobID, v.Times, ev.Timestamp)
		}
	}
	// sameNumbers: the data table holds want, and shows each number.
	sameNumbers := func(what string, v detailView, want []float64) {
		t.Helper()
		if !slices.Equal(v.Data, want) {
			t.Errorf("%s: data table %v, want %v", what, v.Data, want)
		}
		for i, text := range v.Texts {
			n, err := strconv.ParseFloat(strings.ReplaceAll(text, ",", ""), 64)
			if err != nil || i >= len(want) || math.Abs(n-want[i]) > 1e-4*max(1, math.Abs(want[i])) {
				t.Errorf("%s: data cell %d shows %q, want %v", what, i, text, want[i])
				break
			}
		}
	}
	oneChart := func(what string, v detailView) {
		t.Helper()
		if len(v.Charts) != 1 || len(v.Charts[0]) < 20 {
			t.Errorf("%s: charts with role=img and their labels: %q, want one, summed up", what, v.Charts)
		}
	}

	// Growth, with the mouse on its link; Back closes it.
	ev := final[growth]
	v := open(growth, chromedp.Click(chromedp.CSS(linkOf(growth))))
	oneChart("growth", v)
	if v.Points != len(ev.Data.Result.Values) || v.Points != 13 {
		t.Errorf("growth: %d points drawn, want %d", v.Points, len(ev.Data.Result.Values))
	}
	sameNumbers("growth", v, ev.Data.Result.Values)
	timeline(v, ev)
	page.ScreenshotOf("growth", "#detail")
	page.Back()
	page.WaitFor("Back to close the detail", 10*time.Second, `!document.getElementById('detail').open && location.hash === ''`)

	// Matrix, with the keyboard: Enter on its link; Esc closes it.
	ev = final[matrix]
	r := ev.Data.Result
	v = open(matrix, chromedp.Focus(chromedp.CSS(linkOf(matrix))), chromedp.KeyEvent(kb.Enter))
	oneChart("matrix", v)
	if v.Cells != r.Rows*r.Cols || v.Cells != 48 {
		t.Errorf("matrix: %d cells drawn, want %d×%d", v.Cells, r.Rows, r.Cols)
	}
	sameNumbers("matrix", v, slices.Concat(r.Grid...))
	legend := func(i int, prefix string, want float64) bool {
		n, err := strconv.ParseFloat(strings.TrimPrefix(v.Legend[i], prefix), 64)
		return err == nil && strings.HasPrefix(v.Legend[i], prefix) && math.Abs(n-want) <= 0.005
	}
	if len(v.Legend) != 2 || !legend(0, "min ", r.Min) || !legend(1, "max ", r.Max) {
		t.Errorf("matrix: legend %q, want min %.2f and max %.2f", v.Legend, r.Min, r.Max)
	}
	timeline(v, ev)
	page.ScreenshotOf("matrix", "#detail")
	closeWith(matrix, chromedp.KeyEvent(kb.Escape))

	// Probability, with a click elsewhere on its row; the close button.
	ev = final[prob]
	r = ev.Data.Result
	v = open(prob, chromedp.Click(chromedp.CSS(fmt.Sprintf(`#rows tr[data-job=%q] td[data-label="Type"]`, prob))))
	oneChart("probability", v)
	if math.Abs(v.Gauge-r.Probability) > 1e-4 {
		t.Errorf("probability: the gauge is filled to %v, want %v", v.Gauge, r.Probability)
	}
	sameNumbers("probability", v, []float64{r.Probability, r.CI95[0], r.CI95[1], float64(r.Hits), float64(r.Trials), r.Analytic})
	timeline(v, ev)
	page.ScreenshotOf("probability", "#detail")
	closeWith(prob, chromedp.Click(chromedp.ID("detail-close")))

	// The failed job, with Space on its link: its error, no chart.
	ev = final[failed]
	v = open(failed, chromedp.Focus(chromedp.CSS(linkOf(failed))), chromedp.KeyEvent(" "))
	if v.Error != ev.Data.Error || !strings.Contains(v.Error, "years: 500") {
		t.Errorf("failed: error shown %q, want %q", v.Error, ev.Data.Error)
	}
	if len(v.Charts) != 0 {
		t.Errorf("failed: charts %q, want none", v.Charts)
	}
	timeline(v, ev)
	page.ScreenshotOf("failed", "#detail")
	closeWith(failed, chromedp.KeyEvent(kb.Escape))

	// The publisher's events: markup shown as text; a result of the wrong
	// shape is said so, not drawn; the page saw only their last status.
	v = open("evil-1", chromedp.Click(chromedp.CSS(linkOf("evil-1"))))
	if v.Error != `<img src=x onerror="window.pwned=1">bad` || v.Imgs != 0 || browser.Eval[bool](page, `'pwned' in window`) {
		t.Errorf("an error that is markup: shown %q, %d img elements in the detail, pwned %v", v.Error, v.Imgs, browser.Eval[bool](page, `'pwned' in window`))
	}
	if !slices.Equal(v.Timeline, []string{"queued", "started", "failed"}) || !slices.Equal(v.Seen, []string{"no", "no", "yes"}) || !strings.Contains(v.Note, "first saw") {
		t.Errorf("evil-1: timeline %v seen %v (%q): want only failed seen, and said so", v.Timeline, v.Seen, v.Note)
	}
	closeWith("evil-1", chromedp.KeyEvent(kb.Escape))
	v = open("odd-1", chromedp.Click(chromedp.CSS(linkOf("odd-1"))))
	if len(v.Charts) != 0 || !strings.Contains(v.Notice, "cannot be drawn") {
		t.Errorf("a growth result without its values: charts %q, notice %q", v.Charts, v.Notice)
	}
	closeWith("odd-1", chromedp.KeyEvent(kb.Escape))

	// A link to a job's detail: it opens once the snapshot has the job, and
	// says the page saw only its last status.
	page.Do(chromedp.Navigate(h.URL("/?linked#job=" + prob)))
	page.WaitFor("the linked detail", 15*time.Second, fmt.Sprintf(
		`(d => d.open && d.dataset.job === %q && d.dataset.status === 'completed')(document.getElementById('detail'))`, prob))
	v = browser.Eval[detailView](page, detailJS)
	if !slices.Equal(v.Seen, []string{"no", "no", "yes"}) || !strings.Contains(v.Note, "already completed") || math.Abs(v.Gauge-final[prob].Data.Result.Probability) > 1e-4 {
		t.Errorf("linked detail: timeline seen %v (%q), gauge %v", v.Seen, v.Note, v.Gauge)
	}
	closeWith(prob, chromedp.Click(chromedp.ID("detail-close")))
	if search := browser.Eval[string](page, `location.search`); search != "?linked" {
		t.Errorf("closing a linked detail left the URL's query %q", search)
	}

	// On a phone: the detail takes the screen's width, and nothing in it
	// scrolls sideways but its data tables.
	page.Do(chromedp.EmulateViewport(375, 740, chromedp.EmulateScale(2), chromedp.EmulateMobile))
	open(matrix, chromedp.Click(chromedp.CSS(linkOf(matrix))))
	fit := browser.Eval[map[string]float64](page, `(() => {
		const d = document.getElementById('detail'), r = d.getBoundingClientRect();
		const inside = [...d.querySelectorAll('*')].filter(e => !e.closest('.table-scroll, pre') && e.checkVisibility());
		return {left: r.left, right: r.right, scroll: d.scrollWidth, client: d.clientWidth, page: document.documentElement.scrollWidth,
			widest: Math.max(...inside.map(e => e.getBoundingClientRect().right)), svg: d.querySelector('svg').getBoundingClientRect().width};
	})()`)
	if fit["left"] < 0 || fit["right"] > 375 || fit["scroll"] > fit["client"] || fit["widest"] > 375.5 || fit["page"] > 375 || fit["svg"] < 300 {
		t.Errorf("on a 375px phone the detail does not fit: %v", fit)
	}
	page.ScreenshotOf("phone-matrix", "#detail")
	closeWith(matrix, chromedp.KeyEvent(kb.Escape))
	t.Logf("screenshots in %s", browser.ArtifactDir(t))
}

// detailJobEvent is a job's final event as GET /api/jobs gives it, with the
// result of any kind.
type detailJobEvent struct {
	JobID, Status, Timestamp string
	Data                     struct {
		Error  string
		Result struct {
			Values      []float64
			Rows, Cols  int
			Min, Max    float64
			Grid        [][]float64
			Probability float64
			CI95        [2]float64 `json:"ci95"`
			Hits        int
			Trials      int
			Analytic    float64
		}
	}
}

// detailEvent is a JobEvent with the given data, timestamped now.
func detailEvent(t *testing.T, typ, jobID, status string, data map[string]any) string {
	t.Helper()
	b, err := json.Marshal(map[string]any{"type": typ, "jobId": jobID, "status": status,
		"timestamp": time.Now().UTC().Format(time.RFC3339Nano), "data": data})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// detailView is what the open detail shows.
type detailView struct {
	Charts         []string  // the aria-label of each role="img"
	Points, Cells  int       // growth points, heat map cells drawn
	Gauge          float64   // how far the gauge is filled, 0 to 1; -1 without one
	Legend         []string  // the heat map's min and max
	Data           []float64 // the numbers of the data tables, as sent
	Texts          []string  // the same, as shown
	Error, Notice  string
	Note           string   // what the timeline says it does not know
	Timeline, Seen []string // each entry's status, and whether the page saw it
	Times          []string // the times of those it saw
	Imgs           int      // <img> elements: event data is never markup
}

const detailJS = `(() => {
	const d = document.getElementById('detail'), all = (s) => [...d.querySelectorAll(s)];
	const track = d.querySelector('svg .gauge-track'), fill = d.querySelector('svg .gauge-fill');
	return {
		Charts: all('[role="img"]').map(e => e.getAttribute('aria-label')),
		Points: all('svg .point').length, Cells: all('svg .cell').length,
		Gauge: track && fill ? fill.width.baseVal.value / track.width.baseVal.value : -1,
		Legend: all('svg .legend-min, svg .legend-max').map(e => e.textContent),
		Data: all('table.data data').map(e => Number(e.value)),
		Texts: all('table.data data').map(e => e.textContent),
		Error: d.querySelector('.job-error')?.textContent || '',
		Notice: all('.notice').map(e => e.textContent).join(' '),
		Note: all('.timeline-section .note').map(e => e.textContent).join(' '),
		Timeline: all('.timeline li').map(li => li.dataset.status),
		Seen: all('.timeline li').map(li => li.dataset.seen),
		Times: all('.timeline li time').map(t => t.dateTime),
		Imgs: all('img').length,
	};
})()`

// TestBrowserJobProgress: a running job's row shows a progress bar that
// moves as the job reports progress, and the job ends completed, its bar
// gone; the event log keeps one line for the job's progress, not one a step.
func TestBrowserJobProgress(t *testing.T) {
	b := browser.New(t)
	h := startHub(t, "127.0.0.1:0", nil)
	page := h.dashboard(b, "dashboard")

	resp, body := hubtest.Request(t, http.MethodPost, h.URL("/api/jobs"), "dev:alice",
		[]byte(`{"type":"growth","assetId":"a1","params":{"delayMs":3000}}`), "Content-Type", "application/json")
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("submit: %d %s", resp.StatusCode, body)
	}
	var submitted struct{ JobID string }
	if err := json.Unmarshal([]byte(body), &submitted); err != nil {
		t.Fatal(err)
	}
	bar := fmt.Sprintf(`document.querySelector('#rows tr[data-job=%q] progress')`, submitted.JobID)
	page.WaitFor("the job's progress bar", 10*time.Second, bar+` !== null`)
	first := browser.Eval[float64](page, bar+`.value`)
	page.WaitFor("the bar to move", 10*time.Second, fmt.Sprintf(`(%s?.value ?? -1) > %v`, bar, first))
	if label := browser.Eval[string](page, bar+`.getAttribute('aria-label')`); !strings.HasSuffix(label, "%: working") {
		t.Errorf("the bar's label %q: want its percentage and the job's message", label)
	}
	page.WaitFor("the job to complete", 20*time.Second,
		fmt.Sprintf(`document.querySelector('#rows tr[data-job=%q]')?.dataset.status === 'completed'`, submitted.JobID))
	if browser.Eval[bool](page, bar+` !== null`) {
		t.Error("a completed job still shows a progress bar")
	}
	var lines []string
	for _, e := range page.ShownEvents() {
		if e.Job == submitted.JobID {
			lines = append(lines, e.Status)
		}
	}
	if want := []string{"queued", "started", "started", "completed"}; !slices.Equal(lines, want) {
		t.Errorf("event log lines for the job %v, want %v: queued, started, one line of progress, completed", lines, want)
	}
}
