package admin

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ringside/ringside/core/internal/directory"
)

// errNotDurable is a write's failure as the SQLite store reports it when
// its file is gone or full.
func errNotDurable(what string) error {
	return fmt.Errorf("%s: directory /d/ringside.db %w: write failed: database or disk is full (13)", what, directory.ErrNotDurable)
}

// A write that is not durable is a 503 naming the reason, never a 204.
func TestNotDurableWrites(t *testing.T) {
	h := New(Options{Store: failingStore{directory.NewMemory(), errNotDurable}})
	for _, s := range []step{
		{method: "PUT", path: "/v1/devices/s/u/apns/tok", status: 503, errCode: "not_durable"},
		{method: "DELETE", path: "/v1/devices/s/u/apns/tok", status: 503, errCode: "not_durable"},
		{method: "DELETE", path: "/v1/devices/s/u", status: 503, errCode: "not_durable"},
	} {
		w := s.run(t, h)
		var body map[string]string
		_ = json.Unmarshal(w.Body.Bytes(), &body)
		if !strings.Contains(body["message"], "disk is full") {
			t.Errorf("%s %s: message %q does not name the reason", s.method, s.path, body["message"])
		}
	}
}

// Against the real store: a device PUT after the file was replaced is
// refused with 503, and a GET does not list it.
func TestReplacedDirectoryOverHTTP(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ringside.db")
	cache := directory.NewCache(openSQLite(t, path), 0)
	srv := httptest.NewServer(New(Options{Store: cache}))
	defer srv.Close()
	other := filepath.Join(dir, "other.db")
	openSQLite(t, other).Close()
	if err := os.Rename(other, path); err != nil {
		t.Fatal(err)
	}
	for _, s := range []step{
		{method: "PUT", path: "/v1/devices/s/u/apns/tok", status: 503, errCode: "not_durable"},
		{method: "GET", path: "/v1/devices/s/u", status: 200, body: `{"devices":[]}`},
	} {
		s.send(t, srv)
	}
}
