// Package layout holds the tree to the architecture it shows: each layer imports only the layers
// below it, Kafka stays inside the queue package, and no file outgrows a screenful of purpose.
package layout

import (
	"bufio"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/logicspike/comms/"

// layers, lowest first: a package may import its own layer and those below, never above.
var layers = [][]string{
	{"pkg/message", "pkg/event", "pkg/ids", "pkg/webpush", "pkg/standardwebhooks"},
	{"pkg/provider", "pkg/client"},
	{"pkg/provider/"}, // the adapters and their conformance suite
	{"internal/domain"},
	{"internal/platform/", "internal/db", "internal/batch"},
	{"internal/store", "internal/queue"},
	{"internal/registry", "internal/templates", "internal/quota", "internal/categories", "internal/unsubscribe", "internal/senders"},
	{"internal/intake", "internal/dispatch/", "internal/callbacks/", "internal/events", "internal/webhooks", "internal/providerconfig",
		"internal/accounts", "internal/recipients", "internal/reports", "internal/retention", "internal/inbox", "internal/rekey"},
	{"internal/api", "internal/dashboard"},
	{"internal/app"},
	{"internal/testing/", "cmd/"},
}

func layer(pkg string) int {
	best, bestLen := -1, 0
	for i, l := range layers {
		for _, prefix := range l {
			match := pkg == prefix || strings.HasSuffix(prefix, "/") && strings.HasPrefix(pkg, prefix) || strings.HasPrefix(pkg, prefix+"/")
			if match && len(prefix) > bestLen {
				best, bestLen = i, len(prefix)
			}
		}
	}
	return best
}

func root(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		t.Fatalf("module root not found from %s", dir)
	}
	return dir
}

func goFiles(t *testing.T, dirs ...string) []string {
	t.Helper()
	var out []string
	for _, d := range dirs {
		err := filepath.WalkDir(d, func(p string, e fs.DirEntry, err error) error {
			if err == nil && !e.IsDir() && strings.HasSuffix(p, ".go") {
				out = append(out, p)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func TestImportsGoDownTheLayers(t *testing.T) {
	r := root(t)
	for _, f := range goFiles(t, filepath.Join(r, "pkg"), filepath.Join(r, "internal"), filepath.Join(r, "cmd")) {
		rel, _ := filepath.Rel(r, filepath.Dir(f))
		from := layer(filepath.ToSlash(rel))
		if from < 0 {
			t.Errorf("%s: package %s is in no layer", f, rel)
			continue
		}
		ast, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range ast.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasPrefix(path, "github.com/segmentio/kafka-go") && !strings.HasPrefix(filepath.ToSlash(rel), "internal/queue") {
				t.Errorf("%s imports kafka-go: Kafka stays inside internal/queue", f)
			}
			if !strings.HasPrefix(path, module) {
				continue
			}
			to := layer(strings.TrimPrefix(path, module))
			if to > from && !strings.HasSuffix(f, "_test.go") {
				t.Errorf("%s (layer %d) imports %s (layer %d): upward", f, from, path, to)
			}
			if strings.HasPrefix(filepath.ToSlash(rel), "pkg/") && strings.HasPrefix(path, module+"internal/") && !strings.HasSuffix(f, "_test.go") {
				t.Errorf("%s: pkg/ is importable by other modules and must not depend on internal/ (%s)", f, path)
			}
		}
	}
}

// maxLines bounds a source file (tests aside): past it, a file does more than one thing.
const maxLines = 450

func TestNoFileOutgrowsItsPurpose(t *testing.T) {
	r := root(t)
	for _, f := range goFiles(t, filepath.Join(r, "pkg"), filepath.Join(r, "internal")) {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		n, generated := 0, false
		for sc := bufio.NewScanner(fh); sc.Scan(); {
			n++
			// A generated file (Go's convention) is as long as its source, docs/openapi.json.
			generated = generated || n <= 10 && strings.HasPrefix(sc.Text(), "// Code generated ") && strings.HasSuffix(sc.Text(), " DO NOT EDIT.")
		}
		_ = fh.Close()
		if n > maxLines && !generated {
			t.Errorf("%s has %d lines (at most %d): split it by purpose", f, n, maxLines)
		}
	}
}
