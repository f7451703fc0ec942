package admin

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// CheckListen returns an error when addr is not a loopback address and
// token is empty: the devices API must not be open to the network without
// auth. "localhost" counts as loopback; an empty host (all interfaces) and
// any other host name do not. A malformed addr is an error either way.
func CheckListen(addr, token string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("admin listener %s: %w", addr, err)
	}
	if token != "" || isLoopback(host) {
		return nil
	}
	return fmt.Errorf("admin listener %s is not loopback: set server.admin_token or listen on 127.0.0.1", addr)
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}
