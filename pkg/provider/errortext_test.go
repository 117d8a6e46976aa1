package provider

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"
)

// A failure shown to a tenant names what failed, never the platform's own resolver.
func TestErrorTextHidesTheResolver(t *testing.T) {
	t.Parallel()
	dns := &net.DNSError{Err: "no such host", Name: "api.example.invalid", Server: "10.96.0.10:53", IsNotFound: true}
	err := &url.Error{Op: "Post", URL: "https://api.example.invalid/send", Err: &net.OpError{Op: "dial", Net: "tcp", Err: dns}}
	for _, got := range []string{ErrorText(err), Unreachable(context.Background(), "webhook", err).Message,
		Classify("webhook", fmt.Errorf("send: %w", err)).Message} {
		if strings.Contains(got, "10.96.0.10") || !strings.Contains(got, "lookup api.example.invalid: no such host") {
			t.Errorf("shown to the tenant: %q", got)
		}
	}
}
