package secrets

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

func key(b byte) string { return base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{b}, KeySize)) }

func TestParseRingRejectsBadKeys(t *testing.T) {
	secret := key(7)
	for _, tc := range []struct{ name, in, want string }{
		{"empty", "", "no keys"},
		{"no version", secret, "want version:base64key"},
		{"bad version", "v 1:" + secret, "want version:base64key"},
		{"not base64", "v1:!!!!", "not valid base64"},
		{"short key", "v1:" + base64.StdEncoding.EncodeToString([]byte("sixteen byte key")), "decodes to 16 bytes"},
		{"duplicate", "v1:" + secret + ",v1:" + key(8), "appears twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseRing(tc.in)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), secret) {
				t.Fatal("error message contains key material")
			}
		})
	}
}

func TestSealOpenBindsContextAndSurvivesRotation(t *testing.T) {
	old, err := ParseRing("v1:" + key(1))
	if err != nil {
		t.Fatal(err)
	}
	aad := []byte("tenant_a|prv_1")
	v, sealed, err := old.Seal([]byte(`{"auth_token":"s3cret"}`), aad)
	if err != nil || v != "v1" {
		t.Fatalf("seal: %v %q", err, v)
	}
	if bytes.Contains(sealed, []byte("s3cret")) {
		t.Fatal("plaintext visible in ciphertext")
	}

	rotated, err := ParseRing("v2:" + key(2) + ",v1:" + key(1))
	if err != nil {
		t.Fatal(err)
	}
	if rotated.Current() != "v2" {
		t.Fatalf("current = %s", rotated.Current())
	}
	got, err := rotated.Open(v, sealed, aad)
	if err != nil || string(got) != `{"auth_token":"s3cret"}` {
		t.Fatalf("old ciphertext after rotation: %q %v", got, err)
	}
	// Copied into another tenant's row, or another config of the same tenant: must not open.
	for _, other := range []string{"tenant_b|prv_1", "tenant_a|prv_2", ""} {
		if _, err := rotated.Open(v, sealed, []byte(other)); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("opened with aad %q: %v", other, err)
		}
	}
	tampered := bytes.Clone(sealed)
	tampered[len(tampered)-1] ^= 1
	if _, err := rotated.Open(v, tampered, aad); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("tampered: %v", err)
	}
	if _, err := rotated.Open(v, sealed[:5], aad); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("truncated: %v", err)
	}
	// A ring that lost v1 says which version is missing.
	only2, _ := ParseRing("v2:" + key(2))
	if _, err := only2.Open(v, sealed, aad); err == nil || !strings.Contains(err.Error(), `"v1"`) {
		t.Fatalf("missing version: %v", err)
	}
}

func TestGenerateKeyParses(t *testing.T) {
	k, err := GenerateKey("v3")
	if err != nil {
		t.Fatal(err)
	}
	r, err := ParseRing(k)
	if err != nil || r.Current() != "v3" {
		t.Fatalf("%v %v", r, err)
	}
}
