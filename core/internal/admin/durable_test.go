package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ringside/ringside/core/internal/directory"
)

// notDurableStore refuses every write as the SQLite store does when its
// file is gone or full.
type notDurableStore struct{ directory.Store }

func errNotDurable(what string) error {
	return fmt.Errorf("%s: directory /d/ringside.db %w: write failed: database or disk is full (13)", what, directory.ErrNotDurable)
}

func (notDurableStore) Put(context.Context, string, string, string, string, time.Time) error {
	return errNotDurable("put device")
}

func (notDurableStore) Delete(context.Context, string, string, string, string) error {
	return errNotDurable("delete device")
}

func (notDurableStore) DeleteUser(context.Context, string, string) error {
	return errNotDurable("delete user")
}

// A write that is not durable is a 503 naming the reason, never a 204.
func TestNotDurableWrites(t *testing.T) {
	h := New(Options{Store: notDurableStore{directory.NewMemory()}})
	for _, s := range []step{
		{method: "PUT", path: "/v1/devices/s/u/apns/tok", status: 503, errCode: "not_durable"},
		{method: "DELETE", path: "/v1/devices/s/u/apns/tok", status: 503, errCode: "not_durable"},
		{method: "DELETE", path: "/v1/devices/s/u", status: 503, errCode: "not_durable"},
	} {
		r := httptest.NewRequest(s.method, s.path, nil)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		check(t, s, w.Code, w.Header(), w.Body.Bytes())
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
	store, err := directory.OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	cache := directory.NewCache(store, 0)
	srv := httptest.NewServer(New(Options{Store: cache}))
	defer srv.Close()
	other := filepath.Join(dir, "other.db")
	o, err := directory.OpenSQLite(other)
	if err != nil {
		t.Fatal(err)
	}
	o.Close()
	if err := os.Rename(other, path); err != nil {
		t.Fatal(err)
	}
	for _, s := range []step{
		{method: "PUT", path: "/v1/devices/s/u/apns/tok", status: 503, errCode: "not_durable"},
		{method: "GET", path: "/v1/devices/s/u", status: 200, body: `{"devices":[]}`},
	} {
		req, err := http.NewRequest(s.method, srv.URL+s.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		check(t, s, resp.StatusCode, resp.Header, body)
	}
}
