package app

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringside/ringside/core/internal/cluster"
	"github.com/ringside/ringside/core/internal/config"
	"github.com/ringside/ringside/core/internal/directory"
	"github.com/ringside/ringside/core/internal/telemetry"
)

// ClusterConnectTimeout bounds the connection to Redis at start: a Redis
// that does not answer within it fails the start.
const ClusterConnectTimeout = 10 * time.Second

// clusterSettings are the cluster block's connection settings, its TLS
// files read.
func clusterSettings(c *config.Cluster) (cluster.Settings, error) {
	s := cluster.Settings{
		Addresses:      c.Addresses,
		SentinelMaster: c.SentinelMaster,
		Username:       c.Username,
		Password:       c.Password,
		Database:       c.Database,
		KeyPrefix:      c.KeyPrefix,
		CacheTTL:       c.CacheTTL,
	}
	if c.TLS == nil {
		return s, nil
	}
	t := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.TLS.ServerName}
	if c.TLS.CAFile != "" {
		pem, err := os.ReadFile(c.TLS.CAFile)
		if err != nil {
			return s, fmt.Errorf("cluster.tls.ca_file: %w", err)
		}
		t.RootCAs = x509.NewCertPool()
		if !t.RootCAs.AppendCertsFromPEM(pem) {
			return s, fmt.Errorf("cluster.tls.ca_file: %s holds no PEM certificate", c.TLS.CAFile)
		}
	}
	if c.TLS.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.TLS.CertFile, c.TLS.KeyFile)
		if err != nil {
			return s, fmt.Errorf("cluster.tls: %w", err)
		}
		t.Certificates = []tls.Certificate{cert}
	}
	s.TLS = t
	return s, nil
}

// ConnectCluster connects to the Redis of cfg's cluster block within
// ClusterConnectTimeout; cfg must have one. The error names the addresses
// and why, never the password.
func ConnectCluster(ctx context.Context, cfg *config.Config) (*cluster.Client, error) {
	if cfg.Cluster == nil {
		return nil, errors.New("the config has no cluster block")
	}
	s, err := clusterSettings(cfg.Cluster)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, ClusterConnectTimeout)
	defer cancel()
	c, err := cluster.Connect(ctx, s)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	return c, nil
}

// clusterWatch pings Redis every interval, in the background, so readiness
// and the ringside_cluster_up gauge never wait for Redis; it logs once when
// Redis stops answering and once when it answers again.
type clusterWatch struct {
	down atomic.Pointer[error] // nil while Redis answers
	stop context.CancelFunc
	done sync.WaitGroup
}

// pingTimeout bounds one health ping.
const pingTimeout = time.Second

// watchCluster starts watching c every interval until Close; addrs names
// Redis in what it reports.
func watchCluster(c *cluster.Client, addrs string, every time.Duration, log *slog.Logger, m *telemetry.Metrics) *clusterWatch {
	ctx, cancel := context.WithCancel(context.Background())
	w := &clusterWatch{stop: cancel}
	m.GaugeFunc("ringside_cluster_up", "1 while the cluster's Redis answers a PING (checked every second), else 0; /readyz says why.",
		func() float64 {
			if w.Err() != nil {
				return 0
			}
			return 1
		})
	w.done.Go(func() {
		tick(ctx, every, func() {
			pctx, cancel := context.WithTimeout(ctx, pingTimeout)
			err := c.Ping(pctx)
			cancel()
			if ctx.Err() != nil {
				return
			}
			was := w.down.Load()
			switch {
			case err != nil && was == nil:
				err = fmt.Errorf("redis %s does not answer: %w", addrs, err)
				w.down.Store(&err)
				log.Error("cluster: redis is unreachable; not ready until it answers", "error", err)
			case err != nil:
				err = fmt.Errorf("redis %s does not answer: %w", addrs, err)
				w.down.Store(&err)
			case was != nil:
				w.down.Store(nil)
				log.Info("cluster: redis answers again; ready")
			}
		})
	})
	return w
}

// Err is why Redis is not answering, or nil.
func (w *clusterWatch) Err() error {
	if p := w.down.Load(); p != nil {
		return *p
	}
	return nil
}

// Close stops the watch and waits for its goroutine to end.
func (w *clusterWatch) Close() {
	w.stop()
	w.done.Wait()
}

// Bounds of each call to the shared directory. The client retries a read
// while Redis is away until its context ends; a callback waits for its
// lookup, so a Redis that does not answer costs it at most lookupTimeout
// (then it is answered 503), never the outage.
const (
	lookupTimeout = time.Second
	writeTimeout  = 5 * time.Second
)

// boundedStore is a directory.Store whose every call is bounded in time.
type boundedStore struct{ s directory.Store }

var _ directory.Store = boundedStore{}

func (b boundedStore) Lookup(ctx context.Context, serviceID, userID string) ([]directory.Device, error) {
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	return b.s.Lookup(ctx, serviceID, userID)
}

func (b boundedStore) Put(ctx context.Context, serviceID, userID, kind, token string, now time.Time) error {
	ctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	return b.s.Put(ctx, serviceID, userID, kind, token, now)
}

func (b boundedStore) Delete(ctx context.Context, serviceID, userID, kind, token string) error {
	ctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	return b.s.Delete(ctx, serviceID, userID, kind, token)
}

func (b boundedStore) DeleteUser(ctx context.Context, serviceID, userID string) error {
	ctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	return b.s.DeleteUser(ctx, serviceID, userID)
}

func (b boundedStore) Prune(ctx context.Context, serviceID, userID, kind, token string, goneAt time.Time) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	return b.s.Prune(ctx, serviceID, userID, kind, token, goneAt)
}

func (b boundedStore) Close() error { return b.s.Close() }
