package templates

import (
	"encoding/json"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/pkg/message"
)

func mustSchema(t *testing.T, raw string) *Schema {
	t.Helper()
	s, err := ParseSchema([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

const orderSchema = `{"type": "object", "required": ["name", "items"], "properties": {
	"name": {"type": "string"},
	"total": {"type": "number"},
	"vip": {"type": "boolean"},
	"items": {"type": "array", "items": {"type": "object", "properties": {"title": {"type": "string"}, "qty": {"type": "integer"}}}},
	"tags": {"type": "object", "additionalProperties": {"type": "string"}}
}}`

func TestHTMLIsEscapedUnlessTripleStashedAndTextNeverIs(t *testing.T) {
	t.Parallel()
	data := map[string]any{"name": `<script>alert("x")</script> & co`, "items": []any{}}
	html, _ := CompilePart(`<p>Hi {{name}}</p><div>{{{name}}}</div>`, true)
	got, err := html.Render(data)
	if err != nil {
		t.Fatal(err)
	}
	want := `<p>Hi &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; co</p><div><script>alert("x")</script> & co</div>`
	if got != want {
		t.Errorf("html:\n got %s\nwant %s", got, want)
	}
	text, _ := CompilePart(`Hi {{name}}, {{#each items}}{{title}}{{/each}}`, false)
	if got, _ := text.Render(data); got != `Hi <script>alert("x")</script> & co, ` {
		t.Errorf("text: %s", got)
	}
}

func TestRenderLoopsConditionsAndNumbers(t *testing.T) {
	t.Parallel()
	p, _ := CompilePart(`{{#if vip}}VIP {{/if}}{{name}}: {{#each items}}{{@index}}.{{title}}x{{qty}}{{#unless @last}}, {{/unless}}{{/each}} = {{total}}`+
		`{{#each tags}} {{@key}}={{this}}{{/each}}{{#with items.[0]}} first={{title}} of {{../name}}{{/with}}`, false)
	got, err := p.Render(map[string]any{"name": "Ann", "vip": true, "total": 12.5,
		"items": []any{map[string]any{"title": "tea", "qty": 2.0}, map[string]any{"title": "cake", "qty": 1.0}},
		"tags":  map[string]any{"b": "2", "a": "1"}})
	want := "VIP Ann: 0.teax2, 1.cakex1 = 12.5 a=1 b=2 first=tea of Ann"
	if err != nil || got != want {
		t.Errorf("got %q, %v\nwant %q", got, err, want)
	}
}

// A template cannot expand without bound: nested loops over the data stop at the iteration
// budget, and output stops at the byte budget, each as ErrTooLarge.
func TestRenderBudgets(t *testing.T) {
	t.Parallel()
	list := make([]any, 200)
	for i := range list {
		list[i] = "x"
	}
	nested, _ := CompilePart(`{{#each l}}{{#each ../l}}{{#each ../../l}}.{{/each}}{{/each}}{{/each}}`, false) // 8 million iterations
	if _, err := nested.Render(map[string]any{"l": list}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("nested loops: %v, want ErrTooLarge", err)
	}
	big := strings.Repeat("y", 100_000)
	wide, _ := CompilePart(`{{#each l}}{{../big}}{{/each}}`, false) // 20 MB
	if _, err := wide.Render(map[string]any{"l": list, "big": big}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("wide output: %v, want ErrTooLarge", err)
	}
	small, _ := CompilePart(`{{#each l}}{{this}}{{/each}}`, false)
	if got, err := small.Render(map[string]any{"l": list}); err != nil || len(got) != 200 {
		t.Errorf("within budget: %d bytes, %v", len(got), err)
	}
}

func TestHelpersBeyondTheFourAreUnavailable(t *testing.T) {
	t.Parallel()
	for _, src := range []string{`{{log "x"}}`, `{{lookup items 0}}`, `{{{name "x"}}}`, `{{(log 1)}}`} {
		if _, err := CompilePart(src, false); err == nil || !strings.Contains(err.Error(), "not available") {
			t.Errorf("%s: %v", src, err)
		}
	}
	p, _ := CompilePart(`{{> partial}}`, false)
	if _, err := p.Render(nil); err == nil {
		t.Error("a partial rendered")
	}
}

func TestVersionsAreCheckedAgainstTheSchema(t *testing.T) {
	t.Parallel()
	schema := mustSchema(t, orderSchema)
	for _, tc := range []struct {
		name, html string
		want       []string // substrings of the faults, in order; none: valid
	}{
		{"declared paths", `{{name}} {{#each items}}{{title}} {{qty}} {{@index}} {{../name}} {{@root.total}}{{/each}} {{#each tags}}{{@key}}{{this}}{{/each}} {{#if vip}}!{{/if}}`, nil},
		{"undeclared variable", "Hi\n{{naem}}", []string{"line 2: variable naem is not declared"}},
		{"undeclared field of an item", `{{#each items}}{{price}}{{/each}}`, []string{"variable price is not declared"}},
		{"a field of a string", `{{name.first}}`, []string{"variable name.first is not declared"}},
		{"@index outside each", `{{@index}}`, []string{"@index exists only inside"}},
		{"too many ../", `{{../name}}`, []string{"goes above the data object"}},
		{"helper call", `{{lookup items 0}}`, []string{"calls a helper"}},
		{"unknown block", `{{#items}}x{{/items}}`, []string{"is not available; blocks are"}},
		{"partial", `{{> footer}}`, []string{"partials"}},
		{"block params", `{{#each items as |it|}}{{it.title}}{{/each}}`, []string{"block parameters"}},
		{"syntax error", `{{#if vip}}x`, []string{"Parse error on line 1"}},
	} {
		_, faults := compile(domain.TemplateVersion{Subject: "s", HTML: tc.html}, message.Email, schema, true)
		if len(faults) < len(tc.want) || (len(tc.want) == 0 && len(faults) > 0) {
			t.Errorf("%s: faults %+v, want %q", tc.name, faults, tc.want)
			continue
		}
		for i, w := range tc.want {
			if faults[i].Field != "html" || !strings.Contains(faults[i].Message, w) {
				t.Errorf("%s: fault %d is %+v, want html: …%s…", tc.name, i, faults[i], w)
			}
		}
	}
}

func TestDataIsValidatedWithFieldPaths(t *testing.T) {
	t.Parallel()
	schema := mustSchema(t, orderSchema)
	faults := schema.Validate("template.data", map[string]any{"total": "12", "items": []any{map[string]any{"qty": 1.5}}})
	got := map[string]bool{}
	for _, f := range faults {
		got[f.Field] = true
	}
	for _, want := range []string{"template.data.name", "template.data.total", "template.data.items.0.qty"} {
		if !got[want] {
			t.Errorf("no fault for %s in %+v", want, faults)
		}
	}
	if f := schema.Validate("data", map[string]any{"name": "a", "items": []any{}}); len(f) != 0 {
		t.Errorf("valid data: %+v", f)
	}
}

func TestSchemasCannotReachOutside(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{
		`{"type": "object", "properties": {"a": {"$ref": "file:///etc/passwd"}}}`,
		`{"type": "object", "properties": {"a": {"$ref": "http://127.0.0.1:1/schema.json"}}}`,
		`{"type": "string"}`,
		`[1, 2]`,
		`{"type": "object", "properties": {"a": {"type": "nonsense"}}}`,
	} {
		if _, err := ParseSchema([]byte(raw)); err == nil {
			t.Errorf("%s: accepted", raw)
		}
	}
}

func TestLocaleFallbacks(t *testing.T) {
	t.Parallel()
	if got := strings.Join(fallbacks("fr-CA", "en"), " "); got != "fr-CA fr en" {
		t.Errorf("fr-CA: %s", got)
	}
	if got := strings.Join(fallbacks("", "en"), " "); got != "en" {
		t.Errorf("none: %s", got)
	}
	for in, want := range map[string]string{"fr_ca": "fr-CA", "EN": "en", "zh-hant-tw": "zh-Hant-TW"} {
		if got, err := CanonicalLocale(in); err != nil || got != want {
			t.Errorf("CanonicalLocale(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := CanonicalLocale("not a locale!"); err == nil {
		t.Error("a bad locale passed")
	}
}

// FuzzTemplates: whatever a tenant writes as a version and sends as data, checking and rendering
// end, stay within the budgets, and never panic.
func FuzzTemplates(f *testing.F) {
	for _, src := range []string{"{{name}}", "{{#each items}}{{title}}{{/each}}", "{{#with tags}}{{a}}{{/with}}", "{{{name}}}", "{{#if vip}}{{else}}{{/if}}", "{{", "{{#each}}"} {
		f.Add(src, `{"name": "<b>", "items": [{"title": "t"}], "tags": {"a": "1"}}`)
	}
	schema, err := ParseSchema([]byte(orderSchema))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, src, rawData string) {
		var data map[string]any
		_ = json.Unmarshal([]byte(rawData), &data)
		c, faults := compile(domain.TemplateVersion{Subject: "s", HTML: src}, message.Email, schema, true)
		if len(faults) > 0 {
			return
		}
		out, err := c.render(data)
		if err == nil && (len(out.HTML) > MaxOutputBytes || len(out.Subject) != 1) {
			t.Fatalf("%q rendered %d bytes", src, len(out.HTML))
		}
	})
}

// Every printed byte is charged as it is produced: the template {{a}} × 10,000 with a 50,000
// characters long (500 MB of output) stops at the budget, at once and in little memory.
func TestRenderStopsAtTheBudgetAsItPrints(t *testing.T) {
	src := strings.Repeat("{{a}}", 10_000)
	data := map[string]any{"a": strings.Repeat("x", 50_000)}
	for _, html := range []bool{false, true} {
		p, err := CompilePart(src, html)
		if err != nil {
			t.Fatal(err)
		}
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		start := time.Now()
		_, err = p.Render(data)
		took := time.Since(start)
		runtime.ReadMemStats(&after)
		if !errors.Is(err, ErrTooLarge) {
			t.Fatalf("html %v: %v, want ErrTooLarge", html, err)
		}
		// Allocated in all, not the heap's peak: an upper bound on it, and what a render that
		// built its whole output first (500 MB) would show.
		allocated := after.TotalAlloc - before.TotalAlloc
		t.Logf("html %v: refused after %s, %.1f MB allocated", html, took, float64(allocated)/(1<<20))
		if allocated > 16<<20 {
			t.Errorf("html %v: the render allocated %d MB before stopping, want a few", html, allocated>>20)
		}
	}
	// Escaping counts what it adds: 100,000 ampersands print as 500,000 bytes of &amp;.
	p, _ := CompilePart(`{{a}}{{a}}`, true)
	if _, err := p.Render(map[string]any{"a": strings.Repeat("&", 100_000)}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("escaped output: %v, want ErrTooLarge", err)
	}
	// A loop's own text counts once per iteration, and what it prints only once.
	p, _ = CompilePart(`{{#each l}}`+strings.Repeat("-", 100)+`{{../a}}{{/each}}`, false)
	list := make([]any, 1000)
	for i := range list {
		list[i] = "x"
	}
	if got, err := p.Render(map[string]any{"l": list, "a": strings.Repeat("y", 400)}); err != nil || len(got) != 500_000 {
		t.Errorf("500,000 bytes within the budget: %d bytes, %v", len(got), err)
	}
}

// The rewrite that routes printing through the budget leaves everything else as it was.
func TestPrintingRewriteKeepsTheLanguage(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		src  string
		html bool
		want string
	}{
		{`\{{name}} {{name}}`, false, `{{name}} <b>`},
		{`{{!-- {{name}} --}}{{! x }}[{{~ name ~}}]`, false, `[<b>]`},
		{`{{#if name}}{{name}}{{else if x}}x{{else}}no{{/if}}`, true, `&lt;b&gt;`},
		{`{{{name}}}{{&name}}{{name}}`, true, `<b><b>&lt;b&gt;`},
		{`{{#each items}}{{@index}}:{{this}}{{#if @last}}.{{/if}}{{/each}} {{items.[1]}}`, false, `0:a1:b. b`},
		{`{{#with obj}}{{k}}{{../name}}{{/with}} {{@root.name}} {{n}} {{zero}} {{t}} {{f}} {{nothing}}`, false, `v<b> <b> 12.5 0 true false `},
		{`é{{name}}ü{{name}}`, false, `é<b>ü<b>`},
	} {
		p, err := CompilePart(tc.src, tc.html)
		if err != nil {
			t.Errorf("%s: %v", tc.src, err)
			continue
		}
		got, err := p.Render(map[string]any{"name": "<b>", "items": []any{"a", "b"}, "obj": map[string]any{"k": "v"},
			"n": 12.5, "zero": 0.0, "t": true, "f": false, "nothing": nil})
		if err != nil || got != tc.want {
			t.Errorf("%s:\n got %q, %v\nwant %q", tc.src, got, err, tc.want)
		}
	}
}
