// Package netguard keeps connections to tenant-supplied hosts (webhook URLs, SMTP servers) off the
// platform's own network: loopback, private, link-local (which includes the cloud metadata address
// 169.254.169.254), carrier-grade NAT and other special-purpose ranges are refused.
//
// The check runs in the dialer's Control hook, on the address actually being connected to, after
// DNS resolution. A hostname that resolved to a public address when the config was saved and to
// 127.0.0.1 now (DNS rebinding) is refused at connect time.
package netguard

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"
)

// blocked lists special-purpose ranges that netip's predicates do not cover.
var blocked = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),         // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),     // carrier-grade NAT
	netip.MustParsePrefix("192.0.0.0/24"),      // IETF protocol assignments
	netip.MustParsePrefix("198.18.0.0/15"),     // benchmarking
	netip.MustParsePrefix("240.0.0.0/4"),       // reserved, and broadcast
	netip.MustParsePrefix("64:ff9b::/96"),      // NAT64 can reach IPv4 private space
	netip.MustParsePrefix("64:ff9b:1::/48"),    // local-use NAT64
	netip.MustParsePrefix("2002::/16"),         // 6to4 embeds arbitrary IPv4
	netip.MustParsePrefix("fd00:ec2::254/128"), // AWS metadata over IPv6 (also inside fc00::/7)
}

// Refused is the error for a connection the guard stopped.
type Refused struct{ Addr netip.Addr }

func (e *Refused) Error() string {
	return fmt.Sprintf("refusing to connect to %s: private, loopback, link-local or reserved address", e.Addr)
}

// Allowed reports whether a connection to addr may be made.
func Allowed(addr netip.Addr) bool {
	addr = addr.Unmap()
	if !addr.IsValid() || addr.IsLoopback() || addr.IsPrivate() || addr.IsLinkLocalUnicast() ||
		addr.IsLinkLocalMulticast() || addr.IsInterfaceLocalMulticast() || addr.IsMulticast() || addr.IsUnspecified() {
		return false
	}
	for _, p := range blocked {
		if p.Contains(addr) {
			return false
		}
	}
	return true
}

func control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("netguard: unparsable address %q: %w", address, err)
	}
	if !Allowed(ap.Addr()) {
		return &Refused{Addr: ap.Addr().Unmap()}
	}
	return nil
}

// Dialer returns a dialer that refuses disallowed addresses, or a plain one when allowPrivate is
// set (COMMS_ALLOW_PRIVATE_NETWORKS, for dev and tests whose fakes listen on loopback).
func Dialer(timeout time.Duration, allowPrivate bool) *net.Dialer {
	d := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	if !allowPrivate {
		d.Control = control
	}
	return d
}

// DialFunc is Dialer(...).DialContext, the shape http.Transport and the adapters take.
func DialFunc(timeout time.Duration, allowPrivate bool) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return Dialer(timeout, allowPrivate).DialContext
}
