// Package e2e holds the end-to-end tests of the real ringside binary: it is
// built once per test run and started as a separate process on a config
// written for each test, against the fake provider peers of plugins/fakes
// on loopback; the tests send callbacks, register devices through the
// devices API, read the logs and /metrics, kill, stop, reload and restart
// it, and count at the peers what reached them.
//
// The package has no code but its tests; harness_test.go is the one
// harness they share. The fault tests that fill a disk mount a tmpfs and
// are skipped without root; the soaks are skipped under -short.
package e2e
