package apns

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"
)

// A .p8 key is read as the file has it, and as a single-line form field leaves it pasted (the
// dashboard's secret fields): its lines run together, or its base64 body alone.
func TestAKeyIsReadHoweverItWasPasted(t *testing.T) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(k)
	file := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	lines := strings.Split(strings.TrimSpace(file), "\n")
	for name, p8 := range map[string]string{
		"the file":         file,
		"one line":         strings.Join(lines, ""),
		"spaces for lines": strings.Join(lines, " "),
		"the body alone":   strings.Join(lines[1:len(lines)-1], ""),
	} {
		if got := parseKey(p8); got == nil || !got.Equal(k) {
			t.Errorf("%s: not read", name)
		}
	}
	if parseKey("-----BEGIN PRIVATE KEY-----notakey-----END PRIVATE KEY-----") != nil {
		t.Error("garbage read as a key")
	}
}
