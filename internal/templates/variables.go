package templates

import (
	"fmt"
	"strings"

	"github.com/mailgun/raymond/v2/ast"
)

// A template is checked against its schema when a version is created: every variable it prints,
// tests or iterates must be declared, and only the available helpers appear. Inside each and
// with, paths resolve against the item's or the object's schema, ../ against the enclosing one.

// Fault is one problem found in a template's source.
type Fault struct {
	Line    int
	Message string
}

func (f Fault) String() string { return fmt.Sprintf("line %d: %s", f.Line, f.Message) }

type checker struct {
	scopes []any // schema nodes, innermost last; nil: anything goes beneath
	loops  int   // enclosing each blocks, for @index and friends
	faults []Fault
}

// checkVariables walks prog and reports each use of a variable the schema does not declare.
func checkVariables(prog *ast.Program, schema map[string]any) []Fault {
	c := &checker{scopes: []any{schema}}
	c.program(prog)
	return c.faults
}

func (c *checker) fault(loc ast.Loc, format string, args ...any) {
	c.faults = append(c.faults, Fault{Line: loc.Line, Message: fmt.Sprintf(format, args...)})
}

func (c *checker) program(p *ast.Program) {
	if p == nil {
		return
	}
	if len(p.BlockParams) > 0 {
		c.fault(p.Loc, "block parameters (as |x|) are not available; use this inside the block")
	}
	for _, n := range p.Body {
		switch n := n.(type) {
		case *ast.MustacheStatement:
			c.mustache(n)
		case *ast.BlockStatement:
			c.block(n)
		case *ast.PartialStatement:
			c.fault(n.Loc, "partials ({{> name}}) are not available")
		}
	}
}

func (c *checker) mustache(n *ast.MustacheStatement) {
	e := n.Expression
	if len(e.Params) > 0 || e.Hash != nil {
		c.fault(n.Loc, "{{%s ...}} calls a helper; a variable is printed as {{name}}, and only if, unless, each and with blocks are available", e.HelperName())
		return
	}
	if p, ok := e.Path.(*ast.PathExpression); ok {
		if name := e.HelperName(); helperNames[name] {
			c.fault(p.Loc, "%s is a helper's name; write {{this.%s}} to print a variable of that name", name, name)
			return
		}
		c.resolve(p)
	}
}

var helperNames = map[string]bool{"if": true, "unless": true, "each": true, "with": true, "log": true, "lookup": true,
	"equal": true, "ifGt": true, "ifLt": true, "ifEq": true, "ifMatchesRegexStr": true, "pluralize": true}

func (c *checker) block(n *ast.BlockStatement) {
	e := n.Expression
	name := e.HelperName()
	if name != "if" && name != "unless" && name != "each" && name != "with" {
		c.fault(n.Loc, "{{#%s}} is not available; blocks are if, unless, each and with", e.HelperName())
		return
	}
	var target any
	if len(e.Params) != 1 || e.Hash != nil {
		c.fault(n.Loc, "{{#%s}} takes one variable", e.HelperName())
	} else if p, ok := e.Params[0].(*ast.PathExpression); ok {
		target = c.resolve(p)
	} else {
		c.fault(n.Loc, "{{#%s}} takes a variable, not a literal or a subexpression", name)
	}
	switch name {
	case "if", "unless":
		c.program(n.Program)
	case "each":
		c.scopes = append(c.scopes, itemSchema(target))
		c.loops++
		c.program(n.Program)
		c.loops--
		c.scopes = c.scopes[:len(c.scopes)-1]
	case "with":
		c.scopes = append(c.scopes, target)
		c.program(n.Program)
		c.scopes = c.scopes[:len(c.scopes)-1]
	}
	c.program(n.Inverse)
}

// resolve returns the schema of the variable p names, reporting it when undeclared.
func (c *checker) resolve(p *ast.PathExpression) any {
	if p.Data {
		switch {
		case len(p.Parts) > 0 && p.Parts[0] == "root":
			return c.walkRoot(p, p.Parts[1:])
		case len(p.Parts) == 1 && (p.Parts[0] == "index" || p.Parts[0] == "key" || p.Parts[0] == "first" || p.Parts[0] == "last"):
			if c.loops == 0 {
				c.fault(p.Loc, "@%s exists only inside {{#each}}", p.Parts[0])
			}
			return nil
		}
		c.fault(p.Loc, "@%s is not a known data variable (@index, @key, @first, @last, @root)", strings.Join(p.Parts, "."))
		return nil
	}
	if p.Depth >= len(c.scopes) {
		c.fault(p.Loc, "%s goes above the data object", p.Original)
		return nil
	}
	if p.Depth == len(c.scopes)-1 {
		return c.walkRoot(p, p.Parts)
	}
	return c.walk(p, c.scopes[len(c.scopes)-1-p.Depth], p.Parts)
}

// recipientSchema is what a template may print of the recipient profile a message is sent to
// (templates.withRecipient) without declaring it: anything beneath data.
var recipientSchema = map[string]any{"type": "object", "properties": map[string]any{
	"id": map[string]any{"type": "string"}, "email": map[string]any{"type": "string"}, "phone": map[string]any{"type": "string"},
	"locale": map[string]any{"type": "string"}, "timezone": map[string]any{"type": "string"}, "data": true}}

// walkRoot walks parts from the data object, where recipient is the profile's unless the schema
// declares a recipient of its own (or declares nothing: then anything goes).
func (c *checker) walkRoot(p *ast.PathExpression, parts []string) any {
	root := c.scopes[0]
	if len(parts) > 0 && parts[0] == "recipient" {
		if _, declared := property(root, "recipient"); !declared && root != nil {
			return c.walk(p, recipientSchema, parts[1:])
		}
	}
	return c.walk(p, root, parts)
}

func (c *checker) walk(p *ast.PathExpression, node any, parts []string) any {
	for i, part := range parts {
		if node == nil {
			return nil
		}
		child, ok := property(node, part)
		if !ok {
			c.fault(p.Loc, "variable %s is not declared in the template's schema", strings.Join(parts[:i+1], "."))
			return nil
		}
		node = child
	}
	return node
}

// property returns the schema of obj's property name; nil when anything goes.
func property(schema any, name string) (any, bool) {
	s, ok := schema.(map[string]any)
	if !ok {
		return nil, schema == true
	}
	if props, ok := s["properties"].(map[string]any); ok {
		if p, ok := props[name]; ok {
			return p, true
		}
	}
	switch ap := s["additionalProperties"].(type) {
	case map[string]any:
		return ap, true
	case bool:
		return nil, ap && s["properties"] == nil
	}
	return nil, false
}

// itemSchema is the schema of what each iterates over in target: an array's items, an object's
// additional properties; nil when anything goes.
func itemSchema(target any) any {
	s, ok := target.(map[string]any)
	if !ok {
		return nil
	}
	if items, ok := s["items"]; ok {
		return items
	}
	if ap, ok := s["additionalProperties"].(map[string]any); ok {
		return ap
	}
	return nil
}
