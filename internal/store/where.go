package store

import (
	"strconv"
	"strings"
)

// where builds a list query's conditions and arguments: each "?" of a condition becomes the
// next numbered placeholder, so optional filters compose without counting by hand. Its SQL
// always carries every argument as a parameter, never in the text.
type where struct {
	conds []string
	args  []any
}

// add appends cond, whose "?"s take vs in order.
func (w *where) add(cond string, vs ...any) {
	var b strings.Builder
	i := 0
	for _, part := range strings.SplitAfter(cond, "?") {
		if strings.HasSuffix(part, "?") && i < len(vs) {
			w.args = append(w.args, vs[i])
			i++
			part = part[:len(part)-1] + "$" + strconv.Itoa(len(w.args))
		}
		b.WriteString(part)
	}
	w.conds = append(w.conds, b.String())
}

// addIf appends cond (one "?") with v when v is set.
func (w *where) addIf(set bool, cond string, v any) {
	if set {
		w.add(cond, v)
	}
}

// arg appends v as an argument outside the conditions (a LIMIT) and returns its placeholder.
func (w *where) arg(v any) string {
	w.args = append(w.args, v)
	return "$" + strconv.Itoa(len(w.args))
}

// sql is the conditions joined by AND ("true" when there are none).
func (w *where) sql() string {
	if len(w.conds) == 0 {
		return "true"
	}
	return strings.Join(w.conds, " AND ")
}
