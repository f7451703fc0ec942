package journal

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ringside/ringside/core/internal/logtest"
	"github.com/ringside/ringside/core/internal/telemetry"
)

// observed is Options with a captured log and fresh metrics.
func observed() (Options, *logtest.Buffer, *telemetry.Metrics) {
	logs := &logtest.Buffer{}
	m := telemetry.NewMetrics()
	return Options{Logger: logs.Logger(), Metrics: m}, logs, m
}

// frames returns where each record of a journal file starts, and its end.
func frames(t *testing.T, b []byte) []int64 {
	t.Helper()
	var out []int64
	off := int64(headerLen)
	for off < int64(len(b)) {
		out = append(out, off)
		off += frameLen + int64(binary.LittleEndian.Uint32(b[off:]))
	}
	if off != int64(len(b)) {
		t.Fatalf("records end at %d; the file at %d", off, len(b))
	}
	return append(out, off)
}

// fiveAppends writes a journal of five appends, k0…k4, one record each,
// and returns its bytes and where each record starts (and the end).
func fiveAppends(t *testing.T) ([]byte, []int64, map[string]want) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "j.journal")
	j := mustOpen(t, path)
	model := map[string]want{}
	for i := range 5 {
		key := fmt.Sprint("k", i)
		data := strings.Repeat(key, 30)
		if err := j.Append(key, t0.Add(time.Hour), []byte(data)).Wait(ctx); err != nil {
			t.Fatal(err)
		}
		model[key] = want{deadline: t0.Add(time.Hour), data: data}
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b, frames(t, b), model
}

// quarantined returns the files kept aside for the journal at path.
func quarantined(t *testing.T, path string) []string {
	t.Helper()
	got, err := filepath.Glob(path + ".damaged-*")
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// A damaged record in the middle is skipped and the records after it are
// resumed; the file as found is kept aside, the damage logged with its
// offset and counted; the file is rewritten without it, so the next Open
// finds nothing to report. Before, Open took the damaged record for a torn
// tail and cut the file there: Pending returned k0 alone (or k0 and k1),
// and nothing was kept, logged or counted.
func TestDamageInTheMiddle(t *testing.T) {
	file, offs, model := fiveAppends(t)
	without := func(keys ...string) map[string]want {
		m := maps.Clone(model)
		for _, k := range keys {
			delete(m, k)
		}
		return m
	}
	for _, tc := range []struct {
		name    string
		damage  func(b []byte)
		want    map[string]want
		records float64 // the metric
		counted []int   // the records logged for each stretch (0: uncounted)
		offsets []int64 // where each stretch starts
	}{{
		name:    "2nd record's body",
		damage:  func(b []byte) { b[offs[1]+frameLen+20] ^= 0xff; b[offs[1]+frameLen+21] ^= 0x0f },
		want:    without("k1"),
		records: 1, counted: []int{1}, offsets: []int64{offs[1]},
	}, {
		name:    "2nd record's CRC",
		damage:  func(b []byte) { b[offs[1]+5] ^= 0x01 },
		want:    without("k1"),
		records: 1, counted: []int{1}, offsets: []int64{offs[1]},
	}, {
		// The lengths lead nowhere: the records are found by looking at
		// every offset, and only the bytes lost are known.
		name:    "2nd record's length",
		damage:  func(b []byte) { binary.LittleEndian.PutUint32(b[offs[1]:], 7) },
		want:    without("k1"),
		records: 1, counted: []int{0}, offsets: []int64{offs[1]},
	}, {
		name: "2nd record zeroed (a page lost)",
		damage: func(b []byte) {
			clear(b[offs[1]:offs[2]])
		},
		want:    without("k1"),
		records: 1, counted: []int{0}, offsets: []int64{offs[1]},
	}, {
		name:    "2nd and 3rd records",
		damage:  func(b []byte) { b[offs[1]+frameLen+20] ^= 0xff; b[offs[2]+frameLen+20] ^= 0xff },
		want:    without("k1", "k2"),
		records: 2, counted: []int{2}, offsets: []int64{offs[1]},
	}, {
		// The whole record between two damaged ones is kept: the lengths
		// lead to it.
		name:    "2nd and 4th records",
		damage:  func(b []byte) { b[offs[1]+frameLen+20] ^= 0xff; b[offs[3]+frameLen+20] ^= 0xff },
		want:    without("k1", "k3"),
		records: 2, counted: []int{1, 1}, offsets: []int64{offs[1], offs[3]},
	}, {
		name:    "1st record",
		damage:  func(b []byte) { b[offs[0]+frameLen+20] ^= 0xff },
		want:    without("k0"),
		records: 1, counted: []int{1}, offsets: []int64{offs[0]},
	}, {
		// Damage, and a torn tail after it: the tail is cut, the damage
		// reported.
		name:    "2nd record, and the 5th torn",
		damage:  func(b []byte) { b[offs[1]+frameLen+20] ^= 0xff },
		want:    without("k1", "k4"),
		records: 1, counted: []int{1}, offsets: []int64{offs[1]},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			b := bytes.Clone(file)
			tc.damage(b)
			if strings.Contains(tc.name, "torn") {
				b = b[:offs[4]+10]
			}
			path := filepath.Join(t.TempDir(), "ringside.journal")
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
			o, logs, m := observed()
			j := mustOpenWith(t, path, o)
			got := pendingAt(t, j, t0)
			check(t, got, tc.want)

			aside := quarantined(t, path)
			if len(aside) != 1 {
				t.Fatalf("files kept aside: %v; want one", aside)
			}
			if kept, err := os.ReadFile(aside[0]); err != nil || !bytes.Equal(kept, b) {
				t.Errorf("%s: %d bytes, %v; want the %d bytes of the damaged file as they were", aside[0], len(kept), err, len(b))
			}
			if st, err := os.Stat(aside[0]); err != nil || st.Mode().Perm() != 0o600 {
				t.Errorf("%s: mode %v, %v; want 0600 (it holds cc_param)", aside[0], st.Mode(), err)
			}
			if v := testutil.ToFloat64(m.JournalDamaged); v != tc.records {
				t.Errorf("ringside_journal_damaged_records_total: got %v; want %v", v, tc.records)
			}
			lines := logs.Find("journal damaged")
			if len(lines) != len(tc.offsets) {
				t.Fatalf("%d damage log lines; want %d\n%s", len(lines), len(tc.offsets), logs)
			}
			for i, l := range lines {
				if l["level"] != "ERROR" || l["offset"] != float64(tc.offsets[i]) || l["file"] != path || l["kept_in"] != aside[0] {
					t.Errorf("damage log line %d: %v; want ERROR naming %s, offset %d and %s", i, l, path, tc.offsets[i], aside[0])
				}
				if n := tc.counted[i]; n > 0 && l["records"] != float64(n) || n == 0 && l["records"] != "uncounted" {
					t.Errorf("damage log line %d: records %v; want %d (0: uncounted)", i, l["records"], n)
				}
				if l["bytes"] == nil || l["bytes"].(float64) <= 0 {
					t.Errorf("damage log line %d: bytes %v", i, l["bytes"])
				}
			}
			for _, secret := range []string{"k1k1k1", "k3k3k3"} {
				if strings.Contains(logs.String(), secret) {
					t.Errorf("the log shows record data (%q)", secret)
				}
			}

			// The file holds whole records only, now: the next Open has
			// nothing to report, and appends go on.
			if err := j.Append("next", t0.Add(time.Hour), []byte("n")).Wait(ctx); err != nil {
				t.Fatal(err)
			}
			if err := j.Close(); err != nil {
				t.Fatal(err)
			}
			records(t, path)
			o2, logs2, m2 := observed()
			j = mustOpenWith(t, path, o2)
			got = pendingAt(t, j, t0)
			w := maps.Clone(tc.want)
			w["next"] = want{deadline: t0.Add(time.Hour), data: "n"}
			check(t, got, w)
			if n := len(quarantined(t, path)); n != 1 {
				t.Errorf("%d files kept aside after a second open; want 1", n)
			}
			if v := testutil.ToFloat64(m2.JournalDamaged); v != 0 || len(logs2.Find("damaged")) != 0 {
				t.Errorf("second open: metric %v, log %s; want nothing to report", v, logs2)
			}
		})
	}
}

// The last record damaged (bad CRC, full length) is a torn tail: cut, not
// kept aside, not counted. A write that an OS crash tore can leave exactly
// that (the length and part of the body reached the disk), and the file is
// not fsynced per batch, so losing the last batch is the documented cost
// of an OS crash; nothing after it tells damage from a torn write. The
// same goes for garbage after the last record.
func TestDamagedLastRecordIsATornTail(t *testing.T) {
	file, offs, model := fiveAppends(t)
	without4 := maps.Clone(model)
	delete(without4, "k4")
	for _, tc := range []struct {
		name string
		b    func() []byte
		end  int64
		want map[string]want
	}{
		{"bad CRC", func() []byte { b := bytes.Clone(file); b[offs[4]+5] ^= 1; return b }, offs[4], without4},
		{"bad body", func() []byte { b := bytes.Clone(file); b[len(b)-1] ^= 1; return b }, offs[4], without4},
		{"zeroed", func() []byte { b := bytes.Clone(file); clear(b[offs[4]:]); return b }, offs[4], without4},
		{"cut short", func() []byte { return file[:len(file)-3] }, offs[4], without4},
		{"garbage after", func() []byte { return append(bytes.Clone(file), "not a record at all, just bytes"...) }, offs[5], model},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "ringside.journal")
			if err := os.WriteFile(path, tc.b(), 0o600); err != nil {
				t.Fatal(err)
			}
			o, logs, m := observed()
			j := mustOpenWith(t, path, o)
			got, err := j.Pending(context.Background(), t0)
			if err != nil {
				t.Fatal(err)
			}
			check(t, got, tc.want)
			if st, err := os.Stat(path); err != nil || st.Size() != tc.end {
				t.Errorf("file after open: %v, %v; want %d bytes", st.Size(), err, tc.end)
			}
			if aside := quarantined(t, path); len(aside) != 0 {
				t.Errorf("kept aside: %v; want nothing for a torn tail", aside)
			}
			if v := testutil.ToFloat64(m.JournalDamaged); v != 0 {
				t.Errorf("damaged records: %v; want 0", v)
			}
			if n := len(logs.Find("journal damaged")); n != 0 {
				t.Errorf("%d damage log lines; want none\n%s", n, logs)
			}
			if l := logs.Find("torn tail"); len(l) != 1 || l[0]["offset"] != float64(tc.end) {
				t.Errorf("torn tail log: %v; want one line at offset %d", l, tc.end)
			}
		})
	}
}

// FuzzOpen writes arbitrary bytes after, or over, the records of a valid
// journal: Open never fails or panics, Pending never returns an entry (or
// a delivered mark) that was not written, and the journal goes on working.
func FuzzOpen(f *testing.F) {
	f.Add(uint8(5), false, uint16(0), []byte("garbage"))
	f.Add(uint8(5), true, uint16(60), []byte{0xff, 0xff, 0xff, 0x7f})
	f.Add(uint8(3), true, uint16(30), make([]byte, 40))
	f.Add(uint8(7), false, uint16(0), []byte{30, 0, 0, 0, 1, 2, 3, 4, 1, 2, 0, 0, 0, 'k', '1'})
	f.Add(uint8(1), true, uint16(9), []byte{0, 0, 0, 0})
	// A whole record of the file written again elsewhere.
	f.Add(uint8(4), true, uint16(200), []byte{})
	f.Fuzz(func(t *testing.T, n uint8, over bool, pos uint16, garbage []byte) {
		ctx := context.Background()
		dir := t.TempDir()
		path := filepath.Join(dir, "j.journal")
		j := mustOpen(t, path)
		type entry struct {
			data  string
			marks map[[2]string]bool
		}
		written := map[string]entry{}
		for i := range int(n%8) + 1 {
			key := fmt.Sprint("k", i)
			data := strings.Repeat(string(rune('a'+i)), 10+i*7)
			if err := j.Append(key, t0.Add(time.Hour), []byte(data)).Wait(ctx); err != nil {
				t.Fatal(err)
			}
			e := entry{data, map[[2]string]bool{}}
			if i%2 == 0 {
				j.Delivered(key, "ios", fmt.Sprint("tok", i))
				e.marks[[2]string{"ios", fmt.Sprint("tok", i)}] = true
			}
			if i%3 == 2 {
				j.Finish(key)
			}
			written[key] = e
		}
		if err := j.Close(); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if over && len(b) > headerLen {
			at := headerLen + int(pos)%(len(b)-headerLen)
			if len(garbage) == 0 { // a copy of the record bytes from pos
				garbage = bytes.Clone(b[at:min(len(b), at+60)])
				at = len(b) / 2
			}
			b = append(b[:at], append(garbage, b[min(len(b), at+len(garbage)):]...)...)
		} else {
			b = append(b, garbage...)
		}
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		j, err = open(path, Options{})
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		t.Cleanup(func() { j.Close() })
		got := pendingAt(t, j, t0)
		seen := map[string]bool{}
		for _, e := range got {
			w, ok := written[e.Key]
			if !ok || seen[e.Key] || string(e.Data) != w.data || !e.Deadline.Equal(t0.Add(time.Hour)) {
				t.Fatalf("entry %q (data %q, deadline %v) was never appended so", e.Key, e.Data, e.Deadline)
			}
			seen[e.Key] = true
			for m := range e.Delivered {
				if !w.marks[m] {
					t.Fatalf("entry %s: mark %v was never written", e.Key, m)
				}
			}
		}
		if err := j.Append("next", t0.Add(time.Hour), []byte("n")).Wait(ctx); err != nil {
			t.Fatal(err)
		}
		j = reopened(t, j)
		again := pendingAt(t, j, t0)
		keys := func(es []Entry) []string {
			var out []string
			for _, e := range es {
				out = append(out, e.Key)
			}
			slices.Sort(out)
			return out
		}
		if w := append(keys(got), "next"); !slices.Equal(keys(again), slices.Sorted(slices.Values(w))) {
			t.Fatalf("after an append and a reopen: %v; want %v", keys(again), w)
		}
	})
}
