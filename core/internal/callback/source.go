package callback

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// ClientAddr returns the address that sent r: the peer's address, or, when
// the peer is one of the trusted proxies, the rightmost X-Forwarded-For
// entry that is not itself a trusted proxy (each trusted hop appends the
// address it received from). X-Forwarded-For is never believed from an
// untrusted peer. ok is false when no address can be read.
func ClientAddr(r *http.Request, trusted []netip.Prefix) (addr netip.Addr, ok bool) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, false
	}
	addr = peer.Unmap()
	if len(trusted) == 0 || !contains(trusted, addr) {
		return addr, true
	}
	hops := r.Header.Values("X-Forwarded-For")
	for i := len(hops) - 1; i >= 0; i-- {
		parts := strings.Split(hops[i], ",")
		for j := len(parts) - 1; j >= 0; j-- {
			a, err := netip.ParseAddr(strings.TrimSpace(parts[j]))
			if err != nil {
				return netip.Addr{}, false // a garbled hop: believe nothing
			}
			a = a.Unmap()
			if !contains(trusted, a) {
				return a, true
			}
			addr = a
		}
	}
	return addr, true
}

func contains(prefixes []netip.Prefix, a netip.Addr) bool {
	for _, p := range prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
