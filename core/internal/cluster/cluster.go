// Package cluster keeps ringside's shared state in Redis, so several
// replicas serve as one: the connection settings, one client for a single
// node, a Redis Cluster or a Sentinel-managed primary, and the shared
// device directory, whose lookups are served from memory and kept coherent
// by Redis (server-assisted client-side caching).
package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/rueidis"
)

// DefaultCacheTTL is how long a lookup is kept in memory when
// Settings.CacheTTL is zero. Redis invalidates it sooner on any write.
const DefaultCacheTTL = 10 * time.Second

// Settings say how to reach Redis and where ringside's keys live there.
// The zero value of each optional field is its default.
type Settings struct {
	// Addresses are host:port of the Redis node(s): one node, some nodes
	// of a Cluster (the client learns the others from them), or the
	// Sentinels when SentinelMaster is set.
	Addresses []string
	// SentinelMaster is the name of the primary the Sentinels at
	// Addresses monitor; empty means no Sentinel.
	SentinelMaster string
	// Username and Password authenticate to Redis (AUTH); the password
	// never appears in an error.
	Username, Password string
	// Database is the logical database (SELECT); a Cluster has only 0.
	Database int
	// KeyPrefix starts every key ringside writes, so several deployments
	// can share one Redis. It may not contain '{' or '}', which would
	// choose the Cluster slot of every key.
	KeyPrefix string
	// TLS, when set, encrypts the connections with it.
	TLS *tls.Config
	// CacheTTL bounds how long a lookup is served from memory without
	// Redis confirming it (DefaultCacheTTL when zero); any write through
	// any client invalidates it at once.
	CacheTTL time.Duration
}

// Client is a connection to Redis for one Settings. It is safe for
// concurrent use; it reconnects by itself after Redis or the network comes
// back.
type Client struct {
	rdb      rueidis.Client
	prefix   string
	cacheTTL time.Duration
	password string
}

// Connect connects to Redis as s says: Sentinel when s.SentinelMaster is
// set, else a Cluster when the node says it is one, else a single node. It
// fails when no node answers or authentication fails.
func Connect(ctx context.Context, s Settings) (*Client, error) {
	if len(s.Addresses) == 0 {
		return nil, errors.New("connect to redis: no address")
	}
	if strings.ContainsAny(s.KeyPrefix, "{}") {
		return nil, fmt.Errorf("connect to redis: key prefix %q contains '{' or '}', which would put every key in one Cluster slot", s.KeyPrefix)
	}
	if s.Database < 0 {
		return nil, fmt.Errorf("connect to redis: database %d is negative", s.Database)
	}
	if s.CacheTTL < 0 {
		return nil, fmt.Errorf("connect to redis: cache TTL %v is negative", s.CacheTTL)
	}
	opt := rueidis.ClientOption{
		InitAddress: append([]string(nil), s.Addresses...),
		Username:    s.Username,
		Password:    s.Password,
		SelectDB:    s.Database,
		TLSConfig:   s.TLS,
		ClientName:  "ringside",
		Sentinel:    rueidis.SentinelOption{MasterSet: s.SentinelMaster, TLSConfig: s.TLS},
		// One connection to each node, pipelining every command, so a
		// write travels on the connection whose cached reads it
		// invalidates (see Directory.write).
		PipelineMultiplex: -1,
	}
	opt.Dialer.Timeout = 5 * time.Second
	type result struct {
		rdb rueidis.Client
		err error
	}
	// NewClient dials without a context: wait for it or for ctx.
	ch := make(chan result, 1)
	go func() {
		rdb, err := rueidis.NewClient(opt)
		ch <- result{rdb, err}
	}()
	var r result
	select {
	case r = <-ch:
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.rdb != nil {
				r.rdb.Close()
			}
		}()
		return nil, fmt.Errorf("connect to redis %s: %w", strings.Join(s.Addresses, ","), ctx.Err())
	}
	if r.err != nil {
		return nil, redact(fmt.Errorf("connect to redis %s: %w", strings.Join(s.Addresses, ","), r.err), s.Password)
	}
	ttl := s.CacheTTL
	if ttl == 0 {
		ttl = DefaultCacheTTL
	}
	return &Client{rdb: r.rdb, prefix: s.KeyPrefix, cacheTTL: ttl, password: s.Password}, nil
}

// Ping sends PING and waits for the answer.
func (c *Client) Ping(ctx context.Context) error {
	if err := c.rdb.Do(ctx, c.rdb.B().Ping().Build()).Error(); err != nil {
		return c.wrap("ping redis", err)
	}
	return nil
}

// Mode names how the client reaches Redis: "single", "cluster" or
// "sentinel".
func (c *Client) Mode() string {
	switch c.rdb.Mode() {
	case rueidis.ClientModeCluster:
		return "cluster"
	case rueidis.ClientModeSentinel:
		return "sentinel"
	default:
		return "single"
	}
}

// Close closes the connections. The Directory of the client stops working.
func (c *Client) Close() error {
	c.rdb.Close()
	return nil
}

// wrap wraps err with what, the password taken out.
func (c *Client) wrap(what string, err error) error {
	return redact(fmt.Errorf("%s: %w", what, err), c.password)
}

// redact returns err with every copy of password in its text replaced.
// The result matches what err matches with errors.Is, but does not unwrap
// to it, whose text has the password.
func redact(err error, password string) error {
	if err == nil || password == "" || !strings.Contains(err.Error(), password) {
		return err
	}
	return &redacted{msg: strings.ReplaceAll(err.Error(), password, "[password]"), err: err}
}

type redacted struct {
	msg string
	err error
}

func (r *redacted) Error() string        { return r.msg }
func (r *redacted) Is(target error) bool { return errors.Is(r.err, target) }
