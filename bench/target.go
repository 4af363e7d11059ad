package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// DefaultHubArgs are the arguments the harness gives --hub-binary when none
// are set: {listen} is the stream URL's host:port and {permissions} the
// permissions file the harness writes (userPermissions): the bench users,
// and bench as an admin.
var DefaultHubArgs = []string{"serve", "--listen", "{listen}", "--permissions", "{permissions}",
	"--max-streams-per-user", "0", "--heartbeat", "30s", "--log-level", "warn"}

// benchPermissions makes the harness's one user an admin, so that every
// stream may see every event.
const benchPermissions = `{"users": {"bench": {"admin": true}}}` + "\n"

// benchUser is the user prefix of Config.Users: bench-u0, bench-u1, …
const benchUser = "bench-u"

// benchAssets is how many distinct assets the users of Config.Users are
// given, user i asset a<i mod benchAssets>.
const benchAssets = 100

// userPermissions is the permissions file for n users (benchPermissions
// for none): bench stays an admin, and user i may see the scenario s1 of
// DefaultFillerBody and its own asset: with assets zero a<i mod benchAssets>
// and BroadcastAsset, else only assetName(i mod assets) (Config.Assets).
func userPermissions(n, assets int) []byte {
	if n <= 0 {
		return []byte(benchPermissions)
	}
	var b strings.Builder
	b.WriteString(`{"users": {"bench": {"admin": true}`)
	for i := range n {
		own := assetName(i % benchAssets)
		list := `["` + own + `", "` + BroadcastAsset + `"]`
		switch {
		case assets > 0:
			list = `["` + assetName(i%assets) + `"]`
		case own == BroadcastAsset:
			list = `["` + own + `"]`
		}
		fmt.Fprintf(&b, ",\n  %q: {\"assets\": %s, \"scenarios\": [\"s1\"]}", benchUser+strconv.Itoa(i), list)
	}
	b.WriteString("}}\n")
	return []byte(b.String())
}

// process is a server the harness started: eventhub or the floor.
type process struct {
	cmd  *exec.Cmd
	log  string // file holding its stdout and stderr
	addr string // where it listens
	done chan struct{}
	err  error // Wait's result, set before done is closed
}

// assetName is the name of the harness's asset i: a<i>.
func assetName(i int) string { return "a" + strconv.Itoa(i) }

// startHub starts binary with args (placeholders filled in; perms, from
// userPermissions, in dir for {permissions}) and waits until it accepts
// connections on addr.
func startHub(ctx context.Context, binary string, args []string, addr, dir string, perms []byte) (*process, error) {
	permsFile, err := writePermissions(dir, perms)
	if err != nil {
		return nil, err
	}
	p, err := startProcess(binary, fillArgs(args, addr, permsFile), filepath.Join(dir, "hub.log"))
	if err != nil {
		return nil, err
	}
	p.addr = addr
	if err := p.waitListening(ctx, 15*time.Second); err != nil {
		p.stop()
		return nil, err
	}
	return p, nil
}

// fillArgs returns args with {listen} and {permissions} replaced.
func fillArgs(args []string, listen, perms string) []string {
	filled := make([]string, len(args))
	for i, a := range args {
		a = strings.ReplaceAll(a, "{listen}", listen)
		filled[i] = strings.ReplaceAll(a, "{permissions}", perms)
	}
	return filled
}

// startFloor starts "self floor --listen 127.0.0.1:0 --assets assets" and
// reads the address it announces on its first line of output.
func startFloor(ctx context.Context, self []string, dir string, assets int) (*process, error) {
	args := append(append([]string{}, self[1:]...), "floor", "--listen", "127.0.0.1:0", "--assets", strconv.Itoa(assets))
	cmd := exec.Command(self[0], args...)
	cmd.SysProcAttr = childAttr()
	logPath := filepath.Join(dir, "floor.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("floor log: %w", err)
	}
	defer logf.Close()
	cmd.Stderr = logf
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("floor: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting floor %q: %w", self, err)
	}
	p := &process{cmd: cmd, log: logPath, done: make(chan struct{})}
	line := make(chan string, 1) // capacity 1: the reader must not block if we gave up
	go func() {
		s, _ := bufio.NewReader(out).ReadString('\n')
		line <- s
		io.Copy(io.Discard, out) // keep the pipe drained until the floor exits
	}()
	go p.wait()
	select {
	case s := <-line:
		_, addr, ok := strings.Cut(strings.TrimSpace(s), "listening on ")
		if !ok {
			p.stop()
			return nil, fmt.Errorf("floor: unexpected first line %q (log %s)", s, logPath)
		}
		p.addr = addr
	case <-time.After(10 * time.Second):
		p.stop()
		return nil, fmt.Errorf("floor: no address announced within 10s (log %s)", logPath)
	case <-ctx.Done():
		p.stop()
		return nil, ctx.Err()
	}
	return p, nil
}

func startProcess(binary string, args []string, logPath string) (*process, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("hub log: %w", err)
	}
	defer logf.Close() // the child holds its own descriptor
	cmd := exec.Command(binary, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s %q: %w", binary, args, err)
	}
	p := &process{cmd: cmd, log: logPath, done: make(chan struct{})}
	go p.wait()
	return p, nil
}

// wait is the process's one waiter goroutine; it ends when the process does.
func (p *process) wait() {
	p.err = p.cmd.Wait()
	close(p.done)
}

func (p *process) pid() int { return p.cmd.Process.Pid }

// exited reports an error if the process is no longer running.
func (p *process) exited() error {
	select {
	case <-p.done:
		return fmt.Errorf("%s exited: %v (log %s:\n%s)", filepath.Base(p.cmd.Path), p.err, p.log, tail(p.log, 2000))
	default:
		return nil
	}
}

func (p *process) waitListening(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		if err := p.exited(); err != nil {
			return err
		}
		c, err := net.DialTimeout("tcp", p.addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not listening on %s after %v: %w", p.cmd.Path, p.addr, limit, err)
		}
		select {
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// stop asks the process to exit (SIGTERM) and kills it if it has not
// within 15 s.
func (p *process) stop() {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// tail returns the last n bytes of a file, for error messages.
func tail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > n {
		f.Seek(-n, io.SeekEnd)
	}
	b, _ := io.ReadAll(f)
	return string(b)
}

// checkLoopback refuses a URL whose host is not a loopback address.
func checkLoopback(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%w: url %q: %w", ErrConfig, raw, err)
	}
	host := u.Hostname()
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%w: %q", ErrRemote, raw)
	}
	return nil
}

// hostPort returns u's host:port, with port 80 if none.
func hostPort(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("%w: url %q: %w", ErrConfig, raw, err)
	}
	if u.Port() == "" {
		return net.JoinHostPort(u.Hostname(), "80"), nil
	}
	return u.Host, nil
}

// withHost returns raw with its host:port replaced.
func withHost(raw, hostport string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	u.Host = hostport
	return u.String()
}
