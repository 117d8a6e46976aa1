package client

import (
	"context"
	"fmt"
	"iter"
	"net/url"
	"reflect"
	"strings"
	"time"
)

// Page is one page of a list: its items, and the cursor of the next page ("" on the last).
type Page[T any] struct {
	Data       []T    `json:"data"`
	NextCursor string `json:"next_cursor,omitempty"`
}

// All yields every item of a list, page after page, calling list with each page's cursor (""
// for the first), and stops at the first error, which it yields:
//
//	for m, err := range client.All(ctx, func(ctx context.Context, cursor string) (client.Page[client.Message], error) {
//		return c.ListMessages(ctx, client.ListMessagesParams{Status: "failed", Cursor: cursor})
//	}) { … }
func All[T any](ctx context.Context, list func(ctx context.Context, cursor string) (Page[T], error)) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		cursor := ""
		for {
			p, err := list(ctx, cursor)
			if err != nil {
				var zero T
				yield(zero, err)
				return
			}
			for _, it := range p.Data {
				if !yield(it, nil) {
					return
				}
			}
			if p.NextCursor == "" {
				return
			}
			cursor = p.NextCursor
		}
	}
}

// query encodes a generated …Params struct as a query string ("?a=b", or "" when empty): each
// field with a form tag and a value that is not zero. Header parameters (X-Tenant-Id,
// Idempotency-Key) have no form tag: the client and CallOptions set those.
func query(params any) string {
	q := url.Values{}
	v := reflect.ValueOf(params)
	for i := range v.NumField() {
		name, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("form"), ",")
		f := v.Field(i)
		if name == "" || f.IsZero() {
			continue
		}
		if f.Kind() == reflect.Pointer {
			f = f.Elem()
		}
		switch x := f.Interface().(type) {
		case time.Time:
			q.Set(name, x.Format(time.RFC3339Nano))
		case []string:
			q.Set(name, strings.Join(x, ","))
		default:
			q.Set(name, fmt.Sprint(x))
		}
	}
	if len(q) == 0 {
		return ""
	}
	return "?" + q.Encode()
}

// esc escapes a path segment.
func esc(s string) string { return url.PathEscape(s) }
