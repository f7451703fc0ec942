package cluster

import (
	"context"
	"encoding/hex"
	"time"

	"github.com/redis/rueidis"
)

// Dedup claims accepted callbacks across replicas: the first replica to
// claim a key inside the window wins, atomically (SET NX PX), so two
// replicas given the same callback at the same instant ring once. There is
// no stagger: a claim is one round trip.
type Dedup struct{ c *Client }

// Dedup returns the client's cross-replica dedup.
func (c *Client) Dedup() *Dedup { return &Dedup{c: c} }

// key is the Redis key of a claim: the prefix and the claim's 16-byte hash
// in hex (the hash pins no id, and bounds the key's size).
func (d *Dedup) key(k [16]byte) string {
	var buf [32]byte
	hex.Encode(buf[:], k[:])
	return d.c.prefix + "dedup:" + string(buf[:])
}

// Claim records k for window and reports true, or reports false when a
// replica (this one included) claimed it inside the window already.
func (d *Dedup) Claim(ctx context.Context, k [16]byte, window time.Duration) (bool, error) {
	rdb := d.c.rdb
	err := rdb.Do(ctx, rdb.B().Set().Key(d.key(k)).Value("1").Nx().Px(max(window, time.Millisecond)).Build()).Error()
	switch {
	case err == nil:
		return true, nil
	case rueidis.IsRedisNil(err):
		return false, nil
	}
	return false, d.c.wrap("claim callback", err)
}

// Forget removes a claim (a callback that could not be accepted after all).
func (d *Dedup) Forget(ctx context.Context, k [16]byte) error {
	rdb := d.c.rdb
	if err := rdb.Do(ctx, rdb.B().Del().Key(d.key(k)).Build()).Error(); err != nil {
		return d.c.wrap("forget callback", err)
	}
	return nil
}
