package transport

import (
	"strconv"
	"testing"
)

// FuzzParseEventID: parseEventID accepts exactly the decimal uint64s (at
// most 20 digits, leading zeros allowed), and gives their value.
func FuzzParseEventID(f *testing.F) {
	for _, seed := range []string{"0", "1", "1042", "18446744073709551615", "18446744073709551616",
		"00000000000000000001", "-1", "+1", " 1", "1 ", "0x10", "1e3", "", "１", "99999999999999999999"} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		id, err := parseEventID(raw)
		want, werr := strconv.ParseUint(string(raw), 10, 64)
		digits := len(raw) > 0 && len(raw) <= 20
		for _, c := range raw {
			digits = digits && '0' <= c && c <= '9'
		}
		switch {
		case digits && werr == nil:
			if err != nil || id != want {
				t.Fatalf("parseEventID(%q) = %d, %v; want %d", raw, id, err, want)
			}
		case err == nil:
			t.Fatalf("parseEventID(%q) accepted %d", raw, id)
		}
	})
}
