package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/ringside/ringside/plugins/sdk"
	"github.com/ringside/ringside/plugins/sdk/sdktest"
)

const param = "eyJjYWxsRmxvd1R5cGUiOiJNIiwiY29tbVBhcmFtIjoie1wibXBrZXlcIjpcIkFoTFJVMzBYdVhGZW5UM1o4WmFwVSsyWVBUUHpyWUEyWk9iRHFSenkraHIzXCIsXCJjdG1cIjozMDAwLFwiaWN0XCI6NjAwMH0iLCJjYWxsVHlwZSI6IkEifQ=="

func delivery() *sdk.Delivery {
	return &sdk.Delivery{
		ID: "d1", Attempt: 1, Route: "default",
		Call: sdk.Call{
			SID: "151ad995-749c-4a28-893f-636700469db1", FromServiceID: "linecorp.com", FromUserID: "9286",
			ToServiceID: "linecorp.com", ToUserID: "2809", Type: "V", Param: param,
		},
	}
}

func newConsole(t *testing.T, cfg Config, env map[string]string) (*Console, *bytes.Buffer) {
	t.Helper()
	var buf bytes.Buffer
	c := &Console{log: slog.New(slog.NewJSONHandler(&buf, nil)), getenv: func(k string) string { return env[k] }}
	sdktest.Configured(t, c, cfg)
	return c, &buf
}

func TestDeliver(t *testing.T) {
	c, buf := newConsole(t, Config{Prefix: "RING"}, nil)
	for i, token := range []string{"abcdef0123456789", "xyz"} {
		id, err := c.Deliver(context.Background(), delivery(), sdk.Device{Kind: "console", Token: token})
		if want := []string{"console-1", "console-2"}[i]; err != nil || id != want {
			t.Fatalf("Deliver: got (%q, %v); want (%q, nil)", id, err, want)
		}
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("got %d lines; want 2:\n%s", len(lines), buf)
	}
	var first, second map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(lines[1]), &second); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"level":          "INFO",
		"msg":            "RING #1: video call for linecorp.com/2809",
		"sid":            "151ad995-749c-4a28-893f-636700469db1",
		"route":          "default",
		"callee":         "linecorp.com/2809",
		"device":         "abcd…9",
		"cc_param_bytes": float64(184),
		"attempt":        float64(1),
	}
	for k, v := range want {
		if first[k] != v {
			t.Errorf("%s: got %#v; want %#v", k, first[k], v)
		}
	}
	// A short token keeps at most a third of itself.
	if second["device"] != "x…" {
		t.Errorf("short token: got %v; want x…", second["device"])
	}
	for _, secret := range []string{"abcdef0123456789", "xyz", param} {
		if strings.Contains(buf.String(), secret) {
			t.Errorf("output contains %q whole", secret)
		}
	}
}

func TestColor(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		env  map[string]string
		want bool
	}{
		{"off", Config{}, nil, false},
		{"config", Config{Color: true}, nil, true},
		{"env", Config{}, map[string]string{"CONSOLE_COLOR": "1"}, true},
		{"env zero", Config{}, map[string]string{"CONSOLE_COLOR": "0"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, buf := newConsole(t, tc.cfg, tc.env)
			if _, err := c.Deliver(context.Background(), delivery(), sdk.Device{Token: "tokentoken"}); err != nil {
				t.Fatal(err)
			}
			if got := strings.Contains(buf.String(), `\u001b[`); got != tc.want {
				t.Errorf("got colour %v; want %v (%q)", got, tc.want, buf)
			}
			if !strings.Contains(buf.String(), "ring") || !strings.Contains(buf.String(), " #1: ") {
				t.Errorf("got %q; want the default prefix", buf)
			}
		})
	}
}

func TestConfigurePrefix(t *testing.T) {
	diags := (&Console{}).Configure(context.Background(), Config{Prefix: "a\nb"})
	if len(diags) != 1 || diags[0].Attribute != "prefix" || !diags.HasError() {
		t.Errorf("got %v; want an error at prefix", diags)
	}
}

func TestDeliverConcurrent(t *testing.T) {
	c, buf := newConsole(t, Config{}, nil)
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			if _, err := c.Deliver(context.Background(), delivery(), sdk.Device{Token: "tokentoken"}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := strings.Count(buf.String(), "\n"); n != 32 {
		t.Errorf("got %d lines; want 32", n)
	}
}
