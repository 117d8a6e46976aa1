package api

import (
	"crypto/sha256"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/store"
)

// A million lookups of distinct made-up keys, as a flood without credentials sends, must leave
// the live heap where it was: "not found" entries are bounded and short-lived.
func TestAuthCacheStaysBoundedUnderDistinctBadKeys(t *testing.T) {
	c := newAuthCache(10 * time.Second)
	notFound := func() (domain.APIKey, error) { return domain.APIKey{}, store.ErrNotFound }
	live := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	for i := range authCacheMissing { // the cache's own footprint, full
		_, _, _ = c.keys.get(sha256.Sum256([]byte("warm "+strconv.Itoa(i))), notFound)
	}
	before := live()
	for i := range 1_000_000 {
		if _, found, err := c.keys.get(sha256.Sum256([]byte("ck_tenant_"+strconv.Itoa(i))), notFound); found || err != nil {
			t.Fatalf("bad key %d: found %v, err %v", i, found, err)
		}
	}
	after := live()
	t.Logf("live heap %d KiB before, %d KiB after a million distinct bad keys", before>>10, after>>10)
	if after > before+4<<20 {
		t.Fatalf("live heap grew from %d to %d KiB", before>>10, after>>10)
	}
	if n := c.keys.missing.Len(); n > authCacheMissing {
		t.Fatalf("%d not-found entries kept, bound %d", n, authCacheMissing)
	}
}
