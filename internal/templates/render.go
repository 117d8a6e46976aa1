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
	"github.com/mailgun/raymond/v2/lexer"
)

// Render budgets: a render stops with ErrTooLarge past either.
const (
	MaxIterations  = 10_000    // each-loop iterations, nested loops included
	MaxOutputBytes = 512 << 10 // of one rendered part, and of everything the loops produce
	MaxDataBytes   = 64 << 10  // of one message's data (strings and keys by length, other values 8 each)
)

// ErrTooLarge means a render went past its budget.
var ErrTooLarge = errors.New("the template expands beyond its render budget")

// Part is one compiled part of a version (subject, text or html).
type Part struct {
	tpl *raymond.Template
}

// The helpers every printed variable goes through (see printable): each charges what it prints
// to the render's budget before the engine copies it into the output.
const (
	printEscaped = "comms_print_escaped"
	printRaw     = "comms_print_raw"
)

// CompilePart parses source; html says whether {{x}} is HTML-escaped.
func CompilePart(source string, html bool) (_ *Part, err error) {
	defer recoverInto(&err)
	source, err = printable(source, html)
	if err != nil {
		return nil, err
	}
	tpl, err := raymond.Parse(source)
	if err != nil {
		return nil, err
	}
	// Template helpers come before raymond's global ones: each is replaced by one that counts
	// against the render's budget, and the other global helpers are unavailable.
	tpl.RegisterHelper("each", eachHelper)
	tpl.RegisterHelper(printEscaped, printHelper(true))
	tpl.RegisterHelper(printRaw, printHelper(false))
	for _, name := range []string{"log", "lookup", "equal", "ifGt", "ifLt", "ifEq", "ifMatchesRegexStr", "pluralize"} {
		tpl.RegisterHelper(name, unsupportedHelper(name))
	}
	return &Part{tpl: tpl}, nil
}

// printable rewrites every {{variable}} of source into a call of a printing helper, so that no
// byte reaches the output uncounted: {{x}} becomes {{comms_print_escaped x}} in HTML and
// {{comms_print_raw x}} elsewhere (subjects, text and SMS are never escaped); {{{x}}} and {{&x}}
// become {{{comms_print_raw x}}}. A mustache that prints anything but a variable (a helper call,
// a subexpression) is refused: templates print variables only.
//
// The rewrite inserts text after the opening braces the engine's own lexer finds, so the rest of
// the source (escaped \{{, comments, whitespace control) is read exactly as before.
func printable(source string, html bool) (string, error) {
	tokens := lexer.Collect(source)
	var b strings.Builder
	b.Grow(len(source) + len(source)/8)
	last := 0
	for i, tok := range tokens {
		switch tok.Kind {
		case lexer.TokenError:
			return source, nil // the parser reports it, with its line
		case lexer.TokenOpen, lexer.TokenOpenUnescaped:
		default:
			continue
		}
		if !printsVariable(tokens[i+1:]) {
			return "", fmt.Errorf("line %d: %s is not a variable: templates print variables only, and may use the blocks if, unless, each and with; other helpers are not available",
				tok.Line, strings.TrimSpace(source[tok.Pos:min(len(source), tok.Pos+40)]))
		}
		helper := printRaw
		if html && tok.Kind == lexer.TokenOpen && !strings.Contains(tok.Val, "&") {
			helper = printEscaped
		}
		end := tok.Pos + len(tok.Val)
		b.WriteString(source[last:end])
		b.WriteString(helper)
		b.WriteByte(' ')
		last = end
	}
	b.WriteString(source[last:])
	return b.String(), nil
}

// printsVariable reports whether the tokens after a mustache's opening, up to its closing, name
// one variable: a path such as name, customer.name, ../name, items.[0], this or @index.
func printsVariable(tokens []lexer.Token) bool {
	n := 0
	for _, tok := range tokens {
		switch tok.Kind {
		case lexer.TokenClose, lexer.TokenCloseUnescaped:
			return n > 0
		case lexer.TokenID, lexer.TokenSep, lexer.TokenData:
			n++
		default:
			return false
		}
	}
	return false
}

// printHelper prints one variable as the engine would, HTML-escaped when escape is set, and
// charges it to the render's budget before it joins the output.
func printHelper(escape bool) func(v any, options *raymond.Options) raymond.SafeString {
	return func(v any, options *raymond.Options) raymond.SafeString {
		s := raymond.Str(v)
		if escape {
			s = raymond.Escape(s)
		}
		budgetOf(options).spend(len(s))
		return raymond.SafeString(s)
	}
}

// budget is one render's allowance, carried in the render's private data frame.
type budget struct {
	iterations int
	bytes      int
}

// spend charges n bytes of output, stopping the render when the budget is spent.
func (b *budget) spend(n int) {
	b.bytes -= n
	if b.bytes < 0 {
		panic(ErrTooLarge)
	}
}

const budgetKey = "comms_budget"

func budgetOf(options *raymond.Options) *budget {
	b, _ := options.DataFrame().Get(budgetKey).(*budget)
	if b == nil {
		panic(errors.New("render budget missing"))
	}
	return b
}

// recoverInto turns a panic of the template engine into an error: a template or data that trips
// it fails its own request and nothing else.
func recoverInto(err *error) {
	if v := recover(); v != nil {
		if e, ok := v.(error); ok && errors.Is(e, ErrTooLarge) {
			*err = ErrTooLarge
			return
		}
		*err = fmt.Errorf("the template engine failed: %v", v)
	}
}

// Render renders the part with data (decoded JSON: maps, slices, strings, float64, bool, nil).
//
// Output is charged as it is produced, never after: every printed variable by the printing
// helpers, and whatever else an each loop produces (its literal text, once per iteration) by the
// loop after each iteration. Left uncharged is the template's own text outside loops, at most
// the source's size. So a render that would exceed MaxOutputBytes stops within about one budget
// of output, however the template and data multiply.
func (p *Part) Render(data map[string]any) (_ string, err error) {
	defer recoverInto(&err)
	frame := raymond.NewDataFrame()
	frame.Set(budgetKey, &budget{iterations: MaxIterations, bytes: MaxOutputBytes})
	out, err := p.tpl.ExecWith(data, frame)
	if err != nil {
		if errors.Is(err, ErrTooLarge) || strings.Contains(err.Error(), ErrTooLarge.Error()) {
			return "", ErrTooLarge
		}
		return "", err
	}
	if len(out) > MaxOutputBytes {
		return "", ErrTooLarge
	}
	return out, nil
}

// eachHelper is Handlebars' each over arrays and objects (objects in key order, so a render is
// repeatable), charging every iteration, and every byte it produces that was not charged as
// printed, to the render's budget.
func eachHelper(context any, options *raymond.Options) any {
	if !raymond.IsTrue(context) {
		return options.Inverse()
	}
	b := budgetOf(options)
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
		before := b.bytes
		s := options.FnCtxData(ctx, frame)
		// Printed variables were charged as they were printed; the iteration's own text was not.
		b.spend(len(s) - (before - b.bytes))
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
