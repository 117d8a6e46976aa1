package db

import (
	"errors"

	"github.com/jackc/pgx/v5/pgconn"
)

// RowError reports whether PostgreSQL refused a statement because of the data it was given
// rather than its state: a value it cannot store or convert (SQLSTATE class 22), a constraint
// (23), a row affected twice by one statement (21), or a value over a limit such as an index
// entry's size (54). Another statement without the offending row would succeed, so batchers
// that mix callers split on these (batch.IsolateFailures) and fail only the culprit.
func RowError(err error) bool {
	var pg *pgconn.PgError
	if !errors.As(err, &pg) || len(pg.Code) < 2 {
		return false
	}
	switch pg.Code[:2] {
	case "21", "22", "23", "54":
		return true
	}
	return false
}
