// Package ids makes the prefixed, URL-safe random identifiers used everywhere (msg_, ten_, key_, prv_).
package ids

import (
	"crypto/rand"
	"strings"
	"time"
)

const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// Prefixes of each kind of identifier.
const (
	Message  = "msg"
	Tenant   = "ten"
	APIKey   = "key"
	Provider = "prv"
	Endpoint = "whe"
	Erasure  = "era"
	Device   = "dev"
)

// New returns prefix + "_" + 22 base62 characters (about 131 bits of randomness).
func New(prefix string) string {
	return prefix + "_" + Random(22)
}

// NewSortable returns prefix + "_" + 22 base62 characters: 8 encoding the current Unix time in
// milliseconds, then 14 random ones (about 83 bits). Ids made later sort later (within a
// millisecond, at random), like UUIDv7, so the B-tree indexes keyed by them grow at their right
// edge: an insert touches the last few pages instead of a random one anywhere in the index, and
// the pages a busy table needs stay few enough to remain in memory.
func NewSortable(prefix string) string {
	return NewSortableAt(prefix, time.Now())
}

// NewSortableAt is NewSortable for an id made at t: history loaded after the fact (a benchmark's
// seed, an import) sorts where it would have had it been made then.
func NewSortableAt(prefix string, t time.Time) string {
	return prefix + "_" + timePrefix(t) + Random(14)
}

// SortableTime is the time a NewSortable id was made at, to the millisecond; false for an id
// that is not one.
func SortableTime(id, prefix string) (time.Time, bool) {
	if !HasPrefix(id, prefix) || len(id) != len(prefix)+1+22 {
		return time.Time{}, false
	}
	var ms uint64
	for _, c := range id[len(prefix)+1 : len(prefix)+9] {
		ms = ms*62 + uint64(strings.IndexRune(alphabet, c))
	}
	return time.UnixMilli(int64(ms)), true
}

func timePrefix(t time.Time) string {
	ms := uint64(t.UnixMilli())
	var b [8]byte
	for i := len(b) - 1; i >= 0; i-- {
		b[i] = alphabet[ms%62]
		ms /= 62
	}
	return string(b[:])
}

// Random returns n base62 characters from crypto/rand.
func Random(n int) string {
	var b strings.Builder
	b.Grow(n)
	buf := make([]byte, n+n/2)
	for b.Len() < n {
		if _, err := rand.Read(buf); err != nil {
			panic("crypto/rand failed: " + err.Error()) // the platform is broken; nothing sane to do
		}
		for _, c := range buf {
			// 62*4 = 248: rejecting bytes >= 248 keeps the distribution uniform.
			if c < 248 && b.Len() < n {
				b.WriteByte(alphabet[c%62])
			}
		}
	}
	return b.String()
}

// HasPrefix reports whether id looks like an identifier of the given kind.
func HasPrefix(id, prefix string) bool {
	if !strings.HasPrefix(id, prefix+"_") || len(id) > 64 {
		return false
	}
	for _, c := range id[len(prefix)+1:] {
		if !strings.ContainsRune(alphabet, c) {
			return false
		}
	}
	return len(id) > len(prefix)+1
}
