package domain

// Session is a signed-in dashboard browser: the key it signed in with, and its CSRF token.
type Session struct {
	Key  APIKey
	CSRF string
	// TenantStatus is the status of the key's tenant now ("active", "suspended"); "" for an
	// admin key.
	TenantStatus TenantStatus
}
