package webhooks

import (
	"net"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"github.com/logicspike/comms/internal/platform/netguard"
)

// FuzzEndpointURL feeds arbitrary URLs to the check a tenant's endpoint URL passes when saved.
// It must never panic, must name the url field when it refuses, and what it accepts must be an
// absolute https URL without credentials whose host, when an address, is a public one.
func FuzzEndpointURL(f *testing.F) {
	for _, seed := range []string{
		"https://hooks.example.com/comms", "http://hooks.example.com", "https://127.0.0.1/", "https://[::1]:8443/x",
		"https://169.254.169.254/latest", "https://[::ffff:10.0.0.1]/", "https://user:pw@example.com/", "https://0x7f.1/",
		"https://localhost./", "https://LOCALHOST/", "//example.com", "https:example.com", "https://example.com/#frag",
		"https://[fe80::1%25eth0]/", "https://2130706433/", "https://example.com:99999/", "\x00", "https://exa mple.com/",
	} {
		f.Add(seed)
	}
	s := &Service{}
	f.Fuzz(func(t *testing.T, raw string) {
		bad := s.checkURL(raw)
		if len(bad) > 0 {
			if bad[0].Field != "url" || bad[0].Message == "" {
				t.Fatalf("%q refused without naming url: %+v", raw, bad)
			}
			return
		}
		u, err := url.Parse(raw)
		if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || len(raw) > MaxURLLength {
			t.Fatalf("accepted %q", raw)
		}
		host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
		if addr, err := netip.ParseAddr(host); err == nil && !netguard.Allowed(addr) {
			t.Fatalf("accepted %q, a private address", raw)
		}
		if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
			t.Fatalf("accepted %q, loopback", raw)
		}
		if host == "localhost" || strings.HasSuffix(host, ".localhost") {
			t.Fatalf("accepted %q", raw)
		}
	})
}
