package fakes

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"testing"
	"time"
)

// RunNode runs script with node (as NodeModule returns it) and args, writes
// in, as JSON, to its standard input, and decodes what it prints, as JSON,
// into out. The test stops, with node's standard error, when node fails or
// takes more than a minute, and when what it prints does not decode.
func RunNode(t testing.TB, node, script string, in, out any, args ...string) {
	t.Helper()
	stdin, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, append([]string{"-e", script}, args...)...)
	cmd.Stdin = bytes.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	printed, err := cmd.Output()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, stderr.String())
	}
	if err := json.Unmarshal(printed, out); err != nil {
		t.Fatalf("node printed %q: %v", printed, err)
	}
}
