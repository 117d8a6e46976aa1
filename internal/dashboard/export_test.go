package dashboard

// PagePatterns lists the signed-in routes a key of kind may use (for the suspension test).
func PagePatterns(kind string) []string {
	var out []string
	for _, p := range (&Handler{}).pagesTable() {
		if p.kind == "" || string(p.kind) == kind {
			out = append(out, p.pattern)
		}
	}
	return out
}
