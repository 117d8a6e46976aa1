// Package templates keeps tenants' message templates: versioned, localized Handlebars bodies whose
// variables a JSON Schema describes, rendered at intake into exactly what is sent.
//
// Rendering is sandboxed. Handlebars has no file, network or environment access of its own; the
// only helpers are if, unless, each and with, and partials are refused. Every render has a budget
// of loop iterations and output bytes, so a template that would expand without bound fails with a
// clear error instead of holding a request. In HTML bodies {{x}} is escaped and {{{x}}} is the
// explicit opt-out; subjects, text and SMS bodies are not HTML and are never escaped.
package templates

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"

	"github.com/mailgun/raymond/v2"
)

// Render budgets: a render stops with ErrTooLarge past either.
const (
	MaxIterations  = 10_000    // each-loop iterations, nested loops included
	MaxOutputBytes = 512 << 10 // of one rendered part, and of everything the loops produce
)

// ErrTooLarge means a render went past its budget.
var ErrTooLarge = errors.New("the template expands beyond its render budget")

// Part is one compiled part of a version (subject, text or html).
type Part struct {
	tpl  *raymond.Template
	html bool
}

// CompilePart parses source; html says whether {{x}} is HTML-escaped.
func CompilePart(source string, html bool) (_ *Part, err error) {
	defer recoverInto(&err)
	tpl, err := raymond.Parse(source)
	if err != nil {
		return nil, err
	}
	p := &Part{tpl: tpl, html: html}
	// Template helpers come before raymond's global ones: each is replaced by one that counts
	// against the render's budget, and the other global helpers are unavailable.
	tpl.RegisterHelper("each", eachHelper)
	for _, name := range []string{"log", "lookup", "equal", "ifGt", "ifLt", "ifEq", "ifMatchesRegexStr", "pluralize"} {
		tpl.RegisterHelper(name, unsupportedHelper(name))
	}
	return p, nil
}

// budget is one render's allowance, carried in the render's private data frame.
type budget struct {
	iterations int
	bytes      int
}

const budgetKey = "comms_budget"

// recoverInto turns a panic of the template engine into an error: a template or data that trips
// it fails its own request and nothing else.
func recoverInto(err *error) {
	if v := recover(); v != nil {
		*err = fmt.Errorf("the template engine failed: %v", v)
	}
}

// Render renders the part with data (decoded JSON: maps, slices, strings, float64, bool, nil).
func (p *Part) Render(data map[string]any) (_ string, err error) {
	defer recoverInto(&err)
	frame := raymond.NewDataFrame()
	frame.Set(budgetKey, &budget{iterations: MaxIterations, bytes: MaxOutputBytes})
	ctx := any(data)
	if !p.html {
		ctx = unescaped(data)
	}
	out, err := p.tpl.ExecWith(ctx, frame)
	if err != nil {
		return "", err
	}
	if len(out) > MaxOutputBytes {
		return "", ErrTooLarge
	}
	return out, nil
}

// unescaped marks every string in v safe, so that a text part prints it as given.
func unescaped(v any) any {
	switch x := v.(type) {
	case string:
		return raymond.SafeString(x)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = unescaped(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = unescaped(e)
		}
		return out
	}
	return v
}

// eachHelper is Handlebars' each over arrays and objects (objects in key order, so a render is
// repeatable), charging every iteration and every byte it produces to the render's budget.
func eachHelper(context any, options *raymond.Options) any {
	if !raymond.IsTrue(context) {
		return options.Inverse()
	}
	b, _ := options.DataFrame().Get(budgetKey).(*budget)
	if b == nil {
		panic(errors.New("each: render budget missing"))
	}
	var out strings.Builder
	iter := func(ctx any, i, n int, key any) {
		b.iterations--
		if b.iterations < 0 {
			panic(ErrTooLarge)
		}
		frame := options.DataFrame().Copy()
		frame.Set("index", i)
		frame.Set("key", key)
		frame.Set("first", i == 0)
		frame.Set("last", i == n-1)
		s := options.FnCtxData(ctx, frame)
		b.bytes -= len(s)
		if b.bytes < 0 {
			panic(ErrTooLarge)
		}
		out.WriteString(s)
	}
	val := reflect.ValueOf(context)
	switch val.Kind() {
	case reflect.Slice, reflect.Array:
		for i := 0; i < val.Len(); i++ {
			iter(val.Index(i).Interface(), i, val.Len(), i)
		}
	case reflect.Map:
		keys := make([]string, 0, val.Len())
		for _, k := range val.MapKeys() {
			keys = append(keys, k.String())
		}
		sort.Strings(keys)
		for i, k := range keys {
			iter(val.MapIndex(reflect.ValueOf(k)).Interface(), i, len(keys), k)
		}
	default:
		panic(fmt.Errorf("each: cannot iterate over a %s", jsonType(context)))
	}
	return raymond.SafeString(out.String())
}

func unsupportedHelper(name string) func(...any) string {
	return func(...any) string {
		panic(fmt.Errorf("the %s helper is not available; templates may use if, unless, each and with", name))
	}
}

// jsonType names a decoded JSON value's type as JSON Schema does.
func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string, raymond.SafeString:
		return "string"
	case float64, int:
		return "number"
	case bool:
		return "boolean"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}
