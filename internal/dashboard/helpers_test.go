package dashboard_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/logicspike/comms/internal/testing/browser"
	"github.com/logicspike/comms/internal/testing/stacktest"
)

// signIn signs the tab in with key and waits for the landing page's selector.
func signIn(tab *browser.Tab, s *stacktest.Stack, key, landing string) {
	tab.Do("sign in", chromedp.Navigate(s.URL+"/ui/signin"), chromedp.WaitVisible(`#key`), chromedp.SendKeys(`#key`, key),
		chromedp.Submit(`#key`), chromedp.WaitVisible(landing))
}

// noRedirect is a client that shows redirects rather than following them.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// sessionCookie signs in with key over plain HTTP, as the browser's form does, and returns the
// session cookie.
func sessionCookie(tb testing.TB, s *stacktest.Stack, key string) *http.Cookie {
	tb.Helper()
	req, _ := http.NewRequest("POST", s.URL+"/ui/signin", strings.NewReader(url.Values{"key": {key}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	resp, err := noRedirect.Do(req)
	if err != nil || len(resp.Cookies()) != 1 {
		tb.Fatalf("sign in: %v %v", resp, err)
	}
	resp.Body.Close()
	return resp.Cookies()[0]
}

// sessionGet GETs u with the session cookie c.
func sessionGet(tb testing.TB, c *http.Cookie, u string) *http.Response {
	tb.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	req.AddCookie(c)
	resp, err := noRedirect.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	return resp
}
