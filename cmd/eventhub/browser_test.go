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
// `go test -run Browser -artifacts -outputdir DIR ./cmd/eventhub/` to keep them.

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
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
	page := b.NewTab("dashboard")
	page.Do(chromedp.Navigate(h.URL("/")))
	page.WaitLive(15 * time.Second)
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
		if e.Job == job {
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
	page := b.NewTab("restart")
	page.Do(chromedp.Navigate(h.URL("/")))
	page.WaitLive(15 * time.Second)
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
	page := b.NewTab("reset")
	page.Do(chromedp.Navigate(h.URL("/")))
	page.WaitLive(15 * time.Second)
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
	page := b.NewTab("carol")
	page.Do(chromedp.Navigate(h.URL("/")))
	page.WaitLive(15 * time.Second)
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
