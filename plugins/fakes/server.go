package fakes

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// server is the loopback server a fake runs on once started.
type server struct {
	// URL is the base URL once started.
	URL string

	srv   *httptest.Server
	conns atomic.Int64
}

// fake is a fake peer: a handler with the server it runs on.
type fake interface {
	http.Handler
	loopback() *server
}

// loopback is the server f runs on once started.
func (s *server) loopback() *server { return s }

// startFake runs f on 127.0.0.1 (as server.start does) and returns it.
func startFake[F fake](f F, tlsOn, clientCerts bool) F {
	f.loopback().start(f, tlsOn, clientCerts)
	return f
}

// start serves h on 127.0.0.1: over TLS with HTTP/2 when tlsOn (asking
// for a client certificate when clientCerts), else plain HTTP/1.1. It
// sets URL.
func (s *server) start(h http.Handler, tlsOn, clientCerts bool) {
	s.srv = httptest.NewUnstartedServer(h)
	// Clients that go away mid-handshake (killed processes) are expected.
	s.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	s.srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.conns.Add(1)
		}
	}
	if tlsOn {
		s.srv.EnableHTTP2 = true
		if clientCerts {
			s.srv.TLS = &tls.Config{ClientAuth: tls.RequireAnyClientCert}
		}
		s.srv.StartTLS()
	} else {
		s.srv.Start()
	}
	s.URL = s.srv.URL
}

// Close stops the server and closes its connections (a fake never started
// has nothing to close).
func (s *server) Close() {
	if s.srv != nil {
		s.srv.Close()
	}
}

// Conns is the number of connections clients opened to the server.
func (s *server) Conns() int { return int(s.conns.Load()) }

// certPool trusts the server's TLS certificate.
func (s *server) certPool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(s.srv.Certificate())
	return p
}

// writeCA writes the server's TLS certificate as PEM to dir/ca.pem and
// returns the path.
func (s *server) writeCA(dir string) (string, error) {
	path := filepath.Join(dir, "ca.pem")
	b := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.srv.Certificate().Raw})
	return path, os.WriteFile(path, b, 0o600)
}

// script is a fake's scripted answer A to a well-formed request R. With no
// function set (or nil), it answers A's zero value, which each fake reads
// as success.
type script[R, A any] struct{ fn atomic.Pointer[func(*R) A] }

// set replaces the function.
func (s *script[R, A]) set(fn func(*R) A) { s.fn.Store(&fn) }

// answer is the function's answer to r.
func (s *script[R, A]) answer(r *R) A {
	if fn := s.fn.Load(); fn != nil && *fn != nil {
		return (*fn)(r)
	}
	var zero A
	return zero
}

// copies returns a copy of each record, in order.
func copies[T any](records []*T) []T {
	out := make([]T, len(records))
	for i, r := range records {
		out[i] = *r
	}
	return out
}

// setHeader sets each of h on w's header.
func setHeader(w http.ResponseWriter, h map[string]string) {
	for k, v := range h {
		w.Header().Set(k, v)
	}
}

// respond writes an answer (header, status, body) and records its status
// in *recorded under mu, for the fakes whose requests keep what they were
// answered.
func respond(w http.ResponseWriter, status int, header map[string]string, body string, mu *sync.Mutex, recorded *int) {
	setHeader(w, header)
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
	mu.Lock()
	*recorded = status
	mu.Unlock()
}

// wait holds an answer for delay, then until hold is closed; it reports
// false when the client went away first (no answer is written then).
func wait(r *http.Request, delay time.Duration, hold <-chan struct{}) bool {
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return false
		}
	}
	if hold != nil {
		select {
		case <-hold:
		case <-r.Context().Done():
			return false
		}
	}
	return r.Context().Err() == nil
}
