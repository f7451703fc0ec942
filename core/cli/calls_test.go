package cli

import (
	"bytes"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A ringside that is stopped or hung accepts the admin connection and never
// answers: calls and diff give up after adminTimeout, saying so, instead of
// waiting forever.
func TestAdminAPINoAnswer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var held []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c) // read nothing, answer nothing
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		for _, c := range held {
			c.Close()
		}
	})
	defer func(d time.Duration) { adminTimeout = d }(adminTimeout)
	adminTimeout = 200 * time.Millisecond
	t.Chdir(filepath.Join(testdataDir, "diff"))
	addr := ln.Addr().String()
	for name, args := range map[string][]string{
		"calls": {"calls", "-admin", addr},
		"diff":  {"diff", "-config", "candidate.hcl", "-live", "live.hcl", "-admin", addr},
	} {
		var out, errb bytes.Buffer
		code := Main(args, &out, &errb, testBuiltins)
		if code != ExitError || !strings.Contains(errb.String(), "no answer within 200ms (is ringside stopped or hung?)") {
			t.Errorf("%s: exit %d; want %d and the admin API's silence named\nstdout: %s\nstderr: %s", name, code, ExitError, out.String(), errb.String())
		}
	}
}
