package templates

import (
	"encoding/json"
	"errors"
	"runtime"
	"strings"
	"testing"
)

// FuzzRender renders random templates with random data, the template's text repeated up to
// 200 times so that loops and prints multiply, and holds every render to its budget: an output
// within MaxOutputBytes, and no more than a bounded amount allocated on the way, whatever the
// template does. Data larger than MaxDataBytes is refused before rendering, as at intake.
func FuzzRender(f *testing.F) {
	f.Add("{{a}}", `{"a": "`+strings.Repeat("x", 4000)+`"}`, uint16(200), false) // 800 KB
	f.Add("{{a}}", `{"a": "`+strings.Repeat("&", 1000)+`"}`, uint16(200), true)  // 1 MB escaped
	f.Add("{{#each l}}{{#each ../l}}{{../../a}}{{/each}}{{/each}}", `{"a": "yyyyyyyyyyyyyyyy", "l": [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20]}`, uint16(50), true)
	f.Add("<p>{{a}}{{{a}}}{{&a}}</p>", `{"a": "<&\"'>"}`, uint16(200), true)
	f.Add("{{#with o}}{{k}}{{/with}}{{o}}{{l}}{{n}}", `{"o": {"k": "v"}, "l": [0, false, null, 1e300], "n": 1e300}`, uint16(200), false)
	f.Add("{{#if a}}{{a}}{{else}}none{{/if}}{{#unless a}}!{{/unless}}", `{"a": ""}`, uint16(3), false)
	f.Fuzz(func(t *testing.T, src, rawData string, repeat uint16, html bool) {
		if len(src) > 4096 {
			return
		}
		var data map[string]any
		if json.Unmarshal([]byte(rawData), &data) != nil || dataSize(data, MaxDataBytes) > MaxDataBytes {
			return
		}
		src = strings.Repeat(src, int(repeat%201))
		if len(src) > MaxOutputBytes {
			return // refused as a version: a template is at most MaxOutputBytes
		}
		p, err := CompilePart(src, html)
		if err != nil {
			return
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		out, err := p.Render(data)
		runtime.ReadMemStats(&after)
		if err == nil && len(out) > MaxOutputBytes {
			t.Fatalf("rendered %d bytes, past the budget of %d", len(out), MaxOutputBytes)
		}
		if err != nil && !errors.Is(err, ErrTooLarge) && strings.Contains(err.Error(), "out of memory") {
			t.Fatal(err)
		}
		// The budget, HTML escaping's growth of it, the source's own text, and the engine's copies.
		if allocated := after.TotalAlloc - before.TotalAlloc; allocated > 128<<20 {
			t.Fatalf("a render allocated %d MB", allocated>>20)
		}
	})
}
