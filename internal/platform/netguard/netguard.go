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
	"net/url"
	"strings"
	"syscall"
	"time"
)

// Special lists the ranges of the IANA special-purpose address registries (IPv4 and IPv6, RFC
// 6890 and its updates) that are not globally reachable, plus the ranges that embed an IPv4
// address a translator or tunnel could carry to a private one, and the deprecated ones. A tenant's
// host in any of them is refused. Beyond these, an IPv6 address must be in 2000::/3, the only
// global unicast space IANA allocates (so site-local fec0::/10, IPv4-compatible ::a.b.c.d, discard
// 100::/64 and other reserved space are refused too).
var Special = []struct {
	Prefix netip.Prefix
	Name   string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), `"this network" (RFC 791)`},
	{netip.MustParsePrefix("10.0.0.0/8"), "private-use (RFC 1918)"},
	{netip.MustParsePrefix("100.64.0.0/10"), "shared address space, carrier-grade NAT (RFC 6598)"},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback (RFC 1122)"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local, cloud metadata (RFC 3927)"},
	{netip.MustParsePrefix("172.16.0.0/12"), "private-use (RFC 1918)"},
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol assignments (RFC 6890)"},
	{netip.MustParsePrefix("192.0.2.0/24"), "documentation, TEST-NET-1 (RFC 5737)"},
	{netip.MustParsePrefix("192.88.99.0/24"), "6to4 relay anycast, deprecated (RFC 7526)"},
	{netip.MustParsePrefix("192.168.0.0/16"), "private-use (RFC 1918)"},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking (RFC 2544)"},
	{netip.MustParsePrefix("198.51.100.0/24"), "documentation, TEST-NET-2 (RFC 5737)"},
	{netip.MustParsePrefix("203.0.113.0/24"), "documentation, TEST-NET-3 (RFC 5737)"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast (RFC 5771)"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved (RFC 1112)"},
	{netip.MustParsePrefix("255.255.255.255/32"), "limited broadcast (RFC 919)"},

	{netip.MustParsePrefix("::/96"), "unspecified, loopback and IPv4-compatible (RFC 4291)"},
	{netip.MustParsePrefix("64:ff9b::/96"), "IPv4/IPv6 translation, embeds IPv4 (RFC 6052)"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "local-use IPv4/IPv6 translation (RFC 8215)"},
	{netip.MustParsePrefix("100::/64"), "discard-only (RFC 6666)"},
	{netip.MustParsePrefix("2001::/23"), "IETF protocol assignments (RFC 2928)"},
	{netip.MustParsePrefix("2001::/32"), "Teredo, embeds IPv4 (RFC 4380)"},
	{netip.MustParsePrefix("2001:2::/48"), "benchmarking (RFC 5180)"},
	{netip.MustParsePrefix("2001:db8::/32"), "documentation (RFC 3849)"},
	{netip.MustParsePrefix("2002::/16"), "6to4, embeds IPv4 (RFC 3056)"},
	{netip.MustParsePrefix("3fff::/20"), "documentation (RFC 9637)"},
	{netip.MustParsePrefix("5f00::/16"), "segment routing SIDs (RFC 9602)"},
	{netip.MustParsePrefix("fc00::/7"), "unique-local, AWS metadata fd00:ec2::254 (RFC 4193)"},
	{netip.MustParsePrefix("fe80::/10"), "link-local (RFC 4291)"},
	{netip.MustParsePrefix("fec0::/10"), "site-local, deprecated (RFC 3879)"},
	{netip.MustParsePrefix("ff00::/8"), "multicast (RFC 4291)"},
}

var globalUnicast6 = netip.MustParsePrefix("2000::/3")

// Refused is the error for a connection the guard stopped.
type Refused struct{ Addr netip.Addr }

func (e *Refused) Error() string {
	return fmt.Sprintf("refusing to connect to %s: private, loopback, link-local or reserved address", e.Addr)
}

// Allowed reports whether a connection to addr may be made.
func Allowed(addr netip.Addr) bool {
	addr = addr.Unmap()
	if !addr.IsValid() || (addr.Is6() && !globalUnicast6.Contains(addr)) {
		return false
	}
	for _, p := range Special {
		if p.Prefix.Contains(addr) {
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

// CheckURL names what is wrong with raw as the URL of a tenant's host that comms will call (a
// webhook endpoint, a Web Push endpoint), or returns "": it refuses what the dial guard would
// refuse anyway, so the tenant hears it at once rather than from a failed delivery. Plain http,
// credentials in the URL and literal private or loopback addresses are refused unless
// allowPrivate (dev stacks and tests); names are checked when dialled.
func CheckURL(raw string, allowPrivate bool) string {
	if raw == "" {
		return "is required"
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return "must be an absolute https:// URL"
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && allowPrivate:
	default:
		return "must use https://"
	}
	if u.User != nil {
		return "must not carry credentials"
	}
	if u.Fragment != "" {
		return "must not have a #fragment"
	}
	if allowPrivate {
		return ""
	}
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".") // "localhost." is localhost
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return "must not point at this machine"
	}
	if addr, err := netip.ParseAddr(host); err == nil && !Allowed(addr) {
		return "must not be a private, loopback, link-local or reserved address"
	}
	return ""
}
