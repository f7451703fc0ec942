package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ringside/ringside/core/internal/cluster/redistest"
	"github.com/ringside/ringside/plugins/fakes"
)

// clusterBlock is a cluster block on the Redis at addr.
func clusterBlock(addr string) string {
	return fmt.Sprintf("cluster \"redis\" {\n  addresses  = [%q]\n  key_prefix = \"e2e:\"\n}\n", addr)
}

// apnsPushedTo counts the fake's pushes to token.
func apnsPushedTo(f *apnsPeer, token string) int {
	n := 0
	for _, p := range f.Pushes() {
		if p.Token == token {
			n++
		}
	}
	return n
}

// Two replicas on one Redis share the directory: a device registered
// through A's devices API is rung by B, and once deleted through B, A no
// longer rings it. Neither opens an embedded directory file.
func TestE2EClusterSharedDirectory(t *testing.T) {
	srv := redistest.Start(t)
	fake := startAPNs(t, fakes.APNsOptions{Topic: apnsTopic})
	config := apnsConfig(fake.keyFile, fake.URL, apnsTopic) + clusterBlock(srv.Addr())
	a := start(t, config, fake.env())
	b := start(t, config, fake.env())

	a.putDevice(t, "2809", "apns", apnsToken)
	b.accept(t, sidN(0xc1, 1), "2809")
	eventually(t, 10*time.Second, "B rang the device registered through A", func() bool { return apnsPushedTo(fake, apnsToken) == 1 })
	// The same sid sent to A is a duplicate: B claimed it in Redis.
	if code, body, err := a.call(sidN(0xc1, 1), "2809"); err != nil || code != http.StatusOK || !strings.Contains(body, `"status":"duplicate"`) {
		t.Errorf("the sid B accepted, sent to A: %d %s %v; want 200 duplicate", code, body, err)
	}
	if !b.tokens(t, "2809")[apnsToken] {
		t.Errorf("B's devices API does not list the device registered through A: %s", b.devices(t, "2809"))
	}

	if code, _, body := do(t, "DELETE", b.deviceURL("2809", "apns", apnsToken), nil); code != http.StatusNoContent {
		t.Fatalf("DELETE through B: %d %s", code, body)
	}
	// A sees the delete once Redis's invalidation reaches it (well under
	// a second on loopback).
	eventually(t, 2*time.Second, "A no longer lists the device deleted through B", func() bool { return len(a.tokens(t, "2809")) == 0 })
	code, body, err := a.call(sidN(0xc1, 2), "2809")
	if err != nil || code != http.StatusOK || !strings.Contains(body, `"status":"no_devices"`) {
		t.Fatalf("A after the delete: %d %s %v; want 200 no_devices", code, body, err)
	}
	time.Sleep(200 * time.Millisecond)
	if n := apnsPushedTo(fake, apnsToken); n != 1 {
		t.Errorf("the deleted device got %d pushes; want 1 (only B's before the delete)", n)
	}

	for _, in := range []*instance{a, b} {
		if _, err := os.Stat(filepath.Join(in.dir, "ringside.db")); !os.IsNotExist(err) {
			t.Errorf("cluster mode opened the embedded directory file in %s: %v", in.dir, err)
		}
		if got := in.metric(t, "ringside_cluster_up"); got != 1 {
			t.Errorf("ringside_cluster_up = %v; want 1", got)
		}
	}
}

// directory migrate copies an embedded directory into Redis; a replica
// then rings the migrated devices.
func TestE2EClusterMigrate(t *testing.T) {
	srv := redistest.Start(t)
	fake := startAPNs(t, fakes.APNsOptions{Topic: apnsTopic})
	embedded := start(t, apnsConfig(fake.keyFile, fake.URL, apnsTopic), fake.env())
	tokens := map[string]string{"2809": apnsToken, "4711": strings.Repeat("ab", 32)}
	for user, token := range tokens {
		embedded.putDevice(t, user, "apns", token)
	}
	embedded.stop()

	// The same folder, now with a cluster block: its directory block (here
	// the default) names the file to migrate.
	path := writeConfigIn(t, embedded.dir, apnsConfig(fake.keyFile, fake.URL, apnsTopic)+clusterBlock(srv.Addr()))
	code, out, errb := run(t, embedded.dir, "directory", "migrate", "-config", path)
	if code != 0 || out != "migrated 2 users, 2 devices\n" {
		t.Fatalf("migrate: %d %q %q; want 0 \"migrated 2 users, 2 devices\"", code, out, errb)
	}

	replica := start(t, apnsConfig(fake.keyFile, fake.URL, apnsTopic)+clusterBlock(srv.Addr()), fake.env())
	i := 0
	for user, token := range tokens {
		i++
		replica.accept(t, sidN(0xc2, i), user)
		eventually(t, 10*time.Second, "the replica rang the migrated device of "+user, func() bool { return apnsPushedTo(fake, token) == 1 })
	}

	// Without a cluster block there is nothing to migrate into.
	plain := writeConfig(t, apnsConfig(fake.keyFile, fake.URL, apnsTopic))
	if code, _, errb := run(t, filepath.Dir(plain), "directory", "migrate", "-config", plain); code != 1 || !strings.Contains(errb, "has no cluster block") {
		t.Errorf("migrate without a cluster block: %d %q; want 1 saying so", code, errb)
	}
}

// /readyz turns 503 with the reason while Redis is down and 200 again once
// it is back, without a restart of ringside; the log says each change once.
func TestE2EClusterReadiness(t *testing.T) {
	srv := redistest.Start(t)
	fake := startAPNs(t, fakes.APNsOptions{Topic: apnsTopic})
	in := start(t, apnsConfig(fake.keyFile, fake.URL, apnsTopic)+clusterBlock(srv.Addr()), fake.env())
	in.waitReady(t, http.StatusOK, 5*time.Second)
	in.waitMetric(t, "ringside_cluster_up", 1, 5*time.Second)
	// A callee rung before the outage...
	const known = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90"
	in.putDevice(t, "2810", "apns", known)
	in.accept(t, sidN(0xc3, 2), "2810")
	eventually(t, 10*time.Second, "the push before the outage", func() bool { return apnsPushedTo(fake, known) == 1 })

	srv.Stop()
	body := in.waitReadyz(t, 10*time.Second, "503 naming redis", func(code int, body string) bool {
		return code == http.StatusServiceUnavailable && strings.Contains(body, "redis")
	})
	t.Logf("/readyz while Redis is down: %s", body)
	in.waitMetric(t, "ringside_cluster_up", 0, 5*time.Second)
	// Meanwhile a callback whose callee must be looked up is answered 503
	// (the sender retries), at once.
	sent := time.Now()
	if code, body, err := in.call(sidN(0xc3, 0), "2809"); err != nil || code != http.StatusServiceUnavailable {
		t.Errorf("a callback while Redis is down: %d %s %v; want 503", code, body, err)
	}
	if took := time.Since(sent); took > 2*time.Second {
		t.Errorf("the callback took %v to be answered while Redis is down", took)
	}
	// ...keeps ringing from the devices this replica last looked up.
	in.accept(t, sidN(0xc3, 3), "2810")
	eventually(t, 10*time.Second, "a push to the known callee during the outage", func() bool { return apnsPushedTo(fake, known) == 2 })
	time.Sleep(2500 * time.Millisecond) // a few more failed pings

	srv.Restart(t)
	in.waitReady(t, http.StatusOK, 10*time.Second)
	in.waitMetric(t, "ringside_cluster_up", 1, 5*time.Second)
	msg := func(prefix string) func(map[string]any) bool {
		return func(l map[string]any) bool { return strings.HasPrefix(fmt.Sprint(l["msg"]), prefix) }
	}
	if n := len(in.lines(msg("cluster: redis is unreachable"))); n != 1 {
		t.Errorf("%d log lines say Redis is unreachable; want 1", n)
	}
	if n := len(in.lines(msg("cluster: redis answers again"))); n != 1 {
		t.Errorf("%d log lines say Redis answers again; want 1", n)
	}

	// The restarted Redis is empty: a device registered now is rung.
	in.putDevice(t, "2809", "apns", apnsToken)
	in.accept(t, sidN(0xc3, 1), "2809")
	eventually(t, 10*time.Second, "a push after Redis came back", func() bool { return apnsPushedTo(fake, apnsToken) == 1 })
}

// A Redis that does not answer at start fails it: exit 1, naming the
// address.
func TestE2EClusterUnreachableAtStart(t *testing.T) {
	path := writeConfig(t, testServer+notifierBlock("hook", "webhook", `url = "http://127.0.0.1:9/"`)+routeTo("all", "", "hook")+clusterBlock("127.0.0.1:1"))
	code, _, errb := runWith(t, filepath.Dir(path), nil, 30*time.Second, "serve", "-config", path)
	if code != 1 || !strings.Contains(errb, "connect to redis 127.0.0.1:1") {
		t.Fatalf("serve: exit %d, stderr:\n%s\nwant 1 naming the address", code, errb)
	}
}
