package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ringside/ringside/core/internal/cluster/redistest"
	goldenfile "github.com/ringside/ringside/core/internal/golden"
)

// clusterConfig is the route tests' config with a cluster block on addr,
// whose directory block names a file that does not exist.
func clusterConfig(t *testing.T, addr, extra string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testdataDir, "routetest", "config.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.Replace(string(b), `path = "devices.db"`, `path = "nowhere.db"`, 1)
	return cfg + "\ncluster \"redis\" {\n  addresses  = [\"" + addr + "\"]\n  key_prefix = \"clitest:\"\n" + extra + "}\n"
}

func writeIn(t *testing.T, dir, name, text string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

func runMain(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := Main(args, &out, &errb, testBuiltins)
	return code, out.String(), errb.String()
}

// directory migrate copies the embedded file into Redis, and explain then
// reads the cluster's directory, not the directory block's file.
func TestDirectoryMigrateAndExplain(t *testing.T) {
	srv := redistest.Start(t)
	dir := setup(t)
	t.Chdir(dir)
	writeIn(t, dir, "cluster.hcl", clusterConfig(t, srv.Addr(), ""))

	// Before the migration the shared directory has no device.
	code, out, errb := runMain("explain", "-config", "cluster.hcl", videoExample)
	if code != ExitOK || !strings.Contains(out, "devices: no console device") {
		t.Fatalf("explain before migrate: %d\n%s%s", code, out, errb)
	}
	code, out, errb = runMain("directory", "migrate", "-config", "cluster.hcl", "-from", "devices.db")
	if code != ExitOK || out != "migrated 1 users, 1 devices\n" {
		t.Fatalf("migrate: got %d %q %q; want 0 \"migrated 1 users, 1 devices\"", code, out, errb)
	}
	code, out, errb = runMain("explain", "-config", "cluster.hcl", videoExample)
	if code != ExitOK {
		t.Fatalf("explain: %d\n%s%s", code, out, errb)
	}
	goldenfile.Check(t, filepath.Join(testdataDir, "explain.golden"), out+errb)
	if _, err := os.Stat(filepath.Join(dir, "nowhere.db")); !os.IsNotExist(err) {
		t.Errorf("cluster mode opened the directory block's file: %v", err)
	}
}

// Without -from, migrate reads the config's directory path.
func TestDirectoryMigrateDefaultPath(t *testing.T) {
	srv := redistest.Start(t)
	dir := setup(t)
	t.Chdir(dir)
	writeIn(t, dir, "cluster.hcl", strings.Replace(clusterConfig(t, srv.Addr(), ""), `path = "nowhere.db"`, `path = "devices.db"`, 1))
	code, out, errb := runMain("directory", "migrate", "-config", "cluster.hcl")
	if code != ExitOK || out != "migrated 1 users, 1 devices\n" {
		t.Fatalf("migrate: got %d %q %q", code, out, errb)
	}
}

func TestDirectoryMigrateRefuses(t *testing.T) {
	dir := setup(t)
	t.Chdir(dir)
	writeIn(t, dir, "unreachable.hcl", clusterConfig(t, "127.0.0.1:1", ""))
	tests := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"no subcommand", []string{"directory"}, ExitUsage, "usage: ringside directory migrate"},
		{"unknown subcommand", []string{"directory", "copy"}, ExitUsage, "usage: ringside directory migrate"},
		{"help", []string{"directory", "migrate", "-h"}, ExitOK, ""},
		{"an argument", []string{"directory", "migrate", "x"}, ExitUsage, `unexpected argument "x"`},
		{"unknown flag", []string{"directory", "migrate", "-to", "x"}, ExitUsage, "flag provided but not defined: -to"},
		{"no cluster block", []string{"directory", "migrate", "-config", "good.hcl"}, ExitError, "good.hcl has no cluster block"},
		{"bad config", []string{"directory", "migrate", "-config", "bad.hcl"}, ExitError, "bad.hcl:9:"},
		{"missing file", []string{"directory", "migrate", "-config", "unreachable.hcl", "-from", "missing.db"}, ExitError, "no directory file at missing.db"},
		{"unreachable redis", []string{"directory", "migrate", "-config", "unreachable.hcl", "-from", "devices.db"}, ExitError, "connect to redis 127.0.0.1:1"},
		{"explain with unreachable redis", []string{"explain", "-config", "unreachable.hcl", lineExample}, ExitError, "connect to redis 127.0.0.1:1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errb := runMain(tc.args...)
			if code != tc.code {
				t.Fatalf("exit: got %d; want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, out, errb)
			}
			if !strings.Contains(errb, tc.stderr) {
				t.Errorf("stderr: got %q; want it to contain %q", errb, tc.stderr)
			}
		})
	}
}

// A password Redis refuses fails the migration without printing it.
func TestDirectoryMigrateWrongPassword(t *testing.T) {
	srv := redistest.Start(t, redistest.WithPassword("right-pw-12345"))
	dir := setup(t)
	t.Chdir(dir)
	writeIn(t, dir, "cluster.hcl", clusterConfig(t, srv.Addr(), "  password = \"wrong-pw-67890\"\n"))
	code, out, errb := runMain("directory", "migrate", "-config", "cluster.hcl", "-from", "devices.db")
	if code != ExitError || !strings.Contains(errb, "connect to redis "+srv.Addr()) {
		t.Fatalf("got %d %q %q; want 1 naming the address", code, out, errb)
	}
	if strings.Contains(errb, "wrong-pw-67890") {
		t.Errorf("the password is printed: %q", errb)
	}
}
