package netguard

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"
)

func TestAllowed(t *testing.T) {
	for addr, want := range map[string]bool{
		"93.184.215.14":    true,
		"2606:2800:21f::1": true,
		"127.0.0.1":        false,
		"::1":              false,
		"10.1.2.3":         false,
		"172.16.0.1":       false,
		"192.168.1.1":      false,
		"169.254.169.254":  false, // cloud metadata
		"fd00:ec2::254":    false,
		"fe80::1":          false,
		"100.64.0.1":       false,
		"0.0.0.0":          false,
		"::ffff:127.0.0.1": false, // IPv4-mapped loopback
		"::ffff:10.0.0.1":  false,
		"64:ff9b::a00:1":   false,
		"255.255.255.255":  false,
		"224.0.0.1":        false,
		"2002:7f00:1::":    false,
		"198.18.0.1":       false,
	} {
		if got := Allowed(netip.MustParseAddr(addr)); got != want {
			t.Errorf("Allowed(%s) = %v, want %v", addr, got, want)
		}
	}
}

// A name that resolves to loopback is refused when the connection is made, whatever it
// resolved to earlier: the check sees the address being dialled.
func TestDialRefusesLoopbackAtConnectTime(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, host := range []string{"127.0.0.1", "localhost"} {
		_, err = DialFunc(time.Second, false)(ctx, "tcp", net.JoinHostPort(host, port))
		var refused *Refused
		if !errors.As(err, &refused) {
			t.Fatalf("dial %s: %v, want Refused", host, err)
		}
	}
	c, err := DialFunc(time.Second, true)(ctx, "tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("allowPrivate dial: %v", err)
	}
	c.Close()
}

// Every special-purpose range is refused at its first address, inside, and at its last, and the
// addresses just outside it are judged on their own (public ones allowed).
func TestEverySpecialRangeIsRefused(t *testing.T) {
	for _, sp := range Special {
		t.Run(sp.Prefix.String(), func(t *testing.T) {
			first := sp.Prefix.Masked().Addr()
			last := lastAddr(sp.Prefix)
			for _, a := range []netip.Addr{first, first.Next(), last} {
				if Allowed(a) {
					t.Errorf("%s (%s) allowed", a, sp.Name)
				}
			}
		})
	}
	for _, a := range []string{
		"::127.0.0.1", "::10.0.0.1", "fec0::1", "2001::7f00:1", "2001:0:4136:e378:8000:63bf:3fff:fdd2",
		"192.0.2.1", "198.51.100.7", "203.0.113.255", "2001:db8::1", "3fff::1", "100::1", "5f00::1",
		"::ffff:192.0.2.1", "4000::1", "::",
	} {
		if Allowed(netip.MustParseAddr(a)) {
			t.Errorf("%s allowed", a)
		}
	}
	for _, a := range []string{"192.0.3.1", "198.51.101.1", "203.0.114.1", "8.8.8.8", "2a00:1450:4001::1", "2001:4860:4860::8888"} {
		if !Allowed(netip.MustParseAddr(a)) {
			t.Errorf("public %s refused", a)
		}
	}
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}
