// Package interop sends through the SES and SMTP adapters to maintained emulators from npm
// (aws-ses-v2-local and maildev, pinned in test/emulators/package.json) and reads the mail back
// from each emulator's own API. The fakes in internal/testing/fakeprovider are ours; these are not.
//
// Install them with `npm ci --prefix test/emulators` (make test does). Without them the tests
// skip, unless COMMS_REQUIRE_EMULATORS=1 (CI sets it), when they fail.
package interop

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/logicspike/comms/pkg/message"
	"github.com/logicspike/comms/pkg/provider"
	"github.com/logicspike/comms/pkg/provider/ses"
	"github.com/logicspike/comms/pkg/provider/smtp"
)

func emulator(t *testing.T, name string) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	bin := filepath.Join(filepath.Dir(file), "..", "..", "..", "test", "emulators", "node_modules", ".bin", name)
	if _, err := os.Stat(bin); err != nil {
		if os.Getenv("COMMS_REQUIRE_EMULATORS") == "1" {
			t.Fatalf("%s is not installed (npm ci --prefix test/emulators): %v", name, err)
		}
		t.Skipf("%s is not installed; run npm ci --prefix test/emulators", name)
	}
	return bin
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// start runs an emulator until the test ends and waits until url answers.
func start(t *testing.T, url string, bin string, args ...string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(url) //nolint:gosec // loopback emulator
		if err == nil {
			resp.Body.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not come up: %v\n%s", filepath.Base(bin), err, out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url) //nolint:gosec // loopback emulator
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

// unsubscribeHeaders are what the worker gives an email in a category its recipient may leave
// (unsubscribe.Links), at full length with a tenant's mailbox after the link: each adapter must
// deliver them as they are, however it folds a header longer than a line.
var unsubscribeHeaders = map[string]string{
	"List-Unsubscribe":      "<https://hooks.acme.example/u/" + unsubscribeToken + ">, <mailto:unsubscribe@acme.example?subject=unsubscribe%20" + unsubscribeToken + ">",
	"List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
}

const unsubscribeToken = "WyJ0ZW5fRmtKNmFmZmd2dHJyWjNkczc1eUpkayIsInNfYTFiMmMzZDRlNWY2YTdiOGM5ZDAiLCJuZXdzIl0.v1.9pQm3kXz0bq5bX2wq1r8FZc7m3j4v8Jk0l3m2n1o5pQ"

func TestSESAdapterAgainstAWSSESv2Local(t *testing.T) {
	t.Parallel()
	bin := emulator(t, "aws-ses-v2-local")
	port := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	start(t, base+"/store", bin, "--host", "127.0.0.1", "--port", strconv.Itoa(port))

	creds, _ := json.Marshal(ses.Credentials{Region: "us-east-1", AccessKeyID: "AKIAINTEROPTEST00001", SecretAccessKey: "interop-secret-key-0123456789"})
	a, err := ses.New(provider.Config{ID: "prv_ses", Type: ses.Type, Channel: message.Email, Credentials: creds,
		Sender: json.RawMessage(`{"from":"Acme <noreply@acme.example>"}`)}, provider.Env{SESEndpoint: base})
	if err != nil {
		t.Fatal(err)
	}
	res, err := a.Send(context.Background(), provider.Message{ID: "msg_interop", Channel: message.Email, To: "buyer@example.com",
		Subject: "Grüße from SES", Text: "plain body", HTML: "<p>html body</p>", Headers: unsubscribeHeaders})
	if err != nil || res.ProviderMessageID == "" {
		t.Fatalf("send: %+v %v", res, err)
	}
	var store struct {
		Emails []struct {
			MessageID   string `json:"messageId"`
			From        string `json:"from"`
			Subject     string `json:"subject"`
			Destination struct {
				To []string `json:"to"`
			} `json:"destination"`
			Body struct {
				Text string `json:"text"`
				HTML string `json:"html"`
			} `json:"body"`
			Headers []struct{ Name, Value string } `json:"headers"`
		} `json:"emails"`
	}
	getJSON(t, base+"/store", &store)
	if len(store.Emails) != 1 {
		t.Fatalf("emulator holds %d emails", len(store.Emails))
	}
	e := store.Emails[0]
	if e.Subject != "Grüße from SES" || e.Body.Text != "plain body" || e.Body.HTML != "<p>html body</p>" ||
		len(e.Destination.To) != 1 || e.Destination.To[0] != "buyer@example.com" || !strings.Contains(e.From, "noreply@acme.example") {
		t.Fatalf("emulator received %+v", e)
	}
	if e.MessageID != "" && e.MessageID != res.ProviderMessageID {
		t.Fatalf("message id %q, adapter returned %q", e.MessageID, res.ProviderMessageID)
	}
	got := map[string]string{}
	for _, h := range e.Headers {
		got[h.Name] = h.Value
	}
	if len(got) != 2 || got["List-Unsubscribe"] != unsubscribeHeaders["List-Unsubscribe"] || got["List-Unsubscribe-Post"] != "List-Unsubscribe=One-Click" {
		t.Fatalf("emulator received the headers %v", e.Headers)
	}
}

func TestSMTPAdapterAgainstMaildev(t *testing.T) {
	t.Parallel()
	bin := emulator(t, "maildev")
	smtpPort, webPort := freePort(t), freePort(t)
	web := fmt.Sprintf("http://127.0.0.1:%d", webPort)
	start(t, web+"/email", bin, "--ip", "127.0.0.1", "--smtp", strconv.Itoa(smtpPort), "--web", strconv.Itoa(webPort),
		"--incoming-user", "mailer", "--incoming-pass", "interop-pass")

	creds, _ := json.Marshal(smtp.Credentials{Host: "127.0.0.1", Port: smtpPort, Username: "mailer", Password: "interop-pass", TLS: smtp.NoTLS})
	cfg := provider.Config{ID: "prv_smtp", Type: smtp.Type, Channel: message.Email, Credentials: creds,
		Sender: json.RawMessage(`{"from":"Acme Støre <noreply@acme.example>"}`)}
	// maildev speaks no TLS, so this needs the dev/test allowance.
	a, err := smtp.New(cfg, provider.Env{AllowInsecure: true})
	if err != nil {
		t.Fatal(err)
	}
	res, err := a.Send(context.Background(), provider.Message{ID: "msg_interop", Channel: message.Email, To: "buyer@example.com",
		Subject: "Grüße — your receipt", Text: "Thanks for your order.", HTML: "<p>Thanks for your <b>order</b>.</p>", Headers: unsubscribeHeaders})
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	var emails []struct {
		MessageID string `json:"messageId"`
		Subject   string `json:"subject"`
		Text      string `json:"text"`
		HTML      string `json:"html"`
		From      []struct{ Address, Name string }
		To        []struct{ Address string }
		Headers   map[string]string
	}
	getJSON(t, web+"/email", &emails)
	if len(emails) != 1 {
		t.Fatalf("maildev holds %d emails", len(emails))
	}
	e := emails[0]
	if e.Subject != "Grüße — your receipt" || strings.TrimSpace(e.Text) != "Thanks for your order." || !strings.Contains(e.HTML, "<b>order</b>") ||
		len(e.From) != 1 || e.From[0].Name != "Acme Støre" || e.To[0].Address != "buyer@example.com" || "<"+e.MessageID+">" != res.ProviderMessageID {
		t.Fatalf("maildev parsed %+v (adapter's Message-ID %s)", e, res.ProviderMessageID)
	}
	if e.Headers["list-unsubscribe"] != unsubscribeHeaders["List-Unsubscribe"] || e.Headers["list-unsubscribe-post"] != "List-Unsubscribe=One-Click" {
		t.Fatalf("maildev parsed the headers %v", e.Headers)
	}

	// Wrong password: maildev refuses it and the adapter says auth_failed.
	bad, _ := json.Marshal(smtp.Credentials{Host: "127.0.0.1", Port: smtpPort, Username: "mailer", Password: "wrong", TLS: smtp.NoTLS})
	cfg.Credentials = bad
	a, _ = smtp.New(cfg, provider.Env{AllowInsecure: true})
	_, err = a.Send(context.Background(), provider.Message{To: "buyer@example.com", Subject: "s", Text: "t"})
	pe := provider.Classify("smtp", err)
	if err == nil || pe.Code != provider.AuthFailed {
		t.Fatalf("wrong password: %v", err)
	}
}
