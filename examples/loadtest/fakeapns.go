package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// fakeAPNs is an HTTP/2 TLS server that answers like APNs and records,
// per callback, when its push arrived. It lives in the load generator's
// process so that send time and arrival time are read from one clock.
type fakeAPNs struct {
	srv    *httptest.Server
	URL    string
	CAFile string // its certificate as PEM, for SSL_CERT_FILE

	delay   time.Duration // answer after this long
	fault   float64       // fraction of pushes answered 503
	pub     *ecdsa.PublicKey
	teamID  string
	keyID   string
	checked sync.Map // bearer → error (nil when valid): verify each JWT once

	run atomic.Pointer[runRecord] // the run pushes are recorded into

	pushes, faults, badJWT, unknown atomic.Int64
}

// runRecord is one load run's arrivals, indexed by the callback's sequence
// number (the last 12 hex digits of its sid; the first 8 are the run tag).
type runRecord struct {
	tag      uint32
	arrivals []atomic.Int64 // unix nanoseconds of the first accepted push; 0: none
	dups     atomic.Int64
	foreign  atomic.Int64 // pushes of another run, or with an unreadable sid
}

func newRunRecord(tag uint32, n int) *runRecord {
	return &runRecord{tag: tag, arrivals: make([]atomic.Int64, n)}
}

func newFakeAPNs(dir string, delay time.Duration, fault float64, pub *ecdsa.PublicKey, teamID, keyID string) (*fakeAPNs, error) {
	f := &fakeAPNs{delay: delay, fault: fault, pub: pub, teamID: teamID, keyID: keyID}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	f.srv.EnableHTTP2 = true
	f.srv.Config.ErrorLog = nil
	f.srv.StartTLS()
	f.URL = f.srv.URL
	f.CAFile = filepath.Join(dir, "fake-apns-ca.pem")
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.srv.Certificate().Raw})
	if err := os.WriteFile(f.CAFile, ca, 0o600); err != nil {
		f.srv.Close()
		return nil, err
	}
	return f, nil
}

func (f *fakeAPNs) Close() { f.srv.Close() }

func (f *fakeAPNs) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	tok, ok := strings.CutPrefix(r.URL.Path, "/3/device/")
	w.Header().Set("apns-id", "5e0f0a6b-0000-4000-8000-000000000001")
	if r.Method != http.MethodPost || !ok || tok == "" || r.ProtoMajor != 2 {
		f.unknown.Add(1)
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, `{"reason":"BadPath"}`)
		return
	}
	if f.pub != nil {
		if err := f.verify(r.Header.Get("Authorization")); err != nil {
			f.badJWT.Add(1)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			_, _ = io.WriteString(w, `{"reason":"InvalidProviderToken"}`)
			return
		}
	}
	// The push arrives now; a push that will be answered 503 has not.
	f.pushes.Add(1)
	fault := f.fault > 0 && rand.Float64() < f.fault
	if !fault {
		f.record(body, time.Now().UnixNano())
	}
	if f.delay > 0 {
		t := time.NewTimer(f.delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	if fault {
		f.faults.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, `{"reason":"ServiceUnavailable"}`)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// record notes the arrival (the receipt, before any -apns-delay) of the push whose JSON body is body.
func (f *fakeAPNs) record(body []byte, at int64) {
	rr := f.run.Load()
	if rr == nil {
		return
	}
	tag, seq, ok := parseSID(sidOf(body))
	if !ok || tag != rr.tag || seq >= uint64(len(rr.arrivals)) {
		rr.foreign.Add(1)
		return
	}
	if !rr.arrivals[seq].CompareAndSwap(0, at) {
		rr.dups.Add(1)
	}
}

// sidOf reads the top-level "sid" of a push body: a scan for the key (the
// payloads of both servers write it without spaces), else a JSON decode.
func sidOf(body []byte) string {
	const key = `"sid":"`
	if i := bytes.Index(body, []byte(key)); i >= 0 && len(body) >= i+len(key)+36 {
		return string(body[i+len(key) : i+len(key)+36])
	}
	var v struct {
		SID string `json:"sid"`
	}
	_ = json.Unmarshal(body, &v)
	return v.SID
}

// makeSID builds a unique UUID-shaped sid from a run tag and a sequence number.
func makeSID(tag uint32, seq uint64) string {
	return fmt.Sprintf("%08x-0000-4000-8000-%012x", tag, seq)
}

func parseSID(s string) (tag uint32, seq uint64, ok bool) {
	if len(s) != 36 {
		return 0, 0, false
	}
	t, err1 := strconv.ParseUint(s[:8], 16, 32)
	n, err2 := strconv.ParseUint(s[24:], 16, 64)
	return uint32(t), n, err1 == nil && err2 == nil
}

// verify checks an ES256 provider token as APNs does (alg, kid, iss, a
// recent iat, the signature); each distinct token is verified once.
func (f *fakeAPNs) verify(auth string) error {
	bearer, ok := strings.CutPrefix(auth, "bearer ")
	if !ok {
		return errors.New("no bearer token")
	}
	if v, ok := f.checked.Load(bearer); ok {
		if v == nil {
			return nil
		}
		return v.(error)
	}
	err := verifyJWT(bearer, f.pub, f.teamID, f.keyID)
	if err != nil {
		f.checked.Store(bearer, err)
	} else {
		f.checked.Store(bearer, nil)
	}
	return err
}

func verifyJWT(bearer string, pub *ecdsa.PublicKey, teamID, keyID string) error {
	parts := strings.Split(bearer, ".")
	if len(parts) != 3 {
		return errors.New("not a JWS compact serialisation")
	}
	var hdr struct{ Alg, Kid string }
	var claims struct {
		Iss string
		Iat int64
	}
	for i, v := range []any{&hdr, &claims} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil || json.Unmarshal(b, v) != nil {
			return fmt.Errorf("JWT part %d is not base64url JSON", i)
		}
	}
	if hdr.Alg != "ES256" || hdr.Kid != keyID || claims.Iss != teamID {
		return fmt.Errorf("JWT alg %q kid %q iss %q", hdr.Alg, hdr.Kid, claims.Iss)
	}
	if age := time.Since(time.Unix(claims.Iat, 0)); age > time.Hour || age < -time.Minute {
		return fmt.Errorf("JWT iat is %v old", age)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || len(sig) != 64 {
		return errors.New("JWT signature is not r||s")
	}
	h := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if !ecdsa.Verify(pub, h[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		return errors.New("JWT signature does not verify")
	}
	return nil
}
