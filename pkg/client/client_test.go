package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/logicspike/comms/internal/dispatch/worker"
	"github.com/logicspike/comms/internal/testing/stacktest"
	"github.com/logicspike/comms/internal/webhooks"
	"github.com/logicspike/comms/pkg/client"
	"github.com/logicspike/comms/pkg/event"
)

// The client against the real API, as a service developer uses it: an operator sets a tenant up;
// the tenant sends (with an idempotency key of the client's own, or the caller's, which replays),
// sends a batch, sends by a template, schedules a message and cancels it, reads a message and
// walks the list page by page; a refusal is an *Error naming the field and the request.
func TestClientAgainstTheAPI(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{})
	s.StartWorker(worker.Config{CommitInterval: 20 * time.Millisecond})
	ctx := context.Background()
	admin := client.NewAdmin(s.URL, s.AdminKey, client.WithHTTPClient(s.Client))
	fallback := true
	ten, err := admin.CreateTenant(ctx, client.CreateTenantJSONRequestBody{Name: "client test", AllowSystemFallback: &fallback})
	if err != nil || ten.ID == "" {
		t.Fatalf("create tenant: %+v, %v", ten, err)
	}
	key, err := admin.CreateAPIKey(ctx, client.CreateAPIKeyJSONRequestBody{Kind: "tenant", TenantID: ten.ID, Name: "client"})
	if err != nil || key.Secret == "" || key.APIKey.TenantID != ten.ID {
		t.Fatalf("create key: %+v, %v", key, err)
	}
	c := client.New(s.URL, key.Secret, client.WithHTTPClient(s.Client))

	sms := client.MessageRequest{Channel: "sms", To: "+14155550123", Text: "Your code is 123456"}
	first, err := c.SendMessage(ctx, sms)
	if err != nil || first.ID == "" {
		t.Fatalf("send: %+v, %v", first, err)
	}
	if m, err := c.GetMessage(ctx, first.ID); err != nil || !strings.HasPrefix(m.IdempotencyKey, "go-") || m.To != sms.To {
		t.Fatalf("the send's own idempotency key: %q, %v", m.IdempotencyKey, err)
	}
	mine, err := c.SendMessage(ctx, sms, client.IdempotencyKey("order-42"))
	again, err2 := c.SendMessage(ctx, sms, client.IdempotencyKey("order-42"))
	if err != nil || err2 != nil || again.ID != mine.ID || mine.ID == first.ID {
		t.Fatalf("the caller's key replays: %s then %s (%v, %v)", mine.ID, again.ID, err, err2)
	}

	batch, err := c.SendBatch(ctx, client.BatchRequest{Messages: []client.BatchItem{
		{Channel: "sms", To: "+14155550124", Text: "batch"}, {Channel: "sms", To: "+14155550125", Text: "batch"}, {Channel: "sms", To: "nope", Text: "batch"}}})
	if err != nil || batch.Accepted != 2 || batch.Refused != 1 || len(batch.Items) != 3 {
		t.Fatalf("batch: %+v, %v", batch, err)
	}

	if _, err := c.CreateTemplate(ctx, client.TemplateInput{Key: "otp", Name: "Login code", Channel: "sms",
		Variables: map[string]any{"type": "object", "required": []string{"code"}, "properties": map[string]any{"code": map[string]any{"type": "string"}}}}); err != nil {
		t.Fatal(err)
	}
	v, err := c.CreateTemplateVersion(ctx, "otp", client.TemplateVersionInput{Text: "Code {{code}}"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ActivateTemplateVersion(ctx, "otp", v.Version); err != nil {
		t.Fatal(err)
	}
	byTemplate, err := c.SendMessage(ctx, client.MessageRequest{To: "+14155550123", Template: client.TemplateRef{Key: "otp", Data: map[string]any{"code": "424242"}}})
	if err != nil {
		t.Fatal(err)
	}
	if m, _ := c.GetMessage(ctx, byTemplate.ID); m.Text != "Code 424242" || m.Template.Key != "otp" {
		t.Fatalf("sent by the template: %q %+v", m.Text, m.Template)
	}

	later, err := c.SendMessage(ctx, client.MessageRequest{Channel: "sms", To: "+14155550126", Text: "tomorrow", SendAt: time.Now().Add(24 * time.Hour)})
	if err != nil || later.Status != "scheduled" {
		t.Fatalf("schedule: %+v, %v", later, err)
	}
	if m, err := c.CancelMessage(ctx, later.ID); err != nil || m.Status != "canceled" {
		t.Fatalf("cancel: %s, %v", m.Status, err)
	}

	// Every message, two a page: three sends, two of a batch, one by the template, one canceled.
	var seen []string
	for m, err := range client.All(ctx, func(ctx context.Context, cursor string) (client.Page[client.Message], error) {
		return c.ListMessages(ctx, client.ListMessagesParams{Limit: 2, Cursor: cursor})
	}) {
		if err != nil {
			t.Fatal(err)
		}
		seen = append(seen, m.ID)
	}
	if len(seen) != 6 {
		t.Fatalf("walked %d messages, want 6: %v", len(seen), seen)
	}

	_, err = c.SendMessage(ctx, client.MessageRequest{Channel: "sms", To: "not a number", Text: "x"})
	var perr *client.Error
	if !errors.As(err, &perr) || perr.Status != http.StatusUnprocessableEntity || perr.Slug() != "validation" || perr.Field("to") == "" || perr.RequestID == "" {
		t.Fatalf("an invalid send: %#v", err)
	}
	if _, err := c.GetMessage(ctx, "msg_nope"); client.StatusOf(err) != http.StatusNotFound {
		t.Fatalf("an unknown message: %v", err)
	}
	if _, err := client.NewAdmin(s.URL, key.Secret, client.WithHTTPClient(s.Client)).ListTenants(ctx, client.ListTenantsParams{}); client.StatusOf(err) != http.StatusForbidden {
		t.Fatalf("a tenant key on an admin call: %v", err)
	}
}

// countingTransport counts the answers of each status it passes on.
type countingTransport struct {
	rt     http.RoundTripper
	mu     sync.Mutex
	status map[int]int
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := c.rt.RoundTrip(r)
	if err == nil {
		c.mu.Lock()
		c.status[resp.StatusCode]++
		c.mu.Unlock()
	}
	return resp, err
}

// A send over the tenant's rate limit is answered 429 with Retry-After; the client waits that
// long and sends again with the same idempotency key, so the message is accepted once.
func TestA429IsRetriedAfterItsRetryAfter(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{})
	tid, key := s.Tenant()
	if resp := s.Do("PATCH", "/admin/tenants/"+tid, s.AdminKey, map[string]any{"rate_per_second": 2, "rate_burst": 1}, nil, nil); resp.StatusCode != 200 {
		t.Fatalf("rate limit: %d", resp.StatusCode)
	}
	counted := &countingTransport{rt: s.Client.Transport, status: map[int]int{}}
	c := client.New(s.URL, key, client.WithHTTPClient(&http.Client{Transport: counted}))
	ctx := context.Background()
	var ids []string
	for range 2 {
		acc, err := c.SendMessage(ctx, client.MessageRequest{Channel: "sms", To: "+14155550123", Text: "hi"})
		if err != nil {
			t.Fatalf("send: %v", err)
		}
		ids = append(ids, acc.ID)
	}
	if counted.status[http.StatusTooManyRequests] == 0 || counted.status[http.StatusAccepted] != 2 || ids[0] == ids[1] {
		t.Fatalf("answers %v, ids %v: want a 429 retried into a second acceptance", counted.status, ids)
	}
	var page client.Page[client.Message]
	if page, _ = c.ListMessages(ctx, client.ListMessagesParams{}); len(page.Data) != 2 {
		t.Fatalf("%d messages recorded, want 2", len(page.Data))
	}
}

// Only requests that are safe to repeat are retried, a bounded number of times: a read, and a
// send (it carries an idempotency key); a POST that is not a send is returned at once.
func TestOnlyRequestsSafeToRepeatAreRetried(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	calls := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls[r.Method+" "+r.URL.Path]++
		mu.Unlock()
		w.Header().Set("Content-Type", "application/problem+json")
		w.Header().Set("Retry-After", "0")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, `{"type":"https://comms.example/problems/unavailable","title":"Service unavailable","status":503}`)
	}))
	defer srv.Close()
	c := client.New(srv.URL, "ck_tenant_x", client.WithRetries(2))
	ctx := context.Background()
	_, errGet := c.GetMessage(ctx, "msg_1")
	_, errSend := c.SendMessage(ctx, client.MessageRequest{Channel: "sms", To: "+14155550123", Text: "x"})
	_, errCreate := c.CreateTemplate(ctx, client.TemplateInput{Key: "k", Name: "n", Channel: "sms"})
	for _, err := range []error{errGet, errSend, errCreate} {
		if client.StatusOf(err) != http.StatusServiceUnavailable {
			t.Fatalf("want the 503 after the retries: %v", err)
		}
	}
	want := map[string]int{"GET /v1/messages/msg_1": 3, "POST /v1/messages": 3, "POST /v1/templates": 1}
	if !reflect.DeepEqual(calls, want) {
		t.Fatalf("attempts %v, want %v", calls, want)
	}
}

// A tenant's endpoint verifies each delivery with VerifyWebhook and reads it as a typed event;
// a delivery whose body was altered, or signed with another secret, is refused.
func TestAWebhookDeliveryIsVerifiedAndDecoded(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{})
	s.StartWorker(worker.Config{CommitInterval: 20 * time.Millisecond})
	s.StartDeliverer(webhooks.Config{})
	_, key := s.Tenant()
	c := client.New(s.URL, key, client.WithHTTPClient(s.Client))
	ctx := context.Background()

	type delivery struct {
		header http.Header
		body   []byte
	}
	got := make(chan delivery, 16)
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got <- delivery{r.Header.Clone(), body}
	}))
	defer rcv.Close()
	ep, err := c.CreateWebhookEndpoint(ctx, client.WebhookEndpointInput{URL: rcv.URL, EventTypes: []string{event.Sent}})
	if err != nil || !strings.HasPrefix(ep.Secret, "whsec_") {
		t.Fatalf("endpoint: %+v, %v", ep, err)
	}
	acc, err := c.SendMessage(ctx, client.MessageRequest{Channel: "sms", To: "+14155550123", Text: "hi"})
	if err != nil {
		t.Fatal(err)
	}
	var d delivery
	select {
	case d = <-got:
	case <-time.After(30 * time.Second):
		t.Fatal("no delivery")
	}
	ev, err := client.VerifyWebhook(ep.Secret, d.header, d.body)
	if err != nil || ev.Type != event.Sent || ev.Data.MessageID != acc.ID || ev.Data.Channel != "sms" || ev.ID != d.header.Get("webhook-id") {
		t.Fatalf("verified %+v, %v", ev, err)
	}
	altered := []byte(strings.Replace(string(d.body), acc.ID, "msg_forged", 1))
	if _, err := client.VerifyWebhook(ep.Secret, d.header, altered); err == nil {
		t.Fatal("an altered body was verified")
	}
	other, err := c.RotateWebhookSecret(ctx, ep.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.VerifyWebhook(other.Secret, d.header, d.body); err == nil {
		t.Fatal("a delivery signed before the rotation verified with the new secret alone")
	}
}

// Every operation of docs/openapi.json has its method: the tenant's on Client, the operators'
// ("Admin: …" tags) on Admin, named as its operationId. An operation added to the document
// without a method fails here.
func TestEveryOperationHasAMethod(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../../docs/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]struct {
			OperationID string   `json:"operationId"`
			Tags        []string `json:"tags"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	tenant, admin := reflect.TypeOf(&client.Client{}), reflect.TypeOf(&client.Admin{})
	n := 0
	for path, ops := range doc.Paths {
		for method, op := range ops {
			n++
			name := strings.ToUpper(op.OperationID[:1]) + op.OperationID[1:]
			name = strings.Replace(name, "Api", "API", 1)
			on := tenant
			if strings.HasPrefix(op.Tags[0], "Admin:") {
				on = admin
			}
			if _, ok := on.MethodByName(name); !ok {
				t.Errorf("%s %s (%s): no method %s.%s", strings.ToUpper(method), path, op.OperationID, on.Elem().Name(), name)
			}
		}
	}
	if n < 100 {
		t.Fatalf("read %d operations: the document was not read", n)
	}
}

// types.gen.go is current: each schema of docs/openapi.json is a struct of the same name with
// exactly its properties. A document changed without `go generate ./pkg/client` fails here.
func TestTheTypesAreTheDocuments(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../../docs/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Properties map[string]json.RawMessage `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	f, err := parser.ParseFile(token.NewFileSet(), "types.gen.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	structs := map[string][]string{}
	for _, decl := range f.Decls {
		gd, ok := decl.(*ast.GenDecl)
		if !ok {
			continue
		}
		for _, spec := range gd.Specs {
			ts, ok := spec.(*ast.TypeSpec)
			if !ok {
				continue
			}
			st, ok := ts.Type.(*ast.StructType)
			if !ok {
				structs[ts.Name.Name] = nil
				continue
			}
			fields := []string{}
			for _, fl := range st.Fields.List {
				if fl.Tag == nil {
					continue
				}
				tag := reflect.StructTag(strings.Trim(fl.Tag.Value, "`")).Get("json")
				if name, _, _ := strings.Cut(tag, ","); name != "" && name != "-" {
					fields = append(fields, name)
				}
			}
			structs[ts.Name.Name] = fields
		}
	}
	for name, schema := range doc.Components.Schemas {
		fields, ok := structs[name]
		if !ok {
			t.Errorf("schema %s has no type: run go generate ./pkg/client", name)
			continue
		}
		if len(schema.Properties) == 0 {
			continue
		}
		props := []string{}
		for p := range schema.Properties {
			props = append(props, p)
		}
		sort.Strings(props)
		sort.Strings(fields)
		if !reflect.DeepEqual(props, fields) {
			t.Errorf("schema %s: the document has %v, the type %v: run go generate ./pkg/client", name, props, fields)
		}
	}
}

// A person's browser, holding a recipient token the tenant's backend asked for, reads the inbox,
// follows its live stream (ready, then each message as it arrives) and marks a message read.
func TestTheInboxWithARecipientToken(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{})
	s.StartWorker(worker.Config{CommitInterval: 20 * time.Millisecond})
	_, key := s.Tenant()
	c := client.New(s.URL, key, client.WithHTTPClient(s.Client))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := c.PutRecipient(ctx, "u_1", client.RecipientInput{}); err != nil {
		t.Fatal(err)
	}
	tok, err := c.CreateInboxToken(ctx, "u_1", client.InboxTokenRequest{})
	if err != nil || tok.Token == "" {
		t.Fatalf("token: %+v, %v", tok, err)
	}
	// Not through the stack's client: its check of each answer against the document reads the
	// whole body, which a stream never ends.
	browser := client.New(s.URL, tok.Token)
	events := make(chan client.StreamEvent, 8)
	go func() {
		for ev, err := range browser.StreamInbox(ctx) {
			if err != nil {
				return
			}
			events <- ev
		}
	}()
	next := func() client.StreamEvent {
		t.Helper()
		select {
		case ev := <-events:
			return ev
		case <-time.After(20 * time.Second):
			t.Fatal("no event on the stream")
		}
		return client.StreamEvent{}
	}
	if ev := next(); ev.Type != "ready" || !strings.Contains(ev.Data, `"unread_count":0`) {
		t.Fatalf("first event: %+v", ev)
	}
	acc, err := c.SendMessage(ctx, client.MessageRequest{Channel: "in_app", Recipient: "u_1", InApp: client.InAppContent{Title: "Welcome"}})
	if err != nil {
		t.Fatal(err)
	}
	if ev := next(); ev.Type != "message" || ev.ID != acc.ID || !strings.Contains(ev.Data, `"title":"Welcome"`) {
		t.Fatalf("the arrival: %+v", ev)
	}
	page, err := browser.ListInbox(ctx, client.ListInboxParams{})
	if err != nil || len(page.Data) != 1 || page.UnreadCount != 1 {
		t.Fatalf("the inbox: %+v, %v", page, err)
	}
	if it, err := browser.MarkInboxRead(ctx, acc.ID); err != nil || it.ReadAt.IsZero() {
		t.Fatalf("read: %+v, %v", it, err)
	}
	if _, err := browser.ListMessages(ctx, client.ListMessagesParams{}); client.StatusOf(err) != http.StatusUnauthorized {
		t.Fatalf("a recipient token on the tenant's API: %v", err)
	}
}
