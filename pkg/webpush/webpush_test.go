package webpush

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"strings"
	"testing"
	"time"
)

// RFC 8291, Appendix A: every input of one encryption, and the body it makes.
const (
	rfcPlaintext = "When I grow up, I want to be a watermelon"
	rfcASPrivate = "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw"
	rfcUAPrivate = "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94"
	rfcUAPublic  = "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4"
	rfcSalt      = "DGv6ra1nlYgDCS1FRnbzlw"
	rfcAuth      = "BTBZMqHH6r4Tts7J_aSIgg"
	rfcBody      = "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN"
)

func b64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func rfcKeys(t *testing.T) (Keys, *ecdh.PrivateKey) {
	t.Helper()
	k, err := ParseKeys(rfcUAPublic, rfcAuth)
	if err != nil {
		t.Fatal(err)
	}
	ua, err := ecdh.P256().NewPrivateKey(b64(t, rfcUAPrivate))
	if err != nil {
		t.Fatal(err)
	}
	return k, ua
}

func TestEncryptionMatchesRFC8291sExample(t *testing.T) {
	k, ua := rfcKeys(t)
	as, err := ecdh.P256().NewPrivateKey(b64(t, rfcASPrivate))
	if err != nil {
		t.Fatal(err)
	}
	body, err := encrypt(k, []byte(rfcPlaintext), as, b64(t, rfcSalt))
	if err != nil {
		t.Fatal(err)
	}
	if got := base64.RawURLEncoding.EncodeToString(body); got != rfcBody {
		t.Fatalf("body\n got %s\nwant %s", got, rfcBody)
	}
	got, err := Decrypt(ua, k.Auth, b64(t, rfcBody))
	if err != nil || string(got) != rfcPlaintext {
		t.Fatalf("decrypting the RFC's body: %q, %v", got, err)
	}
}

func TestAnEncryptedMessageOpensOnlyForItsSubscriber(t *testing.T) {
	k, ua := rfcKeys(t)
	msg := bytes.Repeat([]byte("x"), MaxPlaintext)
	body, err := Encrypt(k, msg)
	if err != nil {
		t.Fatal(err)
	}
	if len(body) != MaxBody {
		t.Fatalf("a message of MaxPlaintext bytes makes a body of %d bytes, want %d", len(body), MaxBody)
	}
	if got, err := Decrypt(ua, k.Auth, body); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("round trip: %v", err)
	}
	again, _ := Encrypt(k, msg)
	if bytes.Equal(again[:headerLen], body[:headerLen]) {
		t.Fatal("two encryptions share a salt and sender key")
	}
	other, _ := ecdh.P256().GenerateKey(rand.Reader)
	if _, err := Decrypt(other, k.Auth, body); err == nil {
		t.Fatal("another key opened the message")
	}
	if _, err := Decrypt(ua, make([]byte, 16), body); err == nil {
		t.Fatal("another auth secret opened the message")
	}
	body[len(body)-1] ^= 1
	if _, err := Decrypt(ua, k.Auth, body); err == nil {
		t.Fatal("an altered body opened")
	}
	if _, err := Encrypt(k, append(msg, 'x')); err == nil {
		t.Fatal("a message over MaxPlaintext was encrypted")
	}
}

func TestSubscriptionKeysAreChecked(t *testing.T) {
	for _, c := range []struct{ p256dh, auth, want string }{
		{"", rfcAuth, "p256dh"},
		{"not base64!", rfcAuth, "p256dh"},
		{rfcAuth, rfcAuth, "p256dh"},                                        // 16 bytes
		{"BA" + strings.Repeat("A", 85), rfcAuth, "p256dh: is not a point"}, // 65 bytes, off the curve
		{rfcUAPublic, "", "auth"},
		{rfcUAPublic, rfcSalt + "AA", "auth"},
	} {
		if _, err := ParseKeys(c.p256dh, c.auth); err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("ParseKeys(%q, %q) = %v, want an error naming %s", c.p256dh, c.auth, err, c.want)
		}
	}
	if _, err := ParseKeys(rfcUAPublic+"=", rfcAuth+"=="); err != nil {
		t.Errorf("padded keys: %v", err)
	}
}

func TestAVAPIDTokenIsSignedForTheEndpointsOrigin(t *testing.T) {
	pub, priv, err := GenerateVAPID()
	if err != nil {
		t.Fatal(err)
	}
	if len(b64(t, pub)) != 65 || len(b64(t, priv)) != 32 {
		t.Fatalf("key sizes %d and %d", len(b64(t, pub)), len(b64(t, priv)))
	}
	v, err := NewVAPID("mailto:ops@acme.example", pub, priv)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	endpoint := "https://push.example.net/wpush/v2/abc"
	h, err := v.Authorization(endpoint, now)
	if err != nil {
		t.Fatal(err)
	}
	c, err := VerifyAuthorization(h, endpoint, now)
	if err != nil {
		t.Fatal(err)
	}
	if c.PublicKey != pub || c.Subject != "mailto:ops@acme.example" || c.Expires.Sub(now) > TokenLifetime {
		t.Fatalf("claims %+v", c)
	}
	if _, err := VerifyAuthorization(h, "https://other.example.net/wpush/abc", now); err == nil {
		t.Fatal("a token for one push service was accepted by another")
	}
	if _, err := VerifyAuthorization(h, endpoint, now.Add(TokenLifetime+time.Minute)); err == nil {
		t.Fatal("an expired token was accepted")
	}
	otherPub, _, _ := GenerateVAPID()
	if _, err := VerifyAuthorization(strings.Replace(h, pub, otherPub, 1), endpoint, now); err == nil {
		t.Fatal("a token was accepted under another key")
	}
	if again, _ := v.Authorization(endpoint+"/other", now.Add(30*time.Minute)); again != h {
		t.Fatal("a token was signed again for the same push service within the hour")
	}
	later, _ := v.Authorization(endpoint, now.Add(90*time.Minute))
	if later == h {
		t.Fatal("a token was reused past the hour")
	}
	if c, err := VerifyAuthorization(later, endpoint, now.Add(90*time.Minute)); err != nil || c.Expires.Sub(now.Add(90*time.Minute)) > TokenLifetime {
		t.Fatalf("the next token: %v %+v", err, c)
	}
}

func TestVAPIDKeysAreChecked(t *testing.T) {
	pub, priv, _ := GenerateVAPID()
	otherPub, _, _ := GenerateVAPID()
	for _, c := range []struct{ subject, pub, priv, want string }{
		{"ops@acme.example", pub, priv, "subject"},
		{"http://acme.example", pub, priv, "subject"},
		{"mailto:ops@acme.example", pub, "short", "private_key"},
		{"mailto:ops@acme.example", otherPub, priv, "public_key"},
	} {
		if _, err := NewVAPID(c.subject, c.pub, c.priv); err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("NewVAPID(%q, …) = %v, want an error naming %s", c.subject, err, c.want)
		}
	}
	if _, err := NewVAPID("https://acme.example/contact", pub, priv); err != nil {
		t.Errorf("an https subject: %v", err)
	}
}
