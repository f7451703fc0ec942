package config

import (
	"bytes"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
)

func TestClusterAbsent(t *testing.T) {
	cfg := mustLoad(t, writeConfig(t, "ring_nobody = true\n"), noEnv)
	if cfg.Cluster != nil {
		t.Fatalf("Cluster = %+v; want nil (the embedded mode)", cfg.Cluster)
	}
}

func TestClusterDefaults(t *testing.T) {
	cfg := mustLoad(t, writeConfig(t, "ring_nobody = true\ncluster \"redis\" {\n  addresses = [\"10.0.0.5:6379\"]\n}\n"), noEnv)
	got := *cfg.Cluster
	got.DeclRange = hcl.Range{}
	want := Cluster{Addresses: []string{"10.0.0.5:6379"}, KeyPrefix: DefaultKeyPrefix, CacheTTL: DefaultCacheTTL}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v; want %+v", got, want)
	}
}

func TestClusterFull(t *testing.T) {
	path := writeConfig(t, `ring_nobody = true
directory "embedded" {
  path = "old.db"
}
cluster "redis" {
  addresses       = ["s1:26379", "s2:26379"]
  sentinel_master = "mymaster"
  username        = "ringside"
  password        = env("REDIS_PASSWORD")
  database        = 3
  key_prefix      = ""
  cache_ttl       = "2s"
  tls {
    ca_file     = "tls/ca.pem"
    cert_file   = "/etc/tls/cert.pem"
    key_file    = "tls/key.pem"
    server_name = "redis.internal"
  }
}
`)
	cfg := mustLoad(t, path, func(name string) string {
		if name == "REDIS_PASSWORD" {
			return "s3cret-pw"
		}
		return ""
	})
	dir := filepath.Dir(path)
	got := *cfg.Cluster
	got.DeclRange = hcl.Range{}
	want := Cluster{
		Addresses: []string{"s1:26379", "s2:26379"}, SentinelMaster: "mymaster",
		Username: "ringside", Password: "s3cret-pw", Database: 3, KeyPrefix: "", CacheTTL: 2 * time.Second,
		TLS: &ClusterTLS{CAFile: filepath.Join(dir, "tls/ca.pem"), CertFile: "/etc/tls/cert.pem", KeyFile: filepath.Join(dir, "tls/key.pem"), ServerName: "redis.internal"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	// The directory block still names its file: the source of `directory
	// migrate`, and the journal's neighbour.
	if want := filepath.Join(dir, "old.db"); cfg.Directory.Path != want {
		t.Errorf("Directory.Path = %q; want %q", cfg.Directory.Path, want)
	}

	// The password is a secret: a message that holds it prints it hidden.
	var buf bytes.Buffer
	cfg.WriteDiagnostics(&buf, hcl.Diagnostics{{Severity: hcl.DiagWarning, Summary: "redis said", Detail: "WRONGPASS s3cret-pw"}})
	if strings.Contains(buf.String(), "s3cret-pw") {
		t.Errorf("the password is printed:\n%s", buf.String())
	}
}
