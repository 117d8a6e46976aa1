// Package apispec holds the API to its OpenAPI document (docs/openapi.json) in tests: every
// exchange a test makes through Transport is validated with kin-openapi's openapi3filter, so the
// document cannot drift from the server in paths, types, required fields or status codes.
//
// Responses are always validated (whatever the request, the answer is documented). Requests are
// validated when the server accepted them (2xx): a request the server takes but the document
// calls invalid is drift; the hostile requests tests send on purpose are refused, and only their
// answers are held to the document.
package apispec

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/logicspike/comms/docs"
)

// Validator checks exchanges against the document.
type Validator struct {
	doc    *openapi3.T
	router routers.Router
}

var (
	loadOnce sync.Once
	loaded   *Validator
	loadErr  error
)

// Load parses and validates the embedded document once per process.
func Load() (*Validator, error) {
	loadOnce.Do(func() {
		// the reference page and its scripts are text, checked as such
		openapi3filter.RegisterBodyDecoder("text/html", openapi3filter.PlainBodyDecoder)
		openapi3filter.RegisterBodyDecoder("text/javascript", openapi3filter.PlainBodyDecoder)
		l := openapi3.NewLoader()
		doc, err := l.LoadFromData(docs.OpenAPI)
		if err != nil {
			loadErr = fmt.Errorf("load openapi.json: %w", err)
			return
		}
		if err := doc.Validate(l.Context, openapi3.EnableExamplesValidation()); err != nil {
			loadErr = fmt.Errorf("openapi.json is not a valid document (examples included): %w", err)
			return
		}
		doc.Servers = nil // match any host: tests listen on random ports
		r, err := gorillamux.NewRouter(doc)
		if err != nil {
			loadErr = fmt.Errorf("route openapi.json: %w", err)
			return
		}
		loaded = &Validator{doc: doc, router: r}
	})
	return loaded, loadErr
}

// Doc is the parsed document.
func (v *Validator) Doc() *openapi3.T { return v.doc }

// Check validates one exchange. An operation the document does not have is an error, except a
// 404 or 405 (the answer to a path or method that does not exist).
func (v *Validator) Check(req *http.Request, reqBody []byte, status int, header http.Header, respBody []byte) error {
	route, params, err := v.router.FindRoute(req)
	if err != nil {
		if status == http.StatusNotFound || status == http.StatusMethodNotAllowed {
			return nil
		}
		return fmt.Errorf("%s %s answered %d but is not in openapi.json: %w", req.Method, req.URL.Path, status, err)
	}
	ctx := context.Background()
	in := &openapi3filter.RequestValidationInput{
		Request: cloneWithBody(req, reqBody), PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, MultiError: true},
	}
	var errs []error
	if status >= 200 && status < 300 {
		if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
			errs = append(errs, fmt.Errorf("request accepted with %d but invalid: %w", status, err))
		}
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in, Status: status, Header: header, Body: io.NopCloser(bytes.NewReader(respBody)),
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		errs = append(errs, fmt.Errorf("response %d: %w", status, err))
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s %s (operation %s): %w", req.Method, req.URL.RequestURI(), route.Operation.OperationID, errors.Join(errs...))
	}
	return nil
}

// CheckWebhook validates a delivery comms made to a tenant's endpoint against the document's
// webhooks entry for its event type: its signature headers and its body (the CloudEvent with the
// data schema of its type). An event type the document does not list is an error.
func (v *Validator) CheckWebhook(header http.Header, body []byte) error {
	var ev struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(body, &ev); err != nil {
		return fmt.Errorf("a webhook delivery is not JSON: %w", err)
	}
	item := v.doc.Webhooks[ev.Type]
	if item == nil || item.Post == nil {
		return fmt.Errorf("event type %q is delivered but not in openapi.json's webhooks", ev.Type)
	}
	var errs []error
	for _, p := range item.Post.Parameters {
		if p.Value.In == openapi3.ParameterInHeader && p.Value.Required && header.Get(p.Value.Name) == "" {
			errs = append(errs, fmt.Errorf("header %s missing", p.Value.Name))
		}
	}
	var data any
	if err := json.Unmarshal(body, &data); err != nil {
		return err
	}
	schema := item.Post.RequestBody.Value.Content.Get("application/json").Schema.Value
	if err := schema.VisitJSON(data, openapi3.MultiErrors()); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("webhook %s: %w", ev.Type, errors.Join(errs...))
	}
	return nil
}

func cloneWithBody(req *http.Request, body []byte) *http.Request {
	c := req.Clone(context.Background())
	c.Body = io.NopCloser(bytes.NewReader(body))
	c.ContentLength = int64(len(body))
	return c
}

// Transport wraps rt so that every exchange through it with the API at host ("127.0.0.1:8080")
// is checked; report receives each failure. Exchanges with other hosts pass unchecked.
func (v *Validator) Transport(rt http.RoundTripper, host string, report func(error)) http.RoundTripper {
	return &transport{v: v, rt: rt, host: host, report: report}
}

type transport struct {
	v      *Validator
	rt     http.RoundTripper
	host   string
	report func(error)
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Host != t.host {
		return t.rt.RoundTrip(req)
	}
	var reqBody []byte
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		_ = req.Body.Close()
		if err != nil {
			return nil, err
		}
		reqBody = b
		req.Body = io.NopCloser(bytes.NewReader(b))
	}
	resp, err := t.rt.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	respBody, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(respBody))
	if err != nil {
		return resp, nil // the caller sees the same short read
	}
	if cerr := t.v.Check(req, reqBody, resp.StatusCode, resp.Header, respBody); cerr != nil {
		t.report(cerr)
	} else if dir := os.Getenv("COMMS_OPENAPI_RECORD"); dir != "" {
		t.v.record(dir, req, reqBody, resp.StatusCode, respBody)
	}
	return resp, nil
}

// record keeps the first valid exchange of each operation and status in dir, as material for
// the document's examples (docs/development.md says how they are made).
func (v *Validator) record(dir string, req *http.Request, reqBody []byte, status int, respBody []byte) {
	route, _, err := v.router.FindRoute(req)
	if err != nil {
		return
	}
	write := func(name string, b []byte) {
		if len(b) == 0 || !json.Valid(b) {
			return
		}
		f, err := os.OpenFile(filepath.Join(dir, name), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err != nil {
			return // already recorded
		}
		defer f.Close()
		_, _ = f.Write(b)
	}
	id := route.Operation.OperationID
	write(fmt.Sprintf("%s.%d.json", id, status), respBody)
	if status >= 200 && status < 300 {
		write(id+".request.json", reqBody)
	}
}
