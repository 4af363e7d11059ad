package deploy

// The nginx configuration: events streamed through a real nginx, over
// HTTP/2 and TLS, arrive at once.

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/finexbot/eventhub/internal/hubtest"
)

// TestNginxStreamsWithoutBuffering puts a real nginx, configured with
// nginx/eventhub.conf, in front of a real hub, and streams through it as a
// browser would: HTTP/2 over TLS. Each event published (through nginx too)
// must arrive on the stream promptly: nginx neither buffers the stream nor
// holds it back.
func TestNginxStreamsWithoutBuffering(t *testing.T) {
	nginx := hubtest.Tool(t, "nginx")
	hub := startHub(t)
	dir := t.TempDir()
	certPEM := writeSelfSignedCert(t, dir)
	port := startNginx(t, nginx, dir, hub)
	base := fmt.Sprintf("https://127.0.0.1:%d", port)

	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(certPEM)
	client := &http.Client{Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: roots},
		ForceAttemptHTTP2: true, // a custom TLS config turns HTTP/2 off unless asked for
	}}
	t.Cleanup(client.CloseIdleConnections)

	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/api/events", nil)
	req.Header.Set("Authorization", "Bearer dev:ops")
	// A buffering proxy may hold back even the response head.
	headTimer := time.AfterFunc(5*time.Second, cancel)
	resp, err := client.Do(req)
	if !headTimer.Stop() {
		t.Fatalf("no response head through nginx within 5s (%v): nginx holds the stream back", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != 200 || resp.ProtoMajor != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		t.Fatalf("stream through nginx: %s %s, want 200 over HTTP/2\n%s", resp.Proto, resp.Status, b)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("Content-Type %q, want text/event-stream", ct)
	}
	// Frames arrive on a channel, so that each wait has its own deadline
	// (a response body over HTTP/2 has no read deadline). ended is why
	// the stream ended, set before frames is closed.
	frames := make(chan hubtest.Frame, 64)
	var ended error
	go func() {
		defer close(frames)
		dec := hubtest.NewDecoder(resp.Body)
		for {
			f, err := dec.Next()
			if err != nil {
				ended = err
				return
			}
			frames <- f
		}
	}()

	// The stream's first bytes are its retry hint: seen through nginx, the
	// response head and the first write were not held back.
	select {
	case f, ok := <-frames:
		if !ok || f.Retry == "" {
			t.Fatalf("first frame %+v (stream ended: %v), want a retry hint", f, ended)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("no retry hint within 2s: nginx holds the stream back")
	}

	for i := range 5 {
		jobID := fmt.Sprintf("nginx-%d", i)
		sent := time.Now()
		event := hubtest.JobEvent("growth", jobID, "started", "a1", "", sent)
		pub, _ := http.NewRequest("POST", base+"/api/events", strings.NewReader(event))
		pub.Header.Set("Authorization", "Bearer dev-publish-key")
		pub.Header.Set("Content-Type", "application/json")
		presp, err := client.Do(pub)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(presp.Body)
		presp.Body.Close()
		if presp.StatusCode != 202 {
			t.Fatalf("publish through nginx: %d %s", presp.StatusCode, body)
		}
		deadline := time.After(2 * time.Second)
	wait:
		for {
			select {
			case f, ok := <-frames:
				if !ok {
					t.Fatalf("stream ended waiting for %s: %v", jobID, ended)
				}
				var ev struct{ JobID string }
				if f.Event == "job" && json.Unmarshal([]byte(f.Data), &ev) == nil && ev.JobID == jobID {
					t.Logf("%s: published and received through nginx in %v", jobID, time.Since(sent).Round(time.Millisecond))
					break wait
				}
			case <-deadline:
				t.Fatalf("%s published but not received through nginx within 2s: nginx buffers the stream", jobID)
			}
		}
	}
}

// writeSelfSignedCert writes cert.pem and key.pem for 127.0.0.1 and
// localhost into dir and returns the certificate.
func writeSelfSignedCert(t *testing.T, dir string) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "eventhub test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.WriteFile(filepath.Join(dir, "cert.pem"), certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certPEM
}

// renderNginxConf is nginx/eventhub.conf with the hub's address, loopback
// ports and the test's certificate in place of the deployment's. Every
// replacement must apply exactly once, so a change to the file that this
// rendering would silently miss fails the test instead.
func renderNginxConf(t *testing.T, dir, hub string, httpsPort, httpPort int) string {
	t.Helper()
	b, err := os.ReadFile(nginxFile)
	if err != nil {
		t.Fatal(err)
	}
	conf := string(b)
	for _, r := range [][2]string{
		{"server 127.0.0.1:8080;", "server " + hub + ";"},
		{"listen 443 ssl http2;", fmt.Sprintf("listen 127.0.0.1:%d ssl http2;", httpsPort)},
		{"listen 80;", fmt.Sprintf("listen 127.0.0.1:%d;", httpPort)},
		{"/etc/ssl/certs/eventhub.pem;", filepath.Join(dir, "cert.pem") + ";"},
		{"/etc/ssl/private/eventhub.key;", filepath.Join(dir, "key.pem") + ";"},
	} {
		if n := strings.Count(conf, r[0]); n != 1 {
			t.Fatalf("%s: %q appears %d times, want once (update renderNginxConf)", nginxFile, r[0], n)
		}
		conf = strings.Replace(conf, r[0], r[1], 1)
	}
	return conf
}

// startNginx runs nginx in the foreground, as one process, with everything
// it writes under dir, in front of hub, and returns its HTTPS port.
func startNginx(t *testing.T, nginx, dir, hub string) int {
	t.Helper()
	ports := hubtest.FreePorts(t, 2)
	httpsPort, httpPort := ports[0], ports[1]
	if err := os.WriteFile(filepath.Join(dir, "eventhub.conf"), []byte(renderNginxConf(t, dir, hub, httpsPort, httpPort)), 0o644); err != nil {
		t.Fatal(err)
	}
	// The main context around eventhub.conf: one foreground process (so the
	// test owns it, and no worker switches to a user that may not exist),
	// logs, pid and temporary files in dir.
	main := fmt.Sprintf(`daemon off;
master_process off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log info;
events { worker_connections 256; }
http {
    access_log %[1]s/access.log;
    client_body_temp_path %[1]s/client_body;
    proxy_temp_path %[1]s/proxy;
    include %[1]s/eventhub.conf;
}
`, dir)
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte(main), 0o644); err != nil {
		t.Fatal(err)
	}
	runTool(t, nginx, "-t", "-q", "-p", dir, "-c", conf, "-e", filepath.Join(dir, "error.log"))
	cmd := exec.Command(nginx, "-p", dir, "-c", conf, "-e", filepath.Join(dir, "error.log"))
	cmd.SysProcAttr = hubtest.DieWithParent()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGQUIT) // graceful: finish, then exit
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Logf("nginx output:\n%s\nnginx error.log:\n%s", out.String(), log)
		}
	})
	var (
		exitErr error
		gone    bool
	)
	listening := hubtest.Poll(10*time.Second, func() bool {
		select {
		case exitErr = <-exited:
			exited <- exitErr // for the cleanup
			gone = true
			return true
		default:
		}
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", httpsPort), time.Second)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
	switch {
	case gone:
		t.Fatalf("nginx exited: %v", exitErr)
	case !listening:
		t.Fatalf("nginx not listening on %d within 10s", httpsPort)
	}
	return httpsPort
}
