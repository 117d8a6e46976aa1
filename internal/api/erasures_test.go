package api_test

import (
	"context"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/logicspike/comms/internal/api"
)

type erasurePage struct {
	Data       []api.Erasure `json:"data"`
	NextCursor string        `json:"next_cursor"`
}

// A tenant lists its erasures newest first, a page at a time, by status, and finds a person's by
// the address it no longer keeps (its keyed hash, as written in any case); never another
// tenant's, and never with the address in clear.
func TestErasuresAreListedNewestFirstAndFoundByTheirAddress(t *testing.T) {
	s := start(t)
	_, key := s.Tenant()
	_, otherKey := s.Tenant()
	var made []string
	for _, rcpt := range []string{"ann@example.com", "+14155550100", "bob@example.com"} {
		var e api.Erasure
		if resp := s.Do("POST", "/v1/erasures", key, map[string]string{"recipient": rcpt}, nil, &e); resp.StatusCode != 202 {
			t.Fatalf("erase %s: %d", rcpt, resp.StatusCode)
		}
		made = append(made, e.ID)
	}
	if resp := s.Do("POST", "/v1/erasures", otherKey, map[string]string{"recipient": "ann@example.com"}, nil, nil); resp.StatusCode != 202 {
		t.Fatalf("the other tenant's erasure: %d", resp.StatusCode)
	}
	ids := func(p erasurePage) []string {
		var out []string
		for _, e := range p.Data {
			out = append(out, e.ID)
		}
		return out
	}
	list := func(query string) erasurePage {
		t.Helper()
		var p erasurePage
		if resp := s.Do("GET", "/v1/erasures"+query, key, nil, nil, &p); resp.StatusCode != 200 {
			t.Fatalf("GET /v1/erasures%s: %d", query, resp.StatusCode)
		}
		return p
	}
	first := list("?limit=2")
	if want := []string{made[2], made[1]}; !slices.Equal(ids(first), want) || first.NextCursor == "" {
		t.Fatalf("first page %v (next %q), want %v and a cursor", ids(first), first.NextCursor, want)
	}
	if rest := list("?limit=2&cursor=" + first.NextCursor); !slices.Equal(ids(rest), []string{made[0]}) || rest.NextCursor != "" {
		t.Fatalf("second page %v (next %q), want [%s] and no cursor", ids(rest), rest.NextCursor, made[0])
	}
	if got := ids(list("?recipient=Ann@EXAMPLE.com")); !slices.Equal(got, []string{made[0]}) {
		t.Errorf("by Ann@EXAMPLE.com: %v, want [%s]", got, made[0])
	}
	if got := ids(list("?recipient=%2B14155550100")); !slices.Equal(got, []string{made[1]}) {
		t.Errorf("by +14155550100: %v, want [%s]", got, made[1])
	}

	// The eraser takes the one that waited longest (ann's); with no messages it is done at once.
	if _, ok, err := s.Store.EraseNext(context.Background(), 1000); err != nil || !ok {
		t.Fatalf("erase next: %v %v", ok, err)
	}
	if got := ids(list("?status=done")); !slices.Equal(got, []string{made[0]}) {
		t.Errorf("done: %v, want [%s]", got, made[0])
	}
	if got := ids(list("?status=running")); !slices.Equal(got, []string{made[2], made[1]}) {
		t.Errorf("running: %v, want [%s %s]", got, made[2], made[1])
	}

	resp := s.Do("GET", "/v1/erasures", key, nil, nil, nil)
	body, _ := io.ReadAll(resp.Body)
	if strings.Contains(string(body), "ann@example.com") || strings.Contains(string(body), "14155550100") {
		t.Errorf("the list shows an address: %s", body)
	}
	for _, c := range []struct{ query, field string }{
		{"?status=gone", "status"},
		{"?recipient=nobody", "recipient"},
		{"?cursor=notacursor", "cursor"},
		{"?limit=0", "limit"},
		{"?sort=asc", "sort"},
	} {
		var p api.Problem
		resp := s.Do("GET", "/v1/erasures"+c.query, key, nil, nil, &p)
		if resp.StatusCode != http.StatusBadRequest || len(p.Errors) == 0 || p.Errors[0].Field != c.field {
			t.Errorf("GET /v1/erasures%s: %d %+v, want 400 naming %s", c.query, resp.StatusCode, p, c.field)
		}
	}
}
