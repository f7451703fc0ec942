package app

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/ringside/ringside/core/internal/config"
)

// A change of the cluster block applies only after a restart; moving the
// block in the file is no change.
func TestRestartOnlyCluster(t *testing.T) {
	c := &config.Cluster{Addresses: []string{"10.0.0.5:6379"}, KeyPrefix: "ringside:", CacheTTL: 10 * time.Second}
	moved := *c
	moved.DeclRange = hcl.Range{Filename: "config.hcl", Start: hcl.Pos{Line: 40}}
	other := *c
	other.Addresses = []string{"10.0.0.6:6379"}
	pw := *c
	pw.Password = "new"
	tests := []struct {
		name string
		a, b *config.Cluster
		want []string
	}{
		{"none", nil, nil, nil},
		{"same", c, c, nil},
		{"moved", c, &moved, nil},
		{"added", nil, c, []string{"cluster"}},
		{"removed", c, nil, []string{"cluster"}},
		{"address", c, &other, []string{"cluster"}},
		{"password", c, &pw, []string{"cluster"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := restartOnly(&config.Config{Cluster: tc.a}, &config.Config{Cluster: tc.b})
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %q; want %q", got, tc.want)
			}
		})
	}
}

func TestClusterSettingsTLS(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		tls  config.ClusterTLS
		want string
	}{
		{"missing ca", config.ClusterTLS{CAFile: filepath.Join(dir, "missing.pem")}, "cluster.tls.ca_file: open "},
		{"not pem", config.ClusterTLS{CAFile: notPEM}, "holds no PEM certificate"},
		{"missing cert", config.ClusterTLS{CertFile: filepath.Join(dir, "c.pem"), KeyFile: filepath.Join(dir, "k.pem")}, "cluster.tls: open "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := clusterSettings(&config.Cluster{Addresses: []string{"x:1"}, TLS: &tc.tls})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v; want an error containing %q", err, tc.want)
			}
		})
	}
	s, err := clusterSettings(&config.Cluster{Addresses: []string{"x:1"}, TLS: &config.ClusterTLS{ServerName: "redis.internal"}})
	if err != nil || s.TLS == nil || s.TLS.ServerName != "redis.internal" || s.TLS.RootCAs != nil {
		t.Errorf("got %+v, %v; want TLS with the system roots and the server name", s.TLS, err)
	}
}
