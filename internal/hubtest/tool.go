package hubtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// toolSpec says where to look for a program some tests need beyond Go, and
// how a developer gets it.
type toolSpec struct {
	env    string   // a variable that names the program, looked at first; "" for none
	names  []string // looked up on PATH, in order
	places []string // absolute, or relative to the module's root; looked at last
	hint   string   // how to get it, said when it is missing
}

// tools are every program outside Go that a test of the module runs.
// .ci/install-deps installs them on Debian and Ubuntu; elsewhere the tests
// that need one skip without it.
var tools = map[string]toolSpec{
	"chromium": {
		env:    "EVENTHUB_CHROMIUM",
		names:  []string{"chromium", "chromium-browser", "google-chrome"},
		places: []string{"/usr/bin/chromium"},
		hint:   "install Chromium (apt-get install chromium, brew install --cask chromium) or set EVENTHUB_CHROMIUM",
	},
	"nginx": {
		names:  []string{"nginx"},
		places: []string{"/usr/sbin/nginx"}, // not on a user's PATH on Debian
		hint:   "install nginx (apt-get install nginx-light, brew install nginx)",
	},
	"promtool": {
		names:  []string{"promtool"},
		places: []string{".tools/bin/promtool"}, // where .ci/install-deps unpacks it
		hint:   "run make deps on Debian or Ubuntu (it unpacks Debian's prometheus into .tools/), or install Prometheus (brew install prometheus)",
	},
	"node": {
		names: []string{"node"},
		hint:  "install Node.js 18 or later with npm (apt-get install nodejs npm, brew install node)",
	},
	"npm": {
		names: []string{"npm"},
		hint:  "install Node.js 18 or later with npm (apt-get install nodejs npm, brew install node)",
	},
	"prlimit": {
		names: []string{"prlimit"},
		hint:  "install util-linux (apt-get install util-linux)",
	},
}

// Tool returns the path of the program name (one of chromium, nginx,
// promtool, node, npm, prlimit). Without it the test skips with one line
// naming the program and how to get it; when the CI variable is set it
// fails instead, since CI installs every tool with .ci/install-deps and a
// skip there would hide a test that no longer runs.
func Tool(t testing.TB, name string) string {
	t.Helper()
	spec, ok := tools[name]
	if !ok {
		panic("BUG: hubtest: no tool named " + name)
	}
	if path := findTool(spec); path != "" {
		return path
	}
	msg := name + " not found: " + spec.hint
	if InCI() {
		t.Fatal(msg + " (CI is set: .ci/install-deps should have installed it)")
	}
	t.Skip(msg)
	return ""
}

func findTool(spec toolSpec) string {
	if spec.env != "" {
		if p := os.Getenv(spec.env); p != "" {
			return p // a path the developer chose: exec reports it if it is wrong
		}
	}
	for _, name := range spec.names {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	for _, p := range spec.places {
		if !filepath.IsAbs(p) {
			root := ModuleRoot()
			if root == "" {
				continue
			}
			p = filepath.Join(root, p)
		}
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}

// InCI reports whether the tests run in CI: the CI variable is set to
// anything but "", "0" or "false".
func InCI() bool {
	ci := os.Getenv("CI")
	return ci != "" && ci != "0" && ci != "false"
}

// ModuleRoot returns the directory of the module's go.mod, found from the
// working directory up (a test's working directory is its package's), or
// "" when there is none.
func ModuleRoot() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}
