package transport

import (
	"errors"
	"log/slog"
	"net"
	"sync/atomic"
	"syscall"
	"time"
)

// patientListener retries Accept when the process is out of descriptors or
// kernel memory, as net/http's server does, instead of handing the error to
// fasthttp, which calls every error but a timeout permanent and stops
// serving. A hub at its open-files limit (a reconnect storm arrives before
// the streams it replaces have released theirs) must wait for descriptors,
// not exit.
type patientListener struct {
	net.Listener
	log    *slog.Logger
	warned atomic.Int64 // unix ns of the last warning: one a minute at most
}

// maxAcceptBackoff bounds the wait between two tries.
const maxAcceptBackoff = time.Second

func (l *patientListener) Accept() (net.Conn, error) {
	var wait time.Duration
	for {
		c, err := l.Listener.Accept()
		if err == nil || !exhausted(err) {
			return c, err
		}
		if wait == 0 {
			wait = 5 * time.Millisecond
			if now, last := time.Now().UnixNano(), l.warned.Load(); now-last > int64(time.Minute) && l.warned.CompareAndSwap(last, now) {
				l.log.Warn("accept: out of resources; waiting for some to be released", "err", err)
			}
		} else {
			wait = min(2*wait, maxAcceptBackoff)
		}
		time.Sleep(wait)
	}
}

// exhausted reports whether an Accept error is a shortage that passes.
func exhausted(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM) ||
		errors.Is(err, syscall.ECONNABORTED)
}
