package store

import (
	"context"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"
)

// ExportColumns are the billing export's columns, in order: one row per message accepted in
// the month. They are documented in docs/usage.md and never change meaning; new ones are added
// at the end.
var ExportColumns = []string{
	"tenant_id", "message_id", "created_at", "channel", "category", "template", "template_version",
	"recipient", "status", "provider_type", "provider_config_id", "attempts", "sms_segments",
	"sent_at", "delivered_at", "cost", "currency", "cost_source",
}

// ExportMessages writes the billing export of month (any time in it; UTC calendar month) as CSV
// with a header line to w: tenantID's messages, or every tenant's when tenantID is empty. It
// streams: PostgreSQL's COPY writes rows to w as they are read, so memory stays constant whatever
// the month holds. It returns the rows written, the header not counted.
func (s *Store) ExportMessages(ctx context.Context, w io.Writer, tenantID string, month time.Time) (int64, error) {
	if tenantID != "" && !exportableID.MatchString(tenantID) {
		return 0, fmt.Errorf("export: %q is not a tenant id", tenantID)
	}
	from := time.Date(month.Year(), month.Month(), 1, 0, 0, 0, 0, time.UTC)
	to := from.AddDate(0, 1, 0)
	where := "created_at >= " + literal(from.Format(time.RFC3339)) + " AND created_at < " + literal(to.Format(time.RFC3339))
	order := "created_at, id"
	if tenantID != "" {
		where = "tenant_id = " + literal(tenantID) + " AND " + where
	} else {
		order = "tenant_id, created_at, id"
	}
	// COPY takes no parameters: the values above are quoted literals of validated text.
	sql := `COPY (
		SELECT tenant_id, id, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), channel, category,
		       ` + cell("coalesce(template_key, '')") + `, template_version, ` + cell("recipient") + `, status, provider_type, coalesce(provider_config_id, ''),
		       attempts, CASE WHEN channel = 'sms' THEN coalesce(sms_segments, 1) END,
		       to_char(sent_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
		       to_char(delivered_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
		       CASE WHEN cost ~ '^-?[0-9]+(\.[0-9]+)?$' THEN abs(cost::numeric)::text ELSE '' END, ` + cell("cost_currency") + `, cost_source
		FROM communication.message_logs WHERE ` + where + ` ORDER BY ` + order + `
	) TO STDOUT WITH (FORMAT csv)`
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return 0, fmt.Errorf("export: %w", err)
	}
	defer conn.Release()
	if _, err := io.WriteString(w, strings.Join(ExportColumns, ",")+"\n"); err != nil {
		return 0, err
	}
	tag, err := conn.Conn().PgConn().CopyTo(ctx, w, sql)
	if err != nil {
		return tag.RowsAffected(), fmt.Errorf("export: %w", err)
	}
	return tag.RowsAffected(), nil
}

// cell neutralizes a text column that a tenant or a provider can fill, for spreadsheets (OWASP's
// CSV injection guidance): a value starting with =, +, -, @, a tab or a carriage return would be
// read as a formula, so it gets a leading single quote and is shown as text. This holds phone
// numbers too ('+14155550123). Every other column holds ids, enums, numbers or timestamps that
// comms writes itself.
func cell(col string) string {
	return `CASE WHEN left(` + col + `, 1) IN ('=', '+', '-', '@', E'\t', E'\r') THEN '''' || ` + col + ` ELSE ` + col + ` END`
}

// exportableID is what a tenant id may hold to be quoted into the export's COPY.
var exportableID = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// literal quotes s as an SQL string literal (standard_conforming_strings is on, PostgreSQL's
// default since 9.1: only the quote needs doubling).
func literal(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}
