package db

// MigrateFS applies the migrations in fsys, for tests of the runner itself.
var MigrateFS = migrateFS

// SetLockTimeout changes the migrations' lock_timeout until the returned function runs.
func SetLockTimeout(v string) (restore func()) {
	old := migrationParams["lock_timeout"]
	migrationParams["lock_timeout"] = v
	return func() { migrationParams["lock_timeout"] = old }
}
