package cluster

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ringside/ringside/core/internal/cluster/redistest"
	"github.com/ringside/ringside/core/internal/directory"
	"github.com/ringside/ringside/core/internal/directory/directorytest"
)

// visibleWithin is how long a write through one client may take to be
// seen by a lookup through another before a test fails; the aim, and what
// the tests measure and log, is well under 100 ms.
const visibleWithin = 2 * time.Second

func startRedis(t testing.TB, opts ...redistest.Option) *redistest.Server {
	t.Helper()
	return redistest.Start(t, opts...)
}

var prefixes atomic.Int64

// connect connects to srv with s, whose address it sets, and whose key
// prefix it sets to a new one when empty, so each caller sees only its own
// keys; the client is closed when the test ends.
func connect(t testing.TB, srv *redistest.Server, s Settings) *Client {
	t.Helper()
	s.Addresses = []string{srv.Addr()}
	if s.KeyPrefix == "" {
		s.KeyPrefix = fmt.Sprintf("test%d:", prefixes.Add(1))
	}
	if s.Password == "" {
		s.Password = srv.Password()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Connect(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestConnect(t *testing.T) {
	srv := startRedis(t)
	c := connect(t, srv, Settings{})
	if err := c.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := c.Mode(); got != "single" {
		t.Errorf("got mode %q; want single", got)
	}
}

// TestCloseEndsGoroutines: Close ends the goroutines the client started
// (its connections' readers and writers).
func TestCloseEndsGoroutines(t *testing.T) {
	srv := startRedis(t)
	before := runtime.NumGoroutine()
	c, err := Connect(context.Background(), Settings{Addresses: []string{srv.Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	d := c.Directory()
	ctx := context.Background()
	if err := d.Put(ctx, "s", "u", "apns", "t", t0); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := d.Lookup(ctx, "s", "u"); err != nil {
			t.Fatal(err)
		}
	}
	c.Close()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("got %d goroutines after Close; want at most %d:\n%s",
				runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestConnectRefuses(t *testing.T) {
	cases := []struct {
		name string
		s    Settings
		want string
	}{
		{"no address", Settings{}, "no address"},
		{"brace in prefix", Settings{Addresses: []string{"127.0.0.1:1"}, KeyPrefix: "a{b}:"}, "contains '{' or '}'"},
		{"negative database", Settings{Addresses: []string{"127.0.0.1:1"}, Database: -1}, "negative"},
		{"negative ttl", Settings{Addresses: []string{"127.0.0.1:1"}, CacheTTL: -time.Second}, "negative"},
		{"nothing listening", Settings{Addresses: []string{"127.0.0.1:1"}, Password: "hunter2-secret"}, "connect to redis 127.0.0.1:1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Connect(context.Background(), tc.s)
			if err == nil {
				c.Close()
				t.Fatalf("got nil error; want one containing %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %q; want it to contain %q", err, tc.want)
			}
			if tc.s.Password != "" && strings.Contains(err.Error(), tc.s.Password) {
				t.Errorf("error %q contains the password", err)
			}
		})
	}
}

func TestPassword(t *testing.T) {
	const password = "s3cret-Pa55word"
	srv := startRedis(t, redistest.WithPassword(password))
	ctx := context.Background()

	c := connect(t, srv, Settings{})
	if err := c.Directory().Put(ctx, "s", "u", "apns", "t", t0); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct{ name, user, password string }{
		{"wrong password", "", "wrong-" + password},
		{"wrong user", "nobody", password},
		{"no password", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad, err := Connect(ctx, Settings{Addresses: []string{srv.Addr()}, Username: tc.user, Password: tc.password})
			if err == nil {
				// A client without a password may connect and fail at its
				// first command instead.
				err = bad.Ping(ctx)
				bad.Close()
			}
			if err == nil {
				t.Fatal("got nil error; want one")
			}
			if strings.Contains(err.Error(), password) {
				t.Errorf("error %q contains the password", err)
			}
			t.Logf("error: %v", err)
		})
	}
}

func TestRedact(t *testing.T) {
	err := redact(fmt.Errorf("dial: %w with pw=%s", context.DeadlineExceeded, "pw1"), "pw1")
	if got, want := err.Error(), "dial: context deadline exceeded with pw=[password]"; got != want {
		t.Errorf("got %q; want %q", got, want)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("errors.Is(%v, DeadlineExceeded) = false; want true", err)
	}
	if errors.Unwrap(err) != nil {
		t.Errorf("got an error that unwraps to %v; want none, whose text has the password", errors.Unwrap(err))
	}
	plain := errors.New("no secret here")
	if got := redact(plain, "pw1"); got != plain {
		t.Errorf("got %v; want the error unchanged", got)
	}
}

// TestLookupCached: a second lookup of a user comes from memory, and a
// write through the same client is seen at once.
func TestLookupCached(t *testing.T) {
	srv := startRedis(t)
	d := connect(t, srv, Settings{}).Directory()
	ctx := context.Background()
	if err := d.Put(ctx, "s", "u", "apns", "t", t0); err != nil {
		t.Fatal(err)
	}
	if _, cached, err := d.lookup(ctx, "s", "u"); err != nil || cached {
		t.Fatalf("first lookup: got cached %v, %v; want false, nil", cached, err)
	}
	devs, cached, err := d.lookup(ctx, "s", "u")
	if err != nil || !cached || len(devs) != 1 {
		t.Fatalf("second lookup: got %v, cached %v, %v; want 1 device, true, nil", devs, cached, err)
	}
	if err := d.Put(ctx, "s", "u", "fcm", "t", t0); err != nil {
		t.Fatal(err)
	}
	// The invalidation comes on the connection before the reply to the
	// write, so the next lookup already misses.
	devs, _, err = d.lookup(ctx, "s", "u")
	if err != nil || len(devs) != 2 {
		t.Errorf("after a put: got %v, %v; want 2 devices", devs, err)
	}
}

// TestOtherClientWrites: a write through client A (another replica) is
// seen by lookups through client B, whose cache held the user, within
// visibleWithin; the delay is logged.
func TestOtherClientWrites(t *testing.T) {
	srv := startRedis(t)
	const prefix = "shared:"
	a := connect(t, srv, Settings{KeyPrefix: prefix}).Directory()
	b := connect(t, srv, Settings{KeyPrefix: prefix}).Directory()
	ctx := context.Background()
	if err := a.Put(ctx, "s", "u", "apns", "t1", t0); err != nil {
		t.Fatal(err)
	}
	writes := []struct {
		name  string
		write func() error
		want  []directory.Device
	}{
		{"put", func() error { return a.Put(ctx, "s", "u", "fcm", "t2", t0) },
			[]directory.Device{dev("apns", "t1", t0), dev("fcm", "t2", t0)}},
		{"delete", func() error { return a.Delete(ctx, "s", "u", "apns", "t1") },
			[]directory.Device{dev("fcm", "t2", t0)}},
		{"prune", func() error { _, err := a.Prune(ctx, "s", "u", "fcm", "t2", time.Time{}); return err }, nil},
		{"put again", func() error { return a.Put(ctx, "s", "u", "sms", "+819012345678", t0) },
			[]directory.Device{dev("sms", "+819012345678", t0)}},
		{"delete user", func() error { return a.DeleteUser(ctx, "s", "u") }, nil},
	}
	for _, w := range writes {
		// b holds the user in its cache.
		for range 2 {
			if _, err := b.Lookup(ctx, "s", "u"); err != nil {
				t.Fatal(err)
			}
		}
		if _, cached, _ := b.lookup(ctx, "s", "u"); !cached {
			t.Fatalf("%s: b's lookup is not cached before the write", w.name)
		}
		start := time.Now()
		if err := w.write(); err != nil {
			t.Fatal(err)
		}
		for {
			got, err := b.Lookup(ctx, "s", "u")
			if err != nil {
				t.Fatal(err)
			}
			if slices.EqualFunc(got, w.want, deviceEqual) {
				break
			}
			if time.Since(start) > visibleWithin {
				t.Fatalf("%s: b still sees %v after %v; want %v", w.name, got, visibleWithin, w.want)
			}
			time.Sleep(50 * time.Microsecond)
		}
		t.Logf("%s through a seen by b %v after a sent it", w.name, time.Since(start))
	}
}

func TestKeyPrefixIsolation(t *testing.T) {
	srv := startRedis(t)
	ctx := context.Background()
	// "x*:" as a MATCH pattern would match "xy:" keys: it is escaped.
	x := connect(t, srv, Settings{KeyPrefix: "x*:"}).Directory()
	y := connect(t, srv, Settings{KeyPrefix: "xy:"}).Directory()
	if err := x.Put(ctx, "s", "u", "apns", "from-x", t0); err != nil {
		t.Fatal(err)
	}
	if err := y.Put(ctx, "s", "u", "apns", "from-y", t0); err != nil {
		t.Fatal(err)
	}
	if err := y.Put(ctx, "s", "v", "apns", "from-y", t0); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		d    *Directory
		want []string // the users Each lists
		tok  string
	}{{"x", x, []string{"u"}, "from-x"}, {"y", y, []string{"u", "v"}, "from-y"}} {
		got, err := tc.d.Lookup(ctx, "s", "u")
		if err != nil {
			t.Fatal(err)
		}
		if want := []directory.Device{dev("apns", tc.tok, t0)}; !slices.EqualFunc(got, want, deviceEqual) {
			t.Errorf("%s: got %v; want %v", tc.name, got, want)
		}
		if users := eachUsers(t, tc.d); !slices.Equal(users, tc.want) {
			t.Errorf("%s: Each lists %v; want %v", tc.name, users, tc.want)
		}
	}
	if err := x.DeleteUser(ctx, "s", "u"); err != nil {
		t.Fatal(err)
	}
	if got, _ := y.Lookup(ctx, "s", "u"); len(got) != 1 {
		t.Errorf("y after x deleted its user: got %v; want y's device", got)
	}
}

// eachUsers returns the user IDs d.Each lists, sorted.
func eachUsers(t *testing.T, d *Directory) []string {
	t.Helper()
	var users []string
	if err := d.Each(context.Background(), func(_, user string, _ []directory.Device) bool {
		users = append(users, user)
		return true
	}); err != nil {
		t.Fatal(err)
	}
	slices.Sort(users)
	return users
}

func TestEach(t *testing.T) {
	srv := startRedis(t)
	d := connect(t, srv, Settings{}).Directory()
	ctx := context.Background()
	want := map[string][]directory.Device{}
	// More users than a SCAN step, and IDs with odd bytes.
	for i := range 2*scanCount + 10 {
		svc, user := fmt.Sprintf("svc{%d}", i%3), fmt.Sprintf("ユーザー\x00%d}", i)
		devs := []directory.Device{dev("apns", fmt.Sprint(i), t0), dev("fcm", "x", t0.Add(time.Duration(i)))}
		for _, dv := range devs {
			if err := d.Put(ctx, svc, user, dv.Kind, dv.Token, dv.UpdatedAt); err != nil {
				t.Fatal(err)
			}
		}
		want[svc+"/"+user] = devs
	}
	got := map[string][]directory.Device{}
	if err := d.Each(ctx, func(svc, user string, devs []directory.Device) bool {
		got[svc+"/"+user] = devs
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Errorf("got %d users; want %d", len(got), len(want))
	}
	for k, w := range want {
		if !slices.EqualFunc(got[k], w, deviceEqual) {
			t.Errorf("%q: got %v; want %v", k, got[k], w)
		}
	}
	n := 0
	if err := d.Each(ctx, func(string, string, []directory.Device) bool { n++; return n < 3 }); err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Errorf("fn returning false: got %d calls; want 3", n)
	}
}

func TestMigrate(t *testing.T) {
	srv := startRedis(t)
	ctx := context.Background()
	from := openSQLite(t)
	to := connect(t, srv, Settings{}).Directory()
	for _, p := range []struct {
		svc, user, kind, token string
		at                     time.Time
	}{
		{"s", "u", "apns", "a", t0},
		{"s", "u", "fcm", "b", t0.Add(time.Nanosecond)},
		{"s", "v{}", "apns", "c", t0},
		{"s2", "u", "sms", "+819012345678", t0.Add(-time.Hour)},
	} {
		if err := from.Put(ctx, p.svc, p.user, p.kind, p.token, p.at); err != nil {
			t.Fatal(err)
		}
	}
	// Already in Redis: a later registration of a, which is kept, an
	// earlier one of c, which the copy replaces, and a device the embedded
	// directory lacks, which stays.
	later := t0.Add(time.Hour)
	for _, p := range []struct {
		user, token string
		at          time.Time
	}{{"u", "a", later}, {"v{}", "c", t0.Add(-time.Nanosecond)}, {"w", "d", t0}} {
		if err := to.Put(ctx, "s", p.user, "apns", p.token, p.at); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string][]directory.Device{
		"s/u":   {dev("apns", "a", later), dev("fcm", "b", t0.Add(time.Nanosecond))},
		"s/v{}": {dev("apns", "c", t0)},
		"s/w":   {dev("apns", "d", t0)},
		"s2/u":  {dev("sms", "+819012345678", t0.Add(-time.Hour))},
	}
	for round := range 2 { // idempotent
		users, devices, err := Migrate(ctx, from, to)
		if err != nil {
			t.Fatal(err)
		}
		if users != 3 || devices != 4 {
			t.Errorf("round %d: got %d users, %d devices; want 3, 4", round, users, devices)
		}
		for k, w := range want {
			svc, user, _ := strings.Cut(k, "/")
			got, err := to.Lookup(ctx, svc, user)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.EqualFunc(got, w, deviceEqual) {
				t.Errorf("round %d: %s: got %v; want %v", round, k, got, w)
			}
		}
	}

	t.Run("more users than a batch", func(t *testing.T) {
		from := openSQLite(t)
		to := connect(t, srv, Settings{}).Directory()
		const n = 2*migrateBatch + 3
		for i := range n {
			if err := from.Put(ctx, "s", fmt.Sprint(i), "apns", fmt.Sprint(i), t0); err != nil {
				t.Fatal(err)
			}
		}
		users, devices, err := Migrate(ctx, from, to)
		if err != nil || users != n || devices != n {
			t.Fatalf("got %d users, %d devices, %v; want %d, %d, nil", users, devices, err, n, n)
		}
		if got := len(eachUsers(t, to)); got != n {
			t.Errorf("Redis lists %d users; want %d", got, n)
		}
	})
}

func TestPutRefusesNULKind(t *testing.T) {
	srv := startRedis(t)
	d := connect(t, srv, Settings{}).Directory()
	if err := d.Put(context.Background(), "s", "u", "a\x00b", "t", t0); err == nil {
		t.Error("got nil error; want one")
	}
}

// TestRedisRestarted: after Redis is killed and started again (empty,
// without persistence), the client reconnects by itself, and a lookup
// cached before answers from the new server, not from memory.
func TestRedisRestarted(t *testing.T) {
	srv := startRedis(t)
	d := connect(t, srv, Settings{}).Directory()
	ctx := context.Background()
	if err := d.Put(ctx, "s", "u", "apns", "t", t0); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if devs, err := d.Lookup(ctx, "s", "u"); err != nil || len(devs) != 1 {
			t.Fatalf("got %v, %v; want 1 device", devs, err)
		}
	}
	srv.Restart(t)
	start := time.Now()
	var errs int
	for {
		devs, err := d.Lookup(ctx, "s", "u")
		if err == nil && len(devs) == 0 {
			break
		}
		if err != nil {
			errs++
		}
		if time.Since(start) > 10*time.Second {
			t.Fatalf("after the restart: got %v, %v; want no devices (the new server is empty)", devs, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("lookups answered by the new server after %v (%d failed lookups)", time.Since(start), errs)
	if err := d.Put(ctx, "s", "u", "fcm", "t2", t0); err != nil {
		t.Fatal(err)
	}
	if devs, err := d.Lookup(ctx, "s", "u"); err != nil || len(devs) != 1 || devs[0].Kind != "fcm" {
		t.Errorf("got %v, %v; want the fcm device", devs, err)
	}
}

func BenchmarkLookupCached(b *testing.B) {
	srv := startRedis(b)
	d := connect(b, srv, Settings{CacheTTL: time.Hour}).Directory()
	ctx := context.Background()
	putBench(b, d)
	b.ReportAllocs()
	for b.Loop() {
		devs, err := d.Lookup(ctx, "planetkit", "500")
		if err != nil || len(devs) != 2 {
			b.Fatalf("got %d devices, %v; want 2, nil", len(devs), err)
		}
	}
}

func BenchmarkLookupUncached(b *testing.B) {
	srv := startRedis(b)
	c := connect(b, srv, Settings{})
	d := c.Directory()
	ctx := context.Background()
	putBench(b, d)
	b.ReportAllocs()
	for b.Loop() {
		// A plain HGETALL, as a lookup that misses the cache sends.
		m, err := c.rdb.Do(ctx, c.rdb.B().Hgetall().Key(d.key("planetkit", "500")).Build()).AsStrMap()
		if err == nil {
			var devs []directory.Device
			devs, err = devices(m)
			if len(devs) != 2 {
				b.Fatalf("got %d devices; want 2", len(devs))
			}
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}

func putBench(b *testing.B, d *Directory) {
	ctx := context.Background()
	for _, kind := range []string{"apns", "fcm"} {
		if err := d.Put(ctx, "planetkit", "500", kind, fmt.Sprintf("%064x", 500), t0); err != nil {
			b.Fatal(err)
		}
	}
}

// TestRedisCluster: on a node that says it is a Redis Cluster, Connect
// talks Cluster, and the directory behaves as on a single node.
func TestRedisCluster(t *testing.T) {
	srv := startRedis(t, redistest.WithCluster())
	if got := connect(t, srv, Settings{}).Mode(); got != "cluster" {
		t.Fatalf("got mode %q; want cluster", got)
	}
	directorytest.Conformance(t, func(t *testing.T) directory.Store { return connect(t, srv, Settings{}).Directory() })
	t.Run("each and cache", func(t *testing.T) {
		d := connect(t, srv, Settings{}).Directory()
		ctx := context.Background()
		for _, u := range []string{"a", "b{", "}c"} {
			if err := d.Put(ctx, "s", u, "apns", "t", t0); err != nil {
				t.Fatal(err)
			}
		}
		if got, want := eachUsers(t, d), []string{"a", "b{", "}c"}; !slices.Equal(got, want) {
			t.Errorf("Each lists %v; want %v", got, want)
		}
		if _, err := d.Lookup(ctx, "s", "a"); err != nil {
			t.Fatal(err)
		}
		if _, cached, err := d.lookup(ctx, "s", "a"); err != nil || !cached {
			t.Errorf("second lookup: got cached %v, %v; want true, nil", cached, err)
		}
	})
}

// TestKeyLayout: a user's key has one hash tag, whatever bytes its IDs
// hold, and reads back into the IDs.
func TestKeyLayout(t *testing.T) {
	d := (&Client{prefix: "rs:"}).Directory()
	cases := []struct{ svc, user, key string }{
		{"s", "u", "rs:dev:{73:75}"},
		{"}{", "{u}", "rs:dev:{7d7b:7b757d}"},
		{"", "", "rs:dev:{:}"},
		{"a:b", "\x00", "rs:dev:{613a62:00}"},
	}
	for _, tc := range cases {
		k := d.key(tc.svc, tc.user)
		if k != tc.key {
			t.Errorf("key(%q, %q) = %q; want %q", tc.svc, tc.user, k, tc.key)
		}
		svc, user, ok := d.parseKey(k)
		if !ok || svc != tc.svc || user != tc.user {
			t.Errorf("parseKey(%q) = %q, %q, %v; want %q, %q, true", k, svc, user, ok, tc.svc, tc.user)
		}
	}
	for _, k := range []string{"other:dev:{73:75}", "rs:dev:{7:75}", "rs:dev:{73}", "rs:dev:{73:75", "rs:dup:{73:75}"} {
		if _, _, ok := d.parseKey(k); ok {
			t.Errorf("parseKey(%q): got ok; want not a directory key", k)
		}
	}
}
