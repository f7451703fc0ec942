package directory

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// helperEnv makes the test binary act as a second process on a directory
// file: it lists a user's devices, adds one, and prints the list as JSON.
const helperEnv = "RINGSIDE_DIRECTORY_HELPER"

func TestMain(m *testing.M) {
	if path := os.Getenv(helperEnv); path != "" {
		if err := helper(path); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func helper(path string) error {
	s, err := OpenSQLite(path)
	if err != nil {
		return err
	}
	defer s.Close()
	ctx := context.Background()
	devs, err := s.Lookup(ctx, "s", "u")
	if err != nil {
		return err
	}
	if err := s.Put(ctx, "s", "u", "fcm", "from-child", t0); err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(devs)
}

func TestTwoHandlesShareFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ringside.db")
	a, b := openWith(t, path, SQLiteOptions{}), openWith(t, path, SQLiteOptions{})
	ctx := context.Background()

	put(t, a, "ta")
	if err := b.Put(ctx, "s", "u", "fcm", "tb", t0); err != nil {
		t.Fatal(err)
	}
	want := []Device{{"apns", "ta", t0}, {"fcm", "tb", t0}}
	for name, s := range map[string]*SQLite{"a": a, "b": b} {
		got, err := s.Lookup(ctx, "s", "u")
		if err != nil {
			t.Fatal(err)
		}
		if !slices.EqualFunc(got, want, deviceEqual) {
			t.Errorf("%s: got %v; want %v", name, got, want)
		}
	}
	if err := b.Delete(ctx, "s", "u", "apns", "ta"); err != nil {
		t.Fatal(err)
	}
	got, _ := a.Lookup(ctx, "s", "u")
	if want := want[1:]; !slices.EqualFunc(got, want, deviceEqual) {
		t.Errorf("after delete: got %v; want %v", got, want)
	}
}

// TestOtherProcess opens the file from a subprocess while this process
// holds it open, as ringside explain does beside ringside serve.
func TestOtherProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ringside.db")
	s := openWith(t, path, SQLiteOptions{})
	ctx := context.Background()
	put(t, s, "from-parent")
	// Keep a read connection busy too, so the child meets a live pool.
	if _, err := s.Lookup(ctx, "s", "u"); err != nil {
		t.Fatal(err)
	}

	// Keep writing meanwhile: the child must wait out the lock, not fail.
	stop := make(chan struct{})
	wrote := make(chan error, 1)
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				wrote <- s.DeleteUser(ctx, "s", "busy")
				return
			default:
			}
			if err := s.Put(ctx, "s", "busy", "apns", fmt.Sprint(i%10), t0); err != nil {
				wrote <- err
				return
			}
		}
	}()
	defer func() {
		close(stop)
		if err := <-wrote; err != nil {
			t.Errorf("parent writes: %v", err)
		}
	}()

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+path)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v: %s", err, stderr.String())
	}
	var seen []Device
	if err := json.Unmarshal(out, &seen); err != nil {
		t.Fatalf("child output %q: %v", out, err)
	}
	if want := []Device{{"apns", "from-parent", t0}}; !slices.EqualFunc(seen, want, deviceEqual) {
		t.Errorf("child saw %v; want %v", seen, want)
	}

	got, err := s.Lookup(ctx, "s", "u")
	if err != nil {
		t.Fatal(err)
	}
	if want := []Device{{"apns", "from-parent", t0}, {"fcm", "from-child", t0}}; !slices.EqualFunc(got, want, deviceEqual) {
		t.Errorf("parent sees %v; want %v", got, want)
	}
}

func TestOpenSQLiteSettings(t *testing.T) {
	s := openTemp(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name, pragma string
		want         int64
	}{
		{"writer busy_timeout", "busy_timeout", busyTimeout.Milliseconds()},
		{"writer synchronous NORMAL", "synchronous", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got int64
			if err := s.c.Load().wdb.QueryRowContext(ctx, "PRAGMA "+tc.pragma).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got %d; want %d", got, tc.want)
			}
		})
	}
	var mode string
	if err := s.c.Load().rdb.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if mode != "wal" {
		t.Errorf("got journal_mode %q; want wal", mode)
	}
	if _, err := s.c.Load().rdb.ExecContext(ctx, "DELETE FROM devices"); err == nil {
		t.Errorf("write through the read pool: got nil error; want one")
	}
}

func TestOpenSQLitePathWithOddCharacters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a?b#c%20d", "ring side.db")
	s := openWith(t, path, SQLiteOptions{})
	put(t, s, "t")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("got %v; want the file at %s", err, path)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second close: got %v; want nil", err)
	}
}

func TestOpenSQLiteErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "plain-file")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	notDB := filepath.Join(dir, "not.db")
	if err := os.WriteFile(notDB, []byte(strings.Repeat("not a database ", 100)), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, path string }{
		{"parent is a file", filepath.Join(file, "ringside.db")},
		{"not a database", notDB},
		{"a folder", dir},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := OpenSQLite(tc.path)
			if err == nil {
				s.Close()
				t.Fatalf("got nil error; want one")
			}
			if !strings.Contains(err.Error(), tc.path) {
				t.Errorf("got %q; want it to name %s", err, tc.path)
			}
		})
	}
}

func TestPruneRacesPut(t *testing.T) {
	// A Put that lands after the provider's timestamp must survive a
	// Prune, whatever the interleaving: the decision is in the DELETE.
	s := openTemp(t)
	ctx := context.Background()
	goneAt := t0
	for i := range 50 {
		tok := fmt.Sprint(i)
		if err := s.Put(ctx, "s", "u", "apns", tok, t0.Add(-time.Second)); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- s.Put(ctx, "s", "u", "apns", tok, t0.Add(time.Second)) }()
		if _, err := s.Prune(ctx, "s", "u", "apns", tok, goneAt); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		// Either order leaves the refreshed device: Put then Prune keeps
		// it (updated after goneAt); Prune then Put re-inserts it.
		devs, _ := s.Lookup(ctx, "s", "u")
		if !slices.ContainsFunc(devs, func(d Device) bool { return d.Token == tok }) {
			t.Fatalf("round %d: refreshed device lost", i)
		}
	}
	_, err := s.Prune(ctx, "s", "u", "apns", "none", goneAt)
	if errors.Is(err, ErrNotFound) {
		t.Errorf("prune of an absent device: got ErrNotFound; want nil")
	}
}
