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
//
// A row that no partition holds is not one of these: that is the partitions' state (NoPartition).
func RowError(err error) bool {
	var pg *pgconn.PgError
	if !errors.As(err, &pg) || len(pg.Code) < 2 || NoPartition(err) {
		return false
	}
	switch pg.Code[:2] {
	case "21", "22", "23", "54":
		return true
	}
	return false
}

// NoPartition reports whether PostgreSQL refused a row because no partition of its table holds
// it: the weeks ahead were not made (the workers' partition loop is stalled), and the same row
// goes in once they are. PostgreSQL reports it as a check violation (23514) that names no
// constraint, where a CHECK constraint's violation names its constraint; the message, which a
// server's locale may translate, is not read.
func NoPartition(err error) bool {
	var pg *pgconn.PgError
	return errors.As(err, &pg) && pg.Code == "23514" && pg.ConstraintName == ""
}
