package config

import (
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/ringside/ringside/core/internal/cluster"
)

// Cluster is the cluster block: several replicas share the device
// directory in Redis. A config without one runs the embedded single-node
// mode.
type Cluster struct {
	// Addresses are host:port of one Redis node, of some nodes of a
	// Redis Cluster, or of the Sentinels when SentinelMaster is set.
	Addresses []string
	// SentinelMaster names the primary the Sentinels monitor; "" = no
	// Sentinel.
	SentinelMaster string
	Username       string
	Password       string // sensitive: never printed
	Database       int
	// KeyPrefix starts every key; never holds '{' or '}'.
	KeyPrefix string
	CacheTTL  time.Duration
	TLS       *ClusterTLS // nil = plain TCP
	DeclRange hcl.Range
}

// ClusterTLS is the cluster block's tls block; the paths are resolved from
// Dir. CAFile "" trusts the system's roots; CertFile and KeyFile are both
// set (a client certificate) or both "".
type ClusterTLS struct {
	CAFile, CertFile, KeyFile, ServerName string
}

// Cluster defaults.
const (
	DefaultKeyPrefix = "ringside:"
	DefaultCacheTTL  = cluster.DefaultCacheTTL
)

type rawCluster struct {
	Kind           string         `hcl:"kind,label"`
	KindRange      hcl.Range      `hcl:"kind,label_range"`
	Addresses      *hcl.Attribute `hcl:"addresses,optional"`
	SentinelMaster *hcl.Attribute `hcl:"sentinel_master,optional"`
	Username       *hcl.Attribute `hcl:"username,optional"`
	Password       *hcl.Attribute `hcl:"password,optional"`
	Database       *hcl.Attribute `hcl:"database,optional"`
	KeyPrefix      *hcl.Attribute `hcl:"key_prefix,optional"`
	CacheTTL       *hcl.Attribute `hcl:"cache_ttl,optional"`
	TLS            *rawClusterTLS `hcl:"tls,block"`
	DefRange       hcl.Range      `hcl:",def_range"`
}

type rawClusterTLS struct {
	CAFile     *hcl.Attribute `hcl:"ca_file,optional"`
	CertFile   *hcl.Attribute `hcl:"cert_file,optional"`
	KeyFile    *hcl.Attribute `hcl:"key_file,optional"`
	ServerName *hcl.Attribute `hcl:"server_name,optional"`
	DefRange   hcl.Range      `hcl:",def_range"`
}

// cluster decodes the cluster block; nil when absent or when its kind is
// unknown (reported).
func (d *decoder) cluster(raw *rawCluster) *Cluster {
	if raw == nil {
		return nil
	}
	if raw.Kind != "redis" {
		d.errorf(raw.KindRange, fmt.Sprintf("Unknown cluster kind %q", raw.Kind),
			"The only cluster kind is \"redis\": cluster \"redis\" { addresses = [\"10.0.0.5:6379\"] }.")
		return nil
	}
	c := &Cluster{DeclRange: raw.DefRange}
	if raw.Addresses == nil {
		d.errorf(raw.DefRange, "cluster has no addresses",
			"The cluster block needs addresses, the Redis node(s) as HOST:PORT: one node, some nodes of a Redis Cluster, or the Sentinels with sentinel_master, such as addresses = [\"10.0.0.5:6379\"].")
	} else if list, ranges := d.strList(raw.Addresses, false); list != nil {
		if len(list) == 0 {
			d.errorf(raw.Addresses.Expr.Range(), "addresses is empty",
				"addresses lists the Redis node(s) as HOST:PORT, such as [\"10.0.0.5:6379\"].")
		}
		for i, a := range list {
			host, _, err := splitHostPort(a)
			if err == nil && host == "" {
				err = fmt.Errorf("no host")
			}
			if err != nil {
				d.errorf(ranges[i], "Redis address must be HOST:PORT",
					"%q is not HOST:PORT (%v); for example \"10.0.0.5:6379\".", a, err)
				continue
			}
			c.Addresses = append(c.Addresses, a)
		}
	}
	c.SentinelMaster = d.str(raw.SentinelMaster, "")
	c.Username = d.str(raw.Username, "")
	c.Password = d.secret(raw.Password)
	c.Database = d.database(raw.Database)
	c.KeyPrefix = d.str(raw.KeyPrefix, DefaultKeyPrefix)
	if strings.ContainsAny(c.KeyPrefix, "{}") {
		d.errorf(raw.KeyPrefix.Expr.Range(), "key_prefix may not contain { or }",
			"Redis Cluster reads a key's slot from the part between braces, so a brace in key_prefix would put every key in one slot; got %q. Use letters, digits and separators such as \"ringside:prod:\".", c.KeyPrefix)
	}
	c.CacheTTL = d.duration(raw.CacheTTL, DefaultCacheTTL, 0)
	if t := raw.TLS; t != nil {
		c.TLS = &ClusterTLS{
			CAFile:     d.path(t.CAFile, ""),
			CertFile:   d.path(t.CertFile, ""),
			KeyFile:    d.path(t.KeyFile, ""),
			ServerName: d.str(t.ServerName, ""),
		}
		switch {
		case t.CertFile != nil && t.KeyFile == nil:
			d.errorf(t.DefRange, "cluster tls has cert_file but no key_file",
				"A client certificate needs both cert_file and key_file (PEM files; relative paths resolve from the configuration file's folder); omit both to connect without one.")
		case t.KeyFile != nil && t.CertFile == nil:
			d.errorf(t.DefRange, "cluster tls has key_file but no cert_file",
				"A client certificate needs both cert_file and key_file (PEM files; relative paths resolve from the configuration file's folder); omit both to connect without one.")
		}
	}
	return c
}

// database decodes a Redis logical database number: a whole number from 0.
func (d *decoder) database(attr *hcl.Attribute) int {
	v, ok := d.value(attr, cty.Number, "a whole number", false)
	if !ok {
		return 0
	}
	bf := v.AsBigFloat()
	n, acc := bf.Int64()
	if !bf.IsInt() || acc != big.Exact || n > 1<<31 {
		d.errorf(attr.Expr.Range(), "database must be a whole number", "Got %s.", describe(v, false))
		return 0
	}
	if n < 0 {
		d.errorf(attr.Expr.Range(), "database must not be negative",
			"database is the Redis logical database (SELECT), from 0; got %d. A Redis Cluster has only 0.", n)
		return 0
	}
	return int(n)
}
