package directory

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// stores returns each Store implementation under test, opened fresh.
func stores() []struct {
	name string
	open func(t *testing.T) Store
} {
	return []struct {
		name string
		open func(t *testing.T) Store
	}{
		{"memory", func(t *testing.T) Store { return NewMemory() }},
		{"sqlite", func(t *testing.T) Store { return openTemp(t) }},
		{"cache over sqlite", func(t *testing.T) Store { return NewCache(openTemp(t), 3) }},
	}
}

// openTemp opens a store in a new folder (and subfolders), closed when the
// test ends.
func openTemp(t testing.TB) *SQLite {
	t.Helper()
	return openWith(t, filepath.Join(t.TempDir(), "sub", "dir", "ringside.db"), SQLiteOptions{})
}

// openWith opens the store at path with opt; it is closed when the test
// ends, if the test did not close it.
func openWith(t testing.TB, path string, opt SQLiteOptions) *SQLite {
	t.Helper()
	s, err := OpenSQLiteWith(path, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s
}

var t0 = time.Date(2025, 3, 4, 5, 6, 7, 123456789, time.UTC)

type op struct {
	do          string // put, delete, deleteuser, prune
	svc, user   string
	kind, token string
	at          time.Time // put: now; prune: goneAt
	wantErr     error
	wantPruned  bool
}

// The operations of most cases, on user u of service s.
func putOp(kind, token string, at time.Time) op {
	return op{do: "put", svc: "s", user: "u", kind: kind, token: token, at: at}
}

func deleteOp(kind, token string) op {
	return op{do: "delete", svc: "s", user: "u", kind: kind, token: token}
}

func pruneOp(kind, token string, goneAt time.Time, pruned bool) op {
	return op{do: "prune", svc: "s", user: "u", kind: kind, token: token, at: goneAt, wantPruned: pruned}
}

func TestStore(t *testing.T) {
	cases := []struct {
		name string
		ops  []op
		// svc and user are whose devices are looked up: s and u if empty.
		svc, user string
		want      []Device
	}{
		{name: "unknown user", user: "nobody"},
		{
			name: "ordered by kind then token",
			ops: []op{
				putOp("fcm", "b", t0), putOp("apns", "z", t0), putOp("fcm", "a", t0.Add(time.Second)),
				{do: "put", svc: "s", user: "other", kind: "apns", token: "x", at: t0},
				{do: "put", svc: "s2", user: "u", kind: "apns", token: "y", at: t0},
			},
			want: []Device{{"apns", "z", t0}, {"fcm", "a", t0.Add(time.Second)}, {"fcm", "b", t0}},
		},
		{
			name: "put is idempotent and refreshes updated_at",
			ops:  []op{putOp("apns", "t", t0), putOp("apns", "t", t0.Add(time.Hour))},
			want: []Device{{"apns", "t", t0.Add(time.Hour)}},
		},
		{
			name: "local time is kept as UTC",
			ops:  []op{putOp("apns", "t", t0.In(time.FixedZone("x", 9*3600)))},
			want: []Device{{"apns", "t", t0}},
		},
		{
			name: "delete one",
			ops:  []op{putOp("apns", "t1", t0), putOp("apns", "t2", t0), deleteOp("apns", "t1")},
			want: []Device{{"apns", "t2", t0}},
		},
		{
			name: "delete absent",
			ops: []op{
				putOp("apns", "t", t0),
				{do: "delete", svc: "s", user: "u", kind: "fcm", token: "t", wantErr: ErrNotFound},
				{do: "delete", svc: "s", user: "x", kind: "apns", token: "t", wantErr: ErrNotFound},
			},
			want: []Device{{"apns", "t", t0}},
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
			want: []Device{{"apns", "t", t0}},
		},
		{
			name: "prune without timestamp",
			ops:  []op{putOp("apns", "t", t0), putOp("fcm", "t", t0), pruneOp("apns", "t", time.Time{}, true)},
			want: []Device{{"fcm", "t", t0}},
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
			want: []Device{{"phone", "+81 90%2F1234/5678", t0}},
		},
	}
	for _, impl := range stores() {
		t.Run(impl.name, func(t *testing.T) {
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					s := impl.open(t)
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
					got, err := s.Lookup(ctx, cmp.Or(tc.svc, "s"), cmp.Or(tc.user, "u"))
					if err != nil {
						t.Fatal(err)
					}
					if !slices.EqualFunc(got, tc.want, deviceEqual) {
						t.Errorf("got %v; want %v", got, tc.want)
					}
					for _, d := range got {
						if d.UpdatedAt.Location() != time.UTC {
							t.Errorf("got location %v; want UTC", d.UpdatedAt.Location())
						}
					}
				})
			}
		})
	}
}

func deviceEqual(a, b Device) bool {
	return a.Kind == b.Kind && a.Token == b.Token && a.UpdatedAt.Equal(b.UpdatedAt)
}

func TestLookupReturnsCopy(t *testing.T) {
	for _, impl := range stores() {
		t.Run(impl.name, func(t *testing.T) {
			s := impl.open(t)
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
	}
}

func TestCanceledContext(t *testing.T) {
	for _, impl := range stores() {
		t.Run(impl.name, func(t *testing.T) {
			s := impl.open(t)
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			if _, err := s.Lookup(ctx, "s", "u"); err == nil {
				t.Errorf("Lookup: got nil error; want one")
			}
			if err := s.Put(ctx, "s", "u", "k", "t", t0); err == nil {
				t.Errorf("Put: got nil error; want one")
			}
		})
	}
}

// TestConcurrent hammers a store from many goroutines; run it with -race.
func TestConcurrent(t *testing.T) {
	for _, impl := range stores() {
		t.Run(impl.name, func(t *testing.T) {
			s := impl.open(t)
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
}

func BenchmarkLookup(b *testing.B) {
	for _, impl := range []struct {
		name string
		open func(b *testing.B) Store
	}{
		{"sqlite", func(b *testing.B) Store { return openTemp(b) }},
		{"memory", func(b *testing.B) Store { return NewMemory() }},
		{"cache over sqlite", func(b *testing.B) Store { return NewCache(openTemp(b), 0) }},
	} {
		b.Run(impl.name, func(b *testing.B) {
			s := impl.open(b)
			ctx := context.Background()
			for u := range 1000 {
				for _, kind := range []string{"apns", "fcm"} {
					tok := fmt.Sprintf("%064x", u)
					if err := s.Put(ctx, "planetkit", fmt.Sprint(u), kind, tok, t0); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.Run("serial", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					devs, err := s.Lookup(ctx, "planetkit", "500")
					if err != nil || len(devs) != 2 {
						b.Fatalf("got %d devices, %v; want 2, nil", len(devs), err)
					}
				}
			})
			b.Run("parallel", func(b *testing.B) {
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						devs, err := s.Lookup(ctx, "planetkit", "500")
						if err != nil || len(devs) != 2 {
							b.Errorf("got %d devices, %v; want 2, nil", len(devs), err)
							return
						}
					}
				})
			})
		})
	}
}

func TestShortToken(t *testing.T) {
	cases := []struct{ name, tok, want string }{
		{"apns", "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e7f8e", "a1b2c3…7f8e"},
		{"fcm-like", "fcm-registration-token-0123456789", "fcm-re…789"},
		{"short", "abc", "a…"},
		{"empty", "", "…"},
		{"phone", "+819012345678", "+81…78"},
		{"webpush", webPushToken("https://fcm.googleapis.com/fcm/send/dGVzdA:APA91b"), "webpush:fcm.googleapis.com…Xw2Q"},
		{"webpush with a port", webPushToken("https://127.0.0.1:8443/push/1"), "webpush:127.0.0.1:8443…Xw2Q"},
		{"webpush with an ipv6 host", webPushToken("https://[::1]:8443/p"), "webpush:[::1]:8443…Xw2Q"},
		{"webpush without a path", webPushToken("https://push.example"), "webpush:push.example…Xw2Q"},
		{"webpush with a query", webPushToken("https://push.example?x=1"), "webpush:push.example…Xw2Q"},
		// Anything else that looks like a subscription is shortened as
		// any token: the host and path rules keep an endpoint's secret
		// part, or credentials, out.
		{"userinfo", webPushToken("https://user:pw@push.example/p"), `{"endp…Q"}}`},
		{"http", webPushToken("http://push.example/p"), `{"endp…Q"}}`},
		{"no host", webPushToken("https:///p"), `{"endp…Q"}}`},
		{"host too long", webPushToken("https://" + strings.Repeat("a", 256) + "/p"), `{"endp…Q"}}`},
		{"auth too short", strings.Replace(webPushToken("https://push.example/p"), "Xw2Q", "", 1), `{"endp…4"}}`},
		{"auth not base64url", strings.Replace(webPushToken("https://push.example/p"), "Xw2Q", "Xw+Q", 1), `{"endp…Q"}}`},
		{"no auth", `{"endpoint":"https://push.example/p","keys":{}}`, `{"endp…:{}}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := ShortToken(tc.tok); got != tc.want {
				t.Errorf("ShortToken(%q) = %q; want %q", tc.tok, got, tc.want)
			}
		})
	}
	// Never more than a third of a token shows, whatever its length.
	for n := range 200 {
		tok := strings.Repeat("x", n)
		if got := strings.Count(ShortToken(tok), "x"); got > n/3 {
			t.Errorf("a %d-byte token shows %d bytes; want at most %d", n, got, n/3)
		}
	}
}

// webPushToken is a Web Push subscription to endpoint in its canonical
// JSON, whose auth secret ends in "Xw2Q".
func webPushToken(endpoint string) string {
	return `{"endpoint":"` + endpoint + `","keys":{"p256dh":"BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM","auth":"tBHItJI5svbpez7KI4Xw2Q"}}`
}
