package layering

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/build/constraint"
	"go/parser"
	"go/token"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// module is eventhub's module path.
const module = "github.com/finexbot/eventhub"

// anything, as the only entry of a rule's outside list, allows every module.
const anything = "*"

// rule is what one package may import besides the standard library.
type rule struct {
	// ours are eventhub's packages, relative to the module ("jobs",
	// "internal/eventlog").
	ours []string
	// outside are module path prefixes of other modules: an import path
	// matches when it is the prefix or continues it with "/".
	outside []string
}

// allowed is the layering of eventhub: every package of the module, and
// what it may import. docs/architecture.md holds the same table (see
// TestDocumentHasTheSameTable). A package that does not exist yet is not
// an error; a package that is not here is.
var allowed = map[string]rule{
	"jobs":              {outside: []string{"github.com/asynkron/protoactor-go", "github.com/prometheus"}},
	"authz":             {ours: []string{"jobs"}, outside: []string{"github.com/clerk/clerk-sdk-go", "github.com/go-jose/go-jose"}},
	"internal/eventlog": {ours: []string{"jobs"}},
	"internal/natsjs":   {ours: []string{"internal/eventlog", "jobs"}, outside: []string{"github.com/nats-io", "github.com/prometheus"}},
	"internal/disklog":  {ours: []string{"internal/eventlog", "internal/ratelog", "jobs"}, outside: []string{"github.com/prometheus", "golang.org/x/sys"}},
	"internal/sock":     {outside: []string{"golang.org/x/sys"}},
	"internal/ratelog":  {},
	"actors": {ours: []string{"authz", "internal/eventlog", "internal/ratelog", "internal/sock", "jobs"},
		outside: []string{"github.com/asynkron/protoactor-go", "github.com/orcaman/concurrent-map", "github.com/prometheus"}},
	"transport": {ours: []string{"actors", "authz", "internal/ratelog", "jobs"},
		outside: []string{"github.com/fasthttp/router", "github.com/prometheus", "github.com/valyala/fasthttp"}},
	"cmd/eventhub": {ours: []string{"actors", "authz", "internal/disklog", "internal/eventlog", "internal/natsjs", "internal/sock", "jobs", "transport"},
		outside: []string{anything}},
	"internal/hubtest":          {outside: []string{"github.com/nats-io", "github.com/prometheus"}},
	"internal/hubtest/browser":  {ours: []string{"internal/hubtest"}, outside: []string{"github.com/chromedp"}},
	"internal/natsjs/natstest":  {ours: []string{"internal/hubtest", "internal/natsjs"}, outside: []string{"github.com/nats-io"}},
	"internal/eventlog/logtest": {ours: []string{"internal/eventlog", "jobs"}},
	"internal/clerktest":        {outside: []string{"github.com/go-jose/go-jose"}},
	"bench":                     {outside: []string{"golang.org/x/sys"}},
	"cmd/eventhub-bench":        {ours: []string{"bench"}},
	"deploy":                    {},
	"internal/layering":         {},
}

// testOnly are the test harnesses: any package's tests may import them
// besides what the package itself may.
var testOnly = []string{"internal/hubtest", "internal/hubtest/browser", "internal/natsjs/natstest", "internal/eventlog/logtest", "internal/clerktest"}

// testAssembly are the event logs a hub is assembled with: tests that
// build a hub in process give it one, as cmd/eventhub does.
var testAssembly = []string{"internal/disklog", "internal/eventlog", "internal/natsjs"}

// TestTableKeepsTheRules checks the table itself against the rules that
// docs/architecture.md states in words, so that widening an edge that
// breaks one fails here with the rule's name, not silently.
func TestTableKeepsTheRules(t *testing.T) {
	natsOK := map[string]bool{"internal/natsjs": true, "cmd/eventhub": true, "internal/hubtest": true, "internal/natsjs/natstest": true}
	for pkg, r := range allowed {
		if mayImportOutside(r, "github.com/nats-io/nats.go") && !natsOK[pkg] {
			t.Errorf("%s may import github.com/nats-io: only internal/natsjs, cmd/eventhub and the test harnesses internal/hubtest and internal/natsjs/natstest may", pkg)
		}
		for _, dep := range r.ours {
			if _, ok := allowed[dep]; !ok {
				t.Errorf("%s may import %s, which the table does not know", pkg, dep)
			}
			if dep == "bench" && pkg != "cmd/eventhub-bench" {
				t.Errorf("%s may import bench: only cmd/eventhub-bench may", pkg)
			}
			if slices.Contains(testOnly, dep) && !slices.Contains(testOnly, pkg) || strings.HasPrefix(dep, "cmd/") {
				t.Errorf("%s may import %s: no package imports a command or a test harness (tests may import %v)", pkg, dep, testOnly)
			}
		}
	}
	for _, pkg := range []string{"jobs", "internal/sock", "internal/hubtest", "bench"} {
		if len(allowed[pkg].ours) > 0 {
			t.Errorf("%s may import %v: it imports none of the server's packages", pkg, allowed[pkg].ours)
		}
	}
	if slices.Contains(allowed["actors"].ours, "internal/natsjs") {
		t.Error("actors may import internal/natsjs: the hub never knows which log it has")
	}
	for pkg, r := range allowed {
		if slices.Contains(r.ours, "transport") && pkg != "cmd/eventhub" {
			t.Errorf("%s may import transport: only cmd/eventhub may", pkg)
		}
	}
}

// TestDocumentHasTheSameTable checks that docs/architecture.md states the
// layering this test enforces.
func TestDocumentHasTheSameTable(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join(moduleRoot(t), "docs", "architecture.md"))
	if err != nil {
		t.Fatal(err)
	}
	inDoc, err := parseTable(doc)
	if err != nil {
		t.Fatalf("docs/architecture.md: %v", err)
	}
	for _, pkg := range slices.Sorted(maps.Keys(allowed)) {
		want := allowed[pkg]
		got, ok := inDoc[pkg]
		switch {
		case !ok:
			t.Errorf("docs/architecture.md: no row for %s (this test allows %s)", pkg, want)
		case !sameRule(got, want):
			t.Errorf("docs/architecture.md: %s may import %s; this test allows %s", pkg, got, want)
		}
	}
	for pkg := range inDoc {
		if _, ok := allowed[pkg]; !ok {
			t.Errorf("docs/architecture.md: row for %s, which this test does not know", pkg)
		}
	}
}

// TestImports checks every package's imports against the table: the
// code's own, and its tests' imports of our packages (tests may also
// import internal/hubtest and any outside module they need to play a
// client or a cluster).
func TestImports(t *testing.T) {
	for _, p := range listPackages(t) {
		pkg, ok := ours(p.ImportPath)
		if !ok {
			continue
		}
		if p.Error != nil {
			t.Errorf("%s: %s", pkg, p.Error.Err)
		}
		r, known := allowed[pkg]
		if !known {
			t.Errorf("%s is not in the layering table: add it to docs/architecture.md and to allowed in this test", pkg)
			continue
		}
		for _, imp := range p.Imports {
			if dep, isOurs := ours(imp); isOurs {
				if !slices.Contains(r.ours, dep) {
					t.Errorf("%s imports %s, which it may not (it may import %s)", pkg, dep, r)
				}
			} else if !standard(imp) && !mayImportOutside(r, imp) {
				t.Errorf("%s imports %s, which it may not (it may import %s)", pkg, imp, r)
			}
		}
		for _, imp := range slices.Concat(p.TestImports, p.XTestImports) {
			dep, isOurs := ours(imp)
			if isOurs && dep != pkg && !slices.Contains(r.ours, dep) && !slices.Contains(testOnly, dep) && !slices.Contains(testAssembly, dep) {
				t.Errorf("tests of %s import %s, which they may not (they may import %s, %v and %v)", pkg, dep, r, testOnly, testAssembly)
			}
		}
	}
}

// TestNATSStaysBehindNatsjs checks what a package pulls in, not only what
// it imports: a package whose table closure holds no package that may
// import NATS must not depend on NATS through an outside module either.
func TestNATSStaysBehindNatsjs(t *testing.T) {
	for _, p := range listPackages(t) {
		pkg, ok := ours(p.ImportPath)
		if !ok {
			continue
		}
		if _, known := allowed[pkg]; !known || closureMayImportNATS(pkg) {
			continue // unknown packages fail TestImports
		}
		for _, dep := range p.Deps {
			if dep == "github.com/nats-io" || strings.HasPrefix(dep, "github.com/nats-io/") {
				t.Errorf("%s depends on %s: only internal/natsjs (and cmd/eventhub, internal/hubtest) reach NATS", pkg, dep)
				break
			}
		}
	}
}

// TestSyscallOnlyInOSFiles checks that, outside internal/sock, a file built
// for every operating system neither imports unsafe nor calls into
// syscall: what differs by OS lives in files with an OS build constraint
// (a _linux.go name, or //go:build linux, !linux, unix…). Such a file may
// still name the few things syscall declares on every OS Go builds for:
// signals, errno values, and the Conn, RawConn, Errno and Signal types.
// The check covers the code that ships, not its tests.
func TestSyscallOnlyInOSFiles(t *testing.T) {
	fset := token.NewFileSet()
	for _, p := range listPackages(t) {
		pkg, ok := ours(p.ImportPath)
		if !ok || pkg == "internal/sock" {
			continue
		}
		for _, name := range slices.Concat(p.GoFiles, p.CgoFiles, p.IgnoredGoFiles) {
			if strings.HasSuffix(name, "_test.go") || !strings.HasSuffix(name, ".go") {
				continue
			}
			path := filepath.Join(p.Dir, name)
			f, err := parser.ParseFile(fset, path, nil, parser.ParseComments|parser.SkipObjectResolution)
			if err != nil {
				t.Errorf("%s: %v", path, err)
				continue
			}
			if osSpecific(name, f) {
				continue
			}
			for _, bad := range portableViolations(fset, f) {
				t.Errorf("%s/%s:%s (move it to a file built for one OS, or to internal/sock)", pkg, name, bad)
			}
		}
	}
}

// portableSyscall are the names of package syscall that every OS Go builds
// for declares, so a portable file may use them.
var portableSyscall = map[string]bool{
	"Conn": true, "RawConn": true, "Errno": true, "Signal": true,
	"SIGHUP": true, "SIGINT": true, "SIGKILL": true, "SIGQUIT": true, "SIGTERM": true, "SIGPIPE": true,
	"EADDRINUSE": true, "EADDRNOTAVAIL": true, "EAGAIN": true, "ECONNABORTED": true, "ECONNREFUSED": true,
	"ECONNRESET": true, "EINTR": true, "EINVAL": true, "EMFILE": true, "ENFILE": true, "ENOBUFS": true,
	"ENOMEM": true, "EPIPE": true, "ETIMEDOUT": true, "EWOULDBLOCK": true,
}

// portableViolations lists the uses of unsafe and of OS-specific syscall
// names in f.
func portableViolations(fset *token.FileSet, f *ast.File) []string {
	var out []string
	sys := ""
	for _, imp := range f.Imports {
		path, _ := strconv.Unquote(imp.Path.Value)
		switch path {
		case "unsafe":
			out = append(out, at(fset, imp.Pos())+": imports unsafe")
		case "syscall":
			sys = "syscall"
			if imp.Name != nil {
				sys = imp.Name.Name
			}
			if sys == "." || sys == "_" {
				out = append(out, at(fset, imp.Pos())+": imports syscall as "+sys)
				sys = ""
			}
		}
	}
	if sys == "" {
		return out
	}
	ast.Inspect(f, func(n ast.Node) bool {
		sel, ok := n.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		if x, ok := sel.X.(*ast.Ident); ok && x.Name == sys && !portableSyscall[sel.Sel.Name] {
			out = append(out, at(fset, sel.Pos())+": uses syscall."+sel.Sel.Name)
		}
		return true
	})
	return out
}

// at is pos as "line:col".
func at(fset *token.FileSet, pos token.Pos) string {
	p := fset.Position(pos)
	return strconv.Itoa(p.Line) + ":" + strconv.Itoa(p.Column)
}

// knownOS are the GOOS values (and "unix") a build constraint or a file
// name may select.
var knownOS = map[string]bool{
	"aix": true, "android": true, "darwin": true, "dragonfly": true, "freebsd": true, "hurd": true,
	"illumos": true, "ios": true, "js": true, "linux": true, "nacl": true, "netbsd": true, "openbsd": true,
	"plan9": true, "solaris": true, "wasip1": true, "windows": true, "zos": true, "unix": true,
}

// knownArch are the GOARCH values a file name may end with.
var knownArch = map[string]bool{
	"386": true, "amd64": true, "arm": true, "arm64": true, "loong64": true, "mips": true, "mipsle": true,
	"mips64": true, "mips64le": true, "ppc64": true, "ppc64le": true, "riscv64": true, "s390x": true, "wasm": true,
}

// osSpecific reports whether a file is built for some operating systems
// only: by its name (x_linux.go, x_linux_amd64.go) or by a //go:build line
// that names an OS, negated or not.
func osSpecific(name string, f *ast.File) bool {
	// As go/build reads a name: *_GOOS, *_GOARCH or *_GOOS_GOARCH ("unix"
	// is a build tag only, never part of a name).
	parts := strings.Split(strings.TrimSuffix(name, ".go"), "_")
	goos := func(s string) bool { return knownOS[s] && s != "unix" }
	if n := len(parts); n >= 2 && (goos(parts[n-1]) || n >= 3 && goos(parts[n-2]) && knownArch[parts[n-1]]) {
		return true
	}
	for _, group := range f.Comments {
		if group.Pos() >= f.Package {
			break
		}
		for _, c := range group.List {
			if !constraint.IsGoBuild(c.Text) {
				continue
			}
			expr, err := constraint.Parse(c.Text)
			if err != nil {
				continue
			}
			named := false
			expr.Eval(func(tag string) bool {
				named = named || knownOS[tag]
				return true
			})
			if named {
				return true
			}
		}
	}
	return false
}

// listedPackage is what TestImports and the others read of "go list -json".
type listedPackage struct {
	ImportPath     string
	Dir            string
	GoFiles        []string
	CgoFiles       []string
	IgnoredGoFiles []string
	Imports        []string
	TestImports    []string
	XTestImports   []string
	Deps           []string
	Error          *struct{ Err string }
}

// listed is the output of "go list -e -json ./...", which takes seconds:
// it is run once, for all the tests that read it, and never changed.
var listed struct {
	once sync.Once
	pkgs []listedPackage
	err  error
}

// listPackages runs "go list -e -json ./..." at the module root, the first
// time a test asks, and fails the test if that failed.
func listPackages(t *testing.T) []listedPackage {
	t.Helper()
	root := moduleRoot(t)
	listed.once.Do(func() { listed.pkgs, listed.err = goList(root) })
	if listed.err != nil {
		t.Fatal(listed.err)
	}
	return listed.pkgs
}

func goList(root string) ([]listedPackage, error) {
	cmd := exec.Command("go", "list", "-e", "-json", "./...")
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list: %v\n%s", err, stderr.Bytes())
	}
	var pkgs []listedPackage
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p listedPackage
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			return nil, fmt.Errorf("go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) == 0 {
		return nil, errors.New("go list found no packages")
	}
	return pkgs, nil
}

// moduleRoot is the directory of eventhub's go.mod.
func moduleRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		t.Fatal("not inside a module")
	}
	return filepath.Dir(gomod)
}

// ours returns an import path of this module relative to the module.
func ours(path string) (string, bool) {
	return strings.CutPrefix(path, module+"/")
}

// standard reports whether path is in the standard library: its first
// element has no dot. (C is cgo's pseudo-package.)
func standard(path string) bool {
	first, _, _ := strings.Cut(path, "/")
	return !strings.Contains(first, ".")
}

func mayImportOutside(r rule, path string) bool {
	for _, prefix := range r.outside {
		if prefix == anything || path == prefix || strings.HasPrefix(path, prefix+"/") {
			return true
		}
	}
	return false
}

// closureMayImportNATS reports whether pkg, or a package of ours it may
// reach through the table, may import NATS.
func closureMayImportNATS(pkg string) bool {
	seen := map[string]bool{}
	var walk func(string) bool
	walk = func(p string) bool {
		if seen[p] {
			return false
		}
		seen[p] = true
		r := allowed[p]
		if mayImportOutside(r, "github.com/nats-io/nats.go") {
			return true
		}
		return slices.ContainsFunc(r.ours, walk)
	}
	return walk(pkg)
}

func (r rule) String() string {
	ours, outside := "nothing of ours", "nothing outside the standard library"
	if len(r.ours) > 0 {
		ours = strings.Join(r.ours, ", ")
	}
	if len(r.outside) > 0 {
		outside = strings.Join(r.outside, ", ")
	}
	return "[" + ours + "; " + outside + "]"
}

func sameRule(a, b rule) bool {
	norm := func(s []string) []string { return slices.Compact(slices.Sorted(slices.Values(s))) }
	return slices.Equal(norm(a.ours), norm(b.ours)) && slices.Equal(norm(a.outside), norm(b.outside))
}

// The table in docs/architecture.md sits between these markers, one row a
// package: | `pkg` | `ours`, … or — | `module prefix`, …, `*` or — |.
const (
	tableBegin = "<!-- layering:begin -->"
	tableEnd   = "<!-- layering:end -->"
)

var codeSpan = regexp.MustCompile("`([^`]+)`")

// parseTable reads the layering table of docs/architecture.md.
func parseTable(doc []byte) (map[string]rule, error) {
	_, rest, ok := bytes.Cut(doc, []byte(tableBegin))
	if !ok {
		return nil, errMissing(tableBegin)
	}
	body, _, ok := bytes.Cut(rest, []byte(tableEnd))
	if !ok {
		return nil, errMissing(tableEnd)
	}
	rules := map[string]rule{}
	for line := range strings.Lines(string(body)) {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "|") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		if len(cells) != 3 {
			return nil, errRow(line)
		}
		pkg := spans(cells[0])
		if len(pkg) != 1 {
			continue // the header, or the line under it
		}
		if _, dup := rules[pkg[0]]; dup {
			return nil, errRow(line)
		}
		rules[pkg[0]] = rule{ours: spans(cells[1]), outside: spans(cells[2])}
	}
	if len(rules) == 0 {
		return nil, errMissing("rows between " + tableBegin + " and " + tableEnd)
	}
	return rules, nil
}

// spans returns the code spans of a table cell.
func spans(cell string) []string {
	var out []string
	for _, m := range codeSpan.FindAllStringSubmatch(cell, -1) {
		out = append(out, m[1])
	}
	return out
}

type tableError string

func (e tableError) Error() string { return string(e) }

func errMissing(what string) error { return tableError("no " + what) }
func errRow(line string) error {
	return tableError("a row of the layering table is not | `package` | ours | outside |: " + line)
}
