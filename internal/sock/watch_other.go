//go:build !linux

package sock

// Watcher watches nothing here: there is no epoll, so every connection
// has a reader goroutine (Conn.AwaitHangUp) of its owner's to see its
// client hang up. The methods keep the Linux Watcher's contract.
type Watcher[T any] struct{}

// NewWatcher returns a Watcher that watches nothing: Watch reports false.
func NewWatcher[T any](func(T)) (*Watcher[T], error) { return &Watcher[T]{}, nil }

// Watch reports that c is not watched: its owner reads it.
func (*Watcher[T]) Watch(*Conn, T) bool { return false }

// Unwatch reports that c was not watched.
func (*Watcher[T]) Unwatch(*Conn) bool { return false }

// Stop does nothing: there is no goroutine to end.
func (*Watcher[T]) Stop() {}
