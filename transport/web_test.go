package transport

import (
	"bytes"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/finexbot/eventhub/actors"
	"github.com/finexbot/eventhub/authz"
	"github.com/finexbot/eventhub/internal/hubtest"
)

// TestClientLibraryDocCopy: docs/examples/sse-client.js is the library the
// hub serves, byte for byte (it is a link to it, not a copy).
func TestClientLibraryDocCopy(t *testing.T) {
	doc, err := os.ReadFile("../docs/examples/sse-client.js")
	if err != nil {
		t.Fatal(err)
	}
	served, err := fs.ReadFile(webFiles, "web/eventhub-client.js")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(doc, served) {
		t.Fatal("docs/examples/sse-client.js differs from transport/web/eventhub-client.js: " +
			"it should be a link: ln -sf ../../transport/web/eventhub-client.js docs/examples/sse-client.js")
	}
}

// TestClientLibraryBuiltFromSource: the client library the hub serves is
// what its one source, clients/js/src/index.ts, compiles to, byte for
// byte: it is committed so that building the hub never needs Node, and
// this test (with Node) keeps it from drifting from the source. It
// installs the package's locked devDependencies first if they are not.
func TestClientLibraryBuiltFromSource(t *testing.T) {
	t.Parallel()
	node := hubtest.Tool(t, "node")
	pkg := filepath.Join("..", "clients", "js")
	tsc := filepath.Join("node_modules", "typescript", "bin", "tsc") // in pkg
	if _, err := os.Stat(filepath.Join(pkg, tsc)); err != nil {
		npm := hubtest.Tool(t, "npm")
		cmd := exec.Command(npm, "ci", "--no-audit", "--no-fund", "--loglevel=error")
		cmd.Dir = pkg
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("npm ci in clients/js: %v\n%s", err, out)
		}
	}
	outDir := t.TempDir()
	cmd := exec.Command(node, tsc, "-p", "tsconfig.json", "--outDir", outDir)
	cmd.Dir = pkg
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tsc -p clients/js/tsconfig.json: %v\n%s", err, out)
	}
	built, err := os.ReadFile(filepath.Join(outDir, "index.js"))
	if err != nil {
		t.Fatal(err)
	}
	served, err := fs.ReadFile(webFiles, "web/eventhub-client.js")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(built, served) {
		t.Fatal("transport/web/eventhub-client.js is not what clients/js/src/index.ts compiles to: " +
			"edit the TypeScript source, then run `make client` to build and copy it")
	}
}

// TestWebFilesAllServed: every embedded file is served somewhere, and index.html
// names every static file with its version.
func TestWebFilesAllServed(t *testing.T) {
	entries, err := fs.ReadDir(webFiles, "web")
	if err != nil {
		t.Fatal(err)
	}
	served := map[string]bool{"index.html": true, "eventhub-client.js": true}
	for _, name := range staticNames {
		served[name] = true
	}
	for _, e := range entries {
		if !served[e.Name()] {
			t.Errorf("web/%s is embedded but not served: add it to staticNames", e.Name())
		}
	}
	for _, page := range []*webAsset{web.indexDev, web.indexSession} {
		if bytes.Contains(page.body, []byte("{{")) {
			t.Errorf("index.html keeps a placeholder: %s", regexp.MustCompile(`\{\{[^}]*\}\}`).Find(page.body))
		}
	}
	for name, a := range web.static {
		if m := regexp.MustCompile(`\{\{v:[^}]*\}\}`).Find(a.body); m != nil {
			t.Errorf("%s keeps a placeholder: %s (a static file may name only one listed before it)", name, m)
		}
	}
	if _, err := loadWeb(os.DirFS("testdata/nonexistent")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("loadWeb of a missing tree: %v", err)
	}
}

func TestWebAssets(t *testing.T) {
	dev := newTestServer(t, actors.Config{}, testPermissions)
	get := func(ts *testServer, path string, header ...string) (*http.Response, string) {
		t.Helper()
		return hubtest.Request(t, "GET", ts.url(path), "", nil, header...)
	}

	resp, page := get(dev, "/")
	refs := regexp.MustCompile(`(?:src|href)="([^"]*)"`).FindAllStringSubmatch(page, -1)
	if len(refs) < 3 {
		t.Fatalf("index.html references %d assets, want at least 3: %s", len(refs), page)
	}
	paths := []string{"/eventhub-client.js"}
	for _, m := range refs {
		ref := m[1]
		if strings.HasPrefix(ref, "#") {
			continue
		}
		if !strings.HasPrefix(ref, "/static/") || strings.Contains(ref, "//static") {
			t.Errorf("index.html loads %q: want only the hub's own /static/ files", ref)
			continue
		}
		paths = append(paths, ref)
	}
	// The CSP allows no inline code: the page must not need any.
	if m := regexp.MustCompile(`<script(?:[^>]*\bsrc=)?[^>]*>[^<]|<style|\sstyle=|\son[a-z]+=`).FindString(page); m != "" {
		t.Errorf("index.html has inline script or style (%q): the CSP blocks it", m)
	}
	if !strings.Contains(page, `<meta name="eventhub-auth" content="dev">`) {
		t.Error("with dev auth, the page should say so (it shows the user picker)")
	}
	checkWebHeaders(t, "/", resp, "text/html; charset=utf-8", "no-cache")

	for _, p := range paths {
		t.Run(p, func(t *testing.T) {
			resp, body := get(dev, p)
			if resp.StatusCode != 200 || body == "" {
				t.Fatalf("GET %s: %d, %d bytes", p, resp.StatusCode, len(body))
			}
			wantType, wantCache := "text/javascript; charset=utf-8", "public, max-age=31536000, immutable"
			switch {
			case p == "/eventhub-client.js":
				wantCache = "no-cache"
			case strings.Contains(p, ".css"):
				wantType = "text/css; charset=utf-8"
			case strings.Contains(p, ".svg"):
				wantType = "image/svg+xml"
			}
			checkWebHeaders(t, p, resp, wantType, wantCache)
			// SVG's XML namespace is named with a URL (in an SVG file, and
			// in a script that draws SVG); it loads nothing.
			outside := regexp.MustCompile(`xmlns="http://www\.w3\.org/2000/svg"|'http://www\.w3\.org/2000/svg'`).ReplaceAllString(body, "")
			if strings.Contains(outside, "https://") || strings.Contains(outside, "http://") {
				t.Errorf("%s names an outside URL: the dashboard must work offline", p)
			}
			again, body2 := get(dev, p, "If-None-Match", resp.Header.Get("ETag"))
			if again.StatusCode != http.StatusNotModified || body2 != "" {
				t.Errorf("GET %s with its ETag: %d with %d bytes, want 304 and none", p, again.StatusCode, len(body2))
			}
			if got := again.Header.Get("ETag"); got != resp.Header.Get("ETag") {
				t.Errorf("304 ETag %q, want %q", got, resp.Header.Get("ETag"))
			}
		})
	}

	t.Run("stale or missing version", func(t *testing.T) {
		resp, _ := get(dev, "/static/app.js?v=0000")
		checkWebHeaders(t, "/static/app.js?v=0000", resp, "text/javascript; charset=utf-8", "no-cache")
		resp, _ = get(dev, "/static/app.js")
		checkWebHeaders(t, "/static/app.js", resp, "text/javascript; charset=utf-8", "no-cache")
	})
	t.Run("unknown static file", func(t *testing.T) {
		for _, p := range []string{"/static/index.html", "/static/nope.js", "/static/..%2fweb.go"} {
			if resp, _ := get(dev, p); resp.StatusCode != http.StatusNotFound {
				t.Errorf("GET %s: %d, want 404", p, resp.StatusCode)
			}
		}
	})
	t.Run("session auth", func(t *testing.T) {
		clerkLike := func(token string) (authz.Identity, error) {
			return authz.Identity{}, authz.ErrBadToken
		}
		ts := newTestServerAuth(t, actors.Config{}, testPermissions, clerkLike)
		_, page := get(ts, "/")
		if !strings.Contains(page, `<meta name="eventhub-auth" content="session">`) {
			t.Error("without dev auth, the page should rely on the session cookie")
		}
	})
}

func checkWebHeaders(t *testing.T, path string, resp *http.Response, contentType, cache string) {
	t.Helper()
	for k, want := range map[string]string{
		"Content-Type":            contentType,
		"Cache-Control":           cache,
		"Content-Security-Policy": webCSP,
		"X-Content-Type-Options":  "nosniff",
	} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("%s: %s %q, want %q", path, k, got, want)
		}
	}
	if !regexp.MustCompile(`^"[0-9a-f]{16}"$`).MatchString(resp.Header.Get("ETag")) {
		t.Errorf("%s: ETag %q", path, resp.Header.Get("ETag"))
	}
	if csp := resp.Header.Get("Content-Security-Policy"); strings.Contains(csp, "unsafe") || strings.Contains(csp, "*") || strings.Contains(csp, "http") {
		t.Errorf("%s: CSP %q allows more than the hub itself", path, csp)
	}
}
