package unsubscribe_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/logicspike/comms/internal/platform/secrets"
	"github.com/logicspike/comms/internal/unsubscribe"
)

func ring(t *testing.T, keys string) *secrets.Ring {
	t.Helper()
	r, err := secrets.ParseRing(keys)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func key(b byte) string {
	return base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{b}, secrets.KeySize))
}

// A link reads back only under a ring holding the key it was signed with: it survives a
// rotation while the old key stays, and nothing in it can be changed (another tenant, another
// person, another category) without breaking it.
func TestLinksAreSignedAndSurviveKeyRotation(t *testing.T) {
	t.Parallel()
	old := ring(t, "v1:"+key(1))
	tok := unsubscribe.Token{TenantID: "ten_a", Subject: "recipient:u_1", Category: "news"}
	link := unsubscribe.Encode(old, tok)
	if got, err := unsubscribe.Decode(old, link); err != nil || got != tok {
		t.Fatalf("decode: %+v %v", got, err)
	}
	rotated := ring(t, "v2:"+key(2)+",v1:"+key(1))
	if got, err := unsubscribe.Decode(rotated, link); err != nil || got != tok {
		t.Fatalf("after a rotation: %+v %v", got, err)
	}
	if fresh := unsubscribe.Encode(rotated, tok); !strings.Contains(fresh, ".v2.") {
		t.Fatalf("a new link is signed with the newest key: %s", fresh)
	}
	if _, err := unsubscribe.Decode(ring(t, "v2:"+key(2)), link); !errors.Is(err, unsubscribe.ErrInvalid) {
		t.Fatalf("once v1 left the ring: %v", err)
	}
	payload, rest, _ := strings.Cut(link, ".")
	raw, _ := base64.RawURLEncoding.DecodeString(payload)
	for _, forged := range []string{
		base64.RawURLEncoding.EncodeToString(bytes.Replace(raw, []byte("ten_a"), []byte("ten_b"), 1)) + "." + rest,
		base64.RawURLEncoding.EncodeToString(bytes.Replace(raw, []byte("u_1"), []byte("u_2"), 1)) + "." + rest,
		base64.RawURLEncoding.EncodeToString(bytes.Replace(raw, []byte("news"), []byte("bill"), 1)) + "." + rest,
		link[:len(link)-2] + "AA",
		strings.Replace(link, ".v1.", ".v2.", 1),
		"", "a.b", "a.v1.b.c",
	} {
		if _, err := unsubscribe.Decode(rotated, forged); !errors.Is(err, unsubscribe.ErrInvalid) {
			t.Errorf("forged link %q: %v", forged, err)
		}
	}
}
