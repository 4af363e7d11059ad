package authz

import (
	"fmt"
	"strings"
	"time"
)

// Identity is an authenticated user.
type Identity struct {
	User string
	// Expires is when the session behind the token ends; zero means it does
	// not (development tokens).
	Expires time.Time
}

const devPrefix = "dev:"

// DevAuthenticate accepts development tokens "dev:<user>". It proves nothing
// about who is asking, so the hub refuses to run it on a non-loopback address.
func DevAuthenticate(token string) (Identity, error) {
	user, ok := strings.CutPrefix(token, devPrefix)
	if !ok {
		return Identity{}, fmt.Errorf("%w: want dev:<user>", ErrBadToken)
	}
	if err := CheckUserID(user); err != nil {
		return Identity{}, fmt.Errorf("%w: user: %v", ErrBadToken, err)
	}
	return Identity{User: user}, nil
}

// CheckUserID checks a user id: 1–128 characters of [A-Za-z0-9._@:|-] (this
// covers Clerk's "user_…" ids and e-mail-like dev names).
func CheckUserID(s string) error {
	if len(s) == 0 || len(s) > 128 {
		return fmt.Errorf("length %d not in 1..128", len(s))
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("._@:|-", c) >= 0) {
			return fmt.Errorf("character %q at %d not allowed", c, i)
		}
	}
	return nil
}
