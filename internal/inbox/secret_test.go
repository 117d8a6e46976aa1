package inbox_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/logicspike/comms/internal/api"
	"github.com/logicspike/comms/internal/testing/stacktest"
)

// snippets are the token-signing examples of docs/inbox.md#tokens-your-backend-signs, by language.
func snippets(t *testing.T) map[string]string {
	t.Helper()
	doc, err := os.ReadFile("../../docs/inbox.md")
	if err != nil {
		t.Fatal(err)
	}
	section := string(doc)
	section = section[strings.Index(section, "## Tokens your backend signs"):]
	section = section[:strings.Index(section[3:], "\n## ")+3]
	out := map[string]string{}
	for _, m := range regexp.MustCompile("(?s)```(python|js|go)\n(.*?)```").FindAllStringSubmatch(section, -1) {
		out[m[1]] = m[2]
	}
	if len(out) != 3 {
		t.Fatalf("docs/inbox.md's section has examples for %v, want python, js and go", out)
	}
	return out
}

// run runs a snippet of docs/inbox.md with what calls its function appended, and returns the
// token it prints.
func run(t *testing.T, lang, code, tenantID, recipientID, secret string) string {
	t.Helper()
	dir := t.TempDir()
	var cmd *exec.Cmd
	switch lang {
	case "python":
		file := filepath.Join(dir, "sign.py")
		must(t, os.WriteFile(file, []byte(code+"\nimport sys\nprint(inbox_token(*sys.argv[1:4]))\n"), 0o600))
		cmd = exec.Command("python3", file, tenantID, recipientID, secret)
	case "js":
		file := filepath.Join(dir, "sign.mjs")
		must(t, os.WriteFile(file, []byte(code+"\nconsole.log(inboxToken(...process.argv.slice(2, 5)));\n"), 0o600))
		cmd = exec.Command("node", file, tenantID, recipientID, secret)
	case "go":
		file := filepath.Join(dir, "main.go")
		must(t, os.WriteFile(file, []byte("package main\n\nimport (\n\t\"crypto/hmac\"\n\t\"crypto/sha256\"\n\t\"encoding/base64\"\n\t\"fmt\"\n\t\"os\"\n\t\"time\"\n)\n\n"+
			code+"\nfunc main() { fmt.Println(inboxToken(os.Args[1], os.Args[2], os.Args[3], time.Hour)) }\n"), 0o600))
		cmd = exec.Command("go", "run", file, tenantID, recipientID, secret)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the %s example: %v\n%s", lang, err, out)
	}
	return strings.TrimSpace(string(out))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// sign is the token format of docs/inbox.md, written here from its text.
func sign(tenantID, recipientID, secret string, exp time.Time) string {
	body := fmt.Sprintf("t1.%s.%s.%d", tenantID, recipientID, exp.Unix())
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(body))
	return body + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// A tenant's backend signs recipient tokens with its inbox secret: the examples of docs/inbox.md
// in Python, Node.js and Go, run as written, each make a token that reads the person's inbox. A
// token signed with another secret, altered, expired, too far ahead, naming another tenant or
// signed before the tenant had a secret is refused; after a rotation the previous secret works
// for a day and the new one at once; after removal neither does.
func TestATokenYourBackendSignsOpensTheInbox(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{})
	tid, key := s.Tenant()
	otherTID, otherKey := s.Tenant()
	s.Do("PUT", "/v1/recipients/u.1:a", key, map[string]any{}, nil, nil)
	reads := func(token string) int {
		t.Helper()
		return s.Do("GET", "/v1/inbox", token, nil, nil, nil).StatusCode
	}
	if code := reads(sign(tid, "u.1:a", "isk_guess", time.Now().Add(time.Hour))); code != 401 {
		t.Fatalf("a token before the tenant has a secret: %d", code)
	}
	var sec api.InboxSecret
	if resp := s.Do("POST", "/v1/settings/inbox-secret", key, nil, nil, &sec); resp.StatusCode != 201 || !strings.HasPrefix(sec.Secret, "isk_") || sec.PreviousValidUntil != nil {
		t.Fatalf("new secret: %d %+v", resp.StatusCode, sec)
	}
	for lang, code := range snippets(t) {
		if _, err := exec.LookPath(map[string]string{"python": "python3", "js": "node", "go": "go"}[lang]); err != nil {
			t.Fatalf("the %s example cannot be run here: %v", lang, err)
		}
		tok := run(t, lang, code, tid, "u.1:a", sec.Secret)
		if code := reads(tok); code != 200 {
			t.Fatalf("the %s example's token %s: %d", lang, tok, code)
		}
	}
	good := sign(tid, "u.1:a", sec.Secret, time.Now().Add(time.Hour))
	var otherSec api.InboxSecret
	s.Do("POST", "/v1/settings/inbox-secret", otherKey, nil, nil, &otherSec)
	for name, tok := range map[string]string{
		"another secret":          sign(tid, "u.1:a", "isk_"+strings.Repeat("A", 43), time.Now().Add(time.Hour)),
		"altered":                 strings.Replace(good, "u.1:a", "u.1:b", 1),
		"expired":                 sign(tid, "u.1:a", sec.Secret, time.Now().Add(-time.Second)),
		"more than 7 days ahead":  sign(tid, "u.1:a", sec.Secret, time.Now().Add(8*24*time.Hour)),
		"another tenant's secret": sign(tid, "u.1:a", otherSec.Secret, time.Now().Add(time.Hour)),
		"moved to another tenant": sign(otherTID, "u.1:a", sec.Secret, time.Now().Add(time.Hour)),
		"an API key":              key,
	} {
		if code := reads(tok); code != 401 {
			t.Errorf("%s: %d, want 401", name, code)
		}
	}
	var next api.InboxSecret
	if resp := s.Do("POST", "/v1/settings/inbox-secret", key, nil, nil, &next); resp.StatusCode != 201 || next.Secret == sec.Secret ||
		next.PreviousValidUntil == nil || next.PreviousValidUntil.Sub(time.Now()) < 23*time.Hour {
		t.Fatalf("rotation: %d %+v", resp.StatusCode, next)
	}
	if reads(good) != 200 || reads(sign(tid, "u.1:a", next.Secret, time.Now().Add(time.Hour))) != 200 {
		t.Fatal("after a rotation, the previous secret's token or the new secret's is refused")
	}
	if resp := s.Do("DELETE", "/v1/settings/inbox-secret", key, nil, nil, nil); resp.StatusCode != 204 {
		t.Fatalf("remove: %d", resp.StatusCode)
	}
	if reads(good) != 401 || reads(sign(tid, "u.1:a", next.Secret, time.Now().Add(time.Hour))) != 401 {
		t.Fatal("a removed secret's tokens still open the inbox")
	}
	var n int
	if err := s.Pool.QueryRow(t.Context(), `SELECT count(*) FROM communication.audit_log WHERE target_type = 'inbox_secret' AND tenant_id = $1
		AND coalesce(before::text, '') NOT LIKE '%isk_%' AND coalesce(after::text, '') NOT LIKE '%isk_%'`, tid).Scan(&n); err != nil || n != 3 {
		t.Fatalf("audit rows of the secret: %d (want 3, none with the secret), %v", n, err)
	}
}
