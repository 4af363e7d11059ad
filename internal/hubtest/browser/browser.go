package browser

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/finexbot/eventhub/internal/hubtest"
)

// stepTimeout bounds one step in a page: an action, an evaluation, a
// screenshot.
const stepTimeout = 30 * time.Second

// chromium finds the browser (hubtest.Tool: skips without it, fails in CI).
func chromium(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("browser test: starts Chromium")
	}
	return hubtest.Tool(t, "chromium")
}

// Browser is one headless Chromium with a fresh profile, closed when the
// test ends. Its first tab stays blank: closing it would close the browser.
type Browser struct {
	t   *testing.T
	ctx context.Context
}

// New starts a browser for the test.
func New(t *testing.T) *Browser {
	t.Helper()
	path := chromium(t)
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
	return &Browser{t: t, ctx: bctx}
}

// Tab is one page of the browser. Its JavaScript exceptions and CSP
// violations (and requests answered 404) fail the test; its console is
// printed when the test fails.
type Tab struct {
	Name string // names its screenshots and its lines in failure messages

	t     *testing.T
	ctx   context.Context
	close context.CancelFunc

	mu       sync.Mutex // guards console and problems, which listen appends to
	console  []string
	problems []string
}

// NewTab opens a blank tab.
func (b *Browser) NewTab(name string) *Tab {
	b.t.Helper()
	tb := &Tab{Name: name, t: b.t}
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

// Close closes the tab, as a user would.
func (tb *Tab) Close() { tb.close() }

// listen runs on chromedp's reading goroutine: it only records.
func (tb *Tab) listen(ev any) {
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

// Do runs actions in the page, failing the test if one fails or they take
// more than 30s.
func (tb *Tab) Do(steps ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		tb.t.Fatalf("tab %s: %v", tb.Name, err)
	}
}

// Eval evaluates a JavaScript expression in the page and returns its value.
func Eval[T any](tb *Tab, expr string) T {
	tb.t.Helper()
	v, err := eval[T](tb, expr)
	if err != nil {
		tb.t.Fatalf("tab %s: eval %s: %v", tb.Name, expr, err)
	}
	return v
}

func eval[T any](tb *Tab, expr string) (T, error) {
	ctx, cancel := context.WithTimeout(tb.ctx, stepTimeout)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[T](expr))
}

// WaitFor polls the JavaScript condition until it is true, or fails the
// test after d with a screenshot and what the dashboard shows.
func (tb *Tab) WaitFor(what string, d time.Duration, cond string) {
	tb.t.Helper()
	if !hubtest.Poll(d, func() bool { return Eval[bool](tb, "!!("+cond+")") }) {
		path := tb.Screenshot("timeout")
		state, err := eval[ConnState](tb, stateJS)
		events, err2 := eval[[]Shown](tb, shownJS)
		tb.t.Fatalf("tab %s: timed out after %v waiting for %s\nstate: %+v (%v)\nevents shown: %v (%v)\nscreenshot: %s",
			tb.Name, d, what, state, err, events, err2, path)
	}
}

// Screenshot saves the whole page as <artifacts>/<tab>-<name>.png and
// returns its path ("" if it could not be taken).
func (tb *Tab) Screenshot(name string) string {
	tb.t.Helper()
	return tb.save(name, chromedp.FullScreenshot(100))
}

// ScreenshotOf saves the first element that matches the CSS selector sel,
// as Screenshot does the page.
func (tb *Tab) ScreenshotOf(name, sel string) string {
	tb.t.Helper()
	return tb.save(name, chromedp.Screenshot(chromedp.CSS(sel)))
}

func (tb *Tab) save(name string, shot chromedp.Action[[]byte]) string {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, stepTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, shot)
	if err != nil {
		tb.t.Errorf("screenshot %s: %v", name, err)
		return ""
	}
	path := filepath.Join(ArtifactDir(tb.t), tb.Name+"-"+name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		tb.t.Fatal(err)
	}
	tb.t.Logf("screenshot: %s", path)
	return path
}

// ArtifactDir is where the test's screenshots go: $EVENTHUB_ARTIFACTS/<test
// name> when that is set (kept), else the test's artifact directory (kept
// under -artifacts, else removed when the test ends).
func ArtifactDir(t *testing.T) string {
	t.Helper()
	root := os.Getenv("EVENTHUB_ARTIFACTS")
	if root == "" {
		return t.ArtifactDir()
	}
	dir := filepath.Join(root, strings.NewReplacer("/", "__", `\`, "__", ":", "_").Replace(t.Name()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("EVENTHUB_ARTIFACTS: %v", err)
	}
	return dir
}

// SetCookie sets a cookie for url's origin, as a site's sign-in would
// (SameSite=Lax).
func (tb *Tab) SetCookie(url, name, value string) {
	tb.t.Helper()
	tb.Do(chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, network.SetCookie, network.SetCookieParams{
			Name: name, Value: value, URL: url, SameSite: network.CookieSameSiteLax,
		})
		return err
	}))
}

// Back goes back one entry in the tab's history, as the browser's Back
// button does. It does not wait for a load: going back within the page
// (to another #hash) loads nothing.
func (tb *Tab) Back() {
	tb.t.Helper()
	tb.Do(chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		h, err := cdp.Call(ctx, t, page.GetNavigationHistory, cdp.Empty{})
		if err != nil {
			return err
		}
		if h.CurrentIndex < 1 || int(h.CurrentIndex) >= len(h.Entries) {
			return fmt.Errorf("back: at history entry %d of %d", h.CurrentIndex, len(h.Entries))
		}
		_, err = cdp.Call(ctx, t, page.NavigateToHistoryEntry, page.NavigateToHistoryEntryParams{EntryID: h.Entries[h.CurrentIndex-1].ID})
		return err
	}))
}

// ---- what the dashboard shows ----

// ConnState is what the dashboard shows of its connection.
type ConnState struct {
	Status, Role, Text, LastID string
	Retry                      bool // the "Retry now" button is shown
}

const stateJS = `(() => {
	const c = document.getElementById('conn');
	return {
		Status: c.dataset.status || '', Role: c.dataset.role || '',
		Text: (document.getElementById('conn-status').textContent + ' ' + document.getElementById('conn-detail').textContent).trim(),
		LastID: document.getElementById('last-id').textContent,
		Retry: !document.getElementById('retry').hidden,
	};
})()`

// State is the dashboard's connection state.
func (tb *Tab) State() ConnState { return Eval[ConnState](tb, stateJS) }

// Shown is one event as the dashboard's event log shows it.
type Shown struct{ ID, Job, Status string }

const shownJS = `[...document.querySelectorAll('#log li[data-kind="event"]')].reverse()
	.map(li => ({ID: li.dataset.id, Job: li.dataset.job, Status: li.dataset.status}))`

// ShownEvents is the dashboard's event log, oldest first.
func (tb *Tab) ShownEvents() []Shown { return Eval[[]Shown](tb, shownJS) }

// ShownIDs is the ids of the events shown for jobs with the prefix, oldest
// first, a repeated id repeated.
func (tb *Tab) ShownIDs(prefix string) []uint64 {
	tb.t.Helper()
	var ids []uint64
	for _, e := range tb.ShownEvents() {
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

// WaitLive waits until the dashboard shows its connection live.
func (tb *Tab) WaitLive(d time.Duration) {
	tb.t.Helper()
	tb.WaitFor("the page to be live", d, `document.getElementById('conn').dataset.status === 'live'`)
}
