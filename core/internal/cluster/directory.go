package cluster

import (
	"cmp"
	"context"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/rueidis"

	"github.com/ringside/ringside/core/internal/directory"
)

// Directory is the device directory shared by every replica, in Redis.
//
// Each user's devices are one hash, at KeyPrefix + "dev:{" +
// hex(service ID) + ":" + hex(user ID) + "}": hex, so that any byte of an
// ID (a brace above all) cannot change the hash tag, which keeps a user's
// key in one Cluster slot, and so that keys can be read back into IDs. A
// field is kind + "\x00" + token, its value the device's UpdatedAt in
// decimal Unix nanoseconds. A kind may not contain a NUL byte.
//
// Lookup is served from a client-side cache kept coherent by Redis
// (CLIENT TRACKING): the first lookup of a user reads the hash, the next
// ones read memory, until a write to that hash through any client makes
// Redis invalidate it, or Settings.CacheTTL passes. A write through this
// Directory is seen by its next Lookup (see write); one through another
// client once Redis's invalidation message reaches this one, a fraction
// of a millisecond on a local network.
//
// Writes are one round trip each. Put and DeleteUser, which can run twice
// to the same effect, are sent again after a broken connection; Delete and
// Prune are not, as their answer (was it there?) would be the second
// run's, so one of them can fail when Redis or the network was lost, and
// succeed when retried.
type Directory struct {
	c *Client
}

var (
	_ directory.Store  = (*Directory)(nil)
	_ directory.Lister = (*Directory)(nil)
)

// Directory returns the shared directory on c. Closing c ends it.
func (c *Client) Directory() *Directory { return &Directory{c: c} }

// key returns the hash of the devices of (serviceID, userID).
func (d *Directory) key(serviceID, userID string) string {
	var b strings.Builder
	b.Grow(len(d.c.prefix) + len("dev:{:}") + 2*(len(serviceID)+len(userID)))
	b.WriteString(d.c.prefix)
	b.WriteString("dev:{")
	b.WriteString(hex.EncodeToString([]byte(serviceID)))
	b.WriteByte(':')
	b.WriteString(hex.EncodeToString([]byte(userID)))
	b.WriteByte('}')
	return b.String()
}

// parseKey returns the IDs of a key made by key; ok is false for any other
// key.
func (d *Directory) parseKey(k string) (serviceID, userID string, ok bool) {
	rest, ok := strings.CutPrefix(k, d.c.prefix+"dev:{")
	if !ok {
		return "", "", false
	}
	rest, ok = strings.CutSuffix(rest, "}")
	if !ok {
		return "", "", false
	}
	hs, hu, ok := strings.Cut(rest, ":")
	if !ok {
		return "", "", false
	}
	s, err1 := hex.DecodeString(hs)
	u, err2 := hex.DecodeString(hu)
	if err1 != nil || err2 != nil {
		return "", "", false
	}
	return string(s), string(u), true
}

func field(kind, token string) string { return kind + "\x00" + token }

// Lookup implements directory.Store.
func (d *Directory) Lookup(ctx context.Context, serviceID, userID string) ([]directory.Device, error) {
	devs, _, err := d.lookup(ctx, serviceID, userID)
	return devs, err
}

// lookup is Lookup, also reporting whether the answer came from memory.
func (d *Directory) lookup(ctx context.Context, serviceID, userID string) (_ []directory.Device, cached bool, _ error) {
	if err := ctx.Err(); err != nil {
		return nil, false, fmt.Errorf("lookup devices: %w", err)
	}
	rdb := d.c.rdb
	res := rdb.DoCache(ctx, rdb.B().Hgetall().Key(d.key(serviceID, userID)).Cache(), d.c.cacheTTL)
	m, err := res.AsStrMap()
	if err != nil {
		return nil, false, d.c.wrap("lookup devices", err)
	}
	devs, err := devices(m)
	if err != nil {
		return nil, false, fmt.Errorf("lookup devices of %q: %w", userID, err)
	}
	return devs, res.IsCacheHit(), nil
}

// devices returns the devices of a user's hash, ordered by kind then token
// (nil for none).
func devices(m map[string]string) ([]directory.Device, error) {
	if len(m) == 0 {
		return nil, nil
	}
	devs := make([]directory.Device, 0, len(m))
	for f, v := range m {
		kind, token, ok := strings.Cut(f, "\x00")
		if !ok {
			return nil, fmt.Errorf("field %q has no NUL between kind and token", f)
		}
		ns, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("updated_at of kind %q: %w", kind, err)
		}
		devs = append(devs, directory.Device{Kind: kind, Token: token, UpdatedAt: time.Unix(0, ns).UTC()})
	}
	slices.SortFunc(devs, func(a, b directory.Device) int {
		return cmp.Or(strings.Compare(a.Kind, b.Kind), strings.Compare(a.Token, b.Token))
	})
	return devs, nil
}

// write sends cmd, a write to key, and in the same round trip a read of
// key (EXISTS), and returns cmd's result. Redis sends the invalidation of
// key to this client's connection, which cmd travels on too, before it
// answers the next command, so once write returns the cache has dropped
// key: the next Lookup through this client reads the write.
func (d *Directory) write(ctx context.Context, key string, cmd rueidis.Completed) rueidis.RedisResult {
	rdb := d.c.rdb
	return rdb.DoMulti(ctx, cmd, rdb.B().Exists().Key(key).Build())[0]
}

// Put implements directory.Store.
func (d *Directory) Put(ctx context.Context, serviceID, userID, kind, token string, now time.Time) error {
	if strings.IndexByte(kind, 0) >= 0 {
		return fmt.Errorf("put device: kind %q contains a NUL byte", kind)
	}
	k := d.key(serviceID, userID)
	cmd := d.c.rdb.B().Hset().Key(k).FieldValue().
		FieldValue(field(kind, token), strconv.FormatInt(directory.UnixNano(now), 10)).Build().ToRetryable()
	if err := d.write(ctx, k, cmd).Error(); err != nil {
		return d.c.wrap("put device", err)
	}
	return nil
}

// Delete implements directory.Store.
func (d *Directory) Delete(ctx context.Context, serviceID, userID, kind, token string) error {
	k := d.key(serviceID, userID)
	n, err := d.write(ctx, k, d.c.rdb.B().Hdel().Key(k).Field(field(kind, token)).Build()).AsInt64()
	if err != nil {
		return d.c.wrap("delete device", err)
	}
	if n == 0 {
		return directory.ErrNotFound
	}
	return nil
}

// DeleteUser implements directory.Store.
func (d *Directory) DeleteUser(ctx context.Context, serviceID, userID string) error {
	k := d.key(serviceID, userID)
	if err := d.write(ctx, k, d.c.rdb.B().Del().Key(k).Build().ToRetryable()).Error(); err != nil {
		return d.c.wrap("delete user", err)
	}
	return nil
}

// luaLess is a Lua function: whether the decimal int64 a (as
// strconv.FormatInt writes it) is less than b. Lua numbers are doubles,
// exact only to 2^53, and Unix nanoseconds are larger: compare the digits.
const luaLess = `
local function less(a, b)
  local na, nb = a:sub(1, 1) == '-', b:sub(1, 1) == '-'
  if na ~= nb then return na end
  if na then a, b = b:sub(2), a:sub(2) end
  if #a ~= #b then return #a < #b end
  return a < b
end
`

// pruneScript removes field ARGV[1] of hash KEYS[1] when its value is less
// than ARGV[2], or always when ARGV[2] is empty, and returns 1 if it did.
// It is sent whole (EVAL) each time, so a Prune is one round trip even on
// a Redis that restarted; Redis keeps the compiled script.
const pruneScript = luaLess + `
local v = redis.call('HGET', KEYS[1], ARGV[1])
if v and (ARGV[2] == '' or less(v, ARGV[2])) then
  redis.call('HDEL', KEYS[1], ARGV[1])
  return 1
end
return 0
`

// Prune implements directory.Store. The check and the removal run as one
// script, so a Put racing with Prune is never lost.
func (d *Directory) Prune(ctx context.Context, serviceID, userID, kind, token string, goneAt time.Time) (bool, error) {
	before := ""
	if !goneAt.IsZero() {
		before = strconv.FormatInt(directory.UnixNano(goneAt), 10)
	}
	k := d.key(serviceID, userID)
	cmd := d.c.rdb.B().Eval().Script(pruneScript).Numkeys(1).Key(k).Arg(field(kind, token), before).Build()
	n, err := d.write(ctx, k, cmd).AsInt64()
	if err != nil {
		return false, d.c.wrap("prune device", err)
	}
	return n == 1, nil
}

// Close implements directory.Store. It does nothing: the Client owns the
// connections.
func (d *Directory) Close() error { return nil }

// scanCount is how many keys a SCAN step asks for, and how many users'
// hashes Each reads in one round trip.
const scanCount = 512

// Each implements directory.Lister: it calls fn for every user with
// devices, in no particular order, until fn returns false. It walks the
// keys with SCAN (on each primary of a Cluster): a user written meanwhile
// may be seen or not, none that existed throughout is missed, and one may
// be seen twice when Redis resizes its table meanwhile.
func (d *Directory) Each(ctx context.Context, fn func(serviceID, userID string, devs []directory.Device) bool) error {
	nodes := map[string]rueidis.Client{"": d.c.rdb}
	if d.c.rdb.Mode() == rueidis.ClientModeCluster {
		nodes = d.c.rdb.Nodes()
	}
	match := globEscape(d.c.prefix) + "dev:{*"
	for addr, node := range nodes {
		if addr != "" {
			role, err := node.Do(ctx, node.B().Role().Build()).ToArray()
			if err != nil {
				return d.c.wrap("list devices: role of "+addr, err)
			}
			if len(role) == 0 {
				continue
			}
			if r, _ := role[0].ToString(); r != "master" {
				continue // a replica's keys are its primary's
			}
		}
		more, err := d.eachOn(ctx, node, match, fn)
		if err != nil || !more {
			return err
		}
	}
	return nil
}

// eachOn is Each on one node; more is false when fn asked to stop.
func (d *Directory) eachOn(ctx context.Context, node rueidis.Client, match string, fn func(string, string, []directory.Device) bool) (more bool, _ error) {
	var cursor uint64
	for {
		e, err := node.Do(ctx, node.B().Scan().Cursor(cursor).Match(match).Count(scanCount).Type("hash").Build()).AsScanEntry()
		if err != nil {
			return false, d.c.wrap("list devices", err)
		}
		type user struct{ svc, id string }
		users := make([]user, 0, len(e.Elements))
		cmds := make(rueidis.Commands, 0, len(e.Elements))
		for _, k := range e.Elements {
			svc, id, ok := d.parseKey(k)
			if !ok {
				continue // not a key of this prefix's directory
			}
			users = append(users, user{svc, id})
			cmds = append(cmds, node.B().Hgetall().Key(k).Build())
		}
		for i, res := range node.DoMulti(ctx, cmds...) {
			m, err := res.AsStrMap()
			if err != nil {
				return false, d.c.wrap("list devices", err)
			}
			devs, err := devices(m)
			if err != nil {
				return false, fmt.Errorf("list devices of %q: %w", users[i].id, err)
			}
			if devs != nil && !fn(users[i].svc, users[i].id, devs) {
				return false, nil
			}
		}
		cursor = e.Cursor
		if cursor == 0 {
			return true, nil
		}
	}
}

// globEscape escapes the characters of s that MATCH patterns give a
// meaning.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// migrateScript sets each field ARGV[i] of hash KEYS[1] to ARGV[i+1]
// unless it holds a later time already, and returns how many it set.
var migrateScript = rueidis.NewLuaScript(luaLess + `
local n = 0
for i = 1, #ARGV, 2 do
  local v = redis.call('HGET', KEYS[1], ARGV[i])
  if not v or less(v, ARGV[i + 1]) then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
    n = n + 1
  end
end
return n
`)

// migrateBatch is how many users Migrate writes in one round trip.
const migrateBatch = 256

// Migrate copies every device of from into to, with its UpdatedAt, and
// returns how many users and devices it read (on an error, those read
// before it; some of them may not be written). A device already in to with
// a later UpdatedAt is kept, so running it again (or while replicas
// register devices) changes nothing it should not. Devices in to that
// from lacks are left alone.
func Migrate(ctx context.Context, from directory.Lister, to *Directory) (users, devices int, err error) {
	batch := make([]rueidis.LuaExec, 0, migrateBatch)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		for _, res := range migrateScript.ExecMulti(ctx, to.c.rdb, batch...) {
			if err := res.Error(); err != nil {
				return to.c.wrap("migrate devices", err)
			}
		}
		batch = batch[:0]
		return nil
	}
	var werr error
	err = from.Each(ctx, func(svc, user string, devs []directory.Device) bool {
		args := make([]string, 0, 2*len(devs))
		for _, dv := range devs {
			if strings.IndexByte(dv.Kind, 0) >= 0 {
				werr = fmt.Errorf("migrate devices: kind %q of user %q contains a NUL byte", dv.Kind, user)
				return false
			}
			args = append(args, field(dv.Kind, dv.Token), strconv.FormatInt(directory.UnixNano(dv.UpdatedAt), 10))
		}
		batch = append(batch, rueidis.LuaExec{Keys: []string{to.key(svc, user)}, Args: args})
		users++
		devices += len(devs)
		if len(batch) == migrateBatch {
			werr = flush()
		}
		return werr == nil
	})
	if err == nil {
		err = werr
	}
	if err == nil {
		err = flush()
	}
	return users, devices, err
}
