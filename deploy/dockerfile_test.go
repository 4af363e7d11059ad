package deploy

// The Dockerfile and .dockerignore, read as text (no Docker engine is
// needed): a static, trimmed build of ./cmd/eventhub with the Go of go.mod
// and cache mounts, a final stage that runs it as a numeric non-root user
// with ENTRYPOINT the binary and a default command the hub accepts, the
// ports it listens on exposed, and a build context that keeps every file
// the binary is built from.

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

const (
	dockerfile   = "../Dockerfile"
	dockerignore = "../.dockerignore"
	goMod        = "../go.mod"
	repoRoot     = ".."
)

// TestDockerfile: the Dockerfile and .dockerignore, as they are, break no
// rule.
func TestDockerfile(t *testing.T) {
	files := readDockerFiles(t)
	for _, p := range dockerProblems(files, buildSources(t)) {
		t.Error(p)
	}
}

// TestDockerfileChecksCatch breaks one rule at a time in a copy of the
// files and expects dockerProblems to name it. Every replacement must apply
// exactly once.
func TestDockerfileChecksCatch(t *testing.T) {
	cases := []breakCase{
		{"cgo on", dockerfile, "ENV CGO_ENABLED=0", "ENV CGO_ENABLED=1", "CGO_ENABLED"},
		{"cgo left to the default", dockerfile, "ENV CGO_ENABLED=0\n", "", "CGO_ENABLED"},
		{"paths kept", dockerfile, "-trimpath ", "", "-trimpath"},
		{"symbols kept", dockerfile, `-ldflags "-s -w" `, "", "-ldflags"},
		{"another package", dockerfile, "./cmd/eventhub\n", "./cmd/eventhub-bench\n", "./cmd/eventhub"},
		{"another Go", dockerfile, "FROM golang:1.26 AS build", "FROM golang:1.25 AS build", "golang:1.26"},
		{"no module cache", dockerfile, "RUN --mount=type=cache,target=/go/pkg/mod \\\n    --mount=type=cache,target=/root/.cache/go-build", "RUN --mount=type=cache,target=/root/.cache/go-build", "/go/pkg/mod"},
		{"no build cache", dockerfile, " \\\n    --mount=type=cache,target=/root/.cache/go-build", "", "/root/.cache/go-build"},
		{"root", dockerfile, "USER 65532:65532", "USER root", "USER"},
		{"uid 0", dockerfile, "USER 65532:65532", "USER 0:0", "USER"},
		{"no user", dockerfile, "USER 65532:65532\n", "", "USER"},
		{"a user by name", dockerfile, "USER 65532:65532", "USER nonroot", "numeric"},
		{"one stage", dockerfile, "FROM gcr.io/distroless/static-debian13:nonroot\nCOPY --from=build /out/eventhub /eventhub\n", "", "stage"},
		{"a large final image", dockerfile, "FROM gcr.io/distroless/static-debian13:nonroot", "FROM debian:trixie", "final stage"},
		{"entrypoint another file", dockerfile, `ENTRYPOINT ["/eventhub"]`, `ENTRYPOINT ["/bin/eventhub"]`, "ENTRYPOINT"},
		{"entrypoint through a shell", dockerfile, `ENTRYPOINT ["/eventhub"]`, `ENTRYPOINT /eventhub`, "ENTRYPOINT"},
		{"command on loopback", dockerfile, `"--listen", "0.0.0.0:8080"`, `"--listen", "127.0.0.1:8080"`, "--listen"},
		{"command not serve", dockerfile, `CMD ["serve", `, `CMD ["run", `, "serve"},
		{"a flag the hub lacks", dockerfile, `"--admin-listen", "0.0.0.0:9090"`, `"--metrics-listen", "0.0.0.0:9090"`, "--metrics-listen"},
		{"admin port not exposed", dockerfile, "EXPOSE 8080 9090", "EXPOSE 8080", "EXPOSE"},
		{"history in the context", dockerignore, "\n.git\n", "\n", ".git"},
		{"tools in the context", dockerignore, "\n.tools\n", "\n", ".tools"},
		{"sources left out", dockerignore, "\ndeploy\n", "\ndeploy\njobs\n", "jobs/"},
		{"embedded files left out", dockerignore, "\n*.md\n", "\n*.md\n**/*.json\n", "authz/demo_permissions.json"},
	}
	sources := buildSources(t)
	checksCatch(t, readDockerFiles(t), cases, func(files map[string][]byte) []string { return dockerProblems(files, sources) })
}

func readDockerFiles(t *testing.T) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	for _, p := range []string{dockerfile, dockerignore, goMod, flagsFile} {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		files[p] = b
	}
	return files
}

// instruction is one Dockerfile instruction, its continuation lines joined.
type instruction struct {
	cmd, args string
}

// stage is one FROM and what follows it.
type stage struct {
	image, name string
	body        []instruction
}

// parseDockerfile splits a Dockerfile into stages. Comments (and the
// syntax directive) go; a line ending in a backslash continues.
func parseDockerfile(text string) []stage {
	var stages []stage
	var joined strings.Builder
	flush := func() {
		line := strings.TrimSpace(joined.String())
		joined.Reset()
		if line == "" {
			return
		}
		cmd, args, _ := strings.Cut(line, " ")
		in := instruction{cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)}
		if in.cmd == "FROM" {
			f := strings.Fields(in.args)
			s := stage{}
			if len(f) > 0 {
				s.image = f[0]
			}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				s.name = f[2]
			}
			stages = append(stages, s)
			return
		}
		if len(stages) > 0 {
			stages[len(stages)-1].body = append(stages[len(stages)-1].body, in)
		}
	}
	for line := range strings.Lines(text) {
		line = strings.TrimRight(line, "\r\n")
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		if body, more := strings.CutSuffix(line, "\\"); more {
			joined.WriteString(body + " ")
			continue
		}
		joined.WriteString(line)
		flush()
	}
	flush()
	return stages
}

// dockerProblems checks the Dockerfile and .dockerignore against go.mod,
// the hub's flags and the files the binary is built from.
func dockerProblems(files map[string][]byte, sources []string) []string {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	stages := parseDockerfile(string(files[dockerfile]))
	if len(stages) < 2 {
		bad("%s: %d stage(s): want a build stage and a small final stage", dockerfile, len(stages))
		return problems
	}
	goVersion := ""
	if m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(files[goMod]); m != nil {
		goVersion = string(m[1])
	}

	// The build stage: the one that runs go build.
	var build *stage
	var buildRun string
	for i := range stages[:len(stages)-1] {
		for _, in := range stages[i].body {
			if in.cmd == "RUN" && strings.Contains(in.args, "go build") {
				build, buildRun = &stages[i], in.args
			}
		}
	}
	if build == nil {
		bad("%s: no stage before the last runs go build", dockerfile)
		return problems
	}
	if want := "golang:" + goVersion; goVersion == "" || (build.image != want && !strings.HasPrefix(build.image, want+"-") && !strings.HasPrefix(build.image, want+".")) {
		bad("%s: the build stage is FROM %s, want %s (go.mod's Go)", dockerfile, build.image, want)
	}
	static := strings.Contains(buildRun, "CGO_ENABLED=0")
	for _, in := range build.body {
		if in.cmd == "ENV" && regexp.MustCompile(`(^|\s)CGO_ENABLED=0(\s|$)`).MatchString(in.args) {
			static = true
		}
	}
	if !static {
		bad("%s: go build without CGO_ENABLED=0: the binary must be static for a final image without libc", dockerfile)
	}
	if !strings.Contains(buildRun, "-trimpath") {
		bad("%s: go build without -trimpath", dockerfile)
	}
	if !regexp.MustCompile(`-ldflags[= ]["']?-s -w["']?`).MatchString(buildRun) {
		bad(`%s: go build without -ldflags "-s -w"`, dockerfile)
	}
	if !regexp.MustCompile(`\s\./cmd/eventhub(\s|$)`).MatchString(buildRun) {
		bad("%s: go build does not build ./cmd/eventhub", dockerfile)
	}
	for _, target := range []string{"/go/pkg/mod", "/root/.cache/go-build"} {
		if !strings.Contains(buildRun, "--mount=type=cache,target="+target) {
			bad("%s: go build without a cache mount on %s", dockerfile, target)
		}
	}
	out := ""
	if m := regexp.MustCompile(`-o\s+(\S+)`).FindStringSubmatch(buildRun); m != nil {
		out = m[1]
	}

	// The final stage.
	final := stages[len(stages)-1]
	if !strings.HasPrefix(final.image, "gcr.io/distroless/static") && final.image != "scratch" {
		bad("%s: the final stage is FROM %s: want distroless static or scratch, nothing the static binary does not need", dockerfile, final.image)
	}
	var user, entry, cmd string
	var exposed []string
	binary := ""
	for _, in := range final.body {
		switch in.cmd {
		case "USER":
			user = in.args
		case "ENTRYPOINT":
			entry = in.args
		case "CMD":
			cmd = in.args
		case "EXPOSE":
			exposed = append(exposed, strings.Fields(in.args)...)
		case "COPY":
			f := strings.Fields(in.args)
			if len(f) == 3 && f[0] == "--from="+build.name && f[1] == out {
				binary = f[2]
			}
		}
	}
	switch uid, _, _ := strings.Cut(user, ":"); {
	case user == "":
		bad("%s: the final stage sets no USER: it would run as the base image's user", dockerfile)
	case !regexp.MustCompile(`^\d+$`).MatchString(uid):
		bad("%s: USER %s: want a numeric user, which Kubernetes' runAsNonRoot can check", dockerfile, user)
	case strings.Trim(uid, "0") == "":
		bad("%s: USER %s: runs as root", dockerfile, user)
	}
	if binary == "" {
		bad("%s: the final stage does not copy %s from the build stage", dockerfile, out)
	}
	var entryArgs, cmdArgs []string
	if json.Unmarshal([]byte(entry), &entryArgs) != nil || len(entryArgs) != 1 || entryArgs[0] != binary {
		bad("%s: ENTRYPOINT %s: want [%q], the binary itself in exec form (it gets the signals, no shell)", dockerfile, entry, binary)
	}
	if json.Unmarshal([]byte(cmd), &cmdArgs) != nil {
		bad("%s: CMD %s: want exec form", dockerfile, cmd)
	}
	flags, argProblems := parseServeArgs(cmdArgs, knownFlags(string(files[flagsFile])))
	for _, p := range argProblems {
		bad("%s: CMD: %s", dockerfile, p)
	}
	for _, name := range []string{"listen", "admin-listen"} {
		host, port, err := net.SplitHostPort(flags[name])
		if err != nil || host != "0.0.0.0" {
			bad("%s: CMD --%s %q: want 0.0.0.0:PORT, reachable from outside the container", dockerfile, name, flags[name])
			continue
		}
		if !slices.Contains(exposed, port) && !slices.Contains(exposed, port+"/tcp") {
			bad("%s: EXPOSE %v lacks %s, the port of --%s", dockerfile, exposed, port, name)
		}
	}

	// The build context.
	patterns := dockerignorePatterns(string(files[dockerignore]))
	for _, p := range []string{".git", ".tools", "bin"} {
		if !patterns.ignores(p) {
			bad("%s does not leave out %s", dockerignore, p)
		}
	}
	for _, src := range sources {
		if patterns.ignores(src) {
			bad("%s leaves out %s, which the binary is built from", dockerignore, src)
		}
	}
	return problems
}

// buildSources lists, relative to the repository, the files go build may
// read: go.mod, go.sum, every Go file that is not a test, and every file a
// //go:embed of those names.
func buildSources(t *testing.T) []string {
	t.Helper()
	sources := []string{"go.mod", "go.sum"}
	embedded := map[string]bool{} // paths named by //go:embed
	err := filepath.WalkDir(repoRoot, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(repoRoot, path)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if rel == ".git" || rel == ".tools" || rel == "bin" || d.Name() == "testdata" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(rel, ".go") || strings.HasSuffix(rel, "_test.go") {
			return nil
		}
		sources = append(sources, rel)
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range regexp.MustCompile(`(?m)^//go:embed (.+)$`).FindAllStringSubmatch(string(b), -1) {
			for _, pat := range strings.Fields(m[1]) {
				embedded[filepath.ToSlash(filepath.Join(filepath.Dir(rel), pat))] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(embedded) == 0 {
		t.Fatal("no //go:embed found: is the pattern in buildSources wrong?")
	}
	for e := range embedded {
		err := filepath.WalkDir(filepath.Join(repoRoot, e), func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() {
				rel, _ := filepath.Rel(repoRoot, path)
				sources = append(sources, filepath.ToSlash(rel))
			}
			return nil
		})
		if err != nil {
			t.Fatalf("//go:embed %s: %v", e, err)
		}
	}
	slices.Sort(sources)
	return sources
}

// ignorePattern is one line of a .dockerignore: a pattern, or with "!"
// one that keeps what an earlier one left out.
type ignorePattern struct {
	re   *regexp.Regexp
	keep bool
}

type ignorePatterns []ignorePattern

// dockerignorePatterns reads the patterns of a .dockerignore.
func dockerignorePatterns(text string) ignorePatterns {
	var patterns ignorePatterns
	for line := range strings.Lines(text) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		keep := strings.HasPrefix(line, "!")
		p := strings.TrimPrefix(filepath.ToSlash(filepath.Clean(strings.TrimPrefix(line, "!"))), "/")
		patterns = append(patterns, ignorePattern{re: globRegexp(p), keep: keep})
	}
	return patterns
}

// ignores reports whether Docker leaves path (relative to the context,
// with slashes) out of the build context: the last pattern that matches it
// or a directory above it decides. Patterns match as filepath.Match does,
// and ** matches any number of directories.
func (patterns ignorePatterns) ignores(path string) bool {
	ignored := false
	for _, p := range patterns {
		for q := path; ; {
			if p.re.MatchString(q) {
				ignored = !p.keep
				break
			}
			i := strings.LastIndex(q, "/")
			if i < 0 {
				break
			}
			q = q[:i]
		}
	}
	return ignored
}

// globRegexp is a .dockerignore pattern as a regular expression.
func globRegexp(p string) *regexp.Regexp {
	var re strings.Builder
	re.WriteString("^")
	for i := 0; i < len(p); i++ {
		switch {
		case strings.HasPrefix(p[i:], "**/"):
			re.WriteString("(.*/)?")
			i += 2
		case strings.HasPrefix(p[i:], "**"):
			re.WriteString(".*")
			i++
		case p[i] == '*':
			re.WriteString("[^/]*")
		case p[i] == '?':
			re.WriteString("[^/]")
		default:
			re.WriteString(regexp.QuoteMeta(p[i : i+1]))
		}
	}
	re.WriteString("$")
	return regexp.MustCompile(re.String())
}
