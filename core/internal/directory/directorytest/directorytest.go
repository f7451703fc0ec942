// Package directorytest holds the cases every directory.Store must pass:
// the embedded stores (memory, SQLite, the cache over SQLite) and the
// cluster's store on Redis run the same ones.
package directorytest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ringside/ringside/core/internal/directory"
)

var t0 = time.Date(2025, 3, 4, 5, 6, 7, 123456789, time.UTC)

type op struct {
	do          string // put, delete, deleteuser, prune
	svc, user   string
	kind, token string
	at          time.Time // put: now; prune: goneAt
	wantErr     error
	wantPruned  bool
}

func putOp(kind, token string, at time.Time) op {
	return op{do: "put", svc: "s", user: "u", kind: kind, token: token, at: at}
}

func deleteOp(kind, token string) op {
	return op{do: "delete", svc: "s", user: "u", kind: kind, token: token}
}

func pruneOp(kind, token string, goneAt time.Time, pruned bool) op {
	return op{do: "prune", svc: "s", user: "u", kind: kind, token: token, at: goneAt, wantPruned: pruned}
}

type storeCase struct {
	name string
	ops  []op
	// svc and user are whose devices are looked up: s and u if empty.
	svc, user string
	want      []directory.Device
}

var storeCases = []storeCase{
	{name: "unknown user", user: "nobody"},
	{
		name: "ordered by kind then token",
		ops: []op{
			putOp("fcm", "b", t0), putOp("apns", "z", t0), putOp("fcm", "a", t0.Add(time.Second)),
			{do: "put", svc: "s", user: "other", kind: "apns", token: "x", at: t0},
			{do: "put", svc: "s2", user: "u", kind: "apns", token: "y", at: t0},
		},
		want: []directory.Device{dev("apns", "z", t0), dev("fcm", "a", t0.Add(time.Second)), dev("fcm", "b", t0)},
	},
	{
		name: "ordered by kind, a kind the prefix of another",
		ops:  []op{putOp("ab", "a", t0), putOp("a", "z", t0), putOp("a", "b", t0)},
		want: []directory.Device{dev("a", "b", t0), dev("a", "z", t0), dev("ab", "a", t0)},
	},
	{
		name: "put is idempotent and refreshes updated_at",
		ops:  []op{putOp("apns", "t", t0), putOp("apns", "t", t0.Add(time.Hour))},
		want: []directory.Device{dev("apns", "t", t0.Add(time.Hour))},
	},
	{
		name: "local time is kept as UTC",
		ops:  []op{putOp("apns", "t", t0.In(time.FixedZone("x", 9*3600)))},
		want: []directory.Device{dev("apns", "t", t0)},
	},
	{
		name: "delete one",
		ops:  []op{putOp("apns", "t1", t0), putOp("apns", "t2", t0), deleteOp("apns", "t1")},
		want: []directory.Device{dev("apns", "t2", t0)},
	},
	{
		name: "delete absent",
		ops: []op{
			putOp("apns", "t", t0),
			{do: "delete", svc: "s", user: "u", kind: "fcm", token: "t", wantErr: directory.ErrNotFound},
			{do: "delete", svc: "s", user: "x", kind: "apns", token: "t", wantErr: directory.ErrNotFound},
		},
		want: []directory.Device{dev("apns", "t", t0)},
	},
	{
		name: "delete user",
		ops: []op{
			putOp("apns", "t1", t0), putOp("fcm", "t2", t0),
			{do: "put", svc: "s", user: "v", kind: "fcm", token: "t3", at: t0},
			{do: "deleteuser", svc: "s", user: "u"},
			{do: "deleteuser", svc: "s", user: "nobody"},
		},
	},
	{
		name: "prune gone after update",
		ops:  []op{putOp("apns", "t", t0), pruneOp("apns", "t", t0.Add(time.Nanosecond), true)},
	},
	{
		name: "prune keeps a device registered again since",
		ops:  []op{putOp("apns", "t", t0), pruneOp("apns", "t", t0, false), pruneOp("apns", "t", t0.Add(-time.Hour), false)},
		want: []directory.Device{dev("apns", "t", t0)},
	},
	{
		// Unix nanoseconds are beyond a double's exact integers: one
		// nanosecond apart must still compare.
		name: "prune compares to the nanosecond",
		ops: []op{
			putOp("apns", "t", t0), pruneOp("apns", "t", t0, false),
			putOp("fcm", "t", t0), pruneOp("fcm", "t", t0.Add(time.Nanosecond), true),
		},
		want: []directory.Device{dev("apns", "t", t0)},
	},
	{
		name: "prune before 1970",
		ops: []op{
			putOp("apns", "t", time.Unix(-100, 0)), pruneOp("apns", "t", time.Unix(-101, 0), false),
			pruneOp("apns", "t", time.Unix(-100, 0), false),
			putOp("fcm", "t", time.Unix(-100, 0)), pruneOp("fcm", "t", time.Unix(-99, 0), true),
			putOp("sms", "t", time.Unix(-100, 0)), pruneOp("sms", "t", time.Unix(5, 0), true),
		},
		want: []directory.Device{dev("apns", "t", time.Unix(-100, 0))},
	},
	{
		name: "prune without timestamp",
		ops:  []op{putOp("apns", "t", t0), putOp("fcm", "t", t0), pruneOp("apns", "t", time.Time{}, true)},
		want: []directory.Device{dev("fcm", "t", t0)},
	},
	{
		name: "prune absent",
		ops:  []op{pruneOp("apns", "t", time.Time{}, false), pruneOp("apns", "t", t0, false)},
	},
	{
		name: "prune far future",
		ops:  []op{putOp("apns", "t", t0), pruneOp("apns", "t", time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), true)},
	},
	{
		name: "odd bytes are kept exactly",
		ops: []op{
			{do: "put", svc: "svc/1", user: "ユーザー 'x\"; DROP", kind: "phone", token: "+81 90%2F1234/5678", at: t0},
		},
		svc: "svc/1", user: "ユーザー 'x\"; DROP",
		want: []directory.Device{dev("phone", "+81 90%2F1234/5678", t0)},
	},
	{
		name: "braces and NULs in IDs and tokens",
		ops: []op{
			{do: "put", svc: "}{", user: "{u}\x00", kind: "apns", token: "{t}\x00}", at: t0},
			{do: "put", svc: "}", user: "{{u}\x00", kind: "apns", token: "other", at: t0},
			{do: "put", svc: "", user: "", kind: "", token: "", at: t0},
		},
		svc: "}{", user: "{u}\x00",
		want: []directory.Device{dev("apns", "{t}\x00}", t0)},
	},
}

// Conformance runs the store cases against the stores open makes, each
// case on a new empty one, then a Lookup returning a copy, a cancelled
// context refused, and concurrent writers and readers (run it with -race).
func Conformance(t *testing.T, open func(t *testing.T) directory.Store) {
	for _, tc := range storeCases {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			ctx := context.Background()
			for i, o := range tc.ops {
				var err error
				var pruned bool
				switch o.do {
				case "put":
					err = s.Put(ctx, o.svc, o.user, o.kind, o.token, o.at)
				case "delete":
					err = s.Delete(ctx, o.svc, o.user, o.kind, o.token)
				case "deleteuser":
					err = s.DeleteUser(ctx, o.svc, o.user)
				case "prune":
					pruned, err = s.Prune(ctx, o.svc, o.user, o.kind, o.token, o.at)
				default:
					t.Fatalf("unknown op %q", o.do)
				}
				if !errors.Is(err, o.wantErr) {
					t.Fatalf("op %d (%s): got error %v; want %v", i, o.do, err, o.wantErr)
				}
				if pruned != o.wantPruned {
					t.Errorf("op %d (%s): got pruned %v; want %v", i, o.do, pruned, o.wantPruned)
				}
			}
			// Twice: the second lookup may come from a cache.
			for range 2 {
				got, err := s.Lookup(ctx, cmp.Or(tc.svc, "s"), cmp.Or(tc.user, "u"))
				if err != nil {
					t.Fatal(err)
				}
				if !slices.EqualFunc(got, tc.want, DeviceEqual) {
					t.Errorf("got %v; want %v", got, tc.want)
				}
				for _, d := range got {
					if d.UpdatedAt.Location() != time.UTC {
						t.Errorf("got location %v; want UTC", d.UpdatedAt.Location())
					}
				}
			}
		})
	}
	t.Run("lookup returns a copy", func(t *testing.T) {
		s := open(t)
		ctx := context.Background()
		if err := s.Put(ctx, "s", "u", "apns", "t", t0); err != nil {
			t.Fatal(err)
		}
		got, _ := s.Lookup(ctx, "s", "u")
		got[0].Token = "changed"
		again, _ := s.Lookup(ctx, "s", "u")
		if again[0].Token != "t" {
			t.Errorf("got token %q; want %q", again[0].Token, "t")
		}
	})
	t.Run("canceled context", func(t *testing.T) {
		s := open(t)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := s.Lookup(ctx, "s", "u"); err == nil {
			t.Errorf("Lookup: got nil error; want one")
		}
		if err := s.Put(ctx, "s", "u", "k", "t", t0); err == nil {
			t.Errorf("Put: got nil error; want one")
		}
	})
	t.Run("concurrent", func(t *testing.T) {
		s := open(t)
		ctx := context.Background()
		const workers, rounds = 8, 50
		var wg sync.WaitGroup
		errc := make(chan error, workers*rounds)
		for w := range workers {
			wg.Go(func() {
				user := fmt.Sprintf("u%d", w%3)
				for i := range rounds {
					tok := fmt.Sprintf("t%d-%d", w, i)
					if err := s.Put(ctx, "s", user, "apns", tok, t0.Add(time.Duration(i))); err != nil {
						errc <- err
						return
					}
					if _, err := s.Lookup(ctx, "s", user); err != nil {
						errc <- err
						return
					}
					if i%2 == 0 {
						if ok, err := s.Prune(ctx, "s", user, "apns", tok, time.Time{}); err != nil || !ok {
							errc <- fmt.Errorf("prune %s: got %v, %v; want true, nil", tok, ok, err)
							return
						}
					}
				}
			})
		}
		wg.Wait()
		close(errc)
		for err := range errc {
			t.Error(err)
		}
		total := 0
		for u := range 3 {
			devs, err := s.Lookup(ctx, "s", fmt.Sprintf("u%d", u))
			if err != nil {
				t.Fatal(err)
			}
			total += len(devs)
		}
		if want := workers * rounds / 2; total != want {
			t.Errorf("got %d devices; want %d", total, want)
		}
	})
}

// DeviceEqual reports whether a and b are the same device, updated at the
// same instant.
func DeviceEqual(a, b directory.Device) bool {
	return a.Kind == b.Kind && a.Token == b.Token && a.UpdatedAt.Equal(b.UpdatedAt)
}

func dev(kind, token string, at time.Time) directory.Device {
	return directory.Device{Kind: kind, Token: token, UpdatedAt: at}
}
