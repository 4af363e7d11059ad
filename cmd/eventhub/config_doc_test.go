package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

const configDoc = "../../docs/configuration.md"

// helpFlag is one flag as `eventhub serve -h` shows it.
type helpFlag struct {
	name, typ, usage string
	def              string // as printed; zero-valued defaults are not printed
	hasDef           bool
}

// serveHelpFlags runs `eventhub serve -h` in process (the same flag set and
// output as the binary) and parses flag.PrintDefaults' format: a line
// "  -name type", then the usage on lines indented "    \t", the last
// ending " (default value)" unless the default is the zero value.
func serveHelpFlags(t *testing.T) []helpFlag {
	t.Helper()
	var out bytes.Buffer
	err := run(context.Background(), []string{"serve", "-h"}, func(string) string { return "" }, io.Discard, &out)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("serve -h: %v, want flag.ErrHelp", err)
	}
	var flags []helpFlag
	head := regexp.MustCompile(`^  -([a-z0-9-]+)(?: (\S+))?$`)
	def := regexp.MustCompile(` \(default (.*)\)$`)
	for line := range strings.Lines(out.String()) {
		line = strings.TrimRight(line, "\n")
		if m := head.FindStringSubmatch(line); m != nil {
			flags = append(flags, helpFlag{name: m[1], typ: m[2]})
			continue
		}
		text, ok := strings.CutPrefix(line, "    \t")
		if !ok || len(flags) == 0 {
			continue
		}
		f := &flags[len(flags)-1]
		f.usage = strings.TrimSpace(f.usage + " " + text)
		if m := def.FindStringSubmatch(f.usage); m != nil {
			f.def, f.hasDef = m[1], true
			if s, err := strconv.Unquote(m[1]); err == nil {
				f.def = s
			}
		}
	}
	if len(flags) < 10 {
		t.Fatalf("only %d flags parsed from serve -h:\n%s", len(flags), out.String())
	}
	return flags
}

// docFlag is one row of a flag table in docs/configuration.md:
// | `--name VALUE` | `EVENTHUB_NAME` | default | meaning |
type docFlag struct {
	name, env, def, meaning string
	line                    int
}

// codeSpan returns s's content if s is exactly one `code span`.
func codeSpan(s string) (string, bool) {
	s = strings.TrimSpace(s)
	if len(s) >= 2 && s[0] == '`' && s[len(s)-1] == '`' && !strings.Contains(s[1:len(s)-1], "`") {
		return s[1 : len(s)-1], true
	}
	return "", false
}

func readConfigDoc(t *testing.T) (flags []docFlag, text string) {
	t.Helper()
	b, err := os.ReadFile(configDoc)
	if err != nil {
		t.Fatal(err)
	}
	text = string(b)
	n := 0
	for line := range strings.Lines(text) {
		n++
		if !strings.HasPrefix(line, "| `--") {
			continue
		}
		// Split on cell bars, not on the \| inside a cell.
		cells := strings.Split(strings.ReplaceAll(strings.TrimSpace(line), `\|`, "\x00"), "|")
		if len(cells) != 6 { // empty, 4 cells, empty
			t.Errorf("%s:%d: %d cells, want | flag | environment | default | meaning |", configDoc, n, len(cells)-2)
			continue
		}
		for i := range cells {
			cells[i] = strings.TrimSpace(strings.ReplaceAll(cells[i], "\x00", "|"))
		}
		flagCell, _ := codeSpan(cells[1])
		name, _, _ := strings.Cut(strings.TrimPrefix(flagCell, "--"), " ")
		env, _ := codeSpan(cells[2])
		flags = append(flags, docFlag{name: name, env: env, def: cells[3], meaning: cells[4], line: n})
	}
	return flags, text
}

// TestConfigurationDocMatchesFlags: docs/configuration.md names every flag
// of `eventhub serve` once, with its environment variable, its default and
// a meaning, and names no flag that does not exist; and every variable the
// command reads directly (CLERK_*) is documented.
func TestConfigurationDocMatchesFlags(t *testing.T) {
	real := serveHelpFlags(t)
	doc, text := readConfigDoc(t)
	byName := map[string]docFlag{}
	for _, d := range doc {
		if _, dup := byName[d.name]; dup {
			t.Errorf("%s:%d: --%s documented twice", configDoc, d.line, d.name)
		}
		byName[d.name] = d
	}
	for _, f := range real {
		d, ok := byName[f.name]
		if !ok {
			t.Errorf("--%s (%s) is not documented in %s", f.name, f.usage, configDoc)
			continue
		}
		delete(byName, f.name)
		if want := envName(f.name); d.env != want {
			t.Errorf("%s:%d: --%s: environment %q, want `%s`", configDoc, d.line, f.name, d.env, want)
		}
		if strings.TrimSpace(d.meaning) == "" {
			t.Errorf("%s:%d: --%s: no meaning", configDoc, d.line, f.name)
		}
		checkDocDefault(t, f, d)
	}
	for name, d := range byName {
		t.Errorf("%s:%d: --%s is documented but is no flag of eventhub serve", configDoc, d.line, name)
	}

	// Variables read directly, not through a flag: every getenv("NAME")
	// in the command's source.
	literal := regexp.MustCompile(`[gG]etenv\("([A-Z0-9_]+)"\)`)
	sources, _ := filepath.Glob("*.go")
	var direct []string
	for _, src := range sources {
		if strings.HasSuffix(src, "_test.go") {
			continue
		}
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range literal.FindAllStringSubmatch(string(b), -1) {
			if !slices.Contains(direct, m[1]) {
				direct = append(direct, m[1])
			}
		}
	}
	for _, want := range []string{"CLERK_JWT_KEY", "CLERK_SECRET_KEY"} {
		if !slices.Contains(direct, want) {
			t.Errorf("%s is no longer read by the command: is the scan of getenv calls broken?", want)
		}
	}
	for _, v := range direct {
		if !strings.Contains(text, "| `"+v+"` |") {
			t.Errorf("%s is read from the environment but has no row in %s", v, configDoc)
		}
	}
}

// checkDocDefault compares a documented default with the flag's. A default
// written as one code span must be the flag's value (durations compared as
// durations, the log level without case). A default in words ("none",
// "off", "built-in demo file") is only for a flag whose own default is its
// zero value, whose meaning the words then explain.
func checkDocDefault(t *testing.T, f helpFlag, d docFlag) {
	t.Helper()
	got, isCode := codeSpan(d.def)
	if !isCode {
		if f.hasDef {
			t.Errorf("%s:%d: --%s: default %q in words, but the flag's default is %q: write it as `%s`", configDoc, d.line, f.name, d.def, f.def, f.def)
		}
		if d.def == "" {
			t.Errorf("%s:%d: --%s: no default", configDoc, d.line, f.name)
		}
		return
	}
	want := f.def
	if !f.hasDef {
		switch f.typ {
		case "int", "int64", "uint", "uint64", "float":
			want = "0"
		case "duration":
			want = "0s"
		default: // strings and booleans: their zero value is better said in words
			t.Errorf("%s:%d: --%s: default %q, but the flag has none: say what none means", configDoc, d.line, f.name, d.def)
			return
		}
	}
	switch f.typ {
	case "duration":
		g, err1 := time.ParseDuration(got)
		w, err2 := time.ParseDuration(want)
		if err1 != nil || err2 != nil || g != w {
			t.Errorf("%s:%d: --%s: default `%s`, the flag's is %s", configDoc, d.line, f.name, got, want)
		}
	case "value": // flag.TextVar: the log level
		if !strings.EqualFold(got, want) {
			t.Errorf("%s:%d: --%s: default `%s`, the flag's is %s", configDoc, d.line, f.name, got, want)
		}
	default:
		if got != want {
			t.Errorf("%s:%d: --%s: default `%s`, the flag's is %q", configDoc, d.line, f.name, got, want)
		}
	}
}
