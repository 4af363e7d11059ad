package transport

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"path"

	"github.com/valyala/fasthttp"
)

// The dashboard (GET /) and the browser client library
// (GET /eventhub-client.js) are static files embedded in the binary from
// web/: the hub needs no files beside it, and the page loads nothing from
// anywhere else, so it works offline and under a strict CSP. The client
// library is the build of the npm package in clients/js (its source is
// clients/js/src/index.ts), committed here by `make client` so that
// building the hub never needs Node; TestClientLibraryBuiltFromSource
// fails when the two differ.
//
// The page's own assets are served under /static/<name>?v=<content hash>:
// index.html names them with their hash, so a browser may keep them for a
// year and still never runs a stale one after an upgrade. index.html and the
// client library keep stable URLs (the library is imported by other pages):
// they are revalidated on each load, cheaply, with their ETag.
//
//go:embed web
var webFiles embed.FS

// webCSP lets the page load and connect to its own origin only: no inline
// script or style, no eval, no framing by other sites.
const webCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// webAsset is one file as served. Built once at start; read-only after.
type webAsset struct {
	body        []byte
	contentType string
	etag        string // strong: the content's hash, quoted
	version     string // the ?v= that makes a /static URL immutable
}

// webSite is every web file, built once at package init and read-only after,
// so handlers share it without locks.
type webSite struct {
	indexDev     *webAsset // the dashboard with its development user picker
	indexSession *webAsset // the dashboard relying on the site's __session cookie
	client       *webAsset // eventhub-client.js
	static       map[string]*webAsset
}

var web = mustLoadWeb(webFiles)

// staticNames are the files under /static/; index.html names each as
// {{v:<name>}} to get its version. A static file may name one listed before
// it the same way (a module importing another), so that its own version
// changes with what it imports.
var staticNames = []string{"charts.js", "app.js", "app.css", "favicon.svg"}

func mustLoadWeb(files fs.FS) *webSite {
	site, err := loadWeb(files)
	if err != nil {
		panic("BUG: transport: embedded web files: " + err.Error())
	}
	return site
}

func loadWeb(files fs.FS) (*webSite, error) {
	read := func(name string) (*webAsset, error) {
		body, err := fs.ReadFile(files, "web/"+name)
		if err != nil {
			return nil, err
		}
		return newWebAsset(name, body), nil
	}
	site := &webSite{static: map[string]*webAsset{}}
	var err error
	if site.client, err = read("eventhub-client.js"); err != nil {
		return nil, err
	}
	for i, name := range staticNames {
		body, err := fs.ReadFile(files, "web/"+name)
		if err != nil {
			return nil, err
		}
		for _, dep := range staticNames[:i] {
			body = bytes.ReplaceAll(body, []byte("{{v:"+dep+"}}"), []byte(site.static[dep].version))
		}
		site.static[name] = newWebAsset(name, body)
	}
	page, err := fs.ReadFile(files, "web/index.html")
	if err != nil {
		return nil, err
	}
	for _, name := range staticNames {
		ref := []byte("{{v:" + name + "}}")
		if !bytes.Contains(page, ref) {
			return nil, fmt.Errorf("index.html does not reference %s", ref)
		}
		page = bytes.ReplaceAll(page, ref, []byte(site.static[name].version))
	}
	auth := []byte("{{auth}}")
	if !bytes.Contains(page, auth) {
		return nil, fmt.Errorf("index.html has no %s", auth)
	}
	site.indexDev = newWebAsset("index.html", bytes.ReplaceAll(page, auth, []byte("dev")))
	site.indexSession = newWebAsset("index.html", bytes.ReplaceAll(page, auth, []byte("session")))
	return site, nil
}

func newWebAsset(name string, body []byte) *webAsset {
	sum := sha256.Sum256(body)
	version := hex.EncodeToString(sum[:8])
	return &webAsset{body: body, contentType: webContentType(name), etag: `"` + version + `"`, version: version}
}

func webContentType(name string) string {
	switch path.Ext(name) {
	case ".html":
		return "text/html; charset=utf-8"
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".svg":
		return "image/svg+xml"
	}
	panic("BUG: transport: no content type for web file " + name)
}

// webIndex is GET /: the dashboard. With development auth it offers a user
// picker; otherwise it relies on the site's __session cookie.
func (s *Server) webIndex(ctx *fasthttp.RequestCtx) {
	page := web.indexSession
	if s.devAuth() {
		page = web.indexDev
	}
	serveWebAsset(ctx, page, "no-cache")
}

// webClient is GET /eventhub-client.js, the client library.
func (s *Server) webClient(ctx *fasthttp.RequestCtx) {
	serveWebAsset(ctx, web.client, "no-cache")
}

// webStatic is GET /static/{name}: the dashboard's script, style and icon.
func (s *Server) webStatic(ctx *fasthttp.RequestCtx) {
	name, _ := ctx.UserValue("name").(string)
	a := web.static[name]
	if a == nil {
		writeError(ctx, fasthttp.StatusNotFound, "not found")
		return
	}
	cache := "no-cache"
	if string(ctx.QueryArgs().Peek("v")) == a.version {
		cache = "public, max-age=31536000, immutable"
	}
	serveWebAsset(ctx, a, cache)
}

// devAuth reports whether this hub takes development tokens, by asking its
// authenticator: a dev token passes dev auth and is malformed to Clerk's
// (refused before any key lookup, so without network).
func (s *Server) devAuth() bool {
	_, err := s.cfg.Authenticate("dev:dashboard-probe")
	return err == nil
}

func serveWebAsset(ctx *fasthttp.RequestCtx, a *webAsset, cacheControl string) {
	h := &ctx.Response.Header
	h.Set("Content-Security-Policy", webCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY") // frame-ancestors, for browsers without CSP 2
	h.Set(fasthttp.HeaderCacheControl, cacheControl)
	h.Set(fasthttp.HeaderETag, a.etag)
	if etagMatch(ctx.Request.Header.Peek(fasthttp.HeaderIfNoneMatch), a.etag) {
		ctx.SetStatusCode(fasthttp.StatusNotModified)
		return
	}
	ctx.SetStatusCode(fasthttp.StatusOK)
	ctx.SetContentType(a.contentType)
	ctx.SetBody(a.body)
}

// etagMatch reports whether an If-None-Match header names etag: "*", or a
// list that holds it (weak or not: If-None-Match compares weakly).
func etagMatch(header []byte, etag string) bool {
	for len(header) > 0 {
		var tag []byte
		tag, header, _ = bytes.Cut(header, []byte(","))
		tag = bytes.TrimSpace(tag)
		tag = bytes.TrimPrefix(tag, []byte("W/"))
		if string(tag) == "*" || string(tag) == etag {
			return true
		}
	}
	return false
}
