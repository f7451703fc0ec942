package dispatch

import (
	"strings"
	"testing"
	"time"
)

const lowerSID = "151ad995-749c-4a28-893f-636700469db1"

// A sid's hex digits may come in either case: the same UUID in upper and
// in lower case is one callback, rung once. Ids keep their case.
func TestDedupFoldsSIDCase(t *testing.T) {
	upper := strings.ToUpper(lowerSID)
	mixed := "151AD995-749c-4A28-893f-636700469DB1"
	now := time.Unix(1e9, 0)
	d := NewDedup(time.Minute)
	if !d.Claim(upper, "linecorp.com", "2809", now) {
		t.Fatal("first claim: got false; want true")
	}
	for _, sid := range []string{lowerSID, mixed, upper} {
		if d.Claim(sid, "linecorp.com", "2809", now) {
			t.Errorf("claim of %s after %s: got true; want false (a duplicate)", sid, upper)
		}
		if !d.Seen(sid, "linecorp.com", "2809", now) {
			t.Errorf("seen %s: got false; want true", sid)
		}
	}
	for _, other := range [][2]string{{"LINECORP.com", "2809"}, {"linecorp.com", "2809a"}} {
		if !d.Claim(lowerSID, other[0], other[1], now) {
			t.Errorf("claim for %v: got false; want true (ids are case-sensitive)", other)
		}
	}
	d.Forget(mixed, "linecorp.com", "2809")
	if !d.Claim(lowerSID, "linecorp.com", "2809", now) {
		t.Error("claim after Forget in another case: got false; want true")
	}
}

// The key of a callback costs no allocation, whatever the sid's case.
func TestKeyOfAllocs(t *testing.T) {
	user := strings.Repeat("u", 256) // the default bound
	for _, sid := range []string{lowerSID, strings.ToUpper(lowerSID)} {
		if n := testing.AllocsPerRun(100, func() { keyOf(sid, "linecorp.com", user) }); n != 0 {
			t.Errorf("keyOf(%s): %v allocations; want 0", sid, n)
		}
	}
	long := strings.Repeat("u", 1000) // past the default bound: still right
	if keyOf(lowerSID, "s", long) != keyOf(strings.ToUpper(lowerSID), "s", long) {
		t.Error("long ids: the sid's case changes the key")
	}
	if keyOf(lowerSID, "s", long) == keyOf(lowerSID, "s", long+"x") {
		t.Error("long ids: different users share a key")
	}
}

func BenchmarkDedupClaim(b *testing.B) {
	d := NewDedup(time.Minute)
	now := time.Unix(1e9, 0)
	for b.Loop() {
		d.Claim(lowerSID, "linecorp.com", "2809", now)
	}
}
