package bench

import "errors"

var (
	// ErrBadTemplate is returned by ParseTemplate for a template it cannot use.
	ErrBadTemplate = errors.New("bad publish body template")
	// ErrBadResponse means a server answered a stream request with something
	// that is not an HTTP/1.x response.
	ErrBadResponse = errors.New("bad response")
	// ErrStatus means a server refused a stream request; the error names the
	// status code.
	ErrStatus = errors.New("stream refused")
	// ErrRemote is returned for a target that is not a loopback address when
	// remote targets were not allowed.
	ErrRemote = errors.New("target is not a loopback address (use --allow-remote)")
	// ErrConfig is returned by Run for a configuration it cannot run.
	ErrConfig = errors.New("bad configuration")
	// ErrWorker means a worker process misbehaved or died.
	ErrWorker = errors.New("worker failed")
)
