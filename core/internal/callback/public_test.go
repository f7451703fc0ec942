package callback

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// rawGet sends "GET target HTTP/1.1" as is on c (no client cleans the
// path) and reads the answer.
func rawGet(t *testing.T, c net.Conn, target string) *http.Response {
	t.Helper()
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", target); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("GET %s: %v", target, err)
	}
	return resp
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Unclean paths are a 404, never a redirect to notify_cb, and never reach
// the handler: its source and token checks cannot be stepped around.
func TestOnlyPath(t *testing.T) {
	query := "?" + lineExample(t)
	for _, tc := range []struct {
		name    string
		handler *Handler
	}{
		{"open", &Handler{Acceptor: &fakeAcceptor{answer: accepted}}},
		{"token", &Handler{Acceptor: &fakeAcceptor{answer: accepted}, NotifyToken: "s3cr3t"}},
		{"allow_cidrs", &Handler{Acceptor: &fakeAcceptor{answer: accepted}, AllowCIDRs: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(OnlyPath("/notify_cb", tc.handler))
			defer srv.Close()
			addr := srv.Listener.Addr().String()
			for _, target := range []string{
				"//notify_cb", "/./notify_cb", "/notify_cb/../notify_cb", "/x/../notify_cb",
				"/notify_cb/", "/Notify_cb", "/", "/metrics", "//notify_cb/",
			} {
				resp := rawGet(t, dial(t, addr), target+query)
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusNotFound || string(body) != `{"error":"not_found"}` || resp.Header.Get("Location") != "" {
					t.Errorf("%s: got %d %s (Location %q); want 404 {\"error\":\"not_found\"}",
						target, resp.StatusCode, body, resp.Header.Get("Location"))
				}
			}
			want := map[string]int{"open": 200, "token": 401, "allow_cidrs": 403}[tc.name]
			resp := rawGet(t, dial(t, addr), "/notify_cb"+query)
			resp.Body.Close()
			if resp.StatusCode != want {
				t.Errorf("/notify_cb: got %d; want %d", resp.StatusCode, want)
			}
			if a := tc.handler.Acceptor.(*fakeAcceptor); len(a.calls) > 1 || want != 200 && len(a.calls) > 0 {
				t.Errorf("acceptor saw %d calls; want %d", len(a.calls), map[bool]int{true: 1}[want == 200])
			}
		})
	}
}

// limitedServer serves h on a listener bounded to n connections.
func limitedServer(t *testing.T, n int, h http.Handler) (*ConnLimiter, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lim := LimitListener(ln, n)
	srv := &http.Server{Handler: h, ConnState: lim.ConnState}
	go srv.Serve(lim)
	t.Cleanup(func() { srv.Close() })
	return lim, ln.Addr().String()
}

// waitConns waits until lim has open connections, idle of them idle (or
// new).
func waitConns(t *testing.T, lim *ConnLimiter, open, idle int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		lim.mu.Lock()
		got := len(lim.idle)
		lim.mu.Unlock()
		if got == idle && lim.Open() == open {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d open, %d idle connections; want %d, %d", lim.Open(), got, open, idle)
		}
	}
}

// waitSeq waits until lim has seen n connections turn new or idle.
func waitSeq(t *testing.T, lim *ConnLimiter, n uint64) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		lim.mu.Lock()
		got := lim.seq
		lim.mu.Unlock()
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d connections turned new or idle; want %d", got, n)
		}
	}
}

var okHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })

func roundTrip(t *testing.T, c net.Conn) {
	t.Helper()
	resp := rawGet(t, c, "/")
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("got %d; want 200", resp.StatusCode)
	}
}

// At the bound, a new connection takes the place of the one idle the
// longest: idle keep-alives cannot keep callers out.
func TestConnLimiterClosesIdlest(t *testing.T) {
	lim, addr := limitedServer(t, 2, okHandler)
	a := dial(t, addr)
	roundTrip(t, a)
	waitSeq(t, lim, 2) // a new, then idle
	b := dial(t, addr)
	roundTrip(t, b)
	waitSeq(t, lim, 4)
	c := dial(t, addr)
	roundTrip(t, c)
	// a was closed to make room; b is still usable.
	_ = a.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := a.Read(make([]byte, 1)); err == nil {
		t.Errorf("the idlest connection: read %d bytes; want it closed", n)
	}
	roundTrip(t, b)
	if got := lim.Open(); got != 2 {
		t.Errorf("open: got %d; want 2", got)
	}
}

// When every connection is busy, a new one waits for a place.
func TestConnLimiterWaitsWhenAllBusy(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-release
		}
		io.WriteString(w, "ok")
	})
	lim, addr := limitedServer(t, 1, h)
	defer once.Do(func() { close(release) })
	busy := dial(t, addr)
	if _, err := io.WriteString(busy, "GET /slow HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	waitSeq(t, lim, 1)      // busy is new,
	waitConns(t, lim, 1, 0) // then active: the server read its request
	waiting := dial(t, addr)
	done := make(chan struct{})
	go func() {
		defer close(done)
		roundTrip(t, waiting)
	}()
	select {
	case <-done:
		t.Fatal("a connection was served past the bound while the other was busy")
	case <-time.After(100 * time.Millisecond):
	}
	once.Do(func() { close(release) })
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the waiting connection was not served once the busy one ended")
	}
}

// Close ends an Accept waiting for a place.
func TestConnLimiterCloseEndsWaitingAccept(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lim := LimitListener(ln, 1)
	first := make(chan net.Conn, 1)
	go func() {
		c, _ := lim.Accept()
		first <- c
	}()
	dial(t, ln.Addr().String())
	c := <-first
	defer c.Close()
	errc := make(chan error, 1)
	go func() {
		_, err := lim.Accept()
		errc <- err
	}()
	dial(t, ln.Addr().String())
	time.Sleep(50 * time.Millisecond)
	lim.Close()
	select {
	case err := <-errc:
		if err == nil {
			t.Error("Accept after Close: got a connection")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Accept still waiting after Close")
	}
	c.Close()
	c.Close()
	if got := lim.Open(); got != 0 {
		t.Errorf("open after closing twice: got %d; want 0", got)
	}
}

func TestMaxConns(t *testing.T) {
	n := MaxConns()
	if n < 1 || n > DefaultMaxConns {
		t.Errorf("got %d; want 1..%d", n, DefaultMaxConns)
	}
	if lim := openFileLimit(); lim > 0 && uint64(n) > lim/2+1 {
		t.Errorf("got %d with an open-file limit of %d; want at most half", n, lim)
	}
}
