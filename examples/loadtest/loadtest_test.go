package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"
)

// TestMain serves the baseline or the floor when the smoke tests start
// this test binary as one.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 {
		serve := map[string]func([]string) error{baselineArg: serveBaseline, floorArg: serveFloor}[os.Args[1]]
		if serve != nil {
			if err := serve(os.Args[2:]); err != nil {
				os.Exit(1)
			}
			os.Exit(0)
		}
	}
	os.Exit(m.Run())
}

func TestSID(t *testing.T) {
	s := makeSID(0xdeadbeef, 123456789)
	if len(s) != 36 {
		t.Fatalf("sid %q is %d bytes", s, len(s))
	}
	tag, seq, ok := parseSID(sidOf([]byte(`{"cc_param":"x","sid":"` + s + `","app_caller_sid":"a"}`)))
	if !ok || tag != 0xdeadbeef || seq != 123456789 {
		t.Fatalf("parseSID = %x %d %t", tag, seq, ok)
	}
	if got := sidOf([]byte(`{"sid" : "` + s + `"}`)); got != s {
		t.Fatalf("sidOf with spaces = %q", got)
	}
}

// TestSmoke runs one second of load at a low rate against each server
// (it builds ringside, so it takes a while the first time): every push
// arrives, and the ratios are printed. With 5% of pushes answered 503,
// ringside and the baseline retry them; the floor does not retry, so its
// run has every push answered.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds ringside and runs one-second loads; not in -short")
	}
	for _, tc := range []struct {
		name    string
		floor   bool
		apns503 float64
		want    []string
	}{
		{"ringside", false, 0.05, []string{"ringside: 50/s", "baseline: 50/s", "ringside / baseline:"}},
		{"floor", true, 0, []string{"floor: 50/s", "floor / baseline:", "ringside / baseline:"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			o := options{Mode: "both", Rate: 50, Duration: time.Second, Warmup: 200 * time.Millisecond, Drain: 3 * time.Second,
				Conns: 8, Inflight: 1000, Timeout: 5 * time.Second, CheckJWT: true, Journal: true, APNs503: tc.apns503,
				Floor: tc.floor, FloorMTLS: true}
			if err := run(t.Context(), o, &out); err != nil {
				t.Fatalf("%v\n%s", err, out.String())
			}
			t.Log(out.String())
			for _, want := range tc.want {
				if !strings.Contains(out.String(), want) {
					t.Errorf("output lacks %q", want)
				}
			}
			if n, servers := strings.Count(out.String(), "lost 0 "), len(o.variants()); n != servers {
				t.Errorf("%d of %d servers lost no push:\n%s", n, servers, out.String())
			}
		})
	}
}
