package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/logicspike/comms/internal/api"
)

// A tenant keeps its people's profiles by its own ids: created, replaced, read, changed field by
// field, paged through and deleted; bad fields are named and change nothing; another tenant sees
// none of them.
func TestRecipientProfiles(t *testing.T) {
	s := start(t)
	_, key := s.Tenant()
	_, other := s.Tenant()
	var x api.Recipient
	put := func(id string, body map[string]any, want int) {
		t.Helper()
		x = api.Recipient{}
		if resp := s.Do("PUT", "/v1/recipients/"+id, key, body, nil, &x); resp.StatusCode != want {
			t.Fatalf("PUT %s %v: %d, want %d", id, body, resp.StatusCode, want)
		}
	}
	put("u_1", map[string]any{"email": "ada@example.com", "phone": "+14155550123", "locale": "pt-br", "timezone": "Europe/Lisbon",
		"data": map[string]any{"plan": "pro", "name": "Ada"}}, http.StatusCreated)
	if x.ID != "u_1" || x.Email != "ada@example.com" || x.Locale != "pt-BR" || x.Timezone != "Europe/Lisbon" || !strings.Contains(string(x.Data), `"plan":"pro"`) {
		t.Fatalf("created: %+v %s", x, x.Data)
	}
	put("u_1", map[string]any{"email": "ada@example.com"}, http.StatusOK) // replaced whole
	if x.Phone != "" || x.Locale != "" || string(x.Data) != "{}" {
		t.Fatalf("replaced: %+v %s", x, x.Data)
	}
	x = api.Recipient{}
	if resp := s.Do("PATCH", "/v1/recipients/u_1", key, map[string]any{"phone": "+14155550124", "data": map[string]any{"n": 1}}, nil, &x); resp.StatusCode != 200 ||
		x.Email != "ada@example.com" || x.Phone != "+14155550124" || string(x.Data) != `{"n":1}` {
		t.Fatalf("patched: %d %+v %s", resp.StatusCode, x, x.Data)
	}
	for _, c := range []struct {
		body  map[string]any
		field string
	}{
		{map[string]any{"email": "Ada <ada@example.com>"}, "email"},
		{map[string]any{"phone": "4155550123"}, "phone"},
		{map[string]any{"locale": "not a locale!"}, "locale"},
		{map[string]any{"timezone": "Mars/Olympus"}, "timezone"},
		{map[string]any{"data": []int{1}}, "data"},
		{map[string]any{"data": map[string]any{"big": strings.Repeat("x", 17<<10)}}, "data"},
	} {
		var p api.Problem
		if resp := s.Do("PATCH", "/v1/recipients/u_1", key, c.body, nil, &p); resp.StatusCode != 422 || len(p.Errors) != 1 || p.Errors[0].Field != c.field {
			t.Errorf("PATCH %v: %d %+v, want 422 naming %s", c.body, resp.StatusCode, p.Errors, c.field)
		}
	}
	var p api.Problem
	if resp := s.Do("PUT", "/v1/recipients/ada@example.com", key, map[string]any{}, nil, &p); resp.StatusCode != 400 || len(p.Errors) != 1 || p.Errors[0].Field != "id" {
		t.Fatalf("an address as the id: %d %+v", resp.StatusCode, p)
	}
	x = api.Recipient{}
	if resp := s.Do("GET", "/v1/recipients/u_1", key, nil, nil, &x); resp.StatusCode != 200 || x.Phone != "+14155550124" || string(x.Data) != `{"n":1}` {
		t.Fatalf("after refused changes: %d %+v", resp.StatusCode, x)
	}
	if resp := s.Do("GET", "/v1/recipients/u_1", other, nil, nil, nil); resp.StatusCode != 404 {
		t.Fatalf("another tenant reads the profile: %d", resp.StatusCode)
	}
	put("u_2", map[string]any{"phone": "+14155550125"}, http.StatusCreated)
	put("u_3", map[string]any{}, http.StatusCreated)
	var page struct {
		Data []api.Recipient `json:"data"`
		Next string          `json:"next_cursor"`
	}
	if resp := s.Do("GET", "/v1/recipients?limit=2", key, nil, nil, &page); resp.StatusCode != 200 || len(page.Data) != 2 || page.Data[0].ID != "u_1" || page.Next == "" {
		t.Fatalf("first page: %d %+v", resp.StatusCode, page)
	}
	if resp := s.Do("GET", "/v1/recipients?limit=2&cursor="+page.Next, key, nil, nil, &page); resp.StatusCode != 200 || len(page.Data) != 1 || page.Data[0].ID != "u_3" || page.Next != "" {
		t.Fatalf("second page: %d %+v", resp.StatusCode, page)
	}
	for q, want := range map[string]string{"u_3": "u_3", "%2B14155550125": "u_2", "nobody": ""} {
		if resp := s.Do("GET", "/v1/recipients?q="+q, key, nil, nil, &page); resp.StatusCode != 200 || want == "" && len(page.Data) != 0 ||
			want != "" && (len(page.Data) != 1 || page.Data[0].ID != want) {
			t.Fatalf("find %s: %d %+v", q, resp.StatusCode, page)
		}
	}
	if resp := s.Do("GET", "/v1/recipients?q=u_2", other, nil, nil, &page); resp.StatusCode != 200 || len(page.Data) != 0 {
		t.Fatalf("another tenant finds the profile: %d %+v", resp.StatusCode, page)
	}
	if resp := s.Do("DELETE", "/v1/recipients/u_2", key, nil, nil, nil); resp.StatusCode != 204 {
		t.Fatalf("delete: %d", resp.StatusCode)
	}
	if resp := s.Do("DELETE", "/v1/recipients/u_2", key, nil, nil, nil); resp.StatusCode != 404 {
		t.Fatalf("delete again: %d", resp.StatusCode)
	}
}
