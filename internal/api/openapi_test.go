package api_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/logicspike/comms/internal/api"
	"github.com/logicspike/comms/internal/intake"
	"github.com/logicspike/comms/internal/providerconfig"
	"github.com/logicspike/comms/internal/templates"
	"github.com/logicspike/comms/internal/testing/apispec"
	"github.com/logicspike/comms/internal/testing/stacktest"
	"github.com/logicspike/comms/internal/webhooks"
	"github.com/logicspike/comms/pkg/event"
	"github.com/logicspike/comms/pkg/message"
)

type openAPI struct {
	Paths      map[string]map[string]json.RawMessage `json:"paths"`
	Components struct {
		Schemas map[string]struct {
			Properties map[string]json.RawMessage `json:"properties"`
		} `json:"schemas"`
	} `json:"components"`
}

func loadSpec(t *testing.T) openAPI {
	t.Helper()
	raw, err := os.ReadFile("../../docs/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	var spec openAPI
	if err := json.Unmarshal(raw, &spec); err != nil {
		t.Fatalf("docs/openapi.json: %v", err)
	}
	return spec
}

// TestOpenAPIMatchesTheServer: every route is documented, and every documented operation is
// routed: a request without a key reaches authentication (or the handler), not the catch-all 404.
func TestOpenAPIMatchesTheServer(t *testing.T) {
	t.Parallel()
	spec := loadSpec(t)
	var documented []string
	for path, ops := range spec.Paths {
		for method := range ops {
			documented = append(documented, strings.ToUpper(method)+" "+path)
		}
	}
	routed := api.Routes()
	sort.Strings(documented)
	sort.Strings(routed)
	if !reflect.DeepEqual(documented, routed) {
		t.Fatalf("docs/openapi.json and the router disagree:\ndocumented %v\nrouted     %v", documented, routed)
	}

	s := stacktest.Start(t, stacktest.Options{})
	for _, op := range documented {
		method, path, _ := strings.Cut(op, " ")
		path = strings.NewReplacer("{id}", "msg_x", "{file}", "init.js").Replace(path)
		req, _ := http.NewRequest(method, s.URL+path, nil)
		resp, err := s.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed {
			t.Errorf("%s: documented but answered %d", op, resp.StatusCode)
		}
	}

	// The server serves the document itself, byte for byte.
	resp, err := s.Client.Get(s.URL + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	served, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	onDisk, _ := os.ReadFile("../../docs/openapi.json")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" || !bytes.Equal(served, onDisk) {
		t.Fatalf("GET /openapi.json: %d %s, %d bytes (docs/openapi.json has %d)", resp.StatusCode, resp.Header.Get("Content-Type"), len(served), len(onDisk))
	}
}

// TestOpenAPISchemasMatchTheTypes: each documented schema lists exactly the JSON fields of the Go
// type that is encoded or decoded for it.
func TestOpenAPISchemasMatchTheTypes(t *testing.T) {
	t.Parallel()
	spec := loadSpec(t)
	for name, v := range map[string]any{
		"MessageRequest": message.Request{}, "Message": message.Message{}, "Event": message.Event{},
		"MessageError": message.Error{}, "Accepted": intake.Accepted{}, "Tenant": api.Tenant{},
		"APIKey": api.APIKey{}, "Problem": api.Problem{}, "Provider": api.Provider{},
		"ProviderInput": providerconfig.Input{}, "ProviderPatch": providerconfig.Patch{}, "TestResult": providerconfig.TestResult{},
		"DeadLetter": api.DeadLetter{}, "TenantPatch": api.TenantPatch{}, "DLQFilter": api.DeadLetterFilter{}, "Replay": api.Replay{},
		"Bucket": api.Bucket{}, "ProviderErrorCount": api.ProviderErrorCount{}, "ErrorExample": api.ErrorExample{},
		"Suppression": api.Suppression{}, "UnmatchedCallback": api.UnmatchedCallback{}, "SMSSize": message.SMSSize{},
		"Template": api.Template{}, "TemplateInput": templates.Input{}, "TemplatePatch": api.TemplatePatch{},
		"TemplateVersion": api.TemplateVersion{}, "TemplateVersionInput": templates.VersionInput{},
		"TemplatePreviewInput": templates.PreviewInput{}, "TemplatePreview": templates.Preview{},
		"TemplateRef": message.TemplateRef{}, "TemplateUse": message.TemplateUse{},
		"BatchRequest": message.BatchRequest{}, "BatchItem": message.BatchItem{}, "BatchResult": api.BatchResult{}, "BatchEntry": api.BatchEntry{},
		"WebhookEndpoint": api.WebhookEndpoint{}, "WebhookEndpointPatch": api.WebhookEndpointPatch{}, "WebhookAttempt": api.WebhookAttempt{},
		"WebhookDelivery": api.WebhookDelivery{}, "WebhookReplay": api.WebhookReplay{}, "WebhookEndpointInput": webhooks.Input{},
		"CloudEvent": event.Event{}, "CloudEventData": event.Data{}, "CloudEventProvider": event.Provider{}, "CloudEventError": event.Error{},
		"Erasure": api.Erasure{}, "ErasureCounts": api.ErasureCounts{}, "CloudEventErasure": event.Erasure{},
		"Recipient": api.Recipient{}, "RecipientInput": api.RecipientInput{}, "Category": api.Category{}, "CategoryInput": api.CategoryInput{},
		"Preferences": api.Preferences{}, "InboxItem": api.InboxItem{}, "InboxToken": api.InboxToken{}, "InboxTokenRequest": api.InboxTokenRequest{}, "Device": api.Device{}, "InboxSecret": api.InboxSecret{}, "PushDelivery": message.Delivery{}, "DeviceInput": api.DeviceInput{}, "PushSubscription": api.PushSubscription{}, "InAppContent": message.InAppContent{}, "SettingsPatch": api.SettingsPatch{}, "Plan": api.Plan{}, "PlanInput": api.PlanInput{},
	} {
		schema, ok := spec.Components.Schemas[name]
		if !ok {
			t.Errorf("schema %s is not documented", name)
			continue
		}
		fields, props := jsonFields(reflect.TypeOf(v)), []string{}
		for p := range schema.Properties {
			props = append(props, p)
		}
		sort.Strings(fields)
		sort.Strings(props)
		if !reflect.DeepEqual(fields, props) {
			t.Errorf("schema %s: documented %v, type has %v", name, props, fields)
		}
	}
}

// jsonFields lists the JSON names of typ's fields, an embedded struct's fields among them.
func jsonFields(typ reflect.Type) []string {
	var out []string
	for i := 0; i < typ.NumField(); i++ {
		f := typ.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case f.Anonymous && tag == "" && f.Type.Kind() == reflect.Struct:
			out = append(out, jsonFields(f.Type)...)
		case tag != "" && tag != "-" && f.IsExported():
			out = append(out, tag)
		}
	}
	return out
}

// TestOpenAPIOperationsAreNamedAndTagged: every operation has a unique operationId (what client
// generators name their methods after) and a tag the document declares (how references group it).
func TestOpenAPIOperationsAreNamedAndTagged(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../../docs/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	var spec struct {
		Tags  []struct{ Name string } `json:"tags"`
		Paths map[string]map[string]struct {
			OperationID string   `json:"operationId"`
			Tags        []string `json:"tags"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(raw, &spec); err != nil {
		t.Fatal(err)
	}
	declared := map[string]bool{}
	for _, tag := range spec.Tags {
		declared[tag.Name] = true
	}
	seen := map[string]string{}
	for path, ops := range spec.Paths {
		for method, op := range ops {
			name := strings.ToUpper(method) + " " + path
			if op.OperationID == "" {
				t.Errorf("%s has no operationId", name)
			} else if other, dup := seen[op.OperationID]; dup {
				t.Errorf("%s and %s share operationId %q", name, other, op.OperationID)
			}
			seen[op.OperationID] = name
			if len(op.Tags) == 0 {
				t.Errorf("%s has no tag", name)
			}
			for _, tag := range op.Tags {
				if !declared[tag] {
					t.Errorf("%s: tag %q is not declared", name, tag)
				}
			}
		}
	}
}

// TestOpenAPIEveryOperationHasAnExample: each operation shows at least one real answer (the
// examples are recorded from the test suite, see docs/development.md), and apispec.Load has
// validated every example against its schema.
func TestOpenAPIEveryOperationHasAnExample(t *testing.T) {
	t.Parallel()
	v, err := apispec.Load()
	if err != nil {
		t.Fatal(err)
	}
	for path, item := range v.Doc().Paths.Map() {
		for method, op := range item.Operations() {
			n := 0
			for _, r := range op.Responses.Map() {
				if r.Value == nil {
					continue
				}
				for _, mt := range r.Value.Content {
					if mt.Example != nil || len(mt.Examples) > 0 {
						n++
					}
				}
			}
			if n == 0 {
				t.Errorf("%s %s (%s) has no example answer", method, path, op.OperationID)
			}
		}
	}
}

// TestOpenAPIWebhooksListEveryEventType: the document's webhooks section has one entry per event
// type a tenant's endpoint may receive, and each type's data schema names only fields of
// event.Data. (stacktest's EventSink validates every delivery a test receives against its entry.)
func TestOpenAPIWebhooksListEveryEventType(t *testing.T) {
	t.Parallel()
	v, err := apispec.Load()
	if err != nil {
		t.Fatal(err)
	}
	want := append([]string{event.Test}, event.Types...)
	var got []string
	for typ := range v.Doc().Webhooks {
		got = append(got, typ)
	}
	sort.Strings(want)
	sort.Strings(got)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("webhooks documented %v, event types %v", got, want)
	}
	fields := map[string]bool{}
	for _, f := range jsonFields(reflect.TypeOf(event.Data{})) {
		fields[f] = true
	}
	for typ, item := range v.Doc().Webhooks {
		body := item.Post.RequestBody.Value.Content.Get("application/json").Schema.Value
		data := body.AllOf[1].Value.Properties["data"].Value
		if len(data.Properties) == 0 {
			t.Errorf("%s: no data schema", typ)
		}
		for name := range data.Properties {
			if !fields[name] {
				t.Errorf("%s: data.%s is not a field of event.Data", typ, name)
			}
		}
		for _, name := range data.Required {
			if data.Properties[name] == nil {
				t.Errorf("%s: data requires %s, which it does not describe", typ, name)
			}
		}
	}
}
