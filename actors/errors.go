package actors

import (
	"errors"

	"github.com/finexbot/eventhub/internal/eventlog"
)

// Errors returned by Hub's methods.
var (
	// ErrClosed: the hub is shutting down or has shut down.
	ErrClosed = errors.New("hub is shutting down")
	// ErrTooManyStreams: the hub holds --max-streams streams already.
	ErrTooManyStreams = errors.New("too many streams on this hub")
	// ErrTooManyUserStreams: the user holds --max-streams-per-user streams already.
	ErrTooManyUserStreams = errors.New("too many streams for this user")
	// ErrPermissionsUnavailable: the permissions source failed and nothing
	// it said before is still trusted; the request is denied.
	ErrPermissionsUnavailable = errors.New("permissions unavailable")
	// ErrLogUnavailable: the event log did not take the events in time;
	// they may or may not be published.
	ErrLogUnavailable = eventlog.ErrUnavailable
	// ErrBusy: the hub did not answer a publish in time; nothing is known to be published.
	ErrBusy = errors.New("hub did not answer in time")
)
