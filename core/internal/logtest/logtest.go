// Package logtest captures the structured logs of the code under test: a
// Buffer is written to by a JSON logger, from any goroutine, and read back
// as records.
package logtest

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"

	"github.com/ringside/ringside/plugins/sdk/sdktest"
)

// Buffer collects what is written to it; it is safe for concurrent use.
// The zero value is empty and ready.
type Buffer struct {
	sdktest.Buffer
}

// Logger returns a logger that writes JSON records of every level, debug
// included, to b.
func (b *Buffer) Logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// Records returns the lines written so far that are JSON objects, decoded,
// in order; other lines are skipped.
func (b *Buffer) Records() []map[string]any {
	var out []map[string]any
	for l := range strings.SplitSeq(b.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// Find returns the records whose message contains msg.
func (b *Buffer) Find(msg string) []map[string]any {
	var out []map[string]any
	for _, r := range b.Records() {
		if strings.Contains(fmt.Sprint(r["msg"]), msg) {
			out = append(out, r)
		}
	}
	return out
}

// Lines returns "LEVEL message" for each record, in order.
func (b *Buffer) Lines() []string {
	var out []string
	for _, r := range b.Records() {
		out = append(out, fmt.Sprint(r["level"], " ", r["msg"]))
	}
	return out
}
